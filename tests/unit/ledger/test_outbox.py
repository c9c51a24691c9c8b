"""Notification outbox: queueing, delivery state, and failures queued by save_* atomically."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, create_engine, event, select

from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.ledger import (
    STATUS_REASON_MAX,
    LedgerConflictError,
    Notification,
    NotificationStatus,
    PayoutRecord,
    PayoutStatus,
    RefundRecord,
    RefundStatus,
    TransferRecord,
    TransferStatus,
    TransferType,
)
from mirakl_connector.ledger import notifications as payloads
from mirakl_connector.ledger import schema as ledger_schema

PENDING = NotificationStatus.PENDING
SENT = NotificationStatus.SENT
FAILED = NotificationStatus.FAILED
ALL = list(NotificationStatus)
T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
PRODUCT = TransferType.PRODUCT_ORDER


class _StatementCounter:
    """Counts SQL statements sent to any engine while active."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def _record(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.statements.append(statement)

    def __enter__(self) -> _StatementCounter:
        event.listen(Engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc_info) -> None:
        event.remove(Engine, "before_cursor_execute", self._record)


def _queued(ledger, statuses=ALL, **kwargs) -> list[Notification]:
    return [n for batch in ledger.iter_notifications(statuses=statuses, **kwargs) for n in batch]


def _event_ids(ledger_url: str, entity: str, entity_id: int) -> list[int]:
    table = ledger_schema.ledger_events
    engine = create_engine(ledger_url)
    try:
        with engine.connect() as conn:
            stmt = (
                select(table.c.id)
                .where(table.c.entity == entity, table.c.entity_id == entity_id)
                .order_by(table.c.id)
            )
            return list(conn.execute(stmt).scalars())
    finally:
        engine.dispose()


def _failed_transfer(mirakl_id: str, reason: str = "Stripe said no", **fields) -> TransferRecord:
    return TransferRecord(PRODUCT, mirakl_id, TransferStatus.FAILED, reason, **fields)


# -- enqueue / iterate / save -----------------------------------------------------------------


def test_enqueue_then_duplicate_is_already_queued(ledger, open_ledger):
    payload = payloads.account_updated_payload(2000, "acct_1")

    queued = ledger.enqueue_notification("account.updated", payload, "account.updated:acct_1:1")
    again = open_ledger().enqueue_notification(
        "account.updated", {"other": True}, "account.updated:acct_1:1"
    )

    assert again is None
    assert (queued.type, queued.payload, queued.status, queued.attempts) == (
        "account.updated",
        {"miraklShopId": 2000, "stripeUserId": "acct_1"},
        PENDING,
        0,
    )
    assert queued.id is not None and queued.created_at == queued.updated_at
    assert (queued.next_attempt_at, queued.sent_at, queued.last_error) == (None, None, None)
    assert _queued(ledger) == [queued]  # the duplicate changed nothing


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ({"amount": Decimal("1.50")}, "not JSON-serialisable"),
        ({"x": float("nan")}, "not JSON-serialisable"),
        (["not", "a", "mapping"], "must be a mapping"),
    ],
)
def test_payload_that_is_not_json_is_refused_with_the_key(ledger, payload, match):
    with pytest.raises(InvalidItemError, match=match) as caught:
        ledger.enqueue_notification("t", payload, "key-1")

    assert "key-1" in str(caught.value)
    assert _queued(ledger) == []


def test_type_and_dedup_key_are_required(ledger):
    with pytest.raises(InvalidItemError, match="no dedup key"):
        ledger.enqueue_notification("account.updated", {}, "")
    with pytest.raises(InvalidItemError, match="no type"):
        ledger.enqueue_notification("", {}, "k")


