"""Issue 11 point 8: authenticated but absurd requests get a 400 and store nothing (they gave
500s), an IPv4 client seen through a dual-stack socket matches an IPv4 allow list, and an
onboarding refresh token expires."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from mirakl_connector.stripe.onboarding import REFRESH_TOKEN_TTL, new_token, usable_token
from mirakl_connector.webhooks.signature import ip_allowed, stripe_signature_header

from .conftest import HW_SECRET, SECRET, webhook_app  # noqa: TID252

DEEP = b"[" * 100_000 + b"]" * 100_000


def _signed(client, body: bytes):
    headers = {"Stripe-Signature": stripe_signature_header(body, SECRET)}
    return client.post("/webhooks/stripe", content=body, headers=headers)


def _event(**fields):
    event = {"id": "evt_absurd", "type": "payout.failed", "created": int(time.time()),
             "data": {"object": {"id": "po_1"}}}  # fmt: skip
    return json.dumps({**event, **fields}).encode()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (DEEP, "nested too deep"),
        (_event(created=10**20), "impossible creation time"),
        (_event(created=-1), "impossible creation time"),
    ],
    ids=["nested-100000", "created-10^20", "created-negative"],
)
def test_signed_absurd_stripe_events_are_400(client, wh_ledger, body, reason):
    response = _signed(client, body)
    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert wh_ledger.inbox_event_ids("stripe", ["evt_absurd"]) == set()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (DEEP, "not a JSON object"),
        (
            json.dumps(
                {
                    "token": "wbh-9",
                    "type": "PAYMENTS.UPDATED.STATUS.COMPLETED",
                    "createdOn": "9999-12-31T23:59:59",
                    "object": {"token": "pmt-9"},
                }
            ).encode(),
            "createdOn is out of range",
        ),  # fmt: skip
    ],
    ids=["nested-100000", "createdOn-9999"],
)
def test_authenticated_absurd_hyperwallet_notifications_are_400(client, wh_ledger, body, reason):
    response = client.post(f"/webhooks/hyperwallet/{HW_SECRET}", content=body)
    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert wh_ledger.inbox_event_ids("hyperwallet", ["wbh-9"]) == set()


def test_ipv4_mapped_ipv6_clients_match_an_ipv4_allow_list(wh_ledger):
    assert ip_allowed("::ffff:203.0.113.5", ["203.0.113.0/24"])
    assert not ip_allowed("::ffff:198.51.100.7", ["203.0.113.0/24"])
    assert ip_allowed("2001:db8::1", ["2001:db8::/32"])
    app = webhook_app(wh_ledger, ("203.0.113.0/24",))
    note = {"token": "wbh-10", "type": "USERS.UPDATED.STATUS.VERIFIED", "object": {"token": "u"}}
    dual_stack = TestClient(app, client=("::ffff:203.0.113.5", 4000))
    assert dual_stack.post(f"/webhooks/hyperwallet/{HW_SECRET}", json=note).status_code == 200
    outsider = TestClient(app, client=("::ffff:198.51.100.7", 4000))
    assert outsider.post(f"/webhooks/hyperwallet/{HW_SECRET}", json=note).status_code == 403


def test_refresh_tokens_carry_their_issue_time_and_expire():
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    token = new_token(now)
    assert usable_token(token, now + REFRESH_TOKEN_TTL) == token
    assert usable_token(token, now + REFRESH_TOKEN_TTL + timedelta(seconds=1)) is None
    assert usable_token(token, now - timedelta(days=1)) is None  # issued "in the future"
    assert usable_token("0" * 32 + ".99999999999999999999", now) is None
    # a token issued before tokens expired: still accepted by the refresh URL, but a workflow
    # writing a new link replaces it
    assert usable_token("a" * 32, now) == "a" * 32
    assert usable_token("a" * 32, now, accept_legacy=False) is None
