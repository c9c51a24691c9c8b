"""What the payments console's queries return, and the words they use (pure).

The workflows and providers a row is shown under, the page and date-range limits, and the result
shapes: :class:`Item` (one money row, whatever its table), :class:`MovedRow`, :class:`Page`...
The queries themselves are in :mod:`.queries`, the tables seen through one shape in
:mod:`.query_sources`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

#: Largest page a caller may ask for.
MAX_PAGE_SIZE = 500
#: Default page size of the item lists.
DEFAULT_PAGE_SIZE = 50
#: Rows of the first keyset batch of each table in an export (then 4 times more each batch).
FIRST_BATCH = 1000
#: Default width of the "moved" date range, in days (today included).
DEFAULT_DAYS = 30
#: Widest date range accepted (a year and a day): a wider one is refused, not silently cut.
MAX_DAYS = 366

Category = Literal["waiting", "failed", "in_doubt"]
CATEGORIES: tuple[Category, ...] = ("waiting", "failed", "in_doubt")

# Workflow names shown on the page (one per kind of money movement).
SPLIT = "split"
REVERSAL = "reversal"
SETTLEMENT_TRANSFER = "settlement transfer"
REFUND = "refund"
PAYOUT = "payout"
HW_PAYMENT = "hyperwallet payment"
HW_OPERATOR_FEE = "hyperwallet operator fee"
WORKFLOWS = (
    SPLIT,
    REVERSAL,
    SETTLEMENT_TRANSFER,
    REFUND,
    PAYOUT,
    HW_PAYMENT,
    HW_OPERATOR_FEE,
)
PROVIDERS = ("stripe", "hyperwallet")


# -- results --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MovedRow:
    """Money moved on one UTC day, in one currency, by one provider and workflow."""

    day: date
    currency: str
    provider: str
    workflow: str
    count: int
    amount: int  # minor units of ``currency``


@dataclass(frozen=True)
class Item:
    """One money movement row, whatever its table."""

    entity: str
    id: int
    provider: str
    workflow: str
    mirakl_id: str
    shop_id: int | None
    account: str | None
    status: str
    reason: str | None
    amount: int | None
    currency: str | None
    provider_object_id: str | None
    attempts: int
    attempted_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def key(self) -> str:
        """``entity:id``, how the page and the API name an item."""
        return f"{self.entity}:{self.id}"


@dataclass(frozen=True)
class ReasonGroup:
    """Items of one category sharing a workflow and a reason."""

    workflow: str
    reason: str | None
    count: int
    oldest: datetime  # creation of the oldest row of the group
    #: newest ``updated_at`` of the group (for FAILED: the last time one was decided)
    latest: datetime


@dataclass(frozen=True)
class Page:
    items: list[Item]
    total: int
    page: int
    size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))


@dataclass(frozen=True)
class HistoryEvent:
    old_status: str | None
    new_status: str
    reason: str | None
    run_id: str | None
    at: datetime


@dataclass(frozen=True)
class RetryEntry:
    """One item of a workflow's retry queue (``pending_items``)."""

    workflow: str
    item_id: str
    reason: str | None
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime


@dataclass(frozen=True)
class ItemFilters:
    """Filters of the item lists; empty values mean "any"."""

    status: str | None = None
    workflow: str | None = None
    currency: str | None = None
    shop_id: int | None = None
    text_id: str | None = None  # exact Mirakl id, provider object id or account id
    provider: str | None = None
    #: the Airflow run id that wrote a status event of the item (what a run summary links to)
    run_id: str | None = None
    #: only rows created before this instant (e.g. on hold for longer than N days)
    created_before: datetime | None = None
    #: only rows last changed at or after this instant
    updated_since: datetime | None = None


@dataclass(frozen=True)
class DateRange:
    """Whole UTC days, both ends included."""

    start: date
    end: date

    @classmethod
    def last_days(cls, days: int = DEFAULT_DAYS, *, today: date | None = None) -> DateRange:
        today = today or datetime.now(UTC).date()
        return cls(today - timedelta(days=days - 1), today)

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"the range ends ({self.end}) before it starts ({self.start})")
        if (self.end - self.start).days + 1 > MAX_DAYS:
            raise ValueError(f"a range covers at most {MAX_DAYS} days")

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        """``[start 00:00 UTC, day after end 00:00 UTC)``."""
        return (
            datetime.combine(self.start, time(), UTC),
            datetime.combine(self.end + timedelta(days=1), time(), UTC),
        )

    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]


@dataclass(frozen=True)
class Totals:
    """Sum of a moved table per currency (amounts of different currencies never added)."""

    by_currency: dict[str, int] = field(default_factory=dict)
    count: int = 0


def totals(rows: Sequence[MovedRow]) -> Totals:
    by_currency: dict[str, int] = {}
    for row in rows:
        by_currency[row.currency] = by_currency.get(row.currency, 0) + row.amount
    return Totals(dict(sorted(by_currency.items())), sum(r.count for r in rows))


def aware_utc(value: Any) -> Any:
    """Datetimes from a UNION come back raw on SQLite (text or naive): make them aware UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))
