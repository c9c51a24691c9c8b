"""The generic Stripe tasks (seed 003) against the sandbox: every validation rule refused before
any request reaches Stripe, the objects created, and the new-charge / new-refund sensors and
their trigger."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred

from mirakl_connector.airflow.operators.stripe import (
    StripeCreateChargeOperator,
    StripeCreateCustomerOperator,
    StripeCreateProductOperator,
    StripeFindCustomerOperator,
)
from mirakl_connector.airflow.sensors.stripe import StripeNewChargeSensor, StripeNewRefundSensor
from mirakl_connector.airflow.triggers.stripe import StripeNewObjectsTrigger, new_objects
from mirakl_connector.core.errors import InvalidItemError, PaymentProviderError

CONTEXT: dict[str, Any] = {"run_id": "manual__2026-11-22"}


@pytest.fixture
def stripe_conn(sandbox, sandbox_server, monkeypatch) -> Any:
    """Connection ``stripe_default`` on the sandbox; the admin client with an empty request log."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_STRIPE_DEFAULT",
        json.dumps(
            {
                "conn_type": "stripe",
                "password": "sk_test_sandbox",
                "host": sandbox_server.url,
                "extra": {"max_retries": 0},
            }
        ),
    )
    sandbox.clear_stripe_requests()
    return sandbox


@pytest.fixture
def variables(monkeypatch) -> dict[str, str]:
    """Airflow Variables as a dict (``Variable.set`` needs a running task outside of tests)."""
    import airflow.sdk

    store: dict[str, str] = {}

    class FakeVariable:
        @staticmethod
        def get(key: str, default: Any = None) -> Any:
            return store.get(key, default)

        @staticmethod
        def set(key: str, value: str) -> None:
            store[key] = value

    monkeypatch.setattr(airflow.sdk, "Variable", FakeVariable)
    return store


def _run(operator_cls: type, fields: dict[str, Any], task_id: str = "t") -> Any:
    return operator_cls(task_id=task_id, fields=fields).execute(CONTEXT)


# -- create charge -------------------------------------------------------------------------------

CHARGE_OK = {"amount": 1250, "currency": "EUR", "source": "tok_visa"}


@pytest.mark.parametrize(
    ("fields", "item", "reason"),
    [
        ({**CHARGE_OK, "amount": 12.5}, "amount", "integer in minor units"),
        ({**CHARGE_OK, "amount": "1250"}, "amount", "integer in minor units"),
        ({**CHARGE_OK, "amount": Decimal("12.50")}, "amount", "integer in minor units"),
        ({**CHARGE_OK, "amount": True}, "amount", "integer in minor units"),
        ({**CHARGE_OK, "amount": 0}, "amount", "positive"),
        ({**CHARGE_OK, "currency": "euro"}, "currency", "3-letter"),
        ({"amount": 100, "currency": "eur"}, "source", "either source or customer"),
        ({"amount": 100, "currency": "eur", "customer": "acct_1"}, "customer", "cus_"),
        ({**CHARGE_OK, "shipping": {"phone": "+331"}}, "shipping", "address, name missing"),
        ({**CHARGE_OK, "shipping": {"name": "Ada"}}, "shipping", "address missing"),
        (
            {**CHARGE_OK, "shipping": {"name": "Ada", "address": {"city": "Paris"}}},
            "shipping",
            "address.line1 missing",
        ),
        (
            {**CHARGE_OK, "shipping": {"name": "Ada", "address": {"line1": "1", "zip": "7"}}},
            "shipping",
            "unknown shipping.address field(s): zip",
        ),
        ({**CHARGE_OK, "shipping": {"name": "Ada", "address": "1 rue"}}, "shipping", "object"),
    ],
    ids=[
        "float-amount",
        "string-amount",
        "decimal-amount",
        "bool-amount",
        "zero-amount",
        "currency",
        "no-source-no-customer",
        "not-a-customer-id",
        "shipping-phone-only",
        "shipping-no-address",
        "shipping-no-line1",
        "shipping-unknown-field",
        "shipping-address-not-object",
    ],
)
def test_create_charge_refuses_bad_input_before_calling_stripe(stripe_conn, fields, item, reason):
    with pytest.raises(InvalidItemError) as info:
        _run(StripeCreateChargeOperator, fields)
    assert info.value.item_id == item
    assert reason in info.value.reason
    assert stripe_conn.stripe_requests() == []


