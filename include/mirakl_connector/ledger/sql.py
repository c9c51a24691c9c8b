"""Statements the repositories share, run on a connection the caller's transaction holds.

Reading rows by natural key in chunks, writing the audit trail (``ledger_events``, with the
console's per-day sums in the same transaction), queueing the ``*.failed`` notifications of a
save, and the dialect's ``INSERT ... ON CONFLICT``. None of them opens or commits a
transaction: the :class:`~mirakl_connector.ledger.base.LedgerStore` method calling them does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, RowMapping, Table, and_, func, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from mirakl_connector.core.batch import chunked
from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.ledger import moved_daily, notifications, schema
from mirakl_connector.ledger.entities import Entity, aware, payload_json, to_record
from mirakl_connector.ledger.records import NotificationStatus

#: Most values put in one ``IN (...)`` list (SQLite caps bound parameters per statement).
IN_CHUNK = 500


def one(conn: Connection, stmt: Any) -> RowMapping | None:
    """The one row ``stmt`` selects, or ``None``."""
    return conn.execute(stmt).mappings().one_or_none()


def select_by_keys(
    conn: Connection,
    entity: Entity[Any],
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
        for chunk in chunked(sorted(lasts), IN_CHUNK):
            stmt = select(*wanted).where(and_(*fixed, last_col.in_(chunk)))
            if for_update:
                stmt = stmt.with_for_update()
            for row in conn.execute(stmt).mappings():
                found[tuple(row[name] for name in entity.key)] = row
    return found


def event(
    entity: str,
    entity_id: int,
    old_status: str | None,
    values: Mapping[str, Any],
    run_id: str | None,
    at: datetime,
) -> dict[str, Any]:
    """One ``ledger_events`` row: ``entity_id`` went from ``old_status`` to ``values``'."""
    return {
        "entity": entity,
        "entity_id": entity_id,
        "old_status": old_status,
        "new_status": values["status"],
        "reason": values["status_reason"],
        "run_id": run_id,
        "at": at,
    }


def insert_events(conn: Connection, events: list[dict[str, Any]]) -> None:
    """Write ``events`` to the audit trail, and the console's per-day sums with them."""
    if events:
        conn.execute(insert(schema.ledger_events), events)
        moved_daily.count_moved(conn, events)  # the console's per-day sums, same transaction


def dialect_insert(conn: Connection, table: Table) -> Any:
    """The dialect's ``INSERT`` (for ``on_conflict_do_*``), SQLite or PostgreSQL."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise ConfigurationError(f"the ledger supports SQLite and PostgreSQL, not {conn.dialect.name}")


def new_notification(
    type: str, dedup_key: str, payload: Mapping[str, Any], at: datetime
) -> dict[str, Any]:
    """The column values of a notification queued at ``at``, not sent yet."""
    return {
        "type": type,
        "dedup_key": dedup_key,
        "payload": payload_json(payload, dedup_key),
        "status": NotificationStatus.PENDING.value,
        "attempts": 0,
        "last_error": None,
        "next_attempt_at": None,
        "sent_at": None,
        "created_at": at,
        "updated_at": at,
    }


def queue_failure_notifications(
    conn: Connection,
    entity: Entity[Any],
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
    for chunk in chunked(sorted(failed_ids), IN_CHUNK):
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
        _, payload = notifications.failed_notification(to_record(entity, saved[entity_id]))
        dedup_key = notifications.failed_dedup_key(
            notification_type, entity_id, event_ids[entity_id]
        )
        rows.append(new_notification(notification_type, dedup_key, payload, at))
    outbox = schema.notifications
    conn.execute(
        dialect_insert(conn, outbox).on_conflict_do_nothing(index_elements=[outbox.c.dedup_key]),
        rows,
    )


def due(table: Any, due_before: datetime) -> ColumnElement[bool]:
    """Rows whose ``next_attempt_at`` is unset or not after ``due_before``."""
    at = aware(due_before, "due_before")
    return or_(table.c.next_attempt_at.is_(None), table.c.next_attempt_at <= at)
