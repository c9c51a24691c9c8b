"""Fixtures for the Hyperwallet payment, payment-status and KYC tests (sandbox + real clients)."""

from __future__ import annotations

import json
import smtplib
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.mime.text import MIMEText
from typing import Any

import pytest
from mirakl_sandbox.hyperwallet_admin import HyperwalletSandboxAdmin
from mirakl_sandbox.server import SandboxServer

from mirakl_connector.core.retry import RetryPolicy
from mirakl_connector.hyperwallet.client import HyperwalletClient
from mirakl_connector.hyperwallet.programs import HyperwalletSettings
from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.inbox_events import hyperwallet_inbox_event

HW_USER = "sandbox-hw-user"
HW_PASSWORD = "sandbox-hw-password"
NOTIFY_SECRET = "hw-secret-for-tests"

CONFIG: dict[str, Any] = {
    "hyperwallet": {
        "programs": [
            {
                "name": "EUROPE",
                "user_token": "prg-users",
                "payment_token": "prg-pay",
                "bank_account_token": "trm-operator",
            },
            {"name": "OTHER", "ignored": True},
        ]
    },
    "alerts": {"email_to": ["payments-ops@example.com"]},
    # an explicit go-live instant: the test invoices are all after it
    "go_live": "2000-01-01T00:00:00Z",
}


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def invoice(invoice_id: int, shop_id: int = 2001, **changes: Any) -> dict[str, Any]:
    """An IV01 automatic invoice created yesterday: 4545.20 EUR to the seller, 955.69 fee."""
    raw = {
        "invoice_id": invoice_id,
        "shop_id": shop_id,
        "date_created": iso(datetime.now(UTC) - timedelta(days=1)),
        "currency_iso_code": "EUR",
        "type": "AUTO_INVOICE",
        "state": "COMPLETE",
        "payment": {"state": "PENDING"},
        "summary": {"amount_transferred": 4545.2, "amount_transferred_to_operator": 955.69},
    }
    raw.update(changes)
    return raw


def shop(
    shop_id: int = 2001,
    *,
    program: str | None = "EUROPE",
    bank_token: str | None = "trm-seller",
    **changes: Any,
) -> dict[str, Any]:
    fields = [{"code": "hw-user-token", "value": "usr-seller"}]
    if program:
        fields.append({"code": "hw-program", "value": program})
    if bank_token:
        fields.append({"code": "hw-bankaccount-token", "value": bank_token})
    raw = {
        "shop_id": shop_id,
        "shop_name": f"Shop {shop_id}",
        "shop_state": "OPEN",
        "currency_iso_code": "EUR",
        "last_updated_date": iso(datetime.now(UTC) - timedelta(days=2)),
        "shop_additional_fields": fields,
    }
    raw.update(changes)
    return raw


