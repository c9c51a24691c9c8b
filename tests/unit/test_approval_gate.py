"""The approval gate's rules (pure): thresholds per currency in minor units, first payouts,
decisions bound to amount, currency and destination, and its place in each decision function."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.ledger.records import (
    AccountMapping,
    HyperwalletPayment,
    HyperwalletPaymentStatus,
    PayoutRecord,
    PayoutStatus,
    TransferRecord,
    TransferStatus,
    TransferType,
)
from mirakl_connector.mirakl.orders import parse_product_order
from mirakl_connector.operations.approval_gate import (
    AWAITING,
    REJECTED,
    ApprovalDecision,
    ApprovalGate,
    ApprovalSettings,
    Decision,
    Movement,
    gate_hyperwallet_payment,
    hyperwallet_item,
    is_decidable,
    payout_item,
    transfer_item,
)
from mirakl_connector.stripe.gateway import PaymentState
from mirakl_connector.stripe.settlement_decisions import (
    decide_invoice_transfer,
    decide_payout,
    parse_invoice,
)
from mirakl_connector.stripe.transfer_decisions import decide_order_transfer

AT = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
SELLER = AccountMapping(
    1, "acct_seller", payouts_enabled=True, charges_enabled=True, kyc_status="APPROVED"
)


def settings(**values) -> ApprovalSettings:
    return ApprovalSettings.from_mapping(values)


def decision(item, kind=Decision.APPROVED, **changes) -> ApprovalDecision:
    values = {
        "entity": item.entity,
        "item": item.item,
        "decision": kind,
        "amount": item.amount,
        "currency": item.currency,
        "destination": item.destination,
        "source": item.source,
        "decided_by": "alice",
        "decided_at": AT,
        "why": "checked with the seller",
    }
    values.update(changes)
    return ApprovalDecision(**values)


def transfer(amount, currency="EUR", destination="acct_seller", **row):
    return TransferRecord(
        type=TransferType.PRODUCT_ORDER, mirakl_id="ORD-1-A", amount=amount, currency=currency,
        destination_account=destination, id=1, **row,
    )  # fmt: skip


# -- settings ---------------------------------------------------------------------------------


def test_off_by_default_and_when_the_section_is_absent():
    for parsed in (ApprovalSettings(), ApprovalSettings.from_mapping(None), settings()):
        assert parsed.enabled is False
        assert parsed.first_payout_to_new_account is False
    assert settings(first_payout_to_new_account=True).enabled is True
    assert settings(transfer_above={"EUR": "1.00"}).enabled is True


@pytest.mark.parametrize(
    ("currency", "text", "minor"),
    [
        ("EUR", "10000.00", 1_000_000),
        ("eur", "10000", 1_000_000),  # code normalised, whole units allowed
        ("JPY", "1500000", 1_500_000),  # no decimals
        ("KWD", "250.125", 250_125),  # three decimals
        ("ISK", "50000", 50_000),  # ISO exponent 0, whatever Stripe's API unit is
        ("MGA", "12.00", 1_200),  # ISO exponent 2 (Stripe: zero-decimal)
    ],
)
def test_thresholds_are_decimal_strings_kept_in_iso_minor_units(currency, text, minor):
    parsed = settings(payout_above={currency: text})
    assert parsed.threshold(Movement.PAYOUT, currency.upper()) == minor
    assert parsed.threshold(Movement.TRANSFER, currency.upper()) is None


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"transfer_above": {"EUR": 10000}}, r"approval\.transfer_above\.EUR must be a string"),
        ({"transfer_above": {"EUR": 10.5}}, r"approval\.transfer_above\.EUR must be a string"),
        ({"payout_above": {"EUR": "10.005"}}, r"more decimals than EUR has \(2\)"),
        ({"payout_above": {"JPY": "10.5"}}, r"more decimals than JPY has \(0\)"),
        ({"payout_above": {"EUR": "-1"}}, r"payout_above\.EUR must not be negative"),
        ({"payout_above": {"EUR": "ten"}}, r"payout_above\.EUR.*not a number"),
        ({"payout_above": {"XXY": "10"}}, r"payout_above\.XXY.*unknown currency"),
        ({"payout_above": {"EUR": "1", "eur": "2"}}, r"names EUR twice"),
        ({"payout_above": ["EUR", "10"]}, r"approval\.payout_above must be an object"),
        ({"first_payout_to_new_account": "true"}, r"must be true or false"),
        ({"transfer_over": {"EUR": "1"}}, r"unknown approval setting\(s\): transfer_over"),
    ],
)
def test_bad_settings_are_refused_naming_the_key(values, message):
    with pytest.raises(ConfigurationError, match=message):
        ApprovalSettings.from_mapping(values)


# -- the rules --------------------------------------------------------------------------------


def test_only_above_the_threshold_waits_in_minor_units():
    gate = ApprovalGate(settings(transfer_above={"EUR": "100.00", "JPY": "10000"}))
    assert gate.hold(transfer_item(transfer(10_000))) is None  # equal: not above
    reason = gate.hold(transfer_item(transfer(10_001)))
    assert reason == ("awaiting approval: 100.01 EUR is above approval.transfer_above 100.00 EUR")
    assert gate.hold(transfer_item(transfer(10_000, "JPY"))) is None
    assert gate.hold(transfer_item(transfer(10_001, "JPY"))).startswith(AWAITING)


def test_a_currency_without_threshold_waits_once_thresholds_are_set():
    gate = ApprovalGate(settings(transfer_above={"EUR": "100.00"}))
    assert gate.hold(transfer_item(transfer(1, "USD"))) == (
        "awaiting approval: USD has no approval.transfer_above threshold"
    )
    # payouts have their own map: none set, no payout waits for a threshold
    assert gate.hold(payout_item(PayoutRecord("9", amount=10**9, currency="USD",
                                              stripe_account_id="acct_x"))) is None  # fmt: skip


def test_first_payout_to_a_new_account_waits_a_paid_one_does_not():
    rules = settings(first_payout_to_new_account=True)
    payout = PayoutRecord("9", amount=100, currency="EUR", stripe_account_id="acct_new")
    assert ApprovalGate(rules).hold(payout_item(payout)) == (
        "awaiting approval: first payout to acct_new"
    )
    paid = ApprovalGate(rules, paid_destinations=frozenset({"acct_new"}))
    assert paid.hold(payout_item(payout)) is None
    # the rule is about payouts: a transfer to an account never paid does not wait for it
    assert ApprovalGate(rules).hold(transfer_item(transfer(10**9))) is None
    # a Hyperwallet payment to a bank account token never paid does
    hw = HyperwalletPayment("1", "1", amount=100, currency="EUR", destination_token="trm-new")
    assert ApprovalGate(rules).hold(hyperwallet_item(hw)) == (
        "awaiting approval: first payout to trm-new"
    )


def test_both_reasons_are_given():
    rules = settings(payout_above={"EUR": "10.00"}, first_payout_to_new_account=True)
    payout = PayoutRecord("9", amount=2000, currency="EUR", stripe_account_id="acct_new")
    assert ApprovalGate(rules).hold(payout_item(payout)) == (
        "awaiting approval: 20.00 EUR is above approval.payout_above 10.00 EUR; "
        "first payout to acct_new"
    )


def test_an_approval_of_exactly_this_item_releases_it():
    item = transfer_item(transfer(20_000))
    rules = settings(transfer_above={"EUR": "100.00"})
    gate = ApprovalGate(rules, {(item.entity, item.item): decision(item)})
    assert gate.hold(item) is None


@pytest.mark.parametrize(
    ("changed", "now"),
    [
        ({"amount": 20_001}, "200.01 EUR to acct_seller"),
        ({"destination": "acct_other"}, "200.00 EUR to acct_other"),
        ({"currency": "USD"}, None),
    ],
)
def test_an_approval_is_void_once_the_item_changed(changed, now):
    approved = transfer_item(transfer(20_000))
    rules = settings(transfer_above={"EUR": "100.00", "USD": "100.00"})
    gate = ApprovalGate(rules, {(approved.entity, approved.item): decision(approved)})
    row = transfer(
        changed.get("amount", 20_000),
        changed.get("currency", "EUR"),
        changed.get("destination", "acct_seller"),
    )
    reason = gate.hold(transfer_item(row))
    assert reason.startswith(AWAITING)
    assert "the approved decision of alice on 2026-11-20 09:30 UTC was for 200.00 EUR to " \
           "acct_seller" in reason  # fmt: skip
    assert reason.endswith(": void")
    if now:
        assert f"now {now}" in reason


def test_an_approval_is_void_when_the_source_account_changed():
    row = TransferRecord(type=TransferType.SUBSCRIPTION, mirakl_id="7", amount=50_000,
                         currency="EUR", source_account="acct_seller",
                         destination_account="acct_platform")  # fmt: skip
    approved = transfer_item(row)
    gate = ApprovalGate(
        settings(transfer_above={"EUR": "1.00"}),
        {(approved.entity, approved.item): decision(approved)},
    )
    assert gate.hold(approved) is None
    moved = transfer_item(TransferRecord(**{**row.__dict__, "source_account": "acct_other"}))
    assert gate.hold(moved).startswith(AWAITING)


def test_a_rejection_keeps_it_held_with_who_and_why():
    item = transfer_item(transfer(20_000))
    gate = ApprovalGate(
        settings(transfer_above={"EUR": "100.00"}),
        {(item.entity, item.item): decision(item, Decision.REJECTED, why="duplicate order")},
    )
    reason = gate.hold(item)
    assert reason == (
        "approval rejected by alice on 2026-11-20 09:30 UTC: duplicate order "
        "(200.00 EUR is above approval.transfer_above 100.00 EUR)"
    )
    assert reason.startswith(REJECTED) and is_decidable(reason)


def test_no_rule_no_hold_even_with_a_rejection_recorded():
    item = transfer_item(transfer(20_000))
    gate = ApprovalGate(settings(), {(item.entity, item.item): decision(item, Decision.REJECTED)})
    assert gate.hold(item) is None


# -- in the decision functions ----------------------------------------------------------------


def _order(**overrides):
    raw = {
        "order_id": "ORD-1-A", "commercial_id": "ORD-1", "created_date": "2026-11-20T10:00:00Z",
        "customer_debited_date": "2026-11-20T11:00:00Z", "currency_iso_code": "EUR",
        "order_state": "SHIPPING", "order_tax_mode": "TAX_INCLUDED", "shop_id": 1,
        "total_commission": Decimal("10.00"), "total_price": Decimal("210.00"),
        "transaction_number": "ch_ok",
        "order_lines": [{"order_line_id": "ORD-1-A-1", "order_line_state": "SHIPPING",
                         "total_price": Decimal("210.00")}],
    }  # fmt: skip
    raw.update(overrides)
    return parse_product_order(raw)


def _split(gate, mapping=SELLER, **order):
    charge = PaymentState("ch_ok", "charge", "succeeded", captured=True)
    return decide_order_transfer(
        TransferRecord(type=TransferType.PRODUCT_ORDER, mirakl_id="ORD-1-A", id=3),
        _order(**order), shop_mapping=mapping, is_tax_row=False, tax_split=False,
        tax_account=None, fallback_payment_id=None, lookup_payment=lambda _: charge,
        approval=gate,
    )  # fmt: skip


def test_split_transfer_over_the_threshold_is_held_with_its_amount_and_destination():
    gate = ApprovalGate(settings(transfer_above={"EUR": "150.00"}))
    row = _split(gate)
    assert row.status is TransferStatus.ON_HOLD
    assert row.status_reason == (
        "awaiting approval: 200.00 EUR is above approval.transfer_above 150.00 EUR"
    )
    # what a person approves is recorded on the row: amount, currency, destination, charge
    assert (row.amount, row.currency, row.destination_account, row.transaction_id) == (
        20_000,
        "EUR",
        "acct_seller",
        "ch_ok",
    )
    assert _split(ApprovalGate(settings(transfer_above={"EUR": "200.00"}))).status is (
        TransferStatus.PENDING
    )
    assert _split(None).status is TransferStatus.PENDING  # no rule configured: unchanged


def test_the_gate_comes_last_and_never_hides_another_reason_to_wait():
    gate = ApprovalGate(settings(transfer_above={"EUR": "1.00"}))
    kyc = AccountMapping(1, "acct_seller", kyc_status="PENDING_SUBMISSION")
    assert "not verified yet" in _split(gate, mapping=kyc).status_reason
    assert _split(gate, order_state="REFUSED").status is TransferStatus.ABORTED


def test_approved_split_transfer_becomes_pending():
    held = _split(ApprovalGate(settings(transfer_above={"EUR": "150.00"})))
    item = transfer_item(held)
    gate = ApprovalGate(
        settings(transfer_above={"EUR": "150.00"}), {(item.entity, item.item): decision(item)}
    )
    row = _split(gate)
    assert (row.status, row.status_reason) == (TransferStatus.PENDING, None)


def _invoice(currency="EUR", **summary):
    values = {
        "amount_transferred": Decimal("500.00"),
        "total_subscription_incl_tax": 0,
        "total_other_credits_incl_tax": 0,
        "total_other_invoices_incl_tax": 0,
        **summary,
    }
    return parse_invoice({"invoice_id": 7, "shop_id": 1, "currency_iso_code": currency,
                          "date_created": "2026-11-01T00:00:00Z", "summary": values})  # fmt: skip


def test_settlement_payout_to_a_new_account_is_held_and_released_once_approved():
    rules = settings(first_payout_to_new_account=True)
    row = decide_payout(PayoutRecord("7", id=4), _invoice(), shop_mapping=SELLER,
                        approval=ApprovalGate(rules))  # fmt: skip
    assert (row.status, row.status_reason) == (
        PayoutStatus.ON_HOLD,
        "awaiting approval: first payout to acct_seller",
    )
    assert (row.amount, row.stripe_account_id) == (50_000, "acct_seller")
    item = payout_item(row)
    approved = ApprovalGate(rules, {(item.entity, item.item): decision(item)})
    assert decide_payout(row, _invoice(), shop_mapping=SELLER, approval=approved).status is (
        PayoutStatus.PENDING
    )
    # an invoice corrected to another amount needs a new approval
    again = decide_payout(row, _invoice(amount_transferred=Decimal("500.01")),
                          shop_mapping=SELLER, approval=approved)  # fmt: skip
    assert again.status is PayoutStatus.ON_HOLD and again.status_reason.endswith(": void")


def test_payout_threshold_compares_what_stripe_would_pay_out():
    # HUF pays out whole forints only: 1000.45 HUF owed, 1000.00 moved (the rest stays).
    rules = settings(payout_above={"HUF": "1000.00"})
    inv = _invoice("HUF", amount_transferred=Decimal("1000.45"))
    row = decide_payout(PayoutRecord("7"), inv, shop_mapping=SELLER, approval=ApprovalGate(rules))
    assert (row.status, row.amount, row.amount_residue) == (PayoutStatus.PENDING, 100_000, 45)
    inv = _invoice("HUF", amount_transferred=Decimal("1001.00"))
    row = decide_payout(PayoutRecord("7"), inv, shop_mapping=SELLER, approval=ApprovalGate(rules))
    assert row.status is PayoutStatus.ON_HOLD


def test_settlement_transfers_use_the_transfer_threshold_in_both_directions():
    rules = ApprovalGate(settings(transfer_above={"EUR": "50.00"}))
    inv = _invoice(total_subscription_incl_tax=Decimal("-60.00"),
                   total_other_credits_incl_tax=Decimal("40.00"))  # fmt: skip
    fee = decide_invoice_transfer(TransferRecord(type=TransferType.SUBSCRIPTION, mirakl_id="7"),
                                  inv, shop_mapping=SELLER, platform_account=lambda: "acct_pf",
                                  approval=rules)  # fmt: skip
    assert fee.status is TransferStatus.ON_HOLD
    assert (fee.source_account, fee.destination_account) == ("acct_seller", "acct_pf")
    credit = decide_invoice_transfer(TransferRecord(type=TransferType.EXTRA_CREDITS, mirakl_id="7"),
                                     inv, shop_mapping=SELLER, platform_account=lambda: "acct_pf",
                                     approval=rules)  # fmt: skip
    assert credit.status is TransferStatus.PENDING


def test_hyperwallet_payment_is_held_only_when_it_would_be_sent():
    rules = ApprovalGate(settings(payout_above={"EUR": "1000.00"}))
    pending = HyperwalletPayment("230201", "230201", amount=454_520, currency="EUR",
                                 destination_token="trm-seller")  # fmt: skip
    held = gate_hyperwallet_payment(pending, rules)
    assert held.status is HyperwalletPaymentStatus.ON_HOLD
    assert held.status_reason == (
        "awaiting approval: 4545.20 EUR is above approval.payout_above 1000.00 EUR"
    )
    aborted = HyperwalletPayment("230201-operatorFee", "230201", amount=-5, currency="EUR",
                                 status=HyperwalletPaymentStatus.ABORTED)  # fmt: skip
    assert gate_hyperwallet_payment(aborted, rules) is aborted
    assert gate_hyperwallet_payment(pending, None) is pending
