"""Stripe transfers and their reversals, simulated: transfers funded by a
``source_transaction`` cannot exceed what the charge can fund, transfers made from a balance
and reversals need *available* funds on the account they take them from, reversals cannot
exceed what remains."""

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
    _scoped,
    _str_param,
)
from mirakl_sandbox.stripe_events import emit_event

TRANSFERS_DISABLED_FLAG = "sandbox_transfers_disabled"


# -- transfers and reversals ----------------------------------------------------------------------
def create_transfer(ctx: StripeContext) -> dict[str, Any]:
    state = ctx.state
    amount = _int_param(ctx, "amount", required=True)
    currency = (_str_param(ctx, "currency", required=True) or "").lower()
    _check_amount(amount, currency)  # docs.stripe.com/currencies (stricter: see stripe_amounts)
    destination = _str_param(ctx, "destination", required=True)
    source = _str_param(ctx, "source_transaction")
    dest_account = state.find_account(destination)
    if dest_account is None or destination == ctx.stripe_account:
        raise StripeError(
            400,
            f"No such destination: '{destination}'",
            param="destination",
            code="resource_missing",
        )
    if (dest_account.get("metadata") or {}).get(TRANSFERS_DISABLED_FLAG) == "true":
        raise StripeError(
            400, "Transfers disabled.", code="transfers_not_allowed", param="destination"
        )
    if source is not None:
        charge = state.stripe.charges.get(source)
        if charge is None:
            raise _missing("charge", source, "source_transaction")
        if charge.get("status") != "succeeded" or not charge.get("captured"):
            raise StripeError(
                400,
                f"The source_transaction {source} must be a succeeded and captured charge.",
                param="source_transaction",
            )
        if charge["currency"] != currency:
            raise StripeError(
                400,
                f"The currency of source_transaction's balance transaction ({charge['currency']})"
                f" must be the same as the transfer currency ({currency}).",
                param="currency",
            )
        # What a charge can fund: its captured amount minus what was already transferred from it
        # (the rule suggested for simulators by the API reference, B.7). Refunds do not reduce it:
        # the connector transfers the seller's full share and reverses the refunded part later,
        # whichever of the refund and the split runs first.
        captured = charge.get("amount_captured", charge["amount"])
        available = captured - state.stripe.transferred_from_charge.get(source, 0)
        if charge.get("refunded"):
            available = 0  # a fully refunded charge funds nothing any more
        if amount > available:
            raise StripeError(
                400,
                "Transfer amount exceeds the available amount of the source transaction",
                code="insufficient_funds",
                param="amount",
            )
        state.stripe.transferred_from_charge[source] = (
            state.stripe.transferred_from_charge.get(source, 0) + amount
        )
    transfer_id = state.new_id("tr")
    _move_transfer_funds(ctx, transfer_id, source, destination, currency, amount)
    transfer = {
        "id": transfer_id,
        "object": "transfer",
        "amount": amount,
        "amount_reversed": 0,
        "balance_transaction": state.new_id("txn"),
        "created": state.now(),
        "currency": currency,
        "description": _str_param(ctx, "description"),
        "destination": destination,
        "destination_payment": state.new_id("py"),
        "livemode": False,
        "metadata": _metadata(ctx),
        "reversals": {
            "object": "list",
            "data": [],
            "has_more": False,
            "url": f"/v1/transfers/{transfer_id}/reversals",
        },
        "reversed": False,
        "source_transaction": source,
        "source_type": "card",
        "transfer_group": _str_param(ctx, "transfer_group"),
    }
    state.stripe.transfers.put(transfer)
    state.stripe.owners[transfer_id] = ctx.stripe_account
    emit_event(ctx, state, "transfer.created", transfer, account=ctx.stripe_account)
    return transfer


