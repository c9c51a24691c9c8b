"""The :class:`Ledger`: every money movement we owe or made, with its status and why.

Workflows read records (the dataclasses of :mod:`.records`), decide in pure functions, and hand
the records back to be saved; they never hold a SQLAlchemy object or a session. Each public method
is one short transaction, so a task killed half-way loses at most the batch in hand and a SQLite
file is never locked for longer than a statement or two.

Three rules protect against paying a seller twice (or against a person's hold), whatever the
caller does:

* a row that already has a provider id (``transfer_id``, ``stripe_refund_id``, ``payout_id``) is
  never saved over with a different one or with none: :class:`LedgerConflictError`;
* a row a person holds on the payments console (``held by <user>: <why>``, see
  :mod:`.manual_rules`) is never saved over by a workflow, nor marked for an attempt, until it
  is released: a save leaves it as it is, ``mark_*_attempt`` refuses it;
* the attempt columns (``idempotency_key``, ``attempted_at``, ``attempts``) are written by
  ``mark_*_attempt``, which commits them *before* the Stripe call and bumps ``attempts``. A
  record whose ``attempts`` is lower than the row's was read before that mark: ``save_*`` keeps
  the row's attempt columns rather than let a stale copy hide that a Stripe call may have
  happened. A current record (same count) is saved as given, so a workflow can settle an
  attempt (clear ``attempted_at`` once Stripe definitely refused).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from enum import Enum
from itertools import chain
from pathlib import Path
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    RowMapping,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError

from mirakl_connector.core.batch import chunked
from mirakl_connector.core.errors import ConfigurationError, InvalidItemError, MiraklConnectorError
from mirakl_connector.core.shards import Shard
from mirakl_connector.ledger import manual_rules, migrations, moved_daily, notifications, schema
from mirakl_connector.ledger.engine import create_ledger_engine, writer
from mirakl_connector.ledger.records import (
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

log = logging.getLogger(__name__)

#: File name of the default SQLite ledger.
SQLITE_FILE_NAME = "mirakl_connector_ledger.db"

#: Most values put in one ``IN (...)`` list (SQLite caps bound parameters per statement).
_IN_CHUNK = 500

R = TypeVar("R")


class LedgerConflictError(MiraklConnectorError):
    """A write would lose track of money already moved, or clashes with another row.

    Raised instead of overwriting a row's provider id (the proof a Stripe object exists), when
    marking an attempt on a row that is already done or not saved, and when a unique key is
    already taken. Never retried blindly: the ledger and the caller disagree and a human or a
    lookup at Stripe must settle it.
    """


@dataclass(frozen=True)
class _Entity(Generic[R]):
    """How one record type maps onto its table."""

    name: str  # entity name in ledger_events
    table: Table
    record: type[R]
    key: tuple[str, ...]  # natural key columns; the last one is matched with IN (...)
    provider_id: str | None  # column holding the Stripe id once the money moved
    enums: Mapping[str, type[Enum]]
    #: Statuses in which the Stripe action is done: no further attempt may be marked.
    done_statuses: frozenset[str] = field(default_factory=frozenset)
    #: Statuses in which the provider object failed for good and may be replaced by a new one
    #: (a Hyperwallet payment RETURNED by the bank is re-created under the same key).
    replaceable_statuses: frozenset[str] = field(default_factory=frozenset)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self.record))  # type: ignore[arg-type]

    @property
    def datetime_fields(self) -> tuple[str, ...]:
        return tuple(
            name
            for name in self.field_names
            if isinstance(self.table.c[name].type, schema.UTCDateTime)
        )


_TRANSFER = _Entity(
    "transfer",
    schema.transfers,
    TransferRecord,
    ("type", "mirakl_id"),
    "transfer_id",
    {"type": TransferType, "status": TransferStatus},
)
_REFUND = _Entity(
    "refund",
    schema.refunds,
    RefundRecord,
    ("mirakl_refund_id",),
    "stripe_refund_id",
    {"type": RefundType, "status": RefundStatus},
)
_PAYOUT = _Entity(
    "payout",
    schema.payouts,
    PayoutRecord,
    ("mirakl_invoice_id",),
    "payout_id",
    {"status": PayoutStatus},
)

_PAYMENT_MAPPING = _Entity(
    "payment_mapping",
    schema.payment_mappings,
    PaymentMapping,
    ("stripe_charge_id",),
    None,
    {"status": PaymentMappingStatus},
    frozenset({PaymentMappingStatus.CAPTURED.value, PaymentMappingStatus.CANCELED.value}),
)

_HW_PAYMENT = _Entity(
    "hyperwallet_payment",
    schema.hyperwallet_payments,
    HyperwalletPayment,
    ("client_payment_id",),
    "payment_token",
    {"kind": HyperwalletPaymentKind, "status": HyperwalletPaymentStatus},
    frozenset({HyperwalletPaymentStatus.COMPLETED.value, HyperwalletPaymentStatus.ABORTED.value}),
    frozenset({HyperwalletPaymentStatus.FAILED.value}),
)

_ENTITIES: dict[type, _Entity[Any]] = {
    e.record: e for e in (_TRANSFER, _REFUND, _PAYOUT, _PAYMENT_MAPPING, _HW_PAYMENT)
}

_ATTEMPT_FIELDS = ("idempotency_key", "attempted_at", "attempts")
#: Columns saying where an imported row came from (see ``Ledger.save_imported``).
_IMPORT_MARKERS = ("imported_from", "imported_id")

_IMPORTABLE: dict[str, _Entity[Any]] = {
    e.name: e for e in (_TRANSFER, _REFUND, _PAYOUT, _PAYMENT_MAPPING, _HW_PAYMENT)
}

#: Longest item id quoted in an error (an absurd key would otherwise flood the summary).
_ITEM_ID_MAX = 80


class Ledger:
    """The connector's record of money movements, on SQLite (default) or PostgreSQL.

    Opening a ``Ledger`` creates or upgrades the schema (see :mod:`.migrations`), so every task
    can simply open one; call :meth:`dispose` (or use it as a context manager) when done.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self._url = make_url(url)
        _ensure_sqlite_directory(
            self._url.database if self._url.get_backend_name() == "sqlite" else None
        )
        self._engine = create_ledger_engine(self._url, echo=echo)
        self._writer = writer(self._engine)
        try:
            migrations.migrate(self._engine, url=self.url)
        except OperationalError as exc:
            self._engine.dispose()
            raise ConfigurationError(
                f"Cannot open the ledger database {self.url}: {_first_line(exc.orig)}"
            ) from exc
        except BaseException:
            self._engine.dispose()
            raise

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The database URL with any password masked (safe for logs)."""
        return self._url.render_as_string(hide_password=True)

    @property
    def engine(self) -> Engine:
        """The read engine (reports: the console's queries, the failed-operations alert)."""
        return self._engine

    @property
    def schema_version(self) -> int:
        """The schema version recorded in the database."""
        with self._engine.connect() as conn:
            return migrations.read_version(conn)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.dispose()

    def __repr__(self) -> str:
        return f"Ledger({self.url!r})"

    @staticmethod
    def default_sqlite_url(directory: str | Path) -> str:
        """URL of the default SQLite ledger file in ``directory`` (the Airflow home)."""
        path = Path(directory).expanduser().resolve() / SQLITE_FILE_NAME
        return f"sqlite:///{path}"

    # -- checking a row before it is written ------------------------------------------------

    @staticmethod
    def unrecordable_reason(record: Any) -> str | None:
        """Why ``record`` cannot be written (a value its column cannot hold), else ``None``.

        Workflows ask this per item while deciding, so one absurd value fails that item with a
        reason instead of the whole chunk's write (see :func:`schema.value_problems`).
        """
        entity = _ENTITIES[type(record)]
        try:
            _prepare(entity, record)
        except InvalidItemError as exc:
            return exc.reason
        return None

    # -- checkpoints -----------------------------------------------------------------------

    def get_checkpoint(self, key: str) -> str | None:
        """The value saved under ``key``, or ``None`` when never set ("first run")."""
        table = schema.checkpoints
        with self._engine.connect() as conn:
            return conn.execute(select(table.c.value).where(table.c.key == key)).scalar()

    def set_checkpoint(self, key: str, value: str) -> None:
        """Save ``value`` under ``key``, replacing any previous value."""
        table = schema.checkpoints
        now = _now()
        with self._writer.begin() as conn:
            stmt = _dialect_insert(conn, table).values(key=key, value=value, updated_at=now)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[table.c.key], set_={"value": value, "updated_at": now}
                )
            )

    # -- account mappings ------------------------------------------------------------------

    def upsert_account_mapping(self, mapping: AccountMapping) -> AccountMapping:
        """Insert or replace the mapping of ``mapping.mirakl_shop_id``; return it as saved.

        :raises LedgerConflictError: the Stripe account is already mapped to another shop.
        """
        if not mapping.stripe_account_id:
            raise InvalidItemError("no Stripe account id", item_id=f"shop {mapping.mirakl_shop_id}")
        table = schema.account_mappings
        values = _plain_values(mapping, exclude=("id", "created_at", "updated_at"))
        now = _now()
        try:
            with self._writer.begin() as conn:
                old = _one(
                    conn,
                    select(table)
                    .where(table.c.mirakl_shop_id == mapping.mirakl_shop_id)
                    .with_for_update(),
                )
                if old is None:
                    values["created_at"] = now
                    values["updated_at"] = now
                    row_id = conn.execute(
                        insert(table).values(values).returning(table.c.id)
                    ).scalar_one()
                else:
                    row_id = old["id"]
                    values["created_at"] = old["created_at"]
                    values["updated_at"] = now if _changed(values, old) else old["updated_at"]
                    conn.execute(update(table).where(table.c.id == row_id).values(values))
        except IntegrityError as exc:
            other = self.account_mapping_by_stripe_account(mapping.stripe_account_id)
            owner = f"shop {other.mirakl_shop_id}" if other else "another shop"
            raise LedgerConflictError(
                f"Stripe account {mapping.stripe_account_id} is already mapped to {owner}; "
                f"cannot map it to shop {mapping.mirakl_shop_id}"
            ) from exc
        return AccountMapping(**{**values, "id": row_id})

    def account_mappings_by_shop(self, shop_ids: Iterable[int]) -> dict[int, AccountMapping]:
        """The mappings of the given shops that exist, keyed by shop id."""
        table = schema.account_mappings
        found: dict[int, AccountMapping] = {}
        with self._engine.connect() as conn:
            for chunk in chunked(sorted(set(shop_ids)), _IN_CHUNK):
                rows = conn.execute(select(table).where(table.c.mirakl_shop_id.in_(chunk)))
                for row in rows.mappings():
                    found[row["mirakl_shop_id"]] = _account_mapping(row)
        return found

    def account_mapping_by_stripe_account(self, account_id: str) -> AccountMapping | None:
        """The mapping of the Stripe account ``account_id`` (e.g. from a webhook), if any."""
        table = schema.account_mappings
        with self._engine.connect() as conn:
            row = _one(conn, select(table).where(table.c.stripe_account_id == account_id))
        return _account_mapping(row) if row is not None else None

    def list_account_mappings(self) -> list[AccountMapping]:
        """Every mapping, by shop id."""
        table = schema.account_mappings
        with self._engine.connect() as conn:
            rows = conn.execute(select(table).order_by(table.c.mirakl_shop_id)).mappings().all()
        return [_account_mapping(row) for row in rows]

    # -- payment mappings ------------------------------------------------------------------

    def upsert_payment_mapping(
        self, mapping: PaymentMapping, *, run_id: str | None = None
    ) -> PaymentMapping:
        """Insert or replace the mapping of ``mapping.stripe_charge_id``; return it as saved.

        A new mapping or a status change is written to the audit trail. As in ``save_*``, a
        copy read before the last :meth:`mark_payment_mapping_attempt` keeps the row's attempt
        columns.
        """
        if not mapping.stripe_charge_id:
            raise InvalidItemError(
                "no Stripe charge id", item_id=mapping.mirakl_commercial_order_id
            )
        key, values = _prepare(_PAYMENT_MAPPING, mapping)
        table = schema.payment_mappings
        now = _now()
        with self._writer.begin() as conn:
            old = _select_by_keys(conn, _PAYMENT_MAPPING, [key], for_update=True).get(key)
            if old is None:
                values.pop("id")
                values["created_at"] = values["updated_at"] = now
                values["id"] = conn.execute(
                    insert(table).values(values).returning(table.c.id)
                ).scalar_one()
            else:
                _merge_attempt(values, old)
                values["id"] = old["id"]
                values["created_at"] = old["created_at"]
                values["updated_at"] = now if _changed(values, old) else old["updated_at"]
                conn.execute(update(table).where(table.c.id == old["id"]).values(values))
            old_status = old["status"] if old is not None else None
            if old_status != values["status"]:
                _insert_events(
                    conn,
                    [_event(_PAYMENT_MAPPING.name, values["id"], old_status, values, run_id, now)],
                )
        return _to_record(_PAYMENT_MAPPING, values)

    def get_payment_mapping(self, stripe_charge_id: str) -> PaymentMapping | None:
        """The mapping of the Stripe charge or payment intent ``stripe_charge_id``, if any."""
        with self._engine.connect() as conn:
            row = _select_by_keys(conn, _PAYMENT_MAPPING, [(stripe_charge_id,)]).get(
                (stripe_charge_id,)
            )
        return _to_record(_PAYMENT_MAPPING, row) if row is not None else None

    def iter_payment_mappings(
        self, *, statuses: Iterable[PaymentMappingStatus], batch_size: int = 100
    ) -> Iterator[list[PaymentMapping]]:
        """Stream the mappings in ``statuses`` by id (see :meth:`iter_transfers`)."""
        table = _PAYMENT_MAPPING.table
        where = [table.c.status.in_([_plain(s) for s in statuses])]
        return self._iter(table, where, batch_size, _record_reader(_PAYMENT_MAPPING))

    def mark_payment_mapping_attempt(
        self, mapping: PaymentMapping, idempotency_key: str, *, run_id: str | None = None
    ) -> PaymentMapping:
        """Commit that a Stripe capture (or cancel) is about to be made with ``idempotency_key``.

        Same contract as :meth:`mark_transfer_attempt`; a mapping already ``captured`` or
        ``canceled`` is done and refused (:class:`LedgerConflictError`).
        """
        return self._mark_attempt(_PAYMENT_MAPPING, mapping, idempotency_key, run_id)

    def payment_mappings_by_commercial_id(self, ids: Iterable[str]) -> dict[str, PaymentMapping]:
        """The mappings of the given Mirakl commercial orders, keyed by commercial order id.

        An order paid twice (a failed charge, then a new one) has several mappings: the most
        recently created one wins.
        """
        table = schema.payment_mappings
        found: dict[str, PaymentMapping] = {}
        with self._engine.connect() as conn:
            for chunk in chunked(sorted(set(ids)), _IN_CHUNK):
                stmt = (
                    select(table)
                    .where(table.c.mirakl_commercial_order_id.in_(chunk))
                    .order_by(table.c.id)
                )
                for row in conn.execute(stmt).mappings():
                    found[row["mirakl_commercial_order_id"]] = _to_record(_PAYMENT_MAPPING, row)
        return found

    # -- transfers -------------------------------------------------------------------------

    def get_transfers(
        self, type: TransferType, mirakl_ids: Iterable[str]
    ) -> dict[str, TransferRecord]:
        """The transfers of ``type`` among ``mirakl_ids`` that exist, keyed by Mirakl id."""
        keys = [(_plain(type), mirakl_id) for mirakl_id in mirakl_ids]
        with self._engine.connect() as conn:
            rows = _select_by_keys(conn, _TRANSFER, keys)
        return {key[1]: _to_record(_TRANSFER, row) for key, row in rows.items()}

    def get_transfer(self, type: TransferType, mirakl_id: str) -> TransferRecord | None:
        """One transfer, or ``None``."""
        return self.get_transfers(type, [mirakl_id]).get(mirakl_id)

    def iter_transfers(
        self,
        *,
        types: Iterable[TransferType],
        statuses: Iterable[TransferStatus],
        batch_size: int = 100,
        shard: Shard | None = None,
    ) -> Iterator[list[TransferRecord]]:
        """Stream the transfers of ``types`` in ``statuses``, ``batch_size`` at a time, by id.

        Each batch is read in its own short transaction (keyset pagination on ``id``), so the
        caller may save rows between batches: a row whose status leaves the filter is simply
        not seen again, and no row is returned twice. With ``shard``, only that shard's rows
        (see :mod:`mirakl_connector.core.shards`).
        """
        table = _TRANSFER.table
        where = [
            table.c.type.in_([_plain(t) for t in types]),
            table.c.status.in_([_plain(s) for s in statuses]),
        ]
        return self._iter(table, where, batch_size, _record_reader(_TRANSFER), shard)

    def save_transfers(
        self, records: Sequence[TransferRecord], *, run_id: str | None = None
    ) -> list[TransferRecord]:
        """Insert or update ``records`` by ``(type, mirakl_id)`` in one transaction.

        Returns the records as saved (``id``, ``created_at``, ``updated_at`` set), in input
        order. New rows and status changes are written to the audit trail with ``run_id``. A
        row that becomes ``TRANSFER_FAILED`` (new, or a status change) also queues a
        ``transfer.failed`` notification in the same transaction (likewise for refunds and
        payouts): the outbox holds exactly the failures that were committed.

        :raises LedgerConflictError: a record would drop or replace a saved ``transfer_id``, or
            two records share a key.
        """
        return self._save(_TRANSFER, records, run_id)

    def mark_transfer_attempt(
        self, record: TransferRecord, idempotency_key: str, *, run_id: str | None = None
    ) -> TransferRecord:
        """Commit that a Stripe transfer is about to be created with ``idempotency_key``.

        Call it right *before* the Stripe call: if the process dies after Stripe answered, the
        row is left "in doubt" (:attr:`TransferRecord.in_doubt`) and the next run looks the
        transfer up with the same key instead of creating a second one.
        """
        return self._mark_attempt(_TRANSFER, record, idempotency_key, run_id)

    # -- refunds ---------------------------------------------------------------------------

    def get_refunds(self, mirakl_refund_ids: Iterable[str]) -> dict[str, RefundRecord]:
        """The refunds among ``mirakl_refund_ids`` that exist, keyed by Mirakl refund id."""
        with self._engine.connect() as conn:
            rows = _select_by_keys(conn, _REFUND, [(i,) for i in mirakl_refund_ids])
        return {key[0]: _to_record(_REFUND, row) for key, row in rows.items()}

    def iter_refunds(
        self,
        *,
        statuses: Iterable[RefundStatus],
        batch_size: int = 100,
        shard: Shard | None = None,
    ) -> Iterator[list[RefundRecord]]:
        """Stream the refunds in ``statuses`` by id (see :meth:`iter_transfers`)."""
        where = [_REFUND.table.c.status.in_([_plain(s) for s in statuses])]
        return self._iter(_REFUND.table, where, batch_size, _record_reader(_REFUND), shard)

    def save_refunds(
        self, records: Sequence[RefundRecord], *, run_id: str | None = None
    ) -> list[RefundRecord]:
        """Insert or update refunds by ``mirakl_refund_id`` (see :meth:`save_transfers`)."""
        return self._save(_REFUND, records, run_id)

    def mark_refund_attempt(
        self, record: RefundRecord, idempotency_key: str, *, run_id: str | None = None
    ) -> RefundRecord:
        """Commit that a Stripe refund is about to be made (see ``mark_transfer_attempt``)."""
        return self._mark_attempt(_REFUND, record, idempotency_key, run_id)

    # -- payouts ---------------------------------------------------------------------------

    def get_payouts(self, mirakl_invoice_ids: Iterable[str]) -> dict[str, PayoutRecord]:
        """The payouts among ``mirakl_invoice_ids`` that exist, keyed by Mirakl invoice id."""
        with self._engine.connect() as conn:
            rows = _select_by_keys(conn, _PAYOUT, [(i,) for i in mirakl_invoice_ids])
        return {key[0]: _to_record(_PAYOUT, row) for key, row in rows.items()}

    def iter_payouts(
        self,
        *,
        statuses: Iterable[PayoutStatus],
        batch_size: int = 100,
        shard: Shard | None = None,
    ) -> Iterator[list[PayoutRecord]]:
        """Stream the payouts in ``statuses`` by id (see :meth:`iter_transfers`)."""
        where = [_PAYOUT.table.c.status.in_([_plain(s) for s in statuses])]
        return self._iter(_PAYOUT.table, where, batch_size, _record_reader(_PAYOUT), shard)

    def save_payouts(
        self, records: Sequence[PayoutRecord], *, run_id: str | None = None
    ) -> list[PayoutRecord]:
        """Insert or update payouts by ``mirakl_invoice_id`` (see :meth:`save_transfers`)."""
        return self._save(_PAYOUT, records, run_id)

    def mark_payout_attempt(
        self, record: PayoutRecord, idempotency_key: str, *, run_id: str | None = None
    ) -> PayoutRecord:
        """Commit that a Stripe payout is about to be made (see ``mark_transfer_attempt``)."""
        return self._mark_attempt(_PAYOUT, record, idempotency_key, run_id)

    def reopen_failed_payout(
        self, record: PayoutRecord, *, run_id: str | None = None
    ) -> PayoutRecord:
        """Forget the payout id of a payout that failed at the bank, so it can be re-created.

        The one sanctioned way past the provider-id guard of :meth:`save_payouts`: Stripe sent
        ``payout.failed``, the money is back in the seller's balance, and the next settlement
        run must pay it out again (reference 4.1.1). Only a ``PAYOUT_FAILED`` row that has a
        ``payout_id`` qualifies. The old id is not lost: it goes into the audit event's reason
        (``payout po_x failed at the bank: <reason>; re-created by the next settlement run``),
        and the row keeps that reason. ``idempotency_key`` and ``attempted_at`` are cleared
        (the old key would make Stripe replay the failed payout); ``attempts`` is kept, so the
        next key is ``…:retry<attempts>``, never one used before. The row stays
        ``PAYOUT_FAILED`` until the settlement decides it again.

        :raises LedgerConflictError: the row is missing, not ``PAYOUT_FAILED``, or has no
            payout id.
        """
        key, _ = _prepare(_PAYOUT, record)
        table = _PAYOUT.table
        now = _now()
        with self._writer.begin() as conn:
            old = _select_by_keys(conn, _PAYOUT, [key], for_update=True).get(key)
            if old is None:
                raise LedgerConflictError(f"payout {_key_text(key)} is not in the ledger")
            if old["status"] != PayoutStatus.FAILED.value or not old["payout_id"]:
                held = f"payout id {old['payout_id']}" if old["payout_id"] else "no payout id"
                raise LedgerConflictError(
                    f"payout {_key_text(key)} (row {old['id']}) is {old['status']} with {held}; "
                    "only a PAYOUT_FAILED payout with a payout id can be reopened"
                )
            reason = schema.truncate_reason(
                f"payout {old['payout_id']} failed at the bank: "
                f"{old['status_reason'] or 'no reason given'}; "
                "re-created by the next settlement run"
            )
            values = {
                "payout_id": None,
                "idempotency_key": None,
                "attempted_at": None,
                "status_reason": reason,
                "updated_at": now,
            }
            conn.execute(update(table).where(table.c.id == old["id"]).values(**values))
            _insert_events(
                conn,
                [_event(_PAYOUT.name, old["id"], old["status"], {**old, **values}, run_id, now)],
            )
            row = _one(conn, select(table).where(table.c.id == old["id"]))
        assert row is not None
        log.info("Payout %s reopened: %s", _key_text(key), reason)
        return _to_record(_PAYOUT, row)

    # -- retry queue -----------------------------------------------------------------------

    def record_pending_item(
        self, workflow: str, item_id: str | int, reason: str | None
    ) -> PendingItem:
        """Remember that ``item_id`` failed in ``workflow`` and must be retried; return it.

        Recording an item already queued updates its reason and last failure time and adds one
        to ``attempts``; ``first_failed_at`` keeps the first failure. An int id (a shop id) is
        stored as its decimal string.
        """
        workflow, item = _pending_key(workflow, item_id)
        table = schema.pending_items
        now = _now()
        with self._writer.begin() as conn:
            stmt = _dialect_insert(conn, table).values(
                workflow=workflow,
                item_id=item,
                reason=schema.truncate_reason(reason),
                attempts=1,
                first_failed_at=now,
                last_failed_at=now,
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=[table.c.workflow, table.c.item_id],
                set_={
                    "reason": stmt.excluded.reason,
                    "attempts": table.c.attempts + 1,
                    "last_failed_at": stmt.excluded.last_failed_at,
                },
            ).returning(*table.c)
            row = conn.execute(stmt).mappings().one()
        return _pending_item(row)

    def pending_items(self, workflow: str) -> list[PendingItem]:
        """The items ``workflow`` must retry, oldest first failure first."""
        table = schema.pending_items
        stmt = (
            select(table)
            .where(table.c.workflow == workflow)
            .order_by(table.c.first_failed_at, table.c.id)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [_pending_item(row) for row in rows]

    def clear_pending_item(self, workflow: str, item_id: str | int) -> None:
        """Forget ``item_id`` of ``workflow`` (it succeeded); nothing happens if not queued."""
        workflow, item = _pending_key(workflow, item_id)
        table = schema.pending_items
        with self._writer.begin() as conn:
            conn.execute(delete(table).where(table.c.workflow == workflow, table.c.item_id == item))

    # -- notification outbox ---------------------------------------------------------------

    def enqueue_notification(
        self, type: str, payload: Mapping[str, Any], dedup_key: str
    ) -> Notification | None:
        """Queue a notification for the operator; ``None`` when ``dedup_key`` is already queued.

        :raises InvalidItemError: no type or dedup key, or a payload that is not JSON.
        """
        if not type:
            raise InvalidItemError("notification has no type", item_id=dedup_key or None)
        if not dedup_key:
            raise InvalidItemError("notification has no dedup key", item_id=type)
        table = schema.notifications
        now = _now()
        values = {
            "type": type,
            "dedup_key": dedup_key,
            "payload": _payload_json(payload, dedup_key),
            "status": NotificationStatus.PENDING.value,
            "attempts": 0,
            "last_error": None,
            "next_attempt_at": None,
            "sent_at": None,
            "created_at": now,
            "updated_at": now,
        }
        with self._writer.begin() as conn:
            stmt = (
                _dialect_insert(conn, table)
                .values(values)
                .on_conflict_do_nothing(index_elements=[table.c.dedup_key])
                .returning(*table.c)
            )
            row = conn.execute(stmt).mappings().one_or_none()
        return _notification(row) if row is not None else None

    def iter_notifications(
        self,
        *,
        statuses: Iterable[NotificationStatus],
        due_before: datetime | None = None,
        batch_size: int = 100,
    ) -> Iterator[list[Notification]]:
        """Stream the notifications in ``statuses`` by id (see :meth:`iter_transfers`).

        :param due_before: only those whose ``next_attempt_at`` is unset or not after it.
        """
        table = schema.notifications
        where = [table.c.status.in_([_plain(s) for s in statuses])]
        if due_before is not None:
            due = _aware(due_before, "due_before")
            where.append(or_(table.c.next_attempt_at.is_(None), table.c.next_attempt_at <= due))
        return self._iter(table, where, batch_size, _notification)

    def save_notification(self, notification: Notification) -> Notification:
        """Save a notification's delivery state (status, attempts, error, times); return it.

        With an ``id`` the row is updated (:class:`LedgerConflictError` when it does not
        exist); without, it is inserted or, when its ``dedup_key`` exists, updated by that key.
        """
        n = notification
        if not n.type or not n.dedup_key:
            raise InvalidItemError(
                "notification needs a type and a dedup key", item_id=n.dedup_key or n.id
            )
        table = schema.notifications
        now = _now()
        values = {
            "type": n.type,
            "dedup_key": n.dedup_key,
            "payload": _payload_json(n.payload, n.dedup_key),
            "status": NotificationStatus(n.status).value,
            "attempts": n.attempts or 0,
            "last_error": schema.truncate_reason(n.last_error),
            "next_attempt_at": _aware(n.next_attempt_at, "next_attempt_at", n.dedup_key),
            "sent_at": _aware(n.sent_at, "sent_at", n.dedup_key),
            "updated_at": now,
        }
        try:
            with self._writer.begin() as conn:
                if n.id is not None:
                    stmt = (
                        update(table).where(table.c.id == n.id).values(values).returning(*table.c)
                    )
                else:
                    stmt = _dialect_insert(conn, table).values({**values, "created_at": now})
                    stmt = stmt.on_conflict_do_update(
                        index_elements=[table.c.dedup_key], set_=values
                    ).returning(*table.c)
                row = conn.execute(stmt).mappings().one_or_none()
        except IntegrityError as exc:
            raise LedgerConflictError(
                f"notification {n.id}: dedup key {n.dedup_key} belongs to another notification"
            ) from exc
        if row is None:
            raise LedgerConflictError(f"notification {n.id} ({n.dedup_key}) is not in the ledger")
        return _notification(row)

    # -- alert cooldowns -------------------------------------------------------------------

    def claim_cooldown(self, key: str, period: timedelta, *, now: datetime | None = None) -> bool:
        """Claim the right to do ``key`` (send an alert...) at most once per ``period``.

        Returns True, and records ``now`` as the last claim, when ``key`` was never claimed or
        last claimed at or before ``now - period``; otherwise False and nothing changes. One
        conditional upsert decides, so of several processes racing for the same key exactly
        one wins.
        """
        if not key:
            raise ValueError("a cooldown key is required")
        if period < timedelta(0):
            raise ValueError(f"cooldown period must not be negative, got {period}")
        at = _aware(now, "now") if now is not None else _now()
        table = schema.alert_cooldowns
        with self._writer.begin() as conn:
            stmt = _dialect_insert(conn, table).values(key=key, last_claimed_at=at)
            stmt = stmt.on_conflict_do_update(
                index_elements=[table.c.key],
                set_={"last_claimed_at": stmt.excluded.last_claimed_at},
                where=table.c.last_claimed_at <= at - period,
            ).returning(table.c.id)
            return conn.execute(stmt).first() is not None

    # -- provider event inbox --------------------------------------------------------------

    def store_webhook_event(self, event: InboxEvent) -> bool:
        """Store a provider event once; True when it is new, False when already stored.

        Keyed by ``(source, event_id)``: a provider retry, or the healing sensor finding an
        event the webhook already delivered, changes nothing.

        :raises InvalidItemError: no event id, source or type, or a payload that is not JSON.
        """
        values = _inbox_values(event)
        now = _now()
        values.pop("id")
        values["created_at"] = values["updated_at"] = now
        table = schema.webhook_inbox
        with self._writer.begin() as conn:
            stmt = (
                _dialect_insert(conn, table)
                .values(values)
                .on_conflict_do_nothing(index_elements=[table.c.source, table.c.event_id])
                .returning(table.c.id)
            )
            return conn.execute(stmt).first() is not None

    def get_inbox_event(self, source: str, event_id: str) -> InboxEvent | None:
        """One stored event, or ``None``."""
        table = schema.webhook_inbox
        stmt = select(table).where(table.c.source == source, table.c.event_id == event_id)
        with self._engine.connect() as conn:
            row = _one(conn, stmt)
        return _inbox_event(row) if row is not None else None

    def inbox_event_ids(self, source: str, event_ids: Iterable[str]) -> set[str]:
        """Which of ``event_ids`` (of ``source``) are already in the inbox."""
        table = schema.webhook_inbox
        found: set[str] = set()
        with self._engine.connect() as conn:
            for chunk in chunked(sorted(set(event_ids)), _IN_CHUNK):
                stmt = select(table.c.event_id).where(
                    table.c.source == source, table.c.event_id.in_(chunk)
                )
                found.update(conn.execute(stmt).scalars())
        return found

    def iter_inbox(
        self,
        *,
        statuses: Iterable[InboxStatus],
        source: str | None = None,
        due_before: datetime | None = None,
        batch_size: int = 100,
    ) -> Iterator[list[InboxEvent]]:
        """Stream inbox events in ``statuses`` in arrival order (see :meth:`iter_transfers`).

        :param due_before: only those whose ``next_attempt_at`` is unset or not after it.
        """
        table = schema.webhook_inbox
        where = [table.c.status.in_([_plain(s) for s in statuses])]
        if source is not None:
            where.append(table.c.source == source)
        if due_before is not None:
            due = _aware(due_before, "due_before")
            where.append(or_(table.c.next_attempt_at.is_(None), table.c.next_attempt_at <= due))
        return self._iter(table, where, batch_size, _inbox_event)

    def save_inbox_event(self, event: InboxEvent) -> InboxEvent:
        """Save a stored event's processing state (status, attempts, error, times); return it.

        :raises LedgerConflictError: the event is not in the inbox.
        """
        values = _inbox_values(event)
        table = schema.webhook_inbox
        columns = ("status", "attempts", "next_attempt_at", "last_error", "processed_at")
        changes = {name: values[name] for name in columns}
        changes["updated_at"] = _now()
        with self._writer.begin() as conn:
            stmt = (
                update(table)
                .where(table.c.source == values["source"], table.c.event_id == values["event_id"])
                .values(changes)
                .returning(*table.c)
            )
            row = conn.execute(stmt).mappings().one_or_none()
        if row is None:
            raise LedgerConflictError(
                f"inbox event {event.source}/{event.event_id} is not stored; store it first"
            )
        return _inbox_event(row)

    def inbox_pending(
        self, *, now: datetime | None = None, source: str | None = None
    ) -> tuple[int, int]:
        """``(count, highest id)`` of the events waiting to be processed now.

        RECEIVED events and FAILED ones whose retry is due (a FAILED event without
        ``next_attempt_at`` was given up and does not count). The watcher that wakes the
        processing DAG compares the highest id with the last one it signalled (edge trigger).
        """
        at = _aware(now, "now") if now is not None else _now()
        table = schema.webhook_inbox
        waiting = or_(
            table.c.status == InboxStatus.RECEIVED.value,
            and_(
                table.c.status == InboxStatus.FAILED.value,
                table.c.next_attempt_at.is_not(None),
                table.c.next_attempt_at <= at,
            ),
        )
        stmt = select(func.count(), func.coalesce(func.max(table.c.id), 0)).where(waiting)
        if source is not None:
            stmt = stmt.where(table.c.source == source)
        with self._engine.connect() as conn:
            count, highest = conn.execute(stmt).one()
        return int(count), int(highest)

    def claim_object_event(self, object_id: str, event_created: datetime, event_id: str) -> bool:
        """Out-of-order guard: may an event created at ``event_created`` act on ``object_id``?

        True (and the event recorded as the object's newest) unless an event created *later*
        was already applied to the same object; then False and nothing changes. Events of the
        same second both pass (Stripe's ``created`` has one-second resolution, so their order
        cannot be known; the handlers are idempotent). One conditional upsert decides, so two
        concurrent runs cannot both think they are newest.
        """
        if not object_id or not event_id:
            raise InvalidItemError("an object id and an event id are required", item_id=event_id)
        created = _aware(event_created, "event_created", event_id)
        table = schema.applied_object_events
        now = _now()
        with self._writer.begin() as conn:
            stmt = _dialect_insert(conn, table).values(
                object_id=object_id,
                last_event_created=created,
                last_event_id=event_id,
                updated_at=now,
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=[table.c.object_id],
                set_={
                    "last_event_created": stmt.excluded.last_event_created,
                    "last_event_id": stmt.excluded.last_event_id,
                    "updated_at": stmt.excluded.updated_at,
                },
                where=table.c.last_event_created <= created,
            ).returning(table.c.id)
            return conn.execute(stmt).first() is not None

    def last_applied_event(self, object_id: str) -> tuple[datetime, str] | None:
        """``(created, event id)`` of the newest event applied to ``object_id``, if any."""
        table = schema.applied_object_events
        stmt = select(table.c.last_event_created, table.c.last_event_id).where(
            table.c.object_id == object_id
        )
        with self._engine.connect() as conn:
            row = conn.execute(stmt).one_or_none()
        return (row[0], row[1]) if row is not None else None

    def account_mapping_by_onboarding_token(self, token: str) -> AccountMapping | None:
        """The mapping whose onboarding link carries ``token`` (the refresh URL), if any."""
        if not token:
            return None
        table = schema.account_mappings
        with self._engine.connect() as conn:
            row = _one(conn, select(table).where(table.c.onboarding_token == token))
        return _account_mapping(row) if row is not None else None

    def accounts_with_payouts_since(self, since: datetime) -> list[str]:
        """The Stripe accounts with a created payout (``PAYOUT_CREATED``, payout id known) whose
        row changed since ``since``: the accounts whose payouts may still fail at the bank, which
        the healing of connected-account events re-reads (see ``workflows/stripe_events.py``)."""
        table = schema.payouts
        query = (
            select(table.c.stripe_account_id)
            .where(
                table.c.status == _plain(PayoutStatus.CREATED),
                table.c.payout_id.is_not(None),
                table.c.stripe_account_id.is_not(None),
                table.c.updated_at >= since,
            )
            .distinct()
            .order_by(table.c.stripe_account_id)
        )
        with self._engine.connect() as conn:
            return [row[0] for row in conn.execute(query)]

    def shops_with_mappings_changed_since(self, since: datetime) -> list[int]:
        """The shops whose account mapping was created or changed (account mapped, KYC status,
        ignored flag) since ``since``: what a transfer ON_HOLD for its shop's account waits on."""
        table = schema.account_mappings
        query = (
            select(table.c.mirakl_shop_id)
            .where(table.c.updated_at >= since)
            .order_by(table.c.mirakl_shop_id)
        )
        with self._engine.connect() as conn:
            return [row[0] for row in conn.execute(query)]

    def commercial_ids_with_payments_changed_since(self, since: datetime) -> list[str]:
        """The commercial orders whose payment mapping was recorded or changed since ``since``:
        what a transfer waiting for its customer's payment waits on."""
        table = schema.payment_mappings
        query = (
            select(table.c.mirakl_commercial_order_id)
            .where(table.c.updated_at >= since, table.c.mirakl_commercial_order_id.is_not(None))
            .distinct()
            .order_by(table.c.mirakl_commercial_order_id)
        )
        with self._engine.connect() as conn:
            return [row[0] for row in conn.execute(query)]

    def iter_transfers_of_shops(
        self,
        *,
        types: Iterable[TransferType],
        statuses: Iterable[TransferStatus],
        shop_ids: Iterable[int],
        batch_size: int = 100,
    ) -> Iterator[list[TransferRecord]]:
        """Like :meth:`iter_transfers`, only the rows of ``shop_ids``."""
        table = _TRANSFER.table
        for chunk in chunked(sorted(set(shop_ids)), _IN_CHUNK):
            where = [
                table.c.type.in_([_plain(t) for t in types]),
                table.c.status.in_([_plain(s) for s in statuses]),
                table.c.mirakl_shop_id.in_(chunk),
            ]
            yield from self._iter(table, where, batch_size, _record_reader(_TRANSFER), None)

    def transfer_ids_changed_since(
        self,
        *,
        types: Iterable[TransferType],
        since: datetime,
        statuses: Iterable[TransferStatus] | None = None,
    ) -> list[str]:
        """The Mirakl ids of the transfers of ``types`` (in ``statuses``, when given) saved with
        a change since ``since``: an order transfer made (what a refund waiting for its payment
        or its reversal waits on), an invoice transfer settled (what a payout waits on)."""
        table = schema.transfers
        where = [table.c.updated_at >= since, table.c.type.in_([_plain(t) for t in types])]
        if statuses is not None:
            where.append(table.c.status.in_([_plain(s) for s in statuses]))
        query = select(table.c.mirakl_id).where(*where).distinct().order_by(table.c.mirakl_id)
        with self._engine.connect() as conn:
            return [row[0] for row in conn.execute(query)]

    def accounts_credited_since(self, since: datetime) -> list[str]:
        """The connected accounts a transfer was made to (``TRANSFER_CREATED``) since ``since``:
        money arrived on their balance, which a payout or fee transfer waiting for funds needs."""
        table = schema.transfers
        query = (
            select(table.c.destination_account)
            .where(
                table.c.updated_at >= since,
                table.c.status == _plain(TransferStatus.CREATED),
                table.c.destination_account.is_not(None),
            )
            .distinct()
            .order_by(table.c.destination_account)
        )
        with self._engine.connect() as conn:
            return [row[0] for row in conn.execute(query)]

    def refund_ids_changed_since(self, since: datetime) -> list[str]:
        """The Mirakl refund ids whose refund row changed since ``since`` (refunded, validated,
        aborted): what the reversal of a refund waits on."""
        table = schema.refunds
        query = (
            select(table.c.mirakl_refund_id)
            .where(table.c.updated_at >= since)
            .order_by(table.c.mirakl_refund_id)
        )
        with self._engine.connect() as conn:
            return [row[0] for row in conn.execute(query)]

    def iter_refunds_of_orders(
        self,
        *,
        statuses: Iterable[RefundStatus] | None,
        order_ids: Iterable[str] = (),
        commercial_ids: Iterable[str] = (),
        batch_size: int = 100,
    ) -> Iterator[list[RefundRecord]]:
        """The refunds (in ``statuses``; every status with ``None``) of the Mirakl orders
        ``order_ids`` and of the commercial orders ``commercial_ids``; a refund matching both is
        yielded twice (callers keep what they have seen)."""
        table = _REFUND.table
        for column, ids in (
            (table.c.mirakl_order_id, order_ids),
            (table.c.mirakl_commercial_order_id, commercial_ids),
        ):
            for chunk in chunked(sorted(set(ids)), _IN_CHUNK):
                where = [column.in_(chunk)]
                if statuses is not None:
                    where.append(table.c.status.in_([_plain(s) for s in statuses]))
                yield from self._iter(table, where, batch_size, _record_reader(_REFUND), None)

    def iter_payouts_of_shops(
        self,
        *,
        statuses: Iterable[PayoutStatus],
        shop_ids: Iterable[int],
        batch_size: int = 100,
    ) -> Iterator[list[PayoutRecord]]:
        """Like :meth:`iter_payouts`, only the rows of ``shop_ids``."""
        table = _PAYOUT.table
        for chunk in chunked(sorted(set(shop_ids)), _IN_CHUNK):
            where = [
                table.c.status.in_([_plain(s) for s in statuses]),
                table.c.mirakl_shop_id.in_(chunk),
            ]
            yield from self._iter(table, where, batch_size, _record_reader(_PAYOUT), None)

    def iter_waiting(
        self,
        kind: str,
        *,
        reason_prefix: str,
        types: Iterable[TransferType] = (),
        batch_size: int = 100,
    ) -> Iterator[list[TransferRecord]] | Iterator[list[PayoutRecord]]:
        """The ON_HOLD ``"transfer"`` rows (of ``types``) or ``"payout"`` rows whose reason
        starts with ``reason_prefix``: the rows that wait for one thing (funds, say)."""
        if kind == "transfer":
            table = _TRANSFER.table
            where = [
                table.c.type.in_([_plain(t) for t in types]),
                table.c.status == _plain(TransferStatus.ON_HOLD),
            ]
            reader: Callable[[RowMapping], Any] = _record_reader(_TRANSFER)
        elif kind == "payout":
            table = _PAYOUT.table
            where = [table.c.status == _plain(PayoutStatus.ON_HOLD)]
            reader = _record_reader(_PAYOUT)
        else:
            raise ValueError(f"kind must be 'transfer' or 'payout', got {kind!r}")
        where.append(table.c.status_reason.startswith(reason_prefix, autoescape=True))
        return self._iter(table, where, batch_size, reader, None)

    def payout_by_payout_id(self, payout_id: str) -> PayoutRecord | None:
        """The payout row of the Stripe payout ``payout_id`` (``po_...``), if any."""
        table = schema.payouts
        with self._engine.connect() as conn:
            row = _one(conn, select(table).where(table.c.payout_id == payout_id))
        return _to_record(_PAYOUT, row) if row is not None else None

    # -- Hyperwallet payments --------------------------------------------------------------

    def get_hyperwallet_payments(
        self, client_payment_ids: Iterable[str]
    ) -> dict[str, HyperwalletPayment]:
        """The saved payments among ``client_payment_ids``, by ``clientPaymentId``."""
        with self._engine.connect() as conn:
            rows = _select_by_keys(conn, _HW_PAYMENT, [(i,) for i in client_payment_ids])
        return {key[0]: _to_record(_HW_PAYMENT, row) for key, row in rows.items()}

    def get_hyperwallet_payment(self, client_payment_id: str) -> HyperwalletPayment | None:
        """One payment by ``clientPaymentId``, or ``None``."""
        return self.get_hyperwallet_payments([client_payment_id]).get(client_payment_id)

    def hyperwallet_payments_by_invoice(
        self, invoice_ids: Iterable[str]
    ) -> dict[str, list[HyperwalletPayment]]:
        """The payments (seller and operator fee) of each of ``invoice_ids`` that has any."""
        table = schema.hyperwallet_payments
        found: dict[str, list[HyperwalletPayment]] = {}
        with self._engine.connect() as conn:
            for chunk in chunked(sorted({str(i) for i in invoice_ids}), _IN_CHUNK):
                stmt = select(table).where(table.c.invoice_id.in_(chunk)).order_by(table.c.id)
                for row in conn.execute(stmt).mappings():
                    found.setdefault(row["invoice_id"], []).append(_to_record(_HW_PAYMENT, row))
        return found

    def hyperwallet_invoice_ids(
        self,
        *,
        statuses: Iterable[HyperwalletPaymentStatus],
        shop_ids: Iterable[int] | None = None,
    ) -> set[str]:
        """The invoices with a payment in ``statuses`` (of ``shop_ids`` when given): the
        invoices held for their shop, or those of shops that changed."""
        table = schema.hyperwallet_payments
        where = [table.c.status.in_([_plain(s) for s in statuses])]
        found: set[str] = set()
        with self._engine.connect() as conn:
            if shop_ids is None:
                query = select(table.c.invoice_id).where(*where).distinct()
                return {row[0] for row in conn.execute(query)}
            for chunk in chunked(sorted(set(shop_ids)), _IN_CHUNK):
                query = (
                    select(table.c.invoice_id).where(*where, table.c.shop_id.in_(chunk)).distinct()
                )
                found.update(row[0] for row in conn.execute(query))
        return found

    def iter_hyperwallet_payments(
        self, *, statuses: Iterable[HyperwalletPaymentStatus], batch_size: int = 100
    ) -> Iterator[list[HyperwalletPayment]]:
        """Stream the payments in ``statuses`` by id (see :meth:`iter_transfers`)."""
        where = [_HW_PAYMENT.table.c.status.in_([_plain(s) for s in statuses])]
        return self._iter(_HW_PAYMENT.table, where, batch_size, _record_reader(_HW_PAYMENT))

    def save_hyperwallet_payments(
        self, records: Sequence[HyperwalletPayment], *, run_id: str | None = None
    ) -> list[HyperwalletPayment]:
        """Insert or update payments by ``clientPaymentId`` (see :meth:`save_transfers`).

        A saved ``payment_token`` is never replaced or cleared, except on a row in
        ``HW_PAYMENT_FAILED``: that payment failed for good and the invoice is paid anew.
        """
        return self._save(_HW_PAYMENT, records, run_id)

    def mark_hyperwallet_payment_attempt(
        self, record: HyperwalletPayment, *, run_id: str | None = None
    ) -> HyperwalletPayment:
        """Commit that the payment is about to be created at Hyperwallet; return the row.

        The key recorded is the ``clientPaymentId`` itself, the only de-duplication Hyperwallet
        offers. Refused (:class:`LedgerConflictError`) on a row that is COMPLETED or ABORTED, or
        that has a payment token and has not failed.
        """
        return self._mark_attempt(_HW_PAYMENT, record, record.client_payment_id, run_id)

    def claim_hyperwallet_payment_send(
        self,
        client_payment_id: str,
        *,
        owner: str,
        lease: timedelta,
        gone: Callable[[str], bool] | None = None,
    ) -> str | None:
        """Take the right to look the payment up and create it; ``None`` when taken.

        Hyperwallet has no idempotency key and nothing documents that it refuses a reused
        ``clientPaymentId``, so two runs that both looked the payment up (and found nothing)
        would both create it. One transaction locks the row, checks it and sets
        ``send_claimed_until`` = now + ``lease``: the other runs get the reason why not (sent
        already, or being sent by another run until when) and send nothing. A run that dies
        holding the claim only delays the payment by ``lease``, or not at all when ``gone``
        says its holder is known dead; the next one looks it up first.
        Release it with :meth:`release_hyperwallet_payment_send`.

        :raises LedgerConflictError: the row is not in the ledger (save it first).
        """
        table = _HW_PAYMENT.table
        now = _now()
        with self._writer.begin() as conn:
            old = _select_by_keys(conn, _HW_PAYMENT, [(client_payment_id,)], for_update=True).get(
                (client_payment_id,)
            )
            if old is None:
                raise LedgerConflictError(
                    f"hyperwallet_payment {client_payment_id} is not in the ledger; save it "
                    "before claiming it"
                )
            if _held(_HW_PAYMENT, old):
                return f"{old['status_reason']}: not sent until released on the payments console"
            until = old["send_claimed_until"]
            if until is not None and until.tzinfo is None:
                until = until.replace(tzinfo=UTC)
            holder = old["send_claimed_by"]
            if (
                until is not None
                and until > now
                and holder != owner
                and not (holder and gone is not None and gone(holder))
            ):
                return (
                    f"being sent by another run ({old['send_claimed_by']}) until "
                    f"{until.isoformat()}"
                )
            if old["status"] in _HW_PAYMENT.done_statuses or (
                old["payment_token"] is not None
                and old["status"] not in _HW_PAYMENT.replaceable_statuses
            ):
                token = old["payment_token"] or "no payment"
                return f"already sent ({token}, {old['hw_status'] or old['status']})"
            conn.execute(
                update(table)
                .where(table.c.id == old["id"])
                .values(send_claimed_until=now + lease, send_claimed_by=owner)
            )
        return None

    def release_hyperwallet_payment_send(self, client_payment_id: str, *, owner: str) -> None:
        """Give the claim of :meth:`claim_hyperwallet_payment_send` back (only the owner's)."""
        table = _HW_PAYMENT.table
        with self._writer.begin() as conn:
            conn.execute(
                update(table)
                .where(table.c.client_payment_id == client_payment_id)
                .where(table.c.send_claimed_by == owner)
                .values(send_claimed_until=None, send_claimed_by=None)
            )

    def record_hyperwallet_notification(
        self,
        record: HyperwalletPayment,
        *,
        notification_token: str,
        notified_at: datetime,
        run_id: str | None = None,
    ) -> HyperwalletPayment | None:
        """Save ``record`` as the effect of one webhook, unless a newer one was applied.

        Hyperwallet delivers out of order. The row keeps the ``createdOn`` and token of the
        newest notification applied; one created strictly earlier changes nothing and ``None``
        comes back. The same notification again (a retry of its processing) passes. Locked,
        checked and written in one transaction, so two runs cannot both win. The row is
        inserted when the ledger does not know the payment yet (made by another system).
        """
        if not notification_token:
            raise InvalidItemError(
                "a notification token is required", item_id=record.client_payment_id
            )
        at = _aware(notified_at, "notified_at", notification_token)
        assert at is not None
        record = replace(
            record, last_notification_at=at, last_notification_token=notification_token
        )
        key, values = _prepare(_HW_PAYMENT, record)
        table = _HW_PAYMENT.table
        now = _now()
        with self._writer.begin() as conn:
            old = _select_by_keys(conn, _HW_PAYMENT, [key], for_update=True).get(key)
            if old is None:
                values.pop("id")
                values["created_at"] = values["updated_at"] = now
                conn.execute(insert(table), [values])
                row = _one(conn, select(table).where(table.c.client_payment_id == key[0]))
                assert row is not None
                _insert_events(
                    conn, [_event(_HW_PAYMENT.name, row["id"], None, values, run_id, now)]
                )
                return _to_record(_HW_PAYMENT, row)
            last = old["last_notification_at"]
            if (
                last is not None
                and last > at
                and old["last_notification_token"] != notification_token
            ):
                return None
            _guard_provider_id(_HW_PAYMENT, key, values, old)
            _merge_attempt(values, old)
            values["id"] = old["id"]
            values["created_at"] = old["created_at"]
            values["updated_at"] = now
            columns = [c for c in _HW_PAYMENT.field_names if c not in ("id", "created_at")]
            conn.execute(
                update(table).where(table.c.id == old["id"]).values({c: values[c] for c in columns})
            )
            if values["status"] != old["status"]:
                _insert_events(
                    conn, [_event(_HW_PAYMENT.name, old["id"], old["status"], values, run_id, now)]
                )
        return _to_record(_HW_PAYMENT, values)

    # -- reporting -------------------------------------------------------------------------

    def events_for(self, entity: str, entity_id: int) -> list[LedgerEvent]:
        """Status history of one row (``entity``: ``transfer``, ``refund``...), oldest first."""
        table = schema.ledger_events
        stmt = (
            select(table)
            .where(table.c.entity == entity, table.c.entity_id == entity_id)
            .order_by(table.c.id)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [LedgerEvent(**{k: v for k, v in row.items() if k != "id"}) for row in rows]

    def count_transfers_by_status(
        self, types: Iterable[TransferType] | None = None
    ) -> dict[str, int]:
        """Number of transfers per status (every known status present, zero when none)."""
        table = schema.transfers
        stmt = select(table.c.status, func.count()).group_by(table.c.status)
        if types is not None:
            stmt = stmt.where(table.c.type.in_([_plain(t) for t in types]))
        counts = {status.value: 0 for status in TransferStatus}
        with self._engine.connect() as conn:
            for status, count in conn.execute(stmt):
                counts[status] = int(count)
        return counts

    def iter_failed(self) -> Iterator[TransferRecord | RefundRecord | PayoutRecord]:
        """Every FAILED transfer, refund and payout (for the daily alert), streamed."""
        batches = chain(
            self.iter_transfers(types=list(TransferType), statuses=[TransferStatus.FAILED]),
            self.iter_refunds(statuses=[RefundStatus.FAILED]),
            self.iter_payouts(statuses=[PayoutStatus.FAILED]),
        )
        for batch in batches:
            yield from batch

    # -- shared machinery ------------------------------------------------------------------

    def _iter(
        self,
        table: Table,
        where: list[ColumnElement[bool]],
        batch_size: int,
        convert: Callable[[RowMapping], R],
        shard: Shard | None = None,
    ) -> Iterator[list[R]]:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if shard is not None:
            where = [*where, table.c.id % shard.count == shard.index]
        return self._iter_batches(table, where, batch_size, convert)

    def _iter_batches(
        self,
        table: Table,
        where: list[ColumnElement[bool]],
        batch_size: int,
        convert: Callable[[RowMapping], R],
    ) -> Iterator[list[R]]:
        last_id = 0
        while True:
            stmt = (
                select(table)
                .where(*where, table.c.id > last_id)
                .order_by(table.c.id)
                .limit(batch_size)
            )
            with self._engine.connect() as conn:
                rows = conn.execute(stmt).mappings().all()
            if not rows:
                return
            last_id = rows[-1]["id"]
            yield [convert(row) for row in rows]
            if len(rows) < batch_size:
                return

    # -- cutover import (rows an incumbent connector made) -----------------------------------

    def save_imported(
        self,
        kind: str,
        records: Sequence[Any],
        *,
        source: str,
        old_ids: Sequence[str | None],
        run_id: str | None = None,
    ) -> list[Any]:
        """Insert or update rows imported from an incumbent connector, marked as imported.

        ``kind`` is ``transfer``, ``refund``, ``payout``, ``payment_mapping`` or
        ``hyperwallet_payment``; ``old_ids[i]`` is the incumbent's id of ``records[i]``, stored
        in ``imported_id`` with ``imported_from=source``. The same guards as ``save_*`` apply
        (a saved provider id is never replaced) and the audit trail gets the rows with
        ``run_id``, but no failure notification is queued: the incumbent already reported its
        failures, and importing one is not a new failure.
        """
        try:
            entity = _IMPORTABLE[kind]
        except KeyError:
            raise ValueError(
                f"cannot import {kind!r} rows (known: {sorted(_IMPORTABLE)})"
            ) from None
        if len(old_ids) != len(records):
            raise ValueError("one old id per imported record is required")
        return self._save(entity, records, run_id, imported=(source, old_ids))

    def mark_account_mapping_imported(self, shop_id: int, *, source: str, old_id: str) -> None:
        """Mark the mapping of ``shop_id`` as imported from ``source`` (incumbent id ``old_id``)."""
        table = schema.account_mappings
        with self._writer.begin() as conn:
            conn.execute(
                update(table)
                .where(table.c.mirakl_shop_id == shop_id)
                .values(imported_from=source, imported_id=old_id)
            )

    def imported_ids(self, kind: str, keys: Iterable[str]) -> dict[str, tuple[str, str | None]]:
        """``{key: (imported_from, imported_id)}`` of the imported rows among ``keys``.

        The key is the row's natural key as text (``<type>/<mirakl id>`` for transfers); rows
        this connector made itself are left out. Lets another workflow recognise a Mirakl
        document the incumbent already moved.
        """
        entity = _IMPORTABLE[kind]
        wanted = list(dict.fromkeys(keys))
        key_columns = [entity.table.c[k] for k in entity.key]
        found: dict[str, tuple[str, str | None]] = {}
        table = entity.table
        with self._engine.connect() as conn:
            for chunk in chunked(wanted, _IN_CHUNK):
                chunk_keys = set(chunk)
                last = key_columns[-1]
                last_parts = [k.split("/", len(key_columns) - 1)[-1] for k in chunk]
                stmt = select(*key_columns, table.c.imported_from, table.c.imported_id).where(
                    table.c.imported_from.is_not(None), last.in_(last_parts)
                )
                for row in conn.execute(stmt):
                    key = "/".join(str(part) for part in row[: len(key_columns)])
                    if key in chunk_keys:
                        found[key] = (row[-2], row[-1])
        return found

    def iter_moved(self, kind: str, *, batch_size: int = 500) -> Iterator[Any]:
        """Every row of ``kind`` whose money moved (it has a provider id), whoever moved it.

        What an incumbent must be told before it runs again (a rollback after a cutover).
        """
        entity = _IMPORTABLE[kind]
        if entity.provider_id is None:
            raise ValueError(f"{kind} rows have no provider id")
        table = entity.table
        where = [table.c[entity.provider_id].is_not(None)]
        for batch in self._iter(table, where, batch_size, _record_reader(entity)):
            yield from batch

    def _save(
        self,
        entity: _Entity[R],
        records: Sequence[R],
        run_id: str | None,
        *,
        imported: tuple[str, Sequence[str | None]] | None = None,
    ) -> list[R]:
        if not records:
            return []
        prepared = [_prepare(entity, record) for record in records]
        _refuse_duplicate_keys(entity, prepared)
        if imported is not None:
            source, old_ids = imported
            for (_, values), old_id in zip(prepared, old_ids, strict=True):
                values["imported_from"] = source
                values["imported_id"] = old_id
        table = entity.table
        now = _now()
        try:
            with self._writer.begin() as conn:
                existing = _select_by_keys(
                    conn, entity, [key for key, _ in prepared], for_update=True
                )
                inserts: list[dict[str, Any]] = []
                updates: list[dict[str, Any]] = []
                events: list[dict[str, Any]] = []
                for key, values in prepared:
                    old = existing.get(key)
                    if old is None:
                        values.pop("id")
                        values["created_at"] = values["updated_at"] = now
                        inserts.append(values)
                        continue
                    if _held(entity, old):
                        # Held by a person on the payments console: no run decides it, saves
                        # over it or sends it until it is released (manual_rules).
                        values.clear()
                        values.update({name: old[name] for name in entity.field_names})
                        log.info(
                            "%s %s is %s: left as it is",
                            entity.name, _key_text(key), old["status_reason"],
                        )  # fmt: skip
                        continue
                    if entity.provider_id is not None:
                        _guard_provider_id(entity, key, values, old)
                    _merge_attempt(values, old)
                    values["id"] = old["id"]
                    values["created_at"] = old["created_at"]
                    if _changed(values, old):
                        values["updated_at"] = now
                        updates.append(values)
                    else:
                        values["updated_at"] = old["updated_at"]
                    if values["status"] != old["status"]:
                        events.append(
                            _event(entity.name, old["id"], old["status"], values, run_id, now)
                        )
                if inserts:
                    # Plain executemany, then one keyed SELECT for the new ids: on SQLite an
                    # ordered INSERT ... RETURNING would cost one statement per row.
                    conn.execute(insert(table), inserts)
                    new_keys = [tuple(v[k] for k in entity.key) for v in inserts]
                    new_rows = _select_by_keys(conn, entity, new_keys, columns=("id",))
                    for key, values in zip(new_keys, inserts, strict=True):
                        values["id"] = new_rows[key]["id"]
                        events.append(_event(entity.name, values["id"], None, values, run_id, now))
                if updates:
                    columns = [c for c in entity.field_names if c not in ("id", "created_at")]
                    if imported is not None:
                        columns += list(_IMPORT_MARKERS)
                    conn.execute(
                        update(table).where(table.c.id == bindparam("_row_id")),
                        [{"_row_id": v["id"], **{c: v[c] for c in columns}} for v in updates],
                    )
                _insert_events(conn, events)
                if imported is None:  # the incumbent already reported its own failures
                    _queue_failure_notifications(
                        conn, entity, events, {v["id"]: v for _, v in prepared}, now
                    )
        except IntegrityError as exc:
            raise LedgerConflictError(
                f"saving {len(records)} {entity.name}(s) clashed with rows written meanwhile "
                f"by another process ({_first_line(exc.orig)}); re-read and decide again"
            ) from exc
        return [_to_record(entity, values) for _, values in prepared]

    def _mark_attempt(
        self, entity: _Entity[R], record: R, idempotency_key: str, run_id: str | None
    ) -> R:
        if not idempotency_key:
            raise ValueError("an idempotency key is required to mark an attempt")
        key, _ = _prepare(entity, record)
        table = entity.table
        now = _now()
        with self._writer.begin() as conn:
            old = _select_by_keys(conn, entity, [key], for_update=True).get(key)
            if old is None:
                raise LedgerConflictError(
                    f"{entity.name} {_key_text(key)} is not in the ledger; save it before "
                    "marking an attempt"
                )
            if _held(entity, old):
                raise LedgerConflictError(
                    f"{entity.name} {_key_text(key)} (row {old['id']}) is "
                    f"{old['status_reason']}; it is not sent until released on the payments "
                    "console"
                )
            if (
                entity.provider_id is not None
                and old[entity.provider_id] is not None
                and old["status"] not in entity.replaceable_statuses
            ):
                raise LedgerConflictError(
                    f"{entity.name} {_key_text(key)} (row {old['id']}) already has "
                    f"{entity.provider_id} {old[entity.provider_id]}; it must not be sent again"
                )
            if old["status"] in entity.done_statuses:
                raise LedgerConflictError(
                    f"{entity.name} {_key_text(key)} (row {old['id']}) is already "
                    f"{old['status']}; it must not be sent again"
                )
            # attempted_at is when this key was first sent: Stripe ages a key from its first
            # use, so a replay with the same key must not make it look younger (the replay
            # window and the lookups after it are measured from here).
            first_use = old["attempted_at"] if old["idempotency_key"] == idempotency_key else None
            conn.execute(
                update(table)
                .where(table.c.id == old["id"])
                .values(
                    idempotency_key=idempotency_key,
                    attempted_at=first_use or now,
                    attempts=table.c.attempts + 1,
                    updated_at=now,
                )
            )
            row = _one(conn, select(table).where(table.c.id == old["id"]))
        assert row is not None
        log.debug(
            "%s %s attempt %d (key %s, run %s)",
            entity.name,
            _key_text(key),
            row["attempts"],
            idempotency_key,
            run_id,
        )
        return _to_record(entity, row)


# -- helpers (pure unless they take a connection) -----------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _first_line(error: object) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _ensure_sqlite_directory(database: str | None) -> None:
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _plain(value: Any) -> Any:
    # StrEnum members hash by name, not value: use plain strings in keys and SQL.
    return value.value if isinstance(value, Enum) else value


def _plain_values(record: object, *, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        f.name: _plain(getattr(record, f.name))
        for f in fields(record)  # type: ignore[arg-type]
        if f.name not in exclude
    }


def _prepare(entity: _Entity[R], record: R) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Plain column values of ``record`` (validated, UTC, reason cut) and its natural key."""
    if not isinstance(record, entity.record):
        raise TypeError(f"expected a {entity.record.__name__}, got {type(record).__name__}")
    values = _plain_values(record)
    key = tuple(values[k] for k in entity.key)
    if any(part in (None, "") for part in key):
        raise InvalidItemError(
            f"{entity.name} key {'/'.join(entity.key)} is incomplete: {key!r}",
            item_id=_key_text(key),
        )
    if not values.get("status"):
        raise InvalidItemError(f"{entity.name} has no status", item_id=_key_text(key))
    for name in entity.datetime_fields:
        stamp = values[name]
        if stamp is None:
            continue
        if stamp.tzinfo is None or stamp.utcoffset() is None:
            raise InvalidItemError(
                f"{name} is a naive datetime ({stamp.isoformat()}); the ledger needs UTC",
                item_id=_key_text(key),
            )
        values[name] = stamp.astimezone(UTC)
    values["status_reason"] = schema.truncate_reason(values["status_reason"])
    values["attempts"] = values["attempts"] or 0
    problems = schema.value_problems(entity.table, values)
    if problems:
        raise InvalidItemError(
            f"cannot be recorded: {'; '.join(problems)}", item_id=_key_text(key)[:_ITEM_ID_MAX]
        )
    return key, values


def _key_text(key: tuple[Any, ...]) -> str:
    return "/".join(str(part) for part in key)


def _refuse_duplicate_keys(
    entity: _Entity[Any], prepared: list[tuple[tuple[Any, ...], dict[str, Any]]]
) -> None:
    seen: set[tuple[Any, ...]] = set()
    for key, _ in prepared:
        if key in seen:
            raise LedgerConflictError(
                f"{entity.name} {_key_text(key)} appears twice in one save; save it once"
            )
        seen.add(key)


def _guard_provider_id(
    entity: _Entity[Any], key: tuple[Any, ...], values: dict[str, Any], old: RowMapping
) -> None:
    saved = old[entity.provider_id]
    replaceable = old["status"] in entity.replaceable_statuses
    if saved is not None and values[entity.provider_id] != saved and not replaceable:
        raise LedgerConflictError(
            f"{entity.name} {_key_text(key)} (row {old['id']}) already has {entity.provider_id} "
            f"{saved}; refusing to overwrite it with {values[entity.provider_id]!r}"
        )


def _held(entity: _Entity[Any], old: RowMapping) -> bool:
    """Whether the saved row is held by a person (a money table's row only)."""
    return entity.name in manual_rules.ENTITIES and manual_rules.is_held(
        old["status"], old["status_reason"]
    )


def _merge_attempt(values: dict[str, Any], old: RowMapping) -> None:
    """Keep what ``mark_*_attempt`` committed when ``values`` were read before it.

    ``attempts`` works as a version number of the attempt columns: only ``mark_*_attempt``
    raises it, so a lower count means the caller's copy predates the last attempt.
    """
    if values["attempts"] < (old["attempts"] or 0):
        for name in _ATTEMPT_FIELDS:
            values[name] = old[name]


def _changed(values: Mapping[str, Any], old: RowMapping) -> bool:
    skip = ("id", "created_at", "updated_at")
    return any(values[name] != old[name] for name in values if name not in skip)


def _to_record(entity: _Entity[R], row: Mapping[str, Any]) -> R:
    data = {name: row[name] for name in entity.field_names}
    for name, enum in entity.enums.items():
        data[name] = enum(data[name])
    return entity.record(**data)


def _record_reader(entity: _Entity[R]) -> Callable[[RowMapping], R]:
    def read(row: RowMapping) -> R:
        return _to_record(entity, row)

    return read


def _aware(stamp: datetime | None, name: str, item_id: object = None) -> datetime | None:
    """``stamp`` in UTC; a naive datetime is refused (whose local time would it be?)."""
    if stamp is None:
        return None
    if stamp.tzinfo is None or stamp.utcoffset() is None:
        raise InvalidItemError(
            f"{name} is a naive datetime ({stamp.isoformat()}); the ledger needs UTC",
            item_id=item_id,
        )
    return stamp.astimezone(UTC)


def _pending_key(workflow: str, item_id: str | int) -> tuple[str, str]:
    item = str(item_id) if isinstance(item_id, int) else item_id
    if not workflow or not item:
        raise InvalidItemError(
            f"a pending item needs a workflow and an item id, got {workflow!r} / {item_id!r}",
            item_id=item or None,
        )
    return workflow, item


def _pending_item(row: Mapping[str, Any]) -> PendingItem:
    return PendingItem(**{f.name: row[f.name] for f in fields(PendingItem)})


def _payload_json(payload: Mapping[str, Any], dedup_key: str) -> str:
    if not isinstance(payload, Mapping):
        raise InvalidItemError(
            f"notification payload must be a mapping, got {type(payload).__name__}",
            item_id=dedup_key,
        )
    try:
        return json.dumps(dict(payload), separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidItemError(
            f"notification payload is not JSON-serialisable: {exc}", item_id=dedup_key
        ) from exc


def _notification(row: Mapping[str, Any]) -> Notification:
    data = {f.name: row[f.name] for f in fields(Notification)}
    data["payload"] = json.loads(data["payload"])
    data["status"] = NotificationStatus(data["status"])
    return Notification(**data)


def _queue_failure_notifications(
    conn: Connection,
    entity: _Entity[Any],
    events: Sequence[Mapping[str, Any]],
    saved: Mapping[int, Mapping[str, Any]],
    at: datetime,
) -> None:
    """Queue a ``*.failed`` notification for each row this save moved into its FAILED status.

    Two statements at most per 500 failures: the ids of the events just written (the key of
    each notification) and one multi-row insert. The row locks taken by the save mean no other
    transaction can write an event for these rows meanwhile.
    """
    spec = notifications.FAILED_STATUS_TYPES.get(entity.name)
    if spec is None:
        return
    failed_status, notification_type = spec
    failed_ids = [e["entity_id"] for e in events if e["new_status"] == failed_status]
    if not failed_ids:
        return
    table = schema.ledger_events
    event_ids: dict[int, int] = {}
    for chunk in chunked(sorted(failed_ids), _IN_CHUNK):
        stmt = (
            select(table.c.entity_id, func.max(table.c.id))
            .where(
                table.c.entity == entity.name,
                table.c.new_status == failed_status,
                table.c.at == at,
                table.c.entity_id.in_(chunk),
            )
            .group_by(table.c.entity_id)
        )
        event_ids.update((int(e), int(i)) for e, i in conn.execute(stmt))
    rows = []
    for entity_id in failed_ids:
        _, payload = notifications.failed_notification(_to_record(entity, saved[entity_id]))
        dedup_key = notifications.failed_dedup_key(
            notification_type, entity_id, event_ids[entity_id]
        )
        rows.append(
            {
                "type": notification_type,
                "dedup_key": dedup_key,
                "payload": _payload_json(payload, dedup_key),
                "status": NotificationStatus.PENDING.value,
                "attempts": 0,
                "last_error": None,
                "next_attempt_at": None,
                "sent_at": None,
                "created_at": at,
                "updated_at": at,
            }
        )
    outbox = schema.notifications
    conn.execute(
        _dialect_insert(conn, outbox).on_conflict_do_nothing(index_elements=[outbox.c.dedup_key]),
        rows,
    )


def _inbox_values(event: InboxEvent) -> dict[str, Any]:
    """Column values of an inbox event, validated (ids, JSON payload, aware times)."""
    if not isinstance(event, InboxEvent):
        raise TypeError(f"expected an InboxEvent, got {type(event).__name__}")
    item = event.event_id or None
    if not event.event_id or not event.source or not event.type:
        raise InvalidItemError(
            "an inbox event needs an event id, a source and a type", item_id=item
        )
    values = _plain_values(event)
    values["payload"] = _payload_json(event.payload, event.event_id)
    values["status"] = InboxStatus(values["status"]).value
    values["last_error"] = schema.truncate_reason(values["last_error"])
    values["attempts"] = values["attempts"] or 0
    for name in ("event_created", "next_attempt_at", "processed_at"):
        values[name] = _aware(values[name], name, item)
    return values


def _inbox_event(row: Mapping[str, Any]) -> InboxEvent:
    data = {f.name: row[f.name] for f in fields(InboxEvent)}
    data["payload"] = json.loads(data["payload"])
    data["status"] = InboxStatus(data["status"])
    return InboxEvent(**data)


def _account_mapping(row: Mapping[str, Any]) -> AccountMapping:
    return AccountMapping(**{f.name: row[f.name] for f in fields(AccountMapping)})


def _one(conn: Connection, stmt: Any) -> RowMapping | None:
    return conn.execute(stmt).mappings().one_or_none()


def _select_by_keys(
    conn: Connection,
    entity: _Entity[Any],
    keys: Iterable[tuple[Any, ...]],
    *,
    for_update: bool = False,
    columns: Sequence[str] = (),
) -> dict[tuple[Any, ...], RowMapping]:
    """Rows matching natural ``keys``, in ``ceil(n / 500)`` statements per key prefix.

    :param columns: read only these columns (and the key) instead of the whole row.
    """
    table = entity.table
    wanted = [table.c[name] for name in (*entity.key, *columns)] if columns else [table]
    prefix_cols = [table.c[name] for name in entity.key[:-1]]
    last_col = table.c[entity.key[-1]]
    by_prefix: dict[tuple[Any, ...], set[Any]] = {}
    for key in keys:
        if any(isinstance(part, str) and "\x00" in part for part in key):
            continue  # no row can hold it (the check before every write refuses NUL), and
            # PostgreSQL refuses the query itself: one absurd id must not fail a whole chunk
        by_prefix.setdefault(tuple(key[:-1]), set()).add(key[-1])
    found: dict[tuple[Any, ...], RowMapping] = {}
    for prefix, lasts in by_prefix.items():
        fixed = [col == value for col, value in zip(prefix_cols, prefix, strict=True)]
        for chunk in chunked(sorted(lasts), _IN_CHUNK):
            stmt = select(*wanted).where(and_(*fixed, last_col.in_(chunk)))
            if for_update:
                stmt = stmt.with_for_update()
            for row in conn.execute(stmt).mappings():
                found[tuple(row[name] for name in entity.key)] = row
    return found


def _event(
    entity: str,
    entity_id: int,
    old_status: str | None,
    values: Mapping[str, Any],
    run_id: str | None,
    at: datetime,
) -> dict[str, Any]:
    return {
        "entity": entity,
        "entity_id": entity_id,
        "old_status": old_status,
        "new_status": values["status"],
        "reason": values["status_reason"],
        "run_id": run_id,
        "at": at,
    }


def _insert_events(conn: Connection, events: list[dict[str, Any]]) -> None:
    if events:
        conn.execute(insert(schema.ledger_events), events)
        moved_daily.count_moved(conn, events)  # the console's per-day sums, same transaction


def _dialect_insert(conn: Connection, table: Table) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise ConfigurationError(f"the ledger supports SQLite and PostgreSQL, not {conn.dialect.name}")
