"""Schema versioning: created from empty, re-opened without change, refused when too new."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine, inspect, text

from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.ledger import Ledger, TransferRecord, TransferType
from mirakl_connector.ledger import schema as ledger_schema
from mirakl_connector.ledger.engine import create_ledger_engine
from mirakl_connector.ledger.migrations import LATEST_VERSION, STEPS, MigrationStep, migrate

EXPECTED_TABLES = {
    "account_mappings",
    "payment_mappings",
    "transfers",
    "refunds",
    "payouts",
    "checkpoints",
    "ledger_events",
    "pending_items",
    "notifications",
    "alert_cooldowns",
    "webhook_inbox",
    "applied_object_events",
    "hyperwallet_payments",
    "payment_claims",
    "moved_daily",
    "console_actions",
    "reconciliations",
    "reconciliation_items",
    "approvals",
    "schema_version",
}


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _set_version(url: str, version: int) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE schema_version SET version = :v"), {"v": version})
    finally:
        engine.dispose()


def test_empty_database_gets_every_table_and_latest_version(ledger_url, open_ledger):
    assert _tables(ledger_url) == set()

    ledger = open_ledger()

    assert _tables(ledger_url) == EXPECTED_TABLES
    assert ledger.schema_version == LATEST_VERSION == len(STEPS)


def test_reopening_keeps_data_and_version(ledger_url, open_ledger):
    first = open_ledger()
    first.set_checkpoint("seller_settlement_checkpoint", "2024-01-02T00:00:00Z")
    first.save_transfers([TransferRecord(TransferType.PRODUCT_ORDER, "o-1", amount=5)])
    first.dispose()

    second = open_ledger()

    assert second.schema_version == LATEST_VERSION
    assert second.get_checkpoint("seller_settlement_checkpoint") == "2024-01-02T00:00:00Z"
    assert second.get_transfer(TransferType.PRODUCT_ORDER, "o-1").amount == 5


def test_newer_database_is_refused(ledger_url, open_ledger):
    open_ledger().dispose()
    _set_version(ledger_url, LATEST_VERSION + 1)

    with pytest.raises(ConfigurationError, match=rf"schema version {LATEST_VERSION + 1}.*newer"):
        Ledger(ledger_url)


def test_missing_steps_are_applied_in_order_and_recorded(ledger_url, open_ledger):
    open_ledger().dispose()
    applied: list[int] = []
    notes, index = LATEST_VERSION + 1, LATEST_VERSION + 2

    def add_notes(conn):
        applied.append(notes)
        conn.execute(text("CREATE TABLE ledger_notes (id INTEGER PRIMARY KEY, note TEXT)"))

    def add_index(conn):
        applied.append(index)
        conn.execute(text("CREATE INDEX ix_ledger_notes_note ON ledger_notes (note)"))

    steps = [
        *STEPS,
        MigrationStep(notes, "notes", add_notes),
        MigrationStep(index, "idx", add_index),
    ]
    engine = create_ledger_engine(ledger_url)
    try:
        assert migrate(engine, steps=steps) == index
        assert migrate(engine, steps=steps) == index  # nothing left to do the second time
    finally:
        engine.dispose()

    assert applied == [notes, index]
    assert "ledger_notes" in _tables(ledger_url)
    # The code knows LATEST_VERSION only: the database is now too new for it.
    with pytest.raises(ConfigurationError, match="newer"):
        Ledger(ledger_url)


def test_failed_step_rolls_back_and_keeps_previous_version(ledger_url, open_ledger):
    open_ledger().dispose()

    def broken(conn):
        conn.execute(text("CREATE TABLE half_done (id INTEGER PRIMARY KEY)"))
        raise RuntimeError("step failed")

    engine = create_ledger_engine(ledger_url)
    try:
        with pytest.raises(RuntimeError, match="step failed"):
            migrate(engine, steps=[*STEPS, MigrationStep(LATEST_VERSION + 1, "broken", broken)])
    finally:
        engine.dispose()

    assert "half_done" not in _tables(ledger_url)
    assert open_ledger().schema_version == LATEST_VERSION


def test_steps_must_be_numbered_from_one(ledger_url):
    engine = create_ledger_engine(ledger_url)
    try:
        with pytest.raises(ValueError, match=f"expected {LATEST_VERSION + 1}"):
            gap = MigrationStep(LATEST_VERSION + 2, "gap", lambda conn: None)
            migrate(engine, steps=[*STEPS, gap])
    finally:
        engine.dispose()


def test_concurrent_first_start_does_not_crash(ledger_url):
    workers = 4
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []
    versions: list[int] = []

    def start() -> None:
        barrier.wait()
        try:
            ledger = Ledger(ledger_url)
            versions.append(ledger.schema_version)
            ledger.dispose()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert versions == [LATEST_VERSION] * workers
    engine = create_engine(ledger_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(ledger_schema.schema_version.select()).all()
    finally:
        engine.dispose()
    assert len(rows) == 1


def test_unreachable_database_is_a_configuration_error_without_password():
    url = "postgresql+psycopg2://bob:s3cret-pw@127.0.0.1:1/nowhere?connect_timeout=2"

    with pytest.raises(ConfigurationError) as caught:
        Ledger(url)

    assert "s3cret-pw" not in str(caught.value)
    assert "bob:***@127.0.0.1:1/nowhere" in str(caught.value)
