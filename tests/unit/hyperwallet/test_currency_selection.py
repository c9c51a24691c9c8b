"""Currency selection against Hyperwallet's country/currency table, both ways of the flag."""

from __future__ import annotations

import pytest

from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.hyperwallet.currency_selection import (
    BANK_ACCOUNT,
    WIRE_ACCOUNT,
    BankAccountType,
    CurrencySettings,
    account_type_of,
    candidates_for,
    parse_priority,
    select_currency,
)

AUTO = CurrencySettings()
OFF = CurrencySettings(automatic_currency_selection=False)


@pytest.mark.parametrize(
    ("kind", "country", "shop_currency", "expected"),
    [
        (BankAccountType.IBAN, "DE", "EUR", "EUR"),  # supported: the shop's currency
        (BankAccountType.IBAN, "DE", "USD", "EUR"),  # unsupported: the first supported one
        (BankAccountType.IBAN, "GB", "GBP", "EUR"),  # a GB IBAN account is EUR only
        (BankAccountType.ABA, "US", "CAD", "USD"),  # the incumbent's issue #112
        (BankAccountType.CANADIAN, "CA", "USD", "USD"),
        (BankAccountType.CANADIAN, "CA", "EUR", "CAD"),
        (BankAccountType.IBAN, "PL", "PLN", "PLN"),
        (BankAccountType.UK, "GB", "EUR", "GBP"),
    ],
)
def test_automatic_selection_prefers_the_shop_currency_else_a_supported_one(
    kind, country, shop_currency, expected
):
    choice = select_currency(kind, country, shop_currency, AUTO)
    assert (choice.currency, choice.transfer_type) == (expected, BANK_ACCOUNT)
    assert (choice.note is None) == (expected == shop_currency)


@pytest.mark.parametrize(
    ("kind", "country", "shop_currency"),
    [
        (BankAccountType.ABA, "US", "CAD"),
        (BankAccountType.IBAN, "DE", "USD"),
        (BankAccountType.IBAN, "DE", "EUR"),
    ],
)
def test_selection_off_always_uses_the_marketplace_currency(kind, country, shop_currency):
    choice = select_currency(kind, country, shop_currency, OFF)
    assert (choice.currency, choice.transfer_type) == (shop_currency, BANK_ACCOUNT)


def test_wire_accounts_only_when_allowed():
    # Egypt has no local IBAN bank account: only a USD wire account
    assert select_currency(BankAccountType.IBAN, "EG", "EUR", AUTO).currency == "EUR"
    assert "no currency candidates" in select_currency(BankAccountType.IBAN, "EG", "EUR", AUTO).note
    wire = CurrencySettings(allow_wire_accounts=True)
    choice = select_currency(BankAccountType.IBAN, "EG", "EUR", wire)
    assert (choice.currency, choice.transfer_type) == ("USD", WIRE_ACCOUNT)
    # with wire allowed, a bank account in the shop currency still wins
    assert select_currency(BankAccountType.ABA, "US", "USD", wire).transfer_type == BANK_ACCOUNT


def test_priority_override_orders_the_fallback_candidates():
    settings = CurrencySettings(override_currency_priority=True, currency_priority="CHF;BG:BGN")
    assert select_currency(BankAccountType.IBAN, "CH", "USD", settings).currency == "CHF"
    assert select_currency(BankAccountType.IBAN, "BG", "USD", settings).currency == "BGN"
    assert select_currency(BankAccountType.IBAN, "BG", "USD", AUTO).currency == "EUR"


def test_priority_parsing_and_validation():
    assert parse_priority("EUR,usd;US:USD,CAD") == {None: ["EUR", "USD"], "US": ["USD", "CAD"]}
    with pytest.raises(ConfigurationError, match="'XX' is not a country"):
        parse_priority("XX:EUR")
    with pytest.raises(ConfigurationError, match="bank_x.currency_priority"):
        CurrencySettings.from_mapping({"currency_priority": "EURO"}, where="bank_x")
    with pytest.raises(ConfigurationError, match="unknown bank_x setting"):
        CurrencySettings.from_mapping({"automatic": True}, where="bank_x")
    with pytest.raises(ConfigurationError, match="must be true or false"):
        CurrencySettings.from_mapping({"automatic_currency_selection": "no"}, where="bank_x")


def test_table_rows_and_type_inference():
    assert [
        (c.currency, c.transfer_type) for c in candidates_for(BankAccountType.CANADIAN, "CA")
    ] == [
        ("CAD", BANK_ACCOUNT),
        ("USD", BANK_ACCOUNT),
    ]
    assert account_type_of("GB", "GBP", BANK_ACCOUNT) == BankAccountType.UK
    assert account_type_of("GB", "EUR", BANK_ACCOUNT) == BankAccountType.IBAN
    assert account_type_of("US", "USD", WIRE_ACCOUNT) == BankAccountType.ABA
    assert account_type_of("US", "CAD", BANK_ACCOUNT) is None
