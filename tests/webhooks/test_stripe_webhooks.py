"""The webhook endpoints over HTTP, the processing job, the out-of-order guard and healing."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from mirakl_connector.core.registry import Resources
from mirakl_connector.ledger import InboxStatus, PayoutRecord, PayoutStatus
from mirakl_connector.ledger.records import PaymentMappingStatus
from mirakl_connector.stripe.events import StripeEvents, StripeEventsSettings
from mirakl_connector.stripe.onboarding import OnboardingSettings
from mirakl_connector.webhooks.signature import stripe_signature_header

from .conftest import HW_SECRET, SECRET  # noqa: TID252


def _event(event_id="evt_1", type_="payout.failed", obj=None, created=None):
    return {
        "id": event_id,
        "object": "event",
        "type": type_,
        "created": created or int(time.time()),
        "data": {"object": obj or {"id": "po_1", "object": "payout"}},
    }


def _post(client, event, *, secret=SECRET, timestamp=None, header=None, raw=None):
    body = raw if raw is not None else json.dumps(event).encode()
    sig = (
        header if header is not None else stripe_signature_header(body, secret, timestamp=timestamp)
    )
    return client.post("/webhooks/stripe", content=body, headers={"Stripe-Signature": sig})


def test_valid_event_is_stored_once_and_replay_is_a_duplicate(client, wh_ledger):
    first = _post(client, _event())
    again = _post(client, _event())
    assert first.status_code == 200 and first.json()["duplicate"] is False
    assert again.status_code == 200 and again.json()["duplicate"] is True
    stored = wh_ledger.get_inbox_event("stripe", "evt_1")
    assert stored.status == InboxStatus.RECEIVED and stored.object_id == "po_1"
    assert wh_ledger.inbox_pending() == (1, stored.id)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"secret": "whsec_wrong"}, "invalid signature"),
        ({"timestamp": int(time.time()) - 600}, "invalid signature"),
        ({"header": ""}, "missing Stripe-Signature"),
        ({"raw": b"not json"}, "not JSON"),
        ({"raw": b'{"id": "evt_2"}'}, "no type"),
    ],
    ids=["forged", "stale", "unsigned", "malformed", "incomplete"],
)
def test_rejected_payloads_store_nothing(client, wh_ledger, kwargs, reason):
    response = _post(client, _event("evt_2"), **kwargs)
    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert wh_ledger.inbox_event_ids("stripe", ["evt_2"]) == set()
    assert SECRET not in response.text


def test_several_v1_signatures_accept_any_matching_one(client, wh_ledger):
    body = json.dumps(_event("evt_3")).encode()
    good = stripe_signature_header(body, SECRET)
    bad = stripe_signature_header(body, "whsec_old")
    header = f"{bad},v1={good.split('v1=')[1]}"
    assert _post(client, None, raw=body, header=header).status_code == 200


def test_unknown_type_is_acknowledged_then_ignored(client, wh_ledger):
    assert _post(client, _event("evt_4", "customer.created", {"id": "cus_1"})).status_code == 200
    summary = _job(wh_ledger).process()
    assert summary.counts == {"IGNORED": 1}
    assert wh_ledger.get_inbox_event("stripe", "evt_4").status == InboxStatus.IGNORED


def test_hyperwallet_endpoint_needs_the_secret(client, wh_ledger):
    note = {
        "token": "wbh-1",
        "type": "PAYMENTS.UPDATED.STATUS.COMPLETED",
        "object": {"token": "pmt-1"},
    }
    assert client.post("/webhooks/hyperwallet/wrong", json=note).status_code == 401
    assert client.post(f"/webhooks/hyperwallet/{HW_SECRET}", json={"type": "x"}).status_code == 400
    ok = client.post(f"/webhooks/hyperwallet/{HW_SECRET}", json=note)
    assert ok.status_code == 200
    assert wh_ledger.get_inbox_event("hyperwallet", "wbh-1").object_id == "pmt-1"


def test_hyperwallet_endpoint_takes_the_secret_as_basic_auth_password(client, wh_ledger):
    """The preferred form: no secret in the path, so none in the API server's access log."""
    note = {"token": "wbh-2", "type": "PAYMENTS.UPDATED.STATUS.COMPLETED", "object": {"token": "p"}}
    assert client.post("/webhooks/hyperwallet", json=note).status_code == 401
    assert client.post("/webhooks/hyperwallet", json=note, auth=("hw", "wrong")).status_code == 401
    bad_header = {"Authorization": "Basic !!!not-base64"}
    assert client.post("/webhooks/hyperwallet", json=note, headers=bad_header).status_code == 401
    ok = client.post("/webhooks/hyperwallet", json=note, auth=("hyperwallet", HW_SECRET))
    assert ok.status_code == 200
    assert wh_ledger.get_inbox_event("hyperwallet", "wbh-2").object_id == "p"


