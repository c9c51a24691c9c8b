"""Schema step 4: Hyperwallet payments by clientPaymentId, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, text

from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.ledger import (
    HyperwalletPayment,
    HyperwalletPaymentKind,
    HyperwalletPaymentStatus,
    Ledger,
    LedgerConflictError,
)
from mirakl_connector.ledger.engine import create_ledger_engine
from mirakl_connector.ledger.migrations import LATEST_VERSION, STEPS, migrate

S = HyperwalletPaymentStatus
T0 = datetime(2024, 5, 2, 10, 0, tzinfo=UTC)


def _payment(cpid: str = "230201", **changes) -> HyperwalletPayment:
    base = HyperwalletPayment(
        client_payment_id=cpid,
        invoice_id=cpid.removesuffix("-operatorFee"),
        amount=454520,
        currency="EUR",
        program="DEFAULT",
        shop_id=2001,
        destination_token="trm-seller",
        invoice_source="IV01",
    )
    return replace(base, **changes)


def test_step_4_is_the_latest_and_creates_the_table(ledger: Ledger):
    assert LATEST_VERSION >= 4
    assert STEPS[3].version == 4
    assert ledger.schema_version == LATEST_VERSION
    assert ledger.get_hyperwallet_payment("nothing") is None


def test_step_4_upgrades_a_version_3_database(ledger_url):
    engine = create_ledger_engine(ledger_url)
    try:
        assert migrate(engine, steps=STEPS[:3]) == 3
        with engine.begin() as conn:  # a database made by the release before step 4
            conn.execute(text("DROP TABLE hyperwallet_payments"))
        assert "hyperwallet_payments" not in inspect(engine).get_table_names()
        assert migrate(engine) == LATEST_VERSION
        assert "hyperwallet_payments" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
    with Ledger(ledger_url) as ledger:
        ledger.save_hyperwallet_payments([_payment()])
        assert ledger.get_hyperwallet_payment("230201").amount == 454520


def test_save_and_read_back_every_field(ledger: Ledger):
    fee = _payment(
        "230201-operatorFee",
        kind=HyperwalletPaymentKind.OPERATOR_FEE,
        amount=95569,
        destination_token="trm-operator",
    )
    saved = ledger.save_hyperwallet_payments([_payment(), fee], run_id="run-1")

    assert [p.id is not None for p in saved] == [True, True]
    by_id = ledger.get_hyperwallet_payments(["230201", "230201-operatorFee", "other"])
    assert set(by_id) == {"230201", "230201-operatorFee"}
    assert by_id["230201-operatorFee"].kind is HyperwalletPaymentKind.OPERATOR_FEE
    assert by_id["230201"].status is S.PENDING
    assert by_id["230201"].invoice_source == "IV01"
    assert ledger.hyperwallet_payments_by_invoice(["230201", "9"]) == {
        "230201": [by_id["230201"], by_id["230201-operatorFee"]]
    }
    history = ledger.events_for("hyperwallet_payment", by_id["230201"].id)
    assert [(e.old_status, e.new_status, e.run_id) for e in history] == [
        (None, S.PENDING.value, "run-1")
    ]


def test_iter_by_status(ledger: Ledger):
    ledger.save_hyperwallet_payments(
        [_payment("1"), _payment("2", status=S.CREATED, payment_token="pmt-2"), _payment("3")]
    )
    batches = list(ledger.iter_hyperwallet_payments(statuses=[S.PENDING], batch_size=1))
    assert [[p.client_payment_id for p in batch] for batch in batches] == [["1"], ["3"]]


def test_payment_token_is_never_replaced_unless_the_payment_failed(ledger: Ledger):
    created = ledger.save_hyperwallet_payments(
        [_payment(status=S.CREATED, payment_token="pmt-1", hw_status="CREATED")]
    )[0]

    with pytest.raises(LedgerConflictError, match="already has payment_token pmt-1"):
        ledger.save_hyperwallet_payments([replace(created, payment_token="pmt-2")])
    with pytest.raises(LedgerConflictError, match="already has payment_token pmt-1"):
        ledger.save_hyperwallet_payments([replace(created, payment_token=None, status=S.PENDING)])

    failed = ledger.save_hyperwallet_payments(
        [replace(created, status=S.FAILED, hw_status="RETURNED")]
    )[0]
    # A returned payment is paid anew: its token may be cleared for the next attempt.
    reopened = ledger.save_hyperwallet_payments(
        [replace(failed, status=S.PENDING, payment_token=None, hw_status=None)]
    )[0]
    assert reopened.payment_token is None
    assert ledger.get_hyperwallet_payment("230201").payment_token is None


def test_mark_attempt_commits_before_the_call_and_guards_done_rows(ledger: Ledger):
    row = ledger.save_hyperwallet_payments([_payment()])[0]
    marked = ledger.mark_hyperwallet_payment_attempt(row, run_id="r")
    assert marked.attempts == 1
    assert marked.idempotency_key == "230201"
    assert marked.in_doubt
    # A stale copy (read before the mark) cannot hide the attempt.
    ledger.save_hyperwallet_payments([replace(row, status_reason="stale copy")])
    assert ledger.get_hyperwallet_payment("230201").attempted_at == marked.attempted_at

    done = ledger.save_hyperwallet_payments(
        [replace(marked, status=S.CREATED, payment_token="pmt-1")]
    )[0]
    assert not done.in_doubt
    with pytest.raises(LedgerConflictError, match="must not be sent again"):
        ledger.mark_hyperwallet_payment_attempt(done)
    aborted = ledger.save_hyperwallet_payments([_payment("x-operatorFee", status=S.ABORTED)])[0]
    with pytest.raises(LedgerConflictError, match="already HW_PAYMENT_ABORTED"):
        ledger.mark_hyperwallet_payment_attempt(aborted)
    with pytest.raises(LedgerConflictError, match="not in the ledger"):
        ledger.mark_hyperwallet_payment_attempt(_payment("unknown"))


def test_newer_notification_applies_older_one_changes_nothing(ledger: Ledger):
    row = ledger.save_hyperwallet_payments(
        [_payment(status=S.CREATED, payment_token="pmt-1", hw_status="CREATED")]
    )[0]
    completed = ledger.record_hyperwallet_notification(
        replace(row, status=S.COMPLETED, hw_status="COMPLETED"),
        notification_token="wbh-2",
        notified_at=T0 + timedelta(minutes=5),
    )
    assert completed is not None
    assert completed.status is S.COMPLETED
    assert completed.last_notification_token == "wbh-2"

    # An IN_PROGRESS notification created earlier arrives late: refused, the row is unchanged.
    late = ledger.record_hyperwallet_notification(
        replace(row, status=S.CREATED, hw_status="IN_PROGRESS"),
        notification_token="wbh-1",
        notified_at=T0,
    )
    assert late is None
    saved = ledger.get_hyperwallet_payment("230201")
    assert (saved.status, saved.hw_status) == (S.COMPLETED, "COMPLETED")
    assert saved.last_notification_at == T0 + timedelta(minutes=5)

    # The same notification again (its processing retried) passes.
    again = ledger.record_hyperwallet_notification(
        replace(saved, confirmed_at=T0 + timedelta(minutes=9)),
        notification_token="wbh-2",
        notified_at=T0 + timedelta(minutes=5),
    )
    assert again is not None and again.confirmed_at == T0 + timedelta(minutes=9)
    events = ledger.events_for("hyperwallet_payment", saved.id)
    assert [e.new_status for e in events] == [S.CREATED.value, S.COMPLETED.value]


def test_notification_for_an_unknown_payment_inserts_it(ledger: Ledger):
    saved = ledger.record_hyperwallet_notification(
        _payment("777", status=S.COMPLETED, hw_status="COMPLETED", payment_token="pmt-7"),
        notification_token="wbh-7",
        notified_at=T0,
    )
    assert saved is not None and saved.id is not None
    assert ledger.get_hyperwallet_payment("777").last_notification_at == T0


def test_notification_needs_a_token_and_an_aware_time(ledger: Ledger):
    with pytest.raises(InvalidItemError, match="notification token"):
        ledger.record_hyperwallet_notification(_payment(), notification_token="", notified_at=T0)
    with pytest.raises(InvalidItemError, match="naive"):
        ledger.record_hyperwallet_notification(
            _payment(), notification_token="wbh-1", notified_at=datetime(2024, 1, 1)
        )
