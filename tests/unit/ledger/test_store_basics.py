"""Ledger plumbing: URL handling, checkpoints, mappings, time zones, reason truncation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.ledger import (
    STATUS_REASON_MAX,
    AccountMapping,
    Ledger,
    LedgerConflictError,
    PaymentMapping,
    PaymentMappingStatus,
    TransferRecord,
    TransferStatus,
    TransferType,
)
from mirakl_connector.ledger import schema as ledger_schema


def test_default_sqlite_url_points_into_the_directory(tmp_path):
    url = Ledger.default_sqlite_url(tmp_path / "airflow")

    assert url == f"sqlite:///{tmp_path.resolve()}/airflow/mirakl_connector_ledger.db"
    ledger = Ledger(url)  # the missing directory is created
    try:
        assert (tmp_path / "airflow" / "mirakl_connector_ledger.db").is_file()
    finally:
        ledger.dispose()


def test_url_property_masks_the_password(ledger_url):
    url = make_url(ledger_url)
    if url.get_backend_name() == "postgresql":  # trust auth: the password is ignored
        url = url.set(password="hunter2")
    ledger = Ledger(url.render_as_string(hide_password=False))
    try:
        assert "hunter2" not in ledger.url and "hunter2" not in repr(ledger)
        assert ledger.url == url.render_as_string(hide_password=True)
        if url.password:
            assert ":***@" in ledger.url
    finally:
        ledger.dispose()


def test_sqlite_connections_use_wal_and_a_busy_timeout(tmp_path):
    ledger = Ledger(Ledger.default_sqlite_url(tmp_path))
    try:
        with ledger._engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    finally:
        ledger.dispose()


# -- checkpoints ------------------------------------------------------------------------------


def test_checkpoint_round_trip(ledger, open_ledger):
    assert ledger.get_checkpoint("product_payment_split_checkpoint") is None

    ledger.set_checkpoint("product_payment_split_checkpoint", "2019-01-02T00:00:00+0100")
    ledger.set_checkpoint("service_payment_split_checkpoint", "s-1")
    ledger.set_checkpoint("product_payment_split_checkpoint", "2019-01-03T00:00:00+0100")

    other = open_ledger()
    assert other.get_checkpoint("product_payment_split_checkpoint") == "2019-01-03T00:00:00+0100"
    assert other.get_checkpoint("service_payment_split_checkpoint") == "s-1"
    assert other.get_checkpoint("seller_onboarding_checkpoint") is None


# -- account mappings -------------------------------------------------------------------------


def test_account_mapping_upsert_by_shop(ledger):
    first = ledger.upsert_account_mapping(AccountMapping(2000, "acct_A", payouts_enabled=False))
    again = ledger.upsert_account_mapping(
        AccountMapping(2000, "acct_B", payouts_enabled=True, disabled_reason=None)
    )

    assert first.id is not None and again.id == first.id
    assert again.created_at == first.created_at
    assert again.updated_at >= first.updated_at
    assert ledger.list_account_mappings() == [again]
    assert again.stripe_account_id == "acct_B" and again.payouts_enabled is True
    assert ledger.account_mapping_by_stripe_account("acct_A") is None
    assert ledger.account_mapping_by_stripe_account("acct_B") == again


def test_account_mapping_unchanged_upsert_keeps_updated_at(ledger):
    first = ledger.upsert_account_mapping(AccountMapping(1, "acct_1", charges_enabled=True))
    same = ledger.upsert_account_mapping(AccountMapping(1, "acct_1", charges_enabled=True))

    assert same.updated_at == first.updated_at


def test_account_mappings_by_shop_returns_only_known_shops(ledger):
    for shop_id in (1, 2, 3):
        ledger.upsert_account_mapping(
            AccountMapping(shop_id, f"acct_{shop_id}", ignored=shop_id == 3)
        )

    found = ledger.account_mappings_by_shop([2, 3, 99])

    assert sorted(found) == [2, 3]
    assert found[3].ignored is True and found[2].stripe_account_id == "acct_2"
    assert [m.mirakl_shop_id for m in ledger.list_account_mappings()] == [1, 2, 3]


def test_one_stripe_account_per_shop(ledger):
    ledger.upsert_account_mapping(AccountMapping(1, "acct_shared"))

    with pytest.raises(LedgerConflictError, match=r"acct_shared is already mapped to shop 1"):
        ledger.upsert_account_mapping(AccountMapping(2, "acct_shared"))

    assert ledger.account_mappings_by_shop([2]) == {}


def test_unique_constraints_hold_in_the_database(ledger, ledger_url):
    """Even a writer bypassing the Ledger cannot create a second row for the same key."""
    now = datetime.now(UTC)
    base = {"status": TransferStatus.ON_HOLD.value, "created_at": now, "updated_at": now}
    engine = create_engine(ledger_url)
    try:
        cases = [
            (
                ledger_schema.transfers,
                {"type": "TRANSFER_PRODUCT_ORDER", "mirakl_id": "o-1", **base},
            ),
            (
                ledger_schema.refunds,
                {"mirakl_refund_id": "r-1", "type": "REFUND_PRODUCT_ORDER", **base},
            ),
            (ledger_schema.payouts, {"mirakl_invoice_id": "i-1", **base}),
            (ledger_schema.payment_mappings, {"stripe_charge_id": "ch_1", **base}),
            (
                ledger_schema.account_mappings,
                {
                    "mirakl_shop_id": 1,
                    "stripe_account_id": "acct_1",
                    "created_at": now,
                    "updated_at": now,
                },
            ),
            (ledger_schema.checkpoints, {"key": "k", "value": "v", "updated_at": now}),
        ]
        for table, row in cases:
            with engine.begin() as conn:
                conn.execute(insert(table).values(row))
            with pytest.raises(IntegrityError), engine.begin() as conn:
                conn.execute(insert(table).values(row))
    finally:
        engine.dispose()


# -- payment mappings -------------------------------------------------------------------------


def test_payment_mapping_upsert_by_charge_and_audit(ledger):
    created = ledger.upsert_payment_mapping(
        PaymentMapping("ch_1", "CO-1", stripe_amount=1234), run_id="webhook"
    )
    captured = ledger.upsert_payment_mapping(
        PaymentMapping("ch_1", "CO-1", PaymentMappingStatus.CAPTURED, stripe_amount=1234),
        run_id="capture-run",
    )
    ledger.upsert_payment_mapping(
        PaymentMapping("ch_1", "CO-1", PaymentMappingStatus.CAPTURED, stripe_amount=1234),
        run_id="again",
    )

    assert captured.id == created.id
    assert captured.status is PaymentMappingStatus.CAPTURED
    events = ledger.events_for("payment_mapping", created.id)
    assert [(e.old_status, e.new_status, e.run_id) for e in events] == [
        (None, "to_capture", "webhook"),
        ("to_capture", "captured", "capture-run"),
    ]


def test_payment_mappings_by_commercial_id_prefers_the_newest_charge(ledger):
    ledger.upsert_payment_mapping(PaymentMapping("ch_old", "CO-1", PaymentMappingStatus.FAILED))
    ledger.upsert_payment_mapping(PaymentMapping("ch_new", "CO-1"))
    ledger.upsert_payment_mapping(PaymentMapping("pi_2", "CO-2", PaymentMappingStatus.CAPTURED))

    found = ledger.payment_mappings_by_commercial_id(["CO-1", "CO-2", "CO-3"])

    assert {k: v.stripe_charge_id for k, v in found.items()} == {"CO-1": "ch_new", "CO-2": "pi_2"}
    assert found["CO-2"].status is PaymentMappingStatus.CAPTURED


# -- time zones and reasons -------------------------------------------------------------------


def test_timestamps_come_back_aware_utc(ledger, open_ledger):
    paris_summer = timezone(timedelta(hours=2))
    attempted = datetime(2024, 6, 1, 12, 0, tzinfo=paris_summer)
    saved = ledger.save_transfers(
        [TransferRecord(TransferType.PRODUCT_ORDER, "o-1", attempted_at=attempted)]
    )[0]

    reread = open_ledger().get_transfer(TransferType.PRODUCT_ORDER, "o-1")

    for stamp in (saved.created_at, saved.updated_at, reread.created_at, reread.attempted_at):
        assert stamp.tzinfo is not None and stamp.utcoffset() == timedelta(0)
    assert reread.attempted_at == datetime(2024, 6, 1, 10, 0, tzinfo=UTC)
    assert reread.created_at == saved.created_at
    assert abs(reread.created_at - datetime.now(UTC)) < timedelta(minutes=1)


def test_naive_datetime_is_refused_with_the_item(ledger):
    record = TransferRecord(
        TransferType.PRODUCT_ORDER, "o-9", attempted_at=datetime(2024, 6, 1, 12, 0)
    )

    with pytest.raises(InvalidItemError, match=r"TRANSFER_PRODUCT_ORDER/o-9.*naive"):
        ledger.save_transfers([record])


def test_long_reason_is_truncated_keeping_its_start(ledger, open_ledger):
    reason = "Stripe said: " + "x" * 5000
    saved = ledger.save_transfers(
        [TransferRecord(TransferType.PRODUCT_ORDER, "o-1", TransferStatus.FAILED, reason)]
    )[0]

    stored = open_ledger().get_transfer(TransferType.PRODUCT_ORDER, "o-1").status_reason
    event = ledger.events_for("transfer", saved.id)[0]

    assert len(stored) == STATUS_REASON_MAX == 1024
    assert stored.startswith("Stripe said: xxx") and stored == saved.status_reason
    assert event.reason == stored


def test_reason_at_the_limit_is_kept_whole():
    exact = "r" * STATUS_REASON_MAX
    assert ledger_schema.truncate_reason(exact) == exact
    assert ledger_schema.truncate_reason(None) is None


def test_ledger_is_a_context_manager(tmp_path: Path):
    with Ledger(Ledger.default_sqlite_url(tmp_path)) as ledger:
        ledger.set_checkpoint("k", "v")
    assert "sqlite" in repr(ledger)
