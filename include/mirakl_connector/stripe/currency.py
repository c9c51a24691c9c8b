"""Stripe's own currency rules: which currencies, in which unit, rounded how.

The ledger keeps every amount in ISO 4217 minor units (:mod:`mirakl_connector.core.money`): that is
what Mirakl's decimals mean and what reports print. Stripe's API unit is *not* always the ISO one
(docs.stripe.com/currencies, sections "Zero-decimal", "Three-decimal" and "Special cases"):

* Zero-decimal for Stripe: BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF. MGA has
  two decimals in ISO 4217 but none for Stripe, so ``12.00 MGA`` (ISO ``1200``) is ``12``.
* ISK has no decimals in ISO 4217, but Stripe keeps taking it "with two decimals for backwards
  compatibility" and refuses a fraction (``invalid_charge_amount_no_decimal_compatible``,
  support.stripe.com "Deprecation of fractional ISK charges and refunds"): 5 ISK is ``500``.
* BHD JOD KWD OMR TND have three decimals, but Stripe requires the last digit to be 0 ("round
  to the nearest ten"): ``9.125 KWD`` cannot be sent, ``9.120`` can.
* HUF and TWD: Stripe treats them as zero-decimal *for payouts*: a payout amount must be evenly
  divisible by 100 (``10.45 HUF`` on the balance pays out ``1000``).
* UGX: zero-decimal for charges and transfers; for payouts the docs' special-case table keeps
  the legacy two-decimal form, whole shillings only (``UGX 10`` is ``1000``). We could not
  re-read that row in a stored copy of the page; we follow it as remembered and as third-party
  integrations implement it. If it were wrong the payout would ask for 100 times the balance and
  Stripe would refuse it (``balance_insufficient``): it cannot overpay.

Where Stripe's unit is coarser than Mirakl's amount, the amount is rounded **towards zero** for
every operation (transfer, reversal, payout, capture, refund): Stripe never moves more than the
Mirakl document says, so a seller is never paid more than owed and a customer never refunded
more than the refund. What is not moved is the *residue*, in ISO minor units: it stays where
the money was (the platform balance for a transfer, the seller's balance for a payout, the
customer's charge for a refund), is stored in the ledger row's ``amount_residue`` and is shown
in the run summary (see README "Currencies").

A currency Stripe does not support at all is refused per item with :data:`UNSUPPORTED` before
any call. Hyperwallet amounts are decimal strings with Hyperwallet's own rules: not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.core.money import (
    CURRENCY_EXPONENTS,
    currency_exponent,
    format_minor,
    normalize_currency,
)

DOC = "https://docs.stripe.com/currencies"

#: Active ISO 4217 codes that are not among Stripe's presentment currencies
#: (docs.stripe.com/currencies, "Supported presentment currencies"): fund codes (BOV CHE CHW CLF
#: COU MXV USN UYI UYW), sanctioned or unavailable markets, and codes newer than Stripe's list
#: (MRU, STN, VES, VED, ZWG: Stripe still lists some by their former codes, or not at all).
UNSUPPORTED: frozenset[str] = frozenset(
    """
    BOV BTN CHE CHW CLF COU CUP ERN GHS IQD IRR KPW LYD MRU MXV SDG SLL SSP STN SVC SYP TMT USN
    UYI UYW VED VES ZWG ZWL
    """.split()
)
#: Stripe's presentment currencies, as ISO codes: a code outside is refused before any call.
SUPPORTED: frozenset[str] = frozenset(CURRENCY_EXPONENTS) - UNSUPPORTED

#: Zero-decimal currencies for Stripe ("Zero-decimal" section).
ZERO_DECIMAL: frozenset[str] = frozenset(
    "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split()
)
#: Three-decimal currencies whose last digit must be 0 ("Three-decimal" section).
THREE_DECIMAL: frozenset[str] = frozenset("BHD JOD KWD OMR TND".split())
#: Two-decimal in the API, whole units only ("Special cases": ISK).
WHOLE_UNITS_TWO_DECIMALS: frozenset[str] = frozenset({"ISK"})
#: Payouts in whole units only, the amount evenly divisible by 100 ("Special cases").
PAYOUT_WHOLE_UNITS: frozenset[str] = frozenset({"HUF", "TWD", "UGX"})


class Operation(StrEnum):
    """What Stripe is asked to do with an amount (some rules apply to payouts only)."""

    CHARGE = "charge"  # PaymentIntent/charge amounts, captures
    REFUND = "refund"
    TRANSFER = "transfer"
    REVERSAL = "reversal"
    PAYOUT = "payout"


@dataclass(frozen=True)
class StripeAmount:
    """An owed ISO amount split into what Stripe moves and what it cannot (both ISO minor)."""

    amount: int  # ISO minor units Stripe moves (what the ledger records as ``amount``)
    residue: int  # ISO minor units left over by Stripe's rounding (``amount_residue``)
    stripe: int  # the integer sent to Stripe's API


@dataclass(frozen=True)
class Sendable:
    """What a deciding function needs: the rounded amount, or why it cannot be sent.

    ``unsupported`` fails the item (Stripe cannot move the currency at all); ``too_small``
    aborts it (nothing is left once rounded to Stripe's unit).
    """

    amount: int = 0
    residue: int | None = None  # ``None`` rather than 0, as the ledger stores "no residue"
    unsupported: str | None = None
    too_small: str | None = None


def sendable(amount: int, currency: str, operation: Operation) -> Sendable:
    """Check ``currency`` and round ``amount`` (owed, ISO minor, positive) for ``operation``."""
    reason = unsupported_reason(currency)
    if reason is not None:
        return Sendable(amount=amount, unsupported=reason)
    rounded = for_stripe(amount, currency, operation)
    too_small = None
    if rounded.amount <= 0:
        too_small = f"Amount is below the smallest {operation} Stripe allows in {currency.upper()}"
    return Sendable(rounded.amount, rounded.residue or None, too_small=too_small)


def positive_sendable(amount: int, currency: str, operation: Operation) -> Sendable:
    """:func:`sendable` for an amount worked out from a Mirakl document, which may be zero or
    negative: such an amount is ``too_small`` (aborted, never sent), with Mirakl's figure."""
    if amount <= 0:
        shown = format_minor(amount, currency)
        return Sendable(amount, too_small=f"Amount must be positive, input was: {shown}")
    return sendable(amount, currency, operation)


def unsupported_reason(currency: str | None) -> str | None:
    """Why Stripe cannot move ``currency``, or ``None`` when it can."""
    code = (currency or "").strip().upper()
    if code in SUPPORTED:
        return None
    return f"Currency {code or '<none>'} is not supported by Stripe (see {DOC})"


def check_supported(currency: str | None) -> str:
    """The upper-case code; :class:`InvalidItemError` when Stripe does not support it."""
    reason = unsupported_reason(currency)
    if reason is not None:
        raise InvalidItemError(reason)
    return normalize_currency(str(currency))


def api_exponent(currency: str, operation: Operation = Operation.CHARGE) -> int:
    """Decimals of Stripe's API unit for ``currency`` (not always ISO 4217's)."""
    code = check_supported(currency)
    if code in ZERO_DECIMAL and not (code == "UGX" and operation is Operation.PAYOUT):
        return 0
    if code in WHOLE_UNITS_TWO_DECIMALS or code == "UGX":
        return 2
    return currency_exponent(code)


def step(currency: str, operation: Operation) -> int:
    """The smallest amount Stripe accepts for ``operation``, in ISO minor units."""
    code = check_supported(currency)
    iso = currency_exponent(code)
    api = api_exponent(code, operation)
    unit: int = 10 ** max(iso - api, 0)  # an ISO minor unit Stripe cannot express (MGA: 100)
    if code in THREE_DECIMAL:
        unit = max(unit, 10)
    if operation is Operation.PAYOUT and code in PAYOUT_WHOLE_UNITS:
        unit = max(unit, 10**iso)
    return unit


def for_stripe(amount: int, currency: str, operation: Operation) -> StripeAmount:
    """Round ``amount`` (ISO minor, what is owed) towards zero to what Stripe accepts.

    Towards zero: never more than owed, for any operation (see the module docstring).
    """
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"amount must be int minor units, got {type(amount).__name__}")
    unit = step(currency, operation)
    moved = (abs(amount) // unit) * unit * (1 if amount >= 0 else -1)
    stripe_amount = _scale(moved, currency, operation)
    return StripeAmount(amount=moved, residue=amount - moved, stripe=stripe_amount)


def to_api(amount: int, currency: str, operation: Operation) -> int:
    """The exact Stripe integer for an ISO-minor ``amount`` already rounded by :func:`for_stripe`.

    :raises InvalidItemError: when Stripe could not take it (the caller forgot to round), before
        any call: the item fails with the reason instead of Stripe refusing it.
    """
    rounded = for_stripe(amount, currency, operation)
    if rounded.residue:
        raise InvalidItemError(
            f"{amount} minor units of {currency.upper()} cannot be sent to Stripe for a "
            f"{operation}: its rules need multiples of {step(currency, operation)} (see {DOC})"
        )
    return rounded.stripe


def from_api(
    stripe_amount: int | None, currency: str | None, operation: Operation = Operation.CHARGE
) -> int | None:
    """An amount read from Stripe (object, event, list) back in ISO minor units.

    Exact for everything Stripe accepts today; an old fractional ISK charge (before Stripe
    refused fractions) is rounded down to the whole krona.
    """
    if stripe_amount is None or not currency:
        return stripe_amount
    code = currency.strip().upper()
    if unsupported_reason(code) is not None:
        return stripe_amount
    shift = currency_exponent(code) - api_exponent(code, operation)
    if shift >= 0:
        scale: int = 10**shift
        return stripe_amount * scale
    sign = 1 if stripe_amount >= 0 else -1
    divisor: int = 10**-shift
    return sign * (abs(stripe_amount) // divisor)


def _scale(iso_minor: int, currency: str, operation: Operation) -> int:
    shift = api_exponent(currency, operation) - currency_exponent(currency)
    if shift >= 0:
        scale: int = 10**shift
        return iso_minor * scale
    divisor: int = 10**-shift
    return iso_minor // divisor  # exact: the amount is a multiple of the step
