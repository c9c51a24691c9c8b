"""The other direction: whatever the SDK's types allow, the simulator's check lets through.

Params are generated from each route's TypedDict (every key, to a fixed depth, one value of each
member type), encoded the way the SDK encodes them and decoded the way the simulator does. A
check stricter than the SDK (a false refusal) fails here; one looser than it fails in
``test_stripe_contract.py``.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal, Union

import pytest
import stripe
from mirakl_sandbox import stripe_contract
from mirakl_sandbox.formdecode import decode_pairs
from stripe._encode import _api_encode
from stripe._stripe_object import UntypedStripeObject
from typing_extensions import is_typeddict

MAX_DEPTH = 6


def members(hint: Any) -> list[Any]:
    if typing.get_origin(hint) in (Union, types.UnionType):
        return [m for arg in typing.get_args(hint) for m in members(arg)]
    return [hint]


def sample(hint: Any, *, full: bool, depth: int = 0) -> Any:
    """One value the SDK's type ``hint`` allows (``None`` when too deep to build one)."""
    options = members(hint)
    literals = [a for m in options if typing.get_origin(m) is Literal for a in typing.get_args(m)]
    enum = [v for v in literals if v != ""]
    for member in options:
        if typing.get_origin(member) is Literal:
            continue
        origin = typing.get_origin(member)
        if member is str:
            return enum[0] if enum else "x"
        if member is int:
            return 1
        if member is float:
            return 1.5
        if member is bool:
            return True
        if origin is list:
            inner = sample(typing.get_args(member)[0], full=full, depth=depth + 1)
            return None if inner is None else [inner]
        if origin is dict or (
            isinstance(origin or member, type) and issubclass(origin or member, UntypedStripeObject)
        ):
            return {"k": "v"}
        if is_typeddict(member):
            if depth >= MAX_DEPTH:
                return None
            return typed_sample(member, full=full, depth=depth + 1)
    if enum:
        return enum[0]
    return "" if "" in literals else None


def typed_sample(typed_dict: type, *, full: bool, depth: int = 0) -> dict[str, Any] | None:
    keys = stripe_contract.shape(typed_dict)
    out: dict[str, Any] = {}
    for key, hint in keys.hints.items():
        if not full and key not in keys.required:
            continue
        value = sample(hint, full=full, depth=depth)
        if value is None:
            if key in keys.required:
                return None
            continue
        out[key] = value
    return out


def wire(params: dict[str, Any]) -> dict[str, Any]:
    return decode_pairs([(k, str(v)) for k, v in _api_encode(params)])


OPERATIONS = sorted({name for _m, _p, name, _d in stripe_contract.ROUTES})


@pytest.mark.parametrize("name", OPERATIONS)
def test_every_field_the_sdk_types_allow_passes_the_check(name: str) -> None:
    params_type = stripe_contract.operation(name).params_type
    for full in (False, True):
        params = typed_sample(params_type, full=full)
        assert params is not None
        stripe_contract.validate(wire(params), params_type)  # raises on a false refusal


def test_samples_are_not_trivial() -> None:
    """The full sample of account creation reaches nested hashes, lists and booleans."""
    params = typed_sample(stripe.params.AccountCreateParams, full=True)
    assert params is not None
    encoded = dict(_api_encode(params))
    assert "settings[payouts][schedule][interval]" in encoded
    assert encoded["settings[payouts][debit_negative_balances]"] == "true"
    assert any(k.startswith("expand[0]") for k in encoded)
    assert len(encoded) > 200


@pytest.mark.parametrize("name", OPERATIONS)
def test_the_sdk_minimal_call_is_never_a_contract_refusal(name: str, stripe_client) -> None:
    """Sent through the SDK, the required keys alone pass the simulator's entry check (the
    handler may still refuse for a business reason, e.g. an object that does not exist)."""
    assert stripe_contract.AUDIT  # else REFUSALS stays empty and this proves nothing
    params_type = stripe_contract.operation(name).params_type
    params = typed_sample(params_type, full=False)
    *path, method = name.split(".")
    service: Any = stripe_client.v1
    for part in path:
        service = getattr(service, part)
    operation = stripe_contract.operation(name)
    ids = ["tr_1"] * operation.path.count("{")
    before = len(stripe_contract.REFUSALS)
    try:
        getattr(service, method)(*ids, params=params)
    except stripe.StripeError as exc:
        assert exc.http_status in (400, 402, 403, 404), exc
    assert stripe_contract.REFUSALS[before:] == []


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("accounts.create", ()),
        ("accounts.update", ("acct_seller",)),
        ("customers.create", ()),
        ("products.create", ()),
    ],
)
def test_everything_the_sdk_allows_is_answered_with_sdk_fields_only(
    name: str, args: tuple[str, ...], stripe_client
) -> None:
    """Handlers that keep what they are sent must not answer write-only parameters back
    (``account_token``, ``company[tax_id]``) nor a requested capability as a hash; the
    session guard fails this test if the answer carries a field the SDK lacks."""
    params = typed_sample(stripe_contract.operation(name).params_type, full=True)
    *path, method = name.split(".")
    service: Any = stripe_client.v1
    for part in path:
        service = getattr(service, part)
    answer = getattr(service, method)(*args, params=params).to_dict()
    assert stripe_contract.unknown_fields(answer) == []


def test_free_form_params_are_typed_as_the_sdk_says(stripe_client) -> None:
    account = stripe_client.v1.accounts.create(
        params={
            "type": "express",
            "settings": {"payouts": {"debit_negative_balances": False}},
            "company": {"address": {"postal_code": "75001"}, "tax_id": "FR123"},
            "capabilities": {"transfers": {"requested": True}},
        }
    )
    assert account.settings.payouts.debit_negative_balances is False
    assert account.company.address.postal_code == "75001"  # a string, not 75001
    assert "tax_id" not in account.company  # write-only
    assert account.capabilities.transfers == "inactive"
