"""Approvals on the payments console: what the approval gate holds, and the one action that
writes: approve or reject a held item.

Routes (relative to where the console is mounted, next to the read-only ones):

* ``GET /api/approvals``: the items waiting for a decision (JSON; amounts in minor units with
  their currency and as a decimal string), the latest decision of each;
* ``POST /approvals/{entity}/{id}``: decide on one item (``entity``: ``transfer``, ``payout``,
  ``hyperwallet_payment``). Fields (an HTML form, or JSON): ``decision`` (``approve`` or
  ``reject``), ``why`` (required, recorded), and ``amount`` (minor units), ``currency``,
  ``destination`` (and ``source`` for a transfer taken from a seller's account) exactly as shown:
  the decision is bound to them, and refused (409) when the item changed since. A form is
  answered with a redirect to the item's page, whose history shows the decision; JSON with 201
  and the decision.

The page lists the same items with Approve / Reject buttons (:func:`awaiting_section`).

Who may decide: as for every console action (:mod:`.app`), the read access, then
``ConsoleAppConfig.edit_auth`` (on the API server Airflow's ``requires_access_dag("PUT",
DagAccessEntity.RUN)``: whoever may change DAG runs may release money running the DAG would
release; a read-only user gets 403, an anonymous one 401), and the same-origin check of a
cookie-authenticated request (a page on another site cannot make a logged-in operator's browser
approve a payout). The decision is recorded under ``ConsoleAppConfig.actor``'s name, in the
ledger's ``approvals`` table, the item's history and the console's audit (``console_actions``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response

from mirakl_connector.console.actions import Actor
from mirakl_connector.console.html import age, money
from mirakl_connector.core.money import from_minor
from mirakl_connector.ledger.store import Ledger
from mirakl_connector.operations.approval_gate import ApprovalDecision, Decision
from mirakl_connector.operations.approvals import (
    WHY_MAX,
    ApprovalRefused,
    AwaitingItem,
    awaiting,
    record_decision,
)

#: Items listed at most (the count is exact).
MAX_LISTED = 200

_DECISIONS = {"approve": Decision.APPROVED, "reject": Decision.REJECTED}
_FORM = "application/x-www-form-urlencoded"


@dataclass
class ApprovalsConfig:
    """Where the decisions are read and written."""

    #: the ledger (the same database the console reads)
    ledger: Callable[[], Ledger]


def approvals_router(
    config: ApprovalsConfig, *, guards: Sequence[Any], actor: Callable[..., Actor]
) -> APIRouter:
    """The routes; ``guards``: the dependencies every console action runs (edit permission,
    same origin); ``actor``: the dependency naming who acts."""
    router = APIRouter()

    @router.get("/api/approvals")
    async def api_awaiting() -> JSONResponse:
        items, total = await run_in_threadpool(
            lambda: awaiting(config.ledger().engine, limit=MAX_LISTED)
        )
        return JSONResponse({"total": total, "items": [_awaiting_json(i) for i in items]})

    @router.post("/approvals/{entity}/{row_id}", dependencies=list(guards))
    async def decide(
        request: Request,
        entity: str,
        row_id: int,
        who: Actor = Depends(actor),
    ) -> Response:
        is_form = _content_type(request) == _FORM
        fields = await _fields(request, is_form=is_form)
        decision = _DECISIONS.get(str(fields.get("decision") or "").strip().lower())
        if decision is None:
            raise HTTPException(422, "decision must be approve or reject")

        def write() -> ApprovalDecision:
            return record_decision(
                config.ledger(),
                entity=entity,
                row_id=row_id,
                decision=decision,
                seen=fields,
                by=who.name,
                why=str(fields.get("why") or ""),
            )

        try:
            recorded = await run_in_threadpool(write)
        except ApprovalRefused as exc:
            raise HTTPException(exc.status, exc.message) from None
        if is_form:
            base = str(request.scope.get("root_path", "")).rstrip("/")
            return RedirectResponse(f"{base}/items/{entity}/{row_id}", status_code=303)
        return JSONResponse({"decision": _decision_json(recorded)}, status_code=201)

    return router


# -- the page section -------------------------------------------------------------------------


def awaiting_section(config: ApprovalsConfig, base: str, now: datetime | None = None) -> str:
    """The page's "Awaiting approval" section: one row and one form per held item."""
    items, total = awaiting(config.ledger().engine, limit=MAX_LISTED)
    now = now or datetime.now(UTC)
    head = f"<h2>Awaiting approval: {total}</h2>"
    if not items:
        return head + "<p class='muted'>Nothing waits for a decision.</p>"
    rows = "".join(_awaiting_row(i, base, now) for i in items)
    more = f"<p class='muted'>The oldest {len(items)} are shown.</p>" if total > len(items) else ""
    return (
        head
        + "<p class='muted'>Held by the <code>approval</code> settings. A decision is bound to "
        "the amount and destination shown; the next run of the workflow sends an approved item, "
        "once.</p><table><tr><th>Item</th><th>Shop</th><th>Amount</th><th>Destination</th>"
        "<th>Reason</th><th>Latest decision</th><th>Waiting</th><th>Decide</th></tr>"
        f"{rows}</table>{more}"
    )


