"""The Airflow plugin's webhook app under a hostile mix of 50 Stripe deliveries.

Stripe retries, replays and reorders deliveries, and anyone can POST to a plugin app (Airflow
puts no auth in front of it). So whatever arrives: only correctly signed, fresh, well-formed
events are stored; each event id is stored once; none of the valid ones is lost; and the
processing job applies the newest state of each object, whatever the arrival order.
"""

from __future__ import annotations

import importlib.util
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mirakl_connector.core.registry import Resources
from mirakl_connector.ledger import InboxStatus, Ledger
from mirakl_connector.ledger.records import PaymentMappingStatus
from mirakl_connector.stripe.events import StripeEvents, StripeEventsSettings
from mirakl_connector.stripe.onboarding import OnboardingSettings
from mirakl_connector.webhooks.signature import stripe_signature_header

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "mirakl_connector_webhooks.py"
SECRET = "whsec_fault_platform"


@pytest.fixture
def plugin(fault_server, tmp_path, monkeypatch) -> Iterator[tuple[TestClient, Ledger]]:
    """The plugin module loaded fresh, its connections in the environment, a tmp ledger."""
    conns = {
        "stripe_default": {"conn_type": "stripe", "password": "sk_test_sandbox",
                           "host": fault_server.url},
        "mirakl_default": {"conn_type": "mirakl", "password": "sandbox-mirakl-key",
                           "host": fault_server.url},
        "mirakl_connector_db": {
            "conn_type": "sqlite",
            "extra": {"sqlalchemy_url": Ledger.default_sqlite_url(tmp_path)},
        },
        "stripe_webhook": {"conn_type": "generic", "password": SECRET},
    }  # fmt: skip
    for conn_id, fields in conns.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))
    spec = importlib.util.spec_from_file_location("mirakl_connector_webhooks_faults", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ledger = module._ledger_instance()
    yield TestClient(module.app), ledger
    ledger.dispose()


@dataclass
class Delivery:
    kind: str  # valid, replay, forged, stale, malformed
    event_id: str
    body: bytes
    header: str


def _charge_event(event_id: str, charge: str, *, state: str, created: int) -> dict[str, Any]:
    """A charge event; ``state`` is ``authorised``, ``captured`` or ``failed``."""
    obj = {
        "id": charge,
        "object": "charge",
        "amount": 1000,
        "currency": "eur",
        "status": "failed" if state == "failed" else "succeeded",
        "captured": state == "captured",
        "metadata": {"mirakl_commercial_order_id": f"CO-{charge}"},
    }
    return {
        "id": event_id,
        "object": "event",
        "type": "charge.succeeded" if state == "authorised" else "charge.updated",
        "created": created,
        "data": {"object": obj},
    }


def _signed(event: dict[str, Any] | None, *, raw: bytes | None = None, **kw) -> tuple[bytes, str]:
    body = raw if raw is not None else json.dumps(event).encode()
    return body, stripe_signature_header(body, kw.pop("secret", SECRET), **kw)


def _deliveries(now: int) -> tuple[list[Delivery], dict[str, bool]]:
    """50 deliveries and, per charge, the payment status its newest event implies."""
    rng = random.Random(20261122)
    valid: list[Delivery] = []
    newest_status: dict[str, PaymentMappingStatus] = {}
    # 10 charges x 2 events = 20 valid: the first five arrive newest-first (reordered: the older
    # event comes after), the next five in order. The older event is the authorisation; the
    # newer captures even charges and fails odd ones.
    for n in range(10):
        charge = f"ch_f{n}"
        newest = "captured" if n % 2 == 0 else "failed"
        old = _charge_event(f"evt_{n}_old", charge, state="authorised", created=now - 120)
        new = _charge_event(f"evt_{n}_new", charge, state=newest, created=now - 10)
        pair = [new, old] if n < 5 else [old, new]
        for event in pair:
            valid.append(Delivery("valid", event["id"], *_signed(event)))
        newest_status[charge] = (
            PaymentMappingStatus.CAPTURED if newest == "captured" else PaymentMappingStatus.FAILED
        )

    # 8 replays of valid events (fresh signature, same event id), after their original.
    schedule: list[Delivery] = list(valid)
    for original in rng.sample(valid, 8):
        body, header = _signed(None, raw=original.body)
        at = schedule.index(original) + 1 + rng.randrange(len(schedule) - schedule.index(original))
        schedule.insert(at, Delivery("replay", original.event_id, body, header))

    bad: list[Delivery] = []
    for n in range(6):
        event = _charge_event(f"evt_forged_{n}", "ch_f0", state="captured", created=now)
        body = json.dumps(event).encode()
        header = [
            stripe_signature_header(body, "whsec_attacker"),
            stripe_signature_header(body + b" ", SECRET),  # signed, then tampered
            "",
            "t=abc,v1=deadbeef",
            f"t={now}",
            stripe_signature_header(body, SECRET).replace("v1=", "v0="),
        ][n]
        bad.append(Delivery("forged", event["id"], body, header))
    for n in range(6):
        event = _charge_event(f"evt_stale_{n}", "ch_f1", state="failed", created=now)
        age = [301, 302, 400, 900, 3600, 86400][n]
        bad.append(Delivery("stale", event["id"], *_signed(event, timestamp=now - age)))
    malformed_bodies = [
        b"not json",
        b"",
        b"{",
        b"[]",
        b'"evt_mal_4"',
        json.dumps({"id": "evt_mal_5"}).encode(),  # no type
        json.dumps({"type": "charge.updated", "data": {"object": {"id": "ch_f2"}}}).encode(),
        json.dumps({"id": "evt_mal_7", "type": "charge.updated"}).encode(),  # no data
        json.dumps({"id": "evt_mal_8", "type": "charge.updated", "data": "x"}).encode(),
        json.dumps({"id": None, "type": "charge.updated", "data": {"object": {}}}).encode(),
    ]
    for n, body in enumerate(malformed_bodies):
        bad.append(Delivery("malformed", f"evt_mal_{n}", *_signed(None, raw=body)))

    for delivery in bad:  # spread the rejected ones through the stream
        schedule.insert(rng.randrange(len(schedule) + 1), delivery)
    return schedule, newest_status


def _job(ledger: Ledger) -> StripeEvents:
    resources = Resources(mirakl=lambda: None, stripe=lambda: None, ledger=lambda: ledger)
    return StripeEvents(
        resources=resources, settings=StripeEventsSettings(), onboarding=OnboardingSettings()
    )


def test_fifty_hostile_deliveries_store_each_valid_event_once_and_apply_the_newest(plugin):
    client, ledger = plugin
    schedule, newest_status = _deliveries(int(time.time()))
    assert len(schedule) == 50
    assert {k: sum(d.kind == k for d in schedule) for k in {d.kind for d in schedule}} == {
        "valid": 20, "replay": 8, "forged": 6, "stale": 6, "malformed": 10,
    }  # fmt: skip

    for delivery in schedule:
        response = client.post(
            "/webhooks/stripe",
            content=delivery.body,
            headers={"Stripe-Signature": delivery.header, "Content-Type": "application/json"},
        )
        if delivery.kind in ("forged", "stale", "malformed"):
            assert response.status_code == 400, (delivery.kind, delivery.event_id, response.text)
            assert SECRET not in response.text
        else:
            assert response.status_code == 200, (delivery.kind, delivery.event_id, response.text)
            assert response.json()["duplicate"] is (delivery.kind == "replay")

    # Exactly the valid ids are in the inbox, each once; nothing rejected was stored.
    rows = [e for batch in ledger.iter_inbox(statuses=list(InboxStatus)) for e in batch]
    valid_ids = {d.event_id for d in schedule if d.kind == "valid"}
    assert sorted(e.event_id for e in rows) == sorted(valid_ids)
    assert all(e.source == "stripe" and e.status == InboxStatus.RECEIVED for e in rows)
    rejected = [d.event_id for d in schedule if d.kind not in ("valid", "replay")]
    assert ledger.inbox_event_ids("stripe", rejected) == set()

    summary = _job(ledger).process()

    assert summary.failed_total == 0
    # Each charge ends in the state of its newest event, whatever order the two arrived in.
    applied = {charge: ledger.get_payment_mapping(charge).status for charge in newest_status}
    assert applied == newest_status
    # The older event that arrived after the newer one is superseded, not applied.
    for n in range(5):
        late = ledger.get_inbox_event("stripe", f"evt_{n}_old")
        assert late.status == InboxStatus.IGNORED and "superseded" in late.last_error
    # A second run has nothing left to do.
    assert _job(ledger).process().counts == {}
