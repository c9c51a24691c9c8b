"""The column types, sizes and checks of the ledger's tables (see :mod:`.schema`).

Timestamps use :class:`UTCDateTime`: PostgreSQL keeps a ``timestamptz``; SQLite has no time zone
type, so the value is stored as naive UTC and made aware again when read. Either way the workflows
only ever see aware UTC datetimes. :func:`value_problems` says, before a write, what a column
would refuse, so one absurd value fails its item and not the batch.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Index, Integer, String, Table, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

#: Longest ``status_reason`` kept; longer reasons are cut (the start says what went wrong).
STATUS_REASON_MAX = 1024

ID_LEN = 255
CODE_LEN = 64
#: a transfer type, a colon and a Mirakl id
ITEM_LEN = CODE_LEN + 1 + ID_LEN


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    Naive datetimes are refused on the way in: a naive value is ambiguous (local time of which
    worker?) and in a ledger of money movements we would rather fail loudly than guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given to the ledger; use UTC")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        stamp: datetime = value
        if stamp.tzinfo is None:
            return stamp.replace(tzinfo=UTC)
        return stamp.astimezone(UTC)


def pk() -> Mapped[int]:
    # SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias), not a BIGINT one.
    return mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )


class Base(DeclarativeBase):
    """Declarative base of the ledger; ``Base.metadata`` holds every ledger table."""


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class Imported:
    """Where a row imported from an incumbent connector came from (schema step 5).

    ``imported_from`` names the incumbent (``stripe-mirakl-connector``, ``hyperwallet-mirakl-
    connector``), ``imported_id`` the row's id there. Both stay NULL on rows this connector made.
    Not part of the records: only the cutover import writes them, and no workflow decides on them.
    """

    imported_from: Mapped[str | None] = mapped_column(String(CODE_LEN))
    imported_id: Mapped[str | None] = mapped_column(String(ID_LEN))


def in_doubt_index(table: str, provider_id: str) -> Index:
    """The partial index of a money table's rows sent without a provider id (schema step 12).

    What the payments console calls *in doubt* (``attempted_at`` set, no provider object id,
    status not terminal): a handful of rows, in creation order, instead of every open row of
    the status index. The predicate is written as the console's query writes it
    (``console.queries.unindexed``): ``(provider_id || '') IS NULL`` keeps SQLite off the
    provider id's own index, whose NULL entries (every row not sent yet) it would otherwise
    read, and a partial index is used only for a query repeating its predicate term for term.
    """
    where = text(f"attempted_at IS NOT NULL AND ({provider_id} || '') IS NULL")
    return Index(f"ix_{table}_in_doubt", "created_at", sqlite_where=where, postgresql_where=where)


#: Range of each integer column type on PostgreSQL (SQLite's INTEGER is 64-bit everywhere).
_INTEGER_RANGES = ((BigInteger, 63), (Integer, 31))


def value_problems(table: Table, values: dict[str, Any]) -> list[str]:
    """What in ``values`` the database would refuse for ``table``, one text per column.

    The ledger checks a row with this before writing it: a value the database cannot hold (an
    amount beyond ``bigint``, a shop id ≥ 2^63, an id longer than its column, a NUL character)
    would otherwise fail the whole batch's statement, on one backend and not the other (SQLite
    does not enforce string lengths), instead of that one item with a reason.
    """
    problems = []
    for name, value in values.items():
        column = table.c.get(name)
        if column is None or value is None or isinstance(value, bool):
            continue
        if isinstance(value, int):
            bits = next((b for kind, b in _INTEGER_RANGES if isinstance(column.type, kind)), 63)
            if not -(2**bits) <= value < 2**bits:
                problems.append(f"{name} {value} is out of range")
        elif isinstance(value, str):
            length = getattr(column.type, "length", None)
            if length is not None and len(value) > length:
                problems.append(f"{name} is longer than {length} characters")
            if "\x00" in value:
                problems.append(f"{name} contains a NUL character")
    return problems


def truncate_reason(reason: str | None) -> str | None:
    """Cut ``reason`` to :data:`STATUS_REASON_MAX` characters, keeping its start.

    Stripe and Mirakl error texts can be long (HTML error pages); the start names the failure,
    and the final ``…`` tells a reader the text was cut.
    """
    if reason is None or len(reason) <= STATUS_REASON_MAX:
        return reason
    return reason[: STATUS_REASON_MAX - 1] + "…"
