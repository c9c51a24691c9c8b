"""The ledger side of reconciliation: which rows a run or a day moved, and where results go.

Reads (SQLAlchemy Core, short transactions, on the ledger's engine):

* :func:`rows_of_run`: the money rows a DAG run changed (its status events, ``run_id``), by the
  index ``ix_ledger_events_run``;
* :func:`rows_of_day`: the rows whose money moved on a UTC day (their status event into a moved
  status, index ``ix_ledger_events_entity_status_at``), and the rows whose call was sent that day
  and whose answer the ledger never got (in doubt);
* :func:`known_provider_ids`: which provider object ids the ledger knows at all.

Writes: :func:`save_reconciliation` replaces the result of one (flow, scope) in one transaction:
reconciling a run again (a cleared task) never doubles its items. Rows imported from an incumbent
connector at cutover are never reconciled: their money moved there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, insert, select

from mirakl_connector.ledger import schema
from mirakl_connector.ledger.engine import writer
from mirakl_connector.ledger.entities import HW_PAYMENT, PAYOUT, REFUND, TRANSFER, Entity, to_record
from mirakl_connector.ledger.moved_daily import MOVED_STATUSES
from mirakl_connector.ledger.records import (
    HyperwalletPayment,
    PayoutRecord,
    RefundRecord,
    TransferRecord,
    TransferType,
)
from mirakl_connector.ledger.schema import truncate_reason
from mirakl_connector.ledger.store import Ledger

SCOPE_RUN = "run"
SCOPE_DAY = "day"

#: Most values in one ``IN (...)`` list (SQLite caps bound parameters per statement).
_CHUNK = 500

MoneyRecord = TransferRecord | RefundRecord | PayoutRecord | HyperwalletPayment

_ENTITIES: Mapping[str, Entity[Any]] = {e.name: e for e in (TRANSFER, REFUND, PAYOUT, HW_PAYMENT)}


@dataclass(frozen=True)
class RowSource:
    """One kind of money row a flow reconciles: a ledger entity, for transfers some types."""

    entity: str  # transfer, refund, payout, hyperwallet_payment
    types: tuple[TransferType, ...] = ()


@dataclass(frozen=True)
class ReconciliationHeader:
    """What :func:`save_reconciliation` records about one reconciliation (besides its items)."""

    flow: str
    scope: str  # SCOPE_RUN | SCOPE_DAY
    scope_key: str  # the run id, or the day (YYYY-MM-DD)
    run_id: str | None
    day: str
    reconciled_at: datetime
    window_start: datetime | None
    window_end: datetime | None
    matched: int
    mismatched: int
    provider_calls: int
    mirakl_calls: int
    note: str | None = None


def rows_of_run(ledger: Ledger, run_id: str, sources: Sequence[RowSource]) -> list[MoneyRecord]:
    """The rows of ``sources`` whose status ``run_id`` changed (whatever their status now)."""
    events = schema.ledger_events
    found: list[MoneyRecord] = []
    with ledger.engine.connect() as conn:
        for entity in dict.fromkeys(s.entity for s in sources):
            stmt = (
                select(events.c.entity_id)
                .where(events.c.run_id == run_id, events.c.entity == entity)
                .distinct()
            )
            ids = [row[0] for row in conn.execute(stmt)]
            found.extend(_rows_by_id(conn, entity, ids, _types(sources, entity)))
    return found


def rows_of_day(ledger: Ledger, day: date, sources: Sequence[RowSource]) -> list[MoneyRecord]:
    """The rows of ``sources`` that moved on ``day`` (UTC), and those sent that day whose
    provider id the ledger never got (in doubt)."""
    start = datetime.combine(day, time(0), tzinfo=UTC)
    end = start + timedelta(days=1)
    events = schema.ledger_events
    found: dict[tuple[str, int | None], MoneyRecord] = {}
    with ledger.engine.connect() as conn:
        for entity in dict.fromkeys(s.entity for s in sources):
            types = _types(sources, entity)
            stmt = (
                select(events.c.entity_id)
                .where(
                    events.c.entity == entity,
                    events.c.new_status.in_(sorted(MOVED_STATUSES[entity])),
                    events.c.at >= start,
                    events.c.at < end,
                )
                .distinct()
            )
            ids = [row[0] for row in conn.execute(stmt)]
            for record in _rows_by_id(conn, entity, ids, types):
                found[(entity, record.id)] = record
            spec = _ENTITIES[entity]
            table = spec.table
            doubt = select(table).where(
                table.c.attempted_at >= start,
                table.c.attempted_at < end,
                table.c[_provider_id(spec)].is_(None),
                table.c.imported_from.is_(None),
            )
            if types:
                doubt = doubt.where(table.c.type.in_([t.value for t in types]))
            for row in conn.execute(doubt).mappings():
                record = to_record(spec, row)
                found[(entity, record.id)] = record
    return list(found.values())


def has_stripe_accounts(ledger: Ledger) -> bool:
    """Whether the ledger maps any shop to a Stripe account (a deployment that uses Stripe)."""
    table = schema.account_mappings
    with ledger.engine.connect() as conn:
        return conn.execute(select(table.c.id).limit(1)).first() is not None


def known_provider_ids(ledger: Ledger, ids: Iterable[str]) -> set[str]:
    """Which of ``ids`` (provider object ids) some money row of the ledger holds."""
    wanted = sorted(set(ids))
    known: set[str] = set()
    if not wanted:
        return known
    with ledger.engine.connect() as conn:
        for spec in _ENTITIES.values():
            column = spec.table.c[_provider_id(spec)]
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                stmt = select(column).where(column.in_(chunk))
                known.update(row[0] for row in conn.execute(stmt))
    return known


def save_reconciliation(
    ledger: Ledger, header: ReconciliationHeader, items: Sequence[Mapping[str, Any]]
) -> int:
    """Replace the result of ``header``'s (flow, scope, scope_key) with this one; its id.

    :param items: column values of ``reconciliation_items`` (without the header's columns).
    """
    head = schema.reconciliations
    rows = schema.reconciliation_items
    values = {
        name: getattr(header, name)
        for name in (
            "flow", "scope", "scope_key", "run_id", "day", "reconciled_at", "window_start",
            "window_end", "matched", "mismatched", "provider_calls", "mirakl_calls", "note",
        )
    }  # fmt: skip
    with writer(ledger.engine).begin() as conn:
        old = conn.execute(
            select(head.c.id).where(
                head.c.flow == header.flow,
                head.c.scope == header.scope,
                head.c.scope_key == header.scope_key,
            )
        ).scalar_one_or_none()
        if old is not None:
            conn.execute(delete(rows).where(rows.c.reconciliation_id == old))
            conn.execute(delete(head).where(head.c.id == old))
        inserted = conn.execute(insert(head).values(**values)).inserted_primary_key
        assert inserted is not None
        new_id = inserted[0]
        if items:
            conn.execute(
                insert(rows),
                [
                    {
                        **_fit(item),
                        "reconciliation_id": new_id,
                        "flow": header.flow,
                        "day": header.day,
                    }
                    for item in items
                ],
            )
    return int(new_id)


def _fit(item: Mapping[str, Any]) -> dict[str, Any]:
    """Texts cut to their columns (a provider's long message must not fail the whole write)."""
    values = dict(item)
    values["reason"] = truncate_reason(values.get("reason")) or ""
    for name in ("item", "mirakl_id", "provider_object_id", "provider_amount_raw"):
        length = getattr(schema.reconciliation_items.c[name].type, "length", None)
        value = values.get(name)
        if isinstance(value, str) and length and len(value) > length:
            values[name] = value[: length - 1] + "…"
    return values


def _types(sources: Sequence[RowSource], entity: str) -> tuple[TransferType, ...]:
    types: list[TransferType] = []
    for source in sources:
        if source.entity == entity:
            types.extend(source.types)
    return tuple(dict.fromkeys(types))


def _provider_id(spec: Entity[Any]) -> str:
    """The provider id column of a money table (each of them has one)."""
    assert spec.provider_id is not None
    return spec.provider_id


def _rows_by_id(
    conn: Any, entity: str, ids: Sequence[int], types: Sequence[TransferType]
) -> list[MoneyRecord]:
    spec = _ENTITIES[entity]
    table = spec.table
    found: list[MoneyRecord] = []
    for start in range(0, len(ids), _CHUNK):
        chunk = list(ids[start : start + _CHUNK])
        stmt = select(table).where(table.c.id.in_(chunk), table.c.imported_from.is_(None))
        if types:
            stmt = stmt.where(table.c.type.in_([t.value for t in types]))
        found.extend(
            to_record(spec, row) for row in conn.execute(stmt.order_by(table.c.id)).mappings()
        )
    return found
