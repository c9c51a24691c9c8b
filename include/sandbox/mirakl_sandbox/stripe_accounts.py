"""Stripe Connect accounts, simulated: accounts (create, retrieve, update, list), the platform
account, account links and login links."""

from __future__ import annotations

from typing import Any

from mirakl_sandbox import stripe_contract
from mirakl_sandbox.stripe_common import (
    StripeContext,
    _deep_merge,
    _get,
    _list,
    _metadata,
    _missing,
    _str_param,
    _typed,
)
from mirakl_sandbox.stripe_events import emit_event

# -- accounts -----------------------------------------------------------------------------------
_ACCOUNT_FIELDS = ("type", "country", "email", "business_type", "default_currency")


def create_account(ctx: StripeContext) -> dict[str, Any]:
    state = ctx.state
    account: dict[str, Any] = {"id": state.new_id("acct"), "created": state.now()}
    for name in _ACCOUNT_FIELDS:
        if ctx.params.get(name) is not None:
            account[name] = ctx.params[name]
    for name in ("settings", "business_profile", "individual", "company"):
        if isinstance(ctx.params.get(name), dict):
            account[name] = _typed(ctx, name)
    account["capabilities"] = _capabilities(ctx, {})
    if isinstance(ctx.params.get("controller"), dict):
        account.update(_controller(ctx))
    account["metadata"] = _metadata(ctx)
    account["requirements"] = {"currently_due": ["external_account", "tos_acceptance.date"]}
    obj = state.put_account(stripe_contract.drop_write_only(account | {"object": "account"}))
    emit_event(ctx, state, "account.created", obj, account=obj["id"])
    return obj


def _controller(ctx: StripeContext) -> dict[str, Any]:
    """``controller`` properties as the Account object shows them (``Account.controller``, SDK
    ``_account.py``): the platform controls the account (``type: application``). The legacy
    ``type`` of an account created this way is ``express`` for the Express combination
    (docs.stripe.com/connect/migrate-to-controller-properties) and ``none`` otherwise (the
    value the SDK's ``Account.type`` has for accounts matching no legacy type)."""
    controller = _typed(ctx, "controller")
    express = (
        (controller.get("stripe_dashboard") or {}).get("type") == "express"
        and (controller.get("fees") or {}).get("payer") == "application"
        and (controller.get("losses") or {}).get("payments") == "application"
        and controller.get("requirement_collection", "stripe") == "stripe"
    )
    shown = {"type": "application", "is_controller": True, **controller}
    return {"controller": shown, "type": "express" if express else "none"}


def _capabilities(ctx: StripeContext, current: dict[str, Any]) -> dict[str, Any]:
    """``capabilities[x][requested]=true`` asks for a capability; the account answers its status
    (``Account.capabilities.x`` is a string: active, inactive or pending), ``inactive`` until
    the sandbox enables it (docs.stripe.com/connect/account-capabilities: a requested capability
    stays inactive while its requirements are due)."""
    out = dict(current)
    for name, request in (ctx.params.get("capabilities") or {}).items():
        if isinstance(request, dict) and request.get("requested") == "false":
            out.pop(name, None)
        elif isinstance(request, dict):
            out.setdefault(name, "inactive")
    return out


def retrieve_account(ctx: StripeContext, account_id: str) -> dict[str, Any]:
    obj = ctx.state.find_account(account_id)
    if obj is None:
        raise _missing("account", account_id, "account")
    return obj


def retrieve_platform_account(ctx: StripeContext) -> dict[str, Any]:
    if ctx.stripe_account:
        return retrieve_account(ctx, ctx.stripe_account)
    return ctx.state.stripe.platform_account


def update_account(ctx: StripeContext, account_id: str) -> dict[str, Any]:
    obj = _get(ctx.state.stripe.accounts, account_id, "account", "account")
    previous: dict[str, Any] = {}
    skip = ("metadata", "expand", "capabilities")
    patch = {k: _typed(ctx, k) for k in ctx.params if k not in skip}
    if "capabilities" in ctx.params:
        patch["capabilities"] = _capabilities(ctx, obj.get("capabilities") or {})
    for key, value in patch.items():
        previous[key] = obj.get(key)
        obj[key] = _deep_merge(obj[key], value) if isinstance(obj.get(key), dict) else value
    if "metadata" in ctx.params:
        previous["metadata"] = dict(obj.get("metadata") or {})
        obj["metadata"] = _metadata(ctx, obj.get("metadata"))
    stripe_contract.drop_write_only(obj)  # write-only params (account_token, tax ids) stay unsaid
    previous = {k: v for k, v in previous.items() if k in obj}
    emit_event(
        ctx, ctx.state, "account.updated", obj, account=account_id, previous_attributes=previous
    )
    return obj


def list_accounts(ctx: StripeContext) -> dict[str, Any]:
    return _list(ctx, ctx.state.stripe.accounts, "/v1/accounts")


def create_account_link(ctx: StripeContext) -> dict[str, Any]:
    account_id = _str_param(ctx, "account", required=True)
    _str_param(ctx, "type", required=True)
    if ctx.state.find_account(account_id) is None:
        raise _missing("account", account_id, "account")
    now = ctx.state.now()
    query = "&".join(
        f"{name}={ctx.params[name]}" for name in ("return_url", "refresh_url") if name in ctx.params
    )
    url = f"{ctx.base_url}/_sandbox/onboarding/{account_id}" + (f"?{query}" if query else "")
    return {"object": "account_link", "url": url, "created": now, "expires_at": now + 300}


def create_login_link(ctx: StripeContext, account_id: str) -> dict[str, Any]:
    if ctx.state.stripe.accounts.get(account_id) is None:
        raise _missing("account", account_id, "account")
    # A login link has no ``id`` (docs.stripe.com/api/accounts/login_link/object and
    # stripe/_login_link.py).
    return {
        "object": "login_link",
        "url": f"{ctx.base_url}/_sandbox/dashboard/{account_id}",
        "created": ctx.state.now(),
    }
