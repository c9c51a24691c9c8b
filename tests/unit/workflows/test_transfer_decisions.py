"""Every rule of the payment split decision procedure, with its reason text and amounts."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mirakl_connector.core.errors import PaymentProviderError
from mirakl_connector.ledger.records import (
    AccountMapping,
    TransferRecord,
    TransferStatus,
    TransferType,
)
from mirakl_connector.mirakl.orders import parse_product_order, parse_service_order
from mirakl_connector.stripe.gateway import PaymentState
from mirakl_connector.stripe.transfer_decisions import decide_order_transfer

D = Decimal

PAYMENTS = {
    "ch_ok": PaymentState("ch_ok", "charge", "succeeded", captured=True),
    "ch_auth": PaymentState("ch_auth", "charge", "succeeded", captured=False),
    "ch_refunded": PaymentState("ch_refunded", "charge", "succeeded", captured=True, refunded=True),
    "ch_failed": PaymentState("ch_failed", "charge", "failed"),
    "ch_pending": PaymentState("ch_pending", "charge", "pending"),
    "pi_ok": PaymentState(
        "pi_ok", "payment_intent", "succeeded",
        charge=PaymentState("ch_of_pi", "charge", "succeeded", captured=True),
    ),
    "pi_canceled": PaymentState("pi_canceled", "payment_intent", "canceled"),
    "pi_processing": PaymentState("pi_processing", "payment_intent", "processing"),
}  # fmt: skip


def lookup(payment_id: str) -> PaymentState:
    if payment_id not in PAYMENTS:
        raise PaymentProviderError(f"No such charge: '{payment_id}'", permanent=True)
    return PAYMENTS[payment_id]


def product_order(**overrides):
    order = {
        "order_id": "ORD-1-A",
        "commercial_id": "ORD-1",
        "created_date": "2026-11-20T10:00:00Z",
        "customer_debited_date": "2026-11-20T11:00:00Z",
        "currency_iso_code": "EUR",
        "order_state": "SHIPPING",
        "order_tax_mode": "TAX_EXCLUDED",
        "shop_id": 1,
        "total_commission": D("3.99"),
        "total_price": D("69.12"),
        "transaction_number": "ch_ok",
        "order_lines": [
            {
                "order_line_id": "ORD-1-A-1",
                "order_line_state": "SHIPPING",
                "total_price": D("12.34"),
                "shipping_taxes": [{"amount": D("1.12"), "code": "ECO"}, {"amount": D("1.34")}],
                "taxes": [{"amount": D("1.56"), "code": "ECO"}, {"amount": D("1.78")}],
            },
            {
                "order_line_id": "ORD-1-A-2",
                "order_line_state": "SHIPPING",
                "total_price": D("56.78"),
                "shipping_taxes": [{"amount": D("2.12")}, {"amount": D("2.34")}],
                "taxes": [{"amount": D("2.56")}, {"amount": D("2.78")}],
            },
        ],
    }
    order.update(overrides)
    return order


SHOP_1 = AccountMapping(mirakl_shop_id=1, stripe_account_id="acct_seller1", kyc_status="APPROVED")


def decide(
    raw=None,
    *,
    row=None,
    mapping=SHOP_1,
    tax_row=False,
    tax_split=False,
    tax_account="acct_tax",
    fallback=None,
    order=None,
):
    order = order or parse_product_order(raw if raw is not None else product_order())
    row = row or TransferRecord(
        type=TransferType.PRODUCT_ORDER, mirakl_id=order.order_id + ("_TAX" if tax_row else "")
    )
    return decide_order_transfer(
        row, order, shop_mapping=mapping, is_tax_row=tax_row, tax_split=tax_split,
        tax_account=tax_account, fallback_payment_id=fallback, lookup_payment=lookup,
    )  # fmt: skip


def test_paid_order_becomes_pending_with_seller_amount_and_source_charge():
    row = decide()
    assert row.status is TransferStatus.PENDING
    assert row.status_reason is None
    # 69.12 + shipping taxes 5.80... (1.12+1.34+1.56+1.78 + 2.12+2.34+2.56+2.78 = 15.60) - 3.99
    assert row.amount == 6912 + 1560 - 399
    assert row.currency == "EUR"
    assert row.transaction_id == "ch_ok"
    assert row.destination_account == "acct_seller1"
    assert row.mirakl_shop_id == 1


def test_existing_transfer_id_means_created():
    row = TransferRecord(type=TransferType.PRODUCT_ORDER, mirakl_id="ORD-1-A", transfer_id="tr_1",
                         status=TransferStatus.FAILED, status_reason="old")  # fmt: skip
    decided = decide(row=row)
    assert (decided.status, decided.status_reason) == (TransferStatus.CREATED, None)


@pytest.mark.parametrize(
    ("overrides", "mapping", "status", "reason"),
    [
        ({"shop_id": None}, SHOP_1, TransferStatus.ON_HOLD, "No shop ID provided"),
        ({"shop_id": 7}, None, TransferStatus.ON_HOLD, "Cannot find Stripe account for shop ID 7"),
        ({}, AccountMapping(1, "acct_seller1", ignored=True), TransferStatus.IGNORED,
         "Shop 1 is ignored"),
        ({"order_state": "REFUSED"}, SHOP_1, TransferStatus.ABORTED,
         "Order cannot be processed, status is REFUSED"),
        ({"order_state": "CANCELED"}, SHOP_1, TransferStatus.ABORTED,
         "Order cannot be processed, status is CANCELED"),
        ({"order_state": "WAITING_ACCEPTANCE"}, SHOP_1, TransferStatus.ON_HOLD,
         "Order is not ready yet, status is WAITING_ACCEPTANCE"),
        ({"order_state": "WAITING_DEBIT_PAYMENT"}, SHOP_1, TransferStatus.ON_HOLD,
         "Order is not ready yet, status is WAITING_DEBIT_PAYMENT"),
        ({"customer_debited_date": None}, SHOP_1, TransferStatus.ON_HOLD,
         "Order is not ready yet, status is SHIPPING"),
        ({"transaction_number": "ch_auth"}, SHOP_1, TransferStatus.ON_HOLD,
         "Payment ch_auth is not ready yet, status is succeeded (not captured)"),
        ({"transaction_number": "ch_refunded"}, SHOP_1, TransferStatus.ABORTED,
         "Payment ch_refunded has been canceled"),
        ({"transaction_number": "ch_failed"}, SHOP_1, TransferStatus.ABORTED,
         "Payment ch_failed failed"),
        ({"transaction_number": "ch_pending"}, SHOP_1, TransferStatus.ON_HOLD,
         "Payment ch_pending is not ready yet, status is pending"),
        ({"transaction_number": "pi_canceled"}, SHOP_1, TransferStatus.ABORTED,
         "Payment pi_canceled has been canceled"),
        ({"transaction_number": "pi_processing"}, SHOP_1, TransferStatus.ON_HOLD,
         "Payment pi_processing is not ready yet, status is processing"),
        ({"transaction_number": "ch_missing"}, SHOP_1, TransferStatus.ABORTED,
         "No such charge: 'ch_missing'"),
        ({"total_price": D("3.99"), "order_lines": []}, SHOP_1, TransferStatus.ABORTED,
         "Amount must be positive, input was: 0.00 EUR"),
    ],
)  # fmt: skip
def test_decision_rules(overrides, mapping, status, reason):
    row = decide(product_order(**overrides), mapping=mapping)
    assert row.status is status
    assert row.status_reason == reason


def test_first_matching_rule_wins_ignored_before_aborted():
    row = decide(product_order(order_state="REFUSED"), mapping=AccountMapping(1, "a", ignored=True))
    assert row.status is TransferStatus.IGNORED


def test_payment_intent_uses_its_charge_as_source_transaction():
    row = decide(product_order(transaction_number="pi_ok"))
    assert row.status is TransferStatus.PENDING
    assert row.transaction_id == "ch_of_pi"


def test_no_transaction_number_falls_back_to_payment_mapping():
    row = decide(product_order(transaction_number=None), fallback="ch_ok")
    assert row.transaction_id == "ch_ok"
    assert row.status is TransferStatus.PENDING


def test_unknown_payment_prefix_transfers_from_platform_balance():
    row = decide(product_order(transaction_number="ext-12345"))
    assert row.status is TransferStatus.PENDING
    assert row.transaction_id is None


def test_transient_stripe_error_is_raised_not_turned_into_a_decision():
    def down(_payment_id):
        raise PaymentProviderError("connection reset", permanent=False)

    order = parse_product_order(product_order())
    row = TransferRecord(type=TransferType.PRODUCT_ORDER, mirakl_id="ORD-1-A")
    with pytest.raises(PaymentProviderError):
        decide_order_transfer(
            row, order, shop_mapping=SHOP_1, is_tax_row=False, tax_split=False,
            tax_account=None, fallback_payment_id=None, lookup_payment=down,
        )  # fmt: skip


def test_tax_included_adds_no_taxes():
    row = decide(product_order(order_tax_mode="TAX_INCLUDED"))
    assert row.amount == 6912 - 399


def test_tax_split_seller_and_tax_rows():
    seller = decide(tax_split=True)
    tax = decide(tax_row=True, tax_split=True)
    product_taxes = 156 + 178 + 256 + 278
    assert seller.amount == 6912 + 1560 - 399 - product_taxes
    assert tax.amount == product_taxes
    assert tax.destination_account == "acct_tax"
    assert tax.mirakl_id == "ORD-1-A_TAX"
    assert seller.amount + tax.amount + 399 == 6912 + 1560


def test_tax_row_without_tax_account_or_with_split_disabled_waits():
    assert decide(tax_row=True, tax_split=True, tax_account=None).status_reason == (
        "No stripe account ID provided"
    )
    assert decide(tax_row=True, tax_split=False).status is TransferStatus.ON_HOLD


def test_refused_line_is_not_taxed():
    raw = product_order()
    raw["order_lines"][0]["order_line_state"] = "REFUSED"
    raw["total_price"] = D("56.78")  # Mirakl already removed the refused line from total_price
    row = decide(raw)
    assert row.amount == 5678 + (212 + 234 + 256 + 278) - 399


def test_zero_decimal_currency_jpy():
    raw = product_order(currency_iso_code="JPY", total_price=D("1500"), total_commission=D("150"),
                        order_lines=[])  # fmt: skip
    row = decide(raw)
    assert (row.amount, row.currency) == (1350, "JPY")


def test_three_decimal_currency_kwd():
    raw = product_order(
        currency_iso_code="KWD", total_price=D("10.125"), total_commission=D("1.005"),
        order_lines=[{"order_line_id": "L1", "order_line_state": "SHIPPING",
                      "total_price": D("10.125"), "taxes": [{"amount": D("0.500")}],
                      "shipping_taxes": []}],
    )  # fmt: skip
    row = decide(raw)
    assert (row.amount, row.currency) == (10125 + 500 - 1005, "KWD")


def service_order(**overrides):
    order = {
        "id": "SRV-1-A",
        "commercial_order_id": "SRV-1",
        "date_created": "2026-11-20T10:00:00.000+01:00",
        "currency_code": "EUR",
        "state": "ORDER_PENDING",
        "order_tax_mode": "TAX_EXCLUDED",
        "shop": {"id": 1},
        "commission": {"amount_including_taxes": D("3.99")},
        "price": {
            "amount": D("12.34"),
            "options": [
                {"type": "BOOLEAN", "amount": D("1.12")},
                {"type": "VALUE_LIST", "values": [{"amount": D("1.34")}]},
            ],
            "taxes": [{"amount": D("1.56")}, {"amount": D("1.78")}],
        },
    }
    order.update(overrides)
    return order


DEBIT_OK = {
    "order_id": "SRV-1-A",
    "state": "OK",
    "transaction_number": "ch_ok",
    "amount": D("18.14"),
}


def srow(mirakl_id: str = "SRV-1-A") -> TransferRecord:
    return TransferRecord(type=TransferType.SERVICE_ORDER, mirakl_id=mirakl_id)


def test_service_order_amount_with_options_and_taxes():
    order = parse_service_order(service_order(), DEBIT_OK)
    row = decide(order=order, row=srow())
    assert row.status is TransferStatus.PENDING
    assert row.amount == 1234 + 112 + 134 + 156 + 178 - 399
    assert row.transaction_id == "ch_ok"


def test_service_order_tax_split_and_tax_included():
    order = parse_service_order(service_order(), DEBIT_OK)
    tax = decide(order=order, tax_row=True, tax_split=True,
                 row=srow("SRV-1-A_TAX"))  # fmt: skip
    assert tax.amount == 156 + 178
    included = parse_service_order(service_order(order_tax_mode="TAX_INCLUDED"), DEBIT_OK)
    row = decide(order=included, row=srow())
    assert row.amount == 1234 + 112 + 134 - 399


@pytest.mark.parametrize(
    ("overrides", "debit", "status", "reason"),
    [
        ({}, None, TransferStatus.ON_HOLD, "Order is not ready yet, status is ORDER_PENDING"),
        ({}, {**DEBIT_OK, "state": "WAITING"}, TransferStatus.ON_HOLD,
         "Order is not ready yet, status is ORDER_PENDING"),
        ({"state": "WAITING_SCORING"}, DEBIT_OK, TransferStatus.ON_HOLD,
         "Order is not ready yet, status is WAITING_SCORING"),
        ({"state": "ORDER_EXPIRED"}, DEBIT_OK, TransferStatus.ABORTED,
         "Order cannot be processed, status is ORDER_EXPIRED"),
    ],
)  # fmt: skip
def test_service_order_rules(overrides, debit, status, reason):
    order = parse_service_order(service_order(**overrides), debit)
    row = decide(order=order, row=srow())
    assert (row.status, row.status_reason) == (status, reason)


# -- KYC hold (the KYC monitor stores the status; the split holds, never ignores) -----------


@pytest.mark.parametrize("kyc", ["PENDING_SUBMISSION", "PENDING_APPROVAL", "REFUSED"])
def test_unverified_seller_account_holds_the_transfer(kyc):
    row = decide(mapping=AccountMapping(1, "acct_seller1", kyc_status=kyc))
    assert row.status is TransferStatus.ON_HOLD
    assert row.status_reason == f"Stripe account acct_seller1 is not verified yet (KYC {kyc})"
    assert row.amount is None  # nothing decided past the hold


def test_verified_kyc_does_not_hold():
    row = decide(mapping=AccountMapping(1, "acct_seller1", kyc_status="APPROVED"))
    assert row.status is TransferStatus.PENDING


def test_unknown_kyc_holds_the_transfer_until_known():
    """ORD-1012-A: a brand-new account nobody has looked at yet is not a verified one."""
    row = decide(mapping=AccountMapping(1, "acct_seller1", kyc_status=None))
    assert row.status is TransferStatus.ON_HOLD
    assert row.status_reason == (
        "Stripe account acct_seller1 verification status is not known yet "
        "(waiting for the KYC monitor or an account.updated event)"
    )
    assert row.amount is None
    released = decide(row=row, mapping=AccountMapping(1, "acct_seller1", kyc_status="APPROVED"))
    assert released.status is TransferStatus.PENDING


def test_kyc_hold_clears_when_the_status_clears():
    held = decide(mapping=AccountMapping(1, "acct_seller1", kyc_status="PENDING_SUBMISSION"))
    assert held.status is TransferStatus.ON_HOLD
    released = decide(row=held, mapping=AccountMapping(1, "acct_seller1", kyc_status="APPROVED"))
    assert released.status is TransferStatus.PENDING
    assert released.status_reason is None
    assert released.amount == 6912 + 1560 - 399


def test_ignored_wins_over_kyc_hold_and_tax_twin_is_not_held():
    mapping = AccountMapping(1, "acct_seller1", ignored=True, kyc_status="REFUSED")
    assert decide(mapping=mapping).status is TransferStatus.IGNORED
    unverified = AccountMapping(1, "acct_seller1", kyc_status="REFUSED")
    tax = decide(mapping=unverified, tax_row=True, tax_split=True)
    assert tax.status is TransferStatus.PENDING
    assert tax.destination_account == "acct_tax"