def test_iter_filters_by_status_and_due_time(ledger):
    now_one = ledger.enqueue_notification("t", {"n": 1}, "k1")  # next_attempt_at NULL
    later = ledger.enqueue_notification("t", {"n": 2}, "k2")
    due = ledger.enqueue_notification("t", {"n": 3}, "k3")
    sent = ledger.enqueue_notification("t", {"n": 4}, "k4")
    ledger.save_notification(replace(later, next_attempt_at=T0 + timedelta(minutes=5)))
    ledger.save_notification(replace(due, attempts=1, next_attempt_at=T0))
    ledger.save_notification(replace(sent, status=SENT, sent_at=T0))

    def keys(**kwargs) -> list[str]:
        return [n.dedup_key for n in _queued(ledger, **kwargs)]

    assert keys(statuses=[PENDING]) == ["k1", "k2", "k3"]
    assert keys(statuses=[PENDING], due_before=T0) == ["k1", "k3"]
    assert keys(statuses=[PENDING], due_before=T0 - timedelta(seconds=1)) == ["k1"]
    assert keys(statuses=[PENDING], due_before=T0 + timedelta(minutes=5)) == ["k1", "k2", "k3"]
    assert keys(statuses=[SENT, FAILED]) == ["k4"]
    assert now_one.dedup_key == "k1"


def test_iter_in_batches_and_argument_checks(ledger):
    for i in range(5):
        ledger.enqueue_notification("t", {"n": i}, f"k{i}")

    batches = list(ledger.iter_notifications(statuses=[PENDING], batch_size=2))

    assert [[n.payload["n"] for n in batch] for batch in batches] == [[0, 1], [2, 3], [4]]
    with pytest.raises(ValueError, match="batch_size"):
        ledger.iter_notifications(statuses=[PENDING], batch_size=0)
    with pytest.raises(InvalidItemError, match="naive"):
        ledger.iter_notifications(statuses=[PENDING], due_before=datetime(2024, 5, 1))


def test_save_records_delivery_state(ledger, open_ledger):
    queued = ledger.enqueue_notification("payout.failed", {"payoutId": "po_1"}, "k")
    retry_at = T0 + timedelta(seconds=5)

    failed_once = ledger.save_notification(
        replace(queued, attempts=1, last_error="HTTP 503 " + "x" * 5000, next_attempt_at=retry_at)
    )
    sent = ledger.save_notification(
        replace(failed_once, status=SENT, attempts=2, sent_at=T0 + timedelta(seconds=6))
    )

    assert failed_once.id == queued.id
    assert len(failed_once.last_error) == STATUS_REASON_MAX
    assert failed_once.last_error.startswith("HTTP 503")
    assert failed_once.next_attempt_at == retry_at
    assert failed_once.updated_at >= queued.updated_at
    assert failed_once.created_at == queued.created_at
    stored = _queued(open_ledger())
    assert stored == [sent]
    assert (sent.status, sent.attempts, sent.sent_at) == (SENT, 2, T0 + timedelta(seconds=6))
    assert sent.payload == {"payoutId": "po_1"}


def test_save_without_id_upserts_by_dedup_key(ledger):
    inserted = ledger.save_notification(Notification("t", "k", {"a": 1}))
    updated = ledger.save_notification(Notification("t", "k", {"a": 1}, status=FAILED))

    assert inserted.id == updated.id and updated.status is FAILED
    assert _queued(ledger) == [updated]


def test_save_refuses_unknown_id_naive_times_and_stolen_keys(ledger):
    one = ledger.enqueue_notification("t", {}, "k1")
    two = ledger.enqueue_notification("t", {}, "k2")

    with pytest.raises(LedgerConflictError, match="not in the ledger"):
        ledger.save_notification(replace(one, id=9999))
    with pytest.raises(InvalidItemError, match=r"k1.*naive|naive.*k1"):
        ledger.save_notification(replace(one, next_attempt_at=datetime(2024, 5, 1)))
    with pytest.raises(LedgerConflictError, match="k1 belongs to another"):
        ledger.save_notification(replace(two, dedup_key="k1"))
    assert [n.dedup_key for n in _queued(ledger)] == ["k1", "k2"]


