"""The console's actions as routes: each a ``POST`` with a mandatory ``why``, from the item
page's forms (``POST /items/{entity}/{id}/{action}``, then back to the item page) or from a
script (``POST /api/items/{entity}/{id}/{action}`` with a JSON body), and the shop mapping
(``POST /mappings``, ``POST /api/mappings``); what each does is :mod:`.actions`.

An action sent with the session cookie (a browser) must come from a page of this site
(:func:`same_origin`): the cookie alone would let another site's page post a form as the user.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from mirakl_connector.console import html as pages
from mirakl_connector.console.actions import Actor, ConsoleActions
from mirakl_connector.console.api_json import action_json, item_detail_json
from mirakl_connector.console.params import base
from mirakl_connector.ledger.manual_actions import ActionRecord, ActionRefused
from mirakl_connector.ledger.queries import HistoryEvent, Item

#: URL name of each item action → what it does.
ITEM_ACTIONS = ("retry", "hold", "release", "resolve-found", "resolve-not-found")


def add_action_routes(
    app: FastAPI,
    actions_of: Callable[[], ConsoleActions],
    guards: list[Any],
    actor_dep: Callable[..., Actor],
    item_history_audit: Callable[[str, int], tuple[Item, list[HistoryEvent], list[ActionRecord]]],
) -> None:
    """The ``POST`` routes: Airflow's edit permission, the same-origin check (``guards``), then
    the action."""

    def run_item_action(
        entity: str, row_id: int, action: str, actor: Actor, fields: dict[str, Any]
    ) -> ActionRecord:
        actions = actions_of()
        why = _why_field(fields)
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
        return JSONResponse({"action": action_json(done), **item_detail_json(item, history, audit)})

    @app.post("/items/{entity}/{row_id}/{action}", dependencies=guards, response_model=None)
    async def item_action(
        request: Request, entity: str, row_id: int, action: str, actor: Actor = Depends(actor_dep)
    ) -> Response:
        check_action(action)
        fields = await _form_fields(request)
        root = base(request)
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
                item, history, root, audit=audit, actions=True, error=exc.reason, form=fields
            )
            return HTMLResponse(page, status_code=exc.status)
        # Post/Redirect/Get: a reload of the result page never posts the action again
        url = f"{root}/items/{entity}/{row_id}?done={done.id}#actions"
        return RedirectResponse(url, status_code=303)

    def map_shop(actor: Actor, fields: dict[str, Any]) -> ActionRecord:
        return actions_of().map_shop(
            fields.get("shop_id"), fields.get("stripe_account_id"), actor=actor,
            why=_why_field(fields),
        )  # fmt: skip

    @app.post("/api/mappings", dependencies=guards)
    async def api_map_shop(request: Request, actor: Actor = Depends(actor_dep)) -> JSONResponse:
        fields = await _json_fields(request)
        try:
            done = await run_in_threadpool(lambda: map_shop(actor, fields))
        except ActionRefused as exc:
            raise HTTPException(exc.status, exc.reason) from None
        return JSONResponse({"action": action_json(done)}, status_code=201)

    @app.post("/mappings", dependencies=guards, response_class=HTMLResponse)
    async def form_map_shop(request: Request, actor: Actor = Depends(actor_dep)) -> HTMLResponse:
        fields = await _form_fields(request)
        try:
            done = await run_in_threadpool(lambda: map_shop(actor, fields))
        except ActionRefused as exc:
            return HTMLResponse(
                pages.render_outcome("Shop not mapped", exc.reason, base(request), error=True),
                status_code=exc.status,
            )
        return HTMLResponse(
            pages.render_outcome("Shop mapped", done.detail or "", base(request)),
            status_code=201,
        )


def same_origin(trusted: tuple[str, ...]) -> Callable[[Request], None]:
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


def _why_field(fields: dict[str, Any]) -> str:
    """The user's reason as text, as :func:`~mirakl_connector.ledger.manual_rules.clean_why`
    reads it (``str(why or "")``): a missing one is blank, which the action refuses (422)."""
    return str(fields.get("why") or "")


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
