"""Payment refund: whether a customer refund can be paid, and how much to take back from the seller.

Pure functions over the ledger rows, Mirakl's pending refunds (PA12/SPA12) and the refunded
order. The only outside fact they need, a payment's state in Stripe, comes through the
``lookup_payment`` callable, as in :mod:`.transfer_decisions`.

The rules and reason texts follow the Stripe connector, with deliberate changes:

* amounts use the currency's ISO 4217 exponent (JPY 0, KWD 3) instead of ×100;
* a refund whose Stripe refund exists only waits for its Mirakl validation: re-deciding it never
  looks at the payment again (it has been refunded, by us);
* the seller reversal and its ``_TAX`` twin are each decided from their own row, so a retry of
  the seller row is never priced as the tax row (the Stripe connector for Mirakl overwrote it);
* a reversal of zero or less is ABORTED with its amount instead of being sent to Stripe, and so
  is the reversal of an order transfer that was never made (ABORTED or IGNORED): there is
  nothing to take back (the Stripe connector's refund job has no such guard).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from mirakl_connector.core.errors import InvalidItemError, PaymentProviderError
from mirakl_connector.core.money import format_minor, normalize_currency, parse_amount, to_minor
from mirakl_connector.ledger.records import (
    RefundRecord,
    RefundStatus,
    RefundType,
    TransferRecord,
    TransferStatus,
)
from mirakl_connector.mirakl.orders import RefundPart
from mirakl_connector.stripe.currency import Operation, positive_sendable, sendable
from mirakl_connector.stripe.gateway import PaymentState

PaymentLookup = Callable[[str], PaymentState]

#: Intent statuses in which the customer's money is not taken yet; the incumbent cancels the
#: intent when a refund is asked for it (issue #131), and so do we.
REQUIRES_STATES = frozenset(
    {"requires_payment_method", "requires_confirmation", "requires_action", "requires_capture"}
)


# -- reading Mirakl's pending refunds -----------------------------------------------------------


def refund_from_pa12(raw: Mapping[str, Any]) -> RefundRecord:
    """A new product refund row from one flattened PA12 refund (see ``iter_pending_refunds``)."""
    refund_id = _refund_id(raw)
    try:
        currency = normalize_currency(raw.get("currency_iso_code") or "")
        amount = _minor(raw, currency)
        order_id = _required(raw, "order_id")
        commercial_id = _required(raw, "order_commercial_id")
    except InvalidItemError as exc:
        raise exc.for_item(refund_id) from None
    return RefundRecord(
        mirakl_refund_id=refund_id,
        type=RefundType.PRODUCT_ORDER,
        amount=amount,
        currency=currency,
        mirakl_commercial_order_id=commercial_id,
        mirakl_order_id=order_id,
        mirakl_order_line_id=(str(raw["order_line_id"]) if raw.get("order_line_id") else None),
    )


def refund_from_spa12(raw: Mapping[str, Any]) -> RefundRecord:
    """A new service refund row from one SPA12 refund.

    SPA12 carries no commercial id: it is the order id without its last ``-suffix``, the
    convention Mirakl uses for service orders (``ABC-1`` → ``ABC``).
    """
    refund_id = _refund_id(raw)
    try:
        currency = normalize_currency(raw.get("currency_code") or "")
        amount = _minor(raw, currency)
        order_id = _required(raw, "order_id")
    except InvalidItemError as exc:
        raise exc.for_item(refund_id) from None
    return RefundRecord(
        mirakl_refund_id=refund_id,
        type=RefundType.SERVICE_ORDER,
        amount=amount,
        currency=currency,
        mirakl_commercial_order_id=service_commercial_id(order_id),
        mirakl_order_id=order_id,
    )


def service_commercial_id(order_id: str) -> str:
    """``ABC-1`` → ``ABC``; an id without ``-`` is its own commercial id."""
    head, sep, _tail = order_id.rpartition("-")
    return head if sep and head else order_id


# -- the customer refund ------------------------------------------------------------------------


@dataclass(frozen=True)
class RefundVerdict:
    """The decided row, and the payment intent to cancel first (a side effect for the job)."""

    row: RefundRecord
    cancel_intent: str | None = None


def decide_refund(
    row: RefundRecord,
    *,
    transfer_payment_id: str | None,
    mapping_payment_id: str | None,
    lookup_payment: PaymentLookup,
) -> RefundVerdict:
    """Decide a refund row (new, ON_HOLD or FAILED): PENDING, ON_HOLD, ABORTED or CREATED.

    :param transfer_payment_id: the ``transaction_id`` of the order's transfer, when the split
        recorded one (the charge that funded the seller).
    :param mapping_payment_id: the payment mapping's charge or intent for the commercial order.
    """
    if row.stripe_refund_id:
        if row.mirakl_validated_at is not None:
            return RefundVerdict(_set(row, RefundStatus.CREATED, None))
        # Refunded in Stripe already: only the Mirakl validation is left to do (or to retry).
        return RefundVerdict(_set(row, RefundStatus.PENDING, None))
    if row.amount is None or row.amount <= 0:
        amount = format_minor(row.amount or 0, row.currency or "EUR")
        return RefundVerdict(
            _set(row, RefundStatus.ABORTED, f"Amount must be positive, input was: {amount}")
        )
    # Never refund more than Mirakl's refund: round down, keep what is owed (amount + residue).
    owed = row.amount + (row.amount_residue or 0)
    send = sendable(owed, row.currency or "", Operation.REFUND)
    if send.unsupported:  # before any Stripe call
        return RefundVerdict(_set(row, RefundStatus.FAILED, send.unsupported))
    row = replace(row, amount=send.amount, amount_residue=send.residue)
    if send.too_small:
        return RefundVerdict(_set(row, RefundStatus.ABORTED, send.too_small))
    payment_id = row.transaction_id or transfer_payment_id or mapping_payment_id
    if not payment_id:
        return RefundVerdict(
            _set(row, RefundStatus.ON_HOLD, "Cannot find the ID of the payment to be refunded")
        )
    row = replace(row, transaction_id=payment_id)
    try:
        payment = lookup_payment(payment_id)
    except PaymentProviderError as exc:
        if exc.permanent:
            return RefundVerdict(_set(row, RefundStatus.ABORTED, exc.message))
        raise
    return _check_payment(row, payment, lookup_payment)


def _check_payment(
    row: RefundRecord, payment: PaymentState, lookup_payment: PaymentLookup
) -> RefundVerdict:
    if payment.kind == "payment_intent":
        verdict = _check_intent(row, payment)
        if verdict is not None:
            return verdict
        if payment.charge is None:
            return RefundVerdict(
                _set(row, RefundStatus.ON_HOLD, f"Payment {payment.id} has no charge yet")
            )
        payment = payment.charge
    elif payment.payment_intent and not payment.captured and payment.status != "failed":
        # An uncaptured charge of an intent: the intent's state decides (and may be cancelled).
        try:
            intent = lookup_payment(payment.payment_intent)
        except PaymentProviderError as exc:
            if exc.permanent:
                return RefundVerdict(_set(row, RefundStatus.ABORTED, exc.message))
            raise
        verdict = _check_intent(row, intent)
        if verdict is not None:
            return verdict
    if payment.status == "succeeded":
        if not payment.captured:
            return RefundVerdict(
                _set(
                    row,
                    RefundStatus.ON_HOLD,
                    f"Payment {payment.id} is not ready yet, status is succeeded (not captured)",
                )
            )
        if payment.refunded:
            return RefundVerdict(
                _set(row, RefundStatus.ABORTED, f"Payment {payment.id} has been canceled")
            )
        return RefundVerdict(_set(row, RefundStatus.PENDING, None))
    if payment.status == "failed":
        return RefundVerdict(_set(row, RefundStatus.ABORTED, f"Payment {payment.id} failed"))
    return RefundVerdict(
        _set(
            row,
            RefundStatus.ON_HOLD,
            f"Payment {payment.id} is not ready yet, status is {payment.status}",
        )
    )


def _check_intent(row: RefundRecord, intent: PaymentState) -> RefundVerdict | None:
    """The verdict an intent's status forces, or None when it succeeded (check its charge)."""
    if intent.status == "succeeded":
        return None
    if intent.status == "canceled":
        return RefundVerdict(
            _set(row, RefundStatus.ABORTED, f"Payment {intent.id} has been canceled")
        )
    reason = f"Payment {intent.id} is not ready yet, status is {intent.status}"
    cancel = intent.id if intent.status in REQUIRES_STATES else None
    return RefundVerdict(_set(row, RefundStatus.ON_HOLD, reason), cancel_intent=cancel)


