"""Which currency (and transfer type) a seller's Hyperwallet bank account is opened in.

Hyperwallet supports a fixed set of (bank account type, country, currency, transfer type)
combinations. A Canadian marketplace paying a seller with a US account (ABA) cannot open a CAD
account in the US: Hyperwallet answers ``EXTERNAL_ACCOUNT_TYPE_NOT_SUPPORTED`` (the incumbent
connector's issues #110-#119). With automatic selection on (the default) the account is opened in
a currency Hyperwallet supports for that country and type, preferring the shop's currency;
payments stay in the marketplace currency and Hyperwallet converts. With it off, the shop's
currency is always used and an unsupported combination fails at Hyperwallet.

The table below is Hyperwallet's published matrix for the four account types Mirakl knows. For
IBAN countries without a local bank-account route, USD wire accounts are listed for every other
country (an approximation of Hyperwallet's ~230 wire rows: a wire candidate is only used when
``allow_wire_accounts`` is on).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.core.settings import checked_values
from mirakl_connector.hyperwallet.countries import ALPHA3


class BankAccountType(StrEnum):
    """The Mirakl ``payment_info`` types the connector supports."""

    IBAN = "IBAN"
    ABA = "ABA"
    CANADIAN = "CANADIAN"
    UK = "UK"


BANK_ACCOUNT = "BANK_ACCOUNT"
WIRE_ACCOUNT = "WIRE_ACCOUNT"


@dataclass(frozen=True)
class Constraint:
    """One supported combination."""

    bank_account_type: BankAccountType
    country: str
    currency: str
    transfer_type: str


# IBAN countries where Hyperwallet opens a local EUR bank account.
_IBAN_EUR = """
AT BE BG HR CY CZ DK EE FI FR GF PF DE GI GR GP GG HU IS IE IM IT JE LV LI LT LU MT MQ MC NL NO
PL PT RE RO SM SK SI ES BL PM SE CH GB
""".split()
# IBAN countries with a local-currency bank account as well (after EUR, when both exist).
_IBAN_LOCAL = {
    "BG": ["BGN"], "CZ": ["CZK"], "HU": ["HUF"], "PL": ["PLN"], "RO": ["RON"],
    "CH": ["CHF"], "LI": ["CHF"], "TN": ["TND"], "AE": ["AED"],
}  # fmt: skip


def _build_table() -> tuple[Constraint, ...]:
    rows = [
        Constraint(BankAccountType.ABA, "US", "USD", BANK_ACCOUNT),
        Constraint(BankAccountType.ABA, "US", "USD", WIRE_ACCOUNT),
        Constraint(BankAccountType.CANADIAN, "CA", "CAD", BANK_ACCOUNT),
        Constraint(BankAccountType.CANADIAN, "CA", "USD", BANK_ACCOUNT),
        Constraint(BankAccountType.UK, "GB", "GBP", BANK_ACCOUNT),
    ]
    for country in sorted(ALPHA3):
        if country in ("US", "CA"):
            continue
        if country in _IBAN_EUR:
            rows.append(Constraint(BankAccountType.IBAN, country, "EUR", BANK_ACCOUNT))
        for currency in _IBAN_LOCAL.get(country, []):
            rows.append(Constraint(BankAccountType.IBAN, country, currency, BANK_ACCOUNT))
        rows.append(Constraint(BankAccountType.IBAN, country, "USD", WIRE_ACCOUNT))
    return tuple(rows)


CONSTRAINTS: tuple[Constraint, ...] = _build_table()


def candidates_for(bank_account_type: BankAccountType, country: str) -> list[Constraint]:
    """The supported combinations of one account type in one country, in table order."""
    return [
        c for c in CONSTRAINTS if c.bank_account_type == bank_account_type and c.country == country
    ]


def account_type_of(country: str, currency: str, transfer_type: str) -> BankAccountType | None:
    """The account type of a Hyperwallet transfer method, from its country, currency and type.

    Hyperwallet does not return the Mirakl type; the first matching row decides (a GB GBP bank
    account is a UK account, a GB EUR one an IBAN). ``None`` when no row matches.
    """
    for c in CONSTRAINTS:
        if (c.country, c.currency, c.transfer_type) == (country, currency, transfer_type):
            return c.bank_account_type
    return None


@dataclass(frozen=True)
class CurrencySettings:
    """The ``hyperwallet.bank_accounts`` settings of the currency choice.

    :param automatic_currency_selection: off → always the shop's currency.
    :param allow_wire_accounts: consider ``WIRE_ACCOUNT`` combinations too.
    :param prioritize_bank_account_type: bank accounts before wire accounts, whatever the currency.
    :param override_currency_priority: order candidates by ``currency_priority``.
    :param currency_priority: ``"EUR,USD;US:USD,CAD;CA:CAD"``: an entry without ``:`` is the
        global order, ``CC:...`` entries order one country and win over the global list.
    """

    automatic_currency_selection: bool = True
    allow_wire_accounts: bool = False
    prioritize_bank_account_type: bool = True
    override_currency_priority: bool = False
    currency_priority: str = "USD,GBP,EUR"

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None, *, where: str) -> CurrencySettings:
        values = checked_values(cls, values, where)
        if "currency_priority" in values:
            parse_priority(values["currency_priority"], where=f"{where}.currency_priority")
        return cls(**values)


def parse_priority(text: str, *, where: str = "currency_priority") -> dict[str | None, list[str]]:
    """``"EUR,USD;US:USD,CAD"`` → ``{None: ["EUR", "USD"], "US": ["USD", "CAD"]}``."""
    out: dict[str | None, list[str]] = {}
    for entry in (text or "").split(";"):
        entry = entry.strip()
        if not entry:
            continue
        country: str | None = None
        if ":" in entry:
            head, entry = entry.split(":", 1)
            country = head.strip().upper()
            if country not in ALPHA3:
                raise ConfigurationError(f"{where}: {head.strip()!r} is not a country code")
        currencies = [c.strip().upper() for c in entry.split(",") if c.strip()]
        if any(len(c) != 3 or not c.isalpha() for c in currencies):
            raise ConfigurationError(f"{where}: {entry!r} is not a list of currency codes")
        out[country] = currencies
    return out


@dataclass(frozen=True)
class CurrencyChoice:
    """The chosen currency and transfer type; ``note`` says why when it is not the shop's."""

    currency: str
    transfer_type: str
    note: str | None = None


