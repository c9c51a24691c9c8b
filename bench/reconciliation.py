"""Reconciliation of a large payment split run: list calls, wall time, findings.

Pays N debited orders (plan + execute, as ``payment_split.py`` does), then runs the run's
``reconcile`` step: Stripe's transfers are read by creation window (100 a page) and Mirakl's
orders by id (100 per OR11 call), never one call per item. Then ``--tamper`` percent of the
ledger rows get a wrong amount and the step runs again: every one of them must be reported.

    PYTHONPATH=include python bench/reconciliation.py --orders 10000
"""

from __future__ import annotations

import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import base_parser, open_world, print_table  # noqa: E402
from sqlalchemy import update  # noqa: E402

from mirakl_connector.ledger import TransferStatus, TransferType, schema  # noqa: E402
from mirakl_connector.operations.first_run import GoLive
from mirakl_connector.reconciliation import flows  # noqa: E402
from mirakl_connector.reconciliation.workflow import Reconciliation
from mirakl_connector.stripe.payment_split import PaymentSplit, PaymentSplitSettings

BENCH_GO_LIVE = GoLive(datetime(2000, 1, 1, tzinfo=UTC))
RUN_ID = "bench"


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--shops", type=int, default=20)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--tamper", type=float, default=1.0, help="percent of rows to alter")
    args = parser.parse_args(argv)

    with open_world(args) as w:
        w.admin.generate(orders=args.orders, shops=args.shops, currency="EUR", seed=args.seed)
        w.map_generated_accounts()
        settings = PaymentSplitSettings(execute_shards=args.shards)

        def split() -> PaymentSplit:
            return PaymentSplit(
                mirakl=w.mirakl(), stripe=w.stripe(args.rate_limit / args.shards),
                ledger=w.ledger, go_live=BENCH_GO_LIVE, settings=settings, run_id=RUN_ID,
            )  # fmt: skip

        split().plan()
        with ThreadPoolExecutor(max_workers=args.shards) as pool:
            list(pool.map(lambda i: split().execute(shard=i, shards=args.shards),
                          range(args.shards)))  # fmt: skip
        paid = len(w.admin.transfers())

        def reconcile() -> tuple[dict, float, int, int]:
            stripe, mirakl = w.stripe(), w.mirakl()
            job = Reconciliation(
                ledger=lambda: w.ledger,
                clients=lambda ledger: flows.Clients(
                    stripe=lambda: stripe, mirakl=lambda: mirakl, hyperwallet=lambda: None,
                    refunds=ledger.get_refunds,
                ),
                tax_split=False, hyperwallet_configured=False, run_id=RUN_ID,
                built_clients=lambda: {"stripe": stripe, "mirakl": mirakl},
            )  # fmt: skip
            started = time.perf_counter()
            summary = job.reconcile(flow=flows.PAYMENT_SPLIT)
            took = time.perf_counter() - started
            return (
                dict(summary.counts),
                took,
                sum(stripe.call_counts.values()),
                sum(mirakl.call_counts.values()),
            )

        w.admin.clear_stripe_requests()
        clean, clean_s, clean_stripe, clean_mirakl = reconcile()
        per_item = sum(1 for r in w.admin.stripe_requests(method="GET") if r["path"].count("/") > 2)

        rows = [
            r
            for batch in w.ledger.iter_transfers(
                types=[TransferType.PRODUCT_ORDER], statuses=[TransferStatus.CREATED]
            )
            for r in batch
        ]
        altered = rows[:: max(1, round(100 / args.tamper))] if args.tamper > 0 else []
        with w.ledger.engine.begin() as conn:
            for row in altered:
                conn.execute(
                    update(schema.transfers)
                    .where(schema.transfers.c.id == row.id)
                    .values(amount=row.amount + 1)
                )
        tampered, tampered_s, _, _ = reconcile()

        pages = math.ceil(paid / 100)
        print_table(
            f"Reconciliation of a payment split run: {args.orders:,} orders, Stripe "
            f"{args.rate_limit:g} req/s, {args.latency_ms:g} ms latency",
            [
                ("transfers paid by the run", paid, f"= {args.orders:,}"),
                ("MATCHED (clean run)", clean.get("MATCHED", 0), f"= {paid:,}"),
                ("mismatches (clean run)", sum(clean.values()) - clean.get("MATCHED", 0), "0"),
                ("Stripe calls (transfer list pages)", clean_stripe, f"<= {pages + 1:,}"),
                ("Stripe calls for one object (GET /v1/x/{id})", per_item, "0"),
                ("Mirakl calls (OR11 by 100 ids)", clean_mirakl, f"<= {pages + 1:,}"),
                ("reconcile wall time (s)", clean_s, ""),
                ("rows tampered", len(altered), ""),
                ("AMOUNT_MISMATCH found (Stripe + Mirakl)", tampered.get("AMOUNT_MISMATCH", 0),
                 f"= {2 * len(altered):,}"),
                ("reconcile wall time, tampered (s)", tampered_s, ""),
            ],
        )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
