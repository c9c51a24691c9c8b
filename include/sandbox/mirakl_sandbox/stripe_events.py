"""Stripe Events, simulated: every handler appends the Event Stripe would send, and the Events
list shows the platform's own. Events of a connected account live on that account: the
platform's Events list never shows them (:func:`list_events`)."""

from __future__ import annotations

import fnmatch
from typing import Any

from mirakl_sandbox.state import SandboxState
from mirakl_sandbox.stripe_common import StripeContext, StripeError, _list, _missing, _str_param


# -- events -------------------------------------------------------------------------------------
def emit_event(
    ctx: StripeContext | None,
    state: SandboxState,
    event_type: str,
    obj: dict[str, Any],
    *,
    account: str | None = None,
    previous_attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Append an Event (also used by the admin API, where ``ctx`` is ``None``)."""
    data: dict[str, Any] = {"object": dict(obj)}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    event = {
        "id": state.new_id("evt"),
        "object": "event",
        "type": event_type,
        "created": state.now(),
        "livemode": False,
        "api_version": "2026-10-28.endive",
        "pending_webhooks": 0,
        "data": data,
        "account": account,
        "request": {
            "id": ctx.request_id if ctx else None,
            "idempotency_key": ctx.idempotency_key if ctx else None,
        },
    }
    state.stripe.events.put(event)
    webhooks = getattr(state, "webhooks", None)
    if webhooks is not None:
        webhooks.emit(event)
    return event


# -- events -------------------------------------------------------------------------------------
def list_events(ctx: StripeContext) -> dict[str, Any]:
    single = _str_param(ctx, "type")
    types = ctx.params.get("types")
    if single and types:
        raise StripeError(
            400, "You may only specify one of these parameters: type, types.", param="types"
        )
    patterns = (
        [single] if single else types if isinstance(types, list) else [types] if types else []
    )
    if len(patterns) > 20:
        raise StripeError(400, "The types parameter accepts at most 20 values.", param="types")
    account = ctx.stripe_account

    def match(event: dict[str, Any]) -> bool:
        # An event of a connected account lives on that account: the platform's list (no
        # Stripe-Account) never returns it, only that account's list does. Docs: "Connect
        # webhooks" (docs.stripe.com/connect/webhooks: events on connected accounts go to Connect
        # endpoints and carry ``account``) and docs.stripe.com/connect/authentication (requests
        # with Stripe-Account act as the connected account).
        if event.get("account") != account:
            return False
        return not patterns or any(fnmatch.fnmatchcase(event["type"], p) for p in patterns)

    return _list(ctx, ctx.state.stripe.events, "/v1/events", match)


def retrieve_event(ctx: StripeContext, event_id: str) -> dict[str, Any]:
    obj = ctx.state.stripe.events.get(event_id)
    if obj is None or obj.get("account") != ctx.stripe_account:
        raise _missing("event", event_id, "id")
    return obj
