"""What every benchmark shares: a sandbox, real clients, a SQLite ledger, and a table printer.

The figures must be measured the same way every time, so each script builds its world here:
a sandbox in a process of its own (or ``--url`` of one already running), generated data, the
real Mirakl client and Stripe gateway, and a fresh SQLite ledger in a temporary directory. The
sandbox does not run in the benchmark's process: its request handling would compete with the
connector's threads for the interpreter lock, which Stripe and Mirakl never do in production.

The throughput benches (``base_parser(..., documented_limits=True)``) run the sandbox with
Stripe's documented limits (:mod:`mirakl_connector.stripe.limits`; live by default,
``--stripe-mode test``) and pace each task as a deployment does (:class:`Pacing`); the others
keep a plain ``--rate-limit`` bucket.
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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mirakl_sandbox.client import SandboxAdmin
from mirakl_sandbox.stripe_api import route

from mirakl_connector.core.retry import RetryPolicy
from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.records import AccountMapping
from mirakl_connector.mirakl.client import MiraklClient
from mirakl_connector.stripe import limits as stripe_limits
from mirakl_connector.stripe.gateway import StripeGateway

MIRAKL_KEY = "sandbox-mirakl-key"
STRIPE_KEY = "sk_test_sandbox"
RATE_LIMIT = 100.0
LATENCY_MS = 25.0


def base_parser(description: str, *, documented_limits: bool = False) -> argparse.ArgumentParser:
    """The options every bench takes; with ``documented_limits``, Stripe's documented limits
    (``--stripe-mode``, ``--share``, ``--no-pace``) instead of a plain ``--rate-limit``."""
    # Retries on the sandbox's 429s are counted in the table; their log lines would bury it.
    logging.getLogger("mirakl_connector").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--url", help="use a sandbox already running there (else one starts in its own process)"
    )
    if documented_limits:
        parser.add_argument(
            "--stripe-mode",
            choices=stripe_limits.MODES,
            default="live",
            help="the sandbox enforces Stripe's documented limits of this mode (live: 100 req/s "
            "per account, 25 per endpoint; test: 25 and 25) and the tasks pace to them",
        )
        parser.add_argument(
            "--share",
            type=float,
            default=stripe_limits.AIRFLOW_SHARE,
            help="part of each limit the connector's tasks pace to together (default "
            f"{stripe_limits.AIRFLOW_SHARE:g}, as deployed; 1 = the whole documented limit)",
        )
        parser.add_argument(
            "--no-pace",
            dest="pace",
            action="store_false",
            help="do not pace the Stripe calls; the 429 retries absorb the excess",
        )
    else:
        parser.add_argument("--rate-limit", type=float, default=RATE_LIMIT, help="Stripe req/s")
    parser.add_argument("--latency-ms", type=float, default=LATENCY_MS)
    parser.add_argument("--seed", type=int, default=1)
    return parser


@dataclass(frozen=True)
class Pacing:
    """How a deployment paces its Stripe tasks (:mod:`mirakl_connector.stripe.limits`): a task
    holding ``slots`` slots of the ``stripe_api`` pool paces to that many slots' worth of the
    share of the global limit, and to a shard's part of the share of one endpoint."""

    mode: str
    share: float
    pace: bool = True

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Pacing:
        return cls(args.stripe_mode, args.share, args.pace)

    @property
    def pool_slots(self) -> int:
        return stripe_limits.pool_slots(self.mode, self.share)

    @property
    def shard_slots(self) -> int:
        return stripe_limits.shard_slots(self.mode, self.share)

    @property
    def default_shards(self) -> int:
        return stripe_limits.shards_to_fill(self.mode, self.share)

    def task(self, slots: int = 1) -> tuple[float, float] | None:
        """(overall, per endpoint) requests/s of a task holding ``slots``; ``None`` unpaced."""
        return stripe_limits.task_pacing(self.mode, slots, self.share) if self.pace else None

    def running(self, shards: int) -> int:
        """How many of a step's ``shards`` the pool lets run at once."""
        return max(1, min(shards, self.pool_slots // self.shard_slots))

    def describe(self, shards: int) -> str:
        overall, endpoint = stripe_limits.task_pacing(self.mode, self.shard_slots, self.share)
        paced = (
            f"each paced to {overall:g} req/s, {endpoint:g} on one endpoint"
            if self.pace
            else "not paced"
        )
        return (
            f"{shards} x {self.shard_slots} of {self.pool_slots} slots, "
            f"{self.running(shards)} at once, {paced}"
        )


@dataclass
class World:
    url: str
    admin: SandboxAdmin
    ledger: Ledger
    workdir: Path

    def mirakl(self) -> MiraklClient:
        return MiraklClient(self.url, MIRAKL_KEY, retry=_retry(), timeout=(5, 30))

    faults: dict[str, Any] = field(default_factory=dict)

    def stripe(
        self, max_requests_per_second: float | tuple[float, float] | None = None
    ) -> StripeGateway:
        """A gateway, paced when given a rate or ``(overall, per endpoint)`` rates (as the hook
        paces a task: :meth:`Pacing.task`)."""
        overall, endpoint = (
            max_requests_per_second
            if isinstance(max_requests_per_second, tuple)
            else (max_requests_per_second, None)
        )
        return StripeGateway(
            STRIPE_KEY,
            base_url=self.url,
            retry=_retry(),
            timeout=30,
            max_requests_per_second=overall,
            max_requests_per_endpoint=endpoint,
        )

    def stripe_limits(self, on: bool) -> None:
        """Switch the sandbox's Stripe limits off (an untimed setup) or back on."""
        stripe = dict(self.faults.get("stripe") or {})
        if not on:
            stripe.pop("documented_rate_limits", None)
            stripe.pop("rate_limit_per_second", None)
        self.admin.set_faults({**self.faults, "stripe": stripe})

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
    """Start ``python -m mirakl_sandbox`` on a free port; yield its URL; stop it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "include")}
    process = subprocess.Popen(
        [sys.executable, "-m", "mirakl_sandbox", "--port", str(port),
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
    """A sandbox (Stripe's documented limits of ``--stripe-mode``, or a ``--rate-limit``
    bucket; ``--latency-ms``) and a ledger."""
    with contextlib.ExitStack() as stack:
        url = args.url.rstrip("/") if args.url else stack.enter_context(sandbox_process(args.seed))
        admin = SandboxAdmin(url)
        stack.callback(admin.close)
        admin.reset({})
        admin.clear_faults()
        limits: dict = {"latency_ms": args.latency_ms}
        if getattr(args, "stripe_mode", None):
            limits["documented_rate_limits"] = args.stripe_mode
        elif getattr(args, "rate_limit", None):
            limits["rate_limit_per_second"] = args.rate_limit
        faults = {"stripe": limits, "mirakl": {"latency_ms": args.latency_ms}}
        admin.set_faults(faults)
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        ledger = Ledger(f"sqlite:///{workdir / 'ledger.db'}")
        stack.callback(ledger.dispose)
        yield World(url=url, admin=admin, ledger=ledger, workdir=workdir, faults=faults)


@dataclass
class StepFigures:
    """One step of a run against the sandbox: its time, failed items, and the Stripe requests
    the sandbox served (by endpoint) or refused with 429."""

    name: str
    seconds: float
    failed: int
    requests: dict[tuple[str, str], int]
    refused: int

    @property
    def writes(self) -> int:
        return sum(n for (method, _path), n in self.requests.items() if method == "POST")

    def bound(self, mode: str, share: float = 1.0) -> tuple[float, str]:
        """The fewest seconds Stripe's limits allow for this step's requests, and which."""
        return stripe_limits.requests_bound(self.requests, mode, share)


def measure_step(w: World, name: str, run: Callable[[], int]) -> StepFigures:
    """Run one step (``run`` returns its failed items), timed, with the Stripe requests it made."""
    w.admin.clear_stripe_requests()
    started = time.perf_counter()
    failed = run()
    seconds = time.perf_counter() - started
    served: dict[tuple[str, str], int] = {}
    refused = 0
    for request in w.admin.stripe_requests():
        if request.get("status") == 429:
            refused += 1
            continue
        endpoint = (request["method"], endpoint_path(request["method"], request["path"]))
        served[endpoint] = served.get(endpoint, 0) + 1
    return StepFigures(name, seconds, failed, served, refused)


def endpoint_path(method: str, path: str) -> str:
    """``/v1/transfers/tr_1/reversals`` → ``/v1/transfers/{id}/reversals`` (the endpoint)."""
    _handler, args = route(method, path)
    for value in args:
        path = path.replace(f"/{value}", "/{id}", 1)
    return path


def limits_rows(steps: Sequence[StepFigures], pacing: Pacing) -> list[tuple[str, object, str]]:
    """The rows comparing a run's wall time with what Stripe's limits allow: the steps follow
    one another, so the bound is the sum of each step's (its binding limit named)."""
    mode, share = pacing.mode, pacing.share
    wall = sum(step.seconds for step in steps)
    documented = sum(step.bound(mode)[0] for step in steps)
    allowed = sum(step.bound(mode, share)[0] for step in steps)
    binding = "; ".join(
        f"{step.name}: {_limit_name(step.bound(mode)[1], mode)}" for step in steps if step.writes
    )
    doc_target = (
        "<= 1.15"
        if share >= 1
        else f">= 1/{share:g} = {1 / share:.2f} by design (paced to {share:.0%})"
    )
    return [
        ("Stripe writes (POSTs served)", sum(step.writes for step in steps), ""),
        (
            "Stripe reads (GETs served)",
            sum(sum(step.requests.values()) - step.writes for step in steps),
            "",
        ),  # fmt: skip
        ("binding limit", binding, ""),
        ("bound at the documented limits (s)", documented, ""),
        (f"bound at the share paced to, {share:.0%} (s)", allowed, ""),
        ("total wall time (s)", wall, ""),
        (f"ratio wall / bound at {share:.0%}", wall / allowed if allowed else 0.0, "<= 1.15"),
        ("ratio wall / documented bound", wall / documented if documented else 0.0, doc_target),
        ("Stripe 429 answers", sum(step.refused for step in steps), "0"),
    ]


def _limit_name(binding: str, mode: str) -> str:
    if binding == "global":
        return f"the account's {stripe_limits.global_limit(mode):g}/s ({mode} mode)"
    if " " in binding:
        method, path = binding.split(" ", 1)
        return f"{binding} ({stripe_limits.endpoint_limit(method, path, mode):g}/s)"
    return f"{binding} ({stripe_limits.limit(binding).rate(mode):g}/s)"


def step_rows(steps: Sequence[StepFigures]) -> list[tuple[str, object, str]]:
    """``step wall time (s) / failed`` rows."""
    return [
        (f"{step.name} wall time (s) / failed", f"{step.seconds:.3f} / {step.failed}", "")
        for step in steps
    ]


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
