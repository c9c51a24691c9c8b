"""Stripe's contract, held against the official SDK's generated types (not against our simulator).

Three parties must agree: the SDK's parameter and object types for the pinned API version (the
reference), the simulator (which refuses what Stripe refuses) and our gateway and generic operators
(which must only send what Stripe accepts). Each test below checks one pair; a drift in any of them
fails here.
"""

from __future__ import annotations

import ast
import inspect
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import stripe
from mirakl_sandbox import SandboxAdmin, SandboxServer, stripe_api, stripe_contract
from mirakl_sandbox.formdecode import decode_pairs
from stripe._encode import _api_encode

from mirakl_connector.airflow.operators.stripe import charge_params, customer_params, product_params
from mirakl_connector.stripe import gateway as stripe_gateway
from mirakl_connector.stripe import requestor as stripe_requestor
from mirakl_connector.stripe.gateway import StripeGateway
from mirakl_connector.stripe.sdk import operation_name

from .conftest import STRIPE_KEY

refusals = pytest.mark.stripe_contract_refusals


def raw(sandbox: SandboxServer, method: str, path: str, body: Any = None, **headers: str):
    """A request as it goes on the wire (form body / query string), without the SDK."""
    url = sandbox.url + path
    headers = {"Authorization": f"Bearer {STRIPE_KEY}", **headers}
    if method == "GET":
        return requests.get(url, params=body, headers=headers, timeout=10)
    return requests.post(url, data=body, headers=headers, timeout=10)


