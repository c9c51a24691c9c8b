"""The refund and reversal rules, on plain values."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from mirakl_connector.core.errors import InvalidItemError, PaymentProviderError
from mirakl_connector.ledger.records import (
    RefundRecord,
    RefundStatus,
    RefundType,
    TransferRecord,
    TransferStatus,
    TransferType,
)
from mirakl_connector.mirakl.orders import RefundPart
from mirakl_connector.stripe.gateway import PaymentState
from mirakl_connector.stripe.refund_decisions import (
    decide_refund,
    decide_reversal,
    needs_refund_part,
    refund_from_pa12,
    refund_from_spa12,
    service_commercial_id,
)

ROW = RefundRecord("R1", amount=3000, currency="EUR", mirakl_order_id="A-1",
                   mirakl_commercial_order_id="A")  # fmt: skip
CAPTURED = PaymentState("ch_1", "charge", "succeeded", captured=True)


def lookup_of(*states):
    table = {s.id: s for s in states}

    def lookup(payment_id):
        if payment_id not in table:
            raise PaymentProviderError(f"No such charge: {payment_id}", permanent=True)
        return table[payment_id]

    return lookup


def test_pa12_refund_amount_uses_the_currency_exponent():
    row = refund_from_pa12({"id": "7", "amount": Decimal("1.234"), "order_id": "A-1",
                            "order_commercial_id": "A", "order_line_id": "A-1-1",
                            "currency_iso_code": "KWD"})  # fmt: skip
    assert (row.amount, row.currency, row.mirakl_order_line_id) == (1234, "KWD", "A-1-1")


def test_spa12_commercial_id_drops_the_last_suffix():
    row = refund_from_spa12({"id": 9, "order_id": "ABC-DEF-1", "amount": Decimal("5"),
                             "currency_code": "JPY"})  # fmt: skip
    assert (row.mirakl_refund_id, row.amount, row.mirakl_commercial_order_id) == ("9", 5, "ABC-DEF")
    assert service_commercial_id("ABC") == "ABC"


def test_bad_refund_names_the_refund_and_field():
    with pytest.raises(InvalidItemError) as caught:
        refund_from_pa12({"id": "7", "order_id": "A-1", "order_commercial_id": "A",
                          "currency_iso_code": "EUR"})  # fmt: skip
    assert (caught.value.item_id, caught.value.reason) == ("7", "amount is missing")


def test_payment_from_transfer_first_then_mapping_else_on_hold():
    lookup = lookup_of(CAPTURED, PaymentState("ch_2", "charge", "succeeded", captured=True))
    first = decide_refund(ROW, transfer_payment_id="ch_1", mapping_payment_id="ch_2",
                          lookup_payment=lookup)  # fmt: skip
    assert (first.row.status, first.row.transaction_id) == (RefundStatus.PENDING, "ch_1")
    second = decide_refund(ROW, transfer_payment_id=None, mapping_payment_id="ch_2",
                           lookup_payment=lookup)  # fmt: skip
    assert second.row.transaction_id == "ch_2"
    none = decide_refund(ROW, transfer_payment_id=None, mapping_payment_id=None,
                         lookup_payment=lookup)  # fmt: skip
    assert (none.row.status, none.row.status_reason) == (
        RefundStatus.ON_HOLD, "Cannot find the ID of the payment to be refunded")  # fmt: skip


@pytest.mark.parametrize(
    ("payment", "status", "reason", "cancel"),
    [
        (PaymentState("ch_1", "charge", "succeeded", refunded=True, captured=True),
         RefundStatus.ABORTED, "Payment ch_1 has been canceled", None),
        (PaymentState("ch_1", "charge", "failed"), RefundStatus.ABORTED, "Payment ch_1 failed",
         None),
        (PaymentState("ch_1", "charge", "pending"), RefundStatus.ON_HOLD,
         "Payment ch_1 is not ready yet, status is pending", None),
        (PaymentState("ch_1", "payment_intent", "requires_capture"), RefundStatus.ON_HOLD,
         "Payment ch_1 is not ready yet, status is requires_capture", "ch_1"),
        (PaymentState("ch_1", "payment_intent", "processing"), RefundStatus.ON_HOLD,
         "Payment ch_1 is not ready yet, status is processing", None),
        (PaymentState("ch_1", "payment_intent", "canceled"), RefundStatus.ABORTED,
         "Payment ch_1 has been canceled", None),
    ],
)  # fmt: skip
def test_payment_checks(payment, status, reason, cancel):
    verdict = decide_refund(ROW, transfer_payment_id="ch_1", mapping_payment_id=None,
                            lookup_payment=lookup_of(payment))  # fmt: skip
    assert (verdict.row.status, verdict.row.status_reason, verdict.cancel_intent) == (
        status, reason, cancel)  # fmt: skip


def test_uncaptured_charge_of_an_open_intent_cancels_the_intent():
    charge = PaymentState("ch_1", "charge", "succeeded", payment_intent="pi_1")
    intent = PaymentState("pi_1", "payment_intent", "requires_capture")
    verdict = decide_refund(ROW, transfer_payment_id="ch_1", mapping_payment_id=None,
                            lookup_payment=lookup_of(charge, intent))  # fmt: skip
    assert (verdict.row.status, verdict.cancel_intent) == (RefundStatus.ON_HOLD, "pi_1")


def test_unknown_payment_aborts_and_refunded_row_only_waits_for_mirakl():
    gone = decide_refund(ROW, transfer_payment_id="ch_x", mapping_payment_id=None,
                         lookup_payment=lookup_of())  # fmt: skip
    assert gone.row.status is RefundStatus.ABORTED
    done = RefundRecord("R1", amount=3000, currency="EUR", stripe_refund_id="re_1",
                        status=RefundStatus.FAILED)  # fmt: skip

    def no_lookup(_):
        raise AssertionError("a refunded row must not look at the payment again")

    verdict = decide_refund(done, transfer_payment_id=None, mapping_payment_id=None,
                            lookup_payment=no_lookup)  # fmt: skip
    assert verdict.row.status is RefundStatus.PENDING
    validated = RefundRecord("R1", amount=1, currency="EUR", stripe_refund_id="re_1",
                             mirakl_validated_at=datetime.now(UTC))  # fmt: skip
    assert decide_refund(validated, transfer_payment_id=None, mapping_payment_id=None,
                         lookup_payment=no_lookup).row.status is RefundStatus.CREATED  # fmt: skip


PART = RefundPart("R1", Decimal("30.00"), Decimal("3.00"), Decimal("2.00"), "EUR")
CREATED_REFUND = RefundRecord("R1", amount=3000, currency="EUR", status=RefundStatus.CREATED)


def order_transfer(mirakl_id="A-1", status=TransferStatus.CREATED):
    return TransferRecord(TransferType.PRODUCT_ORDER, mirakl_id, status=status,
                          transfer_id="tr_1" if status is TransferStatus.CREATED else None,
                          destination_account="acct_1")  # fmt: skip


def reversal(mirakl_id="R1", **kw):
    args = {"refund": CREATED_REFUND, "order_transfer": order_transfer(), "refund_part": PART,
            "is_tax_row": mirakl_id.endswith("_TAX"), "tax_split": False, **kw}  # fmt: skip
    return decide_reversal(TransferRecord(TransferType.REFUND, mirakl_id), **args)


def test_reversal_amount_is_refund_less_commission_and_tax_with_split():
    assert (reversal().status, reversal().amount, reversal().transaction_id) == (
        TransferStatus.PENDING, 2700, "tr_1")  # fmt: skip
    assert reversal(tax_split=True).amount == 2500
    tax = reversal("R1_TAX", tax_split=True, order_transfer=order_transfer("A-1_TAX"))
    assert (tax.status, tax.amount) == (TransferStatus.PENDING, 200)


def test_reversal_of_zero_is_aborted_with_amount():
    part = RefundPart("R1", Decimal("3.00"), Decimal("3.00"), Decimal("0"), "EUR")
    row = reversal(refund_part=part)
    assert (row.status, row.status_reason) == (
        TransferStatus.ABORTED, "Amount must be positive, input was: 0.00 EUR")  # fmt: skip


@pytest.mark.parametrize(
    ("kw", "status", "reason"),
    [
        ({"refund": None}, TransferStatus.ON_HOLD, "Cannot find StripeRefund with ID R1"),
        ({"refund": RefundRecord("R1", status=RefundStatus.ABORTED)}, TransferStatus.ABORTED,
         "Refund R1 has been aborted"),
        ({"refund": RefundRecord("R1", status=RefundStatus.PENDING)}, TransferStatus.ON_HOLD,
         "Refund R1 has yet to be validated"),
        ({"order_transfer": None}, TransferStatus.ON_HOLD,
         "Payment split has to occur before the transfer can be reversed for a refund"),
        ({"order_transfer": order_transfer(status=TransferStatus.ON_HOLD)},
         TransferStatus.ON_HOLD,
         "Payment split has to occur before the transfer can be reversed for a refund"),
        ({"order_transfer": order_transfer(status=TransferStatus.ABORTED)},
         TransferStatus.ABORTED, "Nothing to reverse: the order transfer A-1 is TRANSFER_ABORTED"),
    ],
)  # fmt: skip
def test_reversal_waits_or_aborts(kw, status, reason):
    row = reversal(**kw)
    assert (row.status, row.status_reason) == (status, reason)


@pytest.mark.parametrize("refund_status", [None, *RefundStatus])
@pytest.mark.parametrize("transfer_status", [None, *TransferStatus])
@pytest.mark.parametrize("is_tax_row", [False, True])
@pytest.mark.parametrize("tax_split", [False, True])
def test_the_refunded_order_is_read_exactly_when_the_reversal_would_use_it(
    refund_status, transfer_status, is_tax_row, tax_split
):
    """Issue 15: no Mirakl read for a reversal that waits for something else first. Whether
    ``needs_refund_part`` asks for the order must match whether ``decide_reversal`` gets as far
    as the refunded amounts (without them it says the refund is not found in its order)."""
    row = TransferRecord(type=TransferType.REFUND, mirakl_id="R1" + ("_TAX" if is_tax_row else ""),
                         status=TransferStatus.ON_HOLD)  # fmt: skip
    refund = (
        None
        if refund_status is None
        else RefundRecord(
            mirakl_refund_id="R1",
            type=RefundType.PRODUCT_ORDER,
            status=refund_status,
            mirakl_order_id="A-1",
        )  # fmt: skip
    )
    order_transfer = (
        None
        if transfer_status is None
        else TransferRecord(
            type=TransferType.PRODUCT_ORDER,
            mirakl_id="A-1",
            status=transfer_status,
            transfer_id="tr_1",
        )  # fmt: skip
    )
    decided = decide_reversal(
        row, refund=refund, order_transfer=order_transfer, refund_part=None,
        is_tax_row=is_tax_row, tax_split=tax_split,
    )  # fmt: skip
    reaches_part = decided.status_reason == "Refund R1 is not found in its order"
    assert needs_refund_part(
        row, refund=refund, order_transfer=order_transfer, is_tax_row=is_tax_row,
        tax_split=tax_split,
    ) is reaches_part  # fmt: skip
