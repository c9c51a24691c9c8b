"""The rules of the console's actions (pure): which state allows which action, with the reason
a user reads when it does not; which DAG run a retry triggers, with which ids."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mirakl_connector.console.actions import RetryTarget, allowed_actions, retry_target
from mirakl_connector.ledger import manual_rules as rules
from mirakl_connector.ledger.records import (
    HyperwalletPayment,
    PayoutRecord,
    RefundRecord,
    TransferRecord,
    TransferType,
)

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def state(entity="transfer", status="TRANSFER_PENDING", reason=None, provider_id=None,
          attempted_at=None, attempts=0):  # fmt: skip
    return rules.RowState(entity, status, reason, provider_id, attempted_at, attempts)


@pytest.mark.parametrize(
    ("row", "refusal"),
    [
        (state(), None),
        (state(status="TRANSFER_FAILED", reason="Transfers disabled."), None),
        (state(status="TRANSFER_ON_HOLD", reason="KYC pending"), None),
        (state(status="TRANSFER_ON_HOLD", reason="held by bob: x"), "already held by bob: x"),
        (state(status="TRANSFER_CREATED", provider_id="tr_1"), "TRANSFER_CREATED: nothing"),
        (state(status="TRANSFER_IGNORED"), "TRANSFER_IGNORED: nothing"),
        (state(attempted_at=T0, attempts=1), "in doubt"),
        (state("payout", "PAYOUT_FAILED", provider_id="po_1"), "already has Stripe object po_1"),
        (state("refund", "REFUND_PENDING", provider_id="re_1"), "already has Stripe object re_1"),
        (state("hyperwallet_payment", "HW_PAYMENT_CREATED", provider_id="pmt-1"),
         "HW_PAYMENT_CREATED: nothing"),
    ],
)  # fmt: skip
def test_hold(row, refusal):
    got = rules.hold_refusal(row)
    assert got is None if refusal is None else refusal in got


def test_release_retry_and_resolve():
    held = state(status="TRANSFER_ON_HOLD", reason="held by bob: x")
    assert rules.release_refusal(held) is None
    assert "not held by anyone" in rules.release_refusal(state(status="TRANSFER_ON_HOLD"))
    assert rules.retry_refusal(held) == "it is held by bob: x: release it first"
    assert rules.retry_refusal(state(status="TRANSFER_FAILED")) is None
    assert rules.retry_refusal(state(attempted_at=T0)) is None  # the run replays or looks up
    assert "nothing is left to retry" in rules.retry_refusal(state(status="TRANSFER_ABORTED"))
    hw_created = state("hyperwallet_payment", "HW_PAYMENT_CREATED", provider_id="pmt-1")
    assert "Hyperwallet's notifications" in rules.retry_refusal(hw_created)

    doubt = state(attempted_at=T0, attempts=2)
    assert rules.resolve_refusal(doubt, found=True) is None
    assert rules.resolve_refusal(doubt, found=False) is None
    assert "not in doubt" in rules.resolve_refusal(state(), found=True)
    created = state(status="TRANSFER_CREATED", provider_id="tr_1", attempted_at=T0)
    assert "tr_1 is recorded" in rules.resolve_refusal(created, found=False)
    hw_doubt = state("hyperwallet_payment", "HW_PAYMENT_PENDING", attempted_at=T0, attempts=1)
    assert rules.resolve_refusal(hw_doubt, found=True) is None
    assert "clientPaymentId" in rules.resolve_refusal(hw_doubt, found=False)


def test_why_is_required_trimmed_and_bounded():
    assert rules.clean_why("  two\n  lines ") == "two lines"
    for bad in (None, "", "   "):
        with pytest.raises(ValueError, match="reason"):
            rules.clean_why(bad)
    with pytest.raises(ValueError, match="at most 500"):
        rules.clean_why("x" * 501)


def test_is_held_needs_the_on_hold_status_and_the_mark():
    assert rules.is_held("TRANSFER_ON_HOLD", "held by a: b")
    assert rules.is_held("HW_PAYMENT_ON_HOLD", "held by a: b")
    assert not rules.is_held("TRANSFER_PENDING", "held by a: b")
    assert not rules.is_held("TRANSFER_ON_HOLD", "released by a: b; decided again by the next run")
    assert not rules.is_held("TRANSFER_ON_HOLD", None)


def test_retry_targets_the_items_dag_and_ids():
    order = TransferRecord(TransferType.PRODUCT_ORDER, "ORD-1-A_TAX")
    assert retry_target("transfer", order) == RetryTarget(
        "stripe_payment_split", {"order_ids": ["ORD-1-A"]}
    )
    service = TransferRecord(TransferType.SERVICE_ORDER, "SO-7")
    assert retry_target("transfer", service).conf == {"order_ids": ["SO-7"]}
    refund = RefundRecord("R-1", mirakl_order_id="ORD-2-A")
    assert retry_target("refund", refund).dag_id == "stripe_payment_refund"
    assert retry_target("refund", refund).conf == {"order_ids": ["ORD-2-A"]}
    reversal = TransferRecord(TransferType.REFUND, "R-1_TAX")
    target = retry_target("transfer", reversal, {"R-1": refund}.get)
    assert (target.dag_id, target.conf) == ("stripe_payment_refund", {"order_ids": ["ORD-2-A"]})
    assert retry_target("transfer", reversal, {}.get).conf == {}  # unknown refund: plain run
    fee = TransferRecord(TransferType.SUBSCRIPTION, "9001", mirakl_shop_id=2001)
    assert (retry_target("transfer", fee).dag_id, retry_target("transfer", fee).conf) == (
        "stripe_seller_settlement", {"shop_id": 2001},
    )  # fmt: skip
    assert retry_target("payout", PayoutRecord("9002")).conf == {}  # no shop: the backlog run
    payment = HyperwalletPayment("9103-operatorFee", "9103")
    assert retry_target("hyperwallet_payment", payment).conf == {"invoice_ids": ["9103"]}


def test_allowed_actions_follow_the_rules():
    from mirakl_connector.ledger.queries import Item

    def item(**kw):
        base = dict(entity="transfer", id=1, provider="stripe", workflow="split",
                    mirakl_id="O-1", shop_id=1, account="acct_1", status="TRANSFER_PENDING",
                    reason=None, amount=100, currency="EUR", provider_object_id=None,
                    attempts=0, attempted_at=None, created_at=T0, updated_at=T0)  # fmt: skip
        return Item(**{**base, **kw})

    assert allowed_actions(item()) == ["retry", "hold"]
    assert allowed_actions(item(attempted_at=T0, attempts=1)) == [
        "retry", "resolve-found", "resolve-not-found",
    ]  # fmt: skip
    assert allowed_actions(item(status="TRANSFER_ON_HOLD", reason="held by a: b")) == ["release"]
    assert allowed_actions(item(status="TRANSFER_CREATED", provider_object_id="tr_1")) == []