def scenario(
    *,
    shops: Sequence[dict[str, Any]] = (),
    invoices: Sequence[dict[str, Any]] = (),
    billing_cycles: Sequence[dict[str, Any]] = (),
    users: Sequence[dict[str, Any]] = (),
    stakeholders: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """Mirakl shops and invoices, and the Hyperwallet side: programs, seller, operator account."""
    return {
        "mirakl": {
            "shops": list(shops),
            "invoices": list(invoices),
            "billing_cycles": list(billing_cycles),
        },
        "hyperwallet": {
            "username": HW_USER,
            "password": HW_PASSWORD,
            "programs": [{"token": "prg-users"}, {"token": "prg-pay"}],
            "users": [
                {
                    "token": "usr-seller",
                    "clientUserId": "2001",
                    "programToken": "prg-users",
                    "profileType": "INDIVIDUAL",
                },
                {"token": "usr-operator", "clientUserId": "operator", "programToken": "prg-users"},
                *users,
            ],
            "bank_accounts": [
                {"token": "trm-seller", "userToken": "usr-seller", "bankAccountId": "ES12"},
                {"token": "trm-seller-new", "userToken": "usr-seller", "bankAccountId": "ES34"},
                {"token": "trm-operator", "userToken": "usr-operator", "bankAccountId": "FR56"},
            ],
            "stakeholders": list(stakeholders),
        },
    }


@pytest.fixture
def hw_admin(sandbox_server: SandboxServer, sandbox) -> Iterator[HyperwalletSandboxAdmin]:
    """The Hyperwallet admin client on the emptied sandbox (``sandbox`` resets it)."""
    admin = HyperwalletSandboxAdmin(sandbox_server.url)
    yield admin
    admin.set_webhooks(None)
    admin.close()


@pytest.fixture
def hyperwallet(sandbox_server: SandboxServer, fast_retry: RetryPolicy) -> HyperwalletClient:
    return HyperwalletClient(
        sandbox_server.url, HW_USER, HW_PASSWORD, retry=fast_retry, timeout=(2, 5)
    )


@pytest.fixture
def hw_settings() -> HyperwalletSettings:
    return HyperwalletSettings.from_config(CONFIG)


class SmtplibMailer:
    """A core Mailer: plain smtplib to the test SMTP server."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    def send(self, *, to: Sequence[str], subject: str, html: str) -> None:
        message = MIMEText(html, "html")
        message["Subject"] = subject
        message["From"] = "alerts@example.com"
        message["To"] = ", ".join(to)
        with smtplib.SMTP(self.host, self.port, timeout=5) as smtp:
            smtp.sendmail("alerts@example.com", list(to), message.as_string())


@pytest.fixture
def mailer(smtp_server) -> SmtplibMailer:
    host, port, _ = smtp_server
    return SmtplibMailer(host, port)


class Clock:
    """An injectable ``now`` the tests move forward (never behind the real time: the ledger
    stamps failures with the real time)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return max(self.now, datetime.now(UTC))

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def store(ledger: Ledger, notification: dict[str, Any]) -> bool:
    """What the webhook endpoint does with a notification: store it once in the inbox."""
    return ledger.store_webhook_event(hyperwallet_inbox_event(notification))


def dag_connections(
    monkeypatch: pytest.MonkeyPatch,
    sandbox_url: str,
    ledger_url: str,
    hyperwallet_extra: dict[str, Any] | None = None,
) -> None:
    """Airflow connections (Mirakl, Hyperwallet, ledger) and the configuration Variable for a
    DAG run in-process against the sandbox; ``hyperwallet_extra``: the API connection's extra."""
    hyperwallet: dict[str, Any] = {
        "conn_type": "hyperwallet",
        "host": sandbox_url,
        "login": HW_USER,
        "password": HW_PASSWORD,
    }
    if hyperwallet_extra:
        hyperwallet["extra"] = hyperwallet_extra
    conns = {
        "MIRAKL_DEFAULT": {
            "conn_type": "mirakl",
            "host": sandbox_url,
            "password": "sandbox-mirakl-key",
        },
        "HYPERWALLET_DEFAULT": hyperwallet,
        "MIRAKL_CONNECTOR_DB": {"conn_type": "sqlite", "extra": {"sqlalchemy_url": ledger_url}},
    }
    for name, conn in conns.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{name}", json.dumps(conn))
    monkeypatch.setenv("AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG", json.dumps(CONFIG))


@contextmanager
def serve_webhooks(ledger: Ledger, encryption: Any = None) -> Iterator[str]:
    """The real webhook app (uvicorn on a free loopback port) storing into ``ledger``; yields
    the Hyperwallet notification URL. ``encryption``: the program's payload encryption."""
    import uvicorn

    from mirakl_connector.webhooks.app import WebhookAppConfig, create_app

    app = create_app(
        WebhookAppConfig(
            ledger=lambda: ledger,
            stripe_secrets=lambda: ["whsec_unused"],
            hyperwallet_secrets=lambda: [NOTIFY_SECRET],
            hyperwallet_allow_list=lambda: ["127.0.0.0/8"],
            hyperwallet_encryption=lambda: encryption,
        )
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/webhooks/hyperwallet/{NOTIFY_SECRET}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)


@pytest.fixture
def webhook_url(workflow_ledger: Ledger) -> Iterator[str]:
    """The real webhook app storing into the test ledger."""
    with serve_webhooks(workflow_ledger) as url:
        yield url


class Builders:
    """The data helpers, handed to tests as the ``hw`` fixture (tests import nothing local)."""

    config = CONFIG
    iso = staticmethod(iso)
    invoice = staticmethod(invoice)
    shop = staticmethod(shop)
    scenario = staticmethod(scenario)
    store = staticmethod(store)
    serve_webhooks = staticmethod(serve_webhooks)
    dag_connections = staticmethod(dag_connections)


@pytest.fixture
def hw() -> type[Builders]:
    return Builders
