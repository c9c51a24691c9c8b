"""Stripe's request contract, read from the official SDK, so the simulator cannot drift from it.

Stripe refuses a request whose parameters its API does not define, or whose values have the wrong
type or are outside an enum, with ``400 invalid_request_error`` (docs.stripe.com/api/errors and
docs.stripe.com/error-codes: ``parameter_unknown``, ``parameter_missing``,
``parameter_invalid_integer``, ``parameter_invalid_empty``). Our simulator used to accept
anything, so a test could pass with a parameter a live account refuses (``types[]`` on
``GET /v1/charges``). This module holds the reference we did not write: the parameter types the
installed ``stripe`` package ships for its pinned API version (``stripe/params/*.py``, generated
from Stripe's OpenAPI spec), read by introspection:

* :data:`ROUTES` maps each simulated ``(method, path)`` to the SDK operation that calls it
  (``transfers.reversals.create``, the names :class:`~mirakl_connector.stripe.gateway.StripeGateway`
  uses); the operation's ``params`` annotation names its TypedDict, and the SDK's own source gives
  its HTTP method and path (a test checks ours against it).
* :func:`check_request` decodes nothing: it takes the form-decoded params (every leaf a string,
  as on the wire) and answers ``None`` or Stripe's error envelope.
* :func:`unknown_fields` (:mod:`mirakl_sandbox.stripe_responses`) walks a response and lists
  the fields the SDK's object classes (``stripe/_transfer.py`` ...) do not define.

Tables are built once per process (``functools.cache``); a check is a walk over the params.

In audit mode (:data:`AUDIT`) every refusal is also appended to :data:`REFUSALS` (process-wide),
so a test suite can fail any test whose traffic broke the contract without meaning to (see
``tests/conftest.py``).
"""

from __future__ import annotations

import inspect
import os
import re
import threading
import types
import typing
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, Union

import stripe
from stripe._request_options import RequestOptions
from stripe._stripe_object import UntypedStripeObject
from typing_extensions import is_typeddict

# The response side, importable from here as it always was.
from mirakl_sandbox.stripe_responses import (  # noqa: F401
    drop_write_only,
    object_class,
    object_fields,
    unknown_fields,
)

ROUTES: tuple[tuple[str, str, str, str], ...] = (
    ("POST", "/v1/accounts", "accounts.create", "accounts/create"),
    ("GET", "/v1/accounts", "accounts.list", "accounts/list"),
    ("GET", "/v1/accounts/{id}", "accounts.retrieve", "accounts/retrieve"),
    ("POST", "/v1/accounts/{id}", "accounts.update", "accounts/update"),
    (
        "POST",
        "/v1/accounts/{id}/login_links",
        "accounts.login_links.create",
        "accounts/login_link/create",
    ),
    ("GET", "/v1/account", "accounts.retrieve_current", "accounts/retrieve"),
    ("POST", "/v1/account_links", "account_links.create", "account_links/create"),
    ("GET", "/v1/charges", "charges.list", "charges/list"),
    ("POST", "/v1/charges", "charges.create", "charges/create"),
    ("GET", "/v1/charges/{id}", "charges.retrieve", "charges/retrieve"),
    ("POST", "/v1/charges/{id}/capture", "charges.capture", "charges/capture"),
    ("POST", "/v1/customers", "customers.create", "customers/create"),
    ("GET", "/v1/customers/{id}", "customers.retrieve", "customers/retrieve"),
    ("POST", "/v1/products", "products.create", "products/create"),
    ("POST", "/v1/payment_intents", "payment_intents.create", "payment_intents/create"),
    ("GET", "/v1/payment_intents/{id}", "payment_intents.retrieve", "payment_intents/retrieve"),
    (
        "POST",
        "/v1/payment_intents/{id}/capture",
        "payment_intents.capture",
        "payment_intents/capture",
    ),
    ("POST", "/v1/payment_intents/{id}/cancel", "payment_intents.cancel", "payment_intents/cancel"),
    ("POST", "/v1/transfers", "transfers.create", "transfers/create"),
    ("GET", "/v1/transfers", "transfers.list", "transfers/list"),
    ("GET", "/v1/transfers/{id}", "transfers.retrieve", "transfers/retrieve"),
    (
        "POST",
        "/v1/transfers/{id}/reversals",
        "transfers.reversals.create",
        "transfer_reversals/create",
    ),
    ("GET", "/v1/transfers/{id}/reversals", "transfers.reversals.list", "transfer_reversals/list"),
    (
        "GET",
        "/v1/transfers/{id}/reversals/{id}",
        "transfers.reversals.retrieve",
        "transfer_reversals/retrieve",
    ),
    ("POST", "/v1/payouts", "payouts.create", "payouts/create"),
    ("GET", "/v1/payouts", "payouts.list", "payouts/list"),
    ("GET", "/v1/payouts/{id}", "payouts.retrieve", "payouts/retrieve"),
    ("POST", "/v1/refunds", "refunds.create", "refunds/create"),
    ("GET", "/v1/refunds", "refunds.list", "refunds/list"),
    ("GET", "/v1/refunds/{id}", "refunds.retrieve", "refunds/retrieve"),
    ("GET", "/v1/events", "events.list", "events/list"),
    ("GET", "/v1/events/{id}", "events.retrieve", "events/retrieve"),
    ("GET", "/v1/balance", "balance.retrieve", "balance/balance_retrieve"),
    (
        "GET",
        "/v1/balance_transactions",
        "balance_transactions.list",
        "balance_transactions/list",
    ),
)

