"""The Stripe v1 API subset the connector uses, simulated statefully (pure: context in, dict out).

Objects carry the fields the connector reads (and the SDK expects: ``id``, ``object``, ``created``,
``livemode``, ``metadata``). Business rules that matter to the money flow are enforced: transfers
funded by a ``source_transaction`` cannot exceed what the charge can fund, transfers made from a
balance, reversals and payouts need *available* funds on the account they take them from
(balances: :mod:`mirakl_sandbox.balances`), reversals and refunds cannot exceed what
remains, payouts need ``payouts_enabled``. Events of a connected account live on that account:
the platform's Events list never shows them (:func:`list_events`). Idempotency, rate limits
and faults are applied around these handlers by
:mod:`mirakl_sandbox.app`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mirakl_sandbox import balances, stripe_amounts, stripe_contract
from mirakl_sandbox.state import Collection, SandboxState

REQUIRES_STATES = {
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "requires_capture",
}
TRANSFERS_DISABLED_FLAG = "sandbox_transfers_disabled"


class StripeError(Exception):
    """An error answer in Stripe's envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",  # noqa: A002 - Stripe's field name
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
        if self.param:
            error["param"] = self.param
        return {"error": error}


@dataclass
class StripeContext:
    """One request as the handlers see it."""

    state: SandboxState
    method: str
    path: str
    params: dict[str, Any]
    stripe_account: str | None = None
    idempotency_key: str | None = None
    request_id: str = ""
    base_url: str = ""


Handler = Callable[..., dict[str, Any]]


# -- parameter coercion -------------------------------------------------------------------------
def _int_param(
    ctx: StripeContext, name: str, *, required: bool = False, low: int = 1
) -> int | None:
    raw = ctx.params.get(name)
    if raw is None or raw == "":
        if required:
            raise StripeError(400, f"Missing required param: {name}.", param=name)
        return None
    try:
        value = int(str(raw))
    except ValueError:
        raise StripeError(400, f"Invalid integer: {raw}", param=name) from None
    if value < low:
        raise StripeError(400, f"This value must be greater than or equal to {low}.", param=name)
    return value


def _check_amount(
    amount: int | None, currency: str, *, payout: bool = False, param: str = "amount"
) -> None:
    """Stripe's currency rules (docs.stripe.com/currencies; see :mod:`.stripe_amounts`)."""
    refused = stripe_amounts.refusal(amount, currency, payout=payout, param=param)
    if refused is not None:
        raise StripeError(400, refused.message, code=refused.code, param=refused.param)


def _str_param(ctx: StripeContext, name: str, *, required: bool = False) -> str | None:
    raw = ctx.params.get(name)
    if raw is None or raw == "":
        if required:
            raise StripeError(400, f"Missing required param: {name}.", param=name)
        return None
    if not isinstance(raw, str):
        raise StripeError(400, f"Invalid string: {raw!r}", param=name)
    return raw


def _metadata(ctx: StripeContext, current: dict[str, Any] | None = None) -> dict[str, Any]:
    """Merge ``metadata[...]``; an empty value deletes the key (Stripe semantics)."""
    merged = dict(current or {})
    incoming = ctx.params.get("metadata")
    if incoming in (None, ""):
        return merged if incoming is None else {}
    if not isinstance(incoming, dict):
        raise StripeError(400, "Invalid metadata: must be a hash.", param="metadata")
    for key, value in incoming.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _typed(ctx: StripeContext, name: str) -> Any:
    """A free-form param (``settings``, ``shipping`` ...) with its leaves typed as the SDK's
    params type says (``"false"`` -> False where a bool is expected, ``"75001"`` stays a string
    where a string is), not guessed from how they look."""
    return stripe_contract.coerce_param(ctx.method, ctx.path, name, ctx.params[name])


def _deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _missing(kind: str, obj_id: str, param: str | None = None) -> StripeError:
    return StripeError(404, f"No such {kind}: '{obj_id}'", code="resource_missing", param=param)


def _scoped(ctx: StripeContext, collection: Collection, obj_id: str, kind: str) -> dict[str, Any]:
    """An object visible to the calling account (platform, or the Stripe-Account header)."""
    obj = collection.get(obj_id)
    if obj is None or ctx.state.stripe.owners.get(obj_id) != ctx.stripe_account:
        raise _missing(kind, obj_id, "id")
    return obj


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


# -- lists --------------------------------------------------------------------------------------
def _created_filter(ctx: StripeContext) -> Callable[[dict[str, Any]], bool]:
    return _range_filter(ctx, "created")


