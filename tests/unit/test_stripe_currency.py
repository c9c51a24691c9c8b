"""Stripe's currency rules (docs.stripe.com/currencies) against ISO 4217 minor units."""

from __future__ import annotations

import pytest
from mirakl_sandbox import stripe_amounts

from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.core.money import to_minor
from mirakl_connector.stripe.currency import (
    Operation,
    StripeAmount,
    for_stripe,
    from_api,
    to_api,
    unsupported_reason,
)

T, P, C, R = Operation.TRANSFER, Operation.PAYOUT, Operation.CHARGE, Operation.REFUND


@pytest.mark.parametrize(
    ("major", "currency", "operation", "expected"),
    [
        # EUR: ISO and Stripe agree
        ("12.34", "EUR", T, StripeAmount(1234, 0, 1234)),
        # JPY: zero-decimal in both
        ("1500", "JPY", T, StripeAmount(1500, 0, 1500)),
        # MGA: two decimals in ISO 4217, zero-decimal for Stripe: 100x less than ISO minor
        ("1200.00", "MGA", T, StripeAmount(120000, 0, 1200)),
        ("1200.50", "MGA", T, StripeAmount(120000, 50, 1200)),
        # ISK: zero-decimal in ISO 4217, two decimals (whole kronur) for Stripe: 5 ISK is 500
        ("5", "ISK", T, StripeAmount(5, 0, 500)),
        ("5", "ISK", P, StripeAmount(5, 0, 500)),
        # KWD: three decimals, last digit 0
        ("9.125", "KWD", T, StripeAmount(9120, 5, 9120)),
        ("9.125", "KWD", R, StripeAmount(9120, 5, 9120)),
        ("9.120", "KWD", C, StripeAmount(9120, 0, 9120)),
        # HUF: cents for transfers, whole forints for payouts
        ("1234.56", "HUF", T, StripeAmount(123456, 0, 123456)),
        ("1234.56", "HUF", P, StripeAmount(123400, 56, 123400)),
        ("99.99", "TWD", P, StripeAmount(9900, 99, 9900)),
        # UGX: zero-decimal, but payouts keep the two-decimal form
        ("1000", "UGX", T, StripeAmount(1000, 0, 1000)),
        ("1000", "UGX", P, StripeAmount(1000, 0, 100000)),
    ],
)
def test_stripe_amount_per_currency_and_operation(major, currency, operation, expected):
    assert for_stripe(to_minor(major, currency), currency, operation) == expected


def test_rounding_is_towards_zero_never_more_than_owed():
    for owed in range(1, 2000, 7):
        rounded = for_stripe(owed, "KWD", T)
        assert rounded.amount <= owed and rounded.amount + rounded.residue == owed
    assert for_stripe(-9125, "KWD", R) == StripeAmount(-9120, -5, -9120)


def test_to_api_refuses_an_amount_stripe_cannot_take_instead_of_sending_it():
    assert to_api(9120, "KWD", T) == 9120
    with pytest.raises(InvalidItemError, match="multiples of 10"):
        to_api(9125, "KWD", T)
    with pytest.raises(InvalidItemError, match="multiples of 100"):
        to_api(123456, "HUF", P)


def test_amounts_read_back_from_stripe_are_iso_minor_units():
    assert from_api(1200, "mga") == 120000
    assert from_api(500, "isk") == 5
    assert from_api(550, "isk") == 5  # a pre-2023 fractional krona charge: rounded down
    assert from_api(9120, "kwd") == 9120
    assert from_api(100000, "ugx", P) == 1000
    assert from_api(1000, "ugx") == 1000
    assert from_api(None, "eur") is None


def test_unsupported_currency_has_a_reason_and_supported_ones_none():
    for code in ("EUR", "MGA", "ISK", "KWD", "JPY", "HUF", "usd"):
        assert unsupported_reason(code) is None
    assert "IRR is not supported by Stripe" in unsupported_reason("IRR")
    with pytest.raises(InvalidItemError, match="not supported"):
        for_stripe(100, "IRR", T)


@pytest.mark.parametrize(
    ("amount", "currency", "payout", "code"),
    [
        (9125, "kwd", False, None),
        (550, "isk", False, "invalid_charge_amount_no_decimal_compatible"),
        (123456, "huf", True, None),
        (1000, "irr", False, None),
    ],
)
def test_the_simulator_refuses_what_stripe_refuses(amount, currency, payout, code):
    refused = stripe_amounts.refusal(amount, currency, payout=payout)
    assert refused is not None and refused.code == code


def test_the_simulator_accepts_what_stripe_accepts():
    for amount, currency, payout in [(9120, "kwd", True), (500, "isk", False),
                                     (123456, "huf", False), (123400, "huf", True),
                                     (1201, "mga", False)]:  # fmt: skip
        assert stripe_amounts.refusal(amount, currency, payout=payout) is None
