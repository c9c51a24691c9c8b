"""Secrets and bank details never reach logs, summaries or e-mails.

The demo marketplace runs through every workflow (as ``tests/integration/test_demo_scenario.py``
does), the Hyperwallet demo through both extracts, and signed webhooks through the app, with
every logger at DEBUG (HTTP libraries included). Nothing captured may contain an API key, the
Hyperwallet password (plain or in its Basic-auth form), a webhook secret or a full bank account
number from the scenarios.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from mirakl_sandbox.hyperwallet_data import DEFAULT_PASSWORD, DEFAULT_USERNAME
from mirakl_sandbox.scenario import load_scenario

from mirakl_connector.airflow.demo import seed_ledger
from mirakl_connector.airflow.workflows import spec_named
from mirakl_connector.core.registry import Resources, run_step
from mirakl_connector.core.retry import RetryPolicy
from mirakl_connector.hyperwallet.bank_account_sync import BankAccountExtract
from mirakl_connector.hyperwallet.client import HyperwalletClient
from mirakl_connector.hyperwallet.currency_selection import CurrencySettings
from mirakl_connector.hyperwallet.programs import HyperwalletSettings
from mirakl_connector.hyperwallet.seller_sync import SellerExtract, SellerExtractSettings
from mirakl_connector.ledger import Ledger
from mirakl_connector.mirakl.client import MiraklClient
from mirakl_connector.stripe.events import StripeEvents, StripeEventsSettings
from mirakl_connector.stripe.onboarding import OnboardingSettings
from mirakl_connector.webhooks.app import WebhookAppConfig, create_app
from mirakl_connector.webhooks.signature import stripe_signature_header

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "include/sandbox/mirakl_sandbox/scenarios"
DEMO_CONFIG = REPO / "scripts/demo-config.json"
MIRAKL_KEY = "sandbox-mirakl-key"  # what the fault conftest's clients use
STRIPE_KEY = "sk_test_sandbox"
WEBHOOK_SECRET = "whsec_fault_never_logged_5f1c"
PIPELINE = [
    ("seller_onboarding", "sync"),
    ("kyc_monitor", "monitor"),
    ("payment_validation", "validate"),
    ("payment_validation", "capture"),
    ("payment_split", "plan"),
    ("payment_split", "execute"),
    ("payment_refund", "plan"),
    ("payment_refund", "refund"),
    ("payment_refund", "reverse"),
    ("seller_settlement", "plan"),
    ("seller_settlement", "transfer"),
    ("seller_settlement", "payout"),
    ("failed_operations", "alert"),
    ("operator_notifications", "deliver"),
]
BANK_FIELDS = {"iban", "bank_account_number", "bankAccountId", "account_number"}


def _bank_numbers(value: Any) -> set[str]:
    """Every full IBAN / account number in a scenario (any depth)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, child in value.items():
            if key in BANK_FIELDS and isinstance(child, str) and len(child) >= 6:
                found.add(child)
            found |= _bank_numbers(child)
    elif isinstance(value, list):
        for child in value:
            found |= _bank_numbers(child)
    return found


def _secrets() -> dict[str, str]:
    basic = base64.b64encode(f"{DEFAULT_USERNAME}:{DEFAULT_PASSWORD}".encode()).decode()
    secrets = {
        "Stripe API key": STRIPE_KEY,
        "Mirakl API key": MIRAKL_KEY,
        "Hyperwallet password": DEFAULT_PASSWORD,
        "Hyperwallet Basic auth": basic,
        "webhook secret": WEBHOOK_SECRET,
    }
    for path in sorted(SCENARIOS.glob("*.json")):
        for number in sorted(_bank_numbers(json.loads(path.read_text(encoding="utf-8")))):
            secrets[f"bank number {number[-4:]} from {path.name}"] = number
    return secrets


def assert_no_secret(where: str, text: str) -> None:
    leaked = {name: value for name, value in _secrets().items() if value in text}
    assert leaked == {}, f"secrets found in {where}"


@pytest.fixture
def debug_logs(caplog) -> Iterator[pytest.LogCaptureFixture]:
    """Every logger at DEBUG, the HTTP libraries' included."""
    caplog.set_level(logging.DEBUG)
    for name in ("urllib3", "requests", "stripe", "httpx", "mirakl_connector"):
        caplog.set_level(logging.DEBUG, logger=name)
    yield caplog


class RecordingMailer:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, *, to: Sequence[str], subject: str, html: str) -> None:
        self.sent.append(f"{', '.join(to)}\n{subject}\n{html}")


def test_the_bank_numbers_to_look_for_are_found() -> None:
    """Guard: the scan below would pass vacuously if the scenarios' field names changed."""
    numbers = [v for k, v in _secrets().items() if k.startswith("bank number")]
    assert len(numbers) >= 6
    assert "ES3920956580417064096726" in numbers and "000123456789" in numbers


