"""The approval gate's decisions in the ledger (table ``approvals``): read by the workflows, written
by the payments console. The rules themselves are in
:mod:`mirakl_connector.operations.approval_gate`.

The API (other modules never touch the table):

* :func:`gate_for` — the :class:`~mirakl_connector.operations.approval_gate.ApprovalGate` of one
chunk of
  decisions (its items' latest decisions, the payout destinations already paid), or ``None``
  when no rule is on (then nothing is read);
* :func:`items_decided_since` and :func:`released_invoices` — what the next run must look at
  again because a person decided on it;
* :func:`record_decision` — a person's decision on one held row, checked and recorded with an
  event in the row's history and the console's audit (``console_actions``), in one transaction;
* :func:`awaiting` and :func:`decisions_of` — what the console lists.

The reads take the ledger's engine (``Ledger.engine``); the one write takes the ledger itself,
through :func:`~mirakl_connector.ledger.engine.writer`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, FromClause, and_, func, insert, or_, select

from mirakl_connector.ledger import manual_rules as rules
from mirakl_connector.ledger import schema
from mirakl_connector.ledger.engine import writer
from mirakl_connector.ledger.manual_actions import ActionRecord, ManualActions
from mirakl_connector.ledger.manual_actions import _audit as audit
from mirakl_connector.ledger.records import (
    HyperwalletPayment,
    HyperwalletPaymentStatus,
    PayoutRecord,
    PayoutStatus,
    TransferRecord,
    TransferStatus,
)
from mirakl_connector.ledger.schema import truncate_reason
from mirakl_connector.ledger.store import Ledger
from mirakl_connector.operations.approval_gate import (
    DECIDABLE_PREFIXES,
    ApprovalDecision,
    ApprovalGate,
    ApprovalSettings,
    Decision,
    GatedItem,
    describe_item,
    hyperwallet_item,
    is_decidable,
    payout_item,
    transfer_item,
)

_CHUNK = 500
#: Longest "why" a person may give (the console's rule for every action).
WHY_MAX = rules.WHY_MAX


#: A ledger row as SQLAlchemy reads it (``RowMapping``: keyed by name or column).
_Row = Mapping[Any, Any]


@dataclass(frozen=True)
class _Entity:
    """One ledger table the gate holds rows of."""

    name: str  # as in ledger_events
    table: FromClause
    record: type
    item_of: Callable[[Any], GatedItem]
    on_hold: str


ENTITIES: Mapping[str, _Entity] = {
    e.name: e
    for e in (
        _Entity(
            "transfer",
            schema.transfers,
            TransferRecord,
            transfer_item,
            TransferStatus.ON_HOLD.value,
        ),
        _Entity("payout", schema.payouts, PayoutRecord, payout_item, PayoutStatus.ON_HOLD.value),
        _Entity(
            "hyperwallet_payment",
            schema.hyperwallet_payments,
            HyperwalletPayment,
            hyperwallet_item,
            HyperwalletPaymentStatus.ON_HOLD.value,
        ),
    )
}


class ApprovalRefused(Exception):
    """A decision that cannot be recorded; ``status`` is the HTTP status the console answers."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class AwaitingItem:
    """A row held for a person's decision, as the console lists it."""

    entity: str
    row_id: int
    item: GatedItem
    reason: str
    shop_id: int | None
    created_at: datetime
    latest: ApprovalDecision | None


# -- read by the workflows -------------------------------------------------------------------


def gate_for(
    engine: Engine,
    settings: ApprovalSettings,
    entity: str,
    items: Iterable[str],
    *,
    destinations: Iterable[str] = (),
) -> ApprovalGate | None:
    """The gate of a chunk: the latest decision of each of ``items`` and which payout
    ``destinations`` the ledger already paid. ``None`` (and nothing read) when no rule is on."""
    if not settings.enabled:
        return None
    wanted = [d for d in dict.fromkeys(destinations) if d]
    paid = (
        paid_destinations(engine, entity, wanted)
        if settings.first_payout_to_new_account and wanted
        else frozenset()
    )
    return ApprovalGate(settings, latest_decisions(engine, entity, items), paid)


def latest_decisions(
    engine: Engine, entity: str, items: Iterable[str]
) -> dict[tuple[str, str], ApprovalDecision]:
    """The newest decision of each of ``items`` that has one."""
    table = schema.approvals
    keys = [str(i) for i in dict.fromkeys(items) if i]
    found: dict[tuple[str, str], ApprovalDecision] = {}
    with engine.connect() as conn:
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            newest = (
                select(func.max(table.c.id))
                .where(table.c.entity == entity, table.c.item.in_(chunk))
                .group_by(table.c.item)
            )
            for row in conn.execute(select(table).where(table.c.id.in_(newest))).mappings():
                found[(entity, row["item"])] = _decision(row)
    return found