# -- the seller reversal ------------------------------------------------------------------------


def decide_reversal(
    row: TransferRecord,
    *,
    refund: RefundRecord | None,
    order_transfer: TransferRecord | None,
    refund_part: RefundPart | None,
    is_tax_row: bool,
    tax_split: bool,
) -> TransferRecord:
    """Decide a ``TRANSFER_REFUND`` row: how much of the order transfer goes back, if anything.

    :param refund: the customer refund the row belongs to (its id without ``_TAX``).
    :param order_transfer: the order transfer to reverse (``<order id>_TAX`` for the tax row).
    :param refund_part: the refunded amount, commission and tax read from the Mirakl order;
        None when the order could not be read (the caller puts the reason on the row instead).
    """
    if row.transfer_id:
        return _tset(row, TransferStatus.CREATED, None)
    refund_id = row.mirakl_id.removesuffix("_TAX")
    if refund is None:
        return _tset(row, TransferStatus.ON_HOLD, f"Cannot find StripeRefund with ID {refund_id}")
    if refund.status is RefundStatus.ABORTED:
        return _tset(row, TransferStatus.ABORTED, f"Refund {refund_id} has been aborted")
    if refund.status is not RefundStatus.CREATED:
        return _tset(row, TransferStatus.ON_HOLD, f"Refund {refund_id} has yet to be validated")
    if is_tax_row and not tax_split:
        return _tset(
            row, TransferStatus.ON_HOLD, "Tax split is disabled; enable it to reverse the tax"
        )
    if order_transfer is not None and order_transfer.status in (
        TransferStatus.ABORTED,
        TransferStatus.IGNORED,
    ):
        return _tset(
            row,
            TransferStatus.ABORTED,
            f"Nothing to reverse: the order transfer {order_transfer.mirakl_id} is "
            f"{order_transfer.status}",
        )
    if (
        order_transfer is None
        or order_transfer.status is not TransferStatus.CREATED
        or not order_transfer.transfer_id
    ):
        return _tset(
            row,
            TransferStatus.ON_HOLD,
            "Payment split has to occur before the transfer can be reversed for a refund",
        )
    row = replace(
        row,
        transaction_id=order_transfer.transfer_id,
        mirakl_shop_id=order_transfer.mirakl_shop_id,
        destination_account=order_transfer.destination_account,
    )
    if refund_part is None:
        return _tset(row, TransferStatus.ON_HOLD, f"Refund {refund_id} is not found in its order")
    amount = (
        refund_part.tax_minor()
        if is_tax_row
        else refund_part.seller_amount_minor(tax_split=tax_split)
    )
    # Take back no more than the refund's seller share: round down (README "Currencies").
    send = positive_sendable(amount, refund_part.currency, Operation.REVERSAL)
    row = replace(
        row, amount=send.amount, amount_residue=send.residue, currency=refund_part.currency
    )
    if send.unsupported:
        return _tset(row, TransferStatus.FAILED, send.unsupported)
    if send.too_small:
        return _tset(row, TransferStatus.ABORTED, send.too_small)
    return _tset(row, TransferStatus.PENDING, None)


