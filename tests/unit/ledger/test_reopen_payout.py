"""``Ledger.reopen_failed_payout``: the one way to forget a payout id, for a payout that failed
at the bank, with the old id kept in the audit trail."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mirakl_connector.ledger import LedgerConflictError, PayoutRecord, PayoutStatus


def _failed_at_bank(ledger, invoice="INV-1", payout_id="po_old"):
    row = PayoutRecord(
        invoice, status=PayoutStatus.PENDING, stripe_account_id="acct_1", amount=500, currency="eur"
    )
    (row,) = ledger.save_payouts([row], run_id="settle-1")
    row = ledger.mark_payout_attempt(row, f"mirakl-connector:payout:{invoice}", run_id="settle-1")
    (row,) = ledger.save_payouts(
        [replace(row, status=PayoutStatus.CREATED, payout_id=payout_id, attempted_at=None)]
    )
    failed = replace(
        row, status=PayoutStatus.FAILED, status_reason="account_closed: The bank account is closed"
    )
    (row,) = ledger.save_payouts([failed], run_id="webhook-1")
    return row


def test_reopen_clears_the_payout_id_and_keeps_it_in_the_audit_trail(ledger):
    row = _failed_at_bank(ledger)
    reopened = ledger.reopen_failed_payout(row, run_id="settle-2")

    expected = (
        "payout po_old failed at the bank: account_closed: The bank account is closed; "
        "re-created by the next settlement run"
    )
    assert reopened.payout_id is None
    assert (reopened.idempotency_key, reopened.attempted_at) == (None, None)
    assert reopened.attempts == 1  # kept: the next key is ...:retry1, never the first one again
    assert (reopened.status, reopened.status_reason) == (PayoutStatus.FAILED, expected)
    assert (reopened.amount, reopened.stripe_account_id) == (500, "acct_1")
    assert ledger.get_payouts(["INV-1"])["INV-1"] == reopened
    last = ledger.events_for("payout", row.id)[-1]
    assert (last.old_status, last.new_status, last.reason, last.run_id) == (
        "PAYOUT_FAILED",
        "PAYOUT_FAILED",
        expected,
        "settle-2",
    )
    # Reopening queues no second payout.failed notification.
    queued = [n for batch in ledger.iter_notifications(statuses=["PENDING"]) for n in batch]
    assert [n.type for n in queued] == ["payout.failed"]


def test_after_reopening_the_row_can_be_saved_and_paid_again(ledger):
    reopened = ledger.reopen_failed_payout(_failed_at_bank(ledger))
    (pending,) = ledger.save_payouts([replace(reopened, status=PayoutStatus.PENDING)])
    marked = ledger.mark_payout_attempt(pending, "mirakl-connector:payout:INV-1:retry1")
    assert marked.attempts == 2
    (created,) = ledger.save_payouts(
        [replace(marked, status=PayoutStatus.CREATED, payout_id="po_new", attempted_at=None)]
    )
    assert ledger.get_payouts(["INV-1"])["INV-1"].payout_id == "po_new"
    with pytest.raises(LedgerConflictError, match="CREATED"):
        ledger.reopen_failed_payout(created)


@pytest.mark.parametrize(
    ("status", "payout_id", "match"),
    [
        (PayoutStatus.CREATED, "po_1", "is PAYOUT_CREATED with payout id po_1"),
        (PayoutStatus.FAILED, None, "is PAYOUT_FAILED with no payout id"),
        (PayoutStatus.ON_HOLD, "po_1", "PAYOUT_ON_HOLD"),
        (PayoutStatus.PENDING, None, "PAYOUT_PENDING"),
    ],
)
def test_only_a_failed_payout_with_an_id_can_be_reopened(ledger, status, payout_id, match):
    (row,) = ledger.save_payouts([PayoutRecord("INV-2", status=status, payout_id=payout_id)])
    with pytest.raises(LedgerConflictError, match=match):
        ledger.reopen_failed_payout(row)
    assert ledger.get_payouts(["INV-2"])["INV-2"] == row  # untouched


def test_unknown_payout_cannot_be_reopened(ledger):
    with pytest.raises(LedgerConflictError, match="not in the ledger"):
        ledger.reopen_failed_payout(
            PayoutRecord("INV-9", status=PayoutStatus.FAILED, payout_id="po")
        )


def test_save_payouts_still_refuses_to_clear_a_payout_id(ledger):
    row = _failed_at_bank(ledger)
    with pytest.raises(LedgerConflictError):
        ledger.save_payouts([replace(row, payout_id=None)])
