"""Stripe charges and PaymentIntents, simulated (and the customers and products a test creates
around them): capture, cancel, and what a charge can fund."""

from __future__ import annotations

from typing import Any

from mirakl_sandbox import balances
from mirakl_sandbox.state import SandboxState
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
    _owned_by,
    _str_param,
    _typed,
)
from mirakl_sandbox.stripe_events import emit_event

REQUIRES_STATES = {
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "requires_capture",
}


# -- charges and payment intents ----------------------------------------------------------------
def retrieve_charge(ctx: StripeContext, charge_id: str) -> dict[str, Any]:
    """A charge as the calling account sees it: a connected account's charge (the ``py_``
    payment of a transfer, ``Transfer.destination_payment``) only with its ``Stripe-Account``
    header, a platform charge only without one (docs.stripe.com/connect/authentication: the
    header makes the request as that account; other accounts' objects are ``resource_missing``).
    """
    obj = ctx.state.stripe.charges.get(charge_id)
    if obj is None or ctx.state.stripe.owners.get(charge_id) != ctx.stripe_account:
        raise _missing("charge", charge_id, "charge")
    return obj


def list_charges(ctx: StripeContext) -> dict[str, Any]:
    """The calling account's charges only (as :func:`retrieve_charge`)."""
    equal = _equals_params(ctx, "payment_intent")
    owned = _owned_by(ctx)
    return _list(ctx, ctx.state.stripe.charges, "/v1/charges", lambda o: owned(o) and equal(o))


def _capture_charge_object(ctx: StripeContext, charge: dict[str, Any], amount: int | None) -> None:
    if charge.get("status") != "succeeded":
        raise StripeError(
            400,
            f"Charge {charge['id']} cannot be captured because it has a status of "
            f"{charge.get('status')}.",
            code="charge_not_capturable",
        )
    if charge.get("captured"):
        raise StripeError(
            400, f"Charge {charge['id']} has already been captured.", code="charge_already_captured"
        )
    amount = charge["amount"] if amount is None else amount
    _check_amount(amount, charge["currency"])  # docs.stripe.com/currencies
    if amount > charge["amount"]:
        raise StripeError(400, "Amount to capture exceeds the authorized amount.", param="amount")
    charge["captured"] = True
    charge["amount_captured"] = amount
    if amount < charge["amount"]:
        charge["amount_refunded"] = charge["amount"] - amount
    _credit_charge(ctx.state, charge, amount)
    emit_event(ctx, ctx.state, "charge.captured", charge)


def _credit_charge(state: SandboxState, charge: dict[str, Any], amount: int) -> None:
    """A captured charge's funds reach the platform's balance, pending until its availability
    date (docs.stripe.com/api/balance_transactions/object, ``available_on``; the delay is the
    scenario's, see :mod:`mirakl_sandbox.balances`). Charges loaded from a scenario
    are history: their funds are whatever the scenario's ``platform_balance`` says."""
    available_on = balances.charge_available_on(state, charge)
    state.stripe.charge_funds[charge["id"]] = available_on
    balances.credit(
        state,
        None,
        charge["currency"],
        amount,
        type_="charge",
        source=charge["id"],
        available_on=available_on,
    )


def capture_charge(ctx: StripeContext, charge_id: str) -> dict[str, Any]:
    charge = retrieve_charge(ctx, charge_id)
    _capture_charge_object(ctx, charge, _int_param(ctx, "amount"))
    return charge


def retrieve_payment_intent(ctx: StripeContext, pi_id: str) -> dict[str, Any]:
    return _get(ctx.state.stripe.payment_intents, pi_id, "payment_intent", "intent")


#: What ``payment_method`` may name (PaymentIntentCreateParams.payment_method: "The ID of a
#: PaymentMethod"; Card and Source ids are accepted for migration, docs.stripe.com/payments/
#: payment-intents/migration). The sandbox has no PaymentMethod objects: ids are taken on trust.
_PAYMENT_METHOD_PREFIXES = ("pm_", "card_", "src_")