def _range_filter(ctx: StripeContext, name: str) -> Callable[[dict[str, Any]], bool]:
    """A timestamp filter of a list (``created``, a payout's ``arrival_date``): an exact Unix
    time, or a range of ``gt``/``gte``/``lt``/``lte`` (the SDK's ``*ListParamsCreated``)."""
    created = ctx.params.get(name)
    if created is None:
        return lambda _o: True
    if isinstance(created, str):
        exact = _to_int(created, name)
        return lambda o: o.get(name) == exact
    if not isinstance(created, dict):
        raise StripeError(400, f"Invalid {name} filter.", param=name)
    bounds = {op: _to_int(v, f"{name}[{op}]") for op, v in created.items()}
    ops = {
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
    }
    for op in bounds:
        if op not in ops:
            raise StripeError(400, f"Received unknown parameter: {name}[{op}]", param=name)
    return lambda o: all(ops[op](o.get(name, 0), v) for op, v in bounds.items())


def _to_int(raw: Any, param: str) -> int:
    try:
        return int(str(raw))
    except ValueError:
        raise StripeError(400, f"Invalid integer: {raw}", param=param) from None


def _list(
    ctx: StripeContext,
    collection: Collection,
    url: str,
    match: Callable[[dict[str, Any]], bool] | None = None,
) -> dict[str, Any]:
    limit = _int_param(ctx, "limit") or 10
    if limit > 100:
        raise StripeError(400, "This value must be less than or equal to 100.", param="limit")
    created = _created_filter(ctx)
    starting_after = _str_param(ctx, "starting_after")
    ending_before = _str_param(ctx, "ending_before")
    for cursor, name in ((starting_after, "starting_after"), (ending_before, "ending_before")):
        if cursor is not None and cursor not in collection:
            raise _missing("object", cursor, name)

    def accept(obj: dict[str, Any]) -> bool:
        return created(obj) and (match is None or match(obj))

    data, has_more = collection.page(
        limit=limit, starting_after=starting_after, ending_before=ending_before, match=accept
    )
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def _owned_by(ctx: StripeContext) -> Callable[[dict[str, Any]], bool]:
    owners = ctx.state.stripe.owners
    return lambda o: owners.get(o["id"]) == ctx.stripe_account


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
    obj = ctx.state.stripe.accounts.get(account_id)
    if obj is None:
        raise _missing("account", account_id, "account")
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
    pi = _str_param(ctx, "payment_intent")
    owned = _owned_by(ctx)
    return _list(
        ctx,
        ctx.state.stripe.charges,
        "/v1/charges",
        lambda o: owned(o) and (pi is None or o.get("payment_intent") == pi),
    )


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


def _insufficient(account: str | None) -> StripeError:
    """Stripe's refusal of a transfer or payout the balance cannot cover: 400,
    ``invalid_request_error``, ``balance_insufficient`` (docs.stripe.com/error-codes)."""
    whose = "your Stripe account" if account is None else f"account {account}"
    return StripeError(
        400,
        f"You have insufficient available funds in {whose} to cover this request. "
        "Try adding funds directly to your available balance.",
        code=balances.BALANCE_INSUFFICIENT,
    )


def _debit_available(
    state: SandboxState,
    account: str | None,
    currency: str,
    amount: int,
    *,
    type_: str,
    source: str | None,
) -> None:
    """Take ``amount`` from the account's *available* funds, or refuse (balance_insufficient)."""
    available, _pending = balances.amounts(state, account, currency)
    if amount > available:
        raise _insufficient(balances.owner_key(state, account))
    balances.credit(state, account, currency, -amount, type_=type_, source=source)


def capture_charge(ctx: StripeContext, charge_id: str) -> dict[str, Any]:
    charge = retrieve_charge(ctx, charge_id)
    _capture_charge_object(ctx, charge, _int_param(ctx, "amount"))
    return charge


def retrieve_payment_intent(ctx: StripeContext, pi_id: str) -> dict[str, Any]:
    obj = ctx.state.stripe.payment_intents.get(pi_id)
    if obj is None:
        raise _missing("payment_intent", pi_id, "intent")
    return obj


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
    destination = _str_param(ctx, "destination")
    group = _str_param(ctx, "transfer_group")
    owned = _owned_by(ctx)
    return _list(
        ctx,
        ctx.state.stripe.transfers,
        "/v1/transfers",
        lambda o: (
            owned(o)
            and (destination is None or o["destination"] == destination)
            and (group is None or o.get("transfer_group") == group)
        ),
    )


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
    status = _str_param(ctx, "status")
    destination = _str_param(ctx, "destination")
    arrival = _range_filter(ctx, "arrival_date")
    owned = _owned_by(ctx)
    return _list(
        ctx,
        ctx.state.stripe.payouts,
        "/v1/payouts",
        lambda o: (
            owned(o)
            and (status is None or o["status"] == status)
            and (destination is None or o.get("destination") == destination)
            and arrival(o)
        ),
    )


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
    obj = ctx.state.stripe.refunds.get(refund_id)
    if obj is None:
        raise _missing("refund", refund_id, "refund")
    return obj


