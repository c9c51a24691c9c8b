"""The notification outbox: what the operator's endpoint must receive, sent by its own DAG."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, update
from sqlalchemy.exc import IntegrityError

from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.ledger import schema
from mirakl_connector.ledger.base import LedgerStore
from mirakl_connector.ledger.entities import (
    LedgerConflictError,
    Row,
    aware,
    from_row,
    now,
    payload_json,
    plain,
)
from mirakl_connector.ledger.records import Notification, NotificationStatus
from mirakl_connector.ledger.sql import dialect_insert, due, new_notification


def read_notification(row: Row) -> Notification:
    """The notification of a ``notifications`` row (payload decoded)."""
    return from_row(
        Notification,
        row,
        payload=json.loads(row["payload"]),
        status=NotificationStatus(row["status"]),
    )


class OutboxRepository(LedgerStore):
    """The ``notifications`` table."""

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
        values = new_notification(type, dedup_key, payload, now())
        with self._writer.begin() as conn:
            stmt = (
                dialect_insert(conn, table)
                .values(values)
                .on_conflict_do_nothing(index_elements=[table.c.dedup_key])
                .returning(*table.c)
            )
            row = conn.execute(stmt).mappings().one_or_none()
        return read_notification(row) if row is not None else None

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
        where: list[ColumnElement[bool]] = [table.c.status.in_([plain(s) for s in statuses])]
        if due_before is not None:
            where.append(due(table, due_before))
        return self._iter(table, where, batch_size, read_notification)

    def save_notification(self, notification: Notification) -> Notification:
        """Save a notification's delivery state (status, attempts, error, times); return it.

        With an ``id`` the row is updated (:class:`LedgerConflictError` when it does not
        exist); without, it is inserted or, when its ``dedup_key`` exists, updated by that key.
        """
        n = notification
        if not n.type or not n.dedup_key:
            raise InvalidItemError(
                "notification needs a type and a dedup key",
                item_id=n.dedup_key or (str(n.id) if n.id is not None else None),
            )
        table = schema.notifications
        at = now()
        values = {
            "type": n.type,
            "dedup_key": n.dedup_key,
            "payload": payload_json(n.payload, n.dedup_key),
            "status": NotificationStatus(n.status).value,
            "attempts": n.attempts or 0,
            "last_error": schema.truncate_reason(n.last_error),
            "next_attempt_at": aware(n.next_attempt_at, "next_attempt_at", n.dedup_key),
            "sent_at": aware(n.sent_at, "sent_at", n.dedup_key),
            "updated_at": at,
        }
        try:
            with self._writer.begin() as conn:
                if n.id is not None:
                    stmt = (
                        update(table).where(table.c.id == n.id).values(values).returning(*table.c)
                    )
                else:
                    stmt = dialect_insert(conn, table).values({**values, "created_at": at})
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
        return read_notification(row)