def paid_destinations(engine: Engine, entity: str, destinations: Iterable[str]) -> frozenset[str]:
    """Which of ``destinations`` already received a payout recorded in the ledger.

    Stripe (``payout``): a payout with a ``po_`` id in PAYOUT_CREATED to that connected account
    (imported history included: the old connector paid it). Hyperwallet: a payment with a token
    CREATED or COMPLETED to that bank account token. A payout that failed at the bank does not
    count: no money ever reached that account.
    """
    wanted = [d for d in dict.fromkeys(destinations) if d]
    if entity == "payout":
        table, column = schema.payouts, schema.payouts.c.stripe_account_id
        paid = and_(table.c.payout_id.is_not(None), table.c.status == PayoutStatus.CREATED.value)
    elif entity == "hyperwallet_payment":
        table, column = schema.hyperwallet_payments, schema.hyperwallet_payments.c.destination_token
        paid = and_(
            table.c.payment_token.is_not(None),
            table.c.status.in_(
                [HyperwalletPaymentStatus.CREATED.value, HyperwalletPaymentStatus.COMPLETED.value]
            ),
        )
    else:
        raise ValueError(f"{entity} has no payout destinations")
    found: set[str] = set()
    with engine.connect() as conn:
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            stmt = select(column).where(column.in_(chunk), paid).distinct()
            found.update(conn.execute(stmt).scalars())
    return frozenset(found)


def items_decided_since(engine: Engine, entity: str, since: datetime) -> list[str]:
    """Items of ``entity`` someone decided on since ``since`` (the split's changed backlog)."""
    table = schema.approvals
    stmt = (
        select(table.c.item)
        .where(table.c.entity == entity, table.c.decided_at >= since)
        .distinct()
        .order_by(table.c.item)
    )
    with engine.connect() as conn:
        return list(conn.execute(stmt).scalars())


def released_invoices(engine: Engine, settings: ApprovalSettings) -> list[str]:
    """Invoices whose Hyperwallet payment waits for a decision and may go now: someone approved
    exactly it, or the settings no longer hold it (a rule switched off, a threshold raised).

    The invoice payment run reads them again; a held invoice is otherwise never re-read (it is
    not a failure to retry), and few rows wait for a person at any time.
    """
    kind = ENTITIES["hyperwallet_payment"]
    with engine.connect() as conn:
        held = [_as_record(kind.record, r) for r in conn.execute(_held(kind)).mappings()]
    if not held:
        return []
    items = [kind.item_of(r) for r in held]
    gate = gate_for(
        engine,
        settings,
        kind.name,
        [i.item for i in items],
        destinations=[i.destination for i in items],
    )
    released = (
        r.invoice_id
        for r, i in zip(held, items, strict=True)
        if gate is None or gate.hold(i) is None
    )
    return sorted(set(released))


# -- written by the console ------------------------------------------------------------------


def record_decision(
    ledger: Ledger,
    *,
    entity: str,
    row_id: int,
    decision: Decision,
    seen: Mapping[str, Any],
    by: str,
    why: str,
    now: datetime | None = None,
) -> ApprovalDecision:
    """Record ``by``'s decision on one held row, in one transaction with an event in the row's
    history and a ``console_actions`` audit row (action ``approve`` / ``reject``); a refusal is
    audited on its own (:meth:`~.manual_actions.ManualActions.refused`), as the console's other
    actions are.

    :param seen: the ``amount`` (minor units), ``currency``, ``destination`` and ``source``
        the person was shown: the decision is bound to them, and refused when the row no
        longer has them (it changed since the page was rendered).
    :raises ApprovalRefused: no such row (404), a row not waiting for a decision or changed
        since it was shown (409), a missing or too long ``why`` or bad values (422, not
        audited: nothing was asked of the ledger).
    """
    action = rules.APPROVE if decision is Decision.APPROVED else rules.REJECT
    kind = ENTITIES.get(entity)
    if kind is None:
        raise ApprovalRefused(404, f"no approvals for {entity!r}; one of {', '.join(ENTITIES)}")
    try:
        why = rules.clean_why(why)
    except ValueError as exc:
        raise ApprovalRefused(422, str(exc)) from None
    if not by:
        raise ApprovalRefused(422, "no user name to record the decision under")
    shown = _seen(seen)
    try:
        return _record(ledger, kind, row_id, decision, action, shown, by, why, now)
    except ApprovalRefused as refused:
        ManualActions(ledger).refused(
            action, entity, row_id, user=by, why=why, reason=refused.message
        )
        raise


