"""Money moved per day is kept with the status events (moved_daily), and imports never "moved"."""

from __future__ import annotations

from sqlalchemy import select, text

from mirakl_connector.cutover import STRIPE_CONNECTOR
from mirakl_connector.ledger import moved_daily, schema
from mirakl_connector.ledger.engine import create_ledger_engine, writer
from mirakl_connector.ledger.migrations import STEPS, migrate
from mirakl_connector.ledger.queries import ConsoleQueries, DateRange, MovedRow
from mirakl_connector.ledger.records import (
    TransferRecord,
    TransferStatus,
    TransferType,
)

from .scenario import TODAY, fill

TODAY_MOVED = [
    MovedRow(TODAY, "EUR", "hyperwallet", "hyperwallet payment", 1, 2000),  # once, not twice
    MovedRow(TODAY, "EUR", "stripe", "payout", 1, 5000),
    MovedRow(TODAY, "EUR", "stripe", "refund", 1, 500),
    MovedRow(TODAY, "EUR", "stripe", "reversal", 1, 300),
    MovedRow(TODAY, "EUR", "stripe", "split", 1, 1000),
    MovedRow(TODAY, "JPY", "stripe", "split", 1, 1500),
]


def _sums(engine) -> list[tuple]:
    table = schema.moved_daily
    with engine.connect() as conn:
        rows = conn.execute(
            select(*[table.c[n] for n in ("day", "entity", "subtype", "currency", "origin",
                                           "count", "amount")])
        ).all()  # fmt: skip
    return sorted(tuple(r) for r in rows)


def test_the_store_keeps_the_daily_sums_as_a_rebuild_from_the_events_would(ledger, ledger_url):
    fill(ledger)
    engine = create_ledger_engine(ledger_url)
    try:
        assert ConsoleQueries(engine).moved(DateRange.last_days()) == TODAY_MOVED
        kept = _sums(engine)
        with writer(engine).begin() as conn:
            moved_daily.rebuild(conn)
        assert _sums(engine) == kept
        # a second save of the same status is no new movement
        ledger.save_transfers(
            [TransferRecord(TransferType.PRODUCT_ORDER, "ORD-1-A", TransferStatus.CREATED,
                            transfer_id="tr_1", amount=1000, currency="EUR")]
        )  # fmt: skip
        assert _sums(engine) == kept
    finally:
        engine.dispose()


def test_imported_rows_are_not_moved_on_their_import_day(ledger, ledger_url):
    """Cutover imports moved at the incumbent: shown apart, never in "moved" on import day."""
    ledger.save_imported(
        "transfer",
        [TransferRecord(TransferType.PRODUCT_ORDER, "OLD-1-A", TransferStatus.CREATED,
                        transfer_id="tr_old", mirakl_shop_id=1, destination_account="acct_one",
                        amount=7000, currency="EUR")],
        source=STRIPE_CONNECTOR,
        old_ids=["42"],
        run_id="cutover",
    )  # fmt: skip
    ledger.save_transfers(
        [TransferRecord(TransferType.PRODUCT_ORDER, "NEW-1-A", TransferStatus.CREATED,
                        transfer_id="tr_new", amount=100, currency="EUR")]
    )  # fmt: skip
    engine = create_ledger_engine(ledger_url)
    try:
        queries = ConsoleQueries(engine)
        assert queries.moved(DateRange.last_days()) == [
            MovedRow(TODAY, "EUR", "stripe", "split", 1, 100)
        ]
        assert queries.moved(DateRange.last_days(), imported=True) == [
            MovedRow(TODAY, "EUR", "stripe", "split", 1, 7000)
        ]
    finally:
        engine.dispose()


def test_schema_step_9_fills_the_sums_of_an_older_ledger(ledger, ledger_url):
    fill(ledger)
    engine = create_ledger_engine(ledger_url)
    try:
        expected = _sums(engine)
        assert expected
        # stand for a ledger made at version 8: no moved_daily table yet
        with writer(engine).begin() as conn:
            conn.execute(text("DROP TABLE moved_daily"))
            conn.execute(text("UPDATE schema_version SET version = 8"))
        assert STEPS[8].version == 9
        assert migrate(engine) == STEPS[-1].version
        assert _sums(engine) == expected
    finally:
        engine.dispose()
