"""Payment validation and capture: what to tell Mirakl, and what to capture, for one order.

Pure functions over Mirakl's pending debits (PA11), the logistic orders of a commercial order
(OR11) and the payment mapping that links the commercial order to its Stripe authorisation. The
job (:mod:`.payment_validation`) fetches, calls and records; everything that decides is here so
that the rules can be tested with plain values.

Rules kept from the Stripe connector:

* only a mapping in ``to_capture`` or ``captured`` confirms a debit (a failed or cancelled payment
  is never reported as paid to Mirakl);
* the whole authorisation is captured once, when every logistic order of the commercial order is
  accepted or refused (Stripe captures an authorisation once, issue #39), less what the refused
  and cancelled lines take away; nothing left means the authorisation is released.

Deliberate changes: amounts are converted with the currency's ISO 4217 exponent instead of ×100,
and a commercial order whose logistic orders disagree on the currency is refused with a reason
instead of subtracting yen from euros.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.core.money import format_minor, normalize_currency, parse_amount
from mirakl_connector.ledger.records import PaymentMapping, PaymentMappingStatus
from mirakl_connector.mirakl.orders import PRODUCT_NOT_VALIDATED, MiraklOrder
from mirakl_connector.stripe.currency import Operation, for_stripe
from mirakl_connector.stripe.gateway import PaymentState

#: Mappings whose debits may be confirmed in Mirakl (PA01).
VALIDATABLE = frozenset({PaymentMappingStatus.TO_CAPTURE, PaymentMappingStatus.CAPTURED})


# -- validation (PA11 → PA01) -------------------------------------------------------------------


@dataclass(frozen=True)
class PendingDebit:
    """One PA11 entry: a logistic order waiting for the operator to confirm its debit."""

    order_id: str
    commercial_id: str
    customer_id: str | None
    amount: Decimal  # major units, sent back to Mirakl as received
    currency: str


def parse_pending_debit(raw: Mapping[str, Any]) -> PendingDebit:
    """Read a PA11 entry; raise :class:`InvalidItemError` naming the bad field."""
    if not isinstance(raw, Mapping):
        raise InvalidItemError(f"pending debit is not an object: {type(raw).__name__}")
    order_id = str(raw.get("order_id") or "").strip()
    if not order_id:
        raise InvalidItemError("pending debit has no order_id")
    commercial_id = str(raw.get("order_commercial_id") or "").strip()
    if not commercial_id:
        raise InvalidItemError("order_commercial_id is missing", item_id=order_id)
    if raw.get("amount") is None:
        raise InvalidItemError("amount is missing", item_id=order_id)
    try:
        amount = parse_amount(raw["amount"], field="amount")
        currency = normalize_currency(raw.get("currency_iso_code") or "")
    except InvalidItemError as exc:
        raise exc.for_item(order_id) from None
    customer = raw.get("customer_id")
    return PendingDebit(
        order_id=order_id,
        commercial_id=commercial_id,
        customer_id=None if customer is None else str(customer),
        amount=amount,
        currency=currency,
    )


def validation_refusal(mapping: PaymentMapping | None) -> str | None:
    """Why the debits of a commercial order must not be confirmed yet, or None when they can."""
    if mapping is None:
        return "No Stripe payment is recorded for this commercial order yet"
    if mapping.status not in VALIDATABLE:
        return f"Payment {mapping.stripe_charge_id} is {mapping.status}: the debit is not confirmed"
    return None


def pa01_entries(debits: Sequence[PendingDebit], mapping: PaymentMapping) -> list[dict[str, Any]]:
    """The PA01 lines confirming every logistic order of one commercial order as paid.

    The amount is PA11's own (a ``Decimal``, sent as a JSON number) so Mirakl sees exactly what
    it asked for; the transaction number is the Stripe payment, which the payment split later
    reads back as the order's ``transaction_number``.
    """
    return [
        {
            "amount": debit.amount,
            "customer_id": debit.customer_id,
            "order_id": debit.order_id,
            "payment_status": "OK",
            "transaction_number": mapping.stripe_charge_id,
        }
        for debit in debits
    ]


# -- capture ------------------------------------------------------------------------------------


class CaptureAction(StrEnum):
    WAIT = "WAIT"  # some logistic order is not decided yet: try again next run
    CAPTURE = "CAPTURE"
    CANCEL = "CANCEL"  # everything was refused or cancelled: release the authorisation
    FAIL = "FAIL"  # the data cannot be acted on; the mapping is failed with the reason


@dataclass(frozen=True)
class CaptureDecision:
    action: CaptureAction
    reason: str | None = None
    amount: int | None = None  # minor units to capture (CAPTURE only)
    currency: str | None = None


def decide_capture(mapping: PaymentMapping, orders: Sequence[MiraklOrder]) -> CaptureDecision:
    """Capture, cancel or wait, for one ``to_capture`` mapping and its logistic orders.

    ``orders`` are every OR11 order of the mapping's commercial order. The authorised amount is
    the mapping's ``stripe_amount`` (minor units); operator-only amounts that belong to no
    logistic order are therefore captured too, as with the incumbent.
    """
    commercial_id = mapping.mirakl_commercial_order_id
    if not orders:
        return CaptureDecision(
            CaptureAction.WAIT, f"Commercial order {commercial_id} is not returned by Mirakl"
        )
    for order in sorted(orders, key=lambda o: o.order_id):
        if order.state in PRODUCT_NOT_VALIDATED:
            return CaptureDecision(
                CaptureAction.WAIT,
                f"Order {order.order_id} is not ready yet, status is {order.state}",
            )
        if not order.is_aborted and not order.is_paid:
            return CaptureDecision(
                CaptureAction.WAIT,
                f"Order {order.order_id} is not debited yet, status is {order.state}",
            )
    currencies = {order.currency for order in orders}
    if len(currencies) > 1:
        return CaptureDecision(
            CaptureAction.FAIL,
            f"Orders of {commercial_id} mix currencies ({', '.join(sorted(currencies))})",
        )
    [currency] = currencies
    if mapping.stripe_amount is None:
        return CaptureDecision(
            CaptureAction.FAIL, f"Payment {mapping.stripe_charge_id} has no recorded amount"
        )
    aborted = sum(order.aborted_amount_minor() for order in orders)
    amount = mapping.stripe_amount - aborted
    if amount <= 0:
        return CaptureDecision(
            CaptureAction.CANCEL,
            "Every order was refused or cancelled"
            + (f" (aborted {format_minor(aborted, currency)})" if aborted else ""),
            amount=0,
            currency=currency,
        )
    # Stripe's unit may be coarser (KWD tens of fils, MGA whole ariary): capture no more than due.
    amount = for_stripe(amount, currency, Operation.CHARGE).amount
    return CaptureDecision(CaptureAction.CAPTURE, None, amount=amount, currency=currency)


@dataclass(frozen=True)
class SettledPayment:
    """What Stripe's own state says about a payment we could not capture or cancel."""

    status: PaymentMappingStatus
    reason: str
    captured_amount: int | None