_SEGMENT = r"[A-Za-z0-9_\-]+"
_REQUEST_OPTIONS = frozenset(RequestOptions.__annotations__)
_INTEGER = re.compile(r"^-?\d+$")
_DECIMAL = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)$")

#: Audit mode (the test suite switches it on with ``MIRAKL_SANDBOX_CONTRACT_AUDIT=1``): every
#: refusal is kept in :data:`REFUSALS` and every successful response walked for
#: :func:`unknown_fields`. Off by default: a long-running sandbox keeps no growing list, and
#: the walk of each body costs time the benchmarks would measure. Refusals are always answered.
AUDIT = os.environ.get("MIRAKL_SANDBOX_CONTRACT_AUDIT", "") == "1"
#: Refusals (audit mode): ``(method, path, error)``; read by the test suite.
REFUSALS: list[tuple[str, str, dict[str, Any]]] = []
#: Response fields outside the SDK's object classes (audit mode): ``(method, path, [paths])``.
RESPONSE_VIOLATIONS: list[tuple[str, str, list[str]]] = []
_refusals_lock = threading.Lock()


class ContractError(Exception):
    """A request outside the contract, as Stripe's error (``param`` in bracket notation)."""

    def __init__(self, status: int, message: str, *, code: str | None, param: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": "invalid_request_error", "message": self.message}
        if self.code:
            error["code"] = self.code
            # docs.stripe.com/api/errors: ``doc_url`` links to the code's entry in the error
            # codes list; kept so a client logging it sees where the rule comes from.
            error["doc_url"] = "https://stripe.com/docs/error-codes/" + self.code.replace("_", "-")
        if self.param:
            error["param"] = self.param
        return {"error": error}


# -- the tables (built once) ------------------------------------------------------------------
@dataclass(frozen=True)
class Operation:
    """One SDK operation: how the SDK calls it and the TypedDict of its params."""

    name: str
    http_method: str
    path: str  # as the SDK formats it, ``{...}`` for ids
    params_type: type


@cache
def _client() -> Any:
    # No request is ever sent: the client is only walked for its services.
    return stripe.StripeClient("sk_test_contract_introspection")


@cache
def operation(name: str) -> Operation:
    """The SDK operation ``name`` (``transfers.reversals.create``) read from the SDK itself."""
    *path, method_name = name.split(".")
    service: Any = _client().v1
    for part in path:
        service = getattr(service, part)
    method = getattr(type(service), method_name)
    annotation = inspect.signature(method).parameters["params"].annotation
    params_type = _resolve_params_type(annotation)
    source = inspect.getsource(method)
    found = re.search(r'self\._request\(\s*"(\w+)",\s*"([^"]+)"', source)
    if found is None:  # pragma: no cover - the SDK's generated shape changed
        raise RuntimeError(f"cannot read the HTTP method and path of {name} from the SDK")
    return Operation(name, found.group(1).upper(), found.group(2), params_type)


def _resolve_params_type(annotation: Any) -> type:
    """``Optional["TransferCreateParams"]`` -> ``stripe.params.TransferCreateParams``."""
    text = annotation if isinstance(annotation, str) else repr(annotation)
    names = re.findall(r"\b(\w+Params)\b", text)
    if not names:  # pragma: no cover - the SDK's generated shape changed
        raise RuntimeError(f"no params type in {annotation!r}")
    import stripe.params as sdk_params

    return getattr(sdk_params, names[-1])


@cache
def _route_table() -> tuple[tuple[str, re.Pattern[str], str], ...]:
    return tuple(
        (method, re.compile("^" + path.replace("{id}", _SEGMENT) + "$"), name)
        for method, path, name, _doc in ROUTES
    )


def operation_for(method: str, path: str) -> Operation | None:
    """The SDK operation of a simulated route, or ``None`` for a URL the simulator lacks."""
    for route_method, pattern, name in _route_table():
        if route_method == method.upper() and pattern.match(path):
            return operation(name)
    return None


@dataclass(frozen=True)
class _Shape:
    """A TypedDict's keys: type hints (request options removed) and the required ones."""

    hints: dict[str, Any]
    required: frozenset[str]


@cache
def shape(typed_dict: type) -> _Shape:
    """The keys of an SDK params TypedDict, evaluated once.

    ``typing.get_type_hints`` cannot be called on the TypedDict itself: its annotations include
    the inherited :class:`RequestOptions` keys, whose string annotations name types the params
    module does not import. Request options are headers (``Idempotency-Key``, ``Stripe-Account``),
    never parameters, so they are dropped before evaluating the rest in the params module.
    """
    own = {k: v for k, v in typed_dict.__annotations__.items() if k not in _REQUEST_OPTIONS}
    shim = type(typed_dict.__name__, (), {"__annotations__": own})
    shim.__module__ = typed_dict.__module__
    hints = typing.get_type_hints(shim)
    required = frozenset(typed_dict.__required_keys__) - _REQUEST_OPTIONS
    return _Shape(hints, required)


# -- request check ----------------------------------------------------------------------------
def check_request(method: str, path: str, params: dict[str, Any]) -> tuple[int, dict] | None:
    """``None`` when Stripe would accept the parameters' shape, else ``(status, error body)``.

    A URL the simulator does not implement is a 404 (Stripe answers an unknown URL with
    ``404 invalid_request_error`` "Unrecognized request URL"; for a URL Stripe has but we do not
    simulate, the docs have nothing to say about us: the stricter answer is the same 404).
    """
    op = operation_for(method, path)
    try:
        if op is None:
            raise ContractError(
                404,
                f"Unrecognized request URL ({method.upper()}: {path}). Please see "
                "https://stripe.com/docs or we can help at https://support.stripe.com/.",
                code=None,
                param=None,
            )
        validate(params, op.params_type)
    except ContractError as exc:
        body = exc.body()
        if AUDIT:
            with _refusals_lock:
                REFUSALS.append((method.upper(), path, body["error"]))
        return exc.status, body
    return None


def validate(params: dict[str, Any], typed_dict: type) -> None:
    """Raise :class:`ContractError` for the first parameter Stripe would refuse."""
    _check_typed_dict(params, typed_dict, None)


def _name(parent: str | None, key: str | int) -> str:
    return str(key) if parent is None else f"{parent}[{key}]"


def _check_typed_dict(value: dict[str, Any], typed_dict: type, parent: str | None) -> None:
    keys = shape(typed_dict)
    for key in value:
        if key not in keys.hints:
            # docs.stripe.com/error-codes#parameter-unknown: "The request contains one or more
            # unexpected parameters. Remove these and try again."
            param = _name(parent, key)
            raise ContractError(
                400,
                f"Received unknown parameter: {param}",
                code="parameter_unknown",
                param=param,
            )
    for key in sorted(keys.required):
        if key not in value:
            # docs.stripe.com/error-codes#parameter-missing: "One or more required values are
            # missing."
            param = _name(parent, key)
            raise ContractError(
                400,
                f"Missing required param: {param}.",
                code="parameter_missing",
                param=param,
            )
    for key, item in value.items():
        _check_value(item, keys.hints[key], _name(parent, key))


def _members(hint: Any) -> list[Any]:
    if typing.get_origin(hint) in (Union, types.UnionType):
        out: list[Any] = []
        for arg in typing.get_args(hint):
            out.extend(_members(arg))
        return out
    return [hint]


def _check_value(value: Any, hint: Any, param: str) -> None:
    members = _members(hint)
    literals = [a for m in members if typing.get_origin(m) is Literal for a in typing.get_args(m)]
    emptyable = "" in literals
    enum = [v for v in literals if v != ""]
    if isinstance(value, str) and value == "":
        if emptyable:
            return  # ``Literal['']``: "pass an empty string to unset"
        # docs.stripe.com/error-codes#parameter-invalid-empty: "One or more required values
        # weren't provided." (the SDK's types mark every field that can be unset with ''.)
        raise ContractError(
            400,
            f"You passed an empty string for '{param}'. We assume empty values are an attempt "
            f"to unset a parameter; however '{param}' cannot be unset. You should remove "
            f"'{param}' from your request or supply a non-empty value.",
            code="parameter_invalid_empty",
            param=param,
        )
    errors: list[ContractError] = []
    for member in members:
        if typing.get_origin(member) is Literal:
            continue
        try:
            _check_member(value, member, param, enum)
            return
        except ContractError as exc:
            errors.append(exc)
    if not errors:  # only literals: a closed enum (``object: Literal["card"]``)
        _check_enum(value, enum, param)
        return
    raise _best(errors, value)


def _best(errors: list[ContractError], value: Any) -> ContractError:
    """The error of the member closest to what was sent (a scalar error for a scalar)."""
    if isinstance(value, str):
        scalar = [e for e in errors if e.message not in ("Invalid hash", "Invalid array")]
        if scalar:
            return scalar[0]
    return errors[0]


def _check_enum(value: Any, enum: list[Any], param: str) -> None:
    if not isinstance(value, str):
        raise ContractError(400, f"Invalid string: {value}", code=None, param=param)
    if not enum:
        raise ContractError(400, f"Invalid {param}: {value}", code=None, param=param)
    if value not in enum:
        # Stripe lists no error code for a value outside an enum (docs.stripe.com/error-codes
        # is silent): the answer carries the message and ``param``, no ``code``.
        allowed = [str(v) for v in enum]
        if len(allowed) > 2:
            listed = ", ".join(allowed[:-1]) + f", or {allowed[-1]}"
        else:
            listed = " or ".join(allowed)
        message = f"Invalid {param}: must be one of {listed}"
        raise ContractError(400, message, code=None, param=param)


def coerce_param(method: str, path: str, name: str, value: Any) -> Any:
    """A checked param's value with its leaves typed per the SDK's hint (strings on the wire)."""
    op = operation_for(method, path)
    if op is None or name not in shape(op.params_type).hints:
        return value
    return _coerce(value, shape(op.params_type).hints[name])


def _coerce(value: Any, hint: Any) -> Any:
    members = [m for m in _members(hint) if typing.get_origin(m) is not Literal]
    if isinstance(value, str):
        if value == "" or str in members:
            return value
        if int in members and _INTEGER.match(value):
            return int(value)
        if float in members and _DECIMAL.match(value):
            return float(value)
        if bool in members and value in ("true", "false"):
            return value == "true"
        return value
    for member in members:
        origin = typing.get_origin(member)
        if isinstance(value, list) and origin is list:
            (inner,) = typing.get_args(member) or (Any,)
            return [_coerce(v, inner) for v in value]
        if isinstance(value, dict) and is_typeddict(member):
            hints = shape(member).hints
            return {k: _coerce(v, hints[k]) if k in hints else v for k, v in value.items()}
        if isinstance(value, dict) and (origin is dict or _is_untyped_object(member)):
            return dict(value)
    return value


def _check_member(value: Any, member: Any, param: str, enum: list[Any]) -> None:
    """Check ``value`` (form-decoded: strings, lists, dicts) against one member of a union.

    Only ``parameter_invalid_integer`` has a code in docs.stripe.com/error-codes; for a boolean,
    a decimal, an array or a hash of the wrong shape the list is silent, so these answers carry
    ``param`` and a message, no ``code``, and refuse (the stricter choice) rather than coerce:
    the form encoding the SDK uses sends ``true``/``false`` and ``a[0]=``/``a[k]=`` for them.
    """
    origin = typing.get_origin(member)
    if member is str:
        if not isinstance(value, str):
            raise ContractError(400, f"Invalid string: {_show(value)}", code=None, param=param)
        if enum:
            # The SDK widens every enum to ``Literal[...] | str`` so that values Stripe adds later
            # type-check in old code ("open enums", stripe-python PR #1864/#1877). The pinned API
            # version accepts the listed values; the stricter choice is to refuse the others.
            _check_enum(value, enum, param)
        return
    if member is int:
        if not (isinstance(value, str) and _INTEGER.match(value)):
            # docs.stripe.com/error-codes#parameter-invalid-integer
            raise ContractError(
                400,
                f"Invalid integer: {_show(value)}",
                code="parameter_invalid_integer",
                param=param,
            )
        return
    if member is float:
        if not (isinstance(value, str) and _DECIMAL.match(value)):
            raise ContractError(400, f"Invalid decimal: {_show(value)}", code=None, param=param)
        return
    if member is bool:
        if value not in ("true", "false"):
            raise ContractError(400, f"Invalid boolean: {_show(value)}", code=None, param=param)
        return
    if origin is list:
        if not isinstance(value, list):
            raise ContractError(400, "Invalid array", code=None, param=param)
        (inner,) = typing.get_args(member) or (Any,)
        for index, item in enumerate(value):
            _check_value(item, inner, _name(param, index))
        return
    if origin is dict or _is_untyped_object(member):
        if not isinstance(value, dict):
            raise ContractError(400, "Invalid hash", code=None, param=param)
        args = typing.get_args(member)
        inner = args[1] if len(args) == 2 else str
        for key, item in value.items():
            _check_value(item, inner, _name(param, key))
        return
    if is_typeddict(member):
        if not isinstance(value, dict):
            raise ContractError(400, "Invalid hash", code=None, param=param)
        _check_typed_dict(value, member, param)
        return
    if member is Any or member is object:
        return
    raise ContractError(  # pragma: no cover - a type the SDK does not use in v1 params
        400, f"Invalid {param}", code=None, param=param
    )


def _is_untyped_object(member: Any) -> bool:
    origin = typing.get_origin(member) or member
    return isinstance(origin, type) and issubclass(origin, UntypedStripeObject)


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "hash"
    if isinstance(value, list):
        return "array"
    return str(value)


def check_response(method: str, path: str, body: Any) -> None:
    """Record the fields of a response the SDK's object classes lack (audit mode)."""
    if not AUDIT:
        return
    found = unknown_fields(body)
    if found:
        with _refusals_lock:
            RESPONSE_VIOLATIONS.append((method.upper(), path, found))
