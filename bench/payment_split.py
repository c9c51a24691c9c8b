"""Throughput of the payment split: N debited orders against the sandbox enforcing Stripe's
documented rate limits.

Plan once, then run ``execute`` the way the DAG does: ``--shards`` mapped tasks (default: the
shards that fill the connector's share of one endpoint, 4), each holding the ``stripe_api`` pool
slots a shard takes, with its own clients, paced as the hook paces a task against Stripe
(``stripe_limits.task_pacing``). The sandbox enforces the live-mode limits (``--stripe-mode
test`` for the sandbox's); every transfer is a ``POST /v1/transfers``, so the bound is
``transfers / 25`` seconds at the documented limit and ``transfers / (25 x share)`` at the
share the tasks pace to (``--share``, default 0.8; ``--share 1`` paces to the whole limit).

    PYTHONPATH=include python bench/payment_split.py --orders 2500
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    Pacing,
    base_parser,
    limits_rows,
    measure_step,
    open_world,
    print_table,
    split_counts,
    step_rows,
)

from mirakl_connector.operations.first_run import GoLive
from mirakl_connector.stripe.payment_split import PaymentSplit, PaymentSplitSettings

#: The generated orders and invoices are all after this explicit go-live instant.
BENCH_GO_LIVE = GoLive(datetime(2000, 1, 1, tzinfo=UTC))


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0], documented_limits=True)
    parser.add_argument("--orders", type=int, default=2_500)
    parser.add_argument("--shops", type=int, default=20)
    parser.add_argument("--shards", type=int, default=None, help="default: enough to fill")
    args = parser.parse_args(argv)
    pacing = Pacing.from_args(args)
    shards = args.shards or pacing.default_shards

    with open_world(args) as w:
        w.admin.generate(orders=args.orders, shops=args.shops, currency="EUR", seed=args.seed)
        w.map_generated_accounts()
        settings = PaymentSplitSettings(execute_shards=shards)
        # Paced like a deployment: plan is one task (one slot), each shard holds shard_slots.
        mirakl, stripe = w.mirakl(), w.stripe(pacing.task())
        planner = PaymentSplit(
            mirakl=mirakl,
            stripe=stripe,
            ledger=w.ledger,
            go_live=BENCH_GO_LIVE,
            settings=settings,
            run_id="bench",
        )
        jobs = [
            PaymentSplit(
                mirakl=w.mirakl(), stripe=w.stripe(pacing.task(pacing.shard_slots)),
                ledger=w.ledger, go_live=BENCH_GO_LIVE, settings=settings, run_id="bench",
            )
            for _ in range(shards)
        ]  # fmt: skip
        summaries: list = []

        def plan() -> int:
            summary = planner.plan()
            summaries.append(summary)
            return summary.failed_total

        def execute() -> int:
            with ThreadPoolExecutor(max_workers=pacing.running(shards)) as pool:
                done = list(pool.map(lambda i: jobs[i].execute(shard=i, shards=shards),
                                     range(shards)))  # fmt: skip
            summaries.extend(done)
            return sum(s.failed_total for s in done)

        steps = [measure_step(w, "plan", plan), measure_step(w, "execute", execute)]

        planned = summaries[0]
        created = sum(s.counts.get("TRANSFER_CREATED", 0) for s in summaries[1:])
        transfers = len(w.admin.transfers())
        plan_gets, plan_posts = split_counts(stripe.call_counts)
        exec_gets = exec_posts = 0
        for job in jobs:
            gets, posts = split_counts(job.stripe.call_counts)
            exec_gets, exec_posts = exec_gets + gets, exec_posts + posts
        mirakl_calls = sum(mirakl.call_counts.values()) + sum(
            sum(j.mirakl.call_counts.values()) for j in jobs
        )
        per = max(created, 1)
        print_table(
            f"Payment split: {args.orders:,} orders, Stripe {pacing.mode}-mode limits "
            f"(docs.stripe.com/rate-limits), {args.latency_ms:g} ms latency, execute shards: "
            f"{pacing.describe(shards)}",
            [
                ("planned PENDING", planned.counts.get("TRANSFER_PENDING", 0), ""),
                ("transfers created (ledger)", created, f"= {args.orders:,}"),
                ("transfers in the sandbox", transfers, f"= {args.orders:,}"),
                ("failed items", sum(step.failed for step in steps), "0"),
                *step_rows(steps),
                *limits_rows(steps, pacing),
                ("Stripe GETs per transfer", (plan_gets + exec_gets) / per, ""),
                ("Stripe POSTs per transfer (attempts)", (plan_posts + exec_posts) / per, "1"),
                ("Stripe writes per transfer (sandbox)", transfers / per, "exactly 1"),
                ("Mirakl calls per run", mirakl_calls, f"<= {args.orders // 100 + 2:,}"),
            ],
        )
        print(f"Stripe calls: plan {dict(stripe.call_counts)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
