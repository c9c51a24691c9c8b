"""Exactly once under faults, at scale: split, refunds, settlement, Hyperwallet; faults and a kill.

Each workflow meets 10 % failing calls on every API it uses (5xx, 429, timeouts; Stripe and
Hyperwallet also lose 3 % of their answers after doing the work), on top of the usual rate limit
and latency. Its first DAG run has one task killed with SIGKILL mid-batch (split: execute;
refunds: refund; settlement: payout; Hyperwallet: pay); the DAG is then rerun until every item
is done. The refunds are asked on orders the split has just paid; the invoices are the generated
shops', settled on Stripe, then paid through Hyperwallet as another marketplace would. The
clients try each call twice and time out after 1 s, so faults outlive the client's retries and
reach the workflows' recovery.

Per workflow the table shows the faults the sandbox injected per API, the DAG runs and failed
task tries it took, the objects in the sandbox against the expected ones, the duplicates and the
ledger/sandbox mismatches (amount, id, account, status; target 0 both), and the wall time.

    PYTHONPATH=include python bench/faults.py --orders 2000 --refunds 300 --invoices 300
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import base_parser, open_world, print_table  # noqa: E402, I001

from mirakl_connector.core.retry import RetryPolicy
from mirakl_sandbox.fault_audit import (
    Audit,
    FaultRun,
    audit_hyperwallet_payments,
    audit_order_transfers,
    audit_refunds,
    audit_settlement,
    fault_config,
    injected_faults,
    problems,
)
from mirakl_sandbox.generate import add_line_refunds, generate_invoices, hyperwallet_sellers
from mirakl_sandbox.hyperwallet_admin import HyperwalletSandboxAdmin


def exercise(
    w,
    args,
    seed: int,
    workflow: str,
    kill_step: str,
    killed_when: Callable[[], bool],
    audit: Callable[[], list[Audit]],
    provider: str = "stripe",
    config: dict | None = None,
) -> list[tuple[str, object, str]]:
    """Run ``workflow`` through the faults, its first run killed mid-``kill_step``, then rerun
    it until the audits are clean; return its rows of the table.

    Each workflow gets its own fault ``seed``: with the same one, the same few Mirakl calls of
    each workflow would fail.
    """
    run = FaultRun(
        w.url, w.ledger, f"sqlite:///{w.workdir / 'ledger.db'}", workflow, config or {},
        retry=RetryPolicy(max_attempts=2, max_elapsed=10, base_delay=0.05, max_delay=0.5),
        timeout=1.0,
    )  # fmt: skip
    faults = fault_config(args.fault_rate, seed=seed)
    faults["stripe"].update(rate_limit_per_second=args.rate_limit, latency_ms=args.latency_ms)
    faults["mirakl"]["latency_ms"] = faults["hyperwallet"]["latency_ms"] = args.latency_ms
    w.admin.clear_stripe_requests()
    w.admin.clear_mirakl_calls()
    w.admin.set_faults(faults)
    started = time.perf_counter()
    run.run_killed(kill_step, killed_when, poll=0.25, deadline=600)
    settled = run.rerun_until(lambda: not problems(audit()), max_runs=args.max_runs)
    wall = time.perf_counter() - started
    seen = injected_faults(w.admin)
    w.admin.clear_faults()
    audits = audit()

    def per_kind(values: Callable[[Audit], object]) -> str:
        return " / ".join(str(values(a)) for a in audits)

    kinds = " / ".join(a.kind for a in audits)
    return [
        (f"{workflow}: injected faults Mirakl", _faults(seen["mirakl"]), ""),
        (f"{workflow}: injected faults {provider.title()}", _faults(seen[provider]), ""),
        (f"{workflow}: DAG runs (1 killed) / failed task tries", f"{run.runs} / "
         f"{run.failed_tasks}", "settled" if settled else "NOT SETTLED"),
        (f"{workflow}: {kinds} in the sandbox", per_kind(lambda a: a.found),
         f"= {per_kind(lambda a: a.expected)}"),
        (f"{workflow}: duplicates", per_kind(lambda a: sum(a.duplicates.values())), "0"),
        (f"{workflow}: missing / ledger-sandbox mismatches", per_kind(
            lambda a: f"{len(a.missing)}+{len(a.mismatches)}"), "0+0"),
        (f"{workflow}: wall time (s)", wall, ""),
    ]  # fmt: skip


_SHORT = {"error": "5xx", "rate_limit": "429", "timeout": "timeouts", "lost_response": "lost"}


def _faults(counts) -> str:
    kinds = ", ".join(f"{n} {_SHORT.get(kind, kind)}" for kind, n in sorted(counts.items()))
    return f"{sum(counts.values())}: {kinds}" if counts else "0"


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2_000)
    parser.add_argument("--refunds", type=int, default=300)
    parser.add_argument("--invoices", type=int, default=300)
    parser.add_argument("--shops", type=int, default=20)
    parser.add_argument("--fault-rate", type=float, default=0.10)
    parser.add_argument("--max-runs", type=int, default=10)
    args = parser.parse_args(argv)
    # Failed items are expected here (the table counts what became of them): no log lines.
    logging.getLogger("mirakl_connector").setLevel(logging.CRITICAL)

    with open_world(args) as w:
        w.admin.generate(orders=args.orders, shops=args.shops, currency="EUR", seed=args.seed)
        w.map_generated_accounts()
        rows = exercise(
            w, args, args.seed, "payment_split", "execute",
            lambda: len(w.admin.transfers()) >= args.orders // 4,
            lambda: [audit_order_transfers(w.admin, w.ledger)],
        )  # fmt: skip
        w.admin.put_orders(add_line_refunds(w.admin.orders(), args.refunds, seed=args.seed))
        rows += exercise(
            w, args, args.seed + 1, "payment_refund", "refund",
            lambda: len(w.admin.refunds()) >= args.refunds // 4,
            lambda: audit_refunds(w.admin, w.ledger),
        )  # fmt: skip
        # Dated up to now: the Hyperwallet run reads the invoices of the last days.
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        invoices = generate_invoices(args.invoices, args.shops, seed=args.seed, end=now)
        w.admin.load({"mirakl": {"invoices": invoices}})
        rows += exercise(
            w, args, args.seed + 2, "seller_settlement", "payout",
            lambda: len(w.admin.payouts()) >= args.invoices // 4,
            lambda: audit_settlement(w.admin, w.ledger),
        )  # fmt: skip
        # The same invoices, as a marketplace paying its sellers through Hyperwallet would.
        scenario, config = hyperwallet_sellers(args.shops)
        w.admin.load(scenario)
        hyperwallet = HyperwalletSandboxAdmin(w.url)
        rows += exercise(
            w, args, args.seed + 3, "hyperwallet_invoice_payments", "pay",
            lambda: len(hyperwallet.payments()) >= args.invoices // 2,
            lambda: audit_hyperwallet_payments(w.admin, w.ledger),
            provider="hyperwallet", config=config,
        )  # fmt: skip
        hyperwallet.close()
        print_table(
            f"Exactly once under faults: {args.orders:,} orders, {args.refunds:,} refunds, "
            f"{args.invoices:,} invoices (Stripe, then Hyperwallet); {args.fault_rate:.0%} "
            f"failing calls, one SIGKILL per workflow; Stripe {args.rate_limit:g} req/s, "
            f"{args.latency_ms:g} ms latency",
            rows,
        )
        bad = [p for p in rows if p[2] == "NOT SETTLED"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
