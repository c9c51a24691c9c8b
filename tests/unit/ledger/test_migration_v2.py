"""Migration step 2: a database created by the first release gains the new tables and columns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    insert,
    inspect,
)

from mirakl_connector.ledger import (
    AccountMapping,
    PaymentMapping,
    PaymentMappingStatus,
    TransferStatus,
    TransferType,
)
from mirakl_connector.ledger import schema as ledger_schema
from mirakl_connector.ledger.engine import create_ledger_engine
from mirakl_connector.ledger.migrations import (
    LATEST_VERSION,
    STEPS,
    add_missing_columns,
    migrate,
)

V1_TABLES = {
    "account_mappings",
    "payment_mappings",
    "transfers",
    "refunds",
    "payouts",
    "checkpoints",
    "ledger_events",
    "schema_version",
}
NEW_TABLES = {"pending_items", "notifications", "alert_cooldowns"}
NEW_COLUMNS = {
    "account_mappings": {"kyc_status", "kyc_reported_status"},
    "payment_mappings": {
        "captured_amount",
        "mirakl_validated_at",
        "idempotency_key",
        "attempted_at",
        "attempts",
    },
}
NOW = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)


def _v1_metadata(*, extra_account_columns: tuple[str, ...] = ()) -> MetaData:
    """The schema of the first release, written out (not derived from today's metadata)."""
    metadata = MetaData()
    stamp = ledger_schema.UTCDateTime
    Table(
        "account_mappings",
        metadata,
        Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
        Column("mirakl_shop_id", BigInteger, nullable=False, unique=True),
        Column("stripe_account_id", String(255), nullable=False, unique=True),
        Column("payouts_enabled", Boolean, nullable=False),
        Column("charges_enabled", Boolean, nullable=False),
        Column("ignored", Boolean, nullable=False),
        Column("disabled_reason", Text),
        Column("onboarding_token", Text),
        *[Column(name, String(64)) for name in extra_account_columns],
        Column("created_at", stamp(), nullable=False),
        Column("updated_at", stamp(), nullable=False),
    )
    Table(
        "payment_mappings",
        metadata,
        Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
        Column("stripe_charge_id", String(255), nullable=False, unique=True),
        Column("mirakl_commercial_order_id", String(255), index=True),
        Column("status", String(64), nullable=False),
        Column("stripe_amount", BigInteger),
        Column("status_reason", String(1024)),
        Column("created_at", stamp(), nullable=False),
        Column("updated_at", stamp(), nullable=False),
    )
    # The other first-release tables did not change: today's definitions are theirs.
    for table in (
        ledger_schema.transfers,
        ledger_schema.refunds,
        ledger_schema.payouts,
        ledger_schema.checkpoints,
        ledger_schema.ledger_events,
        ledger_schema.schema_version,
    ):
        table.to_metadata(metadata)
    return metadata


def _create_v1_database(url: str, **kwargs) -> None:
    metadata = _v1_metadata(**kwargs)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            metadata.create_all(conn)
            t = metadata.tables
            conn.execute(insert(t["schema_version"]).values(id=1, version=1, updated_at=NOW))
            conn.execute(
                insert(t["account_mappings"]).values(
                    mirakl_shop_id=2000,
                    stripe_account_id="acct_old",
                    payouts_enabled=True,
                    charges_enabled=True,
                    ignored=False,
                    onboarding_token="tok",
                    created_at=NOW,
                    updated_at=NOW,
                )
            )
            conn.execute(
                insert(t["payment_mappings"]).values(
                    stripe_charge_id="ch_old",
                    mirakl_commercial_order_id="CO-1",
                    status="to_capture",
                    stripe_amount=1234,
                    created_at=NOW,
                    updated_at=NOW,
                )
            )
            conn.execute(
                insert(t["transfers"]).values(
                    type="TRANSFER_PRODUCT_ORDER",
                    mirakl_id="o-1",
                    status="TRANSFER_ON_HOLD",
                    amount=900,
                    currency="EUR",
                    attempts=0,
                    created_at=NOW,
                    updated_at=NOW,
                )
            )
    finally:
        engine.dispose()


def _columns(url: str) -> dict[str, set[str]]:
    engine = create_engine(url)
    try:
        inspector = inspect(engine)
        return {
            name: {c["name"] for c in inspector.get_columns(name)}
            for name in inspector.get_table_names()
        }
    finally:
        engine.dispose()


def _expected_columns() -> dict[str, set[str]]:
    tables = (*ledger_schema.DATA_TABLES, ledger_schema.schema_version)
    return {table.name: {c.name for c in table.columns} for table in tables}


def test_v1_fixture_really_lacks_the_new_schema(ledger_url):
    _create_v1_database(ledger_url)

    columns = _columns(ledger_url)

    assert not NEW_TABLES & set(columns)
    for table, new in NEW_COLUMNS.items():
        assert not new & columns[table]


@pytest.mark.parametrize("extra", [(), ("kyc_status",)], ids=["v1", "v1-with-kyc-column"])
def test_step_2_upgrades_a_v1_database_keeping_its_data(ledger_url, open_ledger, extra):
    _create_v1_database(ledger_url, extra_account_columns=extra)

    ledger = open_ledger()

    assert ledger.schema_version == LATEST_VERSION >= 2
    assert _columns(ledger_url) == _expected_columns()
    # Rows of the first release are intact and read with the new fields at their defaults.
    mapping = ledger.account_mappings_by_shop([2000])[2000]
    assert (mapping.stripe_account_id, mapping.onboarding_token, mapping.payouts_enabled) == (
        "acct_old",
        "tok",
        True,
    )
    assert (mapping.kyc_status, mapping.kyc_reported_status) == (None, None)
    payment = ledger.get_payment_mapping("ch_old")
    assert payment is not None
    assert (payment.status, payment.stripe_amount, payment.mirakl_commercial_order_id) == (
        PaymentMappingStatus.TO_CAPTURE,
        1234,
        "CO-1",
    )
    assert (payment.attempts, payment.captured_amount, payment.idempotency_key) == (0, None, None)
    assert payment.created_at == NOW
    transfer = ledger.get_transfer(TransferType.PRODUCT_ORDER, "o-1")
    assert (transfer.status, transfer.amount) == (TransferStatus.ON_HOLD, 900)


def test_upgraded_database_supports_the_new_api(ledger_url, open_ledger):
    _create_v1_database(ledger_url)
    ledger = open_ledger()

    old = ledger.get_payment_mapping("ch_old")
    marked = ledger.mark_payment_mapping_attempt(old, "capture-ch_old")
    ledger.upsert_account_mapping(AccountMapping(2000, "acct_old", kyc_status="REFUSED"))
    queued = ledger.enqueue_notification("account.updated", {"miraklShopId": 2000}, "au:1")
    pending = ledger.record_pending_item("seller_onboarding", "2000", "Stripe down")

    assert (marked.attempts, marked.idempotency_key) == (1, "capture-ch_old")
    assert ledger.account_mappings_by_shop([2000])[2000].kyc_status == "REFUSED"
    assert queued is not None and queued.id is not None
    assert pending.attempts == 1
    assert ledger.claim_cooldown("kyc-mail", timedelta(minutes=10)) is True
    new = ledger.upsert_payment_mapping(PaymentMapping("ch_new", "CO-2", captured_amount=10))
    assert new.attempts == 0 and new.captured_amount == 10


def test_step_2_adds_nothing_to_a_database_created_at_step_1(ledger_url, open_ledger):
    open_ledger().dispose()  # a fresh database: step 1 already built every table and column
    engine = create_ledger_engine(ledger_url)
    try:
        with engine.begin() as conn:
            for table in (ledger_schema.account_mappings, ledger_schema.payment_mappings):
                assert add_missing_columns(conn, table, [c.name for c in table.columns]) == []
    finally:
        engine.dispose()


def test_step_2_alone_brings_v1_to_v2(ledger_url):
    _create_v1_database(ledger_url)
    engine = create_ledger_engine(ledger_url)
    try:
        assert migrate(engine, steps=STEPS[:2]) == 2
        assert migrate(engine, steps=STEPS[:2]) == 2  # nothing left to do
        columns = _columns(ledger_url)
        assert set(columns) == V1_TABLES | NEW_TABLES
        for table, new in NEW_COLUMNS.items():
            assert new <= columns[table]
        # Later steps (if any) apply on top of it.
        assert migrate(engine) == LATEST_VERSION
    finally:
        engine.dispose()

    assert _columns(ledger_url) == _expected_columns()
