"""What the simulated Stripe refuses about an amount and its currency, as Stripe does.

Each rule cites the page it follows (docs.stripe.com/currencies, "Supported currencies"):

* An unsupported currency is refused: ``400 invalid_request_error``, ``param: currency``,
  "Invalid currency: xyz. Stripe currently supports these currencies: ..." (the presentment
  list of that page; the message is Stripe's answer to an unknown currency).
* "Three-decimal currencies" (BHD JOD KWD OMR TND): the page says the API requires the
  least-significant digit to be 0 for payment flows (Payment Intents, Refunds, Disputes). It is
  silent about transfers, reversals and payouts: we choose the stricter behaviour and apply the
  rule to every amount.
* "Special cases", ISK: amounts are two-decimal and whole krónur only; a fraction is refused
  with ``invalid_charge_amount_no_decimal_compatible`` (support.stripe.com, "Deprecation of
  fractional ISK charges and refunds"). Applied to every amount (stricter where the article
  names charges, Payment Intents and refunds only).
* "Special cases", HUF and TWD: payouts only in amounts evenly divisible by 100; UGX payouts
  the same (two-decimal form, whole shillings). The error code is not documented: we answer
  ``400 invalid_request_error`` with ``param: amount`` and no code.

The zero-decimal list (MGA, JPY, ...) cannot be checked from an integer: ``1200`` MGA is a valid
amount whether the caller meant 1,200 or 12.00 ariary. The connector's tests assert the amounts
sent instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from mirakl_connector.stripe.currency import SUPPORTED


@dataclass(frozen=True)
class Refusal:
    """A 400 ``invalid_request_error`` as Stripe words it (the API module raises it)."""

    message: str
    param: str
    code: str | None = None


#: docs.stripe.com/currencies "Three-decimal currencies".
_THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
#: "Special cases": payouts evenly divisible by 100.
_PAYOUT_HUNDREDS = frozenset({"huf", "twd", "ugx"})


def refusal(
    amount: int | None, currency: str, *, payout: bool = False, param: str = "amount"
) -> Refusal | None:
    """Why Stripe refuses ``amount`` (its own unit) of ``currency``, or ``None``."""
    if currency.upper() not in SUPPORTED:
        supported = ", ".join(sorted(code.lower() for code in SUPPORTED))
        return Refusal(
            f"Invalid currency: {currency}. Stripe currently supports these currencies: "
            f"{supported}",
            "currency",
        )
    if amount is None:
        return None
    code = currency.lower()
    if code in _THREE_DECIMAL and amount % 10:
        return Refusal(
            f"Invalid amount: {code.upper()} amounts must be rounded to the nearest ten "
            "(the last digit must be 0). See https://docs.stripe.com/currencies#three-decimal",
            param,
        )
    if code == "isk" and amount % 100:
        return Refusal(
            "Invalid amount. ISK was converted to a zero-decimal currency and amounts must be "
            "evenly divisible by 100. See https://stripe.com/docs/currencies#special-cases",
            param,
            "invalid_charge_amount_no_decimal_compatible",
        )
    if payout and code in _PAYOUT_HUNDREDS and amount % 100:
        return Refusal(
            f"Invalid amount: {code.upper()} payouts must be evenly divisible by 100. "
            "See https://docs.stripe.com/currencies#special-cases",
            param,
        )
    return None
