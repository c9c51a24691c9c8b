"""Money moved per UTC day, kept as a small table next to the ledger's status events.

"How much moved this year, per currency and workflow" is a sum over a year of status events
joined to their rows: about a million lookups on a large ledger, seconds on SQLite. This module
keeps the answer ready instead: every time the ledger writes status events, :func:`count_moved`
adds the rows that just *moved* to table ``moved_daily`` in the same transaction (so the table
and the events never disagree, whatever crashes), and :func:`rebuild` recomputes it from the
events (schema step 9 on an existing ledger; a bulk load that bypassed the store).

A row *moved* when it entered one of :data:`MOVED_STATUSES` of its entity from a status outside
them (a Hyperwallet payment going from CREATED to COMPLETED moved once, not twice). The day is
the UTC day of that status event. Rows imported from an incumbent at cutover keep their origin
(``imported_from``): the money moved at the old connector, so the console shows them apart and
never as moved on their import day.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, String, and_, delete, func, literal, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from mirakl_connector.ledger import schema
from mirakl_connector.ledger.records import (
    HyperwalletPaymentStatus,
    PayoutStatus,
    RefundStatus,
    TransferStatus,
)

#: Statuses meaning "the provider holds the money movement", per ``ledger_events.entity``.
MOVED_STATUSES: Mapping[str, frozenset[str]] = {
    "transfer": frozenset({TransferStatus.CREATED.value}),
    "refund": frozenset({RefundStatus.CREATED.value}),
    "payout": frozenset({PayoutStatus.CREATED.value}),
    "hyperwallet_payment": frozenset(
        {HyperwalletPaymentStatus.CREATED.value, HyperwalletPaymentStatus.COMPLETED.value}
    ),
}

#: The money table of each entity, and the column giving the aggregate's ``subtype``.
_TABLES: Mapping[str, tuple[Any, str | None]] = {
    "transfer": (schema.transfers, "type"),
    "refund": (schema.refunds, None),
    "payout": (schema.payouts, None),
    "hyperwallet_payment": (schema.hyperwallet_payments, "kind"),
}
_KEY = ("day", "entity", "subtype", "currency", "origin")
_CHUNK = 500

Key = tuple[str, str, str, str, str]


def is_movement(entity: str, old_status: str | None, new_status: str) -> bool:
    """Whether an event from ``old_status`` to ``new_status`` is the row's money moving (pure)."""
    moved = MOVED_STATUSES.get(entity)
    return moved is not None and new_status in moved and old_status not in moved


def count_moved(conn: Connection, events: Iterable[Mapping[str, Any]]) -> None:
    """Add the movements among ``events`` (just written, same transaction) to ``moved_daily``.

    Reads amount, currency, subtype and origin of the moved rows (already written by the caller)
    and upserts one aggregate row per key, in key order so two writers lock them alike.
    """
    by_entity: dict[str, dict[int, str]] = {}
    for event in events:
        if is_movement(event["entity"], event["old_status"], event["new_status"]):
            by_entity.setdefault(event["entity"], {})[int(event["entity_id"])] = _day(event["at"])
    if not by_entity:
        return
    sums: dict[Key, list[int]] = {}
    for entity, days in by_entity.items():
        table, subtype = _TABLES[entity]
        ids = sorted(days)
        for start in range(0, len(ids), _CHUNK):
            stmt = select(
                table.c.id,
                _subtype(table, subtype),
                table.c.currency,
                table.c.amount,
                table.c.imported_from,
            ).where(table.c.id.in_(ids[start : start + _CHUNK]))
            for row_id, sub, currency, amount, origin in conn.execute(stmt):
                key = (days[row_id], entity, sub or "", currency or "", origin or "")
                bucket = sums.setdefault(key, [0, 0])
                bucket[0] += 1
                bucket[1] += int(amount or 0)
    _upsert(conn, sums)


def rebuild(conn: Connection) -> int:
    """Recompute ``moved_daily`` from ``ledger_events``; return how many aggregate rows."""
    conn.execute(delete(schema.moved_daily))
    events = schema.ledger_events
    rows = 0
    for entity, (table, subtype) in _TABLES.items():
        moved = sorted(MOVED_STATUSES[entity])
        day = _sql_day(conn, events.c.at)
        sub = _subtype(table, subtype)
        stmt = (
            select(
                day,
                literal(entity, String),
                func.coalesce(sub, ""),
                func.coalesce(table.c.currency, ""),
                func.coalesce(table.c.imported_from, ""),
                func.count(),
                func.coalesce(func.sum(table.c.amount), 0),
            )
            .select_from(events.join(table, table.c.id == events.c.entity_id))
            .where(
                and_(
                    events.c.entity == entity,
                    events.c.new_status.in_(moved),
                    or_(events.c.old_status.is_(None), events.c.old_status.not_in(moved)),
                )
            )
            .group_by(
                day,
                *([sub] if subtype else []),  # PostgreSQL refuses constants there
                table.c.currency,
                table.c.imported_from,
            )
        )
        values = [
            dict(
                zip(
                    (*_KEY, "count", "amount"),
                    (str(r[0]), *r[1:5], int(r[5]), int(r[6])),
                    strict=True,
                )
            )
            for r in conn.execute(stmt)
        ]
        if values:
            conn.execute(schema.moved_daily.insert(), values)
        rows += len(values)
    return rows


def _subtype(table: Any, column: str | None) -> Any:
    return table.c[column] if column else literal("", String)


def _day(at: datetime | str) -> str:
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    if at.tzinfo is not None:
        at = at.astimezone(UTC)
    return at.date().isoformat()


def _sql_day(conn: Connection, column: Any) -> Any:
    if conn.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.date(column)  # SQLite keeps naive UTC text


def _upsert(conn: Connection, sums: Mapping[Key, list[int]]) -> None:
    if not sums:
        return
    table = schema.moved_daily
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c[name] for name in _KEY],
        set_={
            "count": table.c.count + stmt.excluded.count,
            "amount": table.c.amount + stmt.excluded.amount,
        },
    )
    values = [
        {**dict(zip(_KEY, key, strict=True)), "count": n, "amount": amount}
        for key, (n, amount) in sorted(sums.items())
    ]
    conn.execute(stmt, values)
