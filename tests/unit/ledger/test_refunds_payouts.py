"""Refunds and payouts: the same save / get / iterate / attempt contract as transfers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from mirakl_connector.ledger import (
    LedgerConflictError,
    PayoutRecord,
    PayoutStatus,
    RefundRecord,
    RefundStatus,
    RefundType,
    TransferRecord,
    TransferStatus,
    TransferType,
)


@dataclass(frozen=True)
class Kind:
    """How to drive one record type through the Ledger API."""

    entity: str
    provider_id: str
    statuses: Any  # the status enum

    def make(self, key: str, status: Any = None, **fields) -> Any:
        status = status or self.statuses.ON_HOLD
        if self.entity == "refund":
            return RefundRecord(mirakl_refund_id=key, status=status, **fields)
        return PayoutRecord(mirakl_invoice_id=key, status=status, **fields)

    def save(self, ledger, records, run_id=None):
        method = ledger.save_refunds if self.entity == "refund" else ledger.save_payouts
        return method(records, run_id=run_id)

    def get(self, ledger, keys):
        method = ledger.get_refunds if self.entity == "refund" else ledger.get_payouts
        return method(keys)

    def iterate(self, ledger, statuses, batch_size):
        method = ledger.iter_refunds if self.entity == "refund" else ledger.iter_payouts
        return method(statuses=statuses, batch_size=batch_size)

    def mark(self, ledger, record, key, run_id=None):
        method = (
            ledger.mark_refund_attempt if self.entity == "refund" else ledger.mark_payout_attempt
        )
        return method(record, key, run_id=run_id)


REFUND = Kind("refund", "stripe_refund_id", RefundStatus)
PAYOUT = Kind("payout", "payout_id", PayoutStatus)


@pytest.fixture(params=[REFUND, PAYOUT], ids=["refund", "payout"])
def kind(request) -> Kind:
    return request.param


def test_save_upserts_by_mirakl_key_and_audits_status_changes(ledger, kind):
    [new] = kind.save(ledger, [kind.make("1001", amount=500, currency="EUR")], run_id="r1")
    [same] = kind.save(
        ledger, [kind.make("1001", amount=500, currency="EUR", status_reason="waiting")]
    )
    [pending] = kind.save(
        ledger, [kind.make("1001", kind.statuses.PENDING, amount=450, currency="EUR")], "r2"
    )

    assert new.id == same.id == pending.id
    assert pending.created_at == new.created_at
    stored = kind.get(ledger, ["1001", "missing"])
    assert list(stored) == ["1001"]
    assert stored["1001"].amount == 450 and stored["1001"].status is kind.statuses.PENDING
    events = ledger.events_for(kind.entity, new.id)
    assert [(e.old_status, e.new_status, e.run_id) for e in events] == [
        (None, kind.statuses.ON_HOLD.value, "r1"),
        (kind.statuses.ON_HOLD.value, kind.statuses.PENDING.value, "r2"),
    ]


def test_provider_id_is_never_dropped(ledger, kind):
    created = kind.make("1001", kind.statuses.CREATED, **{kind.provider_id: "po_or_re_1"})
    kind.save(ledger, [created])

    with pytest.raises(LedgerConflictError, match=rf"{kind.entity} 1001 .*po_or_re_1"):
        kind.save(ledger, [kind.make("1002"), kind.make("1001", kind.statuses.FAILED)])

    stored = kind.get(ledger, ["1001", "1002"])
    assert list(stored) == ["1001"]
    assert getattr(stored["1001"], kind.provider_id) == "po_or_re_1"


def test_a_created_row_may_fail_later_keeping_its_provider_id(ledger, kind):
    """A payout can fail after creation (webhook): same id, new status is fine."""
    kind.save(ledger, [kind.make("1001", kind.statuses.CREATED, **{kind.provider_id: "x_1"})])

    [failed] = kind.save(
        ledger,
        [
            kind.make(
                "1001",
                kind.statuses.FAILED,
                status_reason="account_closed",
                **{kind.provider_id: "x_1"},
            )
        ],
    )

    assert failed.status is kind.statuses.FAILED and getattr(failed, kind.provider_id) == "x_1"
    assert failed.status_reason == "account_closed"


def test_mark_attempt_is_persisted_before_the_call(ledger, open_ledger, kind):
    [pending] = kind.save(ledger, [kind.make("1001", kind.statuses.PENDING)])

    marked = kind.mark(ledger, pending, f"{kind.entity}-1001", run_id="r1")
    seen = kind.get(open_ledger(), ["1001"])["1001"]

    assert (seen.idempotency_key, seen.attempts) == (f"{kind.entity}-1001", 1)
    assert seen.attempted_at == marked.attempted_at is not None
    assert abs((seen.attempted_at - datetime.now(UTC)).total_seconds()) < 60


def test_mark_attempt_refuses_rows_already_created(ledger, kind):
    [created] = kind.save(
        ledger, [kind.make("1001", kind.statuses.CREATED, **{kind.provider_id: "x_1"})]
    )

    with pytest.raises(LedgerConflictError, match=f"already has {kind.provider_id} x_1"):
        kind.mark(ledger, created, "key")


def test_iterate_by_status_in_batches(ledger, kind):
    kind.save(ledger, [kind.make(str(2000 + i)) for i in range(7)])
    kind.save(ledger, [kind.make(str(3000 + i), kind.statuses.FAILED) for i in range(3)])
    kind.save(ledger, [kind.make("4000", kind.statuses.ABORTED)])

    batches = list(
        kind.iterate(ledger, [kind.statuses.ON_HOLD, kind.statuses.FAILED], batch_size=4)
    )
    failed_only = [r for b in kind.iterate(ledger, [kind.statuses.FAILED], 100) for r in b]

    assert [len(b) for b in batches] == [4, 4, 2]
    assert {r.status for b in batches for r in b} == {
        kind.statuses.ON_HOLD,
        kind.statuses.FAILED,
    }
    assert [r.status for r in failed_only] == [kind.statuses.FAILED] * 3


def test_refund_fields_round_trip(ledger):
    validated = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
    record = RefundRecord(
        "R-1",
        RefundType.SERVICE_ORDER,
        RefundStatus.CREATED,
        amount=1999,
        currency="KWD",
        mirakl_commercial_order_id="CO-1",
        mirakl_order_id="O-1-A",
        mirakl_order_line_id=None,
        transaction_id="pi_1",
        stripe_refund_id="re_1",
        mirakl_validated_at=validated,
    )

    [saved] = ledger.save_refunds([record])

    assert ledger.get_refunds(["R-1"])["R-1"] == saved
    assert saved.type is RefundType.SERVICE_ORDER
    assert (saved.amount, saved.currency, saved.mirakl_validated_at) == (1999, "KWD", validated)


def test_iter_failed_yields_every_failed_row_of_every_kind(ledger):
    ledger.save_transfers(
        [
            TransferRecord(TransferType.PRODUCT_ORDER, "o-1", TransferStatus.FAILED, "boom"),
            TransferRecord(TransferType.SUBSCRIPTION, "i-1", TransferStatus.FAILED, "boom"),
            TransferRecord(TransferType.PRODUCT_ORDER, "o-2", TransferStatus.ON_HOLD),
        ]
    )
    ledger.save_refunds([RefundRecord("R-1", status=RefundStatus.FAILED)])
    ledger.save_payouts(
        [PayoutRecord("I-1", PayoutStatus.FAILED), PayoutRecord("I-2", PayoutStatus.CREATED)]
    )

    failed = list(ledger.iter_failed())

    assert [(type(r).__name__, getattr(r, "mirakl_id", None)) for r in failed] == [
        ("TransferRecord", "o-1"),
        ("TransferRecord", "i-1"),
        ("RefundRecord", None),
        ("PayoutRecord", None),
    ]
