"""The capture and validation rules, on plain values."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.ledger.records import PaymentMapping, PaymentMappingStatus
from mirakl_connector.mirakl.orders import parse_product_order
from mirakl_connector.stripe.capture_decisions import (
    CaptureAction,
    decide_capture,
    pa01_entries,
    parse_pending_debit,
    settle_refused,
    validation_refusal,
)
from mirakl_connector.stripe.gateway import PaymentState


def order(
    order_id, state="SHIPPING", *, total="100.00", debited=True, currency="EUR", refused_line=None
):
    lines = [
        {
            "order_line_id": "L1",
            "order_line_state": state,
            "total_price": total,
            "taxes": [],
            "shipping_taxes": [],
        }
    ]
    if refused_line:
        lines.append(
            {
                "order_line_id": "L2",
                "order_line_state": "REFUSED",
                "total_price": refused_line,
                "taxes": [],
                "shipping_taxes": [],
            }
        )
    return parse_product_order({
        "order_id": order_id, "commercial_id": "C", "created_date": "2026-01-01T00:00:00Z",
        "currency_iso_code": currency, "order_state": state, "shop_id": 1,
        "total_commission": "1", "total_price": total,
        "customer_debited_date": "2026-01-01T01:00:00Z" if debited else None,
        "order_lines": lines,
    })  # fmt: skip


MAPPING = PaymentMapping("pi_1", "C", stripe_amount=15000)


def test_capture_subtracts_refused_lines_in_minor_units():
    decision = decide_capture(
        MAPPING,
        [order("C-A", refused_line="20.00"), order("C-B", "REFUSED", total="30.00", debited=False)],
    )
    assert (decision.action, decision.amount, decision.currency) == (
        CaptureAction.CAPTURE, 10000, "EUR")  # fmt: skip


def test_zero_decimal_currency_is_not_multiplied_by_100():
    mapping = PaymentMapping("pi_1", "C", stripe_amount=1500)
    decision = decide_capture(mapping, [order("C-A", total="1000", currency="JPY",
                                              refused_line="500")])  # fmt: skip
    assert decision.amount == 1000


def test_capture_is_rounded_down_to_what_stripe_takes():
    # KWD: the authorised 15.000 minus a refused 1.005 is 13.995, captured as 13.990 (Stripe's
    # three-decimal currencies end in 0); MGA: 120.50 ariary is captured as 120 whole ariary.
    kwd = PaymentMapping("pi_1", "C", stripe_amount=15000)
    decision = decide_capture(kwd, [order("C-A", total="15.000", currency="KWD",
                                          refused_line="1.005")])  # fmt: skip
    assert (decision.action, decision.amount) == (CaptureAction.CAPTURE, 13990)
    mga = PaymentMapping("pi_1", "C", stripe_amount=12050)
    decision = decide_capture(mga, [order("C-A", total="120.50", currency="MGA")])
    assert decision.amount == 12000


@pytest.mark.parametrize("state", ["STAGING", "WAITING_ACCEPTANCE", "WAITING_DEBIT",
                                   "WAITING_DEBIT_PAYMENT"])  # fmt: skip
def test_any_undecided_order_waits(state):
    decision = decide_capture(MAPPING, [order("C-A"), order("C-B", state, debited=False)])
    assert decision.action is CaptureAction.WAIT
    assert decision.reason == f"Order C-B is not ready yet, status is {state}"


def test_accepted_but_unpaid_waits_and_missing_orders_wait():
    assert decide_capture(MAPPING, [order("C-A", debited=False)]).action is CaptureAction.WAIT
    assert decide_capture(MAPPING, []).reason == "Commercial order C is not returned by Mirakl"


def test_everything_refused_cancels():
    decision = decide_capture(
        PaymentMapping("pi_1", "C", stripe_amount=10000),
        [order("C-A", "REFUSED", debited=False)],
    )
    assert (decision.action, decision.amount) == (CaptureAction.CANCEL, 0)


def test_mixed_currencies_and_unknown_amount_fail():
    assert decide_capture(MAPPING, [order("C-A"), order("C-B", currency="USD")]).action is (
        CaptureAction.FAIL
    )
    no_amount = PaymentMapping("pi_1", "C")
    assert decide_capture(no_amount, [order("C-A")]).action is CaptureAction.FAIL


def test_only_authorised_payments_are_validated():
    assert validation_refusal(MAPPING) is None
    captured = PaymentMapping("pi_1", "C", status=PaymentMappingStatus.CAPTURED)
    assert validation_refusal(captured) is None
    for status in (PaymentMappingStatus.FAILED, PaymentMappingStatus.CANCELED):
        assert "not confirmed" in validation_refusal(PaymentMapping("pi_1", "C", status=status))
    assert validation_refusal(None) is not None


def test_pa01_entry_keeps_the_pa11_amount_as_decimal():
    debit = parse_pending_debit({"order_id": "C-A", "order_commercial_id": "C",
                                 "customer_id": "cust", "amount": Decimal("12.34"),
                                 "currency_iso_code": "EUR"})  # fmt: skip
    assert pa01_entries([debit], MAPPING) == [
        {"amount": Decimal("12.34"), "customer_id": "cust", "order_id": "C-A",
         "payment_status": "OK", "transaction_number": "pi_1"}
    ]  # fmt: skip


def test_bad_pending_debit_names_the_order_and_field():
    with pytest.raises(InvalidItemError) as caught:
        parse_pending_debit({"order_id": "C-A", "order_commercial_id": "C",
                             "currency_iso_code": "EUR"})  # fmt: skip
    assert (caught.value.item_id, caught.value.reason) == ("C-A", "amount is missing")


def test_refused_capture_of_a_captured_intent_is_captured():
    pi = PaymentState("pi_1", "payment_intent", "succeeded", amount=100, amount_captured=80)
    settled = settle_refused(pi, action=CaptureAction.CAPTURE, error="unexpected state")
    assert (settled.status, settled.captured_amount) == (PaymentMappingStatus.CAPTURED, 80)


def test_refused_capture_of_a_cancelled_intent_fails_but_cancel_is_canceled():
    pi = PaymentState("pi_1", "payment_intent", "canceled")
    assert settle_refused(pi, action=CaptureAction.CAPTURE, error="x").status is (
        PaymentMappingStatus.FAILED
    )
    assert settle_refused(pi, action=CaptureAction.CANCEL, error="x").status is (
        PaymentMappingStatus.CANCELED
    )


def test_refused_capture_of_an_open_authorisation_fails_with_stripe_reason():
    pi = PaymentState("pi_1", "payment_intent", "requires_capture")
    settled = settle_refused(pi, action=CaptureAction.CAPTURE, error="amount too large")
    assert settled.status is PaymentMappingStatus.FAILED
    assert settled.reason == "Stripe refused to capture: amount too large"