def settle_refused(payment: PaymentState, *, action: CaptureAction, error: str) -> SettledPayment:
    """Turn a capture/cancel that Stripe refused for good into a terminal mapping status.

    The incumbent left such mappings ``to_capture`` and retried them every run forever (issues
    #103/#105, e.g. payments captured at checkout). Here Stripe's state decides:

    * already captured (intent ``succeeded`` or charge ``captured``) → ``captured``, with the
      amount Stripe captured: the money *is* captured, and the payment split needs to see it so;
      the reason says it was captured outside the connector;
    * already cancelled → ``canceled`` when we wanted to cancel it anyway, else ``failed``
      (the authorisation expired or was released: nothing can be captured any more);
    * anything else (amount too large, ...) → ``failed`` with Stripe's message.

    ``failed`` is terminal: the capture step only reads ``to_capture`` mappings.
    """
    state: PaymentState = payment
    if payment.kind == "payment_intent":
        if payment.status == "succeeded":
            captured = payment.amount_captured
            if captured is None and payment.charge is not None:
                captured = payment.charge.amount_captured
            return SettledPayment(
                PaymentMappingStatus.CAPTURED,
                f"Payment {payment.id} was already captured in Stripe ({error})",
                captured,
            )
        if payment.status == "canceled":
            return _canceled(payment, action, error)
        state = payment.charge or payment
    if state.kind == "charge":
        if state.status == "succeeded" and state.captured:
            return SettledPayment(
                PaymentMappingStatus.CAPTURED,
                f"Payment {payment.id} was already captured in Stripe ({error})",
                state.amount_captured,
            )
        if state.refunded or state.status == "failed":
            return _canceled(payment, action, error)
    return SettledPayment(
        PaymentMappingStatus.FAILED, f"Stripe refused to {action.lower()}: {error}", None
    )


def authorisation_open(payment: PaymentState) -> bool:
    """True while the payment can still be captured or released (nothing settled yet)."""
    if payment.kind == "payment_intent":
        return payment.status.startswith("requires_")
    return payment.status == "succeeded" and not payment.captured and not payment.refunded


def _canceled(payment: PaymentState, action: CaptureAction, error: str) -> SettledPayment:
    if action is CaptureAction.CANCEL:
        return SettledPayment(
            PaymentMappingStatus.CANCELED, f"Payment {payment.id} was already released", 0
        )
    return SettledPayment(
        PaymentMappingStatus.FAILED,
        f"Payment {payment.id} can no longer be captured, status is {payment.status} ({error})",
        None,
    )