def wire(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` as the simulator receives them: the SDK's form encoding, then our decoder."""
    return decode_pairs([(k, str(v)) for k, v in _api_encode(params)])


# -- the simulator refuses what Stripe refuses -------------------------------------------------
@refusals
def test_unknown_parameter_is_refused_like_stripe(sandbox, admin: SandboxAdmin) -> None:
    body = {"amount": 100, "currency": "eur", "destination": "acct_seller", "foo": "1"}
    reply = raw(sandbox, "POST", "/v1/transfers", body)
    assert reply.status_code == 400
    assert reply.json() == {
        "error": {
            "type": "invalid_request_error",
            "code": "parameter_unknown",
            "doc_url": "https://stripe.com/docs/error-codes/parameter-unknown",
            "message": "Received unknown parameter: foo",
            "param": "foo",
        }
    }
    assert admin.transfers() == [] and admin.events() == []
    assert admin.stripe_requests(path="/v1/transfers")[-1]["refused"] == "parameter_unknown"


@refusals
def test_unknown_parameter_raises_invalid_request_error_in_the_sdk(stripe_client) -> None:
    params: Any = {"amount": 100, "currency": "eur", "destination": "acct_seller", "foo": "1"}
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_client.v1.transfers.create(params=params)
    assert (caught.value.http_status, caught.value.code, caught.value.param) == (
        400,
        "parameter_unknown",
        "foo",
    )


@refusals
def test_a_refused_request_is_not_saved_under_its_idempotency_key(sandbox, admin) -> None:
    """docs.stripe.com/api/idempotent_requests: no result is saved when validation failed."""
    key = {"Idempotency-Key": "contract-1"}
    bad = raw(sandbox, "POST", "/v1/transfers", {"amount": "ten", "currency": "eur"}, **key)
    assert bad.status_code == 400
    good = {"amount": 100, "currency": "eur", "destination": "acct_seller"}
    ok = raw(sandbox, "POST", "/v1/transfers", good, **key)
    assert ok.status_code == 200 and ok.headers.get("Idempotent-Replayed") is None
    assert len(admin.transfers()) == 1


REFUSED = [
    # (method, path, params, code, param, message)
    (
        "POST",
        "/v1/transfers",
        {"amount": "12.50", "currency": "eur", "destination": "acct_seller"},
        "parameter_invalid_integer",
        "amount",
        "Invalid integer: 12.50",
    ),
    (
        "POST",
        "/v1/transfers",
        {"amount": "100", "destination": "acct_seller"},
        "parameter_missing",
        "currency",
        "Missing required param: currency.",
    ),
    (
        "POST",
        "/v1/transfers",
        {"amount": "100", "currency": "", "destination": "acct_seller"},
        "parameter_invalid_empty",
        "currency",
        "You passed an empty string for 'currency'.",
    ),
    (
        "POST",
        "/v1/transfers",
        {"amount": "100", "currency": "eur", "destination": "acct_seller", "source_type": "x"},
        None,
        "source_type",
        "Invalid source_type: must be one of bank_account, card, or fpx",
    ),
    (
        "POST",
        "/v1/payouts",
        {"amount": "100", "currency": "eur", "method": "fast"},
        None,
        "method",
        "Invalid method: must be one of instant or standard",
    ),
    (
        "POST",
        "/v1/accounts",
        {"type": "express", "settings[payouts][debit_negative_balances]": "no"},
        None,
        "settings[payouts][debit_negative_balances]",
        "Invalid boolean: no",
    ),
    (
        "POST",
        "/v1/accounts",
        {"type": "express", "settings[payouts][colour]": "red"},
        "parameter_unknown",
        "settings[payouts][colour]",
        "Received unknown parameter: settings[payouts][colour]",
    ),
    (
        "POST",
        "/v1/transfers",
        {"amount": "1", "currency": "eur", "destination": "acct_seller", "metadata": ""},
        "parameter_invalid_empty",
        "metadata",
        "You passed an empty string for 'metadata'.",
    ),
    (
        "POST",
        "/v1/transfers",
        {"amount": "1", "currency": "eur", "destination": "acct_seller", "metadata[a][b]": "c"},
        None,
        "metadata[a]",
        "Invalid string: hash",
    ),
    (
        "POST",
        "/v1/refunds",
        {"charge": "ch_paid", "reason": "because"},
        None,
        "reason",
        "Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer",
    ),
    (
        "GET",
        "/v1/charges",
        {"created[gte]": "1", "types[0]": "charge.succeeded"},
        "parameter_unknown",
        "types",
        "Received unknown parameter: types",
    ),
    (
        "GET",
        "/v1/transfers",
        {"limit": "ten"},
        "parameter_invalid_integer",
        "limit",
        "Invalid integer: ten",
    ),
    (
        "GET",
        "/v1/events",
        {"created[since]": "1"},
        "parameter_unknown",
        "created[since]",
        "Received unknown parameter: created[since]",
    ),
    (
        "GET",
        "/v1/events",
        {"types": "payout.failed"},
        None,
        "types",
        "Invalid array",
    ),
]


@refusals
@pytest.mark.parametrize(("method", "path", "params", "code", "param", "message"), REFUSED)
def test_wrong_types_enums_and_shapes_are_refused(
    sandbox, admin, method, path, params, code, param, message
) -> None:
    reply = raw(sandbox, method, path, params)
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert (error["type"], error.get("code"), error["param"]) == (
        "invalid_request_error",
        code,
        param,
    )
    assert error["message"].startswith(message)
    assert admin.transfers() == [] and admin.payouts() == []


@refusals
def test_a_url_the_simulator_lacks_is_404(sandbox) -> None:
    for method, path in (("GET", "/v1/payouts/po_1/cancel"), ("POST", "/v1/transfers/tr_1")):
        reply = raw(sandbox, method, path)
        assert reply.status_code == 404
        assert reply.json()["error"]["message"].startswith(
            f"Unrecognized request URL ({method}: {path})."
        )


def test_what_stripe_accepts_is_accepted(stripe_client, admin) -> None:
    """Nested hashes, lists, ``expand[]``, emptyable fields and query filters pass the check."""
    account = stripe_client.v1.accounts.create(
        params={
            "type": "express",
            "settings": {
                "payouts": {"debit_negative_balances": False, "schedule": {"interval": "manual"}}
            },
            "metadata": {"miraklShopId": "7"},
            "expand": ["requirements"],
        }
    )
    # ``metadata: Literal[''] | Dict[str, str]`` on update: an empty string unsets all keys.
    updated = stripe_client.v1.accounts.update(account.id, params={"metadata": ""})
    assert updated.metadata.to_dict() == {}
    since = int(datetime(2020, 1, 1, tzinfo=UTC).timestamp())
    stripe_client.v1.events.list(
        params={"types": ["account.updated", "payout.failed"], "created": {"gte": since}}
    )
    stripe_client.v1.charges.list(params={"created": since, "limit": 100})
    stripe_client.v1.transfers.create(
        params={
            "amount": 100,
            "currency": "eur",
            "destination": "acct_seller",
            "source_type": "card",
            "metadata": {"k": "v"},
        }
    )


# -- the simulator's routes are the SDK's ------------------------------------------------------
@pytest.mark.parametrize(("method", "path", "name", "doc"), stripe_contract.ROUTES)
def test_each_route_is_the_sdk_operation_it_names(
    method: str, path: str, name: str, doc: str
) -> None:
    operation = stripe_contract.operation(name)
    assert operation.http_method == method
    assert re.sub(r"\{\w+\}", "{id}", operation.path) == path
    assert operation.params_type.__module__.startswith("stripe.params.")


def test_the_simulator_implements_exactly_the_contract_routes() -> None:
    simulated = {(m, p.pattern) for m, p, _h in stripe_api.ROUTES}
    contract = {(m, p.pattern) for m, p, _n in stripe_contract._route_table()}
    assert len(simulated) == len(stripe_api.ROUTES)
    assert {m for m, _p in simulated} == {m for m, _p in contract}
    for method, path, _name, _doc in stripe_contract.ROUTES:
        concrete = path.replace("{id}", "x_1")
        handler, _args = stripe_api.route(method, concrete)
        assert handler is not None, (method, path)
    for method, pattern, handler in stripe_api.ROUTES:
        concrete = pattern.pattern.strip("^$").replace(stripe_api._ID, "x_1")
        assert stripe_contract.operation_for(method, concrete) is not None, handler.__name__


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def gateway_operations() -> set[str]:
    """Every SDK operation the gateway (and its requestor) calls, read from the code (not the
    docstrings): each bound method of ``StripeClient.v1`` it names
    (``self._v1.transfers.reversals.create``, the list methods of ``_lister``), as the name the
    gateway counts and throttles it under."""
    source = "\n".join(inspect.getsource(m) for m in (stripe_gateway, stripe_requestor))
    tree = ast.parse(source)
    inner = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    named = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and id(node) not in inner:
            dotted = _dotted(node) or ""
            for prefix in ("self._v1.", "self._client.v1.", "v1."):
                if dotted.startswith(prefix):
                    named.add(dotted.removeprefix(prefix))
    client = stripe.StripeClient("sk_test_contract_introspection")  # walked, never called
    operations = set()
    for path in named:
        method: Any = client.v1
        for part in path.split("."):
            method = getattr(method, part)
        operations.add(operation_name(method))
    assert operations == named  # the names the gateway derives are the paths it calls
    return operations


def test_every_operation_the_gateway_calls_is_simulated_and_typed() -> None:
    simulated = {name for _m, _p, name, _d in stripe_contract.ROUTES}
    used = gateway_operations()
    assert {"transfers.create", "payouts.list", "charges.list", "events.list"} <= used  # read
    assert used - simulated == set()


# -- the gateway's traffic is the SDK's --------------------------------------------------------
def drive_every_gateway_call(gateway: StripeGateway) -> None:
    since = datetime.now(UTC) - timedelta(days=1)
    key = iter(f"contract-{n}" for n in range(100))
    gateway.retrieve_payment("ch_paid")
    gateway.retrieve_payment("pi_capture")
    gateway.list_charges(created_since=since, created_until=datetime.now(UTC), max_pages=2)
    gateway.platform_account_id()
    transfer = gateway.create_transfer(
        amount=1000,
        currency="EUR",
        destination="acct_seller",
        idempotency_key=next(key),
        metadata={"miraklId": "1", "miraklTransferType": "ORDER_AMOUNT"},
        source_transaction="ch_paid",
    )
    gateway.create_transfer(
        amount=100,
        currency="EUR",
        destination=gateway.platform_account_id(),
        idempotency_key=next(key),
        metadata={"miraklId": "2"},
        on_account="acct_seller",
    )
    gateway.find_transfer(
        mirakl_id="1",
        transfer_type="ORDER_AMOUNT",
        destination="acct_seller",
        created_since=since,
    )
    gateway.find_transfer(
        mirakl_id="2",
        transfer_type="X",
        destination=None,
        created_since=since,
        on_account="acct_seller",
    )
    reversal = gateway.create_reversal(
        transfer.id,
        amount=100,
        currency="EUR",
        idempotency_key=next(key),
        metadata={"miraklId": "r1"},
    )
    gateway.find_reversal(transfer.id, mirakl_id="r1")
    # what the console's "resolve: found" reads (stripe/lookups.py)
    gateway.retrieve_transfer(transfer.id)
    gateway.retrieve_reversal(transfer.id, reversal.id)
    payout = gateway.create_payout(
        account="acct_seller",
        amount=100,
        currency="EUR",
        idempotency_key=next(key),
        metadata={"invoiceId": "9"},
    )
    gateway.retrieve_payout(account="acct_seller", payout_id=payout.id)
    gateway.find_payout(account="acct_seller", invoice_id="9", created_since=since)
    list(gateway.iter_payouts(account="acct_seller", created_since=since, status="failed"))
    gateway.retrieve_balance("acct_seller")
    gateway.retrieve_balance()
    list(gateway.iter_balance_transactions(account="acct_seller", currency="EUR",
                                           created_since=since))  # fmt: skip
    refund = gateway.create_refund(
        payment_id="ch_paid",
        amount=500,
        currency="EUR",
        idempotency_key=next(key),
        metadata={"r": "1"},
    )
    gateway.find_refund(payment_id="ch_paid", mirakl_refund_id="1")
    gateway.retrieve_refund(refund.id)
    gateway.find_refund(payment_id="pi_capture", mirakl_refund_id="1")
    gateway.capture_payment("pi_capture", amount=3000, currency="EUR", idempotency_key=next(key))
    gateway.capture_payment("ch_auth", amount=4000, currency="EUR", idempotency_key=next(key))
    gateway.cancel_payment("pi_cancel", idempotency_key=next(key))
    gateway.retrieve_account("acct_seller")
    list(gateway.iter_accounts())
    list(gateway.iter_events(types=["account.updated", "payout.failed"], created_since=since))
    account = gateway.create_express_account(
        shop_id=42,
        idempotency_key=next(key),
        prefill={"email": "shop@example.com", "business_profile": {"name": "Shop"}},
    )
    gateway.create_account_link(
        account["id"], refresh_url="https://x/refresh", return_url="https://x/return"
    )
    gateway.create_login_link("acct_seller")
    for resource in ("charges", "refunds"):
        list(gateway.list_created_since(resource, created_gte=int(since.timestamp())))
    list(gateway.list_created_since("events", created_gte=0, types=["charge.succeeded"]))
    # The generic operators' params, as their builders make them.
    charge = gateway.create_charge(
        charge_params(
            amount=1250,
            currency="EUR",
            source="tok_visa",
            description="d",
            receipt_email="a@example.com",
            shipping={"name": "Ada", "address": {"line1": "1 Main St", "city": "Paris"}},
            capture=False,
            metadata={"k": "v"},
        ),
        idempotency_key=next(key),
    )
    assert charge["captured"] is False
    paid = gateway.create_payment(
        charge_params(amount=1250, currency="EUR", source="pm_card_visa", capture=False,
                      shipping={"name": "Ada", "address": {"line1": "1 Main St"}},
                      metadata={"k": "v"}),
        idempotency_key=next(key),
    )  # fmt: skip
    assert (paid["object"], paid["captured"]) == ("charge", False)
    customer = gateway.create_customer(
        customer_params(
            email="ada@example.com",
            name="Ada",
            phone="+33 1",
            description="d",
            address={"line1": "1 Main St", "country": "FR"},
            metadata={"k": "v"},
        ),
        idempotency_key=next(key),
    )
    gateway.retrieve_customer(customer["id"])
    gateway.create_product(
        product_params(name="Mug", description="d", active=False, metadata={"k": "v"}),
        idempotency_key=next(key),
    )


def test_the_gateway_sends_only_what_the_sdk_types_allow(gateway, admin) -> None:
    drive_every_gateway_call(gateway)
    logged = admin.stripe_requests()
    assert len(logged) >= 30
    for request in logged:
        assert request.get("refused") is None, request
        assert request["status"] == 200, request
        operation = stripe_contract.operation_for(request["method"], request["path"])
        assert operation is not None, request
        # The same check the simulator ran, done here again so this test proves the gateway's
        # params conform even if the simulator's entry check were switched off.
        stripe_contract.validate(request["params"], operation.params_type)
    used = {
        stripe_contract.operation_for(r["method"], r["path"]).name  # type: ignore[union-attr]
        for r in logged
    }
    assert gateway_operations() - used == set(), "a gateway operation this test does not drive"


@pytest.mark.parametrize(
    ("builder", "fields", "operation"),
    [
        (
            charge_params,
            {"amount": 1, "currency": "eur", "customer": "cus_1"},
            "payment_intents.create",
        ),
        (
            charge_params,
            {"amount": 1, "currency": "eur", "source": "pm_card_visa", "capture": False},
            "payment_intents.create",
        ),
        (
            charge_params,
            {
                "amount": 1,
                "currency": "JPY",
                "source": "tok_visa",
                "shipping": {"name": "A", "phone": "1", "address": {"line1": "l", "state": "s"}},
                "capture": True,
            },
            "charges.create",
        ),
        (customer_params, {"email": "a@b.c", "address": {"postal_code": "1"}}, "customers.create"),
        (product_params, {"name": "Mug"}, "products.create"),
    ],
)
def test_generic_operator_params_conform_to_the_sdk(builder, fields, operation) -> None:
    params = builder(**fields)
    stripe_contract.validate(wire(params), stripe_contract.operation(operation).params_type)


# -- responses carry only the SDK's fields -----------------------------------------------------
EXPECTED_OBJECTS = {
    "account",
    "account_link",
    "charge",
    "customer",
    "event",
    "list",
    "login_link",
    "payment_intent",
    "payout",
    "product",
    "refund",
    "transfer",
    "transfer_reversal",
}


def object_names(body: Any) -> set[str]:
    if isinstance(body, list):
        return set().union(*(object_names(b) for b in body)) if body else set()
    if not isinstance(body, dict):
        return set()
    found = {body["object"]} if isinstance(body.get("object"), str) else set()
    for value in body.values():
        found |= object_names(value)
    return found


def test_every_object_the_simulator_returns_has_only_sdk_fields(sandbox, gateway, admin) -> None:
    drive_every_gateway_call(gateway)
    admin.set_payout_status(admin.payouts()[0]["id"], "failed", failure_code="account_closed")
    seen: set[str] = set()
    paths = [
        "/v1/account",
        "/v1/accounts",
        "/v1/accounts/acct_seller",
        "/v1/charges",
        "/v1/charges/ch_paid",
        "/v1/payment_intents/pi_capture",
        "/v1/payment_intents/pi_cancel",
        "/v1/transfers",
        "/v1/payouts",
        "/v1/refunds",
        "/v1/events?limit=100",
        "/v1/balance",
        "/v1/balance_transactions?limit=100",
    ]
    bodies = [raw(sandbox, "GET", path).json() for path in paths]
    transfer = bodies[7]["data"][-1]
    bodies.append(raw(sandbox, "GET", f"/v1/transfers/{transfer['id']}/reversals").json())
    bodies.append(raw(sandbox, "GET", "/v1/payouts", None, **{"Stripe-Account": "acct_seller"}))
    bodies[-1] = bodies[-1].json()
    for event in bodies[10]["data"]:
        bodies.append(raw(sandbox, "GET", f"/v1/events/{event['id']}").json())
    bodies.append(raw(sandbox, "POST", "/v1/accounts/acct_seller/login_links").json())
    link = {"account": "acct_seller", "type": "account_onboarding", "return_url": "https://x"}
    bodies.append(raw(sandbox, "POST", "/v1/account_links", link).json())
    bodies.append(raw(sandbox, "POST", "/v1/customers", {"name": "n"}).json())
    bodies.append(raw(sandbox, "POST", "/v1/products", {"name": "n"}).json())
    for body in bodies:
        assert "error" not in body, body
        assert stripe_contract.unknown_fields(body) == [], body
        seen |= object_names(body)
    assert EXPECTED_OBJECTS - seen == set()


def test_unknown_fields_names_a_field_the_sdk_lacks() -> None:
    transfer = {"object": "transfer", "id": "tr_1", "amount": 1, "colour": "red"}
    event = {"object": "event", "id": "evt_1", "data": {"object": transfer, "oops": 1}}
    assert stripe_contract.unknown_fields(event) == [
        "data.object.colour (Transfer)",
        "data.oops (Data)",
    ]


# -- our sensors and gateway no longer send ``types`` where Stripe refuses it -------------------
def test_types_is_an_events_only_filter() -> None:
    from mirakl_connector.airflow.sensors.stripe import (
        StripeEventsHealingSensor,
        StripeNewChargeSensor,
        StripeNewRefundSensor,
    )

    for sensor in (StripeNewChargeSensor, StripeNewRefundSensor):
        with pytest.raises(ValueError, match="types filters events only"):
            sensor(task_id="s", types=["charge.succeeded"])
    assert StripeEventsHealingSensor(task_id="h").types
    gateway = StripeGateway("sk_test_x", base_url="http://127.0.0.1:9")
    with pytest.raises(ValueError, match="types filters events only"):
        next(iter(gateway.list_created_since("charges", created_gte=0, types=["x"])))


def test_outside_audit_mode_refusals_are_answered_but_not_kept(monkeypatch) -> None:
    monkeypatch.setattr(stripe_contract, "AUDIT", False)
    before = len(stripe_contract.REFUSALS)
    status, body = stripe_contract.check_request("POST", "/v1/payouts", {"foo": "1"}) or (0, {})
    assert (status, body["error"]["code"]) == (400, "parameter_unknown")
    assert len(stripe_contract.REFUSALS) == before


def test_the_suite_runs_in_audit_mode() -> None:
    """tests/conftest.py switches audit mode on before the sandbox is imported: without it the
    session guard would see no refusal and hold the suite's traffic to nothing."""
    assert stripe_contract.AUDIT
