"""The payments console as a FastAPI app: an HTML page, a JSON API and CSV exports, read-only.

Routes (relative to where the app is mounted):

* ``GET /``: the page: money moved (charts and table) for a date range, what waits, what failed
  and what is in doubt, with filters and pages;
* ``GET /items/{entity}/{id}``: one item and its history;
* ``GET /api/moved``, ``/api/summary/{category}``, ``/api/items``, ``/api/items/{entity}/{id}``:
  the same data as JSON (amounts in minor units with their currency, and as a decimal string);
* ``GET /export/moved.csv``, ``/export/items.csv``: CSV exports of the table and of the lists;
* with ``ConsoleAppConfig.approvals``: the items held by the approval gate on the page and under
  ``GET /api/approvals``, and ``POST /approvals/{entity}/{id}`` to decide on one (the only write;
  see :mod:`mirakl_connector.console.approvals`).

The app knows nothing about Airflow: ``ConsoleAppConfig.auth`` is a FastAPI dependency applied
to *every* route (the plugin passes Airflow's own authorization), and the app publishes no docs or
OpenAPI pages. Database work runs in a thread: the API server serves the Airflow UI on the same
event loop.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse

from mirakl_connector.console import html as pages
from mirakl_connector.console.approvals import ApprovalsConfig, approvals_router, awaiting_section
from mirakl_connector.console.queries import (
    CATEGORIES,
    DEFAULT_DAYS,
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    PROVIDERS,
    WORKFLOWS,
    Category,
    ConsoleQueries,
    DateRange,
    HistoryEvent,
    Item,
    ItemFilters,
    MovedRow,
    ReasonGroup,
    aware_utc,
)
from mirakl_connector.money import from_minor


@dataclass
class ConsoleAppConfig:
    """Where the app reads the ledger, and who may read it."""

    queries: Callable[[], ConsoleQueries]
    #: A FastAPI dependency run before every route; it raises (401/403) to refuse the request.
    auth: Callable[..., Any]
    #: The approval gate's list and decisions (``None``: the console stays read-only).
    approvals: ApprovalsConfig | None = None


def create_app(config: ConsoleAppConfig) -> FastAPI:
    app = FastAPI(
        title="Mirakl connector payments console",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(config.auth)],
    )

    def _queries() -> ConsoleQueries:
        return config.queries()

    if config.approvals is not None:
        app.include_router(approvals_router(config.approvals))

    @app.get("/", response_class=HTMLResponse)
    async def page(
        request: Request,
        start: str | None = None,
        end: str | None = None,
        currency: str | None = None,
        provider: str | None = None,
        workflow: str | None = None,
        category: str | None = None,
        status: str | None = None,
        shop: str | None = None,
        id: str | None = None,  # noqa: A002 - the text id filter, as the page names it
        run: str | None = None,
        page: int = Query(1, ge=1),
        size: int = Query(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE),
    ) -> HTMLResponse:
        period = _period(start, end)
        # a run summary links here with ?run=: every item that run touched, whatever its state
        cat = _category(category or ("all" if run else "waiting"))
        filters = _filters(status, workflow, currency, shop, id, provider, run)
        base = _base(request)

        def load() -> pages.PageData:
            q = _queries()
            approvals = config.approvals
            return pages.PageData(
                approvals=awaiting_section(approvals, base) if approvals else "",
                period=period,
                moved=q.moved(
                    period,
                    currency=filters.currency,
                    provider=filters.provider,
                    workflow=filters.workflow,
                ),
                imported=q.moved(period, currency=filters.currency, imported=True),
                summaries={c: q.summary(c) for c in CATEGORIES},
                category=cat,
                filters=filters,
                items=q.items(cat, filters, page=page, size=size),
                now=datetime.now(UTC),
            )

        data = await run_in_threadpool(load)
        return HTMLResponse(pages.render_page(data, base, dict(request.query_params)))

    @app.get("/items/{entity}/{row_id}", response_class=HTMLResponse)
    async def item_page(request: Request, entity: str, row_id: int) -> HTMLResponse:
        item, history = await run_in_threadpool(lambda: _item_and_history(entity, row_id))
        return HTMLResponse(pages.render_item(item, history, _base(request)))

    @app.get("/api/moved")
    async def api_moved(
        start: str | None = None,
        end: str | None = None,
        currency: str | None = None,
        provider: str | None = None,
        workflow: str | None = None,
    ) -> JSONResponse:
        period, rows = await _moved(start, end, currency, provider, workflow)
        imported = await run_in_threadpool(
            lambda: _queries().moved(period, currency=currency, imported=True)
        )
        return JSONResponse(
            {
                "start": period.start.isoformat(),
                "end": period.end.isoformat(),
                "rows": [_moved_json(r) for r in rows],
                # rows imported at cutover (they moved at the incumbent), by import day
                "imported": [_moved_json(r) for r in imported],
            }
        )

    @app.get("/api/summary/{category}")
    async def api_summary(category: str) -> JSONResponse:
        cat = _category(category)
        groups = await run_in_threadpool(lambda: _queries().summary(cat))
        now = datetime.now(UTC)
        return JSONResponse({"category": cat, "groups": [_group_json(g, now) for g in groups]})

    @app.get("/api/items")
    async def api_items(
        category: str | None = None,
        status: str | None = None,
        workflow: str | None = None,
        currency: str | None = None,
        provider: str | None = None,
        shop: str | None = None,
        id: str | None = None,  # noqa: A002
        run: str | None = None,
        page: int = Query(1, ge=1),
        size: int = Query(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE),
    ) -> JSONResponse:
        cat = _category(category) if category else None
        filters = _filters(status, workflow, currency, shop, id, provider, run)
        result = await run_in_threadpool(
            lambda: _queries().items(cat, filters, page=page, size=size)
        )
        return JSONResponse(
            {
                "category": cat,
                "page": result.page,
                "size": result.size,
                "total": result.total,
                "pages": result.pages,
                "items": [_item_json(i) for i in result.items],
            }
        )

    @app.get("/api/items/{entity}/{row_id}")
    async def api_item(entity: str, row_id: int) -> JSONResponse:
        item, history = await run_in_threadpool(lambda: _item_and_history(entity, row_id))
        events = [_event_json(h) for h in history]
        return JSONResponse({"item": _item_json(item), "history": events})

    @app.get("/export/moved.csv")
    async def export_moved(
        start: str | None = None,
        end: str | None = None,
        currency: str | None = None,
        provider: str | None = None,
        workflow: str | None = None,
    ) -> StreamingResponse:
        period, rows = await _moved(start, end, currency, provider, workflow)
        header = ["day", "currency", "provider", "workflow", "count", "amount_minor", "amount"]
        lines = (
            [r.day.isoformat(), r.currency, r.provider, r.workflow, r.count, r.amount,
             _decimal(r.amount, r.currency)]
            for r in rows
        )  # fmt: skip
        name = f"moved_{period.start.isoformat()}_{period.end.isoformat()}.csv"
        return _csv(name, header, lines)

    @app.get("/export/items.csv")
    async def export_items(
        category: str | None = None,
        status: str | None = None,
        workflow: str | None = None,
        currency: str | None = None,
        provider: str | None = None,
        shop: str | None = None,
        id: str | None = None,  # noqa: A002
        run: str | None = None,
    ) -> StreamingResponse:
        cat = _category(category) if category else None
        filters = _filters(status, workflow, currency, shop, id, provider, run)

        # Streamed: Starlette runs this generator in its thread pool, one keyset batch at a
        # time; raw rows (no Item per row): the export is the console's largest answer.
        lines = (_item_csv_line(row) for row in _queries().iter_rows(cat, filters))
        return _csv(f"items_{cat or 'all'}.csv", list(ITEM_CSV_HEADER), lines)

    async def _moved(
        start: str | None,
        end: str | None,
        currency: str | None,
        provider: str | None,
        workflow: str | None,
    ) -> tuple[DateRange, list[MovedRow]]:
        period = _period(start, end)
        filters = _filters(None, workflow, currency, None, None, provider, None)
        rows = await run_in_threadpool(
            lambda: _queries().moved(
                period,
                currency=filters.currency,
                provider=filters.provider,
                workflow=filters.workflow,
            )
        )
        return period, rows

    def _item_and_history(entity: str, row_id: int) -> tuple[Item, list[HistoryEvent]]:
        q = _queries()
        item = q.get_item(entity, row_id)
        if item is None:
            raise HTTPException(404, f"no {entity} {row_id} in the ledger")
        return item, q.history(entity, row_id)

    return app


def _item_csv_line(row: Any) -> list[Any]:
    """One CSV line of an item row (columns of ``ConsoleQueries._select_items``)."""
    (entity, row_id, provider, workflow, mirakl_id, shop_id, account, status, reason, amount,
     currency, object_id, attempts, attempted_at, created_at, updated_at) = row  # fmt: skip
    return [
        entity, row_id, provider, workflow, mirakl_id, shop_id, account, status, reason, amount,
        currency, _decimal(amount, currency), object_id, attempts or 0,
        _iso(aware_utc(attempted_at)), _iso(aware_utc(created_at)), _iso(aware_utc(updated_at)),
    ]  # fmt: skip


ITEM_CSV_HEADER = (
    "entity", "id", "provider", "workflow", "mirakl_id", "shop_id", "account", "status",
    "reason", "amount_minor", "currency", "amount", "provider_object_id", "attempts",
    "attempted_at", "created_at", "updated_at",
)  # fmt: skip


# -- request parsing ------------------------------------------------------------------------


def _period(start: str | None, end: str | None) -> DateRange:
    try:
        if not start and not end:
            return DateRange.last_days(DEFAULT_DAYS)
        end_day = date.fromisoformat(end) if end else datetime.now(UTC).date()
        start_day = date.fromisoformat(start) if start else end_day
        return DateRange(start_day, end_day)
    except ValueError as exc:
        raise HTTPException(400, f"bad date range: {exc}") from exc


def _category(value: str) -> Category | None:
    """One of :data:`CATEGORIES`, or ``all`` (``None``: every item, whatever its state)."""
    if value == "all":
        return None
    if value not in CATEGORIES:
        raise HTTPException(400, f"category must be all or one of {', '.join(CATEGORIES)}")
    return value  # type: ignore[return-value]


def _filters(
    status: str | None,
    workflow: str | None,
    currency: str | None,
    shop: str | None,
    text_id: str | None,
    provider: str | None,
    run_id: str | None,
) -> ItemFilters:
    if workflow and workflow not in WORKFLOWS:
        raise HTTPException(400, f"workflow must be one of {', '.join(WORKFLOWS)}")
    if provider and provider not in PROVIDERS:
        raise HTTPException(400, f"provider must be one of {', '.join(PROVIDERS)}")
    shop_id = None
    if shop:
        try:
            shop_id = int(shop)
        except ValueError:
            raise HTTPException(400, "shop must be a Mirakl shop id (a number)") from None
    return ItemFilters(
        status=status or None,
        workflow=workflow or None,
        currency=currency.strip().upper() if currency and currency.strip() else None,
        shop_id=shop_id,
        text_id=text_id.strip() if text_id and text_id.strip() else None,
        provider=provider or None,
        run_id=run_id.strip() if run_id and run_id.strip() else None,
    )


def _base(request: Request) -> str:
    """The path the app is mounted at (``/mirakl-connector-console`` on the API server)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


