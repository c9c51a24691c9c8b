"""Speed of the payments console on a large ledger: every query, page, JSON answer and export.

Fills a fresh ledger with ``--movements`` rows (bulk inserts, not the workflows: 60 % transfers,
10 % refunds, 15 % payouts, 15 % Hyperwallet payments over ``--days`` days; 90 % moved, 4 % on
hold, 3 % failed, 1 % in doubt, 2 % pending) and their status events as the ledger writes them
(one on creation, one more for each row that moved; one scheduled run per day), inserted in
creation order as the workflows insert them, then fills the per-day sums (``moved_daily``) as
schema step 9 does. PostgreSQL then gets ``VACUUM ANALYZE``, what autovacuum does to a live
ledger after such a load; SQLite gets no ``ANALYZE``, as the connector runs none.

Then it times each query of the page, and each route of the console app through HTTP (the
plugin's read engine; the auth dependency is a no-op here: Airflow's own check costs the same on
every route). What a figure means: the time until the **whole answer is downloaded** (every
byte of a CSV export, not only its start), the median of ``--repeat`` calls after a warm-up
call; the slowest call and the CPU time of this process (for SQLite, all the work; for
PostgreSQL, without the server's) are printed next to it. The first byte of the large exports is
timed too. Target: under 1 s each. The load average is printed before and after: on a shared
machine the wall times grow with it, the CPU times do not.

SQLite always; PostgreSQL too when ``MIRAKL_CONNECTOR_TEST_PG_URL`` (default: the local server)
answers, in a schema of its own dropped after (kept with ``--keep``).

    PYTHONPATH=include python bench/console.py                  # 1,000,000 movements
    PYTHONPATH=include python bench/console.py --movements 2000 --backend sqlite
    PYTHONPATH=include python bench/console.py --keep /tmp/console-bench   # fill once, time again
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_table  # noqa: E402
from sqlalchemy import Engine, create_engine, insert, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from mirakl_connector.console.app import ConsoleAppConfig, create_app  # noqa: E402
from mirakl_connector.console.approvals import ApprovalsConfig  # noqa: E402
from mirakl_connector.ledger import Ledger, moved_daily, schema  # noqa: E402
from mirakl_connector.ledger.engine import create_ledger_engine, writer  # noqa: E402
from mirakl_connector.ledger.queries import (
    ConsoleQueries,
    DateRange,
    ItemFilters,
    create_reader_engine,
)
from mirakl_connector.operations.approvals import awaiting

DEFAULT_PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
TARGET_S = 1.0
#: Changes when ``fill`` writes other rows: a ledger kept (``--keep``) by another is not reused.
FILL_VERSION = 2
BATCH = 20_000
CURRENCIES = ("EUR", "EUR", "EUR", "USD", "GBP", "JPY", "KWD")
HOLD_REASONS = ("KYC pending", "payouts disabled", "no bank account", "invoice not paid yet")
FAIL_REASONS = ("insufficient funds", "account closed", "negative operator commission")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--movements", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365, help="spread of the movements")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--repeat", type=int, default=3, help="timed calls of each check (median and slowest)"
    )
    parser.add_argument(
        "--keep",
        metavar="DIR",
        help="keep the filled ledgers (SQLite in DIR, a PostgreSQL schema named after the size) "
        "and reuse them on the next run with the same --movements/--days/--seed: time the "
        "queries again without filling again",
    )
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    label = f"{args.movements}_{args.days}_{args.seed}_{FILL_VERSION}"
    for backend in backends:
        with _database(backend, args.keep and label, args.keep) as url:
            if url is None:
                print(f"\n{backend}: not reachable, skipped")
                continue
            run(url, backend, args.movements, args.days, args.seed, args.repeat)
    return 0


@contextmanager
def _database(backend: str, keep: str | None, keep_dir: str | None) -> Iterator[str | None]:
    """A fresh database (dropped after), or the kept one named ``keep`` (filled if empty)."""
    if backend == "sqlite":
        if keep and keep_dir:
            path = Path(keep_dir) / f"console-bench-{keep}"
            path.mkdir(parents=True, exist_ok=True)
            yield Ledger.default_sqlite_url(str(path))
            return
        with tempfile.TemporaryDirectory(prefix="console-bench-") as tmp:
            yield Ledger.default_sqlite_url(tmp)
        return
    base = os.environ.get("MIRAKL_CONNECTOR_TEST_PG_URL") or DEFAULT_PG_URL
    admin = create_engine(base, connect_args={"connect_timeout": 3})
    name = f"console_bench_{keep}" if keep else f"console_bench_{uuid.uuid4().hex[:8]}"
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{name}"'))
    except Exception as exc:  # noqa: BLE001 - no server: say so and go on
        print(f"PostgreSQL at {make_url(base).render_as_string()}: {type(exc).__name__}")
        admin.dispose()
        yield None
        return
    try:
        url = make_url(base).update_query_dict({"options": f"-csearch_path={name}"})
        yield url.render_as_string(hide_password=False)
    finally:
        if not keep:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        admin.dispose()


def run(url: str, backend: str, movements: int, days: int, seed: int, repeat: int) -> None:
    Ledger(url).dispose()  # the schema, every migration step
    engine = create_ledger_engine(url)
    with engine.connect() as conn:
        started_fill = conn.execute(text("SELECT count(*) FROM transfers")).scalar_one() > 0
        # moved_daily is filled last: a kept ledger without it was interrupted while filling
        filled = conn.execute(text("SELECT count(*) FROM moved_daily")).scalar_one() > 0
    if started_fill and not filled:
        raise SystemExit(f"the kept ledger {url} was not filled to the end: remove it")
    rows: list[tuple[str, object, str]] = []
    if filled:  # a kept ledger (--keep): time the queries only
        rows.append(("ledger kept from an earlier run (--keep)", "reused", ""))
    else:
        rows += _fill_and_analyze(engine, movements, days, seed)
    reader = create_reader_engine(url)  # the plugin's engine
    rows.append(("load average (1 min) before timing", round(os.getloadavg()[0], 2), ""))
    ledger = Ledger(url)  # what the approval gate's section reads through
    rows += time_queries(reader, days, repeat, ledger)
    ledger.dispose()
    rows.append(("load average (1 min) after timing", round(os.getloadavg()[0], 2), ""))
    reader.dispose()
    print_table(f"Payments console on {backend} ({movements:,} movements)", rows)
    engine.dispose()


def _fill_and_analyze(
    engine: Engine, movements: int, days: int, seed: int
) -> list[tuple[str, object, str]]:
    started = time.perf_counter()
    counts = fill(engine, movements, days, seed)
    fill_s = time.perf_counter() - started
    # The bulk insert bypassed the store, which keeps moved_daily with the events: fill it as
    # schema step 9 does on an existing ledger.
    started = time.perf_counter()
    with writer(engine).begin() as conn:
        moved_daily.rebuild(conn)
    rebuild_s = time.perf_counter() - started
    if engine.dialect.name == "postgresql":
        # what autovacuum does to a live ledger after such a load: statistics, and the
        # visibility map that lets counts read an index alone
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    # SQLite: no ANALYZE, as the connector runs none: the plans are those of a real ledger
    return [
        ("movements / status events", f"{counts['rows']:,} / {counts['events']:,}", ""),
        ("fill (bulk insert), s", fill_s, ""),
        ("moved_daily rebuild (schema step 9), s", rebuild_s, ""),
    ]


def fill(engine: Engine, movements: int, days: int, seed: int) -> dict[str, int]:
    """Bulk-insert the movements and their events; return how many of each."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    shares = (("transfer", 0.60), ("refund", 0.10), ("payout", 0.15), ("hw", 0.15))
    total_rows = total_events = 0
    for kind, share in shares:
        n = int(movements * share)
        # rows are inserted as they are created, as the workflows insert them: ids and creation
        # times grow together (the lists and exports read in creation order)
        ages = sorted((rng.randrange(days * 86400) for _ in range(n)), reverse=True)
        next_id = 1
        for start in range(0, n, BATCH):
            size = min(BATCH, n - start)
            records, events = [], []
            for i in range(start, start + size):
                created = now - timedelta(seconds=ages[i])
                record, moved_at = _row(kind, i, rng, created, now)
                record["id"] = next_id
                records.append(record)
                entity = "hyperwallet_payment" if kind == "hw" else kind
                first = record["status"] if moved_at is None else _pending(kind)
                events.append(_event(entity, next_id, None, first, record, record["created_at"]))
                if moved_at is not None:
                    events.append(
                        _event(entity, next_id, first, record["status"], record, moved_at)
                    )
                next_id += 1
            with writer(engine).begin() as conn:
                conn.execute(insert(_TABLES[kind]), records)
                conn.execute(insert(schema.ledger_events), events)
            total_rows += len(records)
            total_events += len(events)
    if engine.dialect.name == "postgresql":  # ids were given: move the sequences past them
        with engine.begin() as conn:
            for table in [*_TABLES.values(), schema.ledger_events]:
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                        f"(SELECT COALESCE(MAX(id), 1) FROM {table.name}))"
                    )
                )
    return {"rows": total_rows, "events": total_events}


