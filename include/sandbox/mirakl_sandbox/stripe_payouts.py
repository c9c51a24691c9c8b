"""Stripe payouts and balances, simulated: a payout needs ``payouts_enabled`` and *available*
funds; the balance and the balance transactions say what moved."""

from __future__ import annotations

from typing import Any

from mirakl_sandbox import balances
from mirakl_sandbox.stripe_common import (
    StripeContext,
    StripeError,
    _check_amount,
    _debit_available,
    _equals_params,
    _int_param,
    _list,
    _metadata,
    _missing,
    _owned_by,
    _range_filter,
    _scoped,
    _str_param,
)
from mirakl_sandbox.stripe_events import emit_event


# -- payouts ------------------------------------------------------------------------------------
def create_payout(ctx: StripeContext) -> dict[str, Any]:
    state = ctx.state
    amount = _int_param(ctx, "amount", required=True)
    currency = (_str_param(ctx, "currency", required=True) or "").lower()
    # docs.stripe.com/currencies "Special cases": HUF/TWD/UGX payouts in hundreds only
    _check_amount(amount, currency, payout=True)
    if ctx.stripe_account is not None:
        account = state.find_account(ctx.stripe_account)
        if account is None:
            raise StripeError(
                403,
                f"The provided key does not have access to account '{ctx.stripe_account}' "
                "(or that account does not exist).",
                type="invalid_request_error",
                code="account_invalid",
            )
        if not account.get("payouts_enabled"):
            raise StripeError(400, "Payouts disabled", code="payouts_not_allowed")
    payout_id = state.new_id("po")
    # A payout needs available funds (docs.stripe.com/error-codes#balance-insufficient).
    _debit_available(state, ctx.stripe_account, currency, amount, type_="payout", source=payout_id)
    now = state.now()
    payout = {
        "id": payout_id,
        "object": "payout",
        "amount": amount,
        "arrival_date": now + 2 * 86400,
        "automatic": False,
        "balance_transaction": state.new_id("txn"),
        "created": now,
        "currency": currency,
        "description": _str_param(ctx, "description"),
        "destination": "ba_sandbox",
        "failure_code": None,
        "failure_message": None,
        "livemode": False,
        "metadata": _metadata(ctx),
        "method": _str_param(ctx, "method") or "standard",
        "status": "pending",
        "type": "bank_account",
    }
    state.stripe.payouts.put(payout)
    state.stripe.owners[payout["id"]] = ctx.stripe_account
    emit_event(ctx, state, "payout.created", payout, account=ctx.stripe_account)
    return payout


def retrieve_payout(ctx: StripeContext, payout_id: str) -> dict[str, Any]:
    return _scoped(ctx, ctx.state.stripe.payouts, payout_id, "payout")


def list_payouts(ctx: StripeContext) -> dict[str, Any]:
    """docs.stripe.com/api/payouts/list (SDK ``PayoutListParams``): ``status``, ``created``,
    ``arrival_date`` (a range, like ``created``) and ``destination`` (the external account)."""
    equal = _equals_params(ctx, "status", "destination")
    arrival = _range_filter(ctx, "arrival_date")
    owned = _owned_by(ctx)
    return _list(
        ctx,
        ctx.state.stripe.payouts,
        "/v1/payouts",
        lambda o: owned(o) and equal(o) and arrival(o),
    )


# -- balance ------------------------------------------------------------------------------------
def retrieve_balance(ctx: StripeContext) -> dict[str, Any]:
    """The calling account's balance (docs.stripe.com/api/balance/balance_retrieve)."""
    if ctx.stripe_account is not None and ctx.state.find_account(ctx.stripe_account) is None:
        raise _missing("account", ctx.stripe_account)
    return balances.balance_object(ctx.state, ctx.stripe_account)


def list_balance_transactions(ctx: StripeContext) -> dict[str, Any]:
    """The calling account's balance transactions, newest first
    (docs.stripe.com/api/balance_transactions/list, SDK ``BalanceTransactionListParams``:
    ``created``, ``currency``, ``type``, ``source``, ``payout``). ``payout`` is "for automatic
    Stripe payouts only"; the sandbox makes no automatic payout, so no transaction matches it."""
    balances.refresh_statuses(ctx.state)
    currency = (_str_param(ctx, "currency") or "").lower() or None
    kind = _str_param(ctx, "type")
    source = _str_param(ctx, "source")
    if _str_param(ctx, "payout") is not None:
        return {"object": "list", "data": [], "has_more": False, "url": "/v1/balance_transactions"}
    owner = balances.owner_key(ctx.state, ctx.stripe_account)
    owners = ctx.state.stripe.owners
    return _list(
        ctx,
        ctx.state.stripe.balance_transactions,
        "/v1/balance_transactions",
        lambda o: (
            owners.get(o["id"]) == owner
            and (currency is None or o["currency"] == currency)
            and (kind is None or o["type"] == kind)
            and (source is None or o["source"] == source)
        ),
    )
