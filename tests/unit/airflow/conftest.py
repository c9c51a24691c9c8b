"""Fakes for the adapter's unit tests: library modules it imports lazily, and an SMTP sink.

The adapter imports the Mirakl client, the Stripe gateway, the ledger and the workflow inside its
methods. The tests replace those modules in ``sys.modules`` with small recording fakes, so they
check the adapter's wiring (which arguments reach which constructor) independently of the real
implementations, which have their own tests.
"""

from __future__ import annotations

import json
import socketserver
import sys
import threading
import types
from dataclasses import dataclass, field
from typing import Any

import pytest

import mirakl_connector.ledger.records as records


@dataclass
class Recorder:
    mirakl_clients: list[dict[str, Any]] = field(default_factory=list)
    gateways: list[dict[str, Any]] = field(default_factory=list)
    ledgers: list[str] = field(default_factory=list)
    upserts: list[Any] = field(default_factory=list)
    workflows: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=lambda: {"counts": {"planned": 2}})


class FakeSummary:
    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(self._data))


def _module(name: str, **attrs: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    return module


@pytest.fixture
def fake_library(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    rec = Recorder()

    class MiraklClient:
        def __init__(self, base_url, api_key, *, timeout=(5.0, 30.0), retry=None, page_size=100):
            rec.mirakl_clients.append(
                {
                    "base_url": base_url,
                    "api_key": api_key,
                    "timeout": timeout,
                    "retry": retry,
                    "page_size": page_size,
                }
            )

        def version(self) -> dict[str, str]:
            return {"version": "3.210"}

    class StripeGateway:
        def __init__(
            self,
            api_key,
            *,
            base_url=None,
            retry=None,
            timeout=30.0,
            max_requests_per_second=None,
            max_requests_per_endpoint=None,
        ):
            rec.gateways.append(
                {
                    "api_key": api_key,
                    "base_url": base_url,
                    "retry": retry,
                    "timeout": timeout,
                    "max_requests_per_second": max_requests_per_second,
                    "max_requests_per_endpoint": max_requests_per_endpoint,
                }
            )

        def platform_account_id(self) -> str:
            return "acct_platform"

    class Ledger:
        def __init__(self, url: str) -> None:
            rec.ledgers.append(url)

        @staticmethod
        def default_sqlite_url(directory) -> str:
            return f"sqlite:///{directory}/mirakl_connector_ledger.db"

        def upsert_account_mapping(self, mapping):
            rec.upserts.append(mapping)
            return mapping

        def upsert_payment_mapping(self, mapping):
            rec.upserts.append(mapping)
            return mapping

    @dataclass(frozen=True)
    class PaymentSplitSettings:
        product_enabled: bool = True
        service_enabled: bool = False

        @classmethod
        def from_mapping(cls, values):
            values = dict(values or {})
            return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})

    class PaymentSplit:
        def __init__(self, *, mirakl, stripe, ledger, settings, run_id=None):
            rec.workflows.append({"settings": settings, "run_id": run_id})

        def plan(self, *, since=None, order_ids=None, dry_run=False):
            rec.calls.append(("plan", {"since": since, "order_ids": order_ids, "dry_run": dry_run}))
            return FakeSummary(rec.summary)

        def execute(self, *, dry_run=False, order_ids=None):
            rec.calls.append(("execute", {"order_ids": order_ids, "dry_run": dry_run}))
            return FakeSummary(rec.summary)

    fakes = {
        "mirakl_connector.mirakl": _module("mirakl_connector.mirakl"),
        "mirakl_connector.mirakl.client": _module(
            "mirakl_connector.mirakl.client", MiraklClient=MiraklClient
        ),
        "mirakl_connector.stripe.gateway": _module(
            "mirakl_connector.stripe.gateway", StripeGateway=StripeGateway
        ),
        "mirakl_connector.ledger": _module("mirakl_connector.ledger", Ledger=Ledger),
        "mirakl_connector.workflows": _module("mirakl_connector.workflows"),
        "mirakl_connector.stripe.payment_split": _module(
            "mirakl_connector.stripe.payment_split",
            PaymentSplit=PaymentSplit,
            PaymentSplitSettings=PaymentSplitSettings,
        ),
    }
    for name, module in fakes.items():
        monkeypatch.setitem(sys.modules, name, module)
    # Keep the real records module reachable under the fake ledger package.
    fakes["mirakl_connector.ledger"].records = records
    return rec


def set_connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, **fields: Any) -> None:
    """Define a connection through its AIRFLOW_CONN_<ID> JSON environment variable (no DB)."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))


@pytest.fixture
def connection(monkeypatch: pytest.MonkeyPatch):
    def _set(conn_id: str, **fields: Any) -> None:
        set_connection(monkeypatch, conn_id, **fields)

    return _set


# --- a tiny SMTP server that stores what it receives ------------------------------------------


class _SmtpHandler(socketserver.StreamRequestHandler):
    def _reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        message: dict[str, Any] = {"rcpt": []}
        self._reply("220 sink ESMTP")
        while True:
            line = self.rfile.readline().decode(errors="replace").rstrip("\r\n")
            if not line:
                return
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self._reply("250 sink")
            elif verb == "MAIL":
                message["from"] = line.split(":", 1)[1].strip(" <>")
                self._reply("250 OK")
            elif verb == "RCPT":
                message["rcpt"].append(line.split(":", 1)[1].strip(" <>"))
                self._reply("250 OK")
            elif verb == "DATA":
                self._reply("354 go ahead")
                data = []
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data.append(chunk)
                message["data"] = b"".join(data).decode(errors="replace")
                self.server.messages.append(message)  # type: ignore[attr-defined]
                message = {"rcpt": []}
                self._reply("250 queued")
            elif verb == "QUIT":
                self._reply("221 bye")
                return
            else:
                self._reply("250 OK")


class _SmtpSink(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SmtpHandler)
        self.messages: list[dict[str, Any]] = []


@pytest.fixture
def smtp_sink(monkeypatch: pytest.MonkeyPatch):
    """An SMTP server on a free local port, wired up as connection ``smtp_default``."""
    server = _SmtpSink()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    set_connection(
        monkeypatch,
        "smtp_default",
        conn_type="smtp",
        host="127.0.0.1",
        port=server.server_address[1],
        extra={"disable_tls": True, "disable_ssl": True, "timeout": 5, "retry_limit": 0},
    )
    yield server
    server.shutdown()
    server.server_close()
