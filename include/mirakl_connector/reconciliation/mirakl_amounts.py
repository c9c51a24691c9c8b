"""What a Mirakl document says a ledger row should move, with the workflows' own rules (pure).

Each function takes the raw document as Mirakl's list returned it and computes the amount the
deciding workflow computed from it, with the same parser (so a rule lives in one place): the
order transfer (:func:`~mirakl_connector.mirakl.orders.parse_product_order`, seller amount or
the ``_TAX`` transfer), the customer refund and the seller's reversal
(:meth:`~mirakl_connector.mirakl.orders.MiraklOrder.refund`), the settlement transfers and payout
(:func:`~mirakl_connector.stripe.settlement_decisions.parse_invoice`), the Hyperwallet seller
payment and operator commission
(:func:`~mirakl_connector.hyperwallet.payment_decisions.parse_invoice`). Amounts are
ISO 4217 minor units: what the ledger owes (moved + residue) before a provider's rounding.

A document whose amount cannot be read comes back with ``problem`` set (reported as an amount
mismatch naming the reason), never as an exception: one bad document does not stop the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.hyperwallet import payment_decisions as hw
from mirakl_connector.ledger.records import HyperwalletPaymentKind, TransferType
from mirakl_connector.mirakl.orders import MiraklOrder, parse_product_order, parse_service_order
from mirakl_connector.reconciliation.compare import MiraklAmount
from mirakl_connector.stripe.settlement_decisions import parse_invoice

PRODUCT = "product"
SERVICE = "service"


def parse_order(raw: Mapping[str, Any], kind: str) -> MiraklOrder:
    """An OR11 (product) or SOR11 (service) order; a service order's debit is not needed for
    its amounts."""
    if kind == SERVICE:
        return parse_service_order(raw, None)
    return parse_product_order(raw)


def order_transfer_amount(
    raw: Mapping[str, Any], kind: str, *, is_tax: bool, tax_split: bool
) -> MiraklAmount:
    """The seller's transfer of an order (amount due − commission [− tax]) or its ``_TAX``
    transfer (:func:`~mirakl_connector.stripe.transfer_decisions.decide_order_transfer`)."""
    document = f"order {_id(raw, kind)}"
    try:
        order = parse_order(raw, kind)
        amount = (
            order.tax_amount_minor() if is_tax else order.seller_amount_minor(tax_split=tax_split)
        )
    except InvalidItemError as exc:
        return MiraklAmount(document, problem=str(exc))
    return MiraklAmount(document, amount, order.currency)


def refund_amount(raw: Mapping[str, Any], kind: str, refund_id: str) -> MiraklAmount | None:
    """A customer refund (the refund's ``amount`` in its order); ``None`` when the order has no
    such refund (the refund is not in Mirakl)."""
    return _refund_part(raw, kind, refund_id, lambda part: part.amount_minor())


def reversal_amount(
    raw: Mapping[str, Any], kind: str, refund_id: str, *, is_tax: bool, tax_split: bool
) -> MiraklAmount | None:
    """What goes back from the seller for a refund: refund − refunded commission [− tax], or the
    refunded tax for the ``_TAX`` row (:func:`~mirakl_connector.stripe.refund_decisions.
    decide_reversal`); ``None`` when the order has no such refund."""
    return _refund_part(
        raw,
        kind,
        refund_id,
        lambda part: part.tax_minor() if is_tax else part.seller_amount_minor(tax_split=tax_split),
    )


def _refund_part(
    raw: Mapping[str, Any], kind: str, refund_id: str, amount_of: Callable[[Any], int]
) -> MiraklAmount | None:
    """``amount_of`` the order's refund ``refund_id``; ``None`` when the order has no such
    refund; an unreadable order or refund is a problem, not an amount."""
    document = f"refund {refund_id} of order {_id(raw, kind)}"
    try:
        order = parse_order(raw, kind)
        if str(refund_id) not in order.refunds:
            return None
        return MiraklAmount(document, amount_of(order.refund(refund_id)), order.currency)
    except InvalidItemError as exc:
        return MiraklAmount(document, problem=str(exc))


def settlement_amount(raw: Mapping[str, Any], transfer_type: TransferType | None) -> MiraklAmount:
    """An invoice transfer (``transfer_type``, absolute value) or, with ``None``, the payout
    (``amount_transferred``) of an IV01 invoice."""
    document = f"invoice {raw.get('invoice_id')}"
    try:
        invoice = parse_invoice(raw)
        if transfer_type is None:
            amount = invoice.payout_amount_minor()
        else:
            amount = invoice.transfer_amount_minor(transfer_type)
    except (InvalidItemError, KeyError) as exc:
        return MiraklAmount(document, problem=str(exc))
    return MiraklAmount(document, amount, invoice.currency)


def hyperwallet_amount(
    raw: Mapping[str, Any], source: str, kind: HyperwalletPaymentKind
) -> MiraklAmount:
    """The seller payment or the operator commission of an IV01 invoice (automatic invoice or
    manual credit note) or an SBC11 billing cycle, paid or not."""
    document = f"{'billing cycle' if source == hw.SBC11 else 'invoice'} "
    document += hw.raw_invoice_id(raw, source) or "?"
    try:
        invoice = hw.parse_invoice(raw, source, include_paid=True, credit_notes=True)
    except InvalidItemError as exc:
        return MiraklAmount(document, problem=str(exc))
    if isinstance(invoice, str):  # not a payable document (its state or type)
        return MiraklAmount(document, problem=invoice)
    if kind is HyperwalletPaymentKind.OPERATOR_FEE:
        return MiraklAmount(document, invoice.operator_amount, invoice.currency)
    return MiraklAmount(document, invoice.seller_amount, invoice.currency)


def _id(raw: Mapping[str, Any], kind: str) -> str:
    return str(raw.get("id" if kind == SERVICE else "order_id") or "?")
