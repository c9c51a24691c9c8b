"""How a record maps onto its table, and the checks made before a row is written (pure).

The ledger's repositories (:mod:`.repositories`) never hand-write a column list: a record's
dataclass fields are its table's columns, name for name (:mod:`.schema`), and an
:class:`Entity` says which columns are its natural key, which one holds the provider's id once
money moved, and which statuses end it. Everything here works on plain values and saved rows;
nothing opens a connection.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Generic, TypeVar

from sqlalchemy import RowMapping, Table

from mirakl_connector.core.errors import InvalidItemError, MiraklConnectorError
from mirakl_connector.ledger import manual_rules, schema
from mirakl_connector.ledger.records import (
    HyperwalletPayment,
    HyperwalletPaymentKind,
    HyperwalletPaymentStatus,
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

R = TypeVar("R")
D = TypeVar("D")

#: A saved row as read (a ``RowMapping``) or the column values about to be written.
Row = Mapping[Any, Any]

#: Longest item id quoted in an error (an absurd key would otherwise flood the summary).
ITEM_ID_MAX = 80

#: The columns ``mark_*_attempt`` writes (see :func:`merge_attempt`).
ATTEMPT_FIELDS = ("idempotency_key", "attempted_at", "attempts")
#: Columns saying where an imported row came from (see ``Ledger.save_imported``).
IMPORT_MARKERS = ("imported_from", "imported_id")


class LedgerConflictError(MiraklConnectorError):
    """A write would lose track of money already moved, or clashes with another row.

    Raised instead of overwriting a row's provider id (the proof a Stripe object exists), when
    marking an attempt on a row that is already done or not saved, and when a unique key is
    already taken. Never retried blindly: the ledger and the caller disagree and a human or a
    lookup at Stripe must settle it.
    """


@dataclass(frozen=True)
class Entity(Generic[R]):
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


TRANSFER = Entity(
    "transfer",
    schema.transfers,
    TransferRecord,
    ("type", "mirakl_id"),
    "transfer_id",
    {"type": TransferType, "status": TransferStatus},
)
REFUND = Entity(
    "refund",
    schema.refunds,
    RefundRecord,
    ("mirakl_refund_id",),
    "stripe_refund_id",
    {"type": RefundType, "status": RefundStatus},
)
PAYOUT = Entity(
    "payout",
    schema.payouts,
    PayoutRecord,
    ("mirakl_invoice_id",),
    "payout_id",
    {"status": PayoutStatus},
)
PAYMENT_MAPPING = Entity(
    "payment_mapping",
    schema.payment_mappings,
    PaymentMapping,
    ("stripe_charge_id",),
    None,
    {"status": PaymentMappingStatus},
    frozenset({PaymentMappingStatus.CAPTURED.value, PaymentMappingStatus.CANCELED.value}),
)
HW_PAYMENT = Entity(
    "hyperwallet_payment",
    schema.hyperwallet_payments,
    HyperwalletPayment,
    ("client_payment_id",),
    "payment_token",
    {"kind": HyperwalletPaymentKind, "status": HyperwalletPaymentStatus},
    frozenset({HyperwalletPaymentStatus.COMPLETED.value, HyperwalletPaymentStatus.ABORTED.value}),
    frozenset({HyperwalletPaymentStatus.FAILED.value}),
)

_ALL: tuple[Entity[Any], ...] = (TRANSFER, REFUND, PAYOUT, PAYMENT_MAPPING, HW_PAYMENT)

#: The entity of each record type.
ENTITIES: dict[type, Entity[Any]] = {e.record: e for e in _ALL}
#: The entities the cutover import writes, by name (``Ledger.save_imported``'s ``kind``).
IMPORTABLE: dict[str, Entity[Any]] = {e.name: e for e in _ALL}


def now() -> datetime:
    """The current time, aware UTC (every timestamp the ledger writes)."""
    return datetime.now(UTC)


def first_line(error: object) -> str:
    """The first line of an error's text (a driver's message can run to pages)."""
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def plain(value: Any) -> Any:
    """``value``, or its ``.value`` when it is an enum member."""
    # StrEnum members hash by name, not value: use plain strings in keys and SQL.
    return value.value if isinstance(value, Enum) else value


def plain_values(record: object, *, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields of the dataclass ``record`` as column values (enums as their strings)."""
    return {
        f.name: plain(getattr(record, f.name))
        for f in fields(record)  # type: ignore[arg-type]
        if f.name not in exclude
    }


def from_row(record: type[D], row: Row, **converted: Any) -> D:
    """The dataclass ``record`` built from the same-named columns of ``row``.

    :param converted: values to use instead of the row's (an enum, a decoded payload).
    """
    data = {f.name: row[f.name] for f in fields(record)}  # type: ignore[arg-type]
    data.update(converted)
    return record(**data)