def test_hyperwallet_endpoint_refuses_addresses_outside_the_allow_list(wh_ledger):
    from fastapi.testclient import TestClient

    from .conftest import webhook_app  # noqa: TID252

    remote = TestClient(webhook_app(wh_ledger, ("203.0.113.0/24",)), client=("198.51.100.7", 4000))
    assert remote.post(f"/webhooks/hyperwallet/{HW_SECRET}", json={}).status_code == 403


def _job(ledger, gateway=None, mirakl=None):
    resources = Resources(mirakl=lambda: mirakl, stripe=lambda: gateway, ledger=lambda: ledger)
    return StripeEvents(
        resources=resources,
        settings=StripeEventsSettings(),
        onboarding=OnboardingSettings(),
    )


def test_payout_failed_marks_the_row_failed_and_queues_a_notification(client, wh_ledger):
    wh_ledger.save_payouts(
        [
            PayoutRecord(
                "INV-1", status=PayoutStatus.CREATED, payout_id="po_9", amount=500, currency="EUR"
            )
        ]
    )
    obj = {
        "id": "po_9",
        "failure_code": "account_closed",
        "failure_message": "The bank account has been closed",
    }
    _post(client, _event("evt_10", "payout.failed", obj))
    summary = _job(wh_ledger).process()
    assert summary.counts == {"PROCESSED": 1}
    row = wh_ledger.get_payouts(["INV-1"])["INV-1"]
    assert row.status == PayoutStatus.FAILED
    assert row.status_reason == "account_closed: The bank account has been closed"
    queued = [n for batch in wh_ledger.iter_notifications(statuses=["PENDING"]) for n in batch]
    assert [n.type for n in queued] == ["payout.failed"]


def test_older_charge_event_never_overwrites_a_newer_one(client, wh_ledger):
    now = int(time.time())
    captured = {
        "id": "ch_1",
        "amount": 1000,
        "status": "succeeded",
        "captured": True,
        "metadata": {"mirakl_commercial_order_id": "CO-1"},
    }
    authorised = {**captured, "captured": False}
    _post(client, _event("evt_new", "charge.updated", captured, created=now))
    _post(client, _event("evt_old", "charge.succeeded", authorised, created=now - 60))
    summary = _job(wh_ledger).process()
    assert summary.counts == {"PROCESSED": 1, "IGNORED": 1}
    assert wh_ledger.get_payment_mapping("ch_1").status == PaymentMappingStatus.CAPTURED
    assert "superseded" in wh_ledger.get_inbox_event("stripe", "evt_old").last_error


def test_charge_commercial_id_from_payment_intent_and_empty_key_fails(
    client, wh_ledger, admin, gateway
):
    admin.put_payment_intents(
        [
            {
                "id": "pi_1",
                "amount": 700,
                "currency": "eur",
                "metadata": {"mirakl_commercial_order_id": "CO-7"},
            }
        ]
    )
    _post(
        client,
        _event(
            "evt_20",
            "charge.succeeded",
            {
                "id": "ch_7",
                "amount": 700,
                "status": "succeeded",
                "captured": False,
                "payment_intent": "pi_1",
                "metadata": {},
            },
        ),
    )
    _post(
        client,
        _event(
            "evt_21",
            "charge.succeeded",
            {
                "id": "ch_8",
                "amount": 5,
                "status": "succeeded",
                "captured": True,
                "metadata": {"mirakl_commercial_order_id": " "},
            },
        ),
    )
    summary = _job(wh_ledger, gateway).process()
    mapping = wh_ledger.get_payment_mapping("ch_7")
    assert (mapping.mirakl_commercial_order_id, mapping.status, mapping.stripe_amount) == (
        "CO-7",
        PaymentMappingStatus.TO_CAPTURE,
        700,
    )
    failed = wh_ledger.get_inbox_event("stripe", "evt_21")
    assert failed.status == InboxStatus.FAILED and failed.next_attempt_at is None
    assert "is empty in Charge metadata" in failed.last_error
    assert summary.counts["GAVE_UP"] == 1


def test_failed_attempt_is_retried_with_back_off(client, wh_ledger, admin, gateway):
    # The intent does not exist: Stripe answers 404, a provider error → retry later.
    _post(
        client,
        _event(
            "evt_30",
            "charge.succeeded",
            {
                "id": "ch_30",
                "amount": 1,
                "status": "succeeded",
                "payment_intent": "pi_missing",
                "metadata": {},
            },
        ),
    )
    job = _job(wh_ledger, gateway)
    assert job.process().counts == {"RETRY_SCHEDULED": 1}
    event = wh_ledger.get_inbox_event("stripe", "evt_30")
    assert event.attempts == 1 and event.next_attempt_at > datetime.now(UTC)
    assert job.process().total == 0  # not due yet
    assert wh_ledger.inbox_pending() == (0, 0)


