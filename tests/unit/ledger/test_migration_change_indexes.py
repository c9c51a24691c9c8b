"""Schema step 13: the indexes the backlogs read what changed with (issue 15)."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect, text

from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.migrations import STEPS

STEP = next(s for s in STEPS if "what changed" in s.description)
INDEXES = {
    "transfers": {"ix_transfers_updated_at"},
    "payment_mappings": {"ix_payment_mappings_updated_at"},
    "refunds": {
        "ix_refunds_updated_at",
        "ix_refunds_mirakl_order_id",
        "ix_refunds_mirakl_commercial_order_id",
    },
}


def _indexes(url: str, table: str) -> set[str]:
    engine = create_engine(url)
    try:
        return {i["name"] for i in inspect(engine).get_indexes(table)}
    finally:
        engine.dispose()


def test_step_adds_the_indexes_to_a_database_of_the_previous_version(ledger_url):
    Ledger(ledger_url).dispose()
    assert all(names <= _indexes(ledger_url, t) for t, names in INDEXES.items())
    # Back to the database as the previous version left it: none of them.
    engine = create_engine(ledger_url)
    with engine.begin() as conn:
        for names in INDEXES.values():
            for name in names:
                conn.execute(text(f"DROP INDEX {name}"))
        conn.execute(text("UPDATE schema_version SET version = :v"), {"v": STEP.version - 1})
    engine.dispose()
    assert not any(names & _indexes(ledger_url, t) for t, names in INDEXES.items())

    reopened = Ledger(ledger_url)  # migrates on open
    try:
        assert reopened.schema_version == STEPS[-1].version
        assert all(names <= _indexes(ledger_url, t) for t, names in INDEXES.items())
    finally:
        reopened.dispose()
