"""What waits: the retry queue of failed items, run checkpoints and alert cooldowns."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select

from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.ledger import entities, schema
from mirakl_connector.ledger.base import LedgerStore
from mirakl_connector.ledger.entities import aware, from_row, now
from mirakl_connector.ledger.records import PendingItem
from mirakl_connector.ledger.sql import dialect_insert


class CheckpointRepository(LedgerStore):
    """The ``checkpoints`` table: where each workflow's incremental read stopped."""

    def get_checkpoint(self, key: str) -> str | None:
        """The value saved under ``key``, or ``None`` when never set ("first run")."""
        table = schema.checkpoints
        with self._engine.connect() as conn:
            value: str | None = conn.execute(
                select(table.c.value).where(table.c.key == key)
            ).scalar()
        return value

    def set_checkpoint(self, key: str, value: str) -> None:
        """Save ``value`` under ``key``, replacing any previous value."""
        table = schema.checkpoints
        at = now()
        with self._writer.begin() as conn:
            stmt = dialect_insert(conn, table).values(key=key, value=value, updated_at=at)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[table.c.key], set_={"value": value, "updated_at": at}
                )
            )


class PendingItemRepository(LedgerStore):
    """The ``pending_items`` table (the retry queue) and ``alert_cooldowns``."""

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
        at = now()
        with self._writer.begin() as conn:
            stmt = dialect_insert(conn, table).values(
                workflow=workflow,
                item_id=item,
                reason=schema.truncate_reason(reason),
                attempts=1,
                first_failed_at=at,
                last_failed_at=at,
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
        return from_row(PendingItem, row)

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
        return [from_row(PendingItem, row) for row in rows]

    def clear_pending_item(self, workflow: str, item_id: str | int) -> None:
        """Forget ``item_id`` of ``workflow`` (it succeeded); nothing happens if not queued."""
        workflow, item = _pending_key(workflow, item_id)
        table = schema.pending_items
        with self._writer.begin() as conn:
            conn.execute(delete(table).where(table.c.workflow == workflow, table.c.item_id == item))

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
        at = aware(now, "now") if now is not None else entities.now()
        assert at is not None
        table = schema.alert_cooldowns
        with self._writer.begin() as conn:
            stmt = dialect_insert(conn, table).values(key=key, last_claimed_at=at)
            stmt = stmt.on_conflict_do_update(
                index_elements=[table.c.key],
                set_={"last_claimed_at": stmt.excluded.last_claimed_at},
                where=table.c.last_claimed_at <= at - period,
            ).returning(table.c.id)
            return conn.execute(stmt).first() is not None


def _pending_key(workflow: str, item_id: str | int) -> tuple[str, str]:
    item = str(item_id) if isinstance(item_id, int) else item_id
    if not workflow or not item:
        raise InvalidItemError(
            f"a pending item needs a workflow and an item id, got {workflow!r} / {item_id!r}",
            item_id=item or None,
        )
    return workflow, item
