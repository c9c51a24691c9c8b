"""Sandbox endpoints added for the generic Stripe tasks and the webhooks: charges, customers,
products, login links, and webhook emission (signed, filtered, dropped, held, reordered)."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import stripe
from mirakl_sandbox import SandboxAdmin

from mirakl_connector.webhooks.signature import verify_stripe_event

SECRET = "whsec_sandbox_test"


def test_create_charge_needs_source_or_known_customer(
    stripe_client: stripe.StripeClient, admin: SandboxAdmin
) -> None:
    with pytest.raises(stripe.InvalidRequestError, match="source or customer"):
        stripe_client.v1.charges.create(params={"amount": 100, "currency": "eur"})
    with pytest.raises(stripe.InvalidRequestError, match="cus_nope"):
        stripe_client.v1.charges.create(
            params={"amount": 100, "currency": "eur", "customer": "cus_nope"}
        )
    with pytest.raises(stripe.InvalidRequestError, match="amount"):
        stripe_client.v1.charges.create(params={"currency": "eur", "source": "tok_visa"})
    charge = stripe_client.v1.charges.create(
        params={
            "amount": 1250,
            "currency": "EUR",
            "source": "tok_visa",
            "capture": False,
            "shipping": {"name": "Ada", "address": {"line1": "1 Main St"}},
            "metadata": {"k": "v"},
        },
        options={"idempotency_key": "charge-1"},
    )
    assert (charge.amount, charge.currency, charge.captured) == (1250, "eur", False)
    assert charge.source.id == "tok_visa" and charge.shipping.address.line1 == "1 Main St"
    assert charge.metadata.to_dict() == {"k": "v"}
    assert stripe_client.v1.charges.retrieve(charge.id).amount == 1250
    assert [e["type"] for e in admin.events()] == ["charge.succeeded"]


@pytest.mark.stripe_contract_refusals  # a product without its required name
def test_customers_and_products(stripe_client: stripe.StripeClient, admin: SandboxAdmin) -> None:
    customer = stripe_client.v1.customers.create(
        params={"email": "ada@example.com", "name": "Ada", "phone": "+33 1 23 45 67 89"}
    )
    assert customer.id.startswith("cus_") and customer.phone == "+33 1 23 45 67 89"
    found = stripe_client.v1.customers.retrieve(customer.id)
    assert (found.email, found.name) == ("ada@example.com", "Ada")
    with pytest.raises(stripe.InvalidRequestError, match="cus_missing"):
        stripe_client.v1.customers.retrieve("cus_missing")
    charge = stripe_client.v1.charges.create(
        params={"amount": 500, "currency": "eur", "customer": customer.id}
    )
    assert charge.customer == customer.id and charge.captured is True

    product = stripe_client.v1.products.create(params={"name": "Mug", "active": False})
    assert (product.name, product.active) == ("Mug", False)
    with pytest.raises(stripe.InvalidRequestError, match="name"):
        stripe_client.v1.products.create(params={"description": "no name"})
    assert [e["type"] for e in admin.events()] == [
        "customer.created",
        "charge.succeeded",
        "product.created",
    ]


def test_login_link_for_a_connected_account(stripe_client: stripe.StripeClient) -> None:
    link = stripe_client.v1.accounts.login_links.create("acct_seller")
    assert link.url.startswith("http") and "acct_seller" in link.url
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.accounts.login_links.create("acct_missing")


def test_charges_and_refunds_listed_by_created(
    stripe_client: stripe.StripeClient, admin: SandboxAdmin
) -> None:
    first = stripe_client.v1.charges.create(
        params={"amount": 1, "currency": "eur", "source": "tok"}
    )
    refund = stripe_client.v1.refunds.create(params={"charge": first.id})
    since = stripe_client.v1.charges.list(params={"created": {"gte": first.created}})
    assert first.id in [c.id for c in since.data]
    assert stripe_client.v1.charges.list(params={"created": {"gt": first.created}}).data == []
    refunds = stripe_client.v1.refunds.list(params={"created": {"gte": refund.created}})
    assert [r.id for r in refunds.data] == [refund.id]


# -- webhook emission ---------------------------------------------------------------------------


class _Receiver(http.server.ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[tuple[bytes, str]] = []
        self.arrived = threading.Condition()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server hook name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server: Any = self.server
        with server.arrived:
            server.received.append((body, self.headers.get("Stripe-Signature", "")))
            server.arrived.notify_all()
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver(admin: SandboxAdmin) -> Iterator[_Receiver]:
    server = _Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    admin.set_webhooks({})
    server.shutdown()
    server.server_close()


def _wait_for(receiver: _Receiver, count: int) -> list[dict[str, Any]]:
    with receiver.arrived:
        assert receiver.arrived.wait_for(lambda: len(receiver.received) >= count, timeout=5)
    # Each delivery is signed like Stripe's: our own verifier accepts it.
    return [verify_stripe_event(body, header, [SECRET]) for body, header in receiver.received]


def _deliveries(admin: SandboxAdmin, count: int) -> list[dict[str, Any]]:
    """The sandbox's delivery log once it has ``count`` entries (recorded after each POST)."""
    deadline = time.monotonic() + 5
    while len(shown := admin.webhooks()["deliveries"]) < count:
        assert time.monotonic() < deadline, shown
        time.sleep(0.02)
    return shown


def _emit(admin: SandboxAdmin, n: int) -> dict[str, Any]:
    return admin.emit_event("payout.failed", {"id": f"po_{n}", "object": "payout"})


def test_webhooks_are_signed_and_filtered_by_type(admin, receiver) -> None:
    admin.set_webhooks({"url": receiver.url, "secret": SECRET, "types": ["payout.failed"]})
    admin.emit_event("customer.created", {"id": "cus_1", "object": "customer"})
    sent = _emit(admin, 1)
    events = _wait_for(receiver, 1)
    assert [e["id"] for e in events] == [sent["id"]]
    assert admin.webhooks()["config"]["secret"] == "***"  # the admin API never shows it
    (delivery,) = _deliveries(admin, 1)
    assert (delivery["event_id"], delivery["status"]) == (sent["id"], 200)


def test_webhooks_dropped_duplicated_held_and_reordered(admin, receiver) -> None:
    admin.set_webhooks({"url": receiver.url, "secret": SECRET, "drop": 1})
    dropped = _emit(admin, 1)
    delivered = _emit(admin, 2)
    assert [e["id"] for e in _wait_for(receiver, 1)] == [delivered["id"]]
    log = _deliveries(admin, 2)
    assert log[0] == {"event_id": dropped["id"], "dropped": True}
    assert log[1]["event_id"] == delivered["id"]

    receiver.received.clear()
    admin.set_webhooks({"url": receiver.url, "secret": SECRET, "hold": True, "duplicate": True})
    old, new = _emit(admin, 3), _emit(admin, 4)
    assert admin.webhooks()["held"] == 4 and receiver.received == []
    assert admin.flush_webhooks(reverse=True) == 4
    ids = [e["id"] for e in _wait_for(receiver, 4)]
    assert ids == [new["id"], new["id"], old["id"], old["id"]]


def test_webhook_payload_is_the_stored_event(admin, receiver) -> None:
    admin.set_webhooks({"url": receiver.url, "secret": SECRET})
    sent = _emit(admin, 7)
    (event,) = _wait_for(receiver, 1)
    stored = {e["id"]: e for e in admin.events()}[sent["id"]]
    assert json.loads(json.dumps(event)) == stored
    assert event["data"]["object"]["id"] == "po_7"
