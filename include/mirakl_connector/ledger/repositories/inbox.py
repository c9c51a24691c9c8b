"""The provider event inbox (Stripe and Hyperwallet webhooks, stored once, processed later) and
the out-of-order guard of the events applied to each provider object."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update

from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.ledger import schema
from mirakl_connector.ledger.base import LedgerStore
from mirakl_connector.ledger.entities import (
    LedgerConflictError,
    Row,
    as_new_row,
    aware,
    from_row,
    payload_json,
    plain,
    plain_values,
)
from mirakl_connector.ledger.entities import now as _now
from mirakl_connector.ledger.records import InboxEvent, InboxStatus
from mirakl_connector.ledger.sql import dialect_insert, due


def inbox_values(event: InboxEvent) -> dict[str, Any]:
    """Column values of an inbox event, validated (ids, JSON payload, aware times)."""
    if not isinstance(event, InboxEvent):
        raise TypeError(f"expected an InboxEvent, got {type(event).__name__}")
    item = event.event_id or None
    if not event.event_id or not event.source or not event.type:
        raise InvalidItemError(
            "an inbox event needs an event id, a source and a type", item_id=item
        )
    values = plain_values(event)
    values["payload"] = payload_json(event.payload, event.event_id)
    values["status"] = InboxStatus(values["status"]).value
    values["last_error"] = schema.truncate_reason(values["last_error"])
    values["attempts"] = values["attempts"] or 0
    for name in ("event_created", "next_attempt_at", "processed_at"):
        values[name] = aware(values[name], name, item)
    return values


def read_inbox_event(row: Row) -> InboxEvent:
    """The event of a ``webhook_inbox`` row (payload decoded)."""
    return from_row(
        InboxEvent, row, payload=json.loads(row["payload"]), status=InboxStatus(row["status"])
    )


class InboxRepository(LedgerStore):
    """The ``webhook_inbox`` and ``applied_object_events`` tables."""

    def store_webhook_event(self, event: InboxEvent) -> bool:
        """Store a provider event once; True when it is new, False when already stored.

        Keyed by ``(source, event_id)``: a provider retry, or the healing sensor finding an
        event the webhook already delivered, changes nothing.

        :raises InvalidItemError: no event id, source or type, or a payload that is not JSON.
        """
        values = inbox_values(event)
        at = _now()
        as_new_row(values, at)
        table = schema.webhook_inbox
        with self._writer.begin() as conn:
            stmt = (
                dialect_insert(conn, table)
                .values(values)
                .on_conflict_do_nothing(index_elements=[table.c.source, table.c.event_id])
                .returning(table.c.id)
            )
            return conn.execute(stmt).first() is not None

    def get_inbox_event(self, source: str, event_id: str) -> InboxEvent | None:
        """One stored event, or ``None``."""
        table = schema.webhook_inbox
        row = self._read_one(
            select(table).where(table.c.source == source, table.c.event_id == event_id)
        )
        return read_inbox_event(row) if row is not None else None

    def inbox_event_ids(self, source: str, event_ids: Iterable[str]) -> set[str]:
        """Which of ``event_ids`` (of ``source``) are already in the inbox."""
        table = schema.webhook_inbox
        rows = self._read_chunked(
            event_ids,
            lambda chunk: select(table.c.event_id).where(
                table.c.source == source, table.c.event_id.in_(chunk)
            ),
        )
        return {row["event_id"] for row in rows}

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
        where: list[ColumnElement[bool]] = [table.c.status.in_([plain(s) for s in statuses])]
        if source is not None:
            where.append(table.c.source == source)
        if due_before is not None:
            where.append(due(table, due_before))
        return self._iter(table, where, batch_size, read_inbox_event)

    def save_inbox_event(self, event: InboxEvent) -> InboxEvent:
        """Save a stored event's processing state (status, attempts, error, times); return it.

        :raises LedgerConflictError: the event is not in the inbox.
        """
        values = inbox_values(event)
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
        return read_inbox_event(row)

    def inbox_pending(
        self, *, now: datetime | None = None, source: str | None = None
    ) -> tuple[int, int]:
        """``(count, highest id)`` of the events waiting to be processed now.

        RECEIVED events and FAILED ones whose retry is due (a FAILED event without
        ``next_attempt_at`` was given up and does not count). The watcher that wakes the
        processing DAG compares the highest id with the last one it signalled (edge trigger).
        """
        at = aware(now, "now") if now is not None else _now()
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
        created = aware(event_created, "event_created", event_id)
        table = schema.applied_object_events
        at = _now()
        with self._writer.begin() as conn:
            stmt = dialect_insert(conn, table).values(
                object_id=object_id,
                last_event_created=created,
                last_event_id=event_id,
                updated_at=at,
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
