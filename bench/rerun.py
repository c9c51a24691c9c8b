"""A rerun of a finished payment split batch: what it costs and what it writes (nothing).

Clearing a finished DAG run re-runs plan and execute over the same orders. Every row is already
CREATED, so the rerun must make no Stripe write and send no Mirakl write; this prints the writes
seen by the sandbox during the rerun and how long it took.

    PYTHONPATH=include python bench/rerun.py --orders 2000
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import base_parser, open_world, print_table, split_counts  # noqa: E402

from mirakl_connector.mirakl.orders import parse_mirakl_datetime  # noqa: E402
from mirakl_connector.operations.first_run import GoLive
from mirakl_connector.stripe.payment_split import PaymentSplit, PaymentSplitSettings

#: The generated orders and invoices are all after this explicit go-live instant.
BENCH_GO_LIVE = GoLive(datetime(2000, 1, 1, tzinfo=UTC))


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2_000)
    args = parser.parse_args(argv)

    with open_world(args) as w:
        w.admin.generate(orders=args.orders, shops=20, currency="EUR", seed=args.seed)
        w.map_generated_accounts()
        since = "2026-10-01T00:00:00Z"

        def job() -> PaymentSplit:
            return PaymentSplit(
                mirakl=w.mirakl(), stripe=w.stripe(), ledger=w.ledger, go_live=BENCH_GO_LIVE,
                settings=PaymentSplitSettings(), run_id="bench-rerun",
            )  # fmt: skip

        first = job()
        first.plan()
        first_exec = first.execute()
        before = len(w.admin.transfers())
        w.admin.clear_stripe_requests()
        w.admin.clear_mirakl_calls()

        # The rerun: a cleared run re-reads the same window (checkpoint override) and executes.
        again = job()
        started = time.perf_counter()
        planned = again.plan(since=parse_mirakl_datetime(since))
        executed = again.execute()
        wall = time.perf_counter() - started

        posts = w.admin.stripe_requests(method="POST")
        mirakl_writes = [c for c in w.admin.mirakl_calls() if c.get("method") != "GET"]
        gets, _ = split_counts(again.stripe.call_counts)
        print_table(
            f"Rerun of a finished batch of {args.orders:,} orders "
            f"(Stripe {args.rate_limit:g} req/s, {args.latency_ms:g} ms latency)",
            [
                ("transfers after the first run", before, f"= {args.orders:,}"),
                ("first run CREATED", first_exec.counts.get("TRANSFER_CREATED", 0), ""),
                ("rerun: rows decided again by plan", planned.total, "0"),
                ("rerun: rows sent by execute", executed.total, "0"),
                ("rerun: Stripe POSTs (provider writes)", len(posts), "0"),
                ("rerun: Mirakl writes", len(mirakl_writes), "0"),
                ("rerun: Stripe GETs", gets, ""),
                ("rerun: Mirakl calls", sum(again.mirakl.call_counts.values()), ""),
                ("transfers after the rerun", len(w.admin.transfers()), f"= {before:,}"),
                ("rerun wall time (s)", wall, ""),
            ],
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
