"""Fixtures: one sandbox server per test module, state reset before each test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import stripe
from mirakl_sandbox import SandboxAdmin, SandboxServer

MIRAKL_KEY = "test-mirakl-key"
STRIPE_KEY = "sk_test_unit"


def base_scenario() -> dict[str, Any]:
    """A small marketplace most tests start from."""
    return {
        "mirakl": {
            "api_key": MIRAKL_KEY,
            "shops": [
                {
                    "shop_id": 1,
                    "shop_name": "One",
                    "last_updated_date": "2026-11-01T00:00:00Z",
                    "shop_additional_fields": [{"code": "stripe-url", "value": "https://old"}],
                },
                {
                    "shop_id": 2,
                    "shop_name": "Two",
                    "last_updated_date": "2026-11-10T00:00:00Z",
                    "shop_additional_fields": [],
                },
            ],
        },
        "stripe": {
            "api_key": STRIPE_KEY,
            "accounts": [
                {
                    "id": "acct_seller",
                    "charges_enabled": True,
                    "payouts_enabled": True,
                    "details_submitted": True,
                    "metadata": {"miraklShopId": "1"},
                },
                {"id": "acct_nopayout", "charges_enabled": True, "payouts_enabled": False},
                {"id": "acct_blocked", "metadata": {"sandbox_transfers_disabled": "true"}},
            ],
            "charges": [
                {"id": "ch_paid", "amount": 10000, "currency": "eur"},
                {"id": "ch_auth", "amount": 5000, "currency": "eur", "captured": False},
                {
                    "id": "ch_failed",
                    "amount": 5000,
                    "currency": "eur",
                    "status": "failed",
                    "captured": False,
                },
            ],
            "payment_intents": [
                {
                    "id": "pi_capture",
                    "amount": 3000,
                    "currency": "eur",
                    "status": "requires_capture",
                },
                {
                    "id": "pi_done",
                    "amount": 3000,
                    "currency": "eur",
                    "status": "succeeded",
                    "latest_charge": "ch_paid",
                },
            ],
            "platform_balance": {"eur": 50000},
            # the seller's available funds: its payouts and transfers to the platform need them
            "balances": {"acct_seller": {"eur": 10000}},
        },
    }


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    server = SandboxServer(seed=3).start()
    yield server
    server.stop()


@pytest.fixture
def admin(sandbox: SandboxServer) -> Iterator[SandboxAdmin]:
    client = SandboxAdmin(sandbox.url)
    client.clear_faults()
    client.reset(base_scenario())
    yield client
    client.clear_faults()
    client.close()


@pytest.fixture
def stripe_client(sandbox: SandboxServer, admin: SandboxAdmin) -> stripe.StripeClient:
    return stripe.StripeClient(
        STRIPE_KEY, base_addresses={"api": sandbox.url}, max_network_retries=0
    )


@pytest.fixture
def mirakl(sandbox: SandboxServer, admin: SandboxAdmin) -> Iterator[requests.Session]:
    session = requests.Session()
    session.headers["Authorization"] = MIRAKL_KEY
    session.base = sandbox.url  # type: ignore[attr-defined]
    yield session
    session.close()
