"""What every simulated Stripe resource shares: the error envelope, the request context, the
parameter checks (as the SDK's params types say), the list pagination and filters, and the
rule that money is taken only from *available* funds (:mod:`mirakl_sandbox.balances`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mirakl_sandbox import balances, stripe_amounts, stripe_contract
from mirakl_sandbox.state import Collection, SandboxState


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


def _get(collection: Collection, obj_id: str, kind: str, param: str) -> dict[str, Any]:
    """An object by id, or Stripe's 404 naming ``param`` (``resource_missing``)."""
    obj = collection.get(obj_id)
    if obj is None:
        raise _missing(kind, obj_id, param)
    return obj


def _equals_params(ctx: StripeContext, *names: str) -> Callable[[dict[str, Any]], bool]:
    """A list's equality filters: each of ``names`` the request gives must equal the object's
    field of the same name (``destination``, ``payment_intent`` ...)."""
    wanted = {name: value for name in names if (value := _str_param(ctx, name)) is not None}
    return lambda o: all(o.get(name) == value for name, value in wanted.items())


def _scoped(ctx: StripeContext, collection: Collection, obj_id: str, kind: str) -> dict[str, Any]:
    """An object visible to the calling account (platform, or the Stripe-Account header)."""
    obj = collection.get(obj_id)
    if obj is None or ctx.state.stripe.owners.get(obj_id) != ctx.stripe_account:
        raise _missing(kind, obj_id, "id")
    return obj


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