# -- failures queued by save_* ----------------------------------------------------------------


def test_new_failed_transfer_queues_its_notification(ledger, ledger_url):
    [saved] = ledger.save_transfers(
        [
            _failed_transfer(
                "o-1",
                "Transfer with source_transaction and charge has no more funds left.",
                mirakl_shop_id=1,
                destination_account="acct_basic",
                transaction_id="ch_with_transfer",
                amount=1234,
                currency="EUR",
            )
        ]
    )

    [notification] = _queued(ledger)

    [event_id] = _event_ids(ledger_url, "transfer", saved.id)
    assert notification.type == "transfer.failed"
    assert notification.dedup_key == f"transfer.failed:{saved.id}:{event_id}"
    assert notification.status is PENDING and notification.next_attempt_at is None
    assert notification.payload == {
        "internalId": saved.id,
        "miraklId": "o-1",
        "type": "TRANSFER_PRODUCT_ORDER",
        "stripeAccountId": "acct_basic",
        "miraklShopId": 1,
        "transferId": None,
        "transactionId": "ch_with_transfer",
        "amount": 1234,
        "status": "TRANSFER_FAILED",
        "failedReason": "Transfer with source_transaction and charge has no more funds left.",
        "currency": "eur",
    }
    assert notification.created_at == saved.created_at  # written in the same transaction


def test_only_rows_becoming_failed_notify(ledger):
    ledger.save_transfers(
        [
            TransferRecord(PRODUCT, "o-hold", TransferStatus.ON_HOLD),
            TransferRecord(PRODUCT, "o-pending", TransferStatus.PENDING),
            _failed_transfer("o-failed"),
        ]
    )
    assert [n.payload["miraklId"] for n in _queued(ledger)] == ["o-failed"]

    ledger.save_transfers(
        [
            _failed_transfer("o-hold", "now failing"),  # ON_HOLD -> FAILED: notifies
            TransferRecord(PRODUCT, "o-pending", TransferStatus.CREATED, transfer_id="tr_1"),
            _failed_transfer("o-failed", "still failing, new reason"),  # FAILED -> FAILED: not
        ]
    )

    notes = _queued(ledger)
    assert [(n.payload["miraklId"], n.payload["failedReason"]) for n in notes] == [
        ("o-failed", "Stripe said no"),
        ("o-hold", "now failing"),
    ]


def test_failing_again_after_recovery_notifies_again(ledger, ledger_url):
    [saved] = ledger.save_transfers([_failed_transfer("o-1", "first")])
    ledger.save_transfers([TransferRecord(PRODUCT, "o-1", TransferStatus.ON_HOLD)])
    ledger.save_transfers([_failed_transfer("o-1", "second")])

    notes = _queued(ledger)

    event_ids = _event_ids(ledger_url, "transfer", saved.id)
    assert [n.dedup_key for n in notes] == [
        f"transfer.failed:{saved.id}:{event_ids[0]}",
        f"transfer.failed:{saved.id}:{event_ids[2]}",
    ]
    assert [n.payload["failedReason"] for n in notes] == ["first", "second"]


def test_failed_refund_and_payout_notify_with_their_payloads(ledger):
    [refund] = ledger.save_refunds(
        [
            RefundRecord(
                "r-1",
                status=RefundStatus.FAILED,
                status_reason="charge_already_refunded",
                amount=350,
                currency="KWD",
                mirakl_order_id="CO-1-A",
                transaction_id="ch_1",
            )
        ]
    )
    [created] = ledger.save_payouts(
        [
            PayoutRecord(
                "inv-1",
                PayoutStatus.CREATED,
                amount=500,
                currency="JPY",
                payout_id="po_1",
                mirakl_shop_id=3,
            )
        ]
    )
    assert [n.type for n in _queued(ledger)] == ["refund.failed"]

    # The payout.failed webhook: CREATED -> FAILED, keeping the payout id.
    [failed] = ledger.save_payouts(
        [
            replace(
                created,
                status=PayoutStatus.FAILED,
                status_reason="account_closed: The bank account has been closed",
            )
        ],
        run_id="webhook",
    )

    refund_note, payout_note = _queued(ledger)
    assert refund_note.payload == payloads.refund_failed_payload(refund)
    assert refund_note.payload["currency"] == "kwd" and refund_note.payload["amount"] == 350
    assert payout_note.type == "payout.failed"
    assert payout_note.payload == payloads.payout_failed_payload(failed)
    assert payout_note.payload["payoutId"] == payout_note.payload["stripePayoutId"] == "po_1"
    assert payout_note.dedup_key.startswith(f"payout.failed:{failed.id}:")