_TABLES = {
    "transfer": schema.transfers,
    "refund": schema.refunds,
    "payout": schema.payouts,
    "hw": schema.hyperwallet_payments,
}
_STATUS = {
    "transfer": "TRANSFER_",
    "refund": "REFUND_",
    "payout": "PAYOUT_",
    "hw": "HW_PAYMENT_",
}
_TRANSFER_TYPES = (
    ["TRANSFER_PRODUCT_ORDER"] * 7 + ["TRANSFER_SERVICE_ORDER", "TRANSFER_REFUND"]
    + ["TRANSFER_SUBSCRIPTION"]
)  # fmt: skip


def _pending(kind: str) -> str:
    return _STATUS[kind] + "PENDING"


def _row(
    kind: str, i: int, rng: random.Random, created: datetime, now: datetime
) -> tuple[dict, Any]:
    roll = rng.random()
    moved_at = None
    attempted = None
    reason = None
    provider_id = None
    prefix = _STATUS[kind]
    if roll < 0.90:
        status = prefix + ("COMPLETED" if kind == "hw" and rng.random() < 0.5 else "CREATED")
        moved_at = min(now, created + timedelta(seconds=rng.randrange(3600)))
        attempted = moved_at
        provider_id = {"transfer": "tr_", "refund": "re_", "payout": "po_", "hw": "pmt-"}[kind]
        provider_id += f"{i:09d}"
    elif roll < 0.94:
        status, reason = prefix + "ON_HOLD", rng.choice(HOLD_REASONS)
    elif roll < 0.97:
        status, reason = prefix + "FAILED", rng.choice(FAIL_REASONS)
    elif roll < 0.98:
        status, attempted = prefix + "PENDING", created + timedelta(minutes=5)
    else:
        status = prefix + "PENDING"
    common = {
        "status": status,
        "status_reason": reason,
        "amount": rng.randrange(100, 500_000),
        "currency": rng.choice(CURRENCIES),
        "attempted_at": attempted,
        "attempts": 1 if attempted else 0,
        "idempotency_key": f"key-{kind}-{i}" if attempted else None,
        "created_at": created,
        "updated_at": moved_at or created,
    }
    shop = rng.randrange(1, 5000)
    if kind == "transfer":
        row = {
            "type": rng.choice(_TRANSFER_TYPES), "mirakl_id": f"ORD-{i:08d}-A",
            "mirakl_shop_id": shop, "destination_account": f"acct_{shop:08d}",
            "transfer_id": provider_id,
        }  # fmt: skip
    elif kind == "refund":
        row = {
            "mirakl_refund_id": f"R-{i:08d}", "type": "REFUND_PRODUCT_ORDER",
            "transaction_id": f"ch_{i:09d}", "stripe_refund_id": provider_id,
        }  # fmt: skip
    elif kind == "payout":
        row = {
            "mirakl_invoice_id": f"{i + 100000}", "mirakl_shop_id": shop,
            "stripe_account_id": f"acct_{shop:08d}", "payout_id": provider_id,
        }  # fmt: skip
    else:
        fee = rng.random() < 0.2
        invoice = f"{i + 500000}"
        row = {
            "client_payment_id": invoice + ("-operatorFee" if fee else ""),
            "invoice_id": invoice, "kind": "OPERATOR_FEE" if fee else "SELLER",
            "payment_token": provider_id, "shop_id": shop,
            "destination_token": f"trm-{shop:08d}",
        }  # fmt: skip
    return {**common, **row}, moved_at


