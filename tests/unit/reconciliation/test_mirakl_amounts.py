"""What Mirakl's documents say each ledger row should move (the workflows' own amount rules)."""

from __future__ import annotations

from decimal import Decimal

from mirakl_connector.ledger.records import HyperwalletPaymentKind, TransferType
from mirakl_connector.reconciliation import mirakl_amounts as amounts

ORDER = {
    "order_id": "ORD-1-A",
    "commercial_id": "ORD-1",
    "created_date": "2026-11-14T09:15:00Z",
    "currency_iso_code": "EUR",
    "order_state": "SHIPPING",
    "order_tax_mode": "TAX_EXCLUDED",
    "shop_id": 1,
    "total_price": Decimal("89.90"),
    "total_commission": Decimal("10.79"),
    "customer_debited_date": "2026-11-14T10:00:00Z",
    "order_lines": [
        {
            "order_line_id": "ORD-1-A-1",
            "order_line_state": "SHIPPING",
            "total_price": Decimal("89.90"),
            "taxes": [{"amount": Decimal("17.98"), "code": "VAT"}],
            "shipping_taxes": [],
            "refunds": [
                {
                    "id": "R-1",
                    "amount": Decimal("30.00"),
                    "commission_total_amount": Decimal("3.60"),
                    "taxes": [{"amount": Decimal("5.00")}],
                    "shipping_taxes": [],
                }
            ],
        }
    ],
}

INVOICE = {
    "invoice_id": 9001,
    "shop_id": 1,
    "currency_iso_code": "JPY",
    "date_created": "2026-11-20T01:00:00Z",
    "state": "COMPLETE",
    "type": "AUTO_INVOICE",
    "summary": {
        "amount_transferred": Decimal("15000"),
        "amount_transferred_to_operator": Decimal("1200"),
        "total_subscription_incl_tax": Decimal("-500"),
        "total_other_invoices_incl_tax": Decimal("-300"),
        "total_other_credits_incl_tax": Decimal("200"),
    },
}


def test_order_transfer_seller_share_and_tax_part():
    seller = amounts.order_transfer_amount(ORDER, "product", is_tax=False, tax_split=False)
    # total_price + taxes − commission = 89.90 + 17.98 − 10.79
    assert (seller.amount, seller.currency, seller.problem) == (9709, "EUR", None)
    split = amounts.order_transfer_amount(ORDER, "product", is_tax=False, tax_split=True)
    assert split.amount == 9709 - 1798
    tax = amounts.order_transfer_amount(ORDER, "product", is_tax=True, tax_split=True)
    assert tax.amount == 1798 and tax.document == "order ORD-1-A"


def test_refund_and_reversal_amounts_come_from_the_refund_in_its_order():
    refund = amounts.refund_amount(ORDER, "product", "R-1")
    assert (refund.amount, refund.currency) == (3000, "EUR")
    reversal = amounts.reversal_amount(ORDER, "product", "R-1", is_tax=False, tax_split=False)
    assert reversal.amount == 3000 - 360  # refund − refunded commission
    tax = amounts.reversal_amount(ORDER, "product", "R-1", is_tax=True, tax_split=True)
    assert tax.amount == 500
    assert amounts.refund_amount(ORDER, "product", "R-404") is None  # not in Mirakl


def test_an_unreadable_document_gives_a_problem_not_an_exception():
    broken = {**ORDER, "total_price": 1.5}  # a float: never money
    found = amounts.order_transfer_amount(broken, "product", is_tax=False, tax_split=False)
    assert found.amount is None and "total_price" in found.problem


def test_settlement_amounts_of_an_invoice():
    payout = amounts.settlement_amount(INVOICE, None)
    assert (payout.amount, payout.currency) == (15000, "JPY")
    fee = amounts.settlement_amount(INVOICE, TransferType.SUBSCRIPTION)
    assert fee.amount == 500  # Mirakl says what the seller owes as a negative number
    assert amounts.settlement_amount(INVOICE, TransferType.EXTRA_CREDITS).amount == 200


def test_hyperwallet_seller_payment_and_operator_commission_even_when_paid():
    paid = {**INVOICE, "payment": {"state": "PAID"}}
    seller = amounts.hyperwallet_amount(paid, "IV01", HyperwalletPaymentKind.SELLER)
    fee = amounts.hyperwallet_amount(paid, "IV01", HyperwalletPaymentKind.OPERATOR_FEE)
    assert (seller.amount, fee.amount, seller.currency) == (15000, 1200, "JPY")
    credit = {**INVOICE, "type": "MANUAL_CREDIT", "total_charged_amount": Decimal("700")}
    note = amounts.hyperwallet_amount(credit, "IV01", HyperwalletPaymentKind.SELLER)
    assert note.amount == 700
    draft = amounts.hyperwallet_amount(
        {**INVOICE, "state": "DRAFT"}, "IV01", HyperwalletPaymentKind.SELLER
    )
    assert draft.problem and "DRAFT" in draft.problem