# -- output ---------------------------------------------------------------------------------


def _decimal(amount: int | None, currency: str | None) -> str:
    """Minor units as a decimal string (``Decimal``, never float); '' when unknown."""
    if amount is None or not currency:
        return ""
    try:
        return str(from_minor(amount, currency))
    except Exception:  # noqa: BLE001 - an unknown currency code: show the minor units
        return str(amount)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _moved_json(row: MovedRow) -> dict[str, Any]:
    return {
        "day": row.day.isoformat(),
        "currency": row.currency,
        "provider": row.provider,
        "workflow": row.workflow,
        "count": row.count,
        "amount_minor": row.amount,
        "amount": _decimal(row.amount, row.currency),
    }


def _group_json(group: ReasonGroup, now: datetime) -> dict[str, Any]:
    return {
        "workflow": group.workflow,
        "reason": group.reason,
        "count": group.count,
        "oldest": group.oldest.isoformat(),
        "oldest_age_seconds": int((now - group.oldest).total_seconds()),
        "latest": group.latest.isoformat(),
    }


def _item_json(item: Item) -> dict[str, Any]:
    return {
        "key": item.key,
        "entity": item.entity,
        "id": item.id,
        "provider": item.provider,
        "workflow": item.workflow,
        "mirakl_id": item.mirakl_id,
        "shop_id": item.shop_id,
        "account": item.account,
        "status": item.status,
        "reason": item.reason,
        "amount_minor": item.amount,
        "currency": item.currency,
        "amount": _decimal(item.amount, item.currency),
        "provider_object_id": item.provider_object_id,
        "attempts": item.attempts,
        "attempted_at": _iso(item.attempted_at),
        "created_at": _iso(item.created_at),
        "updated_at": _iso(item.updated_at),
        "links": pages.provider_links(item),
    }


def _event_json(event: HistoryEvent) -> dict[str, Any]:
    return {
        "old_status": event.old_status,
        "new_status": event.new_status,
        "reason": event.reason,
        "run_id": event.run_id,
        "at": event.at.isoformat(),
    }


def _csv_cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas: a provider's error text could start with ``=``."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def _csv(name: str, header: list[str], lines: Iterable[list[Any]]) -> StreamingResponse:
    def body() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        for n, line in enumerate(lines, start=1):
            writer.writerow([_csv_cell(v) for v in line])
            if n % 1000 == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
