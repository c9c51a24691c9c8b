"""What the operator's notification endpoint receives: type names and payloads (pure).

The shapes are those of the Stripe connector's server-to-server notifications (camelCase keys,
amounts in minor units, lower-case currency) so that an operator endpoint written for it keeps
working unchanged. The ledger queues the ``*.failed`` ones itself, in the transaction that saves
the failure (see :meth:`mirakl_connector.ledger.Ledger.save_transfers`); workflows use
:func:`account_updated_payload` for ``account.updated``.
"""

from __future__ import annotations

from typing import Any

from mirakl_connector.ledger.records import (
    PayoutRecord,
    PayoutStatus,
    RefundRecord,
    RefundStatus,
    TransferRecord,
    TransferStatus,
)

ACCOUNT_UPDATED = "account.updated"
TRANSFER_FAILED = "transfer.failed"
REFUND_FAILED = "refund.failed"
PAYOUT_FAILED = "payout.failed"

#: The status that makes a row notifiable, and the notification type it gets, per entity.
FAILED_STATUS_TYPES: dict[str, tuple[str, str]] = {
    "transfer": (TransferStatus.FAILED.value, TRANSFER_FAILED),
    "refund": (RefundStatus.FAILED.value, REFUND_FAILED),
    "payout": (PayoutStatus.FAILED.value, PAYOUT_FAILED),
}


def _lower(currency: str | None) -> str | None:
    return currency.lower() if currency else currency


def _value(code: Any) -> Any:
    # Enum members become their plain string (the JSON the endpoint expects).
    return getattr(code, "value", code)


def transfer_failed_payload(record: TransferRecord) -> dict[str, Any]:
    """Payload of ``transfer.failed``; ``stripeAccountId`` is the destination account."""
    return {
        "internalId": record.id,
        "miraklId": record.mirakl_id,
        "type": _value(record.type),
        "stripeAccountId": record.destination_account,
        "miraklShopId": record.mirakl_shop_id,
        "transferId": record.transfer_id,
        "transactionId": record.transaction_id,
        "amount": record.amount,
        "status": _value(record.status),
        "failedReason": record.status_reason,
        "currency": _lower(record.currency),
    }


def refund_failed_payload(record: RefundRecord) -> dict[str, Any]:
    """Payload of ``refund.failed``."""
    return {
        "internalId": record.id,
        "amount": record.amount,
        "currency": _lower(record.currency),
        "miraklOrderId": record.mirakl_order_id,
        "miraklRefundId": record.mirakl_refund_id,
        "stripeRefundId": record.stripe_refund_id,
        "transactionId": record.transaction_id,
        "status": _value(record.status),
        "failedReason": record.status_reason,
        "type": _value(record.type),
    }


def payout_failed_payload(record: PayoutRecord) -> dict[str, Any]:
    """Payload of ``payout.failed``.

    ``stripePayoutId`` repeats ``payoutId``: the Stripe connector deprecated it in 2.0 but
    endpoints written before still read it.
    """
    return {
        "internalId": record.id,
        "amount": record.amount,
        "currency": _lower(record.currency),
        "miraklInvoiceId": record.mirakl_invoice_id,
        "payoutId": record.payout_id,
        "stripePayoutId": record.payout_id,
        "status": _value(record.status),
        "failedReason": record.status_reason,
    }


def account_updated_payload(mirakl_shop_id: int, stripe_account_id: str) -> dict[str, Any]:
    """Payload of ``account.updated`` (the connector's key for the account is ``stripeUserId``)."""
    return {"miraklShopId": mirakl_shop_id, "stripeUserId": stripe_account_id}


def failed_notification(
    record: TransferRecord | RefundRecord | PayoutRecord,
) -> tuple[str, dict[str, Any]]:
    """The ``(type, payload)`` announcing that ``record`` failed."""
    if isinstance(record, TransferRecord):
        return TRANSFER_FAILED, transfer_failed_payload(record)
    if isinstance(record, RefundRecord):
        return REFUND_FAILED, refund_failed_payload(record)
    if isinstance(record, PayoutRecord):
        return PAYOUT_FAILED, payout_failed_payload(record)
    raise TypeError(f"no failure notification for a {type(record).__name__}")


def failed_dedup_key(notification_type: str, entity_id: int, event_id: int) -> str:
    """Dedup key of a failure notification: one per status change (ledger event) of a row.

    The event id makes a row that fails, recovers and fails again notify twice, while the
    same change can never be queued twice.
    """
    return f"{notification_type}:{entity_id}:{event_id}"
