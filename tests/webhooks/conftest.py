"""Fixtures for the webhook tests: a sandbox, the webhook app over HTTP (in-process ASGI)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from mirakl_sandbox.client import SandboxAdmin
from mirakl_sandbox.server import SandboxServer

from mirakl_connector.core.retry import RetryPolicy
from mirakl_connector.ledger import Ledger
from mirakl_connector.stripe.gateway import StripeGateway
from mirakl_connector.webhooks.app import WebhookAppConfig, create_app

SECRET = "whsec_test_secret"
HW_SECRET = "hw-notify-secret-123"


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    srv = SandboxServer(seed=3).start()
    yield srv
    srv.stop()


@pytest.fixture
def admin(server: SandboxServer) -> Iterator[SandboxAdmin]:
    a = SandboxAdmin(server.url)
    a.reset({})
    yield a
    a.set_webhooks({})
    a.close()


@pytest.fixture
def gateway(server: SandboxServer) -> StripeGateway:
    return StripeGateway("sk_test_sandbox", base_url=server.url, retry=RetryPolicy.no_wait())


@pytest.fixture
def wh_ledger(tmp_path) -> Iterator[Ledger]:
    ledger = Ledger(Ledger.default_sqlite_url(tmp_path))
    yield ledger
    ledger.dispose()


def webhook_app(ledger: Ledger, allow_list: tuple[str, ...] = ("127.0.0.0/8",)):
    """The webhook app on ``ledger`` with the test secrets and Hyperwallet allow list."""
    return create_app(
        WebhookAppConfig(
            ledger=lambda: ledger,
            stripe_secrets=lambda: [SECRET],
            hyperwallet_secrets=lambda: [HW_SECRET],
            hyperwallet_allow_list=lambda: list(allow_list),
        )
    )


@pytest.fixture
def client(wh_ledger: Ledger) -> TestClient:
    return TestClient(webhook_app(wh_ledger), client=("127.0.0.1", 5000))
