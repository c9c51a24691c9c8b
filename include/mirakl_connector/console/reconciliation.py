"""The console's Reconciliation section: per run and per day, page, JSON and CSV (read-only).

Routes (mounted by :func:`mirakl_connector.console.app.create_app`, behind the same auth
dependency as every other route):

* ``GET /reconciliation``: the page. ``?run=<run id>`` shows that DAG run's reconciliation,
  ``?day=YYYY-MM-DD`` every reconciliation of that UTC day (the runs' and the day's own, see the
  ``payments_reconciliation`` DAG); no filter: today. ``flow``, ``scope`` (``run``/``day``) and
  ``kind`` (``mismatches`` by default, ``all``, or one kind) narrow it; items are paged;
* ``GET /api/reconciliation``: the same as JSON (amounts in minor units and as decimal strings);
* ``GET /export/reconciliation.csv``: every item of the filter, streamed in keyset batches.

What is read is what the ``reconcile`` steps wrote (:mod:`mirakl_connector.ledger.reconciliation`):
two small tables, indexed by run, by day and by reconciliation, so a page is a few queries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from sqlalchemy import Engine, and_, func, select

from mirakl_connector.console.params import base as root_path
from mirakl_connector.ledger.queries import aware_utc
from mirakl_connector.ledger.reconciliation import ReconciliationHeader
from mirakl_connector.ledger.schema import reconciliation_items, reconciliations
from mirakl_connector.reconciliation.compare import Kind
from mirakl_connector.reconciliation.flows import FLOWS

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
#: Days in the overview at the top of the page (the last ones, today included).
OVERVIEW_DAYS = 14
#: Reconciliations listed at most for one filter (a day has one per run of each DAG).
MAX_RECONCILIATIONS = 500
#: Rows per keyset batch of the CSV export.
EXPORT_BATCH = 5000
KINDS = tuple(str(k) for k in Kind)
SCOPES = ("run", "day")
MISMATCHES = "mismatches"


@dataclass(frozen=True)
class Filters:
    run_id: str | None = None
    day: date | None = None
    flow: str | None = None
    scope: str | None = None
    kind: str = MISMATCHES  # "mismatches", "all" or one of KINDS


@dataclass(frozen=True, kw_only=True)
class ReconciliationRun(ReconciliationHeader):
    """One reconciliation as the ``reconcile`` step recorded it, with its row id."""

    id: int

    @property
    def reconciles(self) -> bool:
        return self.mismatched == 0

    @property
    def headline(self) -> str:
        return (self.note or "").split("\n", 1)[0]


@dataclass(frozen=True)
class DayTotal:
    day: str
    reconciliations: int
    matched: int
    mismatched: int


@dataclass(frozen=True)
class ItemPage:
    items: list[dict[str, Any]]
    page: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))


_R, _I = reconciliations, reconciliation_items
#: The item columns the page, the JSON and the CSV show, with their reconciliation's.
ITEM_COLUMNS = (
    _I.c.id, _I.c.reconciliation_id, _I.c.flow, _R.c.scope, _R.c.run_id, _I.c.day, _I.c.kind,
    _I.c.item, _I.c.entity, _I.c.row_id, _I.c.mirakl_id, _I.c.provider,
    _I.c.provider_object_id, _I.c.currency, _I.c.ledger_amount, _I.c.provider_amount,
    _I.c.provider_amount_raw, _I.c.mirakl_amount, _I.c.reason,
)  # fmt: skip


class ReconciliationQueries:
    """Reads of the reconciliation tables (SQLAlchemy Core; SQLite and PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def reconciliations(self, filters: Filters) -> list[ReconciliationRun]:
        stmt = (
            select(_R)
            .where(*self._header_where(filters))
            .order_by(_R.c.reconciled_at.desc(), _R.c.id.desc())
            .limit(MAX_RECONCILIATIONS)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [_run(row) for row in rows]

    def days(self, end: date, count: int = OVERVIEW_DAYS) -> list[DayTotal]:
        """Per day of the ``count`` days up to ``end``: reconciliations, matched, mismatched."""
        start = (end - timedelta(days=count - 1)).isoformat()
        stmt = (
            select(_R.c.day, func.count(), func.sum(_R.c.matched), func.sum(_R.c.mismatched))
            .where(_R.c.day >= start, _R.c.day <= end.isoformat())
            .group_by(_R.c.day)
            .order_by(_R.c.day.desc())
        )
        with self._engine.connect() as conn:
            return [
                DayTotal(day, int(n), int(matched or 0), int(mismatched or 0))
                for day, n, matched, mismatched in conn.execute(stmt)
            ]

    def items(self, filters: Filters, *, page: int, size: int) -> ItemPage:
        where = self._item_where(filters)
        joined = _I.join(_R, _R.c.id == _I.c.reconciliation_id)
        count = select(func.count()).select_from(joined).where(*where)
        # mismatches first, then by reconciliation and item
        order = (_I.c.kind == str(Kind.MATCHED), _I.c.reconciliation_id.desc(), _I.c.id)
        stmt = (
            select(*ITEM_COLUMNS)
            .select_from(joined)
            .where(*where)
            .order_by(*order)
            .limit(size)
            .offset((page - 1) * size)
        )
        with self._engine.connect() as conn:
            total = int(conn.execute(count).scalar_one())
            rows = [dict(r) for r in conn.execute(stmt).mappings()]
        return ItemPage(rows, page, size, total)

    def iter_items(self, filters: Filters) -> Iterator[dict[str, Any]]:
        """Every item of ``filters``, by item id, in keyset batches (no OFFSET, no transaction
        held open while the client downloads)."""
        where = self._item_where(filters)
        joined = _I.join(_R, _R.c.id == _I.c.reconciliation_id)
        last = 0
        while True:
            stmt = (
                select(*ITEM_COLUMNS)
                .select_from(joined)
                .where(*where, _I.c.id > last)
                .order_by(_I.c.id)
                .limit(EXPORT_BATCH)
            )
            with self._engine.connect() as conn:
                rows = [dict(r) for r in conn.execute(stmt).mappings()]
            yield from rows
            if len(rows) < EXPORT_BATCH:
                return
            last = rows[-1]["id"]

    def _header_where(self, filters: Filters) -> list[Any]:
        where: list[Any] = []
        if filters.run_id:
            where.append(_R.c.run_id == filters.run_id)
        if filters.day:
            where.append(_R.c.day == filters.day.isoformat())
        if filters.flow:
            where.append(_R.c.flow == filters.flow)
        if filters.scope:
            where.append(_R.c.scope == filters.scope)
        return where

    def _item_where(self, filters: Filters) -> list[Any]:
        where = self._header_where(filters)
        if filters.day and not filters.run_id:
            # the items carry their day too: the day index serves a day's page directly
            where.append(_I.c.day == filters.day.isoformat())
        if filters.kind == MISMATCHES:
            where.append(_I.c.kind != str(Kind.MATCHED))
        elif filters.kind != "all":
            where.append(_I.c.kind == filters.kind)
        return [and_(*where)] if where else []


def _run(row: Any) -> ReconciliationRun:
    return ReconciliationRun(
        id=int(row["id"]),
        flow=row["flow"],
        scope=row["scope"],
        scope_key=row["scope_key"],
        run_id=row["run_id"],
        day=row["day"],
        note=row["note"],
        reconciled_at=aware_utc(row["reconciled_at"]),
        window_start=aware_utc(row["window_start"]),
        window_end=aware_utc(row["window_end"]),
        matched=int(row["matched"]),
        mismatched=int(row["mismatched"]),
        provider_calls=int(row["provider_calls"]),
        mirakl_calls=int(row["mirakl_calls"]),
    )


# -- routes ---------------------------------------------------------------------------------------


def parse_filters(
    run: str | None,
    day: str | None,
    flow: str | None,
    scope: str | None,
    kind: str | None,
    *,
    today: date | None = None,
) -> Filters:
    """The request's filters; no run and no day: today (UTC). A bad value is a 400."""
    run_id = run.strip() if run and run.strip() else None
    which: date | None = None
    if day and day.strip():
        try:
            which = date.fromisoformat(day.strip())
        except ValueError:
            raise HTTPException(400, f"day must be a date (YYYY-MM-DD), got {day!r}") from None
    elif run_id is None:
        which = today or datetime.now(UTC).date()
    if flow and flow not in FLOWS:
        raise HTTPException(400, f"flow must be one of {', '.join(FLOWS)}")
    if scope and scope not in SCOPES:
        raise HTTPException(400, f"scope must be one of {', '.join(SCOPES)}")
    chosen = kind or MISMATCHES
    if chosen not in (MISMATCHES, "all", *KINDS):
        raise HTTPException(400, f"kind must be mismatches, all or one of {', '.join(KINDS)}")
    return Filters(run_id=run_id, day=which, flow=flow or None, scope=scope or None, kind=chosen)


@dataclass(frozen=True)
class FilterParams:
    """The filters' query parameters as given (a FastAPI dependency: ``Depends(FilterParams)``),
    as the page, the JSON and the CSV export all take them; :meth:`filters` checks them."""

    run: str | None = None
    day: str | None = None
    flow: str | None = None
    scope: str | None = None
    kind: str | None = None

    def filters(self, *, default_kind: str | None = None) -> Filters:
        """The checked filters; ``default_kind`` stands for a missing (or empty) ``kind``."""
        kind = self.kind or default_kind
        return parse_filters(self.run, self.day, self.flow, self.scope, kind)


def reconciliation_router(
    queries: Callable[[], ReconciliationQueries],
    *,
    csv_response: Callable[..., StreamingResponse],
    decimal: Callable[[int | None, str | None], str],
) -> APIRouter:
    """The routes above; ``csv_response`` and ``decimal`` are the console's own CSV writer and
    amount formatting (one way to export and to show money)."""
    from mirakl_connector.console import reconciliation_html as pages

    router = APIRouter()

    @router.get("/reconciliation", response_class=HTMLResponse)
    async def page(
        request: Request,
        given: FilterParams = Depends(FilterParams),
        page: int = Query(1, ge=1),
        size: int = Query(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE),
    ) -> HTMLResponse:
        filters = given.filters()

        def load() -> pages.ReconciliationPage:
            q = queries()
            today = datetime.now(UTC).date()
            return pages.ReconciliationPage(
                filters=filters,
                days=q.days(today),
                runs=q.reconciliations(filters),
                items=q.items(filters, page=page, size=size),
            )

        data = await run_in_threadpool(load)
        return HTMLResponse(
            pages.render(data, root_path(request), dict(request.query_params), decimal)
        )

    @router.get("/api/reconciliation")
    async def api(
        given: FilterParams = Depends(FilterParams),
        page: int = Query(1, ge=1),
        size: int = Query(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE),
    ) -> JSONResponse:
        filters = given.filters()

        def load() -> tuple[list[ReconciliationRun], ItemPage]:
            q = queries()
            return q.reconciliations(filters), q.items(filters, page=page, size=size)

        runs, items = await run_in_threadpool(load)
        return JSONResponse(
            {
                "filters": {
                    "run": filters.run_id,
                    "day": filters.day.isoformat() if filters.day else None,
                    "flow": filters.flow,
                    "scope": filters.scope,
                    "kind": filters.kind,
                },
                "reconciles": all(r.reconciles for r in runs),
                "reconciliations": [_run_json(r) for r in runs],
                "page": items.page,
                "size": items.size,
                "total": items.total,
                "pages": items.pages,
                "items": [_item_json(i, decimal) for i in items.items],
            }
        )

    @router.get("/export/reconciliation.csv")
    async def export(
        given: FilterParams = Depends(FilterParams),
    ) -> StreamingResponse:
        filters = given.filters(default_kind="all")
        lines = (_csv_line(row, decimal) for row in queries().iter_items(filters))
        name = "reconciliation_" + (f"run_{filters.run_id}" if filters.run_id else f"{filters.day}")
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        return csv_response(f"{safe}.csv", list(CSV_HEADER), lines)

    return router


CSV_HEADER = (
    "reconciliation_id", "flow", "scope", "run_id", "day", "kind", "item", "entity", "row_id",
    "mirakl_id", "provider", "provider_object_id", "currency", "ledger_amount_minor",
    "ledger_amount", "provider_amount_minor", "provider_amount", "provider_amount_raw",
    "mirakl_amount_minor", "mirakl_amount", "reason",
)  # fmt: skip


def _csv_line(row: dict[str, Any], decimal: Callable[[int | None, str | None], str]) -> list:
    cur = row["currency"]
    return [
        row["reconciliation_id"], row["flow"], row["scope"], row["run_id"], row["day"],
        row["kind"], row["item"], row["entity"], row["row_id"], row["mirakl_id"],
        row["provider"], row["provider_object_id"], cur,
        row["ledger_amount"], decimal(row["ledger_amount"], cur),
        row["provider_amount"], decimal(row["provider_amount"], cur), row["provider_amount_raw"],
        row["mirakl_amount"], decimal(row["mirakl_amount"], cur), row["reason"],
    ]  # fmt: skip


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _run_json(run: ReconciliationRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "flow": run.flow,
        "scope": run.scope,
        "run_id": run.run_id,
        "day": run.day,
        "reconciled_at": _iso(run.reconciled_at),
        "window_start": _iso(run.window_start),
        "window_end": _iso(run.window_end),
        "matched": run.matched,
        "mismatched": run.mismatched,
        "reconciles": run.reconciles,
        "provider_calls": run.provider_calls,
        "mirakl_calls": run.mirakl_calls,
        "headline": run.headline,
        "note": run.note,
    }


def _item_json(
    row: dict[str, Any], decimal: Callable[[int | None, str | None], str]
) -> dict[str, Any]:
    cur = row["currency"]
    out = {k: row[k] for k in ("id", "reconciliation_id", "flow", "scope", "run_id", "day",
                               "kind", "item", "entity", "row_id", "mirakl_id", "provider",
                               "provider_object_id", "currency", "provider_amount_raw",
                               "reason")}  # fmt: skip
    for name in ("ledger_amount", "provider_amount", "mirakl_amount"):
        out[f"{name}_minor"] = row[name]
        out[name] = decimal(row[name], cur)
    return out
