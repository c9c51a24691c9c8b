"""Invoice → Hyperwallet payments, and payment notifications → Mirakl confirmation (pure rules)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.hyperwallet.payment_decisions import (
    ACCEPTED,
    FAILURE,
    IN_PROGRESS,
    HwInvoice,
    ProgramTokens,
    ShopTokens,
    classify_status,
    client_payment_base,
    is_live,
    known_payment_ids,
    live_payment,
    mirakl_paid,
    parse_iv01_invoice,
    parse_sbc11_cycle,
    payment_body,
    plan_invoice_payments,
    refresh_payment,
    shop_tokens,
)
from mirakl_connector.hyperwallet.payment_notices import (
    confirmation_endpoint,
    iv07_document,
    parse_payment_notice,
    sbc07_cycle,
)
from mirakl_connector.ledger import (
    HyperwalletPayment,
    HyperwalletPaymentKind,
    HyperwalletPaymentStatus,
)

S = HyperwalletPaymentStatus
NOW = datetime(2024, 5, 2, 10, 0, tzinfo=UTC)
PROGRAMS = {
    "EUROPE": ProgramTokens("EUROPE", "prg-pay", "trm-operator"),
    "NOFEE": ProgramTokens("NOFEE", "prg-pay2", None),
    "OTHER": ProgramTokens("OTHER", None, None, ignored=True),
}
SHOP = ShopTokens(2001, "EUROPE", "usr-1", "trm-seller")


def _invoice(seller: int = 454520, operator: int = 95569, **changes) -> HwInvoice:
    values = {
        "invoice_id": "230201",
        "source": "IV01",
        "shop_id": 2001,
        "currency": "EUR",
        "seller_amount": seller,
        "operator_amount": operator,
        "created_date": "2024-05-01T00:00:00Z",
        "created_at": NOW,
    }
    values.update(changes)
    return HwInvoice(**values)


CYCLE = "98665be1-ce69-4ab6-8d93-b8dfd3e67404"


def _iv01(**changes):
    raw = {
        "invoice_id": 230201,
        "shop_id": 2001,
        "date_created": "2024-05-01T00:00:00Z",
        "currency_iso_code": "EUR",
        "state": "COMPLETE",
        "type": "AUTO_INVOICE",
        "payment_status": "PENDING",
        "summary": {
            "amount_transferred": Decimal("4545.2"),
            "amount_transferred_to_operator": Decimal("955.69"),
        },
    }
    raw.update(changes)
    return raw


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("COMPLETED", ACCEPTED),
        ("completed", ACCEPTED),
        *[(s, FAILURE) for s in ("FAILED", "RECALLED", "RETURNED", "EXPIRED", "UNCLAIMED")],
        ("CANCELLED", FAILURE),
        *[
            (s, IN_PROGRESS)
            for s in (
                "CREATED",
                "SCHEDULED",
                "PENDING_ACCOUNT_ACTIVATION",
                "PENDING_TAX_VERIFICATION",
                "PENDING_TRANSFER_METHOD_ACTION",
                "PENDING_TRANSACTION_VERIFICATION",
                "IN_PROGRESS",
                "SOMETHING_NEW",
            )
        ],
    ],
)
def test_status_classes_follow_the_seed(status, expected):
    assert classify_status(status) == expected


def test_iv01_invoice_amounts_in_minor_units():
    invoice = parse_iv01_invoice(_iv01())
    assert isinstance(invoice, HwInvoice)
    assert (invoice.invoice_id, invoice.shop_id, invoice.currency) == ("230201", 2001, "EUR")
    assert (invoice.seller_amount, invoice.operator_amount) == (454520, 95569)


def test_iv01_kwd_and_jpy_exponents():
    kwd = parse_iv01_invoice(
        _iv01(currency_iso_code="KWD", summary={"amount_transferred": Decimal("1.234")})
    )
    jpy = parse_iv01_invoice(
        _iv01(currency_iso_code="JPY", summary={"amount_transferred": Decimal("1500")})
    )
    assert (kwd.seller_amount, kwd.operator_amount) == (1234, 0)
    assert jpy.seller_amount == 1500


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"state": "DRAFT"}, "state is DRAFT, not COMPLETE"),
        ({"type": "MANUAL_CREDIT"}, "type is MANUAL_CREDIT, not AUTO_INVOICE"),
        ({"payment_status": "PAID"}, "already PAID in Mirakl (payment_status PAID)"),
        ({"payment": {"state": "PAID"}}, "already PAID in Mirakl (payment.state PAID)"),
    ],
)
def test_iv01_documents_not_to_pay_say_why(changes, reason):
    assert parse_iv01_invoice(_iv01(**changes)) == reason


def test_iv01_paid_documents_with_include_paid():
    assert isinstance(
        parse_iv01_invoice(_iv01(payment_status="PAID"), include_paid=True), HwInvoice
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"summary": None}, "summary is missing"),
        ({"shop_id": None}, "shop_id is missing"),
        ({"shop_id": "１"}, "shop_id is not numeric: '１'"),  # int("１") is 1: shop 1 was paid
        ({"currency_iso_code": ""}, "currency_iso_code is missing"),
        ({"summary": {"amount_transferred": "12,5"}}, "amount_transferred"),
        ({"date_created": None}, "date_created is missing"),
    ],
)
def test_iv01_bad_data_names_the_invoice(changes, message):
    with pytest.raises(InvalidItemError, match=message) as caught:
        parse_iv01_invoice(_iv01(**changes))
    assert caught.value.item_id == "230201"


@pytest.mark.parametrize(
    ("changes", "paid"),
    [
        ({}, None),
        ({"payment": {"state": "PAID"}}, "payment.state PAID"),
        ({"payment": {"state": "PENDING"}, "payment_status": "PAID"}, "payment_status PAID"),
        ({"payment": {"state": "FAILED"}}, None),
        ({"payment": "PAID"}, None),  # not the schema's object: nothing read from it
    ],
)
def test_any_known_field_marking_an_iv01_document_paid_counts(changes, paid):
    assert mirakl_paid(_iv01(**changes), "IV01") == paid


def test_a_paid_document_read_with_include_paid_says_so():
    invoice = parse_iv01_invoice(
        _iv01(payment={"state": "PAID"}, seller_billing_cycle_id=CYCLE), include_paid=True
    )
    assert invoice.paid_in_mirakl == "payment.state PAID"
    assert (invoice.billing_cycle_id, invoice.accounting_invoice_id) == (CYCLE, "230201")


@pytest.mark.parametrize(
    ("convention", "expected"), [("invoice_id", "230201"), ("billing_cycle_id", CYCLE)]
)
def test_client_payment_id_follows_the_convention(convention, expected):
    invoice = parse_iv01_invoice(_iv01(seller_billing_cycle_id=CYCLE))
    assert client_payment_base(invoice, convention) == expected
    assert known_payment_ids(invoice) == ("230201", CYCLE)
    assert client_payment_base(parse_iv01_invoice(_iv01()), "billing_cycle_id") is None


def test_sbc11_cycle():
    raw = {
        "id": "98665be1-ce69-4ab6-8d93-b8dfd3e67404",
        "date_created": "2024-05-01T00:00:00Z",
        "currency_iso_code": "USD",
        "amount_transferred_to_seller": Decimal("10.5"),
        "amount_transferred_to_operator": Decimal("0"),
        "pay_out": {"state": "TO_PAY"},
        "shop": {"shop_id": 7},
    }
    cycle = parse_sbc11_cycle(raw)
    assert (cycle.invoice_id, cycle.source, cycle.shop_id) == (raw["id"], "SBC11", 7)
    assert (cycle.seller_amount, cycle.operator_amount) == (1050, 0)
    assert (
        parse_sbc11_cycle({**raw, "pay_out": {"state": "PAID"}})
        == "already PAID in Mirakl (pay_out.state PAID)"
    )


def test_shop_tokens_from_additional_fields():
    shop = {
        "shop_id": 2001,
        "shop_state": "OPEN",
        "shop_additional_fields": [
            {"code": "hw-program", "value": "EUROPE"},
            {"code": "hw-user-token", "value": "usr-1"},
            {"code": "hw-bankaccount-token", "value": " "},
        ],
    }
    assert shop_tokens(shop) == ShopTokens(2001, "EUROPE", "usr-1", None)
    assert shop_tokens({**shop, "shop_state": "TERMINATED"}).terminated


def test_plan_pays_seller_and_operator_fee():
    plan = plan_invoice_payments(_invoice(), SHOP, PROGRAMS, operator_commissions=True)
    assert plan.hold is None and plan.skip is None
    seller, fee = plan.payments
    assert (seller.client_payment_id, seller.kind, seller.amount) == (
        "230201",
        HyperwalletPaymentKind.SELLER,
        454520,
    )
    assert (seller.destination_token, seller.program, seller.status) == (
        "trm-seller",
        "EUROPE",
        S.PENDING,
    )
    assert (fee.client_payment_id, fee.kind, fee.amount, fee.destination_token) == (
        "230201-operatorFee",
        HyperwalletPaymentKind.OPERATOR_FEE,
        95569,
        "trm-operator",
    )


def test_plan_without_commissions_pays_only_the_seller():
    plan = plan_invoice_payments(_invoice(), SHOP, PROGRAMS, operator_commissions=False)
    assert [p.client_payment_id for p in plan.payments] == ["230201"]


def test_zero_commission_is_skipped_negative_is_refused_with_a_reason():
    zero = plan_invoice_payments(_invoice(operator=0), SHOP, PROGRAMS, operator_commissions=True)
    assert [p.client_payment_id for p in zero.payments] == ["230201"]
    assert zero.notes == ["operator commission is 0: no operator payment"]

    negative = plan_invoice_payments(
        _invoice(operator=-1250), SHOP, PROGRAMS, operator_commissions=True
    )
    seller, fee = negative.payments
    assert seller.status == S.PENDING
    assert fee.status == S.ABORTED
    assert "operator commission is negative (-12.50 EUR)" in fee.status_reason
    assert "not sent" in fee.status_reason


def test_commission_without_operator_account_is_held():
    shop = ShopTokens(2001, "NOFEE", "usr-1", "trm-seller")
    plan = plan_invoice_payments(_invoice(), shop, PROGRAMS, operator_commissions=True)
    assert plan.payments[1].status == S.ON_HOLD
    assert "no bank_account_token" in plan.payments[1].status_reason


@pytest.mark.parametrize(
    ("shop", "hold"),
    [
        (None, "shop 2001 is not returned by Mirakl (S20)"),
        (ShopTokens(2001, "EUROPE", "usr", "trm", True), "TERMINATED"),
        (ShopTokens(2001, "ASIA", "usr", "trm"), "'ASIA', which is not a configured program"),
        (ShopTokens(2001, "EUROPE", "usr", None), "no hw-bankaccount-token yet"),
    ],
)
def test_invoices_that_cannot_be_paid_yet_are_held_with_why(shop, hold):
    plan = plan_invoice_payments(_invoice(), shop, PROGRAMS, operator_commissions=True)
    assert plan.payments == []
    assert hold in plan.hold


def test_ignored_program_and_no_program_are_skipped_not_held():
    shop = ShopTokens(2001, "OTHER", "usr", "trm")
    plan = plan_invoice_payments(_invoice(), shop, PROGRAMS, operator_commissions=True)
    assert (plan.skip, plan.hold, plan.payments) == ("program OTHER is ignored", None, [])
    none = plan_invoice_payments(
        _invoice(), ShopTokens(2001, None, None, None), PROGRAMS, operator_commissions=True
    )
    assert none.skip == "shop 2001 has no hw-program (not paid through Hyperwallet)"


def test_payment_body_amount_is_a_plain_decimal_string():
    seller = plan_invoice_payments(_invoice(), SHOP, PROGRAMS, operator_commissions=True).payments[
        0
    ]
    assert payment_body(seller, "prg-pay") == {
        "clientPaymentId": "230201",
        "amount": "4545.20",
        "currency": "EUR",
        "destinationToken": "trm-seller",
        "programToken": "prg-pay",
        "purpose": "OTHER",
    }
    jpy = HyperwalletPayment("1", "1", amount=1500, currency="JPY", destination_token="trm")
    assert payment_body(jpy, "prg")["amount"] == "1500"


def test_live_payment_ignores_failed_ones_and_prefers_completed():
    found = [
        {"token": "pmt-1", "status": "RETURNED", "createdOn": "2024-05-03T00:00:00"},
        {"token": "pmt-2", "status": "CREATED", "createdOn": "2024-05-02T00:00:00"},
        {"token": "pmt-3", "status": "COMPLETED", "createdOn": "2024-05-01T00:00:00"},
    ]
    assert live_payment(found)["token"] == "pmt-3"
    assert live_payment(found[:2])["token"] == "pmt-2"
    assert live_payment(found[:1]) is None
    assert live_payment([]) is None


def test_refresh_keeps_live_rows_and_takes_fresh_tokens_otherwise():
    planned = plan_invoice_payments(_invoice(), SHOP, PROGRAMS, operator_commissions=True)
    seller = planned.payments[0]
    live = HyperwalletPayment(
        "230201", "230201", status=S.CREATED, payment_token="pmt-1", destination_token="trm-old"
    )
    assert is_live(live)
    assert refresh_payment(live, seller) is live
    held = HyperwalletPayment("230201", "230201", status=S.ON_HOLD, id=5, attempts=2)
    merged = refresh_payment(held, seller)
    assert (merged.status, merged.destination_token, merged.id, merged.attempts) == (
        S.PENDING,
        "trm-seller",
        5,
        2,
    )
    failed = HyperwalletPayment("230201", "230201", status=S.FAILED, payment_token="pmt-0")
    assert not is_live(failed)
    assert refresh_payment(failed, seller).status == S.PENDING


NOTIFICATION = {
    "token": "wbh-412345609-d849-4f98-97b1-30aa1b03e8b7",
    "type": "PAYMENTS.UPDATED.STATUS.COMPLETED",
    "createdOn": "2020-12-01T05:16:46.464",
    "object": {
        "token": "pmt-ac0a47e6-da9f-4e15-ba7a-dc7356d41135",
        "status": "COMPLETED",
        "createdOn": "2021-11-12T09:55:53",
        "amount": "83767.50",
        "currency": "EUR",
        "clientPaymentId": "232122",
        "purpose": "OTHER",
        "destinationToken": "trm-0f406c41-6464-400d-9ac7-0da3edb1b854",
        "programToken": "prg-4908dff1-d002-41f5-8b52-d549108ff7d6",
    },
}


def test_iv07_document_follows_the_seed_mapping():
    notice = parse_payment_notice(NOTIFICATION, NOW)
    assert iv07_document(notice, confirm_linked_manual_documents=True) == {
        "invoice_id": 232122,
        "amount": Decimal("83767.50"),
        "currency_iso_code": "EUR",
        "transaction_date": "2021-11-12T09:55:53Z",
        "confirm_all_linked_manual_documents": True,
    }
    cycle = "98665be1-ce69-4ab6-8d93-b8dfd3e67404"
    assert sbc07_cycle(notice, cycle) == {
        "id": cycle,
        "state": "PAID",
        "amount_transferred_to_seller": Decimal("83767.50"),
        "currency_iso_code": "EUR",
        "transaction_date": "2021-11-12T09:55:53Z",
    }


def test_sbc07_needs_a_billing_cycle_uuid():
    notice = parse_payment_notice(NOTIFICATION, NOW)
    with pytest.raises(InvalidItemError, match="SBC07 needs a UUID"):
        sbc07_cycle(notice)


@pytest.mark.parametrize(
    ("cpid", "row_source", "default", "endpoint"),
    [
        ("98665be1-ce69-4ab6-8d93-b8dfd3e67404", None, "IV01", "SBC07"),
        ("98665be1-ce69-4ab6-8d93-b8dfd3e67404-operatorFee", None, "IV01", "SBC07"),
        ("232122", None, "SBC11", "IV07"),
        ("98665be1-ce69-4ab6-8d93-b8dfd3e67404", "IV01", "IV01", "IV07"),
        ("232122", "SBC11", "IV01", "SBC07"),
        ("odd", None, "SBC11", "SBC07"),
    ],
)
def test_confirmation_endpoint_follows_the_ledger_then_the_id_shape(
    cpid, row_source, default, endpoint
):
    assert confirmation_endpoint(cpid, row_source, default) == endpoint


def test_iv07_needs_a_numeric_invoice_id_and_the_fields():
    notice = parse_payment_notice(
        {**NOTIFICATION, "object": {**NOTIFICATION["object"], "clientPaymentId": "INV-1"}}, NOW
    )
    with pytest.raises(InvalidItemError, match="IV07 needs a number"):
        iv07_document(notice, confirm_linked_manual_documents=True)
    bare = parse_payment_notice(
        {**NOTIFICATION, "object": {**NOTIFICATION["object"], "createdOn": None}}, NOW
    )
    with pytest.raises(InvalidItemError, match="no createdOn"):
        iv07_document(bare, confirm_linked_manual_documents=False)


def test_notice_status_falls_back_to_the_type_and_requires_ids():
    obj = {k: v for k, v in NOTIFICATION["object"].items() if k != "status"}
    notice = parse_payment_notice({**NOTIFICATION, "object": obj}, NOW)
    assert notice.status == "COMPLETED"
    with pytest.raises(InvalidItemError, match="clientPaymentId"):
        parse_payment_notice({**NOTIFICATION, "object": {**obj, "clientPaymentId": None}}, NOW)
