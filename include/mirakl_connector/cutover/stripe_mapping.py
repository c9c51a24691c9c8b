"""One row of the Stripe Connector for Mirakl's database as a ledger record (pure).

The statuses are the incumbent's own names (our ledger kept them). A row PENDING without a
provider id is *held* (see :func:`is_held` and :mod:`.stripe_connector`): no workflow of ours
sends it, and it is reported until the incumbent settles it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from mirakl_connector.cutover import text_or_none
from mirakl_connector.ledger.records import (
    AccountMapping,
    PaymentMapping,
    PaymentMappingStatus,
    PayoutRecord,
    PayoutStatus,
    RefundRecord,
    RefundStatus,
    RefundType,
    TransferRecord,
    TransferStatus,
    TransferType,
)
from mirakl_connector.stripe.currency import Operation, from_api

T = TypeVar("T")

#: Start of the reason of a row imported *held* (PENDING at the incumbent, no provider id).
HELD_PREFIX = "Held at import"

_TRANSFER_TYPES = {t.value: t for t in TransferType} | {
    "TRANSFER_ORDER": TransferType.PRODUCT_ORDER
}
_TRANSFER_STATUSES = {s.value: s for s in TransferStatus} | {
    "TRANSFER_INVALID_AMOUNT": TransferStatus.ABORTED  # before 2.0 (Version20201216133324)
}
_REFUND_STATUSES = {s.value: s for s in RefundStatus}
_REFUND_TYPES = {t.value: t for t in RefundType}
_PAYOUT_STATUSES = {s.value: s for s in PayoutStatus}
_PAYMENT_STATUSES = {s.value: s for s in PaymentMappingStatus}


class NotMapped(Exception):
    """An incumbent row that cannot be expressed in the ledger; the reason says why."""


# -- mapping one incumbent row to a ledger record (pure) --------------------------------------


def map_account_mapping(row: Mapping[str, Any]) -> AccountMapping:
    shop_id = _int(row["mirakl_shop_id"], "mirakl_shop_id")
    account = _required(row, "stripe_account_id")
    return AccountMapping(
        mirakl_shop_id=shop_id,
        stripe_account_id=account,
        payouts_enabled=bool(row["payout_enabled"]),
        charges_enabled=bool(row["payin_enabled"]),
        ignored=bool(row["ignored"]),
        disabled_reason=_text(row["disabled_reason"]),
        onboarding_token=_text(row["onboarding_token"]),
    )


def map_transfer(
    row: Mapping[str, Any],
    accounts: Mapping[int, AccountMapping],
    aware: Callable[[Any], datetime | None],
) -> TransferRecord:
    """The ledger transfer of an incumbent ``stripe_transfer`` row (:class:`NotMapped` if none).

    :param accounts: the incumbent's account mappings by their (old) row id.
    """
    transfer_type = _known(row, "type", _TRANSFER_TYPES, "transfer type")
    old_status = _text(row["status"]) or ""
    status = _TRANSFER_STATUSES.get(old_status)
    mirakl_id = _required(row, "mirakl_id")
    transfer_id = _text(row["transfer_id"])
    reason = _text(row["status_reason"])
    account = accounts.get(row["account_mapping_id"]) if row["account_mapping_id"] else None
    if transfer_id:
        if status is not TransferStatus.CREATED:
            reason = f"Imported as created: the Stripe connector had {transfer_id} ({old_status})"
        else:
            reason = None
        status = TransferStatus.CREATED
    elif status is None:
        raise NotMapped(f"unknown transfer status {old_status!r}")
    elif status is TransferStatus.CREATED:
        raise NotMapped("TRANSFER_CREATED without a transfer_id: check Stripe by hand")
    elif status is TransferStatus.PENDING:
        status, reason = TransferStatus.ABORTED, _held_reason("transfer", "transfer_id", mirakl_id)
    seller = account.stripe_account_id if account else None
    seller_to_platform = transfer_type in (TransferType.SUBSCRIPTION, TransferType.EXTRA_INVOICES)
    return TransferRecord(
        type=transfer_type,
        mirakl_id=mirakl_id,
        status=status,
        status_reason=reason,
        mirakl_shop_id=account.mirakl_shop_id if account else None,
        destination_account=None
        if seller_to_platform or transfer_type is TransferType.REFUND
        else seller,
        source_account=seller if seller_to_platform else None,
        transaction_id=_text(row["transaction_id"]),
        transfer_id=transfer_id,
        amount=_amount(
            row["amount"],
            row["currency"],
            Operation.REVERSAL if transfer_type is TransferType.REFUND else Operation.TRANSFER,
        ),
        currency=_currency(row["currency"]),
        mirakl_created_date=_date_text(aware(row["mirakl_created_date"])),
    )


def map_refund(row: Mapping[str, Any], aware: Callable[[Any], datetime | None]) -> RefundRecord:
    """The ledger refund of an incumbent ``stripe_refund`` row (:class:`NotMapped` if none)."""
    refund_id = _required(row, "mirakl_refund_id")
    status = _known(row, "status", _REFUND_STATUSES, "refund status")
    refund_type = _known(
        row, "type", _REFUND_TYPES, "refund type", default=RefundType.PRODUCT_ORDER.value
    )
    stripe_refund_id = _text(row["stripe_refund_id"])
    reason = _text(row["status_reason"])
    validated_at = None
    if status is RefundStatus.CREATED:
        if not stripe_refund_id:
            raise NotMapped("REFUND_CREATED without a stripe_refund_id: check Stripe by hand")
        validated_at = aware(row["mirakl_validation_time"]) or aware(row["modification_datetime"])
        validated_at = validated_at or datetime.now(UTC)
    elif status is RefundStatus.PENDING and not stripe_refund_id:
        status, reason = RefundStatus.ABORTED, _held_reason("refund", "stripe_refund_id", refund_id)
    return RefundRecord(
        mirakl_refund_id=refund_id,
        type=refund_type,
        status=status,
        status_reason=reason,
        amount=_amount(row["amount"], row["currency"], Operation.REFUND),
        currency=_currency(row["currency"]),
        mirakl_commercial_order_id=_text(row["mirakl_commercial_order_id"]),
        mirakl_order_id=_text(row["mirakl_order_id"]),
        mirakl_order_line_id=_text(row["mirakl_order_line_id"]),
        transaction_id=_text(row["transaction_id"]),
        stripe_refund_id=stripe_refund_id,
        mirakl_validated_at=validated_at,
    )


def map_payout(
    row: Mapping[str, Any],
    accounts: Mapping[int, AccountMapping],
    aware: Callable[[Any], datetime | None],
) -> PayoutRecord:
    """The ledger payout of an incumbent ``stripe_payout`` row (:class:`NotMapped` if none)."""
    invoice_id = _required(row, "mirakl_invoice_id")
    status = _known(row, "status", _PAYOUT_STATUSES, "payout status")
    payout_id = _text(row["payout_id"])
    reason = _text(row["status_reason"])
    if payout_id and status is PayoutStatus.PENDING:
        status, reason = PayoutStatus.CREATED, None
    elif status is PayoutStatus.CREATED and not payout_id:
        raise NotMapped("PAYOUT_CREATED without a payout_id: check Stripe by hand")
    elif status is PayoutStatus.PENDING:
        status, reason = PayoutStatus.ABORTED, _held_reason("payout", "payout_id", invoice_id)
    account = accounts.get(row["account_mapping_id"]) if row["account_mapping_id"] else None
    return PayoutRecord(
        mirakl_invoice_id=invoice_id,
        status=status,
        status_reason=reason,
        mirakl_shop_id=account.mirakl_shop_id if account else None,
        stripe_account_id=account.stripe_account_id if account else None,
        amount=_amount(row["amount"], row["currency"], Operation.PAYOUT),
        currency=_currency(row["currency"]),
        payout_id=payout_id,
        mirakl_created_date=_date_text(aware(row["mirakl_created_date"])),
    )


def map_payment_mapping(row: Mapping[str, Any]) -> PaymentMapping:
    charge = _required(row, "stripe_charge_id")
    status = _known(row, "status", _PAYMENT_STATUSES, "payment mapping status")
    return PaymentMapping(
        stripe_charge_id=charge,
        mirakl_commercial_order_id=_text(row["mirakl_commercial_order_id"]),
        status=status,
        # The incumbent's payment_mapping has no currency: its amount is kept as stored (in
        # Stripe's unit, the same as ISO minor units but for MGA, ISK and the like).
        stripe_amount=_amount(row["stripe_amount"]),
        captured_amount=_amount(row["stripe_amount"])
        if status is PaymentMappingStatus.CAPTURED
        else None,
    )


def _required(row: Mapping[str, Any], column: str) -> str:
    """The incumbent's ``column`` as text (:class:`NotMapped` when it is empty)."""
    value = _text(row[column])
    if not value:
        raise NotMapped(f"no {column}")
    return value


