"""What every benchmark shares: a sandbox, real clients, a SQLite ledger, and a table printer.

The figures must be measured the same way every time, so each script builds its world here:
a sandbox in a process of its own (or ``--url`` of one already running), generated data, the
real Mirakl client and Stripe gateway, and a fresh SQLite ledger in a temporary directory. The
sandbox does not run in the benchmark's process: its request handling would compete with the
connector's threads for the interpreter lock, which Stripe and Mirakl never do in production.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.records import AccountMapping
from mirakl_connector.mirakl.client import MiraklClient
from mirakl_connector.retry import RetryPolicy
from mirakl_connector.sandbox.client import SandboxAdmin
from mirakl_connector.stripe_gateway import StripeGateway

MIRAKL_KEY = "sandbox-mirakl-key"
STRIPE_KEY = "sk_test_sandbox"
RATE_LIMIT = 100.0
LATENCY_MS = 25.0


def base_parser(description: str) -> argparse.ArgumentParser:
    # Retries on the sandbox's 429s are counted in the table; their log lines would bury it.
    logging.getLogger("mirakl_connector").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--url", help="use a sandbox already running there (else one starts in its own process)"
    )
    parser.add_argument("--rate-limit", type=float, default=RATE_LIMIT, help="Stripe req/s")
    parser.add_argument("--latency-ms", type=float, default=LATENCY_MS)
    parser.add_argument("--seed", type=int, default=1)
    return parser


def add_pace_argument(parser: argparse.ArgumentParser) -> None:
    """``--no-pace``, for the scripts that run sharded steps with paced gateways."""
    parser.add_argument(
        "--no-pace",
        dest="pace",
        action="store_false",
        help="do not pace the Stripe calls (each concurrent task gets rate limit / tasks when "
        "paced, as max_requests_per_second would set it); the 429 retries absorb the excess",
    )


@dataclass
class World:
    url: str
    admin: SandboxAdmin
    ledger: Ledger
    workdir: Path

    def mirakl(self) -> MiraklClient:
        return MiraklClient(self.url, MIRAKL_KEY, retry=_retry(), timeout=(5, 30))

    def stripe(self, max_requests_per_second: float | None = None) -> StripeGateway:
        """A gateway, paced to ``max_requests_per_second`` when given (as the connection's
        ``max_requests_per_second`` extra would make it in a task)."""
        return StripeGateway(
            STRIPE_KEY,
            base_url=self.url,
            retry=_retry(),
            timeout=30,
            max_requests_per_second=max_requests_per_second,
        )

    def stripe_429s(self) -> int:
        """How many Stripe calls the sandbox answered 429 (calls wasted on the rate limit)."""
        return sum(1 for r in self.admin.stripe_requests() if r.get("status") == 429)

    def map_generated_accounts(self) -> None:
        """Account mappings for the generated shops (what onboarding would have stored)."""
        for account in self.admin.accounts():
            shop = (account.get("metadata") or {}).get("miraklShopId")
            if shop:
                self.ledger.upsert_account_mapping(
                    AccountMapping(int(shop), account["id"], True, True, kyc_status="APPROVED")
                )


def _retry() -> RetryPolicy:
    # Short waits: the sandbox answers 429 when the token bucket is empty, and refills fast.
    return RetryPolicy(max_attempts=8, max_elapsed=120, base_delay=0.05, max_delay=1.0)


@contextlib.contextmanager
def sandbox_process(seed: int = 1) -> Iterator[str]:
    """Start ``python -m mirakl_connector.sandbox`` on a free port; yield its URL; stop it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "include")}
    process = subprocess.Popen(
        [sys.executable, "-m", "mirakl_connector.sandbox", "--port", str(port),
         "--seed", str(seed)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        admin = SandboxAdmin(url)
        for _ in range(300):
            try:
                admin.clock()
                break
            except Exception:  # noqa: BLE001 - not listening yet
                if process.poll() is not None:
                    raise RuntimeError("the sandbox process exited at start") from None
                time.sleep(0.1)
        admin.close()
        yield url
    finally:
        process.terminate()
        process.wait(10)


@contextlib.contextmanager
def open_world(args: argparse.Namespace) -> Iterator[World]:
    """A sandbox (limited to ``--rate-limit`` Stripe req/s, ``--latency-ms``) and a ledger."""
    with contextlib.ExitStack() as stack:
        url = args.url.rstrip("/") if args.url else stack.enter_context(sandbox_process(args.seed))
        admin = SandboxAdmin(url)
        stack.callback(admin.close)
        admin.reset({})
        admin.clear_faults()
        limits: dict = {"latency_ms": args.latency_ms}
        if args.rate_limit:
            limits["rate_limit_per_second"] = args.rate_limit
        admin.set_faults({"stripe": limits, "mirakl": {"latency_ms": args.latency_ms}})
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        ledger = Ledger(f"sqlite:///{workdir / 'ledger.db'}")
        stack.callback(ledger.dispose)
        yield World(url=url, admin=admin, ledger=ledger, workdir=workdir)


def split_counts(counts: Mapping[str, int]) -> tuple[int, int]:
    """(GETs, POSTs) among a gateway's ``call_counts`` (``create``/``capture`` are writes)."""
    writes = sum(n for op, n in counts.items() if op.rsplit(".", 1)[-1] in _WRITE_METHODS)
    return sum(counts.values()) - writes, writes


_WRITE_METHODS = {"create", "capture", "cancel", "update"}


def print_table(title: str, rows: Sequence[tuple[str, object, str]]) -> None:
    """``metric | value | target`` as a plain text table."""
    width = max(len(r[0]) for r in rows)
    values = [_fmt(r[1]) for r in rows]
    vwidth = max(len(v) for v in values)
    print(f"\n{title}")
    print("-" * (width + vwidth + 30))
    for (name, _value, target), value in zip(rows, values, strict=True):
        print(f"{name:<{width}}  {value:>{vwidth}}  {target}")


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