def test_create_charge_with_source_and_full_shipping(stripe_conn):
    shipping = {
        "name": "Ada Lovelace",
        "phone": "+44 20 7946 0000",
        "address": {"line1": "12 St James's Sq", "city": "London", "country": "GB"},
    }
    charge = _run(
        StripeCreateChargeOperator,
        {**CHARGE_OK, "shipping": shipping, "capture": False, "metadata": {"order": "O-1"}},
    )
    assert (charge["amount"], charge["currency"], charge["captured"]) == (1250, "eur", False)
    assert charge["shipping"]["address"]["line1"] == "12 St James's Sq"
    assert charge["metadata"] == {"order": "O-1"}
    (request,) = stripe_conn.stripe_requests(path="/v1/charges", method="POST")
    assert request["params"]["amount"] == "1250"  # minor units, exactly as given
    assert request["idempotency_key"]


def test_create_charge_for_a_customer_is_idempotent_per_run_and_task(stripe_conn):
    customer = _run(StripeCreateCustomerOperator, {"email": "ada@example.com"}, "customer")
    fields = {"amount": 300, "currency": "jpy", "customer": customer["id"],
              "source": "pm_card_visa"}  # fmt: skip
    first = _run(StripeCreateChargeOperator, fields, "charge")
    retried = _run(StripeCreateChargeOperator, fields, "charge")  # a task retry
    assert retried["id"] == first["id"]
    assert [c["id"] for c in stripe_conn.charges()] == [first["id"]]
    assert first["customer"] == customer["id"] and first["amount"] == 300
    other_run = StripeCreateChargeOperator(task_id="charge", fields=fields).execute(
        {"run_id": "manual__other"}
    )
    assert other_run["id"] != first["id"]


def test_create_charge_is_a_confirmed_payment_intent_and_returns_its_charge(stripe_conn):
    """``charges.create`` is deprecated in the pinned API version: the action creates and
    confirms a PaymentIntent (``source`` is its payment method, ``capture=False`` a manual
    capture) and returns the intent's charge, as the MuleSoft action returned a charge."""
    charge = _run(
        StripeCreateChargeOperator,
        {"amount": 1250, "currency": "EUR", "source": "pm_card_visa", "capture": False,
         "metadata": {"order": "O-1"}},
    )  # fmt: skip
    assert charge["object"] == "charge" and charge["id"].startswith("ch_")
    assert (charge["amount"], charge["currency"], charge["captured"]) == (1250, "eur", False)
    assert stripe_conn.stripe_requests(path="/v1/charges", method="POST") == []
    (request,) = stripe_conn.stripe_requests(path="/v1/payment_intents", method="POST")
    params = request["params"]
    assert (params["payment_method"], params["capture_method"], params["confirm"]) == (
        "pm_card_visa",
        "manual",
        "true",
    )
    assert "capture" not in params and "source" not in params
    [intent] = stripe_conn.payment_intents()
    assert (intent["id"], intent["status"]) == (charge["payment_intent"], "requires_capture")
    assert intent["metadata"] == {"order": "O-1"}


def test_create_charge_for_an_unknown_customer_is_stripes_refusal(stripe_conn):
    with pytest.raises(PaymentProviderError, match="cus_unknown"):
        _run(
            StripeCreateChargeOperator, {"amount": 1, "currency": "eur", "customer": "cus_unknown"}
        )


# -- customers -----------------------------------------------------------------------------------


def test_customer_phone_is_the_customers_not_shipping(stripe_conn):
    customer = _run(
        StripeCreateCustomerOperator,
        {
            "email": "ada@example.com",
            "name": "Ada",
            "phone": "+33 1 23 45 67 89",
            "address": {"line1": "1 rue de Rivoli", "city": "Paris", "country": "FR"},
            "metadata": {"crm": "42"},
        },
    )
    assert customer["phone"] == "+33 1 23 45 67 89"
    assert customer["shipping"] is None
    (request,) = stripe_conn.stripe_requests(path="/v1/customers", method="POST")
    assert request["params"]["phone"] == "+33 1 23 45 67 89"
    assert "shipping" not in request["params"]
    found = _run(StripeFindCustomerOperator, {"customer_id": customer["id"]})
    assert (found["id"], found["email"], found["phone"]) == (
        customer["id"],
        "ada@example.com",
        "+33 1 23 45 67 89",
    )


@pytest.mark.parametrize(
    ("fields", "item", "reason"),
    [
        ({"email": "ada.example.com"}, "email", "not an e-mail address"),
        ({"email": "@example.com"}, "email", "not an e-mail address"),
        ({"phone": "call me"}, "phone", "no digits"),
        ({"address": {"line1": "1", "street": "x"}}, "address", "unknown address field(s): street"),
    ],
)
def test_create_customer_refuses_bad_input_before_calling_stripe(stripe_conn, fields, item, reason):
    with pytest.raises(InvalidItemError) as info:
        _run(StripeCreateCustomerOperator, fields)
    assert (info.value.item_id, reason in info.value.reason) == (item, True)
    assert stripe_conn.stripe_requests() == []


