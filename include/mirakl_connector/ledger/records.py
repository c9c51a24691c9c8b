"""What the ledger stores, as plain dataclasses the workflow code can read and decide on.

Workflows never hold SQLAlchemy objects: they receive these records from
:class:`mirakl_connector.ledger.Ledger`, decide (pure functions), and hand them back to be saved.
Statuses and their meanings follow the Stripe connector's (``TRANSFER_ON_HOLD`` and so on), so an
operator moving from it recognises every row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar


class TransferType(StrEnum):
    PRODUCT_ORDER = "TRANSFER_PRODUCT_ORDER"
    SERVICE_ORDER = "TRANSFER_SERVICE_ORDER"
    REFUND = "TRANSFER_REFUND"
    SUBSCRIPTION = "TRANSFER_SUBSCRIPTION"
    EXTRA_CREDITS = "TRANSFER_EXTRA_CREDITS"
    EXTRA_INVOICES = "TRANSFER_EXTRA_INVOICES"


ORDER_TRANSFER_TYPES = (TransferType.PRODUCT_ORDER, TransferType.SERVICE_ORDER)
INVOICE_TRANSFER_TYPES = (
    TransferType.SUBSCRIPTION,
    TransferType.EXTRA_CREDITS,
    TransferType.EXTRA_INVOICES,
)


class TransferStatus(StrEnum):
    PENDING = "TRANSFER_PENDING"  # decided: ready to be sent to Stripe
    CREATED = "TRANSFER_CREATED"  # Stripe transfer (or reversal) exists: terminal
    ON_HOLD = "TRANSFER_ON_HOLD"  # temporary blocker; re-evaluated every run
    FAILED = "TRANSFER_FAILED"  # Stripe refused it or the data is bad; re-evaluated, alerted
    ABORTED = "TRANSFER_ABORTED"  # permanent: nothing will ever be transferred
    IGNORED = "TRANSFER_IGNORED"  # shop flagged ignored: terminal


class RefundStatus(StrEnum):
    PENDING = "REFUND_PENDING"
    CREATED = "REFUND_CREATED"
    ON_HOLD = "REFUND_ON_HOLD"
    FAILED = "REFUND_FAILED"
    ABORTED = "REFUND_ABORTED"


class RefundType(StrEnum):
    PRODUCT_ORDER = "REFUND_PRODUCT_ORDER"
    SERVICE_ORDER = "REFUND_SERVICE_ORDER"


class PayoutStatus(StrEnum):
    PENDING = "PAYOUT_PENDING"
    CREATED = "PAYOUT_CREATED"
    ON_HOLD = "PAYOUT_ON_HOLD"
    FAILED = "PAYOUT_FAILED"
    ABORTED = "PAYOUT_ABORTED"


class PaymentMappingStatus(StrEnum):
    TO_CAPTURE = "to_capture"
    CAPTURED = "captured"
    CANCELED = "canceled"
    FAILED = "failed"


class NotificationStatus(StrEnum):
    PENDING = "PENDING"  # queued: to be sent when ``next_attempt_at`` is due (or NULL)
    SENT = "SENT"  # the operator endpoint accepted it: terminal
    FAILED = "FAILED"  # gave up after the last retry; kept for the report


class InboxStatus(StrEnum):
    """Where a received provider event (webhook or healed) stands."""

    RECEIVED = "RECEIVED"  # stored, not processed yet
    PROCESSED = "PROCESSED"  # its effect is applied: terminal
    IGNORED = "IGNORED"  # nothing to do (unknown type, unknown object, superseded): terminal
    FAILED = "FAILED"  # the last attempt failed; retried when ``next_attempt_at`` is due


class HyperwalletPaymentStatus(StrEnum):
    """Where a Hyperwallet payment stands in the ledger (Hyperwallet's own one: ``hw_status``)."""

    PENDING = "HW_PAYMENT_PENDING"  # to be created; "in doubt" once an attempt is marked
    CREATED = "HW_PAYMENT_CREATED"  # exists at Hyperwallet (pmt- token), not final yet
    COMPLETED = "HW_PAYMENT_COMPLETED"  # Hyperwallet reported COMPLETED: terminal
    FAILED = "HW_PAYMENT_FAILED"  # refused at creation or a failure status: may be re-created
    ON_HOLD = "HW_PAYMENT_ON_HOLD"  # cannot be sent yet (no bank account token...): retried
    ABORTED = "HW_PAYMENT_ABORTED"  # will never be sent (negative operator fee...): terminal


class HyperwalletPaymentKind(StrEnum):
    SELLER = "SELLER"  # the invoice's amount to the seller's bank account
    OPERATOR_FEE = "OPERATOR_FEE"  # the operator's commission to the operator's own account


#: ``clientPaymentId`` suffix of the operator-fee twin of an invoice payment (as the incumbent).
OPERATOR_FEE_SUFFIX = "-operatorFee"


#: Rows in these statuses are re-evaluated by every run (the "backlog").
RETRIABLE_TRANSFER = frozenset({TransferStatus.ON_HOLD, TransferStatus.FAILED})
RETRIABLE_REFUND = frozenset({RefundStatus.ON_HOLD, RefundStatus.FAILED})
RETRIABLE_PAYOUT = frozenset({PayoutStatus.ON_HOLD, PayoutStatus.FAILED})

#: Suffix of the tax-split twin of an order transfer or refund reversal.
TAX_SUFFIX = "_TAX"


class ProviderWrite:
    """A row the connector creates at a payment provider: "in doubt" is defined here, once.

    A create call is marked in the ledger (``attempted_at``) *before* it is sent. A row is in
    doubt when that call was sent, the provider's id of the object is not recorded, and the row
    is not settled: the provider may hold the object without the ledger knowing, so it must be
    looked up or replayed with the same key (:mod:`mirakl_connector.stripe.exactly_once`),
    never sent anew. The workflows read :attr:`in_doubt`; the console's SQL reads the same two
    class attributes (:data:`PROVIDER_ID`, :data:`SETTLED`), so the page and the runs agree.
    """

    #: the field holding the provider's id of the object once it is known to exist
    PROVIDER_ID: ClassVar[str]
    #: the statuses after which nothing is in doubt any more (the object exists, or never will)
    SETTLED: ClassVar[frozenset[str]]

    attempted_at: datetime | None
    status: Any

    @property
    def in_doubt(self) -> bool:
        """True when a create call may have succeeded without the ledger knowing."""
        return sent_without_answer(
            self.attempted_at, getattr(self, self.PROVIDER_ID), self.status, self.SETTLED
        )


def sent_without_answer(
    attempted_at: datetime | None, provider_id: Any, status: Any, settled: frozenset[str]
) -> bool:
    """The one definition of *in doubt*: sent, no provider id recorded, not settled. Records
    (:attr:`ProviderWrite.in_doubt`) and the console's actions on raw rows
    (:class:`~mirakl_connector.ledger.manual_rules.RowState`) both ask it; the console's SQL
    writes the same three terms (:mod:`mirakl_connector.ledger.queries`)."""
    return attempted_at is not None and provider_id is None and status not in settled


@dataclass
class AccountMapping:
    """A Mirakl shop and the Stripe connected account that receives its money."""

    mirakl_shop_id: int
    stripe_account_id: str
    payouts_enabled: bool = False
    charges_enabled: bool = False
    ignored: bool = False
    disabled_reason: str | None = None
    onboarding_token: str | None = None
    kyc_status: str | None = None  # Mirakl KYC status last computed from the Stripe account
    kyc_reported_status: str | None = None  # last status e-mailed / pushed to Mirakl
    id: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass
class PaymentMapping:
    """A Mirakl commercial order and the Stripe charge or payment intent that paid for it."""

    stripe_charge_id: str
    mirakl_commercial_order_id: str | None = None
    status: PaymentMappingStatus = PaymentMappingStatus.TO_CAPTURE
    # the charge's amount, in ISO 4217 minor units like every ledger amount (converted from
    # Stripe's unit, README "Currencies"); the name is the incumbent's column
    stripe_amount: int | None = None
    status_reason: str | None = None
    captured_amount: int | None = None  # ISO minor units actually captured
    mirakl_validated_at: datetime | None = None  # PA01 sent for this order
    idempotency_key: str | None = None
    attempted_at: datetime | None = None
    attempts: int = 0
    id: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass
class TransferRecord(ProviderWrite):
    """One Stripe transfer (or reversal) we owe or made, keyed by ``(type, mirakl_id)``.

    ``idempotency_key`` and ``attempted_at`` are written *before* the Stripe call: a row that is
    PENDING with ``attempted_at`` set and no ``transfer_id`` is "in doubt" (the process may have
    died after Stripe answered) and must be looked up, never blindly re-created.
    ``attempted_at`` is when the current key was *first* sent (a replay with the same key keeps
    it), because Stripe ages a key from its first use. The other rows (refunds, payouts, payment
    mappings) follow the same rules.
    """

    type: TransferType
    mirakl_id: str
    status: TransferStatus = TransferStatus.ON_HOLD
    status_reason: str | None = None
    mirakl_shop_id: int | None = None
    destination_account: str | None = None  # acct_ receiving the money
    source_account: str | None = None  # acct_ the transfer is created on (seller → platform)
    transaction_id: str | None = None  # source charge (orders) or transfer to reverse (refunds)
    transfer_id: str | None = None  # tr_ / trr_ once created
    amount: int | None = None  # ISO minor units moved (after Stripe's rounding)
    amount_residue: int | None = None  # ISO minor units owed but not moved (Stripe's rounding)
    currency: str | None = None  # upper-case ISO 4217
    mirakl_created_date: str | None = None  # raw Mirakl string, as received
    idempotency_key: str | None = None
    attempted_at: datetime | None = None
    attempts: int = 0
    id: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    PROVIDER_ID: ClassVar[str] = "transfer_id"
    SETTLED: ClassVar[frozenset[str]] = frozenset(
        {TransferStatus.CREATED, TransferStatus.ABORTED, TransferStatus.IGNORED}
    )


@dataclass
class RefundRecord(ProviderWrite):
    """A customer refund requested by Mirakl (PA12/SPA12), keyed by ``mirakl_refund_id``."""

    mirakl_refund_id: str
    type: RefundType = RefundType.PRODUCT_ORDER
    status: RefundStatus = RefundStatus.ON_HOLD
    status_reason: str | None = None
    amount: int | None = None
    amount_residue: int | None = None  # see TransferRecord
    currency: str | None = None
    mirakl_commercial_order_id: str | None = None
    mirakl_order_id: str | None = None
    mirakl_order_line_id: str | None = None
    transaction_id: str | None = None  # charge or payment intent to refund
    stripe_refund_id: str | None = None
    mirakl_validated_at: datetime | None = None
    idempotency_key: str | None = None
    attempted_at: datetime | None = None
    attempts: int = 0
    id: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    PROVIDER_ID: ClassVar[str] = "stripe_refund_id"
    SETTLED: ClassVar[frozenset[str]] = frozenset({RefundStatus.CREATED, RefundStatus.ABORTED})


@dataclass
class PayoutRecord(ProviderWrite):
    """A payout of an invoice's ``amount_transferred`` to a seller's bank, keyed by invoice id."""

    mirakl_invoice_id: str
    status: PayoutStatus = PayoutStatus.ON_HOLD
    status_reason: str | None = None
    mirakl_shop_id: int | None = None
    stripe_account_id: str | None = None
    amount: int | None = None
    amount_residue: int | None = None  # see TransferRecord
    currency: str | None = None
    payout_id: str | None = None
    mirakl_created_date: str | None = None
    idempotency_key: str | None = None
    attempted_at: datetime | None = None
    attempts: int = 0
    id: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    PROVIDER_ID: ClassVar[str] = "payout_id"
    SETTLED: ClassVar[frozenset[str]] = frozenset({PayoutStatus.CREATED, PayoutStatus.ABORTED})


@dataclass
class LedgerEvent:
    """One status change of a ledger row: the audit trail shown in reports."""

    entity: str  # "transfer" | "refund" | "payout" | "payment_mapping"
    entity_id: int
    old_status: str | None
    new_status: str
    reason: str | None
    run_id: str | None
    at: datetime


@dataclass
class PendingItem:
    """An item a workflow must retry although its checkpoint has moved past it.

    Checkpoints only go forward; a shop whose onboarding failed would otherwise never be looked
    at again until Mirakl reports it updated. The workflow records it here and clears it once
    it succeeds.
    """

    workflow: str
    item_id: str
    reason: str | None = None
    attempts: int = 0
    first_failed_at: datetime | None = None
    last_failed_at: datetime | None = None
    id: int | None = None


@dataclass
class Notification:
    """A message for the operator's endpoint, queued in the ledger (a transactional outbox).

    Queued in the same transaction as the change it reports, so a crash can neither lose the
    notification of a committed failure nor announce a failure that was rolled back. A sender
    task delivers it later and saves the outcome.
    """

    type: str  # "transfer.failed", "account.updated"...
    dedup_key: str  # unique: the same event is never queued twice
    payload: dict[str, Any] = field(default_factory=dict)
    status: NotificationStatus = NotificationStatus.PENDING
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime | None = None  # not before this time (None: at once)
    sent_at: datetime | None = None
    id: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass
class InboxEvent:
    """One event a provider sent us (Stripe, Hyperwallet), kept once per ``(source, event_id)``.

    The webhook endpoint only stores it; a DAG applies it later. Storing first means an event
    is never lost because a downstream API was slow, and the unique key makes the provider's
    retries (and the healing sensor re-reading the Events API) harmless.
    """

    event_id: str
    source: str  # "stripe" | "hyperwallet"
    type: str
    payload: dict[str, Any] = field(default_factory=dict)
    object_id: str | None = None  # the object the event is about (acct_, ch_, po_...)
    event_created: datetime | None = None  # when the provider created the event
    received_via: str = "webhook"  # "webhook" | "healing"
    status: InboxStatus = InboxStatus.RECEIVED
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    processed_at: datetime | None = None
    id: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass
class HyperwalletPayment(ProviderWrite):
    """One Hyperwallet payment we owe or made for a Mirakl invoice, keyed by ``clientPaymentId``.

    ``clientPaymentId`` is the invoice id (``<id>-operatorFee`` for the operator's commission):
    Hyperwallet has no idempotency key, so this id, looked up before every creation, is what
    keeps an invoice from being paid twice. ``attempted_at`` is committed before the create call;
    a row with it set and no ``payment_token`` is "in doubt" and must be looked up first.
    ``last_notification_at`` is the ``createdOn`` of the newest webhook applied to the row: an
    older notification never overrides a newer one.
    """

    client_payment_id: str
    invoice_id: str
    kind: HyperwalletPaymentKind = HyperwalletPaymentKind.SELLER
    status: HyperwalletPaymentStatus = HyperwalletPaymentStatus.PENDING
    status_reason: str | None = None
    hw_status: str | None = None  # Hyperwallet's status: CREATED, COMPLETED, RETURNED...
    payment_token: str | None = None  # pmt- once created
    amount: int | None = None  # minor units
    currency: str | None = None  # upper-case ISO 4217
    program: str | None = None  # the shop's hw-program
    shop_id: int | None = None
    destination_token: str | None = None  # trm- receiving the money
    invoice_source: str | None = None  # "IV01" | "SBC11": how to confirm it in Mirakl
    invoice_created_date: str | None = None  # raw Mirakl date, to find the invoice again
    hw_created_on: str | None = None  # payment createdOn (Hyperwallet's text, UTC)
    last_notification_at: datetime | None = None
    last_notification_token: str | None = None  # wbh- of that notification
    confirmed_at: datetime | None = None  # invoice confirmed paid in Mirakl (IV07 / SBC07)
    idempotency_key: str | None = None  # the clientPaymentId sent with the last attempt
    attempted_at: datetime | None = None
    attempts: int = 0
    id: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    PROVIDER_ID: ClassVar[str] = "payment_token"
    SETTLED: ClassVar[frozenset[str]] = frozenset(
        {HyperwalletPaymentStatus.COMPLETED, HyperwalletPaymentStatus.ABORTED}
    )
