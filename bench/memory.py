"""Peak memory of the payment split over N orders (default 100,000).

The sandbox runs in its own process (its 100,000 orders would otherwise count against us), with
no rate limit or latency: this measures memory, not speed. Plan streams OR11 page by page and
decides a chunk of 100 at a time; execute walks the ledger 100 rows at a time; neither should
hold the batch in memory. Peak RSS is ``resource.getrusage`` of this process.

    PYTHONPATH=include python bench/memory.py --orders 100000
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import open_world, print_table  # noqa: E402

from mirakl_connector.operations.first_run import GoLive
from mirakl_connector.stripe.payment_split import PaymentSplit, PaymentSplitSettings

#: The generated orders and invoices are all after this explicit go-live instant.
BENCH_GO_LIVE = GoLive(datetime(2000, 1, 1, tzinfo=UTC))


def peak_rss_mb() -> float:
    # ru_maxrss is KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--shards", type=int, default=8, help="execute threads (shards)")
    args = parser.parse_args(argv)

    # The sandbox runs in its own process (open_world): its 100,000 orders are not counted.
    opts = SimpleNamespace(url=None, rate_limit=None, latency_ms=0, seed=1)
    with open_world(opts) as w:
        w.admin.generate(orders=args.orders, shops=20, currency="EUR", seed=1)
        w.map_generated_accounts()
        baseline = peak_rss_mb()
        settings = PaymentSplitSettings(execute_shards=args.shards)
        started = time.perf_counter()
        planner = PaymentSplit(
            mirakl=w.mirakl(),
            stripe=w.stripe(),
            ledger=w.ledger,
            go_live=BENCH_GO_LIVE,
            settings=settings,
        )
        planned = planner.plan()
        after_plan = peak_rss_mb()
        jobs = [
            PaymentSplit(mirakl=w.mirakl(), stripe=w.stripe(), ledger=w.ledger,
                         go_live=BENCH_GO_LIVE,
                         settings=settings)
            for _ in range(args.shards)
        ]  # fmt: skip
        with ThreadPoolExecutor(args.shards) as pool:
            done = list(
                pool.map(lambda i: jobs[i].execute(shard=i, shards=args.shards),
                         range(args.shards))
            )  # fmt: skip
        wall = time.perf_counter() - started
        created = sum(s.counts.get("TRANSFER_CREATED", 0) for s in done)
        print_table(
            f"Memory: payment split of {args.orders:,} orders ({args.shards} execute threads)",
            [
                ("planned PENDING", planned.counts.get("TRANSFER_PENDING", 0), ""),
                ("transfers CREATED", created, f"= {args.orders:,}"),
                ("peak RSS before the split (MB)", baseline, ""),
                ("peak RSS after plan (MB)", after_plan, ""),
                ("peak RSS after execute (MB)", peak_rss_mb(), "<= 300"),
                ("wall time (s)", wall, ""),
            ],
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
