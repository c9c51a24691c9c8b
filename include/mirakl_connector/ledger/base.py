"""The generic store under every repository: engine, transactions, batch reads, audited saves.

Workflows read records (the dataclasses of :mod:`.records`), decide in pure functions, and hand
the records back to be saved; they never hold a SQLAlchemy object or a session. Each public method
of a repository is one short transaction, so a task killed half-way loses at most the batch in
hand and a SQLite file is never locked for longer than a statement or two.

Three rules protect against paying a seller twice (or against a person's hold), whatever the
caller does; :meth:`LedgerStore._save` and :meth:`LedgerStore._mark_attempt` enforce them for
every money table:

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

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    RowMapping,
    Table,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError

from mirakl_connector.core.batch import chunked
from mirakl_connector.core.errors import ConfigurationError, InvalidItemError
from mirakl_connector.core.shards import Shard
from mirakl_connector.ledger import migrations
from mirakl_connector.ledger.engine import create_ledger_engine, writer
from mirakl_connector.ledger.entities import (
    ENTITIES,
    IMPORT_MARKERS,
    Entity,
    LedgerConflictError,
    as_new_row,
    changed,
    first_line,
    guard_provider_id,
    held,
    key_text,
    merge_attempt,
    now,
    plain,
    prepare,
    record_reader,
    refuse_duplicate_keys,
    to_record,
)
from mirakl_connector.ledger.sql import (
    IN_CHUNK,
    event,
    insert_events,
    one,
    queue_failure_notifications,
    select_by_keys,
)

log = logging.getLogger("mirakl_connector.ledger.store")

#: File name of the default SQLite ledger.
SQLITE_FILE_NAME = "mirakl_connector_ledger.db"

R = TypeVar("R")
T = TypeVar("T")


class LedgerStore:
    """The connection to the ledger database and the primitives the repositories share.

    Opening one creates or upgrades the schema (see :mod:`.migrations`), so every task can
    simply open a ledger; call :meth:`dispose` (or use it as a context manager) when done.
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
                f"Cannot open the ledger database {self.url}: {first_line(exc.orig)}"
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

    def __repr__(self) -> str:
        return f"Ledger({self.url!r})"

    @staticmethod
    def default_sqlite_url(directory: str | Path) -> str:
        """URL of the default SQLite ledger file in ``directory`` (the Airflow home)."""
        path = Path(directory).expanduser().resolve() / SQLITE_FILE_NAME
        return f"sqlite:///{path}"

    @staticmethod
    def unrecordable_reason(record: Any) -> str | None:
        """Why ``record`` cannot be written (a value its column cannot hold), else ``None``.

        Workflows ask this per item while deciding, so one absurd value fails that item with a
        reason instead of the whole chunk's write (see :func:`schema.value_problems`).
        """
        entity = ENTITIES[type(record)]
        try:
            prepare(entity, record)
        except InvalidItemError as exc:
            return exc.reason
        return None

    # -- reads -----------------------------------------------------------------------------

    def _read_one(self, stmt: Any) -> RowMapping | None:
        """The one row ``stmt`` selects, or ``None``, in its own read transaction."""
        with self._engine.connect() as conn:
            return one(conn, stmt)

    def _read_column(self, stmt: Any) -> list[Any]:
        """The first column of every row ``stmt`` selects, in its own read transaction."""
        with self._engine.connect() as conn:
            return [row[0] for row in conn.execute(stmt)]

    def _read_chunked(
        self, ids: Iterable[T], stmt_of: Callable[[list[T]], Any]
    ) -> Iterator[RowMapping]:
        """The rows of ``stmt_of(chunk)`` for ``ids`` (deduplicated, sorted) 500 at a time.

        One read transaction for every chunk: SQLite caps the bound parameters of a statement.
        """
        with self._engine.connect() as conn:
            for chunk in chunked(sorted(set(ids)), IN_CHUNK):  # type: ignore[type-var]
                yield from conn.execute(stmt_of(chunk)).mappings()

    def _get_by_keys(
        self, entity: Entity[R], keys: Iterable[tuple[Any, ...]]
    ) -> dict[tuple[Any, ...], R]:
        """The records of ``entity`` whose natural key is among ``keys``, by key."""
        with self._engine.connect() as conn:
            rows = select_by_keys(conn, entity, keys)
        return {key: to_record(entity, row) for key, row in rows.items()}

    def _get_by_ids(self, entity: Entity[R], ids: Iterable[str]) -> dict[str, R]:
        """The records of a one-column-key ``entity`` among ``ids``, by id."""
        found = self._get_by_keys(entity, [(i,) for i in ids])
        return {key[0]: record for key, record in found.items()}

    def _iter_statuses(
        self,
        entity: Entity[R],
        statuses: Iterable[Any],
        batch_size: int,
        *,
        shard: Shard | None = None,
        where: Sequence[ColumnElement[bool]] = (),
    ) -> Iterator[list[R]]:
        """Stream the records of ``entity`` in ``statuses`` (and ``where``) by id."""
        table = entity.table
        conditions = [*where, table.c.status.in_([plain(s) for s in statuses])]
        return self._iter(table, conditions, batch_size, record_reader(entity), shard)

    def _iter(
        self,
        table: Table,
        where: Sequence[ColumnElement[bool]],
        batch_size: int,
        convert: Callable[[RowMapping], R],
        shard: Shard | None = None,
    ) -> Iterator[list[R]]:
        """Stream the rows of ``table`` matching ``where`` as ``convert`` makes them, by id,
        one short read transaction per batch (keyset pagination: see ``iter_transfers``)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if shard is not None:
            where = [*where, table.c.id % shard.count == shard.index]
        return self._iter_batches(table, list(where), batch_size, convert)

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

    def _iter_in_chunks(
        self,
        entity: Entity[R],
        column: Any,
        ids: Iterable[Any],
        where: Sequence[ColumnElement[bool]],
        batch_size: int,
    ) -> Iterator[list[R]]:
        """Like :meth:`_iter`, only the rows whose ``column`` is among ``ids``, 500 at a time."""
        for chunk in chunked(sorted(set(ids)), IN_CHUNK):
            conditions = [*where, column.in_(chunk)]
            yield from self._iter(entity.table, conditions, batch_size, record_reader(entity))

    # -- writes ----------------------------------------------------------------------------

    def _save(
        self,
        entity: Entity[R],
        records: Sequence[R],
        run_id: str | None,
        *,
        imported: tuple[str, Sequence[str | None]] | None = None,
    ) -> list[R]:
        """Insert or update ``records`` by natural key, with their audit events, in one
        transaction (see the rules in this module's docstring and ``Ledger.save_transfers``)."""
        if not records:
            return []
        prepared = [prepare(entity, record) for record in records]
        refuse_duplicate_keys(entity, prepared)
        if imported is not None:
            source, old_ids = imported
            for (_, values), old_id in zip(prepared, old_ids, strict=True):
                values["imported_from"] = source
                values["imported_id"] = old_id
        table = entity.table
        at = now()
        try:
            with self._writer.begin() as conn:
                existing = select_by_keys(
                    conn, entity, [key for key, _ in prepared], for_update=True
                )
                inserts: list[dict[str, Any]] = []
                updates: list[dict[str, Any]] = []
                events: list[dict[str, Any]] = []
                for key, values in prepared:
                    old = existing.get(key)
                    if old is None:
                        as_new_row(values, at)
                        inserts.append(values)
                        continue
                    if held(entity, old):
                        # Held by a person on the payments console: no run decides it, saves
                        # over it or sends it until it is released (manual_rules).
                        values.clear()
                        values.update({name: old[name] for name in entity.field_names})
                        log.info(
                            "%s %s is %s: left as it is",
                            entity.name, key_text(key), old["status_reason"],
                        )  # fmt: skip
                        continue
                    if entity.provider_id is not None:
                        guard_provider_id(entity, key, values, old)
                    merge_attempt(values, old)
                    values["id"] = old["id"]
                    values["created_at"] = old["created_at"]
                    if changed(values, old):
                        values["updated_at"] = at
                        updates.append(values)
                    else:
                        values["updated_at"] = old["updated_at"]
                    if values["status"] != old["status"]:
                        events.append(
                            event(entity.name, old["id"], old["status"], values, run_id, at)
                        )
                if inserts:
                    # Plain executemany, then one keyed SELECT for the new ids: on SQLite an
                    # ordered INSERT ... RETURNING would cost one statement per row.
                    conn.execute(insert(table), inserts)
                    new_keys = [tuple(v[k] for k in entity.key) for v in inserts]
                    new_rows = select_by_keys(conn, entity, new_keys, columns=("id",))
                    for key, values in zip(new_keys, inserts, strict=True):
                        values["id"] = new_rows[key]["id"]
                        events.append(event(entity.name, values["id"], None, values, run_id, at))
                if updates:
                    columns = [c for c in entity.field_names if c not in ("id", "created_at")]
                    if imported is not None:
                        columns += list(IMPORT_MARKERS)
                    conn.execute(
                        update(table).where(table.c.id == bindparam("_row_id")),
                        [{"_row_id": v["id"], **{c: v[c] for c in columns}} for v in updates],
                    )
                insert_events(conn, events)
                if imported is None:  # the incumbent already reported its own failures
                    queue_failure_notifications(
                        conn, entity, events, {v["id"]: v for _, v in prepared}, at
                    )
        except IntegrityError as exc:
            raise LedgerConflictError(
                f"saving {len(records)} {entity.name}(s) clashed with rows written meanwhile "
                f"by another process ({first_line(exc.orig)}); re-read and decide again"
            ) from exc
        return [to_record(entity, values) for _, values in prepared]

    def _mark_attempt(
        self, entity: Entity[R], record: R, idempotency_key: str, run_id: str | None
    ) -> R:
        """Commit that ``record``'s provider call is about to be made with ``idempotency_key``
        (see ``Ledger.mark_transfer_attempt``)."""
        if not idempotency_key:
            raise ValueError("an idempotency key is required to mark an attempt")
        key, _ = prepare(entity, record)
        table = entity.table
        at = now()
        with self._writer.begin() as conn:
            old = self._locked_row(conn, entity, key, "marking an attempt")
            if held(entity, old):
                raise LedgerConflictError(
                    f"{entity.name} {key_text(key)} (row {old['id']}) is "
                    f"{old['status_reason']}; it is not sent until released on the payments "
                    "console"
                )
            if (
                entity.provider_id is not None
                and old[entity.provider_id] is not None
                and old["status"] not in entity.replaceable_statuses
            ):
                raise LedgerConflictError(
                    f"{entity.name} {key_text(key)} (row {old['id']}) already has "
                    f"{entity.provider_id} {old[entity.provider_id]}; it must not be sent again"
                )
            if old["status"] in entity.done_statuses:
                raise LedgerConflictError(
                    f"{entity.name} {key_text(key)} (row {old['id']}) is already "
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
                    attempted_at=first_use or at,
                    attempts=table.c.attempts + 1,
                    updated_at=at,
                )
            )
            row = one(conn, select(table).where(table.c.id == old["id"]))
        assert row is not None
        log.debug(
            "%s %s attempt %d (key %s, run %s)",
            entity.name,
            key_text(key),
            row["attempts"],
            idempotency_key,
            run_id,
        )
        return to_record(entity, row)

    @staticmethod
    def _locked_row(
        conn: Connection, entity: Entity[Any], key: tuple[Any, ...], doing: str
    ) -> RowMapping:
        """The saved row of ``key``, locked for the transaction; refused when there is none."""
        old = select_by_keys(conn, entity, [key], for_update=True).get(key)
        if old is None:
            raise LedgerConflictError(
                f"{entity.name} {key_text(key)} is not in the ledger; save it before {doing}"
            )
        return old


def _ensure_sqlite_directory(database: str | None) -> None:
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
