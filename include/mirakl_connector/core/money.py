"""Money: Mirakl's decimal major units to Stripe's integer minor units, and back.

Mirakl sends amounts as JSON numbers in major units (``12.34``); Stripe wants integers in the
currency's minor unit. The number of decimals is the ISO 4217 exponent of the currency, so JPY
has 0 (``1500`` yen is ``1500``), EUR 2 and KWD 3 (``1.234`` KWD is ``1234`` fils). The incumbent
connector multiplied everything by 100 and got zero- and three-decimal currencies wrong.

Amounts are ``Decimal`` from the wire onwards (the Mirakl client parses JSON numbers as
``Decimal``); a ``float`` is refused so that a binary rounding error can never reach a transfer.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from mirakl_connector.core.errors import (
    InvalidItemError,
    MiraklConnectorError,
    UnknownCurrencyError,
)

# ISO 4217 currencies whose minor unit is not 1/100.
_EXPONENT_EXCEPTIONS: dict[str, int] = {
    # zero decimals
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0,
    # three decimals
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    # four decimals
    "CLF": 4, "UYW": 4,
}  # fmt: skip

# Active ISO 4217 codes with two decimals.
_TWO_DECIMALS = """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN
BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP
LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR
NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP
STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER
ZAR ZMW ZWG ZWL
""".split()

#: The largest amount in minor units (the ledger stores them in 64-bit integer columns).
MAX_MINOR = 2**63 - 1

CURRENCY_EXPONENTS: dict[str, int] = {code: 2 for code in _TWO_DECIMALS} | _EXPONENT_EXCEPTIONS


def currency_exponent(currency: str) -> int:
    """Return the ISO 4217 exponent (number of minor-unit decimals) of ``currency``.

    :raises UnknownCurrencyError: for a code that is not an active ISO 4217 currency.
    """
    if not isinstance(currency, str) or not currency.strip():
        raise UnknownCurrencyError("missing currency code")
    code = currency.strip().upper()
    try:
        return CURRENCY_EXPONENTS[code]
    except KeyError:
        raise UnknownCurrencyError(f"unknown currency {currency!r}") from None


def normalize_currency(currency: str) -> str:
    """Return the upper-case ISO code after checking that it is known."""
    currency_exponent(currency)
    return currency.strip().upper()


def parse_amount(value: object, *, field: str = "amount") -> Decimal:
    """Parse a Mirakl amount (``Decimal``, ``int`` or numeric string) into a ``Decimal``.

    :raises InvalidItemError: naming ``field`` when the value is missing, a float, a bool or
        not a finite number.
    """
    if value is None:
        raise InvalidItemError(f"missing {field}")
    if isinstance(value, bool) or isinstance(value, float):
        raise InvalidItemError(f"{field} must be a decimal, got {type(value).__name__} {value!r}")
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, str):
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            raise InvalidItemError(f"{field} is not a number: {value!r}") from None
    else:
        raise InvalidItemError(f"{field} is not a number: {value!r}")
    if not amount.is_finite():
        raise InvalidItemError(f"{field} is not a finite number: {value!r}")
    return amount


def to_minor(amount: object, currency: str, *, field: str = "amount") -> int:
    """Convert a major-unit amount to integer minor units of ``currency``.

    Digits beyond the currency's exponent are rounded half-up (Mirakl computes amounts to the
    currency's precision, so this only matters for malformed input). A result beyond
    :data:`MAX_MINOR` is refused: the ledger's 64-bit columns could not hold it, and no real
    amount is anywhere near.
    """
    exponent = currency_exponent(currency)
    value = parse_amount(amount, field=field)
    try:
        scaled = (value * (Decimal(10) ** exponent)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    except InvalidOperation:  # beyond Decimal's precision: no real amount is that large
        raise InvalidItemError(f"{field} is out of range: {amount!r}") from None
    if abs(scaled) > MAX_MINOR:
        raise InvalidItemError(f"{field} is out of range: {amount!r} {currency}")
    return int(scaled)


def from_minor(minor: int, currency: str) -> Decimal:
    """Convert integer minor units back to a major-unit ``Decimal`` (for Mirakl and reports)."""
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise TypeError(f"minor units must be an int, got {type(minor).__name__}")
    exponent = currency_exponent(currency)
    # the integer with its exponent moved: exact, and already at the currency's decimals
    # ("10.00", "1500", "0.005"); a division and a quantize cost twice as much per row of an
    # export of the console
    return Decimal(minor).scaleb(-exponent)


def format_minor(minor: int, currency: str) -> str:
    """Human-readable amount for logs, summaries and e-mails, e.g. ``12.34 EUR``."""
    return f"{from_minor(minor, currency)} {normalize_currency(currency)}"


def describe_amount(minor: int | None, currency: str | None) -> str:
    """``minor`` in major units for a message; "?" when unknown, the raw minor units when the
    currency is one we do not know (an error text must never itself fail)."""
    if minor is None or not currency:
        return "?"
    try:
        return str(from_minor(minor, currency))
    except MiraklConnectorError:
        return f"{minor} (minor units)"
