"""Schema step 8: ``amount_residue`` on transfers, refunds and payouts (README "Currencies")."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect, text

from mirakl_connector.ledger import Ledger, TransferRecord, TransferType
from mirakl_connector.ledger.migrations import STEPS
from mirakl_connector.ledger.records import TransferStatus

TABLES = ("transfers", "refunds", "payouts")
STEP = next(s for s in STEPS if "residue" in s.description)


def _columns(url: str, table: str) -> set[str]:
    engine = create_engine(url)
    try:
        return {c["name"] for c in inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def test_step_adds_the_residue_to_a_database_of_the_previous_version(ledger_url):
    ledger = Ledger(ledger_url)
    ledger.save_transfers([TransferRecord(
        type=TransferType.PRODUCT_ORDER, mirakl_id="A-1", status=TransferStatus.CREATED,
        transfer_id="tr_1", amount=9120, currency="KWD",
    )])  # fmt: skip
    ledger.dispose()
    # Back to the database as the previous version left it: no residue column.
    engine = create_engine(ledger_url)
    with engine.begin() as conn:
        for table in TABLES:
            conn.execute(text(f"ALTER TABLE {table} DROP COLUMN amount_residue"))
        conn.execute(text("UPDATE schema_version SET version = :v"), {"v": STEP.version - 1})
    engine.dispose()
    assert all("amount_residue" not in _columns(ledger_url, t) for t in TABLES)

    reopened = Ledger(ledger_url)  # migrates on open
    try:
        assert all("amount_residue" in _columns(ledger_url, t) for t in TABLES)
        row = reopened.get_transfer(TransferType.PRODUCT_ORDER, "A-1")
        assert (row.amount, row.amount_residue) == (9120, None)  # kept, no residue invented
        reopened.save_transfers([TransferRecord(
            type=TransferType.PRODUCT_ORDER, mirakl_id="A-2", status=TransferStatus.PENDING,
            amount=9120, amount_residue=5, currency="KWD",
        )])  # fmt: skip
        assert reopened.get_transfer(TransferType.PRODUCT_ORDER, "A-2").amount_residue == 5
    finally:
        reopened.dispose()