def create_payment_intent(ctx: StripeContext) -> dict[str, Any]:
    """``POST /v1/payment_intents`` with ``confirm=true`` (the generic "Create charge" action).

    Without ``payment_method``, Stripe uses the customer's ``default_source`` (SDK docstring of
    ``PaymentIntentCreateParams.payment_method``); the sandbox's customers have none, so such a
    confirmation is refused as Stripe refuses a PaymentIntent missing a payment method. Only a
    card outcome is simulated: the intent succeeds (``capture_method=automatic``) or waits for
    capture (``manual``) with its charge.
    """
    state = ctx.state
    amount = _int_param(ctx, "amount", required=True)
    currency = (_str_param(ctx, "currency", required=True) or "").lower()
    _check_amount(amount, currency)  # docs.stripe.com/currencies
    customer = _str_param(ctx, "customer")
    if customer is not None and customer not in state.stripe.customers:
        raise _missing("customer", customer, "customer")
    method = _str_param(ctx, "payment_method")
    if method is not None and not method.startswith(_PAYMENT_METHOD_PREFIXES):
        raise _missing("payment_method", method, "payment_method")
    confirm = ctx.params.get("confirm") in ("true", True)
    manual = ctx.params.get("capture_method") == "manual"
    intent_id = state.new_id("pi")
    intent: dict[str, Any] = {
        "id": intent_id,
        "amount": amount,
        "currency": currency,
        "customer": customer,
        "payment_method": method,
        "capture_method": "manual" if manual else "automatic",
        "description": _str_param(ctx, "description"),
        "receipt_email": _str_param(ctx, "receipt_email"),
        "shipping": _typed(ctx, "shipping") if "shipping" in ctx.params else None,
        "metadata": _metadata(ctx),
        "status": "requires_payment_method" if method is None else "requires_confirmation",
    }
    if confirm:
        if method is None:
            raise StripeError(
                400,
                "You cannot confirm this PaymentIntent because it's missing a payment method.",
                code="payment_intent_unexpected_state",
                param="payment_method",
            )
        charge = state.put_charge(
            {
                "id": state.new_id("ch"),
                "amount": amount,
                "currency": currency,
                "captured": not manual,
                "amount_captured": 0 if manual else amount,
                "customer": customer,
                "payment_intent": intent_id,
                "payment_method": method,
                "description": intent["description"],
                "receipt_email": intent["receipt_email"],
                "shipping": intent["shipping"],
                "metadata": dict(intent["metadata"]),
            }
        )
        intent.update(
            status="requires_capture" if manual else "succeeded",
            latest_charge=charge["id"],
            amount_capturable=amount if manual else 0,
            amount_received=0 if manual else amount,
        )
        emit_event(ctx, state, "charge.succeeded", charge)
    obj = state.put_payment_intent(intent)
    emit_event(ctx, state, "payment_intent.created", obj)
    if obj["status"] == "succeeded":
        emit_event(ctx, state, "payment_intent.succeeded", obj)
    elif obj["status"] == "requires_capture":
        emit_event(ctx, state, "payment_intent.amount_capturable_updated", obj)
    return obj


def capture_payment_intent(ctx: StripeContext, pi_id: str) -> dict[str, Any]:
    intent = retrieve_payment_intent(ctx, pi_id)
    if intent["status"] != "requires_capture":
        raise StripeError(
            400,
            "This PaymentIntent could not be captured because it has a status of "
            f"{intent['status']}.",
            code="payment_intent_unexpected_state",
        )
    amount = _int_param(ctx, "amount_to_capture")
    amount = intent["amount"] if amount is None else amount
    _check_amount(amount, intent["currency"], param="amount_to_capture")
    if amount > intent["amount"]:
        raise StripeError(
            400,
            "The amount_to_capture must be less than or equal to the amount capturable.",
            param="amount_to_capture",
        )
    state = ctx.state
    charge = state.stripe.charges.get(intent.get("latest_charge") or "")
    if charge is None:
        charge = state.put_charge(
            {
                "id": state.new_id("ch"),
                "amount": intent["amount"],
                "currency": intent["currency"],
                "captured": False,
                "amount_captured": 0,
                "payment_intent": pi_id,
                "transfer_group": intent.get("transfer_group"),
                "metadata": {},
            }
        )
        intent["latest_charge"] = charge["id"]
    if not charge.get("captured"):
        _capture_charge_object(ctx, charge, amount)
    intent.update(status="succeeded", amount_received=amount, amount_capturable=0)
    emit_event(ctx, state, "payment_intent.succeeded", intent)
    return intent