def test_the_demo_workflows_log_and_report_no_secret(
    admin, clients, ledger_path, debug_logs
) -> None:
    mirakl, stripe = clients
    demo = SCENARIOS / "demo.json"
    admin.reset(load_scenario(demo))
    seed_ledger(demo, url=ledger_path)
    config = json.loads(DEMO_CONFIG.read_text(encoding="utf-8"))
    mailer = RecordingMailer()
    summaries: dict[str, dict[str, Any]] = {}
    with Ledger(ledger_path) as ledger:
        resources = Resources(
            mirakl=lambda: mirakl,
            stripe=lambda: stripe,
            ledger=lambda: ledger,
            mailer=lambda: mailer,
            http=lambda: None,
        )
        for workflow, step in PIPELINE:
            spec = spec_named(workflow)
            job = spec.build(resources, config, f"secrets-{workflow}")
            summaries[f"{workflow}.{step}"] = run_step(job, spec.step(step), {}).to_dict()

    # The pass really did work (a scan of an empty run proves nothing).
    assert {k: s["failed_total"] for k, s in summaries.items() if s["failed_total"]} == {}
    assert len(admin.transfers()) >= 10 and mailer.sent
    assert any(r.name.startswith("urllib3") for r in debug_logs.records)  # HTTP debug captured
    assert_no_secret("logs", debug_logs.text)
    assert_no_secret("summaries", json.dumps(summaries, default=str))
    assert_no_secret("e-mails", "\n".join(mailer.sent))


def test_the_hyperwallet_extracts_log_and_report_no_bank_number(
    admin, fault_server, tmp_path, debug_logs
) -> None:
    admin.load(json.loads((SCENARIOS / "demo_hyperwallet.json").read_text(encoding="utf-8")))
    config = json.loads(DEMO_CONFIG.read_text(encoding="utf-8"))
    settings = HyperwalletSettings.from_config(config)
    retry = RetryPolicy.no_wait()
    mirakl = MiraklClient(fault_server.url, MIRAKL_KEY, retry=retry, timeout=(2, 5))
    hyperwallet = HyperwalletClient(
        fault_server.url, DEFAULT_USERNAME, DEFAULT_PASSWORD, retry=retry, timeout=(2, 5)
    )
    with Ledger(Ledger.default_sqlite_url(tmp_path)) as ledger:
        common = {"mirakl": mirakl, "hyperwallet": hyperwallet, "ledger": ledger,
                  "settings": settings}  # fmt: skip
        sellers = SellerExtract(seller_settings=SellerExtractSettings(), **common).sync()
        accounts = BankAccountExtract(currency_settings=CurrencySettings(), **common).sync()

    assert accounts.counts.get("CREATED") and accounts.failed  # the mistyped IBAN is reported
    assert_no_secret("logs", debug_logs.text)
    assert_no_secret("summaries", json.dumps([sellers.to_dict(), accounts.to_dict()], default=str))


def test_webhook_secret_is_not_logged_or_echoed(tmp_path, debug_logs) -> None:
    with Ledger(Ledger.default_sqlite_url(tmp_path)) as ledger:
        app = create_app(
            WebhookAppConfig(
                ledger=lambda: ledger,
                stripe_secrets=lambda: [WEBHOOK_SECRET],
                hyperwallet_secrets=lambda: [],
                hyperwallet_allow_list=lambda: [],
            )
        )
        client = TestClient(app)
        event = {
            "id": "evt_secret_1",
            "object": "event",
            "type": "payout.failed",
            "created": int(time.time()),
            "data": {"object": {"id": "po_1", "object": "payout"}},
        }
        body = json.dumps(event).encode()
        texts = []
        for header in (
            stripe_signature_header(body, WEBHOOK_SECRET),
            stripe_signature_header(body, WEBHOOK_SECRET, timestamp=int(time.time()) - 900),
            stripe_signature_header(body + b"x", WEBHOOK_SECRET),
        ):
            response = client.post(
                "/webhooks/stripe", content=body, headers={"Stripe-Signature": header}
            )
            texts.append(response.text)
        assert [json.loads(t).get("received") for t in texts] == [True, None, None]
        resources = Resources(mirakl=lambda: None, stripe=lambda: None, ledger=lambda: ledger)
        summary = StripeEvents(
            resources=resources, settings=StripeEventsSettings(), onboarding=OnboardingSettings()
        ).process()
    assert_no_secret("responses", "\n".join(texts))
    assert_no_secret("logs", debug_logs.text)
    assert_no_secret("summary", json.dumps(summary.to_dict(), default=str))
