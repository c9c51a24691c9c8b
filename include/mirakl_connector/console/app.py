"""The payments console as a FastAPI app: an HTML page, a JSON API, CSV exports, and actions.

Routes (relative to where the app is mounted):

* ``GET /``: the page: money moved (charts and table) for a date range, what waits, what failed
  and what is in doubt, with filters and pages;
* ``GET /items/{entity}/{id}``: one item and its history;
* ``GET /api/moved``, ``/api/summary/{category}``, ``/api/items``, ``/api/items/{entity}/{id}``:
  the same data as JSON (amounts in minor units with their currency, and as a decimal string);
* ``GET /export/moved.csv``, ``/export/items.csv``: CSV exports of the table and of the lists;
* ``GET /api/actions``: the audit of the console's actions (newest first, or one item's);
* actions (:mod:`.actions`), each a ``POST`` with a mandatory ``why``: from the item page's forms
  ``POST /items/{entity}/{id}/{action}`` (then back to the item page), for scripts
  ``POST /api/items/{entity}/{id}/{action}`` with a JSON body; ``action`` is ``retry``,
  ``hold``, ``release``, ``resolve-found`` (with ``object_id``) or ``resolve-not-found``; a shop
  is mapped with ``POST /mappings`` (form) or ``POST /api/mappings`` (JSON:
  ``shop_id``, ``stripe_account_id``, ``why``).
* ``GET /reconciliation``, ``/api/reconciliation``, ``/export/reconciliation.csv``: the
  reconciliation per run and per day (:mod:`mirakl_connector.console.reconciliation`).
* with ``ConsoleAppConfig.approvals``: the items the approval gate holds, on the page and under
  ``GET /api/approvals``, and ``POST /approvals/{entity}/{id}`` to approve or reject one (an
  action like the others: ``edit_auth``, the same-origin check, the audit; see
  :mod:`mirakl_connector.console.approvals`).

The app knows nothing about Airflow: ``ConsoleAppConfig.auth`` is a FastAPI dependency applied
to *every* route (the plugin passes Airflow's own authorization), ``edit_auth`` one applied to
every action on top of it, and the app publishes no docs or OpenAPI pages. An action sent with
the session cookie (a browser) must come from a page of this site (:func:`_same_origin`): the
cookie alone would let another site's page post a form as the user. Database and provider work
runs in a thread: the API server serves the Airflow UI on the same event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse

from mirakl_connector.console import html as pages
from mirakl_connector.console.action_routes import add_action_routes, same_origin
from mirakl_connector.console.actions import Actor, ConsoleActions
from mirakl_connector.console.api_json import (
    action_json,
    csv_response,
    group_json,
    item_detail_json,
    item_json,
    moved_json,
)
from mirakl_connector.console.approvals import ApprovalsConfig, approvals_router, awaiting_section
from mirakl_connector.console.csv_export import (
    amount_text,
    csv_chunks,
    item_csv_chunks,
    neutralise,
)
from mirakl_connector.console.params import (
    ItemParams,
    MovedParams,
    base,
    parse_category,
    parse_period,
)
from mirakl_connector.ledger.manual_actions import ActionRecord
from mirakl_connector.ledger.queries import (
    CATEGORIES,
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    ConsoleQueries,
    DateRange,
    HistoryEvent,
    Item,
    MovedRow,
)


@dataclass
class ConsoleAppConfig:
    """Where the app reads the ledger, who may read it, and who may act."""

    queries: Callable[[], ConsoleQueries]
    #: A FastAPI dependency run before every route; it raises (401/403) to refuse the request.
    auth: Callable[..., Any]
    #: The actions; ``None``: a read-only console (no action route).
    actions: Callable[[], ConsoleActions] | None = None
    #: A FastAPI dependency run before every action, after ``auth``; it raises (401/403).
    edit_auth: Callable[..., Any] | None = None
    #: A FastAPI dependency returning who acts (:class:`~.actions.Actor`).
    actor: Callable[..., Actor] | None = None
    #: Origins (``https://host[:port]``) a cookie-authenticated action may come from besides
    #: the request's own host (the API server's public ``base_url`` behind a proxy).
    trusted_origins: tuple[str, ...] = ()
    #: The approval gate's list and decisions (``None``: none; needs ``edit_auth`` and ``actor``).
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

    def guards() -> list[Any]:
        """Airflow's edit permission, then the same-origin check: before every action."""
        assert config.edit_auth is not None
        return [Depends(config.edit_auth), Depends(same_origin(config.trusted_origins))]

    if config.approvals is not None:
        if config.edit_auth is None or config.actor is None:
            raise ValueError("a console with approvals needs edit_auth and actor dependencies")
        app.include_router(approvals_router(config.approvals, guards=guards(), actor=config.actor))

    @app.get("/", response_class=HTMLResponse)
    async def page(
        request: Request,
        start: str | None = None,
        end: str | None = None,
        category: str | None = None,
        given: ItemParams = Depends(ItemParams),
        page: int = Query(1, ge=1),
        size: int = Query(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE),
    ) -> HTMLResponse:
        span = parse_period(start, end)
        # a run summary links here with ?run=: every item that run touched, whatever its state
        cat = parse_category(category or ("all" if given.run else "waiting"))
        filters = given.filters()
        root = base(request)

        # The page's reads are independent: each runs in a thread of its own, on a connection
        # of its own, so the page takes as long as the slowest of them, not their sum (the
        # database drivers release the interpreter lock while the database works).
        q = await run_in_threadpool(_queries)
        approvals = config.approvals
        # the summaries gathered apart (started first), so that each result keeps its own type
        summaries_of = asyncio.gather(*(run_in_threadpool(q.summary, c) for c in CATEGORIES))
        approvals_html, moved, imported, items, recent, summaries = await asyncio.gather(
            run_in_threadpool(lambda: awaiting_section(approvals, root) if approvals else ""),
            run_in_threadpool(
                lambda: q.moved(
                    span,
                    currency=filters.currency,
                    provider=filters.provider,
                    workflow=filters.workflow,
                )
            ),
            run_in_threadpool(lambda: q.moved(span, currency=filters.currency, imported=True)),
            run_in_threadpool(lambda: q.items(cat, filters, page=page, size=size)),
            run_in_threadpool(lambda: q.recent_actions(limit=20)),
            summaries_of,
        )
        data = pages.PageData(
            approvals=approvals_html,
            period=span,
            moved=moved,
            imported=imported,
            summaries=dict(zip(CATEGORIES, summaries, strict=True)),
            category=cat,
            filters=filters,
            items=items,
            now=datetime.now(UTC),
            recent_actions=recent,
            actions=config.actions is not None,
        )
        return HTMLResponse(pages.render_page(data, root, dict(request.query_params)))

    @app.get("/items/{entity}/{row_id}", response_class=HTMLResponse)
    async def item_page(request: Request, entity: str, row_id: int) -> HTMLResponse:
        item, history, audit = await run_in_threadpool(lambda: _item_history_audit(entity, row_id))
        done = _done_entry(request, audit)
        return HTMLResponse(
            pages.render_item(
                item, history, base(request), audit=audit, actions=_can_act(), done=done
            )
        )

    @app.get("/api/moved")
    async def api_moved(given: MovedParams = Depends(MovedParams)) -> JSONResponse:
        span, rows = await _moved(given)
        # the imported rows are read with the currency as given (not upper-cased), as always
        imported = await run_in_threadpool(
            lambda: _queries().moved(span, currency=given.currency, imported=True)
        )
        return JSONResponse(
            {
                "start": span.start.isoformat(),
                "end": span.end.isoformat(),
                "rows": [moved_json(r) for r in rows],
                # rows imported at cutover (they moved at the incumbent), by import day
                "imported": [moved_json(r) for r in imported],
            }
        )

    @app.get("/api/summary/{category}")
    async def api_summary(category: str) -> JSONResponse:
        cat = parse_category(category)
        groups = await run_in_threadpool(lambda: _queries().summary(cat))
        now = datetime.now(UTC)
        return JSONResponse({"category": cat, "groups": [group_json(g, now) for g in groups]})

    @app.get("/api/items")
    async def api_items(
        category: str | None = None,
        given: ItemParams = Depends(ItemParams),
        page: int = Query(1, ge=1),
        size: int = Query(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE),
    ) -> JSONResponse:
        cat = parse_category(category) if category else None
        filters = given.filters()
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
                "items": [item_json(i) for i in result.items],
            }
        )

    @app.get("/api/items/{entity}/{row_id}")
    async def api_item(entity: str, row_id: int) -> JSONResponse:
        item, history, audit = await run_in_threadpool(lambda: _item_history_audit(entity, row_id))
        return JSONResponse(item_detail_json(item, history, audit))

    @app.get("/api/actions")
    async def api_actions(
        entity: str | None = None,
        id: int | None = None,  # noqa: A002 - the item's (or shop's) id
        limit: int = Query(50, ge=1, le=MAX_PAGE_SIZE),
    ) -> JSONResponse:
        if (entity is None) != (id is None):
            raise HTTPException(400, "give both entity and id, or neither")

        def load() -> list[ActionRecord]:
            q = _queries()
            if entity is not None and id is not None:
                return q.actions(entity, id, limit=limit)
            return q.recent_actions(limit=limit)

        return JSONResponse({"actions": [action_json(a) for a in await run_in_threadpool(load)]})

    @app.get("/export/moved.csv")
    async def export_moved(given: MovedParams = Depends(MovedParams)) -> StreamingResponse:
        span, rows = await _moved(given)
        header = ["day", "currency", "provider", "workflow", "count", "amount_minor", "amount"]
        lines = (
            [r.day.isoformat(), neutralise(r.currency), r.provider, r.workflow, r.count,
             r.amount, amount_text(r.amount, r.currency)]
            for r in rows
        )  # fmt: skip
        name = f"moved_{span.start.isoformat()}_{span.end.isoformat()}.csv"
        return csv_response(name, csv_chunks(header, lines))

    @app.get("/export/items.csv")
    async def export_items(
        category: str | None = None, given: ItemParams = Depends(ItemParams)
    ) -> StreamingResponse:
        cat = parse_category(category) if category else None
        filters = given.filters()

        # Streamed: Starlette runs this generator in its thread pool, one keyset batch at a
        # time; raw rows with the timestamps formatted by the database (no Item, no datetime
        # per row): the export is the console's largest answer.
        rows = _queries().iter_rows(cat, filters, times_as_text=True)
        return csv_response(f"items_{cat or 'all'}.csv", item_csv_chunks(rows))

    async def _moved(given: MovedParams) -> tuple[DateRange, list[MovedRow]]:
        span = given.period()
        filters = given.filters()
        rows = await run_in_threadpool(
            lambda: _queries().moved(
                span,
                currency=filters.currency,
                provider=filters.provider,
                workflow=filters.workflow,
            )
        )
        return span, rows

    def _item_history_audit(
        entity: str, row_id: int
    ) -> tuple[Item, list[HistoryEvent], list[ActionRecord]]:
        q = _queries()
        item = q.get_item(entity, row_id)
        if item is None:
            raise HTTPException(404, f"no {entity} {row_id} in the ledger")
        return item, q.history(entity, row_id), q.actions(entity, row_id)

    def _can_act() -> bool:
        return config.actions is not None

    if config.actions is not None:
        if config.edit_auth is None or config.actor is None:
            raise ValueError("a console with actions needs edit_auth and actor dependencies")
        add_action_routes(app, config.actions, guards(), config.actor, _item_history_audit)
    # The Reconciliation section (its own module): behind the same auth dependency as the rest.
    from mirakl_connector.console.reconciliation import (
        ReconciliationQueries,
        reconciliation_router,
    )

    app.include_router(
        reconciliation_router(
            lambda: ReconciliationQueries(_queries().engine),
            csv_response=lambda name, header, lines: csv_response(
                name, csv_chunks(header, ([neutralise(v) for v in line] for line in lines))
            ),
            decimal=amount_text,
        )
    )
    return app


def _done_entry(request: Request, audit: list[ActionRecord]) -> ActionRecord | None:
    done = request.query_params.get("done")
    return next((a for a in audit if done and str(a.id) == done), None)
