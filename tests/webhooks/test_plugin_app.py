"""The Airflow plugin's own app (``plugins/mirakl_connector_webhooks.py``), over in-process HTTP,
wired from Airflow connections and the config Variable: the onboarding refresh URL against the
sandbox, and the Stripe endpoint's secrets read from connection ``stripe_webhook``."""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.records import AccountMapping
from mirakl_connector.webhooks.signature import stripe_signature_header

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "mirakl_connector_webhooks.py"
REFRESH_BASE = "https://connector.example.com/mirakl-connector"


@pytest.fixture
def plugin(server, admin, tmp_path, monkeypatch) -> Iterator[tuple[Any, Ledger]]:
    """The plugin module loaded fresh, its connections pointing at the sandbox and a tmp ledger."""
    url = Ledger.default_sqlite_url(tmp_path)
    conns = {
        "stripe_default": {
            "conn_type": "stripe",
            "password": "sk_test_sandbox",
            "host": server.url,
        },
        "mirakl_default": {
            "conn_type": "mirakl",
            "password": "sandbox-mirakl-key",
            "host": server.url,
        },
        "mirakl_connector_db": {"conn_type": "sqlite", "extra": {"sqlalchemy_url": url}},
        "stripe_webhook": {
            "conn_type": "generic",
            "password": "whsec_platform",
            "extra": {"secrets": ["whsec_connect"]},
        },
    }
    for conn_id, fields in conns.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))
    config = {"seller_onboarding": {"refresh_base_url": REFRESH_BASE, "link_field": "stripe-url"}}
    monkeypatch.setenv("AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG", json.dumps(config))
    spec = importlib.util.spec_from_file_location("mirakl_connector_webhooks_under_test", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    admin.put_shops(
        [{"shop_id": 1, "shop_name": "One", "last_updated_date": "2026-11-01T00:00:00Z"}]
    )
    admin.put_accounts(
        [
            {"id": "acct_new", "type": "express", "details_submitted": False},
            {"id": "acct_done", "type": "express", "details_submitted": True},
        ]
    )
    admin.clear_mirakl_calls()
    admin.clear_stripe_requests()
    yield module, module._ledger_instance()
    module._ledger_instance().dispose()


def _client(module: Any) -> TestClient:
    return TestClient(module.app, follow_redirects=False)


def _map(ledger: Ledger, account: str, token: str) -> None:
    ledger.upsert_account_mapping(AccountMapping(1, account, onboarding_token=token))


@pytest.mark.parametrize("query", ["", "?token=", "?token=unknown-token"])
def test_refresh_with_a_missing_or_unknown_token_is_400(plugin, admin, query):
    module, ledger = plugin
    _map(ledger, "acct_new", "tok-known")
    response = _client(module).get(f"/onboarding/refresh{query}")
    assert response.status_code == 400
    # The seller's browser gets a page, not JSON.
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>This link is no longer valid</h1>" in response.text
    assert "token" not in response.text.lower()
    assert admin.stripe_requests() == [] and admin.mirakl_calls("S07") == []


def test_refresh_before_details_submitted_sends_a_new_account_link(plugin, admin):
    module, ledger = plugin
    _map(ledger, "acct_new", "tok-1")
    response = _client(module).get("/onboarding/refresh?token=tok-1")
    assert response.status_code == 302
    location = response.headers["location"]
    assert "/_sandbox/onboarding/acct_new" in location
    query = parse_qs(urlsplit(location).query)
    assert query["refresh_url"] == [f"{REFRESH_BASE}/onboarding/refresh?token=tok-1"]
    assert query["return_url"] == [f"{admin.url}/mmp/shop/account/shop"]  # the Mirakl shop page
    [call] = admin.mirakl_calls("S07")
    [shop] = call["body"]["shops"]
    assert shop["shop_id"] == 1
    assert shop["shop_additional_fields"] == [{"code": "stripe-url", "value": location}]
    assert len(admin.stripe_requests(path="/v1/account_links", method="POST")) == 1
    assert admin.stripe_requests(path="/v1/accounts/acct_new/login_links") == []


def test_an_expired_refresh_token_is_refused(plugin, admin):
    """Issue 11 point 8: a refresh token (in the shop's link field, in Stripe's links) used to
    hand out account links for ever; it now expires REFRESH_TOKEN_TTL after it was issued."""
    from datetime import UTC, datetime

    from mirakl_connector.stripe.onboarding import REFRESH_TOKEN_TTL, new_token

    module, ledger = plugin
    old = new_token(datetime.now(UTC) - REFRESH_TOKEN_TTL - timedelta(minutes=1))
    _map(ledger, "acct_new", old)
    response = _client(module).get(f"/onboarding/refresh?token={old}")
    assert response.status_code == 400
    assert "<h1>This link is no longer valid</h1>" in response.text
    assert admin.stripe_requests() == [] and admin.mirakl_calls("S07") == []

    fresh = new_token(datetime.now(UTC) - REFRESH_TOKEN_TTL + timedelta(minutes=1))
    _map(ledger, "acct_new", fresh)
    assert _client(module).get(f"/onboarding/refresh?token={fresh}").status_code == 302


def test_refresh_after_details_submitted_sends_a_login_link(plugin, admin):
    module, ledger = plugin
    _map(ledger, "acct_done", "tok-2")
    response = _client(module).get("/onboarding/refresh?token=tok-2")
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.endswith("/_sandbox/dashboard/acct_done")
    [call] = admin.mirakl_calls("S07")
    assert call["body"]["shops"][0]["shop_additional_fields"] == [
        {"code": "stripe-url", "value": location}
    ]
    assert admin.stripe_requests(path="/v1/account_links") == []


def test_stripe_endpoint_accepts_each_secret_of_the_connection(plugin):
    module, ledger = plugin
    client = _client(module)
    for n, secret in enumerate(("whsec_platform", "whsec_connect", "whsec_other")):
        event = {
            "id": f"evt_p{n}",
            "type": "payout.failed",
            "created": int(time.time()),
            "data": {"object": {"id": f"po_{n}"}},
        }
        body = json.dumps(event).encode()
        response = client.post(
            "/webhooks/stripe",
            content=body,
            headers={"Stripe-Signature": stripe_signature_header(body, secret)},
        )
        assert response.status_code == (400 if secret == "whsec_other" else 200), response.text
    assert ledger.inbox_event_ids("stripe", ["evt_p0", "evt_p1", "evt_p2"]) == {"evt_p0", "evt_p1"}


def test_hyperwallet_endpoint_is_unavailable_without_its_connection(plugin):
    module, _ = plugin
    response = _client(module).post("/webhooks/hyperwallet/anything", json={})
    assert response.status_code == 503
