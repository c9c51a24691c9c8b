"""IV01 accounting documents read one way (mirakl_connector.mirakl.invoices) for both payers.

The Stripe settlement and the Hyperwallet invoice payments parse the same IV01 entry through the
same readers: a bad field is refused with the same words by both, naming the document.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.hyperwallet.payment_decisions import parse_iv01_invoice
from mirakl_connector.mirakl.invoices import read_amount, read_iv01
from mirakl_connector.stripe.settlement_decisions import parse_invoice


def iv01(**changes):
    return {
        "invoice_id": 230201,
        "shop_id": 2001,
        "currency_iso_code": "eur",
        "date_created": "2026-11-30T23:00:00Z",
        "state": "COMPLETE",
        "type": "AUTO_INVOICE",
        "payment": {"state": "PENDING"},
        "seller_billing_cycle_id": " cycle-1 ",
        "summary": {
            "amount_transferred": Decimal("4545.20"),
            "amount_transferred_to_operator": Decimal("955.69"),
            "total_subscription_incl_tax": Decimal("-9.99"),
        },
        **changes,
    }


def test_identity_and_status_are_read_at_once_values_on_demand():
    document = read_iv01(iv01(state="complete", summary=None, currency_iso_code=None))
    assert (document.invoice_id, document.state, document.doc_type) == (
        "230201",
        "COMPLETE",
        "AUTO_INVOICE",
    )
    assert (document.paid_in_mirakl, document.billing_cycle_id) == (None, "cycle-1")
    with pytest.raises(InvalidItemError, match="currency_iso_code is missing") as raised:
        document.currency()
    assert raised.value.item_id == "230201"


def test_both_payers_read_the_same_amounts_and_dates():
    settlement = parse_invoice(iv01())
    hyperwallet = parse_iv01_invoice(iv01())
    assert settlement.summary["amount_transferred"] == Decimal("4545.20")
    assert hyperwallet.seller_amount == settlement.payout_amount_minor() == 454520
    assert settlement.currency == hyperwallet.currency == "EUR"
    assert settlement.created_at == hyperwallet.created_at
    assert settlement.created_date == hyperwallet.created_date == "2026-11-30T23:00:00Z"
    assert settlement.shop_id == hyperwallet.shop_id == 2001


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"currency_iso_code": ""}, "currency_iso_code is missing"),
        ({"currency_iso_code": "XXY"}, "unknown currency"),
        ({"date_created": None}, "date_created is missing"),
        ({"date_created": "2026-11-30T23:00:00"}, "date_created has no timezone offset"),
        ({"summary": None}, "summary is missing"),
        ({"summary": {"amount_transferred": 1.5}}, "summary.amount_transferred must be a decimal"),
        ({"summary": {"amount_transferred": ""}}, "summary.amount_transferred is not a number"),
        ({"shop_id": "１"}, "shop_id is not numeric"),
    ],
)
def test_a_bad_field_is_refused_with_the_same_words_by_both(changes, message):
    for parse in (parse_invoice, parse_iv01_invoice):
        with pytest.raises(InvalidItemError, match=message) as raised:
            parse(iv01(**changes))
        assert raised.value.item_id == "230201", parse


def test_not_an_object_or_no_id():
    with pytest.raises(InvalidItemError, match="invoice is not an object"):
        read_iv01(["230201"])
    for missing in (None, "", True):
        with pytest.raises(InvalidItemError, match="invoice_id is missing"):
            read_iv01(iv01(invoice_id=missing))


def test_paid_by_either_field():
    assert read_iv01(iv01(payment={"state": "paid"})).paid_in_mirakl == "payment.state PAID"
    assert read_iv01(iv01(payment_status="PAID")).paid_in_mirakl == "payment_status PAID"
    assert read_iv01(iv01(payment="PAID")).paid_in_mirakl is None


def test_an_absent_amount_is_the_default_or_missing():
    assert read_amount(None, "summary.x", default=Decimal(0)) == 0
    assert read_amount("12.30", "summary.x") == Decimal("12.30")
    with pytest.raises(InvalidItemError, match="missing summary.x"):
        read_amount(None, "summary.x")
    # absent from the summary: zero for the settlement's transfers, an error for the seller payment
    document = read_iv01(iv01(summary={}))
    assert document.summary_amount("total_other_credits_incl_tax", default=Decimal(0)) == 0
    with pytest.raises(InvalidItemError, match="missing summary.amount_transferred"):
        parse_iv01_invoice(iv01(summary={}))