def needs_refund_part(
    row: TransferRecord,
    *,
    refund: RefundRecord | None,
    order_transfer: TransferRecord | None,
    is_tax_row: bool,
    tax_split: bool,
) -> bool:
    """Whether :func:`decide_reversal` would reach the refunded amounts of the order: the rules
    before them (refund done, tax split on for a tax row, order transfer made) all pass. A row
    stopped earlier waits for something else: reading its order from Mirakl would be wasted."""
    if row.transfer_id or refund is None or refund.status is not RefundStatus.CREATED:
        return False
    if is_tax_row and not tax_split:
        return False
    return (
        order_transfer is not None
        and order_transfer.status is TransferStatus.CREATED
        and bool(order_transfer.transfer_id)
    )


# -- helpers ------------------------------------------------------------------------------------


def _refund_id(raw: Mapping[str, Any]) -> str:
    if not isinstance(raw, Mapping):
        raise InvalidItemError(f"refund is not an object: {type(raw).__name__}")
    value = raw.get("id")
    if value is None or not str(value).strip():
        raise InvalidItemError("refund id is missing", item_id=str(raw.get("order_id") or None))
    return str(value).strip()


def _required(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    if value is None or not str(value).strip():
        raise InvalidItemError(f"{key} is missing")
    return str(value).strip()


def _minor(raw: Mapping[str, Any], currency: str) -> int:
    if raw.get("amount") is None:
        raise InvalidItemError("amount is missing")
    return to_minor(parse_amount(raw["amount"], field="amount"), currency)


def _set(row: RefundRecord, status: RefundStatus, reason: str | None) -> RefundRecord:
    return replace(row, status=status, status_reason=reason)


def _tset(row: TransferRecord, status: TransferStatus, reason: str | None) -> TransferRecord:
    return replace(row, status=status, status_reason=reason)