def cancel_payment_intent(ctx: StripeContext, pi_id: str) -> dict[str, Any]:
    intent = retrieve_payment_intent(ctx, pi_id)
    if intent["status"] not in REQUIRES_STATES:
        raise StripeError(
            400,
            "You cannot cancel this PaymentIntent because it has a status of "
            f"{intent['status']}. Only a PaymentIntent with one of the following statuses may "
            "be canceled: requires_payment_method, requires_capture, requires_confirmation, "
            "requires_action.",
            code="payment_intent_unexpected_state",
        )
    intent.update(
        status="canceled",
        amount_capturable=0,
        canceled_at=ctx.state.now(),
        cancellation_reason=_str_param(ctx, "cancellation_reason"),
    )
    emit_event(ctx, ctx.state, "payment_intent.canceled", intent)
    return intent


# -- generic objects (charges, customers, products) --------------------------------------------
def create_charge(ctx: StripeContext) -> dict[str, Any]:
    state = ctx.state
    amount = _int_param(ctx, "amount", required=True)
    currency = (_str_param(ctx, "currency", required=True) or "").lower()
    _check_amount(amount, currency)  # docs.stripe.com/currencies
    customer = _str_param(ctx, "customer")
    source = _str_param(ctx, "source")
    if customer is None and source is None:
        raise StripeError(400, "Must provide source or customer.", code="missing")
    if customer is not None and customer not in state.stripe.customers:
        raise _missing("customer", customer, "customer")
    capture = ctx.params.get("capture") not in ("false", False)
    charge = state.put_charge(
        {
            "id": state.new_id("ch"),
            "amount": amount,
            "currency": currency,
            "captured": capture,
            "customer": customer,
            "source": {"id": source, "object": "source"} if source else None,
            "description": _str_param(ctx, "description"),
            "receipt_email": _str_param(ctx, "receipt_email"),
            "shipping": _typed(ctx, "shipping") if "shipping" in ctx.params else None,
            "metadata": _metadata(ctx),
        }
    )
    if capture:
        _credit_charge(state, charge, amount)
    emit_event(ctx, state, "charge.succeeded", charge)
    return charge


def create_customer(ctx: StripeContext) -> dict[str, Any]:
    state = ctx.state
    customer = {
        "id": state.new_id("cus"),
        "object": "customer",
        "created": state.now(),
        "livemode": False,
        "metadata": _metadata(ctx),
    }
    for name in ("email", "name", "phone", "description"):
        customer[name] = _str_param(ctx, name)
    for name in ("address", "shipping"):
        customer[name] = _typed(ctx, name) if name in ctx.params else None
    state.stripe.customers.put(customer)
    emit_event(ctx, state, "customer.created", customer)
    return customer


def retrieve_customer(ctx: StripeContext, customer_id: str) -> dict[str, Any]:
    return _get(ctx.state.stripe.customers, customer_id, "customer", "id")


def create_product(ctx: StripeContext) -> dict[str, Any]:
    state = ctx.state
    product = {
        "id": state.new_id("prod"),
        "object": "product",
        "active": ctx.params.get("active") not in ("false", False),
        "created": state.now(),
        "livemode": False,
        "name": _str_param(ctx, "name", required=True),
        "description": _str_param(ctx, "description"),
        "metadata": _metadata(ctx),
    }
    state.stripe.products.put(product)
    emit_event(ctx, state, "product.created", product)
    return product