def _transfer_rank(c: Constraint) -> int:
    return 0 if c.transfer_type == BANK_ACCOUNT else 1


def order_candidates(
    candidates: Sequence[Constraint], settings: CurrencySettings
) -> list[Constraint]:
    """Candidates in preference order (stable: equal keys keep the table order)."""
    if settings.override_currency_priority:
        priority = parse_priority(settings.currency_priority)

        def currency_rank(c: Constraint) -> int:
            order = priority.get(c.country) or priority.get(None) or []
            return order.index(c.currency) if c.currency in order else len(order)

        if settings.prioritize_bank_account_type:
            return sorted(candidates, key=lambda c: (_transfer_rank(c), currency_rank(c)))
        return sorted(candidates, key=lambda c: (currency_rank(c), _transfer_rank(c)))
    if settings.prioritize_bank_account_type:
        return sorted(candidates, key=_transfer_rank)
    # Bank before wire only within one currency: currencies keep their first appearance order.
    first_seen: dict[str, int] = {}
    for index, c in enumerate(candidates):
        first_seen.setdefault(c.currency, index)
    return sorted(candidates, key=lambda c: (first_seen[c.currency], _transfer_rank(c)))


def select_currency(
    bank_account_type: BankAccountType,
    country: str,
    shop_currency: str,
    settings: CurrencySettings,
) -> CurrencyChoice:
    """The currency and transfer type to open the account in (see the module docstring)."""
    shop_currency = shop_currency.strip().upper()
    if not settings.automatic_currency_selection:
        return CurrencyChoice(shop_currency, BANK_ACCOUNT)
    found = [
        c
        for c in candidates_for(bank_account_type, country)
        if settings.allow_wire_accounts or c.transfer_type == BANK_ACCOUNT
    ]
    if not found:
        return CurrencyChoice(
            shop_currency,
            BANK_ACCOUNT,
            f"no currency candidates for {bank_account_type} accounts in {country}: "
            f"falling back to the shop currency {shop_currency}",
        )
    ordered = order_candidates(found, settings)
    for c in ordered:
        if c.currency == shop_currency and c.transfer_type == BANK_ACCOUNT:
            return CurrencyChoice(c.currency, c.transfer_type)
    for c in ordered:
        if c.currency == shop_currency:
            return CurrencyChoice(c.currency, c.transfer_type)
    chosen = ordered[0]
    return CurrencyChoice(
        chosen.currency,
        chosen.transfer_type,
        f"{shop_currency} is not supported for {bank_account_type} accounts in {country}: "
        f"account opened in {chosen.currency}",
    )
