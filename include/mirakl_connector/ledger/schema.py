"""The ledger's tables, declared once for SQLite and PostgreSQL.

Columns mirror the dataclasses of :mod:`mirakl_connector.ledger.records` name for name, so the store
can translate a row into a record without a hand-written mapping per field. Statuses and types are
stored as their string values (not native enums) so that adding a status later is a code change,
not a schema migration. Amounts are ``BigInteger`` minor units: a KWD amount of a large marketplace
can leave the 32-bit range.

Column types, sizes and the checks made before a write live in :mod:`.columns` (re-exported
here: ``schema.truncate_reason``, ``schema.UTCDateTime``...).
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from mirakl_connector.ledger.columns import (
    CODE_LEN,
    ID_LEN,
    ITEM_LEN,
    STATUS_REASON_MAX,
    Base,
    Imported,
    Timestamps,
    UTCDateTime,
    in_doubt_index,
    pk,
    truncate_reason,
    value_problems,
)

__all__ = [
    "STATUS_REASON_MAX",
    "Base",
    "UTCDateTime",
    "in_doubt_index",
    "truncate_reason",
    "value_problems",
]


class AccountMappingRow(Timestamps, Imported, Base):
    __tablename__ = "account_mappings"

    id: Mapped[int] = pk()
    mirakl_shop_id: Mapped[int] = mapped_column(BigInteger, nullable=False, unique=True)
    stripe_account_id: Mapped[str] = mapped_column(String(ID_LEN), nullable=False, unique=True)
    payouts_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    charges_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    ignored: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    onboarding_token: Mapped[str | None] = mapped_column(Text)
    kyc_status: Mapped[str | None] = mapped_column(String(CODE_LEN))
    kyc_reported_status: Mapped[str | None] = mapped_column(String(CODE_LEN))


class PaymentMappingRow(Timestamps, Imported, Base):
    __tablename__ = "payment_mappings"
    # the backlogs' change reads: payments changed since the previous run (schema step 13)
    __table_args__ = (Index("ix_payment_mappings_updated_at", "updated_at"),)

    id: Mapped[int] = pk()
    stripe_charge_id: Mapped[str] = mapped_column(String(ID_LEN), nullable=False, unique=True)
    mirakl_commercial_order_id: Mapped[str | None] = mapped_column(String(ID_LEN), index=True)
    status: Mapped[str] = mapped_column(String(CODE_LEN), nullable=False)
    stripe_amount: Mapped[int | None] = mapped_column(BigInteger)
    status_reason: Mapped[str | None] = mapped_column(String(STATUS_REASON_MAX))
    captured_amount: Mapped[int | None] = mapped_column(BigInteger)
    mirakl_validated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    idempotency_key: Mapped[str | None] = mapped_column(String(ID_LEN))
    attempted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A server default: migration step 2 adds this NOT NULL column to tables that have rows.
    attempts: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0, server_default=text("0")
    )


class TransferRow(Timestamps, Imported, Base):
    __tablename__ = "transfers"
    __table_args__ = (
        UniqueConstraint("type", "mirakl_id", name="uq_transfers_type_mirakl_id"),
        Index("ix_transfers_type_status", "type", "status"),
        # the payments console (schema step 7): lists by status, search by account
        Index("ix_transfers_status_created", "status", "created_at"),
        Index("ix_transfers_destination_account", "destination_account"),
        in_doubt_index("transfers", "transfer_id"),  # schema step 12
        # the backlogs' change reads: rows changed since the previous run (schema step 13)
        Index("ix_transfers_updated_at", "updated_at"),
    )

    id: Mapped[int] = pk()
    type: Mapped[str] = mapped_column(String(CODE_LEN), nullable=False)
    mirakl_id: Mapped[str] = mapped_column(String(ID_LEN), nullable=False)
    status: Mapped[str] = mapped_column(String(CODE_LEN), nullable=False)
    status_reason: Mapped[str | None] = mapped_column(String(STATUS_REASON_MAX))
    mirakl_shop_id: Mapped[int | None] = mapped_column(BigInteger)
    destination_account: Mapped[str | None] = mapped_column(String(ID_LEN))
    source_account: Mapped[str | None] = mapped_column(String(ID_LEN))
    transaction_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    transfer_id: Mapped[str | None] = mapped_column(String(ID_LEN), index=True)
    amount: Mapped[int | None] = mapped_column(BigInteger)
    # schema step 8: owed minus moved, in ISO minor units, when Stripe's rules forced rounding
    amount_residue: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    mirakl_created_date: Mapped[str | None] = mapped_column(String(CODE_LEN))
    idempotency_key: Mapped[str | None] = mapped_column(String(ID_LEN))
    attempted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class RefundRow(Timestamps, Imported, Base):
    __tablename__ = "refunds"
    # the payments console's lists and exports, oldest first (schema step 9); in doubt (12)
    __table_args__ = (
        Index("ix_refunds_status_created", "status", "created_at"),
        in_doubt_index("refunds", "stripe_refund_id"),
        # the backlogs' change reads (schema step 13): refunds changed since the previous run,
        # and the refunds of an order or commercial order whose payment or transfer changed
        Index("ix_refunds_updated_at", "updated_at"),
        Index("ix_refunds_mirakl_order_id", "mirakl_order_id"),
        Index("ix_refunds_mirakl_commercial_order_id", "mirakl_commercial_order_id"),
    )

    id: Mapped[int] = pk()
    mirakl_refund_id: Mapped[str] = mapped_column(String(ID_LEN), nullable=False, unique=True)
    type: Mapped[str] = mapped_column(String(CODE_LEN), nullable=False)
    status: Mapped[str] = mapped_column(String(CODE_LEN), nullable=False, index=True)
    status_reason: Mapped[str | None] = mapped_column(String(STATUS_REASON_MAX))
    amount: Mapped[int | None] = mapped_column(BigInteger)
    # schema step 8: owed minus moved, in ISO minor units, when Stripe's rules forced rounding
    amount_residue: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    mirakl_commercial_order_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    mirakl_order_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    mirakl_order_line_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    transaction_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    stripe_refund_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    mirakl_validated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    idempotency_key: Mapped[str | None] = mapped_column(String(ID_LEN))
    attempted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class PayoutRow(Timestamps, Imported, Base):
    __tablename__ = "payouts"
    # the payments console (schema step 7): search by account
    __table_args__ = (
        Index("ix_payouts_stripe_account_id", "stripe_account_id"),
        Index("ix_payouts_status_created", "status", "created_at"),  # schema step 9
        in_doubt_index("payouts", "payout_id"),  # schema step 12
    )

    id: Mapped[int] = pk()
    mirakl_invoice_id: Mapped[str] = mapped_column(String(ID_LEN), nullable=False, unique=True)
    status: Mapped[str] = mapped_column(String(CODE_LEN), nullable=False, index=True)
    status_reason: Mapped[str | None] = mapped_column(String(STATUS_REASON_MAX))
    mirakl_shop_id: Mapped[int | None] = mapped_column(BigInteger)
    stripe_account_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    amount: Mapped[int | None] = mapped_column(BigInteger)
    # schema step 8: owed minus moved, in ISO minor units, when Stripe's rules forced rounding
    amount_residue: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    payout_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    mirakl_created_date: Mapped[str | None] = mapped_column(String(CODE_LEN))
    idempotency_key: Mapped[str | None] = mapped_column(String(ID_LEN))
    attempted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class CheckpointRow(Base):
    __tablename__ = "checkpoints"

    id: Mapped[int] = pk()
    key: Mapped[str] = mapped_column(String(ID_LEN), nullable=False, unique=True)
    value: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class LedgerEventRow(Base):
    __tablename__ = "ledger_events"
    __table_args__ = (
        Index("ix_ledger_events_entity", "entity", "entity_id"),
        # the payments console's "money moved per day" (schema step 7)
        Index("ix_ledger_events_entity_status_at", "entity", "new_status", "at", "entity_id"),
        # the payments console's items of one run, linked from run summaries (schema step 9)
        Index("ix_ledger_events_run", "run_id", "entity", "entity_id"),
    )

    id: Mapped[int] = pk()
    entity: Mapped[str] = mapped_column(String(CODE_LEN), nullable=False)
    entity_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    old_status: Mapped[str | None] = mapped_column(String(CODE_LEN))
    new_status: Mapped[str] = mapped_column(String(CODE_LEN), nullable=False)
    reason: Mapped[str | None] = mapped_column(String(STATUS_REASON_MAX))
    run_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class PendingItemRow(Base):
    __tablename__ = "pending_items"
    __table_args__ = (
        UniqueConstraint("workflow", "item_id", name="uq_pending_items_workflow_item_id"),
    )

    id: Mapped[int] = pk()
    workflow: Mapped[str] = mapped_column(String(CODE_LEN), nullable=False)
    item_id: Mapped[str] = mapped_column(String(ID_LEN), nullable=False)
    reason: Mapped[str | None] = mapped_column(String(STATUS_REASON_MAX))
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    first_failed_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    last_failed_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class NotificationRow(Timestamps, Base):
    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_status_next_attempt", "status", "next_attempt_at"),)

    id: Mapped[int] = pk()
    type: Mapped[str] = mapped_column(String(CODE_LEN), nullable=False)
    dedup_key: Mapped[str] = mapped_column(String(ID_LEN), nullable=False, unique=True)
    payload: Mapped[str] = mapped_column(Text, nullable=False)  # JSON object
    status: Mapped[str] = mapped_column(String(CODE_LEN), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(String(STATUS_REASON_MAX))
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AlertCooldownRow(Base):
    __tablename__ = "alert_cooldowns"

    id: Mapped[int] = pk()
    key: Mapped[str] = mapped_column(String(ID_LEN), nullable=False, unique=True)
    last_claimed_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class InboxEventRow(Timestamps, Base):
    __tablename__ = "webhook_inbox"
    __table_args__ = (
        UniqueConstraint("source", "event_id", name="uq_webhook_inbox_source_event_id"),
        Index("ix_webhook_inbox_status_next_attempt", "status", "next_attempt_at"),
    )

    id: Mapped[int] = pk()
    event_id: Mapped[str] = mapped_column(String(ID_LEN), nullable=False)
    source: Mapped[str] = mapped_column(String(CODE_LEN), nullable=False)
    type: Mapped[str] = mapped_column(String(ID_LEN), nullable=False)
    object_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    event_created: Mapped[datetime | None] = mapped_column(UTCDateTime())
    payload: Mapped[str] = mapped_column(Text, nullable=False)  # JSON object
    received_via: Mapped[str] = mapped_column(String(CODE_LEN), nullable=False)
    status: Mapped[str] = mapped_column(String(CODE_LEN), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(STATUS_REASON_MAX))
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AppliedObjectEventRow(Base):
    """Per provider object, the newest event whose effect was applied (out-of-order guard)."""

    __tablename__ = "applied_object_events"

    id: Mapped[int] = pk()
    object_id: Mapped[str] = mapped_column(String(ID_LEN), nullable=False, unique=True)
    last_event_created: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    last_event_id: Mapped[str] = mapped_column(String(ID_LEN), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class HyperwalletPaymentRow(Timestamps, Imported, Base):
    """Hyperwallet payments per ``clientPaymentId`` (schema step 4)."""

    __tablename__ = "hyperwallet_payments"
    # the payments console's lists and exports, oldest first (schema step 9); in doubt (12)
    __table_args__ = (
        Index("ix_hyperwallet_payments_status_created", "status", "created_at"),
        in_doubt_index("hyperwallet_payments", "payment_token"),
        # the approval gate's "first payout to this bank account?" (schema step 15)
        Index("ix_hyperwallet_payments_destination_token", "destination_token"),
    )

    id: Mapped[int] = pk()
    client_payment_id: Mapped[str] = mapped_column(String(ID_LEN), nullable=False, unique=True)
    invoice_id: Mapped[str] = mapped_column(String(ID_LEN), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(CODE_LEN), nullable=False)
    status: Mapped[str] = mapped_column(String(CODE_LEN), nullable=False, index=True)
    status_reason: Mapped[str | None] = mapped_column(String(STATUS_REASON_MAX))
    hw_status: Mapped[str | None] = mapped_column(String(CODE_LEN))
    payment_token: Mapped[str | None] = mapped_column(String(ID_LEN), index=True)
    amount: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    program: Mapped[str | None] = mapped_column(String(ID_LEN))
    shop_id: Mapped[int | None] = mapped_column(BigInteger)
    destination_token: Mapped[str | None] = mapped_column(String(ID_LEN))
    invoice_source: Mapped[str | None] = mapped_column(String(CODE_LEN))
    invoice_created_date: Mapped[str | None] = mapped_column(String(CODE_LEN))
    hw_created_on: Mapped[str | None] = mapped_column(String(CODE_LEN))
    last_notification_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_notification_token: Mapped[str | None] = mapped_column(String(ID_LEN))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    idempotency_key: Mapped[str | None] = mapped_column(String(ID_LEN))
    attempted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    #: schema step 10: one sender at a time. Set (to now + the lease) by the run about to look
    #: the payment up and create it, cleared when it is done; another run finding it in the
    #: future sends nothing (Hyperwallet has no idempotency key to fall back on).
    send_claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    send_claimed_by: Mapped[str | None] = mapped_column(String(ID_LEN))


class PaymentClaimRow(Base):
    """Which provider pays a Mirakl document: one row per (kind, document id), never two
    (schema step 6; see :mod:`mirakl_connector.ledger.claims`)."""

    __tablename__ = "payment_claims"
    __table_args__ = (
        UniqueConstraint("kind", "document_id", name="uq_payment_claims_kind_document_id"),
    )

    id: Mapped[int] = pk()
    kind: Mapped[str] = mapped_column(String(CODE_LEN), nullable=False)
    document_id: Mapped[str] = mapped_column(String(ID_LEN), nullable=False)
    provider: Mapped[str] = mapped_column(String(CODE_LEN), nullable=False)
    shop_id: Mapped[int | None] = mapped_column(BigInteger)
    workflow: Mapped[str] = mapped_column(String(CODE_LEN), nullable=False)
    origin: Mapped[str] = mapped_column(String(CODE_LEN), nullable=False)
    run_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    note: Mapped[str | None] = mapped_column(String(STATUS_REASON_MAX))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class MovedDailyRow(Base):
    """Money moved per UTC day, kept up to date with ``ledger_events`` (schema step 9).

    One row per (day, entity, subtype, currency, origin): ``subtype`` is a transfer's ``type`` or
    a Hyperwallet payment's ``kind`` ('' for refunds and payouts), ``origin`` '' for rows this
    connector moved and the incumbent's name for rows imported at cutover (they moved there).
    Written in the transaction that writes the status event (see :mod:`.moved_daily`), so the
    payments console sums a year from a few thousand rows instead of joining a million events.
    """

    __tablename__ = "moved_daily"
    __table_args__ = (
        UniqueConstraint(
            "day", "entity", "subtype", "currency", "origin", name="uq_moved_daily_key"
        ),
    )

    id: Mapped[int] = pk()
    day: Mapped[str] = mapped_column(String(10), nullable=False)  # YYYY-MM-DD, UTC
    entity: Mapped[str] = mapped_column(String(CODE_LEN), nullable=False)
    subtype: Mapped[str] = mapped_column(String(CODE_LEN), nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    origin: Mapped[str] = mapped_column(String(CODE_LEN), nullable=False)
    count: Mapped[int] = mapped_column(BigInteger, nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)


class ConsoleActionRow(Base):
    """One action a user took on the payments console: who, when, what, on which item, why, and
    what came of it (schema step 11; see :mod:`mirakl_connector.ledger.manual_actions`).

    Written in the transaction of the change it records (a hold, a release, a resolution, a
    mapping), or alone for a refusal and a triggered run. Never updated: the audit trail.
    ``entity`` is a ``ledger_events`` entity (``transfer``, ``refund``, ``payout``,
    ``hyperwallet_payment``) with its row id in ``entity_id``, or ``account_mapping`` with the
    shop id; ``item`` is the id a person reads (Mirakl id, shop id).
    """

    __tablename__ = "console_actions"
    __table_args__ = (
        # an item's history on the console; and the split's "released since" (action, at)
        Index("ix_console_actions_entity", "entity", "entity_id", "at"),
        Index("ix_console_actions_action_at", "action", "at"),
    )

    id: Mapped[int] = pk()
    at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    user_name: Mapped[str] = mapped_column(String(ID_LEN), nullable=False)
    action: Mapped[str] = mapped_column(String(CODE_LEN), nullable=False)
    entity: Mapped[str] = mapped_column(String(CODE_LEN), nullable=False)
    entity_id: Mapped[int | None] = mapped_column(BigInteger)
    item: Mapped[str | None] = mapped_column(String(ID_LEN))
    why: Mapped[str] = mapped_column(String(STATUS_REASON_MAX), nullable=False)
    #: ``done`` or ``refused``
    result: Mapped[str] = mapped_column(String(CODE_LEN), nullable=False)
    #: what was done (new status, provider object, DAG run id) or why it was refused
    detail: Mapped[str | None] = mapped_column(String(STATUS_REASON_MAX))


class ReconciliationRow(Base):
    """One reconciliation of a workflow: of a DAG run, or of a UTC day (schema step 14).

    ``scope`` is ``run`` (``scope_key`` = the run id) or ``day`` (``scope_key`` = the day);
    one row per (flow, scope, scope_key): reconciling the same run again replaces its result.
    The counts make the console's per-run and per-day views one small read.
    """

    __tablename__ = "reconciliations"
    __table_args__ = (
        UniqueConstraint("flow", "scope", "scope_key", name="uq_reconciliations_scope"),
        Index("ix_reconciliations_day", "day", "flow"),
        Index("ix_reconciliations_run", "run_id"),
    )

    id: Mapped[int] = pk()
    flow: Mapped[str] = mapped_column(String(CODE_LEN), nullable=False)
    scope: Mapped[str] = mapped_column(String(CODE_LEN), nullable=False)
    scope_key: Mapped[str] = mapped_column(String(ID_LEN), nullable=False)
    run_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    day: Mapped[str] = mapped_column(String(10), nullable=False)  # YYYY-MM-DD, UTC
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reconciled_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    matched: Mapped[int] = mapped_column(Integer, nullable=False)
    mismatched: Mapped[int] = mapped_column(Integer, nullable=False)
    provider_calls: Mapped[int] = mapped_column(Integer, nullable=False)
    mirakl_calls: Mapped[int] = mapped_column(Integer, nullable=False)
    note: Mapped[str | None] = mapped_column(Text)


class ReconciliationItemRow(Base):
    """One finding of a reconciliation (schema step 14): MATCHED or a mismatch with its reason.

    Amounts: ``ledger_amount``, ``provider_amount`` and ``mirakl_amount`` in ISO 4217 minor
    units of ``currency``; ``provider_amount_raw`` as the provider returned it (Stripe's integer
    in its own unit, Hyperwallet's decimal).
    """

    __tablename__ = "reconciliation_items"
    __table_args__ = (
        Index("ix_reconciliation_items_reconciliation", "reconciliation_id", "kind"),
        Index("ix_reconciliation_items_day_kind", "day", "kind"),
    )

    id: Mapped[int] = pk()
    reconciliation_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    flow: Mapped[str] = mapped_column(String(CODE_LEN), nullable=False)
    day: Mapped[str] = mapped_column(String(10), nullable=False)
    kind: Mapped[str] = mapped_column(String(CODE_LEN), nullable=False)
    item: Mapped[str] = mapped_column(String(ID_LEN), nullable=False)
    entity: Mapped[str | None] = mapped_column(String(CODE_LEN))
    row_id: Mapped[int | None] = mapped_column(BigInteger)
    mirakl_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    provider: Mapped[str] = mapped_column(String(CODE_LEN), nullable=False)
    provider_object_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    currency: Mapped[str | None] = mapped_column(String(3))
    ledger_amount: Mapped[int | None] = mapped_column(BigInteger)
    provider_amount: Mapped[int | None] = mapped_column(BigInteger)
    provider_amount_raw: Mapped[str | None] = mapped_column(String(CODE_LEN))
    mirakl_amount: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(STATUS_REASON_MAX), nullable=False)


class ApprovalRow(Base):
    """A person's decision on one item the approval gate holds (schema step 15; see
    :mod:`mirakl_connector.operations.approval_gate` and
    :mod:`mirakl_connector.operations.approvals`).

    Append-only: a new decision is a new row, the latest per ``(entity, item)`` counts. It is
    bound to the amount, currency, destination (and source) the person saw: a row whose values
    differ from the item's current ones is void.
    """

    __tablename__ = "approvals"
    __table_args__ = (
        Index("ix_approvals_item", "entity", "item", "id"),
        Index("ix_approvals_decided_at", "decided_at"),
    )

    id: Mapped[int] = pk()
    entity: Mapped[str] = mapped_column(String(CODE_LEN), nullable=False)
    #: the item's natural key: ``<transfer type>:<mirakl id>``, an invoice id, a clientPaymentId
    item: Mapped[str] = mapped_column(String(ITEM_LEN), nullable=False)
    #: the ledger row decided on (its table follows from ``entity``)
    row_id: Mapped[int | None] = mapped_column(BigInteger)
    decision: Mapped[str] = mapped_column(String(CODE_LEN), nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    destination: Mapped[str] = mapped_column(String(ID_LEN), nullable=False)
    source: Mapped[str | None] = mapped_column(String(ID_LEN))
    decided_by: Mapped[str] = mapped_column(String(ID_LEN), nullable=False)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    why: Mapped[str] = mapped_column(String(STATUS_REASON_MAX), nullable=False)


class SchemaVersionRow(Base):
    """The single row saying which migration steps the database has (see ``migrations``)."""

    __tablename__ = "schema_version"
    __table_args__ = (CheckConstraint("id = 1", name="ck_schema_version_single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


account_mappings = cast(Table, AccountMappingRow.__table__)
payment_mappings = cast(Table, PaymentMappingRow.__table__)
transfers = cast(Table, TransferRow.__table__)
refunds = cast(Table, RefundRow.__table__)
payouts = cast(Table, PayoutRow.__table__)
checkpoints = cast(Table, CheckpointRow.__table__)
ledger_events = cast(Table, LedgerEventRow.__table__)
pending_items = cast(Table, PendingItemRow.__table__)
notifications = cast(Table, NotificationRow.__table__)
alert_cooldowns = cast(Table, AlertCooldownRow.__table__)
webhook_inbox = cast(Table, InboxEventRow.__table__)
applied_object_events = cast(Table, AppliedObjectEventRow.__table__)
hyperwallet_payments = cast(Table, HyperwalletPaymentRow.__table__)
payment_claims = cast(Table, PaymentClaimRow.__table__)
moved_daily = cast(Table, MovedDailyRow.__table__)
console_actions = cast(Table, ConsoleActionRow.__table__)
reconciliations = cast(Table, ReconciliationRow.__table__)
reconciliation_items = cast(Table, ReconciliationItemRow.__table__)
approvals = cast(Table, ApprovalRow.__table__)
schema_version = cast(Table, SchemaVersionRow.__table__)

#: Every table but ``schema_version``: what migration step 1 creates in an empty database.
DATA_TABLES: tuple[Table, ...] = (
    account_mappings,
    payment_mappings,
    transfers,
    refunds,
    payouts,
    checkpoints,
    ledger_events,
    pending_items,
    notifications,
    alert_cooldowns,
    webhook_inbox,
    applied_object_events,
    hyperwallet_payments,
    payment_claims,
    moved_daily,
    console_actions,
    reconciliations,
    reconciliation_items,
    approvals,
)