def list_refunds(ctx: StripeContext) -> dict[str, Any]:
    charge = _str_param(ctx, "charge")
    pi = _str_param(ctx, "payment_intent")
    return _list(
        ctx,
        ctx.state.stripe.refunds,
        "/v1/refunds",
        lambda o: (
            (charge is None or o["charge"] == charge)
            and (pi is None or o.get("payment_intent") == pi)
        ),
    )


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
    obj = ctx.state.stripe.customers.get(customer_id)
    if obj is None:
        raise _missing("customer", customer_id, "id")
    return obj


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


# -- routing ------------------------------------------------------------------------------------
_ID = r"([A-Za-z0-9_\-]+)"
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    (m, re.compile(f"^{p}$"), h)
    for m, p, h in [
        ("POST", "/v1/accounts", create_account),
        ("GET", "/v1/accounts", list_accounts),
        ("GET", f"/v1/accounts/{_ID}", retrieve_account),
        ("POST", f"/v1/accounts/{_ID}", update_account),
        ("POST", f"/v1/accounts/{_ID}/login_links", create_login_link),
        ("GET", "/v1/account", retrieve_platform_account),
        ("POST", "/v1/account_links", create_account_link),
        ("GET", "/v1/charges", list_charges),
        ("POST", "/v1/charges", create_charge),
        ("POST", "/v1/customers", create_customer),
        ("GET", f"/v1/customers/{_ID}", retrieve_customer),
        ("POST", "/v1/products", create_product),
        ("GET", f"/v1/charges/{_ID}", retrieve_charge),
        ("POST", f"/v1/charges/{_ID}/capture", capture_charge),
        ("POST", "/v1/payment_intents", create_payment_intent),
        ("GET", f"/v1/payment_intents/{_ID}", retrieve_payment_intent),
        ("POST", f"/v1/payment_intents/{_ID}/capture", capture_payment_intent),
        ("POST", f"/v1/payment_intents/{_ID}/cancel", cancel_payment_intent),
        ("POST", "/v1/transfers", create_transfer),
        ("GET", "/v1/transfers", list_transfers),
        ("GET", f"/v1/transfers/{_ID}", retrieve_transfer),
        ("POST", f"/v1/transfers/{_ID}/reversals", create_reversal),
        ("GET", f"/v1/transfers/{_ID}/reversals", list_reversals),
        ("GET", f"/v1/transfers/{_ID}/reversals/{_ID}", retrieve_reversal),
        ("POST", "/v1/payouts", create_payout),
        ("GET", "/v1/payouts", list_payouts),
        ("GET", f"/v1/payouts/{_ID}", retrieve_payout),
        ("POST", "/v1/refunds", create_refund),
        ("GET", "/v1/refunds", list_refunds),
        ("GET", f"/v1/refunds/{_ID}", retrieve_refund),
        ("GET", "/v1/events", list_events),
        ("GET", "/v1/balance", retrieve_balance),
        ("GET", "/v1/balance_transactions", list_balance_transactions),
        ("GET", f"/v1/events/{_ID}", retrieve_event),
    ]
]


def route(method: str, path: str) -> tuple[Handler | None, tuple[str, ...]]:
    """Handler and path arguments for a call (``None`` when the URL is unknown)."""
    for route_method, pattern, handler in ROUTES:
        if route_method == method.upper():
            found = pattern.match(path)
            if found:
                return handler, found.groups()
    return None, ()


def check_contract(method: str, path: str, params: dict[str, Any]) -> tuple[int, dict] | None:
    """Stripe's 400/404 for parameters or a URL outside the SDK's contract, else ``None``.

    The request's entry check (see :mod:`mirakl_sandbox.stripe_contract`): unknown
    parameters, wrong types, values outside an enum, a missing required parameter or an empty
    value that cannot be unset are refused before any handler runs, as Stripe refuses them.
    """
    return stripe_contract.check_request(method, path, params)


def dispatch(ctx: StripeContext) -> tuple[int, dict[str, Any]]:
    """Run the handler under the state lock; errors become Stripe envelopes."""
    handler, args = route(ctx.method, ctx.path)
    if handler is None:
        error = StripeError(404, f"Unrecognized request URL ({ctx.method}: {ctx.path}).")
        return error.status, error.body()
    try:
        with ctx.state.lock:
            body = handler(ctx, *args)
            stripe_contract.check_response(ctx.method, ctx.path, body)
            return 200, body
    except StripeError as exc:
        return exc.status, exc.body()