def key_text(key: tuple[Any, ...]) -> str:
    """A natural key as one text (``<type>/<mirakl id>`` for a transfer)."""
    return "/".join(str(part) for part in key)


def aware(stamp: datetime | None, name: str, item_id: str | None = None) -> datetime | None:
    """``stamp`` in UTC; a naive datetime is refused (whose local time would it be?)."""
    if stamp is None:
        return None
    if stamp.tzinfo is None or stamp.utcoffset() is None:
        raise InvalidItemError(
            f"{name} is a naive datetime ({stamp.isoformat()}); the ledger needs UTC",
            item_id=item_id,
        )
    return stamp.astimezone(UTC)


def payload_json(payload: Mapping[str, Any], dedup_key: str) -> str:
    """The JSON text of a notification or event payload (refused when it is not JSON)."""
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


def prepare(entity: Entity[R], record: R) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Plain column values of ``record`` (validated, UTC, reason cut) and its natural key."""
    if not isinstance(record, entity.record):
        raise TypeError(f"expected a {entity.record.__name__}, got {type(record).__name__}")
    values = plain_values(record)
    key = tuple(values[k] for k in entity.key)
    if any(part in (None, "") for part in key):
        raise InvalidItemError(
            f"{entity.name} key {'/'.join(entity.key)} is incomplete: {key!r}",
            item_id=key_text(key),
        )
    if not values.get("status"):
        raise InvalidItemError(f"{entity.name} has no status", item_id=key_text(key))
    for name in entity.datetime_fields:
        values[name] = aware(values[name], name, key_text(key))
    values["status_reason"] = schema.truncate_reason(values["status_reason"])
    values["attempts"] = values["attempts"] or 0
    problems = schema.value_problems(entity.table, values)
    if problems:
        raise InvalidItemError(
            f"cannot be recorded: {'; '.join(problems)}", item_id=key_text(key)[:ITEM_ID_MAX]
        )
    return key, values


def to_record(entity: Entity[R], row: Row) -> R:
    """The record of a saved row (or of the values about to be saved)."""
    data = {name: row[name] for name in entity.field_names}
    for name, enum in entity.enums.items():
        data[name] = enum(data[name])
    return entity.record(**data)


def record_reader(entity: Entity[R]) -> Callable[[RowMapping], R]:
    """:func:`to_record` of ``entity``, as a one-argument function (for the batch readers)."""

    def read(row: RowMapping) -> R:
        return to_record(entity, row)

    return read


def refuse_duplicate_keys(
    entity: Entity[Any], prepared: list[tuple[tuple[Any, ...], dict[str, Any]]]
) -> None:
    """Refuse a save that names one row twice (which of the two would win?)."""
    seen: set[tuple[Any, ...]] = set()
    for key, _ in prepared:
        if key in seen:
            raise LedgerConflictError(
                f"{entity.name} {key_text(key)} appears twice in one save; save it once"
            )
        seen.add(key)


def guard_provider_id(
    entity: Entity[Any], key: tuple[Any, ...], values: dict[str, Any], old: RowMapping
) -> None:
    """Refuse to replace or clear a saved provider id (unless the row failed for good)."""
    assert entity.provider_id is not None
    saved = old[entity.provider_id]
    replaceable = old["status"] in entity.replaceable_statuses
    if saved is not None and values[entity.provider_id] != saved and not replaceable:
        raise LedgerConflictError(
            f"{entity.name} {key_text(key)} (row {old['id']}) already has {entity.provider_id} "
            f"{saved}; refusing to overwrite it with {values[entity.provider_id]!r}"
        )


def held(entity: Entity[Any], old: RowMapping) -> bool:
    """Whether the saved row is held by a person (a money table's row only)."""
    return entity.name in manual_rules.ENTITIES and manual_rules.is_held(
        old["status"], old["status_reason"]
    )


def merge_attempt(values: dict[str, Any], old: RowMapping) -> None:
    """Keep what ``mark_*_attempt`` committed when ``values`` were read before it.

    ``attempts`` works as a version number of the attempt columns: only ``mark_*_attempt``
    raises it, so a lower count means the caller's copy predates the last attempt.
    """
    if values["attempts"] < (old["attempts"] or 0):
        for name in ATTEMPT_FIELDS:
            values[name] = old[name]


def as_new_row(values: dict[str, Any], at: datetime) -> None:
    """Make ``values`` a row to insert: no id (the database gives one), created and updated
    ``at``."""
    values.pop("id")
    values["created_at"] = values["updated_at"] = at


def changed(values: Mapping[str, Any], old: RowMapping) -> bool:
    """Whether ``values`` differ from the saved row (timestamps and id aside)."""
    skip = ("id", "created_at", "updated_at")
    return any(values[name] != old[name] for name in values if name not in skip)
