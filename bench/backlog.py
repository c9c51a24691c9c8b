"""Backlog cost of the payment split: the full re-read vs the change-driven read (issue 15).

N generated orders, every shop mapped and verified, every order waiting for acceptance: N rows
ON_HOLD after the first run. Then, side by side, the same runs in two ways:

* ``full sweep`` — every waiting row re-read from Mirakl by id (what every run did before; now
  the safety net, ``payment_split.backlog_full_sweep_hours``, forced here by ageing its
  checkpoint);
* ``by change`` — a scheduled run between two sweeps: OR11 by ``start_update_date``, plus the
  rows whose account or payment mapping changed in the ledger.

for an idle run (nothing changed) and a run after 1 % of the backlog was accepted and debited
(a different 1 % for each column, so both pay what changed). Calls are counted at the sandbox.

    PYTHONPATH=include python bench/backlog.py --orders 20000 [--orders 200000]
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import World, base_parser, open_world, print_table  # noqa: E402
from sqlalchemy import text  # noqa: E402

from mirakl_connector.first_run import GoLive  # noqa: E402
from mirakl_connector.ledger.records import TransferType  # noqa: E402
from mirakl_connector.workflows.payment_split import (  # noqa: E402
    FULL_SWEEP_KEYS,
    PaymentSplit,
    PaymentSplitSettings,
)

BENCH_GO_LIVE = GoLive(datetime(2000, 1, 1, tzinfo=UTC))
LONG_AGO = datetime(2001, 1, 1, tzinfo=UTC)
SWEEP_KEY = FULL_SWEEP_KEYS[TransferType.PRODUCT_ORDER]


def _job(w: World) -> PaymentSplit:
    return PaymentSplit(
        mirakl=w.mirakl(), stripe=w.stripe(), ledger=w.ledger, go_live=BENCH_GO_LIVE,
        settings=PaymentSplitSettings(execute_shards=1), run_id="bench",
    )  # fmt: skip


def _measure(w: World, *, full_sweep: bool) -> dict[str, float]:
    """One scheduled run (plan + execute), counted at the sandbox."""
    if full_sweep:
        w.ledger.set_checkpoint(SWEEP_KEY, "2000-01-01T00:00:00+00:00")
    w.admin.clear_mirakl_calls()
    w.admin.clear_stripe_requests()
    transfers = len(w.admin.transfers())
    started = time.perf_counter()
    job = _job(w)
    plan = job.plan()
    job.execute()
    wall = time.perf_counter() - started
    return {
        "Mirakl calls": len(w.admin.mirakl_calls()),
        "provider (Stripe) calls": len(w.admin.stripe_requests()),
        "rows decided": plan.total,
        "transfers created": len(w.admin.transfers()) - transfers,
        "wall time (s)": wall,
    }


def _waiting(order: dict) -> dict:
    lines = [{**ln, "order_line_state": "WAITING_ACCEPTANCE"} for ln in order["order_lines"]]
    return {**order, "order_state": "WAITING_ACCEPTANCE", "order_lines": lines,
            "customer_debited_date": None, "last_updated_date": order["created_date"]}  # fmt: skip


def _accepted(original: dict) -> dict:
    """The original (debited) order, changed now: its update date moves."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {**original, "last_updated_date": now}


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--shops", type=int, default=20)
    args = parser.parse_args(argv)

    with open_world(args) as w:
        w.admin.generate(orders=args.orders, shops=args.shops, currency="EUR", seed=args.seed)
        w.map_generated_accounts()
        # Onboarding mapped these shops long before: their change is not "since the last run"
        # (else the first runs re-read their rows, as they should for a fresh mapping).
        with w.ledger.engine.begin() as conn:
            conn.execute(text("UPDATE account_mappings SET updated_at = :at"), {"at": LONG_AGO})
        originals = {o["order_id"]: o for o in w.admin.orders()}
        ids = sorted(originals)
        for start in range(0, len(ids), 5000):
            w.admin.put_orders([_waiting(originals[i]) for i in ids[start : start + 5000]])

        started = time.perf_counter()
        first = _job(w).plan()
        setup = time.perf_counter() - started
        print(f"first run: {first.counts} in {setup:.1f} s")

        idle_full = _measure(w, full_sweep=True)
        _measure(w, full_sweep=False)  # the sweep's own change window passes
        idle_new = _measure(w, full_sweep=False)

        step = 100  # 1 %
        w.admin.put_orders([_accepted(originals[i]) for i in ids[0::step]])
        changed_new = _measure(w, full_sweep=False)
        w.admin.put_orders([_accepted(originals[i]) for i in ids[1::step]])
        changed_full = _measure(w, full_sweep=True)
        changed = len(ids[0::step])

        rows = []
        for name in idle_new:
            rows.append((f"idle: {name}", idle_full[name], f"by change: {_fmt(idle_new[name])}"))
        for name in changed_new:
            new = f"by change: {_fmt(changed_new[name])}"
            rows.append((f"1 % changed: {name}", changed_full[name], new))
        print_table(
            f"Payment split backlog: {args.orders:,} orders waiting, {changed:,} changed (1 %); "
            f"Mirakl/Stripe latency {args.latency_ms:g} ms; left: full sweep, right: by change "
            f"(target Mirakl calls <= 2 + changed/100 = {2 + changed // 100}, provider calls 0 "
            f"when idle)",
            rows,
        )
    return 0


def _fmt(value: float) -> str:
    return f"{value:,.3f}" if isinstance(value, float) else f"{value:,}"


if __name__ == "__main__":
    sys.exit(main())