def _record(
    ledger: Ledger,
    kind: _Entity,
    row_id: int,
    decision: Decision,
    action: str,
    shown: tuple[Any, ...],
    by: str,
    why: str,
    now: datetime | None,
) -> ApprovalDecision:
    now = now or datetime.now(UTC)
    table, entity = kind.table, kind.name
    with writer(ledger.engine).begin() as conn:
        stmt = select(table).where(table.c.id == row_id)
        if conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        row = conn.execute(stmt).mappings().one_or_none()
        if row is None:
            raise ApprovalRefused(404, f"no {entity} {row_id} in the ledger")
        if row["status"] != kind.on_hold or not is_decidable(row["status_reason"]):
            raise ApprovalRefused(
                409,
                f"{entity} {row_id} is not waiting for an approval "
                f"({row['status']}: {row['status_reason'] or 'no reason'})",
            )
        item = kind.item_of(_as_record(kind.record, row))
        current = (item.amount, item.currency, item.destination, item.source)
        if shown != current:
            raise ApprovalRefused(
                409,
                f"{entity} {row_id} changed since it was shown: it is now {describe_item(item)}; "
                "reload the page and decide again",
            )
        values = {
            "entity": entity,
            "item": item.item,
            "row_id": row_id,
            "decision": decision.value,
            "amount": item.amount,
            "currency": item.currency,
            "destination": item.destination,
            "source": item.source,
            "decided_by": by[:255],
            "decided_at": now,
            "why": why,
        }
        inserted = conn.execute(insert(schema.approvals).values(values)).inserted_primary_key
        assert inserted is not None  # a single-row insert always has its key
        new_id = inserted[0]
        outcome = "sent by the next run" if decision is Decision.APPROVED else "kept on hold"
        detail = f"{describe_item(item)}; {outcome}"
        conn.execute(
            insert(schema.ledger_events).values(
                entity=entity,
                entity_id=row_id,
                old_status=row["status"],
                new_status=row["status"],  # no status change: the next run acts on it
                reason=truncate_reason(
                    f"{decision.value.lower()} by {by}: {why} ({describe_item(item)}); {outcome}"
                ),
                run_id=None,
                at=now,
            )
        )
        audit(
            conn,
            ActionRecord(
                at=now, user=by, action=action, entity=entity, entity_id=row_id,
                item=item.item, why=why, result=rules.DONE, detail=truncate_reason(detail),
            ),
        )  # fmt: skip
    return _decision({**values, "id": new_id})


# -- read by the console ---------------------------------------------------------------------


def awaiting(engine: Engine, *, limit: int = 200) -> tuple[list[AwaitingItem], int]:
    """Rows held for a person's decision, oldest first (at most ``limit``), and their count."""
    rows: list[tuple[_Entity, _Row]] = []
    total = 0
    with engine.connect() as conn:
        for kind in ENTITIES.values():
            table = kind.table
            total += conn.execute(
                select(func.count()).select_from(table).where(_held_clause(kind))
            ).scalar_one()
            stmt = _held(kind).order_by(table.c.created_at, table.c.id).limit(limit)
            rows.extend((kind, r) for r in conn.execute(stmt).mappings())
    rows.sort(key=lambda kr: (kr[1]["created_at"], kr[0].name, kr[1]["id"]))
    rows = rows[:limit]
    items = [(kind, row, kind.item_of(_as_record(kind.record, row))) for kind, row in rows]
    latest: dict[tuple[str, str], ApprovalDecision] = {}
    for name in ENTITIES:
        latest.update(
            latest_decisions(engine, name, [i.item for k, _, i in items if k.name == name])
        )
    return [
        AwaitingItem(
            entity=kind.name,
            row_id=row["id"],
            item=item,
            reason=row["status_reason"],
            shop_id=row.get("mirakl_shop_id", row.get("shop_id")),
            created_at=_aware(row["created_at"]),
            latest=latest.get((kind.name, item.item)),
        )
        for kind, row, item in items
    ], total


def decisions_of(engine: Engine, entity: str, item: str) -> list[ApprovalDecision]:
    """Every decision on one item, oldest first (its audit trail)."""
    table = schema.approvals
    stmt = select(table).where(table.c.entity == entity, table.c.item == item).order_by(table.c.id)
    with engine.connect() as conn:
        return [_decision(r) for r in conn.execute(stmt).mappings()]


# -- helpers ---------------------------------------------------------------------------------


def _held_clause(kind: _Entity) -> Any:
    """Rows ON_HOLD whose reason says they wait for a person's decision."""
    table = kind.table
    reasons = (table.c.status_reason.startswith(p, autoescape=True) for p in DECIDABLE_PREFIXES)
    return and_(table.c.status == kind.on_hold, or_(*reasons))


def _held(kind: _Entity) -> Any:
    return select(kind.table).where(_held_clause(kind))


def _as_record(cls: type, row: _Row) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in row.items() if k in names})


def _seen(seen: Mapping[str, Any]) -> tuple[Any, ...]:
    amount = seen.get("amount")
    try:
        amount = int(str(amount).strip()) if amount is not None else None
    except ValueError:
        raise ApprovalRefused(
            422, f"amount must be minor units (an integer), got {amount!r}"
        ) from None
    currency = str(seen.get("currency") or "").strip().upper()
    destination = str(seen.get("destination") or "").strip()
    source = str(seen.get("source") or "").strip() or None
    if amount is None or not currency or not destination:
        raise ApprovalRefused(
            422, "amount, currency and destination (as shown) are required: a decision is "
            "bound to them"
        )  # fmt: skip
    return amount, currency, destination, source


def _decision(row: _Row) -> ApprovalDecision:
    return ApprovalDecision(
        entity=row["entity"],
        item=row["item"],
        decision=Decision(row["decision"]),
        amount=int(row["amount"]),
        currency=row["currency"],
        destination=row["destination"],
        source=row["source"],
        decided_by=row["decided_by"],
        decided_at=_aware(row["decided_at"]),
        why=row["why"],
        row_id=row["row_id"],
        id=row["id"],
    )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