@pytest.mark.parametrize("value", [None, "", "acct_123", "ch_1"])
def test_find_customer_needs_a_customer_id(stripe_conn, value):
    with pytest.raises(InvalidItemError, match="customer id") as info:
        _run(StripeFindCustomerOperator, {"customer_id": value})
    assert info.value.item_id == "customer_id"
    assert stripe_conn.stripe_requests() == []


def test_find_unknown_customer_fails_with_stripes_message(stripe_conn):
    with pytest.raises(PaymentProviderError, match="cus_missing"):
        _run(StripeFindCustomerOperator, {"customer_id": "cus_missing"})


# -- products ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fields", [{}, {"name": None}, {"name": "   "}, {"description": "x"}])
def test_create_product_requires_a_name(stripe_conn, fields):
    with pytest.raises(InvalidItemError, match="name is required"):
        _run(StripeCreateProductOperator, fields)
    assert stripe_conn.stripe_requests() == []


def test_create_product(stripe_conn):
    product = _run(
        StripeCreateProductOperator, {"name": "  Mug  ", "description": "Blue", "active": False}
    )
    assert (product["name"], product["description"], product["active"]) == ("Mug", "Blue", False)
    assert product["id"].startswith("prod_")


# -- new charge / new refund sensors -------------------------------------------------------------


def _charge(_admin: Any, amount: int) -> dict[str, Any]:
    return _run(
        StripeCreateChargeOperator,
        {"amount": amount, "currency": "eur", "source": "pm_card_visa"},
        f"charge_{amount}",
    )


def test_new_charge_sensor_returns_new_charges_then_defers(stripe_conn, variables):
    start = int(stripe_conn.clock()["now"])
    first, second = _charge(stripe_conn, 100), _charge(stripe_conn, 200)
    sensor = StripeNewChargeSensor(task_id="new_charge", since=start)
    found = sensor.execute(CONTEXT)
    assert sorted(c["id"] for c in found) == sorted([first["id"], second["id"]])
    saved = json.loads(variables["stripe_cursor__adhoc_airflow__new_charge"])
    assert saved["created"] >= start and set(saved["ids"]) <= {first["id"], second["id"]}

    # Nothing new since the saved cursor: the next run defers, polling every 15 s by default.
    with pytest.raises(TaskDeferred) as deferred:
        StripeNewChargeSensor(task_id="new_charge", since=start).execute(CONTEXT)
    trigger = deferred.value.trigger
    assert isinstance(trigger, StripeNewObjectsTrigger)
    assert (trigger.resource, trigger.poll_interval, trigger.cursor) == ("charges", 15.0, saved)
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout.total_seconds() == sensor.timeout

    third = _charge(stripe_conn, 300)
    resumed = StripeNewChargeSensor(task_id="new_charge").execute(CONTEXT)
    assert [c["id"] for c in resumed] == [third["id"]]


def test_new_refund_sensor_sees_refunds_not_charges(stripe_conn, variables):
    from mirakl_connector.airflow.hooks.stripe import StripeHook

    charge = _charge(stripe_conn, 500)
    since = charge["created"]
    with pytest.raises(TaskDeferred):  # a charge is not a refund
        StripeNewRefundSensor(task_id="new_refund", since=since).execute(CONTEXT)
    made = (
        StripeHook()
        .get_gateway()
        .create_refund(
            payment_id=charge["id"],
            amount=200,
            currency=charge["currency"],
            idempotency_key="r1",
            metadata={},
        )
    )
    found = StripeNewRefundSensor(task_id="new_refund", since=since).execute(CONTEXT)
    assert [(r["id"], r["amount"], r["charge"]) for r in found] == [(made.id, 200, charge["id"])]


def test_poll_interval_is_configurable_and_positive(stripe_conn, variables):
    with pytest.raises(TaskDeferred) as deferred:
        StripeNewRefundSensor(task_id="r", poll_interval=2.5).execute(CONTEXT)
    assert deferred.value.trigger.poll_interval == 2.5
    with pytest.raises(ValueError, match="poll_interval"):
        StripeNewChargeSensor(task_id="c", poll_interval=0)


def test_execute_complete_saves_the_cursor_and_fails_on_error(stripe_conn, variables):
    sensor = StripeNewChargeSensor(task_id="c", cursor_variable="my_cursor")
    event = {
        "status": "success",
        "objects": [{"id": "ch_1", "created": 10}],
        "cursor": {"created": 10, "ids": ["ch_1"]},
    }
    assert sensor.execute_complete(CONTEXT, event) == [{"id": "ch_1", "created": 10}]
    assert json.loads(variables["my_cursor"]) == {"created": 10, "ids": ["ch_1"]}
    with pytest.raises(RuntimeError, match="polling Stripe charges failed: boom"):
        sensor.execute_complete(CONTEXT, {"status": "error", "message": "boom"})


