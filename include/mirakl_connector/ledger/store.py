"""The :class:`Ledger`: every money movement we owe or made, with its status and why.

Workflows read records (the dataclasses of :mod:`.records`), decide in pure functions, and hand
the records back to be saved; they never hold a SQLAlchemy object or a session. Each public method
is one short transaction, so a task killed half-way loses at most the batch in hand and a SQLite
file is never locked for longer than a statement or two.

Two rules protect against paying a seller twice, whatever the caller does:

* a row that already has a provider id (``transfer_id``, ``stripe_refund_id``, ``payout_id``) is
  never saved over with a different one or with none: :class:`LedgerConflictError`;
* the attempt columns (``idempotency_key``, ``attempted_at``, ``attempts``) are written by
  ``mark_*_attempt``, which commits them *before* the Stripe call and bumps ``attempts``. A
  record whose ``attempts`` is lower than the row's was read before that mark: ``save_*`` keeps
  the row's attempt columns rather than let a stale copy hide that a Stripe call may have
  happened. A current record (same count) is saved as given, so a workflow can settle an
  attempt (clear ``attempted_at`` once Stripe definitely refused).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import Enum
from itertools import chain
from pathlib import Path
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    RowMapping,
    Table,
    and_,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError

from mirakl_connector.batch import chunked
from mirakl_connector.errors import ConfigurationError, InvalidItemError, MiraklConnectorError
from mirakl_connector.ledger import migrations, schema
from mirakl_connector.ledger.engine import create_ledger_engine, writer
from mirakl_connector.ledger.records import (
    AccountMapping,
    LedgerEvent,
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
    provider_id: str  # column holding the Stripe id once the money moved
    enums: Mapping[str, type[Enum]]

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

_ATTEMPT_FIELDS = ("idempotency_key", "attempted_at", "attempts")
_PAYMENT_MAPPING_ENTITY = "payment_mapping"


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

        A new mapping or a status change is written to the audit trail.
        """
        if not mapping.stripe_charge_id:
            raise InvalidItemError(
                "no Stripe charge id", item_id=mapping.mirakl_commercial_order_id
            )
        table = schema.payment_mappings
        values = _plain_values(mapping, exclude=("id", "created_at", "updated_at"))
        values["status_reason"] = schema.truncate_reason(values["status_reason"])
        now = _now()
        with self._writer.begin() as conn:
            old = _one(
                conn,
                select(table)
                .where(table.c.stripe_charge_id == mapping.stripe_charge_id)
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
            old_status = old["status"] if old is not None else None
            if old_status != values["status"]:
                _insert_events(
                    conn,
                    [_event(_PAYMENT_MAPPING_ENTITY, row_id, old_status, values, run_id, now)],
                )
        values["status"] = PaymentMappingStatus(values["status"])
        return PaymentMapping(**{**values, "id": row_id})

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
                    found[row["mirakl_commercial_order_id"]] = PaymentMapping(
                        **{**row, "status": PaymentMappingStatus(row["status"])}
                    )
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
    ) -> Iterator[list[TransferRecord]]:
        """Stream the transfers of ``types`` in ``statuses``, ``batch_size`` at a time, by id.

        Each batch is read in its own short transaction (keyset pagination on ``id``), so the
        caller may save rows between batches: a row whose status leaves the filter is simply
        not seen again, and no row is returned twice.
        """
        table = _TRANSFER.table
        where = [
            table.c.type.in_([_plain(t) for t in types]),
            table.c.status.in_([_plain(s) for s in statuses]),
        ]
        return self._iter(_TRANSFER, where, batch_size)

    def save_transfers(
        self, records: Sequence[TransferRecord], *, run_id: str | None = None
    ) -> list[TransferRecord]:
        """Insert or update ``records`` by ``(type, mirakl_id)`` in one transaction.

        Returns the records as saved (``id``, ``created_at``, ``updated_at`` set), in input
        order. New rows and status changes are written to the audit trail with ``run_id``.

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
        self, *, statuses: Iterable[RefundStatus], batch_size: int = 100
    ) -> Iterator[list[RefundRecord]]:
        """Stream the refunds in ``statuses`` by id (see :meth:`iter_transfers`)."""
        where = [_REFUND.table.c.status.in_([_plain(s) for s in statuses])]
        return self._iter(_REFUND, where, batch_size)

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
        self, *, statuses: Iterable[PayoutStatus], batch_size: int = 100
    ) -> Iterator[list[PayoutRecord]]:
        """Stream the payouts in ``statuses`` by id (see :meth:`iter_transfers`)."""
        where = [_PAYOUT.table.c.status.in_([_plain(s) for s in statuses])]
        return self._iter(_PAYOUT, where, batch_size)

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
        self, entity: _Entity[R], where: list[ColumnElement[bool]], batch_size: int
    ) -> Iterator[list[R]]:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        return self._iter_batches(entity, where, batch_size)

    def _iter_batches(
        self, entity: _Entity[R], where: list[ColumnElement[bool]], batch_size: int
    ) -> Iterator[list[R]]:
        table = entity.table
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
            yield [_to_record(entity, row) for row in rows]
            if len(rows) < batch_size:
                return

    def _save(self, entity: _Entity[R], records: Sequence[R], run_id: str | None) -> list[R]:
        if not records:
            return []
        prepared = [_prepare(entity, record) for record in records]
        _refuse_duplicate_keys(entity, prepared)
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
                    conn.execute(
                        update(table).where(table.c.id == bindparam("_row_id")),
                        [{"_row_id": v["id"], **{c: v[c] for c in columns}} for v in updates],
                    )
                _insert_events(conn, events)
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
            if old[entity.provider_id] is not None:
                raise LedgerConflictError(
                    f"{entity.name} {_key_text(key)} (row {old['id']}) already has "
                    f"{entity.provider_id} {old[entity.provider_id]}; it must not be sent again"
                )
            conn.execute(
                update(table)
                .where(table.c.id == old["id"])
                .values(
                    idempotency_key=idempotency_key,
                    attempted_at=now,
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
    if saved is not None and values[entity.provider_id] != saved:
        raise LedgerConflictError(
            f"{entity.name} {_key_text(key)} (row {old['id']}) already has {entity.provider_id} "
            f"{saved}; refusing to overwrite it with {values[entity.provider_id]!r}"
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


def _dialect_insert(conn: Connection, table: Table) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise ConfigurationError(f"the ledger supports SQLite and PostgreSQL, not {conn.dialect.name}")