def _move_transfer_funds(
    ctx: StripeContext,
    transfer_id: str,
    source: str | None,
    destination: str,
    currency: str,
    amount: int,
) -> None:
    """Move a transfer's funds between the two balances (see sandbox/balances.py).

    With ``source_transaction`` the transfer is allowed while the charge's funds are pending;
    the destination receives them when the charge's funds become available
    (docs.stripe.com/connect/separate-charges-and-transfers#transfer-availability). Without
    it the funds come from the sender's *available* balance and arrive available.
    """
    state = ctx.state
    if source is not None:
        charge = state.stripe.charges.get(source) or {}
        available_on = state.stripe.charge_funds.get(source)
        if available_on is not None:  # the platform holds this charge's funds: they leave it
            balances.credit(
                state, None, currency, -amount, type_="transfer", source=transfer_id,
                available_on=available_on,
            )  # fmt: skip
        else:
            available_on = balances.charge_available_on(state, charge)
        balances.credit(
            state, destination, currency, amount, type_="payment", source=transfer_id,
            available_on=max(available_on, state.now()),
        )  # fmt: skip
        return
    _debit_available(
        state, ctx.stripe_account, currency, amount, type_="transfer", source=transfer_id
    )
    balances.credit(state, destination, currency, amount, type_="payment", source=transfer_id)


def retrieve_transfer(ctx: StripeContext, transfer_id: str) -> dict[str, Any]:
    return _scoped(ctx, ctx.state.stripe.transfers, transfer_id, "transfer")


def list_transfers(ctx: StripeContext) -> dict[str, Any]:
    equal = _equals_params(ctx, "destination", "transfer_group")
    owned = _owned_by(ctx)
    return _list(ctx, ctx.state.stripe.transfers, "/v1/transfers", lambda o: owned(o) and equal(o))


def create_reversal(ctx: StripeContext, transfer_id: str) -> dict[str, Any]:
    state = ctx.state
    transfer = retrieve_transfer(ctx, transfer_id)
    remaining = transfer["amount"] - transfer["amount_reversed"]
    if remaining <= 0:
        raise StripeError(400, "Transfer already reversed.", code="transfer_already_reversed")
    amount = _int_param(ctx, "amount")
    amount = remaining if amount is None else amount
    _check_amount(amount, transfer["currency"])  # docs.stripe.com/currencies
    if amount > remaining:
        raise StripeError(
            400,
            f"Amount ({amount}) is greater than the amount remaining to reverse on the "
            f"transfer ({remaining}).",
            param="amount",
        )
    reversal_id = state.new_id("trr")
    # Only when the destination account's balance covers it (docs.stripe.com/api/
    # transfer_reversals); "balance" is read as available funds, the stricter reading.
    _debit_available(
        state,
        transfer["destination"],
        transfer["currency"],
        amount,
        type_="payment_refund",
        source=reversal_id,
    )
    balances.credit(
        state, ctx.stripe_account, transfer["currency"], amount,
        type_="transfer_refund", source=reversal_id,
    )  # fmt: skip
    reversal = {
        "id": reversal_id,
        "object": "transfer_reversal",
        "amount": amount,
        "balance_transaction": state.new_id("txn"),
        "created": state.now(),
        "currency": transfer["currency"],
        "destination_payment_refund": state.new_id("pyr"),
        "metadata": _metadata(ctx),
        "source_refund": None,
        "transfer": transfer_id,
    }
    state.stripe.reversals.put(reversal)
    state.stripe.owners[reversal["id"]] = ctx.stripe_account
    transfer["amount_reversed"] += amount
    transfer["reversed"] = transfer["amount_reversed"] >= transfer["amount"]
    reversals = transfer["reversals"]
    # The 10 most recent are embedded (docs.stripe.com/api/transfers/object, ``reversals``); the
    # list has no ``total_count`` in the SDK's ListObject for this API version.
    data = [reversal, *reversals["data"]]
    reversals["data"] = data[:10]
    reversals["has_more"] = reversals["has_more"] or len(data) > 10
    emit_event(ctx, state, "transfer.reversed", transfer, account=ctx.stripe_account)
    return reversal


def list_reversals(ctx: StripeContext, transfer_id: str) -> dict[str, Any]:
    retrieve_transfer(ctx, transfer_id)
    return _list(
        ctx,
        ctx.state.stripe.reversals,
        f"/v1/transfers/{transfer_id}/reversals",
        lambda o: o["transfer"] == transfer_id,
    )


def retrieve_reversal(ctx: StripeContext, transfer_id: str, reversal_id: str) -> dict[str, Any]:
    retrieve_transfer(ctx, transfer_id)
    obj = ctx.state.stripe.reversals.get(reversal_id)
    if obj is None or obj["transfer"] != transfer_id:
        raise _missing("transfer_reversal", reversal_id, "id")
    return obj
