"""Throughput of seller settlement: N Mirakl invoices (IV01) → transfers and payouts.

Each generated invoice pays the seller (a payout), credits it (platform → seller transfer) and
bills its subscription (seller → platform transfer), so one invoice is up to three Stripe writes.
The bound is ``Stripe writes / rate limit``; the steps run one after the other, as in the DAG.

    PYTHONPATH=include python bench/refunds_settlement.py --invoices 1000
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import MIRAKL_KEY, STRIPE_KEY, base_parser, open_world, print_table, split_counts  # noqa: E402, I001

from mirakl_connector.ledger.records import AccountMapping  # noqa: E402
from mirakl_connector.workflows.settlement import SellerSettlement, SettlementSettings  # noqa: E402


def scenario(invoices: int, shops: int, seed: int) -> dict:
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
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=1_000)
    parser.add_argument("--shops", type=int, default=20)
    args = parser.parse_args(argv)

    with open_world(args) as w:
        w.admin.reset(scenario(args.invoices, args.shops, args.seed))
        for n in range(1, args.shops + 1):
            w.ledger.upsert_account_mapping(AccountMapping(n, f"acct_b{n}", True, True))
        mirakl, stripe = w.mirakl(), w.stripe()
        job = SellerSettlement(
            mirakl=mirakl, stripe=stripe, ledger=w.ledger, settings=SettlementSettings(),
            run_id="bench",
        )  # fmt: skip
        times = {}
        started = time.perf_counter()
        for step in ("plan", "transfer", "payout"):
            t0 = time.perf_counter()
            summary = getattr(job, step)()
            times[step] = (time.perf_counter() - t0, summary)
        wall = time.perf_counter() - started
        transfers, payouts = len(w.admin.transfers()), len(w.admin.payouts())
        writes = transfers + payouts
        gets, posts = split_counts(stripe.call_counts)
        bound = writes / args.rate_limit
        print_table(
            f"Seller settlement: {args.invoices:,} invoices, Stripe {args.rate_limit:g} req/s, "
            f"{args.latency_ms:g} ms latency",
            [
                *[
                    (f"{step} wall time (s) / failed", f"{t:.3f} / {s.failed_total}", "")
                    for step, (t, s) in times.items()
                ],
                ("transfers / payouts in the sandbox", f"{transfers:,} / {payouts:,}", ""),
                ("total wall time (s)", wall, ""),
                ("bound = Stripe writes / rate limit (s)", bound, ""),
                ("ratio wall / bound", wall / bound if bound else 0.0, "<= 1.15"),
                ("Stripe POST attempts per write", posts / max(writes, 1), "1"),
                ("Stripe GETs", gets, ""),
                ("Mirakl calls per run", sum(mirakl.call_counts.values()), ""),
            ],
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