def test_same_id_in_two_entities_gets_two_notifications(ledger):
    [transfer] = ledger.save_transfers([_failed_transfer("x-1")])
    [refund] = ledger.save_refunds([RefundRecord("x-1", status=RefundStatus.FAILED)])

    notes = _queued(ledger)

    assert transfer.id == refund.id == 1  # same row id in different tables
    assert [n.type for n in notes] == ["transfer.failed", "refund.failed"]
    assert len({n.dedup_key for n in notes}) == 2


def test_notification_failure_rolls_back_the_save(ledger, monkeypatch):
    ledger.save_transfers([TransferRecord(PRODUCT, "o-1", TransferStatus.PENDING)])

    def broken(record):
        raise RuntimeError("outbox unavailable")

    monkeypatch.setattr(payloads, "failed_notification", broken)
    with pytest.raises(RuntimeError, match="outbox unavailable"):
        ledger.save_transfers([_failed_transfer("o-1"), _failed_transfer("o-2")])

    # Same transaction: neither the status changes nor their audit events were committed.
    assert ledger.get_transfer(PRODUCT, "o-1").status is TransferStatus.PENDING
    assert ledger.get_transfer(PRODUCT, "o-2") is None
    assert len(ledger.events_for("transfer", 1)) == 1
    assert _queued(ledger) == []


def test_refused_save_queues_nothing(ledger):
    ledger.save_transfers(
        [TransferRecord(PRODUCT, "o-1", TransferStatus.CREATED, transfer_id="tr_1")]
    )

    with pytest.raises(LedgerConflictError, match="tr_1"):
        ledger.save_transfers([_failed_transfer("o-1"), _failed_transfer("o-2")])

    assert _queued(ledger) == []
    assert ledger.get_transfer(PRODUCT, "o-2") is None


def test_failures_add_a_bounded_number_of_statements(ledger):
    ledger.save_transfers([TransferRecord(PRODUCT, f"o-{i}") for i in range(50)])

    with _StatementCounter() as counter:
        # 50 updated to FAILED and 50 new FAILED rows in one batch.
        ledger.save_transfers([_failed_transfer(f"o-{i}") for i in range(100)])

    # Without failures a save takes at most 6; queueing them costs two more.
    assert len(counter.statements) <= 8, counter.statements
    assert len(_queued(ledger)) == 100


def test_thousand_failures_in_one_save(ledger):
    saved = ledger.save_transfers([_failed_transfer(f"o-{i:04}", amount=i) for i in range(1000)])

    notes = _queued(ledger, statuses=[PENDING])

    assert len(notes) == 1000
    assert {n.payload["internalId"] for n in notes} == {r.id for r in saved}
    assert sum(n.payload["amount"] for n in notes) == sum(range(1000))
    assert len({n.dedup_key for n in notes}) == 1000


def test_stored_payload_is_compact_json(ledger, ledger_url):
    ledger.enqueue_notification("t", {"b": 1, "a": "é"}, "k")
    engine = create_engine(ledger_url)
    try:
        with engine.connect() as conn:
            raw = conn.execute(select(ledger_schema.notifications.c.payload)).scalar_one()
    finally:
        engine.dispose()

    assert json.loads(raw) == {"b": 1, "a": "é"}
    assert " " not in raw
