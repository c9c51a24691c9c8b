"""A sandbox with one object of every kind the Stripe simulator serves, for the contract tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import stripe
from mirakl_sandbox import SandboxAdmin, SandboxServer

from mirakl_connector.core.retry import RetryPolicy
from mirakl_connector.stripe.gateway import StripeGateway

STRIPE_KEY = "sk_test_contract"


def scenario() -> dict[str, Any]:
    return {
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
            ],
            "charges": [
                {"id": "ch_paid", "amount": 10000, "currency": "eur"},
                {"id": "ch_auth", "amount": 5000, "currency": "eur", "captured": False},
            ],
            "payment_intents": [
                {
                    "id": "pi_capture",
                    "amount": 3000,
                    "currency": "eur",
                    "status": "requires_capture",
                },
                {
                    "id": "pi_cancel",
                    "amount": 3000,
                    "currency": "eur",
                    "status": "requires_capture",
                },
            ],
            "platform_balance": {"eur": 500000},
        },
    }


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    server = SandboxServer(seed=5).start()
    yield server
    server.stop()


@pytest.fixture
def admin(sandbox: SandboxServer) -> Iterator[SandboxAdmin]:
    client = SandboxAdmin(sandbox.url)
    client.clear_faults()
    client.reset(scenario())
    yield client
    client.close()


@pytest.fixture
def stripe_client(sandbox: SandboxServer, admin: SandboxAdmin) -> stripe.StripeClient:
    return stripe.StripeClient(
        STRIPE_KEY, base_addresses={"api": sandbox.url}, max_network_retries=0
    )


@pytest.fixture
def gateway(sandbox: SandboxServer, admin: SandboxAdmin) -> StripeGateway:
    return StripeGateway(STRIPE_KEY, base_url=sandbox.url, retry=RetryPolicy.no_wait(1))