def test_dropped_webhook_is_healed_from_the_events_api(client, wh_ledger, admin, gateway, server):
    """The sandbox drops the first webhook of a platform event; the healing pass finds it in the
    platform's Events list and stores it. A connected account's event is not in that list (as
    on Stripe): ``test_connected_account_events_are_not_in_the_platform_list`` and the DAG test
    in ``tests/integration/test_connected_events_and_funds_dags.py`` cover those."""
    import threading

    import uvicorn

    from mirakl_connector.webhooks.app import WebhookAppConfig, create_app

    app = create_app(WebhookAppConfig(ledger=lambda: wh_ledger, stripe_secrets=lambda: [SECRET]))
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    web = uvicorn.Server(config)
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    thread = threading.Thread(target=web.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not web.started:
            time.sleep(0.01)
        admin.set_webhooks(
            {
                "url": f"http://127.0.0.1:{port}/webhooks/stripe",
                "secret": SECRET,
                "types": ["charge.succeeded"],
                "drop": 1,
            }
        )
        charge = {"object": "charge", "amount": 100, "currency": "eur", "metadata": {}}
        admin.emit_event("charge.succeeded", {**charge, "id": "ch_h1"})  # dropped
        admin.emit_event("charge.succeeded", {**charge, "id": "ch_h2"})  # delivered
        deadline = time.monotonic() + 5
        while len(wh_ledger.inbox_event_ids("stripe", [e["id"] for e in admin.events()])) < 1:
            assert time.monotonic() < deadline, admin.webhooks()
            time.sleep(0.05)
        delivered = admin.webhooks()["deliveries"]
        assert [d.get("dropped", False) for d in delivered] == [True, False]
        healed = _job(wh_ledger, gateway).heal()
        assert healed.counts == {"HEALED": 1, "ALREADY_STORED": 1}
        dropped_id = delivered[0]["event_id"]
        assert wh_ledger.get_inbox_event("stripe", dropped_id).received_via == "healing"
        assert "HEALED" not in _job(wh_ledger, gateway).heal().counts  # a rerun stores nothing
    finally:
        web.should_exit = True
        thread.join(5)


def test_charge_amount_is_stored_in_iso_minor_units_not_stripes_unit(client, wh_ledger):
    """MGA is zero-decimal for Stripe (docs.stripe.com/currencies) but has two decimals in ISO
    4217, the ledger's unit; ISK the other way round. The capture compares this amount with
    Mirakl's, so it must be in the ledger's unit."""
    for charge_id, amount, currency, order in (
        ("ch_mga", 1200, "mga", "CO-MGA"), ("ch_isk", 500, "isk", "CO-ISK"),
    ):  # fmt: skip
        charge = {"id": charge_id, "amount": amount, "currency": currency,
                  "status": "succeeded", "captured": False,
                  "metadata": {"mirakl_commercial_order_id": order}}  # fmt: skip
        _post(client, _event(f"evt_{charge_id}", "charge.succeeded", charge))
    _job(wh_ledger).process()
    assert wh_ledger.get_payment_mapping("ch_mga").stripe_amount == 120000  # 1200.00 MGA
    assert wh_ledger.get_payment_mapping("ch_isk").stripe_amount == 5  # 5 ISK


def test_connected_account_events_are_not_in_the_platform_list(admin, gateway):
    """``GET /v1/events`` without ``Stripe-Account`` lists the platform's events only; the
    connected account's ``payout.failed`` is on that account's list (docs: Connect webhooks)."""
    admin.reset({"stripe": {"accounts": [{"id": "acct_1", "payouts_enabled": True}],
                            "balances": {"acct_1": {"eur": 1000}}}})  # fmt: skip
    payout = gateway.create_payout(
        account="acct_1", amount=100, currency="eur", idempotency_key="k1", metadata={}
    )
    admin.set_payout_status(payout.id, "failed", failure_code="x")
    admin.emit_event("charge.succeeded", {"id": "ch_1", "object": "charge"})
    since = datetime(2000, 1, 1, tzinfo=UTC)
    platform = list(gateway.iter_events(types=["payout.failed", "charge.succeeded"],
                                        created_since=since))  # fmt: skip
    assert [e["type"] for e in platform] == ["charge.succeeded"]
    seller = list(
        gateway._list(gateway._v1.events.list, {"type": "payout.failed"}, on_account="acct_1")
    )
    assert [(e["type"], e["account"]) for e in seller] == [("payout.failed", "acct_1")]