def _event(entity: str, entity_id: int, old: str | None, new: str, row: dict, at: datetime) -> dict:
    return {
        "entity": entity,
        "entity_id": entity_id,
        "old_status": old,
        "new_status": new,
        "reason": row["status_reason"] if new == row["status"] else None,
        # one scheduled run per day, as the workflows write them (the console's run filter)
        "run_id": f"scheduled__{at.date().isoformat()}",
        "at": at,
    }


def time_queries(
    engine: Engine, days: int, repeat: int, ledger: Ledger
) -> list[tuple[str, object, str]]:
    """Each query, then each route of the app, ``repeat`` times after a warm-up call: the
    median next to the target, and the slowest call."""
    q = ConsoleQueries(engine)
    last30 = DateRange.last_days(30)
    whole = DateRange.last_days(min(days, 366))
    first_failed = q.items("failed", size=1).items
    some = first_failed[0] if first_failed else None
    one_run = f"scheduled__{(datetime.now(UTC) - timedelta(days=2)).date().isoformat()}"
    checks: list[tuple[str, Callable[[], Any]]] = [
        ("moved, last 30 days", lambda: q.moved(last30)),
        (f"moved, last {len(whole.days())} days", lambda: q.moved(whole)),
        ("moved, 30 days, one currency", lambda: q.moved(last30, currency="EUR")),
        ("waiting by reason", lambda: q.summary("waiting")),
        ("failed by reason", lambda: q.summary("failed")),
        ("in doubt by reason", lambda: q.summary("in_doubt")),
        ("waiting, page 1 (50)", lambda: q.items("waiting")),
        ("failed, page 1 (50)", lambda: q.items("failed")),
        ("in doubt, page 1 (50)", lambda: q.items("in_doubt")),
        ("failed, page 100 (50)", lambda: q.items("failed", page=100)),
        ("waiting, one shop", lambda: q.items("waiting", ItemFilters(shop_id=42))),
        ("waiting, workflow payout", lambda: q.items("waiting", ItemFilters(workflow="payout"))),
        ("items of one run (a day's)", lambda: q.items(None, ItemFilters(run_id=one_run))),
        ("any item by text id", lambda: q.items(None, ItemFilters(text_id="ORD-00000042-A"))),
        ("any item by account", lambda: q.items(None, ItemFilters(text_id="acct_00000042"))),
    ]
    if some is not None:
        checks.append(("one item + history", lambda: (q.get_item(some.entity, some.id),
                                                     q.history(some.entity, some.id))))  # fmt: skip
    from fastapi.testclient import TestClient

    # with the approval gate's section (what waits for a decision: an index range of the
    # ON_HOLD rows, their reasons read) as the plugin mounts it
    approvals = ApprovalsConfig(ledger=lambda: ledger)
    checks.append(("awaiting approval (list + count)", lambda: awaiting(engine)))
    app = create_app(
        ConsoleAppConfig(
            queries=lambda: q,
            auth=lambda: None,
            edit_auth=lambda: None,
            actor=lambda: None,
            approvals=approvals,
        )
    )
    client = TestClient(app)

    def get(path: str) -> int:
        """The whole answer, downloaded: what the figure of a route means."""
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
        return len(response.content)

    def first_byte(path: str) -> int:
        """Only the first piece of a streamed answer (what a browser shows as started)."""
        with client.stream("GET", path) as response:
            assert response.status_code == 200, (path, response.status_code)
            return len(next(response.iter_bytes()))

    period = f"start={whole.start.isoformat()}&end={whole.end.isoformat()}"
    item = f"{some.entity}/{some.id}" if some is not None else "transfer/1"
    routes = [
        ("page /", "/"),
        ("page /?category=in_doubt", "/?category=in_doubt"),
        ("page /?category=failed&page=20", "/?category=failed&page=20"),
        ("page /?shop=42", "/?shop=42"),
        ("page /?id=acct_00000042&category=all", "/?id=acct_00000042&category=all"),
        ("page /?run=<a day's run>", f"/?run={one_run}"),
        (f"page / with a {len(whole.days())}-day range", f"/?{period}"),
        ("item page /items/<entity>/<id>", f"/items/{item}"),
        ("/api/moved (30 days)", "/api/moved"),
        ("/api/summary/waiting", "/api/summary/waiting"),
        ("/api/items?category=failed&size=500", "/api/items?category=failed&size=500"),
        ("/api/items/<entity>/<id>", f"/api/items/{item}"),
        (f"export moved.csv ({len(whole.days())} days)", f"/export/moved.csv?{period}"),
        ("export items.csv of one run", f"/export/items.csv?category=all&run={one_run}"),
    ]
    checks += [(name, lambda path=path: get(path)) for name, path in routes]
    for category in ("failed", "waiting"):
        path = f"/export/items.csv?category={category}"
        lines = client.get(path).text.count("\n") - 1
        checks += [
            (f"export items.csv?category={category} ({lines:,} rows), whole download",
             lambda path=path: get(path)),
            (f"export items.csv?category={category}, first byte",
             lambda path=path: first_byte(path)),
        ]  # fmt: skip
    out: list[tuple[str, object, str]] = []
    for name, call in checks:
        call()  # warm: the first query of a connection pays for its setup
        times, cpu = [], []
        for _ in range(repeat):
            started, started_cpu = time.perf_counter(), time.process_time()
            call()
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
        median = statistics.median(times)
        verdict = "ok" if median < TARGET_S else "SLOW"
        note = f"slowest {max(times):.3f}, cpu {statistics.median(cpu):.3f}"
        out.append((f"{name}, s", median, f"< {TARGET_S:g} s {verdict} ({note})"))
    return out


if __name__ == "__main__":
    raise SystemExit(main())
