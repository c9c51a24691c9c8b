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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)

from mirakl_connector.console import html as pages
from mirakl_connector.console.actions import Actor, ConsoleActions, allowed_actions
from mirakl_connector.console.approvals import ApprovalsConfig, approvals_router, awaiting_section
from mirakl_connector.console.csv_export import (
    amount_text,
    csv_chunks,
    item_csv_chunks,
    neutralise,
)
from mirakl_connector.ledger.manual_actions import ActionRecord, ActionRefused
from mirakl_connector.ledger.queries import (
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

    if config.approvals is not None:
        if config.edit_auth is None or config.actor is None:
            raise ValueError("a console with approvals needs edit_auth and actor dependencies")
        guards = [Depends(config.edit_auth), Depends(_same_origin(config.trusted_origins))]
        app.include_router(approvals_router(config.approvals, guards=guards, actor=config.actor))

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

        # The page's reads are independent: each runs in a thread of its own, on a connection
        # of its own, so the page takes as long as the slowest of them, not their sum (the
        # database drivers release the interpreter lock while the database works).
        q = await run_in_threadpool(_queries)
        approvals = config.approvals
        approvals_html, moved, imported, items, recent, *summaries = await asyncio.gather(
            run_in_threadpool(lambda: awaiting_section(approvals, base) if approvals else ""),
            run_in_threadpool(
                lambda: q.moved(
                    period,
                    currency=filters.currency,
                    provider=filters.provider,
                    workflow=filters.workflow,
                )
            ),
            run_in_threadpool(lambda: q.moved(period, currency=filters.currency, imported=True)),
            run_in_threadpool(lambda: q.items(cat, filters, page=page, size=size)),
            run_in_threadpool(lambda: q.recent_actions(limit=20)),
            *(run_in_threadpool(q.summary, c) for c in CATEGORIES),
        )
        data = pages.PageData(
            approvals=approvals_html,
            period=period,
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
        return HTMLResponse(pages.render_page(data, base, dict(request.query_params)))

    @app.get("/items/{entity}/{row_id}", response_class=HTMLResponse)
    async def item_page(request: Request, entity: str, row_id: int) -> HTMLResponse:
        item, history, audit = await run_in_threadpool(lambda: _item_history_audit(entity, row_id))
        done = _done_entry(request, audit)
        return HTMLResponse(
            pages.render_item(
                item, history, _base(request), audit=audit, actions=_can_act(), done=done
            )
        )

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
        item, history, audit = await run_in_threadpool(lambda: _item_history_audit(entity, row_id))
        return JSONResponse(_item_detail_json(item, history, audit))

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

        return JSONResponse({"actions": [_action_json(a) for a in await run_in_threadpool(load)]})

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
            [r.day.isoformat(), neutralise(r.currency), r.provider, r.workflow, r.count,
             r.amount, amount_text(r.amount, r.currency)]
            for r in rows
        )  # fmt: skip
        name = f"moved_{period.start.isoformat()}_{period.end.isoformat()}.csv"
        return _csv(name, csv_chunks(header, lines))

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
        # time; raw rows with the timestamps formatted by the database (no Item, no datetime
        # per row): the export is the console's largest answer.
        rows = _queries().iter_rows(cat, filters, times_as_text=True)
        return _csv(f"items_{cat or 'all'}.csv", item_csv_chunks(rows))

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
        _add_action_routes(app, config, _item_history_audit)
    # The Reconciliation section (its own module): behind the same auth dependency as the rest.
    from mirakl_connector.console.reconciliation import (
        ReconciliationQueries,
        reconciliation_router,
    )

    app.include_router(
        reconciliation_router(
            lambda: ReconciliationQueries(_queries().engine),
            csv_response=lambda name, header, lines: _csv(
                name, csv_chunks(header, ([neutralise(v) for v in line] for line in lines))
            ),
            decimal=amount_text,
        )
    )
    return app


# -- actions --------------------------------------------------------------------------------

#: URL name of each item action → what it does.
ITEM_ACTIONS = ("retry", "hold", "release", "resolve-found", "resolve-not-found")


def _add_action_routes(app: FastAPI, config: ConsoleAppConfig, item_history_audit: Any) -> None:
    """The ``POST`` routes: Airflow's edit permission, the same-origin check, then the action."""
    if config.edit_auth is None or config.actor is None:
        raise ValueError("a console with actions needs edit_auth and actor dependencies")
    assert config.actions is not None
    actions_of = config.actions
    guards = [Depends(config.edit_auth), Depends(_same_origin(config.trusted_origins))]
    actor_dep = config.actor

    def run_item_action(
        entity: str, row_id: int, action: str, actor: Actor, fields: dict[str, Any]
    ) -> ActionRecord:
        actions = actions_of()
        why = fields.get("why")
        if action == "retry":
            return actions.retry(entity, row_id, actor=actor, why=why)
        if action == "hold":
            return actions.hold(entity, row_id, actor=actor, why=why)
        if action == "release":
            return actions.release(entity, row_id, actor=actor, why=why)
        attempts = fields.get("attempts")
        try:
            seen = int(attempts) if attempts not in (None, "") else None
        except (TypeError, ValueError):
            raise ActionRefused("attempts must be a whole number", status=422) from None
        return actions.resolve(
            entity, row_id, actor=actor, why=why, found=action == "resolve-found",
            object_id=fields.get("object_id"), attempts=seen,
        )  # fmt: skip

    def check_action(action: str) -> None:
        if action not in ITEM_ACTIONS:
            raise HTTPException(404, f"no action {action!r}; one of {', '.join(ITEM_ACTIONS)}")

    @app.post("/api/items/{entity}/{row_id}/{action}", dependencies=guards)
    async def api_item_action(
        request: Request, entity: str, row_id: int, action: str, actor: Actor = Depends(actor_dep)
    ) -> JSONResponse:
        check_action(action)
        fields = await _json_fields(request)
        try:
            done = await run_in_threadpool(
                lambda: run_item_action(entity, row_id, action, actor, fields)
            )
        except ActionRefused as exc:
            raise HTTPException(exc.status, exc.reason) from None
        item, history, audit = await run_in_threadpool(lambda: item_history_audit(entity, row_id))
        return JSONResponse(
            {"action": _action_json(done), **_item_detail_json(item, history, audit)}
        )

    @app.post("/items/{entity}/{row_id}/{action}", dependencies=guards, response_model=None)
    async def item_action(
        request: Request, entity: str, row_id: int, action: str, actor: Actor = Depends(actor_dep)
    ) -> Response:
        check_action(action)
        fields = await _form_fields(request)
        base = _base(request)
        try:
            done = await run_in_threadpool(
                lambda: run_item_action(entity, row_id, action, actor, fields)
            )
        except ActionRefused as exc:
            # the item page again, saying why; nothing changed
            item, history, audit = await run_in_threadpool(
                lambda: item_history_audit(entity, row_id)
            )
            page = pages.render_item(
                item, history, base, audit=audit, actions=True, error=exc.reason, form=fields
            )
            return HTMLResponse(page, status_code=exc.status)
        # Post/Redirect/Get: a reload of the result page never posts the action again
        url = f"{base}/items/{entity}/{row_id}?done={done.id}#actions"
        return RedirectResponse(url, status_code=303)

    def map_shop(actor: Actor, fields: dict[str, Any]) -> ActionRecord:
        return actions_of().map_shop(
            fields.get("shop_id"), fields.get("stripe_account_id"), actor=actor,
            why=fields.get("why"),
        )  # fmt: skip

    @app.post("/api/mappings", dependencies=guards)
    async def api_map_shop(request: Request, actor: Actor = Depends(actor_dep)) -> JSONResponse:
        fields = await _json_fields(request)
        try:
            done = await run_in_threadpool(lambda: map_shop(actor, fields))
        except ActionRefused as exc:
            raise HTTPException(exc.status, exc.reason) from None
        return JSONResponse({"action": _action_json(done)}, status_code=201)

    @app.post("/mappings", dependencies=guards, response_class=HTMLResponse)
    async def form_map_shop(request: Request, actor: Actor = Depends(actor_dep)) -> HTMLResponse:
        fields = await _form_fields(request)
        try:
            done = await run_in_threadpool(lambda: map_shop(actor, fields))
        except ActionRefused as exc:
            return HTMLResponse(
                pages.render_outcome("Shop not mapped", exc.reason, _base(request), error=True),
                status_code=exc.status,
            )
        return HTMLResponse(
            pages.render_outcome("Shop mapped", done.detail or "", _base(request)),
            status_code=201,
        )


def _same_origin(trusted: tuple[str, ...]) -> Callable[[Request], None]:
    """Refuse a cookie-authenticated action that did not come from a page of this site.

    A browser sends the session cookie with any request to this host, including a form another
    site's page posts (cross-site request forgery); it also sends ``Origin`` (or at least
    ``Referer``) with every ``POST``, which that page cannot forge. So an action without
    ``Authorization: Bearer`` (the cookie is then the credential, as Airflow's ``get_user``
    decides) must carry an ``Origin`` or ``Referer`` naming this host (``Host`` or the
    proxy's ``X-Forwarded-Host``) or a trusted origin. A script's Bearer token is never sent
    by a browser on its own: those calls need no such header.
    """
    allowed = {_netloc(o) for o in trusted if _netloc(o)}

    def check(request: Request) -> None:
        auth = request.headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            return
        source = request.headers.get("origin") or request.headers.get("referer")
        if not source or source == "null":
            raise HTTPException(
                403,
                "cross-site request refused: an action sent with the session cookie needs an "
                "Origin or Referer header of this site (or use a Bearer token)",
            )
        hosts = {request.headers.get("host", ""), *allowed}
        forwarded = request.headers.get("x-forwarded-host")
        if forwarded:
            hosts.add(forwarded.split(",")[0].strip())
        if _netloc(source) not in {h.lower() for h in hosts if h}:
            raise HTTPException(403, f"cross-site request refused: it comes from {source}")

    return check


def _netloc(url: str) -> str:
    return urlsplit(url).netloc.lower()


async def _json_fields(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise HTTPException(422, "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise HTTPException(422, "the body must be a JSON object")
    return body


async def _form_fields(request: Request) -> dict[str, Any]:
    """An HTML form's fields (``application/x-www-form-urlencoded``), first value of each."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


def _done_entry(request: Request, audit: list[ActionRecord]) -> ActionRecord | None:
    done = request.query_params.get("done")
    return next((a for a in audit if done and str(a.id) == done), None)


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
        "amount": amount_text(row.amount, row.currency),
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
        "amount": amount_text(item.amount, item.currency),
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


def _action_json(action: ActionRecord) -> dict[str, Any]:
    return {
        "id": action.id,
        "at": _iso(aware_utc(action.at)),
        "user": action.user,
        "action": action.action,
        "entity": action.entity,
        "entity_id": action.entity_id,
        "item": action.item,
        "why": action.why,
        "result": action.result,
        "detail": action.detail,
    }


def _item_detail_json(
    item: Item, history: list[HistoryEvent], audit: list[ActionRecord]
) -> dict[str, Any]:
    return {
        "item": _item_json(item),
        "history": [_event_json(h) for h in history],
        "actions": [_action_json(a) for a in audit],
        "allowed_actions": allowed_actions(item),
    }


def _csv(name: str, chunks: Iterator[str]) -> StreamingResponse:
    return StreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
