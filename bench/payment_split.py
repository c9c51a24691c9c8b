"""Throughput of the payment split: N debited orders against a rate-limited, slow sandbox.

Plan once, then run ``execute`` the way the DAG does: ``--shards`` mapped tasks at the same time
(default 8, ``payment_split.execute_shards: 8``), each with its own clients, paced to an equal
share of the rate limit (``--no-pace`` to see the unpaced figures). The bound is what the Stripe
rate limit allows for one write per order: ``orders / rate limit`` seconds.

    PYTHONPATH=include python bench/payment_split.py --orders 10000
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    add_pace_argument,
    base_parser,
    open_world,
    print_table,
    split_counts,
)

from mirakl_connector.first_run import GoLive  # noqa: E402
from mirakl_connector.workflows.payment_split import (  # noqa: E402
    PaymentSplit,
    PaymentSplitSettings,
)

#: The generated orders and invoices are all after this explicit go-live instant.
BENCH_GO_LIVE = GoLive(datetime(2000, 1, 1, tzinfo=UTC))


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    add_pace_argument(parser)
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--shops", type=int, default=20)
    parser.add_argument("--shards", type=int, default=8)
    args = parser.parse_args(argv)

    with open_world(args) as w:
        w.admin.generate(orders=args.orders, shops=args.shops, currency="EUR", seed=args.seed)
        w.map_generated_accounts()
        settings = PaymentSplitSettings(execute_shards=args.shards)
        # Paced like a deployment would: plan runs alone (the whole budget), the shards at once
        # (an equal share each).
        plan_pace = args.rate_limit if args.pace else None
        shard_pace = args.rate_limit / args.shards if args.pace else None
        mirakl, stripe = w.mirakl(), w.stripe(plan_pace)
        planner = PaymentSplit(
            mirakl=mirakl,
            stripe=stripe,
            ledger=w.ledger,
            go_live=BENCH_GO_LIVE,
            settings=settings,
            run_id="bench",
        )

        started = time.perf_counter()
        planned = planner.plan()
        plan_s = time.perf_counter() - started

        jobs = [
            PaymentSplit(
                mirakl=w.mirakl(), stripe=w.stripe(shard_pace), ledger=w.ledger,
                go_live=BENCH_GO_LIVE,
                settings=settings, run_id="bench",
            )
            for _ in range(args.shards)
        ]  # fmt: skip
        exec_started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.shards) as pool:
            summaries = list(
                pool.map(lambda i: jobs[i].execute(shard=i, shards=args.shards), range(args.shards))
            )
        exec_s = time.perf_counter() - exec_started
        wall = time.perf_counter() - started

        created = sum(s.counts.get("TRANSFER_CREATED", 0) for s in summaries)
        failed = sum(s.failed_total for s in summaries)
        transfers = len(w.admin.transfers())
        plan_gets, plan_posts = split_counts(stripe.call_counts)
        exec_gets = exec_posts = 0
        for job in jobs:
            gets, posts = split_counts(job.stripe.call_counts)
            exec_gets, exec_posts = exec_gets + gets, exec_posts + posts
        mirakl_calls = sum(mirakl.call_counts.values()) + sum(
            sum(j.mirakl.call_counts.values()) for j in jobs
        )
        bound = args.orders / args.rate_limit
        per = max(created, 1)
        print_table(
            f"Payment split: {args.orders:,} orders, Stripe {args.rate_limit:g} req/s, "
            f"{args.latency_ms:g} ms latency, {args.shards} execute shards, "
            f"{'paced' if args.pace else 'not paced'}",
            [
                ("planned PENDING", planned.counts.get("TRANSFER_PENDING", 0), ""),
                ("transfers created (ledger)", created, f"= {args.orders:,}"),
                ("transfers in the sandbox", transfers, f"= {args.orders:,}"),
                ("failed items", failed, "0"),
                ("plan wall time (s)", plan_s, ""),
                ("execute wall time (s)", exec_s, ""),
                ("total wall time (s)", wall, ""),
                ("bound = orders / rate limit (s)", bound, ""),
                ("ratio wall / bound", wall / bound, "<= 1.15"),
                ("Stripe GETs per transfer", (plan_gets + exec_gets) / per, ""),
                ("Stripe POSTs per transfer (attempts)", (plan_posts + exec_posts) / per, "1"),
                ("Stripe writes per transfer (sandbox)", transfers / per, "exactly 1"),
                ("Stripe 429 answers", w.stripe_429s(), ""),
                ("Mirakl calls per run", mirakl_calls, f"<= {args.orders // 100 + 2:,}"),
            ],
        )
        print(f"Stripe calls: plan {dict(stripe.call_counts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
