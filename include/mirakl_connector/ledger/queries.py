"""Read-only queries of the payments console: what moved, what waits, what failed, what is in doubt.

Every query is aggregate SQL or one page of rows (SQLAlchemy Core, SQLite and PostgreSQL): the
database does the counting, never Python over a million rows. The four money tables (transfers,
refunds, payouts, Hyperwallet payments) are read through one shape, :class:`Item`, built by a
``UNION ALL`` of one ``SELECT`` per table.

Definitions, the same the workflows use:

* **moved**: the row entered its "the provider holds the money movement" status (a Stripe
  transfer, reversal, refund or payout created; a Hyperwallet payment created or completed). The
  day is the one of that status change in ``ledger_events`` (UTC), so a row decided on Monday and
  sent on Tuesday counts on Tuesday. Summed per day in ``moved_daily`` as the events are written
  (:mod:`mirakl_connector.ledger.moved_daily`). Rows imported at cutover moved at the incumbent:
  never "moved" here, shown apart (``moved(..., imported=True)``).
* **waits**: status ON_HOLD (re-evaluated by every run); its age counts from the row's creation.
* **failed**: status FAILED.
* **in doubt**: a call was sent (``attempted_at`` set) and the provider's id is not recorded, while
  the row is not in a terminal status: the one definition,
  :attr:`~mirakl_connector.ledger.records.ProviderWrite.in_doubt`, here in SQL from the same
  ``PROVIDER_ID`` and ``SETTLED`` of each record. :mod:`mirakl_connector.stripe.exactly_once`
  resolves it by replaying the key or looking the object up (or a person, on the console:
  :mod:`mirakl_connector.console.actions`).

The console's actions are read here too (``console_actions``: who did what, when, on which item,
why, with what result), per item and the newest ones; they are written by
:mod:`mirakl_connector.ledger.manual_actions`.

Amounts are integer minor units with their currency; :func:`mirakl_connector.core.money.from_minor`
turns them into a ``Decimal`` for display.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from datetime import date
from typing import Any

from sqlalchemy import (
    BigInteger,
    Engine,
    Select,
    String,
    and_,
    cast,
    false,
    func,
    literal,
    null,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.sql.elements import ColumnElement

from mirakl_connector.ledger import schema
from mirakl_connector.ledger.engine import create_ledger_engine
from mirakl_connector.ledger.manual_actions import ActionRecord
from mirakl_connector.ledger.query_shapes import (
    CATEGORIES,
    DEFAULT_DAYS,
    DEFAULT_PAGE_SIZE,
    FIRST_BATCH,
    HW_OPERATOR_FEE,
    HW_PAYMENT,
    MAX_DAYS,
    MAX_PAGE_SIZE,
    PAYOUT,
    PROVIDERS,
    REFUND,
    REVERSAL,
    SETTLEMENT_TRANSFER,
    SPLIT,
    WORKFLOWS,
    Category,
    DateRange,
    HistoryEvent,
    Item,
    ItemFilters,
    MovedRow,
    Page,
    ReasonGroup,
    RetryEntry,
    Totals,
    as_date,
    aware_utc,
    totals,
)
from mirakl_connector.ledger.query_sources import (
    ITEM_COLUMNS,
    SOURCE_BY_ENTITY,
    SOURCES,
    SUBTYPE_COLUMNS,
    Source,
    action_record,
    iso_text,
    item_of_row,
    moved_kind,
    text_id_match,
    unindexed,
)

# -- the queries ----------------------------------------------------------------------------

#: The console reads everything from here (the shapes and sources are re-exported).
__all__ = [
    "CATEGORIES",
    "Category",
    "ConsoleQueries",
    "DEFAULT_DAYS",
    "DEFAULT_PAGE_SIZE",
    "DateRange",
    "HW_OPERATOR_FEE",
    "HW_PAYMENT",
    "HistoryEvent",
    "Item",
    "ItemFilters",
    "MAX_DAYS",
    "MAX_PAGE_SIZE",
    "MovedRow",
    "PAYOUT",
    "PROVIDERS",
    "Page",
    "READER_SQLITE_MMAP_BYTES",
    "REFUND",
    "REVERSAL",
    "ReasonGroup",
    "RetryEntry",
    "SETTLEMENT_TRANSFER",
    "SOURCES",
    "SOURCE_BY_ENTITY",
    "SPLIT",
    "Totals",
    "WORKFLOWS",
    "aware_utc",
    "create_reader_engine",
    "totals",
    "unindexed",
]

#: Bytes of a SQLite ledger the console maps into memory (SQLite caps it at its build's limit,
#: 2 GB by default). Its lists and exports read tens of thousands of rows scattered over the
#: file: through the map they cost about half of what copies into each connection's 2 MB page
#: cache cost (``bench/console.py``). Only the console's read connections map the file.
READER_SQLITE_MMAP_BYTES = 2**31


def create_reader_engine(url: str) -> Engine:
    """The engine the console reads the ledger through (the plugin's, the benchmark's)."""
    return create_ledger_engine(url, sqlite_mmap_bytes=READER_SQLITE_MMAP_BYTES)


class ConsoleQueries:
    """The console's reads over a ledger database (an engine of it; nothing is written)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def engine(self) -> Engine:
        """The read engine (the Reconciliation section reads its own tables with it)."""
        return self._engine

    # moved ----------------------------------------------------------------------------------

    def moved(
        self,
        period: DateRange,
        *,
        currency: str | None = None,
        provider: str | None = None,
        workflow: str | None = None,
        imported: bool = False,
    ) -> list[MovedRow]:
        """Money moved per day, currency, provider and workflow in ``period``, by day.

        Read from ``moved_daily`` (:mod:`mirakl_connector.ledger.moved_daily`): a year is a few
        thousand rows, never a join over every status event. Rows imported at cutover moved at
        the incumbent: left out, unless ``imported`` asks for them alone (by import day).
        """
        table = schema.moved_daily
        start, end = period.start.isoformat(), period.end.isoformat()
        # the rows as stored (one per day, entity, subtype, currency and origin), summed here
        # per workflow: a GROUP BY in the database would only sort them first
        stmt = select(
            table.c.day,
            table.c.entity,
            table.c.subtype,
            table.c.currency,
            table.c.count,
            table.c.amount,
        ).where(
            table.c.day >= start,
            table.c.day <= end,
            table.c.origin != "" if imported else table.c.origin == "",
        )
        if currency:
            stmt = stmt.where(table.c.currency == currency)
        with self._engine.connect() as conn:
            rows = conn.execute(stmt).all()
        sums: dict[tuple[str, str, str, str], list[int]] = {}
        # (entity, subtype) -> (provider, workflow), None when filtered out: a few kinds a year
        kinds: dict[tuple[str, str], tuple[str, str] | None] = {}
        for day, entity, subtype, cur, count, amount in rows:
            kind = kinds.get((entity, subtype), ())
            if kind == ():
                kind = kinds[(entity, subtype)] = moved_kind(entity, subtype, provider, workflow)
            if kind is None:
                continue
            bucket = sums.setdefault((day, cur, *kind), [0, 0])
            bucket[0] += int(count)
            bucket[1] += int(amount)
        days: dict[str, date] = {}
        return [
            MovedRow(days.get(day) or days.setdefault(day, as_date(day)), cur, prov, wf, n, amt)
            for (day, cur, prov, wf), (n, amt) in sorted(sums.items())
        ]

    # item lists -------------------------------------------------------------------------------

    def summary(self, category: Category | None) -> list[ReasonGroup]:
        """``category``'s items (``None``: every item, as ``/api/summary/all`` asks) grouped by
        workflow and reason, the largest groups first.

        Grouped in each table (only the columns the groups need, through the table's status
        index), then the few groups of the four tables put together here: no wide
        ``UNION ALL`` of every row of the category.
        """
        parts = []
        for source in SOURCES:
            where = self._where(source, category, ItemFilters())
            if where is None:
                continue
            c = source.table.c
            # grouped by the column the workflow derives from, never by a constant (PostgreSQL
            # refuses one in GROUP BY); the workflow is named here, as for ``moved``. Unindexed:
            # SQLite would otherwise read the whole (type, status) index for its order.
            name = SUBTYPE_COLUMNS.get(source.entity)
            subtype = literal("", String) if name is None else unindexed(c[name])
            keys = [c.status_reason] if name is None else [subtype, c.status_reason]
            parts.append(
                select(
                    literal(source.entity, String).label("entity"),
                    subtype.label("subtype"),
                    c.status_reason.label("reason"),
                    func.count().label("count"),
                    func.min(c.created_at).label("oldest"),
                    func.max(c.updated_at).label("latest"),
                )
                .where(*where)
                .group_by(*keys)
            )
        with self._engine.connect() as conn:
            rows = conn.execute(union_all(*parts)).all()
        merged: dict[tuple[str, str | None], list[Any]] = {}
        for entity, subtype, reason, count, oldest, latest in rows:
            key = (SOURCE_BY_ENTITY[entity].workflow_of(subtype), reason)
            oldest, latest = aware_utc(oldest), aware_utc(latest)
            group = merged.get(key)
            if group is None:
                merged[key] = [int(count), oldest, latest]
            else:
                group[0] += int(count)
                group[1], group[2] = min(group[1], oldest), max(group[2], latest)
        groups = [
            ReasonGroup(workflow=wf, reason=reason, count=n, oldest=oldest, latest=latest)
            for (wf, reason), (n, oldest, latest) in merged.items()
        ]
        # no reason (None) before any reason, on both backends
        groups.sort(key=lambda g: (-g.count, g.workflow, g.reason is not None, g.reason or ""))
        return groups

    def items(
        self,
        category: Category | None,
        filters: ItemFilters | None = None,
        *,
        page: int = 1,
        size: int = DEFAULT_PAGE_SIZE,
    ) -> Page:
        """One page of items (oldest first) of ``category`` (``None``: every item)."""
        if page < 1:
            raise ValueError("page numbers start at 1")
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise ValueError(f"a page holds 1 to {MAX_PAGE_SIZE} items")
        filters = filters or ItemFilters()
        # each table gives only its first page * size rows in (created_at, id) order (its
        # status index): the page is among them, whatever the size of the category
        query = self._items_query(category, filters, limit=page * size).subquery()
        stmt = (
            select(query)
            .order_by(query.c.created_at, query.c.entity, query.c.id)
            .limit(size)
            .offset((page - 1) * size)
        )
        with self._engine.connect() as conn:
            total = self._count(conn, category, filters)
            rows = conn.execute(stmt).mappings().all()
        return Page([item_of_row(r) for r in rows], total, page, size)

    def _count(self, conn: Any, category: Category | None, filters: ItemFilters) -> int:
        """How many items match: one ``count(*)`` per table (answered by its status index when
        only the category filters), summed; never a count over a ``UNION ALL`` of wide rows."""
        counts = []
        for source in SOURCES:
            if filters.provider and source.provider != filters.provider:
                continue
            where = self._where(source, category, filters)
            if where is not None:
                counts.append(
                    select(func.count().label("n")).select_from(source.table).where(*where)
                )
        if not counts:
            return 0
        return sum(int(n) for (n,) in conn.execute(union_all(*counts)).all())

    def iter_items(
        self, category: Category | None, filters: ItemFilters | None = None, *, batch: int = 20_000
    ) -> Iterator[Item]:
        """Every item of ``category`` (oldest first), streamed: see :meth:`iter_rows`."""
        for row in self.iter_rows(category, filters, batch=batch):
            yield item_of_row(row._mapping)

    def iter_rows(
        self,
        category: Category | None,
        filters: ItemFilters | None = None,
        *,
        batch: int = 20_000,
        times_as_text: bool = False,
    ) -> Iterator[Any]:
        """Every item of ``category`` as raw rows (the CSV export), oldest first.

        Each table is read in its own keyset batches, in the order of its (status, created_at)
        index: each batch is one short query *after* the last row of the previous one
        (``(created_at, id) > last``), never an ``OFFSET`` that re-reads what came before, and
        no read transaction held open while the client downloads (on SQLite that would block
        the WAL checkpoint of the writers; on PostgreSQL, hold back vacuum). The tables' sorted
        streams are merged here on (created_at, entity, id), the page's order: the database
        never sorts the union.

        :param times_as_text: the three timestamps as ISO 8601 text in UTC
            (``2024-05-01T12:00:00.000000+00:00``), formatted by the database: the export's
            cells, without a Python datetime per value.
        """
        if batch < 1:
            raise ValueError("batch must be at least 1")
        filters = filters or ItemFilters()
        streams = []
        for source in SOURCES:
            if filters.provider and source.provider != filters.provider:
                continue
            where = self._where(source, category, filters)
            if where is not None:
                streams.append(self._iter_table(source, where, batch, times_as_text))
        created = ITEM_COLUMNS.index("created_at")
        yield from heapq.merge(*streams, key=lambda row: (row[created], row[0], row[1]))

    def _iter_table(
        self, source: Source, where: list[ColumnElement[bool]], batch: int, times_as_text: bool
    ) -> Iterator[Any]:
        """One table's rows matching ``where``, in (created_at, id) order, by keyset batches."""
        c = source.table.c
        dialect = self._engine.dialect.name if times_as_text else None
        base = self._select_items(source, times_dialect=dialect).where(*where)
        after: tuple[Any, int] | None = None
        # small first batches: the merge needs one of every table before the first line goes
        # out; then up to ``batch`` rows a query
        size = min(batch, FIRST_BATCH)
        while True:
            stmt = base
            if after is not None:
                stmt = stmt.where(tuple_(c.created_at, c.id) > tuple_(*after))
            stmt = stmt.order_by(c.created_at, c.id).limit(size)
            with self._engine.connect() as conn:
                rows = conn.execute(stmt).all()
            yield from rows
            if len(rows) < size:
                return
            tail = rows[-1]._mapping
            after = (aware_utc(tail["created_at"]), tail["id"])
            size = min(batch, size * 4)

    def retry_queue(self, *, limit: int = MAX_PAGE_SIZE) -> tuple[list[RetryEntry], int]:
        """Items a workflow retries on its next runs (``pending_items``: shops, bank accounts,
        invoices that failed), oldest failure first, and how many there are in all."""
        table = schema.pending_items
        stmt = select(table).order_by(table.c.first_failed_at, table.c.id).limit(limit)
        with self._engine.connect() as conn:
            total = int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            rows = conn.execute(stmt).mappings().all()
        entries = [
            RetryEntry(
                workflow=r["workflow"],
                item_id=r["item_id"],
                reason=r["reason"],
                attempts=int(r["attempts"] or 0),
                first_failed_at=aware_utc(r["first_failed_at"]),
                last_failed_at=aware_utc(r["last_failed_at"]),
            )
            for r in rows
        ]
        return entries, total

    def get_item(self, entity: str, row_id: int) -> Item | None:
        source = SOURCE_BY_ENTITY.get(entity)
        if source is None:
            return None
        stmt = self._select_items(source).where(source.table.c.id == row_id)
        with self._engine.connect() as conn:
            row = conn.execute(stmt).mappings().first()
        return item_of_row(row) if row is not None else None

    def history(self, entity: str, row_id: int) -> list[HistoryEvent]:
        """Every status change of one row, oldest first (``ledger_events``)."""
        events = schema.ledger_events
        stmt = (
            select(
                events.c.old_status,
                events.c.new_status,
                events.c.reason,
                events.c.run_id,
                events.c.at,
            )
            .where(events.c.entity == entity, events.c.entity_id == row_id)
            .order_by(events.c.id)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [HistoryEvent(r[0], r[1], r[2], r[3], aware_utc(r[4])) for r in rows]

    def actions(self, entity: str, entity_id: int, *, limit: int = 200) -> list[ActionRecord]:
        """The console actions on one item (or a shop: ``account_mapping``), oldest first."""
        table = schema.console_actions
        stmt = (
            select(table)
            .where(table.c.entity == entity, table.c.entity_id == entity_id)
            .order_by(table.c.at, table.c.id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [action_record(r) for r in conn.execute(stmt).mappings()]

    def recent_actions(self, *, limit: int = 50) -> list[ActionRecord]:
        """The newest console actions, newest first (done and refused)."""
        table = schema.console_actions
        stmt = select(table).order_by(table.c.at.desc(), table.c.id.desc()).limit(limit)
        with self._engine.connect() as conn:
            return [action_record(r) for r in conn.execute(stmt).mappings()]

    # building blocks --------------------------------------------------------------------------

    def _items_query(
        self, category: Category | None, filters: ItemFilters, *, limit: int | None = None
    ) -> Any:
        """The items of every table as one ``UNION ALL``.

        With ``limit``, each table gives only its first ``limit`` rows in (created_at, id)
        order, the order of its ``ix_*_status_created`` index: at most ``limit`` rows per table,
        whatever the size of the ledger.
        """
        parts = []
        for source in SOURCES:
            if filters.provider and source.provider != filters.provider:
                continue
            where = self._where(source, category, filters)
            if where is None:
                continue
            part = self._select_items(source).where(*where)
            if limit is not None:
                c = source.table.c
                part = select(part.order_by(c.created_at, c.id).limit(limit).subquery())
            parts.append(part)
        if not parts:  # nothing can match: an empty select of the same shape
            return self._select_items(SOURCES[0]).where(false())
        return union_all(*parts) if len(parts) > 1 else parts[0]

    @staticmethod
    def _select_items(source: Source, *, times_dialect: str | None = None) -> Select[Any]:
        """The columns of :data:`ITEM_COLUMNS` of one table; with ``times_dialect`` (the
        database's dialect name) the timestamps as ISO text (:func:`iso_text`)."""
        c = source.table.c

        def stamp(column: Any) -> Any:
            return column if times_dialect is None else iso_text(column, times_dialect)

        return select(
            literal(source.entity, String).label("entity"),
            c.id.label("id"),
            literal(source.provider, String).label("provider"),
            source.workflow().label("workflow"),
            source.mirakl_id.label("mirakl_id"),
            # typed NULLs: PostgreSQL types an untyped NULL of a subquery as text
            (source.shop if source.shop is not None else cast(null(), BigInteger)).label("shop_id"),
            (source.account if source.account is not None else cast(null(), String)).label(
                "account"
            ),
            c.status.label("status"),
            c.status_reason.label("reason"),
            c.amount.label("amount"),
            c.currency.label("currency"),
            source.provider_id.label("provider_object_id"),
            c.attempts.label("attempts"),
            stamp(c.attempted_at).label("attempted_at"),
            stamp(c.created_at).label("created_at"),
            stamp(c.updated_at).label("updated_at"),
        )

    @staticmethod
    def _where(
        source: Source, category: Category | None, filters: ItemFilters
    ) -> list[ColumnElement[bool]] | None:
        c = source.table.c
        where: list[ColumnElement[bool]] = []
        if category == "waiting":
            where.append(c.status == source.on_hold)
        elif category == "failed":
            where.append(c.status == source.failed)
        elif category == "in_doubt":
            # ProviderWrite.in_doubt in SQL: attempted, no provider id, in an open status
            where += [
                # the terms of the table's partial index ``ix_*_in_doubt`` (schema step 12),
                # as it writes them: it holds these rows alone, in creation order
                c.attempted_at.is_not(None),
                unindexed(source.provider_id).is_(None),
                # checked on those few rows, not looked up in the status index
                unindexed(c.status).in_(sorted(source.open_statuses)),
            ]
        elif category is not None:
            raise ValueError(f"unknown category {category!r}")
        if filters.status:
            where.append(c.status == filters.status)
        if filters.workflow:
            wf = source.workflow_filter([filters.workflow])
            if wf is None:
                return None
            where.append(wf)
        if filters.currency:
            where.append(c.currency == filters.currency.upper())
        if filters.shop_id is not None:
            if source.shop is None:
                return None
            where.append(source.shop == filters.shop_id)
        if filters.text_id:
            match = text_id_match(source, filters.text_id.strip())
            if match is None:
                return None
            where.append(match)
        if filters.created_before is not None:
            where.append(c.created_at < filters.created_before)
        if filters.updated_since is not None:
            where.append(c.updated_at >= filters.updated_since)
        if filters.run_id:
            events = schema.ledger_events  # ix_ledger_events_run (schema step 9)
            where.append(
                c.id.in_(
                    select(events.c.entity_id).where(
                        events.c.run_id == filters.run_id, events.c.entity == source.entity
                    )
                )
            )
        return [and_(*where)] if where else []
