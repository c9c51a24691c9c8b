"""Throughput of refunds (N refunds → refunds, PA02, reversals) and settlement (N invoices).

Both run the way their DAGs do: plan once, then each write step as ``--shards`` mapped tasks at
the same time, each with its own clients, paced to an equal share of the Stripe rate limit
(``--no-pace`` to see the unpaced figures); the steps follow one another.

* Refunds: ``--refunds`` generated orders, each already split (its transfer made, untimed) and
  with one refund waiting (PA12). One refund and one reversal each: 2 Stripe writes per refund.
* Settlement: ``--invoices`` IV01 invoices; each pays the seller (a payout), credits it
  (platform → seller transfer) and bills its subscription (seller → platform transfer): 3
  Stripe writes per invoice.

The bound of each is ``Stripe writes / rate limit``.

    PYTHONPATH=include python bench/refunds_settlement.py --refunds 1000 --invoices 1000
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    MIRAKL_KEY,
    STRIPE_KEY,
    World,
    add_pace_argument,
    base_parser,
    open_world,
    print_table,
    split_counts,
)

from mirakl_connector.batch import BatchSummary  # noqa: E402
from mirakl_connector.first_run import GoLive  # noqa: E402
from mirakl_connector.ledger.records import AccountMapping  # noqa: E402
from mirakl_connector.sandbox.generate import generate_scenario  # noqa: E402
from mirakl_connector.workflows.payment_split import (  # noqa: E402
    PaymentSplit,
    PaymentSplitSettings,
)
from mirakl_connector.workflows.refunds import PaymentRefund, PaymentRefundSettings  # noqa: E402
from mirakl_connector.workflows.settlement import (  # noqa: E402
    SellerSettlement,
    SettlementSettings,
)

#: The generated orders and invoices are all after this explicit go-live instant.
BENCH_GO_LIVE = GoLive(datetime(2000, 1, 1, tzinfo=UTC))


def invoice_scenario(invoices: int, shops: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    docs = []
    for i in range(invoices):
        day, second = divmod(i, 1000)
        docs.append(
            {
                "id": 10_000 + i,
                "invoice_id": 1 + i,
                "shop_id": 1 + i % shops,
                "currency_iso_code": "EUR",
                "date_created": f"2026-10-{1 + day % 28:02d}T{second // 60 % 24:02d}:"
                f"{second % 60:02d}:00Z",
                "summary": {
                    "amount_transferred": rng.randint(1_000, 90_000) / 100,
                    "total_subscription_incl_tax": -9.99,
                    "total_other_credits_incl_tax": rng.randint(100, 5_000) / 100,
                    "total_other_invoices_incl_tax": 0,
                },
            }
        )
    return {
        "mirakl": {"api_key": MIRAKL_KEY, "invoices": docs},
        "stripe": {
            "api_key": STRIPE_KEY,
            "platform_account": {"id": "acct_platform"},
            "accounts": [
                {"id": f"acct_b{n}", "charges_enabled": True, "payouts_enabled": True}
                for n in range(1, shops + 1)
            ],
            "platform_balance": {"eur": 10**12},
            # Sellers hold funds: a payout or fee transfer from an empty balance waits (the
            # sandbox follows Stripe's balance_insufficient), which this bench does not measure.
            "balances": {f"acct_b{n}": {"eur": 10**12} for n in range(1, shops + 1)},
        },
    }


def refund_scenario(refunds: int, shops: int, seed: int) -> dict[str, Any]:
    """Generated paid orders, each with one refund of a tenth of its line (commission 10%)."""
    scenario = generate_scenario(orders=refunds, shops=shops, currency="EUR", seed=seed)
    for order in scenario["mirakl"]["orders"]:
        line = order["order_lines"][0]
        amount = round(line["total_price"] / 10, 2)
        line["refunds"] = [
            {
                "id": f"R-{order['order_id']}",
                "amount": amount,
                "commission_total_amount": round(amount / 10, 2),
                "shipping_taxes": [],
                "taxes": [],
            }
        ]
    return scenario


def run_shards(step: Callable[..., BatchSummary], jobs: Sequence[Any], shards: int) -> list:
    """``step`` of every job at once, job ``i`` taking shard ``i`` (the mapped tasks of a run)."""
    with ThreadPoolExecutor(max_workers=shards) as pool:
        return list(pool.map(lambda i: step(jobs[i], shard=i, shards=shards), range(shards)))


def run_steps(
    planner: Any, jobs: Sequence[Any], steps: Sequence[str], shards: int
) -> tuple[dict[str, tuple[float, int]], float]:
    """``plan`` on ``planner``, then each write step on every shard at once, one step after the
    other as in the DAG: ``({step: (seconds, failed items)}, total seconds)``."""
    times: dict[str, tuple[float, int]] = {}
    started = time.perf_counter()
    plan = planner.plan()
    times["plan"] = (time.perf_counter() - started, plan.failed_total)
    for name in steps:
        t0 = time.perf_counter()
        summaries = run_shards(getattr(type(jobs[0]), name), jobs, shards)
        times[name] = (time.perf_counter() - t0, sum(s.failed_total for s in summaries))
    return times, time.perf_counter() - started


def bench_refunds(w: World, args: Any) -> None:
    w.admin.reset(refund_scenario(args.refunds, args.shops, args.seed))
    w.map_generated_accounts()
    pace = args.rate_limit / args.shards if args.pace else None
    split_jobs = [
        PaymentSplit(mirakl=w.mirakl(), stripe=w.stripe(pace), ledger=w.ledger,
                     go_live=BENCH_GO_LIVE,
                     settings=PaymentSplitSettings(execute_shards=args.shards))
        for _ in range(args.shards)
    ]  # fmt: skip
    split_jobs[0].plan()
    run_shards(PaymentSplit.execute, split_jobs, args.shards)  # the transfers to reverse (untimed)
    w.admin.clear_stripe_requests()

    settings = PaymentRefundSettings(execute_shards=args.shards)
    planner = PaymentRefund(
        mirakl=w.mirakl(), stripe=w.stripe(args.rate_limit if args.pace else None),
        ledger=w.ledger, go_live=BENCH_GO_LIVE, settings=settings, run_id="bench",
    )  # fmt: skip
    jobs = [
        PaymentRefund(mirakl=w.mirakl(), stripe=w.stripe(pace), ledger=w.ledger,
                      go_live=BENCH_GO_LIVE,
                      settings=settings, run_id="bench")
        for _ in range(args.shards)
    ]  # fmt: skip
    times, wall = run_steps(planner, jobs, ("refund", "reverse"), args.shards)

    refunds, reversals = len(w.admin.refunds()), len(w.admin.reversals())
    writes = refunds + reversals
    posts = split_counts(planner.stripe.call_counts)[1] + sum(
        split_counts(j.stripe.call_counts)[1] for j in jobs
    )
    pa02 = len(w.admin.mirakl_calls("PA02"))
    mirakl_calls = sum(planner.mirakl.call_counts.values()) + sum(
        sum(j.mirakl.call_counts.values()) for j in jobs
    )
    bound = writes / args.rate_limit
    print_table(
        f"Refunds: {args.refunds:,} refunds, Stripe {args.rate_limit:g} req/s, "
        f"{args.latency_ms:g} ms latency, {args.shards} shards, "
        f"{'paced' if args.pace else 'not paced'}",
        [
            *[(f"{step} wall time (s) / failed", f"{t:.3f} / {n}", "") for step, (t, n) in
              times.items()],
            ("refunds / reversals in the sandbox", f"{refunds:,} / {reversals:,}",
             f"= {args.refunds:,} / {args.refunds:,}"),
            ("total wall time (s)", wall, ""),
            ("bound = Stripe writes / rate limit (s)", bound, ""),
            ("ratio wall / bound", wall / bound if bound else 0.0, "<= 1.15"),
            ("Stripe POST attempts per write", posts / max(writes, 1), "1"),
            ("Stripe 429 answers", w.stripe_429s(), ""),
            ("PA02 calls (validations)", pa02, ""),
            ("Mirakl calls per run", mirakl_calls, ""),
        ],
    )  # fmt: skip


def bench_settlement(w: World, args: Any) -> None:
    w.admin.reset(invoice_scenario(args.invoices, args.shops, args.seed))
    for n in range(1, args.shops + 1):
        w.ledger.upsert_account_mapping(
            AccountMapping(n, f"acct_b{n}", True, True, kyc_status="APPROVED")
        )
    settings = SettlementSettings(execute_shards=args.shards)
    pace = args.rate_limit / args.shards if args.pace else None
    planner = SellerSettlement(
        mirakl=w.mirakl(), stripe=w.stripe(args.rate_limit if args.pace else None),
        ledger=w.ledger, go_live=BENCH_GO_LIVE, settings=settings, run_id="bench",
    )  # fmt: skip
    jobs = [
        SellerSettlement(mirakl=w.mirakl(), stripe=w.stripe(pace), ledger=w.ledger,
                         go_live=BENCH_GO_LIVE,
                         settings=settings, run_id="bench")
        for _ in range(args.shards)
    ]  # fmt: skip
    times, wall = run_steps(planner, jobs, ("transfer", "payout"), args.shards)

    transfers, payouts = len(w.admin.transfers()), len(w.admin.payouts())
    writes = transfers + payouts
    gets, posts = split_counts(planner.stripe.call_counts)
    for job in jobs:
        g, p = split_counts(job.stripe.call_counts)
        gets, posts = gets + g, posts + p
    bound = writes / args.rate_limit
    print_table(
        f"Seller settlement: {args.invoices:,} invoices, Stripe {args.rate_limit:g} req/s, "
        f"{args.latency_ms:g} ms latency, {args.shards} shards, "
        f"{'paced' if args.pace else 'not paced'}",
        [
            *[(f"{step} wall time (s) / failed", f"{t:.3f} / {n}", "") for step, (t, n) in
              times.items()],
            ("transfers / payouts in the sandbox", f"{transfers:,} / {payouts:,}",
             f"= {2 * args.invoices:,} / {args.invoices:,}"),
            ("total wall time (s)", wall, ""),
            ("bound = Stripe writes / rate limit (s)", bound, ""),
            ("ratio wall / bound", wall / bound if bound else 0.0, "<= 1.15"),
            ("Stripe POST attempts per write", posts / max(writes, 1), "1"),
            ("Stripe 429 answers", w.stripe_429s(), ""),
            ("Stripe GETs", gets, ""),
            ("Mirakl calls per run", sum(planner.mirakl.call_counts.values()), ""),
        ],
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    add_pace_argument(parser)
    parser.add_argument("--refunds", type=int, default=1_000, help="0 skips the refunds bench")
    parser.add_argument("--invoices", type=int, default=1_000, help="0 skips settlement")
    parser.add_argument("--shops", type=int, default=20)
    parser.add_argument("--shards", type=int, default=8)
    args = parser.parse_args(argv)
    if args.refunds:
        with open_world(args) as w:
            bench_refunds(w, args)
    if args.invoices:
        with open_world(args) as w:
            bench_settlement(w, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