def test_poke_mode_without_deferral(stripe_conn, variables):
    start = int(stripe_conn.clock()["now"])
    sensor = StripeNewChargeSensor(task_id="poke", since=start, deferrable=False)
    assert sensor.poke(CONTEXT).is_done is False
    charge = _charge(stripe_conn, 700)
    result = sensor.poke(CONTEXT)
    assert result.is_done and [c["id"] for c in result.xcom_value] == [charge["id"]]


def test_trigger_serializes_round_trip():
    trigger = StripeNewObjectsTrigger(
        stripe_conn_id="stripe_eu",
        resource="refunds",
        cursor={"created": 1700000000, "ids": ["re_1"]},
        poll_interval=30,
    )
    path, kwargs = trigger.serialize()
    module, name = path.rsplit(".", 1)
    rebuilt = getattr(__import__(module, fromlist=[name]), name)(**kwargs)
    assert rebuilt.serialize() == (path, kwargs)
    assert json.loads(json.dumps(kwargs)) == kwargs  # stored as JSON by the triggerer
    assert kwargs == {
        "stripe_conn_id": "stripe_eu",
        "resource": "refunds",
        "cursor": {"created": 1700000000, "ids": ["re_1"]},
        "types": None,
        "poll_interval": 30,
    }


def test_trigger_polls_the_sandbox_until_a_new_charge(stripe_conn):
    start = int(stripe_conn.clock()["now"])
    old = _charge(stripe_conn, 100)
    trigger = StripeNewObjectsTrigger(
        stripe_conn_id="stripe_default",
        resource="charges",
        cursor={"created": start, "ids": [old["id"]]},
        poll_interval=0.05,
    )

    async def scenario() -> Any:
        run = trigger.run()
        waiting = asyncio.ensure_future(run.__anext__())
        await asyncio.sleep(0.2)
        assert not waiting.done()  # nothing new yet: still polling
        fresh = await asyncio.to_thread(_charge, stripe_conn, 250)
        event = await asyncio.wait_for(waiting, timeout=5)
        await run.aclose()
        return fresh, event

    fresh, event = asyncio.run(scenario())
    assert event.payload["status"] == "success"
    assert [c["id"] for c in event.payload["objects"]] == [fresh["id"]]
    assert event.payload["cursor"]["created"] == fresh["created"]
    assert fresh["id"] in event.payload["cursor"]["ids"]
    polls = stripe_conn.stripe_requests(path="/v1/charges", method="GET")
    assert len(polls) >= 2


def test_trigger_reports_an_error_instead_of_dying(stripe_conn, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_STRIPE_BAD", json.dumps({"conn_type": "stripe", "password": "pk_live_x"})
    )
    trigger = StripeNewObjectsTrigger(
        stripe_conn_id="stripe_bad", resource="charges", cursor={"created": 0}, poll_interval=0.01
    )

    async def first() -> Any:
        return await trigger.run().__anext__()

    event = asyncio.run(first())
    assert event.payload["status"] == "error" and "pk_live_x" not in event.payload["message"]


def test_new_objects_tells_same_second_objects_apart_by_id():
    cursor = {"created": 100, "ids": ["ch_a"]}
    listed = [
        {"id": "ch_c", "created": 101},
        {"id": "ch_b", "created": 100},
        {"id": "ch_a", "created": 100},
        {"id": "ch_z", "created": 99},
    ]
    fresh, after = new_objects(listed, cursor)
    assert [o["id"] for o in fresh] == ["ch_b", "ch_c"]
    assert after == {"created": 101, "ids": ["ch_c"]}
    same_second, kept = new_objects([{"id": "ch_d", "created": 100}], cursor)
    assert [o["id"] for o in same_second] == ["ch_d"] and kept == {
        "created": 100,
        "ids": ["ch_a", "ch_d"],
    }
    assert new_objects(listed[2:], cursor) == ([], cursor)


@pytest.mark.parametrize(
    ("operator", "fields"),
    [
        (StripeCreateChargeOperator, {**CHARGE_OK, "ammount": 5}),
        (StripeCreateCustomerOperator, {"shipping_phone": "+331"}),
        (StripeFindCustomerOperator, {"id": "cus_1"}),
        (StripeCreateProductOperator, {"name": "Mug", "price": 5}),
    ],
)
def test_unknown_fields_are_named_before_calling_stripe(stripe_conn, operator, fields):
    with pytest.raises(InvalidItemError, match="unknown field"):
        _run(operator, fields)
    assert stripe_conn.stripe_requests() == []