def _known(
    row: Mapping[str, Any], column: str, known: Mapping[str, T], what: str, *, default: str = ""
) -> T:
    """What the incumbent's ``column`` (``default`` when empty) stands for in the ledger
    (:class:`NotMapped` when it is a value we do not know)."""
    old = _text(row[column]) or default
    value = known.get(old)
    if value is None:
        raise NotMapped(f"unknown {what} {old!r}")
    return value


def is_held(record: Any) -> bool:
    """True for a row imported held (PENDING at the incumbent without a provider id)."""
    return bool(record.status_reason and record.status_reason.startswith(HELD_PREFIX))


_HELD_LOOKUP = {
    "transfer": "a transfer with metadata miraklId={item}",
    "refund": "a refund with metadata miraklRefundId={item}",
    "payout": "a payout on the seller's account with metadata invoiceId={item}",
}


def _held_reason(kind: str, id_name: str, item: str) -> str:
    lookup = _HELD_LOOKUP[kind].format(item=item)
    return (
        f"{HELD_PREFIX}: the Stripe connector had this {kind} PENDING without a {id_name}; its "
        f"worker may have sent it (look for {lookup} in Stripe). Let its workers finish or "
        "settle the row there, then import again; never sent from here"
    )


_text = text_or_none


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise NotMapped(f"{name} is not a number: {value!r}") from None


def _amount(
    value: Any, currency: Any = None, operation: Operation = Operation.CHARGE
) -> int | None:
    """The incumbent's amount in our ledger's unit (ISO 4217 minor units).

    The incumbent stored what it sent to Stripe (Mirakl's amount × 100 for every currency): an
    amount in *Stripe's* unit. Read back like any Stripe amount (:func:`from_api`), the row says
    what really moved: the same for EUR or JPY, a hundredth for ISK (two decimals at Stripe,
    none in ISO 4217), a hundred times for MGA (zero-decimal at Stripe, two in ISO 4217).
    """
    if value is None:
        return None
    try:
        amount = int(value)
    except (TypeError, ValueError):
        raise NotMapped(f"amount is not a whole number of minor units: {value!r}") from None
    code = _currency(currency)
    return from_api(amount, code, operation) if code else amount


def _currency(value: Any) -> str | None:
    text = _text(value)
    return text.upper() if text else None


def _date_text(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
