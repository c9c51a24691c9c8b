"""The ledger: what the connector owes, did and why, in SQLite (default) or PostgreSQL.

Import the :class:`Ledger` and the record dataclasses from here; SQLAlchemy stays inside.
"""

from __future__ import annotations

from mirakl_connector.ledger.records import (
    INVOICE_TRANSFER_TYPES,
    OPERATOR_FEE_SUFFIX,
    ORDER_TRANSFER_TYPES,
    RETRIABLE_PAYOUT,
    RETRIABLE_REFUND,
    RETRIABLE_TRANSFER,
    TAX_SUFFIX,
    AccountMapping,
    HyperwalletPayment,
    HyperwalletPaymentKind,
    HyperwalletPaymentStatus,
    InboxEvent,
    InboxStatus,
    LedgerEvent,
    Notification,
    NotificationStatus,
    PaymentMapping,
    PaymentMappingStatus,
    PayoutRecord,
    PayoutStatus,
    PendingItem,
    RefundRecord,
    RefundStatus,
    RefundType,
    TransferRecord,
    TransferStatus,
    TransferType,
)
from mirakl_connector.ledger.schema import STATUS_REASON_MAX
from mirakl_connector.ledger.store import Ledger, LedgerConflictError

__all__ = [
    "INVOICE_TRANSFER_TYPES",
    "OPERATOR_FEE_SUFFIX",
    "ORDER_TRANSFER_TYPES",
    "RETRIABLE_PAYOUT",
    "RETRIABLE_REFUND",
    "RETRIABLE_TRANSFER",
    "STATUS_REASON_MAX",
    "TAX_SUFFIX",
    "AccountMapping",
    "HyperwalletPayment",
    "HyperwalletPaymentKind",
    "HyperwalletPaymentStatus",
    "InboxEvent",
    "InboxStatus",
    "Ledger",
    "LedgerConflictError",
    "LedgerEvent",
    "Notification",
    "NotificationStatus",
    "PaymentMapping",
    "PaymentMappingStatus",
    "PayoutRecord",
    "PayoutStatus",
    "PendingItem",
    "RefundRecord",
    "RefundStatus",
    "RefundType",
    "TransferRecord",
    "TransferStatus",
    "TransferType",
]
