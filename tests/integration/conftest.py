"""Fixtures for workflow tests: a live sandbox, real clients against it, a ledger per backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mirakl_sandbox.client import SandboxAdmin
from mirakl_sandbox.server import SandboxServer

from mirakl_connector.core.retry import RetryPolicy
from mirakl_connector.ledger import Ledger
from mirakl_connector.mirakl.client import MiraklClient
from mirakl_connector.stripe.gateway import StripeGateway

MIRAKL_KEY = "sandbox-mirakl-key"
STRIPE_KEY = "sk_test_sandbox"


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    server = SandboxServer(seed=7).start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> Iterator[SandboxAdmin]:
    """Admin client on an emptied sandbox; faults cleared after the test."""
    admin = SandboxAdmin(sandbox_server.url)
    admin.reset({})
    admin.clear_faults()
    yield admin
    admin.clear_faults()
    admin.close()


@pytest.fixture
def fast_retry() -> RetryPolicy:
    """Real retries, tiny waits: fault tests stay fast."""
    return RetryPolicy(max_attempts=6, max_elapsed=30, base_delay=0.01, max_delay=0.05)


@pytest.fixture
def mirakl(sandbox_server: SandboxServer, fast_retry: RetryPolicy) -> MiraklClient:
    return MiraklClient(sandbox_server.url, MIRAKL_KEY, retry=fast_retry, timeout=(2, 5))


@pytest.fixture
def stripe_gateway(sandbox_server: SandboxServer, fast_retry: RetryPolicy) -> StripeGateway:
    return StripeGateway(STRIPE_KEY, base_url=sandbox_server.url, retry=fast_retry, timeout=5)


@pytest.fixture
def workflow_ledger(ledger_url: str) -> Iterator[Ledger]:
    ledger = Ledger(ledger_url)
    yield ledger
    ledger.dispose()


class _Inbox:
    """Messages received by the test SMTP server (``email.message.Message`` objects)."""

    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd hook name
        import email
        from email import policy

        message = email.message_from_bytes(envelope.content, policy=policy.default)
        message["X-Rcpt-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[str, int, _Inbox]]:
    """A real SMTP server on loopback: ``(host, port, inbox)``; ``inbox.messages`` grows."""
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield "127.0.0.1", port, inbox
    controller.stop()


def sandbox_connections(sandbox_url: str, ledger_url: str) -> dict[str, dict]:
    """The Airflow connections (``AIRFLOW_CONN_<name>`` values) of a DAG run on the sandbox."""
    return {
        "MIRAKL_DEFAULT": {"conn_type": "mirakl", "host": sandbox_url, "password": MIRAKL_KEY},
        "STRIPE_DEFAULT": {"conn_type": "stripe", "host": sandbox_url, "password": STRIPE_KEY},
        "MIRAKL_CONNECTOR_DB": {"conn_type": "sqlite", "extra": {"sqlalchemy_url": ledger_url}},
    }