def _awaiting_row(entry: AwaitingItem, base: str, now: datetime) -> str:
    item = entry.item
    detail = f"{base}/items/{entry.entity}/{entry.row_id}"
    action = f"{base}/approvals/{entry.entity}/{entry.row_id}"
    destination = item.destination + (f" (from {item.source})" if item.source else "")
    latest = ""
    if entry.latest is not None:
        d = entry.latest
        latest = (
            f"{d.decision.lower()} by {d.decided_by}, {d.decided_at:%Y-%m-%d %H:%M}: {d.why}"
            + ("" if d.covers(item) else " (void: the item changed)")
        )
    hidden = {
        "amount": str(item.amount),
        "currency": item.currency,
        "destination": item.destination,
        "source": item.source or "",
    }
    inputs = "".join(
        f'<input type="hidden" name="{k}" value="{escape(v)}">' for k, v in hidden.items()
    )
    form = (
        f'<form method="post" action="{escape(action)}">{inputs}'
        f'<input name="why" required maxlength="{WHY_MAX}" placeholder="why (recorded)" size="22">'
        '<button type="submit" name="decision" value="approve">Approve</button>'
        '<button type="submit" name="decision" value="reject">Reject</button></form>'
    )
    return (
        f'<tr><td><a href="{escape(detail)}">{escape(entry.entity)}:{entry.row_id}</a><br>'
        f"<span class='muted'>{escape(item.item)}</span></td>"
        f"<td>{'' if entry.shop_id is None else entry.shop_id}</td>"
        f'<td class="num">{escape(money(item.amount, item.currency))}</td>'
        f"<td>{escape(destination)}</td><td>{escape(entry.reason)}</td>"
        f"<td>{escape(latest)}</td><td>{escape(age(entry.created_at, now))}</td>"
        f"<td>{form}</td></tr>"
    )


# -- request and answer -----------------------------------------------------------------------


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _fields(request: Request, *, is_form: bool) -> Mapping[str, Any]:
    body = await request.body()
    if len(body) > 16_384:
        raise HTTPException(413, "request body too large")
    text = body.decode("utf-8", errors="replace")
    if is_form:
        return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}
    if _content_type(request) != "application/json":
        raise HTTPException(415, f"send {_FORM} or application/json")
    try:
        value = json.loads(text or "null")
    except json.JSONDecodeError:
        raise HTTPException(422, "the body must be a JSON object") from None
    if not isinstance(value, dict):
        raise HTTPException(422, "the body must be a JSON object")
    return value


def _decimal(amount: int, currency: str) -> str:
    try:
        return str(from_minor(amount, currency))
    except Exception:  # noqa: BLE001 - an unknown currency code: the minor units
        return str(amount)


def _decision_json(d: ApprovalDecision) -> dict[str, Any]:
    return {
        "id": d.id,
        "entity": d.entity,
        "item": d.item,
        "row_id": d.row_id,
        "decision": d.decision.value,
        "amount_minor": d.amount,
        "amount": _decimal(d.amount, d.currency),
        "currency": d.currency,
        "destination": d.destination,
        "source": d.source,
        "decided_by": d.decided_by,
        "decided_at": d.decided_at.isoformat(),
        "why": d.why,
    }


def _awaiting_json(entry: AwaitingItem) -> dict[str, Any]:
    item = entry.item
    return {
        "entity": entry.entity,
        "id": entry.row_id,
        "item": item.item,
        "shop_id": entry.shop_id,
        "amount_minor": item.amount,
        "amount": _decimal(item.amount, item.currency),
        "currency": item.currency,
        "destination": item.destination,
        "source": item.source,
        "reason": entry.reason,
        "created_at": entry.created_at.isoformat(),
        "latest_decision": _decision_json(entry.latest) if entry.latest else None,
        "latest_decision_applies": bool(entry.latest and entry.latest.covers(item)),
    }
