"""Stripe refunds, simulated: a refund cannot exceed what remains of its charge."""

from __future__ import annotations

from typing import Any

from mirakl_sandbox import balances
from mirakl_sandbox.stripe_common import (
    StripeContext,
    StripeError,
    _check_amount,
    _equals_params,
    _get,
    _int_param,
    _list,
    _metadata,
    _missing,
    _str_param,
)
from mirakl_sandbox.stripe_events import emit_event
from mirakl_sandbox.stripe_payments import retrieve_payment_intent


# -- refunds ------------------------------------------------------------------------------------
def create_refund(ctx: StripeContext) -> dict[str, Any]:
    state = ctx.state
    charge_id = _str_param(ctx, "charge")
    pi_id = _str_param(ctx, "payment_intent")
    if charge_id is None and pi_id is None:
        raise StripeError(
            400,
            "One of the following params should be provided for this request: "
            "payment_intent or charge.",
            param="charge",
        )
    if charge_id is None:
        intent = retrieve_payment_intent(ctx, pi_id or "")
        charge_id = intent.get("latest_charge")
        if not charge_id or charge_id not in state.stripe.charges:
            raise StripeError(
                400,
                f"This PaymentIntent ({pi_id}) does not have a successful charge to refund.",
                param="payment_intent",
            )
    charge = state.stripe.charges.get(charge_id)
    if charge is None:
        raise _missing("charge", charge_id, "charge")
    remaining = charge["amount"] - charge.get("amount_refunded", 0)
    amount = _int_param(ctx, "amount")
    amount = remaining if amount is None else amount
    _check_amount(amount, charge["currency"])  # docs.stripe.com/currencies (Refunds)
    if remaining <= 0 or charge.get("refunded"):
        raise StripeError(
            400, f"Charge {charge_id} has already been refunded.", code="charge_already_refunded"
        )
    if amount > remaining:
        raise StripeError(
            400,
            f"Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})",
            param="amount",
        )
    refund = {
        "id": state.new_id("re"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": state.new_id("txn"),
        "charge": charge_id,
        "created": state.now(),
        "currency": charge["currency"],
        "metadata": _metadata(ctx),
        "payment_intent": charge.get("payment_intent"),
        "reason": _str_param(ctx, "reason"),
        "status": "succeeded",
        "transfer_reversal": None,
    }
    state.stripe.refunds.put(refund)
    # Taken from the platform's balance, never refused for funds (see sandbox/balances.py).
    balances.credit(state, None, charge["currency"], -amount, type_="refund", source=refund["id"])
    charge["amount_refunded"] = charge.get("amount_refunded", 0) + amount
    charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
    emit_event(ctx, state, "refund.created", refund)
    emit_event(ctx, state, "charge.refunded", charge)
    return refund


def retrieve_refund(ctx: StripeContext, refund_id: str) -> dict[str, Any]:
    return _get(ctx.state.stripe.refunds, refund_id, "refund", "refund")


def list_refunds(ctx: StripeContext) -> dict[str, Any]:
    equal = _equals_params(ctx, "charge", "payment_intent")
    return _list(ctx, ctx.state.stripe.refunds, "/v1/refunds", equal)
