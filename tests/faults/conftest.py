"""Fixtures for the fault tests: one sandbox for the module, real clients, a SQLite ledger.

The runs and audits shared with ``bench/faults.py`` live in
:mod:`mirakl_sandbox.fault_audit`; the fixtures below wire them to this sandbox.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from mirakl_sandbox.client import SandboxAdmin
from mirakl_sandbox.fault_audit import (
    FaultRun,
    audit_order_transfers,
    fault_config,
    injected_faults,
    problems,
    rule,
)
from mirakl_sandbox.proxy import FaultyProxy
from mirakl_sandbox.server import SandboxServer

from mirakl_connector.core.retry import RetryPolicy
from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.records import AccountMapping
from mirakl_connector.mirakl.client import MiraklClient
from mirakl_connector.stripe import exactly_once
from mirakl_connector.stripe.gateway import StripeGateway

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
                mapping = AccountMapping(
                    int(shop), account["id"], True, True, kyc_status="APPROVED"
                )
                ledger.upsert_account_mapping(mapping)

    return store


@pytest.fixture
def fault_run(fault_server: SandboxServer, fault_ledger: Ledger, ledger_path: str):
    """``make(workflow)``: the workflow run as its DAG runs it, against this sandbox and ledger.

    The clients try each call twice only, so a fault often outlives the client's retries and
    the item is left failed or in doubt for the next run: the recovery that must never pay
    twice, rather than a retry that hides it. They time out after 1 s, below the sandbox's
    injected timeouts (1.5 s), so an injected timeout is one for the client too.
    """
    retry = RetryPolicy(max_attempts=2, max_elapsed=10, base_delay=0.01, max_delay=0.05)

    def make(workflow: str, config: dict | None = None) -> FaultRun:
        # an explicit go-live instant: the generated orders and invoices are all after it
        config = {"go_live": "2000-01-01T00:00:00Z", **(config or {})}
        return FaultRun(
            fault_server.url, fault_ledger, ledger_path, workflow, config, retry, timeout=1
        )

    return make


@pytest.fixture
def paid_orders(admin: SandboxAdmin, fault_ledger: Ledger, map_accounts, fault_run):
    """``pay(n)``: ``n`` generated orders paid to their sellers by a fault-free payment split.

    Refunds start from there: each refunded order has a charge to refund and a transfer to
    reverse. Returns the orders as Mirakl holds them.
    """

    def pay(n: int, seed: int = 2) -> list[dict]:
        admin.generate(orders=n, shops=4, currency="EUR", seed=seed)
        map_accounts(admin, fault_ledger)
        assert fault_run("payment_split").run_once()
        assert audit_order_transfers(admin, fault_ledger).problems == []
        return admin.orders()

    return pay


@pytest.fixture
def through_faults(admin: SandboxAdmin, fault_run):
    """``go(workflow, audit, seed=, rules=, lost=)``: the DAG rerun through faults until clean.

    10 % of the calls of every API fail at random (see ``fault_config``). On top of that come
    ``rules``, and for each ``POST`` path of the ``provider`` (``stripe`` or ``hyperwallet``) in
    ``lost`` its first call done with the answer lost and the client's retry failing too: the
    item is in doubt until the next run, whatever the seed. Asserts that the faults fired and
    that ``audit()`` ends clean (exactly once, ledger = provider); returns the run and the faults
    seen, for the test's own checks.
    """

    def go(
        workflow: str, audit, *, seed: int, rules=(), lost=(), provider="stripe", config=None
    ) -> tuple[FaultRun, dict]:
        faults = fault_config(0.10, seed=seed)
        in_doubt = [
            rule(provider, "POST", path, action)
            for path in lost
            for action in ("lost_response", "error")
        ]
        faults["rules"] = [*rules, *in_doubt]
        admin.set_faults(faults)
        run = fault_run(workflow, config)

        settled = run.rerun_until(lambda: not problems(audit()))

        seen = injected_faults(admin)
        admin.clear_faults()
        assert seen[provider]["lost_response"] >= len(lost), seen
        assert sum(seen[provider].values()) >= 8, seen
        assert problems(audit()) == []
        assert settled
        return run, seen

    return go


@pytest.fixture(scope="module")
def proxy(fault_server: SandboxServer) -> Iterator[FaultyProxy]:
    """A proxy in front of the sandbox that replaces chosen answers after Stripe did the work."""
    with FaultyProxy(fault_server.url) as proxy:
        yield proxy


@pytest.fixture
def via_proxy(proxy: FaultyProxy, fault_ledger: Ledger, ledger_path: str, monkeypatch):
    """``make(workflow)``: the workflow run as its DAG runs it, all its calls through ``proxy``.

    Each client call is tried twice, as in ``fault_run``. A key for which the sandbox saved a
    server error is replaced as soon as a lookup finds nothing (``SPENT_KEY_SETTLE`` is an hour
    in production: the reruns here stand for the runs of that hour).
    """
    monkeypatch.setattr(exactly_once, "SPENT_KEY_SETTLE", timedelta(0))
    proxy.clear()
    retry = RetryPolicy(max_attempts=2, max_elapsed=10, base_delay=0.01, max_delay=0.05)

    def make(workflow: str, config: dict | None = None) -> FaultRun:
        # an explicit go-live instant: the generated orders and invoices are all after it
        config = {"go_live": "2000-01-01T00:00:00Z", **(config or {})}
        return FaultRun(proxy.url, fault_ledger, ledger_path, workflow, config, retry, timeout=5)

    yield make
    proxy.clear()
