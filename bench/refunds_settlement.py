"""Throughput of refunds (N refunds → refunds, PA02, reversals) and settlement (N invoices).

Both run the way their DAGs do against the sandbox enforcing Stripe's documented rate limits
(live mode; ``--stripe-mode test``): plan once, then each write step as ``--shards`` mapped
tasks (default: the shards that fill the connector's share of one endpoint, 4), each holding the
``stripe_api`` pool slots a shard takes, with its own clients, paced as the hook paces a task
(``--no-pace`` to see the unpaced figures); the steps follow one another.

* Refunds: ``--refunds`` generated orders, each already split (its transfer made, untimed, with
  the limits off) and with one refund waiting (PA12). One refund (``POST /v1/refunds``) and one
  reversal (``POST /v1/transfers/{id}/reversals``) each: 2 Stripe writes per refund.
* Settlement: ``--invoices`` IV01 invoices; each pays the seller (a payout, ``POST /v1/payouts``
  for the seller's account), credits it (platform → seller transfer) and bills its subscription
  (seller → platform transfer; both ``POST /v1/transfers``): 3 Stripe writes per invoice.

Each step writes to one endpoint, whose 25 requests/s bind (the platform's limits count the
requests made for connected accounts: the stricter reading of docs that say nothing of them);
the bound is the sum of the steps' ``writes / 25`` (the documented limit) or
``writes / (25 x share)`` (the share the tasks pace to, ``--share``, default 0.8).

    PYTHONPATH=include python bench/refunds_settlement.py --refunds 1000 --invoices 1000
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    MIRAKL_KEY,
    STRIPE_KEY,
    Pacing,
    StepFigures,
    World,
    base_parser,
    limits_rows,
    measure_step,
    open_world,
    print_table,
    split_counts,
    step_rows,
)
from mirakl_sandbox.generate import generate_scenario

from mirakl_connector.core.batch import BatchSummary
from mirakl_connector.ledger.records import AccountMapping  # noqa: E402
from mirakl_connector.operations.first_run import GoLive
from mirakl_connector.stripe.payment_split import PaymentSplit, PaymentSplitSettings
from mirakl_connector.stripe.refunds import PaymentRefund, PaymentRefundSettings
from mirakl_connector.stripe.settlement import SellerSettlement, SettlementSettings

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


def run_shards(
    step: Callable[..., BatchSummary], jobs: Sequence[Any], shards: int, running: int
) -> list:
    """``step`` of every job, job ``i`` taking shard ``i`` (the mapped tasks of a run), at most
    ``running`` at once (what the pool lets through)."""
    with ThreadPoolExecutor(max_workers=running) as pool:
        return list(pool.map(lambda i: step(jobs[i], shard=i, shards=shards), range(shards)))


def run_steps(
    w: World, planner: Any, jobs: Sequence[Any], steps: Sequence[str], shards: int, pacing: Pacing
) -> list[StepFigures]:
    """``plan`` on ``planner``, then each write step on every shard, one step after the other as
    in the DAG, each measured (:func:`measure_step`)."""
    figures = [measure_step(w, "plan", lambda: planner.plan().failed_total)]
    for name in steps:

        def run(name: str = name) -> int:
            summaries = run_shards(
                getattr(type(jobs[0]), name), jobs, shards, pacing.running(shards)
            )
            return sum(s.failed_total for s in summaries)

        figures.append(measure_step(w, name, run))
    return figures


def bench_refunds(w: World, args: Any) -> None:
    pacing = Pacing.from_args(args)
    shards = args.shards or pacing.default_shards
    w.admin.reset(refund_scenario(args.refunds, args.shops, args.seed))
    w.map_generated_accounts()
    # The transfers to reverse, made untimed with the limits off.
    w.stripe_limits(False)
    split_jobs = [
        PaymentSplit(mirakl=w.mirakl(), stripe=w.stripe(), ledger=w.ledger,
                     go_live=BENCH_GO_LIVE,
                     settings=PaymentSplitSettings(execute_shards=shards))
        for _ in range(shards)
    ]  # fmt: skip
    split_jobs[0].plan()
    run_shards(PaymentSplit.execute, split_jobs, shards, shards)
    w.stripe_limits(True)
    w.admin.clear_stripe_requests()

    settings = PaymentRefundSettings(execute_shards=shards)
    planner = PaymentRefund(
        mirakl=w.mirakl(), stripe=w.stripe(pacing.task()),
        ledger=w.ledger, go_live=BENCH_GO_LIVE, settings=settings, run_id="bench",
    )  # fmt: skip
    jobs = [
        PaymentRefund(mirakl=w.mirakl(), stripe=w.stripe(pacing.task(pacing.shard_slots)),
                      ledger=w.ledger, go_live=BENCH_GO_LIVE, settings=settings, run_id="bench")
        for _ in range(shards)
    ]  # fmt: skip
    steps = run_steps(w, planner, jobs, ("refund", "reverse"), shards, pacing)

    refunds, reversals = len(w.admin.refunds()), len(w.admin.reversals())
    writes = refunds + reversals
    posts = split_counts(planner.stripe.call_counts)[1] + sum(
        split_counts(j.stripe.call_counts)[1] for j in jobs
    )
    pa02 = len(w.admin.mirakl_calls("PA02"))
    mirakl_calls = sum(planner.mirakl.call_counts.values()) + sum(
        sum(j.mirakl.call_counts.values()) for j in jobs
    )
    print_table(
        f"Refunds: {args.refunds:,} refunds, Stripe {pacing.mode}-mode limits "
        f"(docs.stripe.com/rate-limits), {args.latency_ms:g} ms latency, shards: "
        f"{pacing.describe(shards)}",
        [
            *step_rows(steps),
            ("refunds / reversals in the sandbox", f"{refunds:,} / {reversals:,}",
             f"= {args.refunds:,} / {args.refunds:,}"),
            *limits_rows(steps, pacing),
            ("Stripe POST attempts per write", posts / max(writes, 1), "1"),
            ("PA02 calls (validations)", pa02, ""),
            ("Mirakl calls per run", mirakl_calls, ""),
        ],
    )  # fmt: skip


def bench_settlement(w: World, args: Any) -> None:
    pacing = Pacing.from_args(args)
    shards = args.shards or pacing.default_shards
    w.admin.reset(invoice_scenario(args.invoices, args.shops, args.seed))
    for n in range(1, args.shops + 1):
        w.ledger.upsert_account_mapping(
            AccountMapping(n, f"acct_b{n}", True, True, kyc_status="APPROVED")
        )
    settings = SettlementSettings(execute_shards=shards)
    planner = SellerSettlement(
        mirakl=w.mirakl(), stripe=w.stripe(pacing.task()),
        ledger=w.ledger, go_live=BENCH_GO_LIVE, settings=settings, run_id="bench",
    )  # fmt: skip
    jobs = [
        SellerSettlement(mirakl=w.mirakl(), stripe=w.stripe(pacing.task(pacing.shard_slots)),
                         ledger=w.ledger, go_live=BENCH_GO_LIVE, settings=settings,
                         run_id="bench")
        for _ in range(shards)
    ]  # fmt: skip
    steps = run_steps(w, planner, jobs, ("transfer", "payout"), shards, pacing)

    transfers, payouts = len(w.admin.transfers()), len(w.admin.payouts())
    writes = transfers + payouts
    gets, posts = split_counts(planner.stripe.call_counts)
    for job in jobs:
        g, p = split_counts(job.stripe.call_counts)
        gets, posts = gets + g, posts + p
    print_table(
        f"Seller settlement: {args.invoices:,} invoices, Stripe {pacing.mode}-mode limits "
        f"(docs.stripe.com/rate-limits), {args.latency_ms:g} ms latency, shards: "
        f"{pacing.describe(shards)}",
        [
            *step_rows(steps),
            ("transfers / payouts in the sandbox", f"{transfers:,} / {payouts:,}",
             f"= {2 * args.invoices:,} / {args.invoices:,}"),
            *limits_rows(steps, pacing),
            ("Stripe POST attempts per write", posts / max(writes, 1), "1"),
            ("Stripe GETs (attempts)", gets, ""),
            ("Mirakl calls per run", sum(planner.mirakl.call_counts.values()), ""),
        ],
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0], documented_limits=True)
    parser.add_argument("--refunds", type=int, default=1_000, help="0 skips the refunds bench")
    parser.add_argument("--invoices", type=int, default=1_000, help="0 skips settlement")
    parser.add_argument("--shops", type=int, default=20)
    parser.add_argument("--shards", type=int, default=None, help="default: enough to fill")
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
