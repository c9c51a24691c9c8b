"""Fixtures for the fault tests: one sandbox for the module, real clients, a SQLite ledger."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.records import AccountMapping
from mirakl_connector.mirakl.client import MiraklClient
from mirakl_connector.retry import RetryPolicy
from mirakl_connector.sandbox.client import SandboxAdmin
from mirakl_connector.sandbox.server import SandboxServer
from mirakl_connector.stripe_gateway import StripeGateway

MIRAKL_KEY = "sandbox-mirakl-key"
STRIPE_KEY = "sk_test_sandbox"


@pytest.fixture(scope="module")
def fault_server() -> Iterator[SandboxServer]:
    server = SandboxServer(seed=11).start()
    yield server
    server.stop()


@pytest.fixture
def admin(fault_server: SandboxServer) -> Iterator[SandboxAdmin]:
    admin = SandboxAdmin(fault_server.url)
    admin.reset({})
    admin.clear_faults()
    yield admin
    admin.clear_faults()
    admin.close()


@pytest.fixture
def retry() -> RetryPolicy:
    return RetryPolicy(max_attempts=4, max_elapsed=10, base_delay=0.01, max_delay=0.05)


@pytest.fixture
def clients(fault_server: SandboxServer, retry: RetryPolicy) -> tuple[MiraklClient, StripeGateway]:
    mirakl = MiraklClient(fault_server.url, MIRAKL_KEY, retry=retry, timeout=(1, 1))
    stripe = StripeGateway(STRIPE_KEY, base_url=fault_server.url, retry=retry, timeout=1)
    return mirakl, stripe


@pytest.fixture
def ledger_path(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def fault_ledger(ledger_path: str) -> Iterator[Ledger]:
    ledger = Ledger(ledger_path)
    yield ledger
    ledger.dispose()


@pytest.fixture
def map_accounts():
    """Store the account mappings of the sandbox's generated shops (what onboarding does)."""

    def store(admin: SandboxAdmin, ledger: Ledger) -> None:
        for account in admin.accounts():
            shop = (account.get("metadata") or {}).get("miraklShopId")
            if shop:
                mapping = AccountMapping(int(shop), account["id"], True, True)
                ledger.upsert_account_mapping(mapping)

    return store
