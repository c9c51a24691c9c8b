"""What a Hyperwallet payment notification means, and what it writes back to Mirakl (pure).

A ``PAYMENTS.UPDATED.STATUS.*`` notification names a payment by its ``clientPaymentId`` (see
:mod:`.payment_decisions`); a COMPLETED one confirms the Mirakl document paid, with IV07 (an
invoice, a number) or SBC07 (a seller billing cycle, a UUID).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.core.ids import is_ascii_digits
from mirakl_connector.core.money import normalize_currency, parse_amount
from mirakl_connector.hyperwallet.payment_decisions import (
    BILLING_CYCLE_UUID,
    INVOICE_SOURCES,
    SBC11,
    clean_text,
    invoice_id_of,
    looks_like_billing_cycle,
    upper_text,
)


@dataclass(frozen=True)
class PaymentNotice:
    """The fields of a ``PAYMENTS.UPDATED.STATUS.*`` notification the connector acts on."""

    token: str  # wbh-
    created_at: datetime  # the notification's createdOn
    payment_token: str  # pmt-
    client_payment_id: str
    status: str
    amount: Decimal | None
    currency: str | None
    payment_created_on: str | None  # the payment's createdOn (IV07 transaction date)
    destination_token: str | None
    program_token: str | None


def parse_payment_notice(payload: Mapping[str, Any], created_at: datetime) -> PaymentNotice:
    """Read a payment notification; :class:`InvalidItemError` names the missing field."""
    token = str(payload.get("token") or "")
    obj = payload.get("object")
    if not isinstance(obj, Mapping):
        raise InvalidItemError("notification has no object", item_id=token)
    payment_token = clean_text(obj.get("token"))
    cpid = clean_text(obj.get("clientPaymentId"))
    status = upper_text(obj.get("status")) or _status_from_type(payload.get("type"))
    if not payment_token:
        raise InvalidItemError("payment notification has no object.token", item_id=token)
    if not cpid:
        raise InvalidItemError("payment notification has no clientPaymentId", item_id=token)
    if not status:
        raise InvalidItemError("payment notification has no status", item_id=token)
    amount: Decimal | None = None
    if obj.get("amount") not in (None, ""):
        try:
            amount = parse_amount(obj.get("amount"), field="object.amount")
        except InvalidItemError as exc:
            raise exc.for_item(token) from None
    currency = clean_text(obj.get("currency"))
    return PaymentNotice(
        token=token,
        created_at=created_at,
        payment_token=payment_token,
        client_payment_id=cpid,
        status=status,
        amount=amount,
        currency=normalize_currency(currency) if currency else None,
        payment_created_on=clean_text(obj.get("createdOn")),
        destination_token=clean_text(obj.get("destinationToken")),
        program_token=clean_text(obj.get("programToken")),
    )


def hw_date_to_mirakl(value: str | None, *, item_id: str) -> str:
    """Hyperwallet's ``2021-11-12T09:55:53`` (UTC, no zone) as Mirakl's ``...Z`` instant."""
    if not value:
        raise InvalidItemError("the payment has no createdOn (transaction date)", item_id=item_id)
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidItemError(f"createdOn {value!r} is not a date-time", item_id=item_id) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iv07_document(
    notice: PaymentNotice,
    *,
    confirm_linked_manual_documents: bool,
    invoice_id: str | None = None,
) -> dict[str, Any]:
    """The IV07 entry confirming the invoice paid: the seed's mapping.

    amount → ``amount``, currency → ``currency_iso_code``, clientPaymentId → ``invoice_id``
    (Mirakl wants a number), payment createdOn → ``transaction_date``, plus
    ``confirm_all_linked_manual_documents`` (issues #102/#125/#126: without it Mirakl refuses the
    amount when manual credits were rolled into the invoice).
    """
    cpid = invoice_id or notice.client_payment_id
    if not is_ascii_digits(cpid):
        raise InvalidItemError(
            f"clientPaymentId {cpid!r} is not a Mirakl invoice id (IV07 needs a number)",
            item_id=notice.token,
        )
    return {
        "invoice_id": int(cpid),
        "amount": _required_amount(notice),
        "currency_iso_code": _required_currency(notice),
        "transaction_date": hw_date_to_mirakl(notice.payment_created_on, item_id=notice.token),
        "confirm_all_linked_manual_documents": confirm_linked_manual_documents,
    }


def confirmation_endpoint(
    client_payment_id: str, row_source: str | None, default_source: str
) -> str:
    """Which Mirakl write confirms a COMPLETED payment: ``IV07`` or ``SBC07``.

    The source the ledger recorded for the payment decides; a row without one (written from a
    notification of a payment made by the connector we replaced) is routed by the shape of its
    ``clientPaymentId``: a UUID is a seller billing cycle (SBC07, as the Hyperwallet connector
    5.3+ confirms it), a number an invoice (IV07, as up to 5.2); anything else follows
    ``invoice_source``.
    """
    if row_source in INVOICE_SOURCES:
        return "SBC07" if row_source == SBC11 else "IV07"
    if looks_like_billing_cycle(client_payment_id):
        return "SBC07"
    if is_ascii_digits(invoice_id_of(client_payment_id)):
        return "IV07"
    return "SBC07" if default_source == SBC11 else "IV07"


def confirmed_document_id(client_payment_id: str, row_invoice_id: str | None) -> str:
    """The Mirakl document a COMPLETED payment confirms: the ledger's invoice id (which differs
    from the ``clientPaymentId`` under the other convention), else the payment's own id."""
    return row_invoice_id or invoice_id_of(client_payment_id)


def sbc07_cycle(notice: PaymentNotice, cycle_id: str | None = None) -> dict[str, Any]:
    """The SBC07 entry marking the seller billing cycle PAID.

    ``id`` must be a UUID (SBC07 ``id`` pattern of the published schema): anything else is bad
    data for this notification, refused here rather than by Mirakl.
    """
    cycle = cycle_id or notice.client_payment_id
    if BILLING_CYCLE_UUID.fullmatch(cycle) is None:
        raise InvalidItemError(
            f"{cycle!r} is not a seller billing cycle id (SBC07 needs a UUID)",
            item_id=notice.token,
        )
    return {
        "id": cycle,
        "state": "PAID",
        "amount_transferred_to_seller": _required_amount(notice),
        "currency_iso_code": _required_currency(notice),
        "transaction_date": hw_date_to_mirakl(notice.payment_created_on, item_id=notice.token),
    }


def _required_amount(notice: PaymentNotice) -> Decimal:
    if notice.amount is None:
        raise InvalidItemError("the payment has no amount", item_id=notice.token)
    return notice.amount


def _required_currency(notice: PaymentNotice) -> str:
    if not notice.currency:
        raise InvalidItemError("the payment has no currency", item_id=notice.token)
    return notice.currency


def _status_from_type(kind: Any) -> str | None:
    prefix = "PAYMENTS.UPDATED.STATUS."
    if isinstance(kind, str) and kind.upper().startswith(prefix):
        return kind.upper()[len(prefix) :] or None
    return None
