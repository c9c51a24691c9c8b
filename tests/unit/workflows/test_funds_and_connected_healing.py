"""Pure decisions of issue 12 pts 2-3: when pending funds cover a payout; what healing stores."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mirakl_connector.ledger.records import AccountMapping, PayoutRecord, PayoutStatus
from mirakl_connector.stripe.connected_healing import (
    account_drift,
    account_event,
    payout_event,
    payout_to_heal,
)
from mirakl_connector.stripe.settlement_decisions import funds_expected_at, funds_hold_reason


@pytest.mark.parametrize(
    ("needed", "available", "pending", "expected"),
    [
        (100, 100, [], None),  # never asked when covered; no pending: nothing to wait for
        (150, 100, [(30, 20), (40, 10)], 20),  # by date: 140 on day 10, 170 on day 20
        (130, 100, [(30, 20), (40, 10)], 10),
        (500, 100, [(30, 10)], None),
    ],
)
def test_funds_expected_at(needed, available, pending, expected):
    assert funds_expected_at(needed, available, pending) == expected


def test_funds_hold_reason_names_amounts_and_date():
    when = int(datetime(2026, 12, 11, 0, 20, tzinfo=UTC).timestamp())
    assert funds_hold_reason("pay out", 1234, "EUR", "acct_1", 200, [(2000, when)]) == (
        "Waiting for funds: 12.34 EUR to pay out, 2.00 EUR available on acct_1 "
        "(balance_insufficient); expected available on 2026-12-11 00:20 UTC"
    )
    held = funds_hold_reason("pay out", 1234, "EUR", "acct_1", -5, [])
    assert held.endswith(
        "0.00 EUR available on acct_1 (balance_insufficient); no pending funds cover it yet"
    )


def _account(**fields):
    return {"id": "acct_1", "details_submitted": True, "payouts_enabled": True,
            "charges_enabled": True, "requirements": {"currently_due": []}, **fields}  # fmt: skip


def test_account_drift_only_when_the_webhook_would_change_the_mapping():
    mapping = AccountMapping(1, "acct_1", True, True, kyc_status="APPROVED")
    assert account_drift(mapping, _account()) is False
    assert account_drift(mapping, _account(payouts_enabled=False)) is True
    assert account_drift(None, _account(payouts_enabled=False)) is False


def test_healed_event_ids_are_stable_per_state():
    now = datetime(2026, 12, 4, tzinfo=UTC)
    later = datetime(2026, 12, 5, tzinfo=UTC)
    assert account_event(_account(), now)["id"] == account_event(_account(), later)["id"]
    assert (
        account_event(_account(), now)["id"]
        != account_event(_account(payouts_enabled=False), now)["id"]
    )
    event = payout_event({"id": "po_1", "status": "failed"}, "acct_1", now)
    assert (event["id"], event["type"], event["account"]) == (
        "heal_po_1_failed",
        "payout.failed",
        "acct_1",
    )


def test_payout_to_heal_only_a_created_row_of_a_failed_payout():
    created = PayoutRecord("9", PayoutStatus.CREATED, payout_id="po_1")
    assert payout_to_heal(created, {"status": "failed"})
    assert not payout_to_heal(created, {"status": "paid"})
    assert not payout_to_heal(None, {"status": "failed"})
    failed = PayoutRecord("9", PayoutStatus.FAILED, payout_id="po_1")
    assert not payout_to_heal(failed, {"status": "failed"})
