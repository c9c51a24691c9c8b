"""Operator notifications delivered to a real HTTP endpoint on loopback; fallback e-mail to SMTP."""

from __future__ import annotations

import json
import smtplib
import socket
import threading
from datetime import UTC, datetime, timedelta
from email.mime.text import MIMEText
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.ledger.records import NotificationStatus, PayoutRecord, PayoutStatus
from mirakl_connector.operations.operator_notifications import (
    SUBJECT,
    JsonPoster,
    NotificationSettings,
    OperatorNotifications,
)

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


class Endpoint:
    """A tiny HTTP server recording the JSON bodies; answers ``statuses`` in turn, then 200."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.statuses: list[int] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length") or 0)
                endpoint.bodies.append(json.loads(self.rfile.read(length)))
                status = endpoint.statuses.pop(0) if endpoint.statuses else 200
                payload = b'{"ok": true}' if status < 400 else b"upstream exploded"
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/mirakl?token=s3cret"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Clock:
    def __init__(self) -> None:
        self.now = T0
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


class SmtplibMailer:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    def send(self, *, to, subject, html):
        message = MIMEText(html, "html", "utf-8")
        message["Subject"], message["To"] = subject, ", ".join(to)
        with smtplib.SMTP(self.host, self.port, timeout=5) as smtp:
            smtp.sendmail("alerts@example.com", list(to), message.as_string())


@pytest.fixture
def endpoint():
    server = Endpoint()
    yield server
    server.close()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def make_job(ledger, smtp_server, clock):
    host, port, _ = smtp_server

    def make(url, **settings):
        return OperatorNotifications(
            ledger=ledger,
            sender=JsonPoster(url, timeout=2) if url else None,
            settings=NotificationSettings(**settings),
            mailer=SmtplibMailer(host, port),
            recipients=["ops@example.com"],
            clock=clock,
            sleep=clock.sleep,
        )

    return make


def unreachable_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/down"  # nothing listens there once the probe is closed


def statuses(ledger):
    return [
        (n.type, n.status, n.attempts)
        for batch in ledger.iter_notifications(statuses=list(NotificationStatus))
        for n in batch
    ]


def test_failed_payout_is_delivered_once_with_the_connector_payload(ledger, make_job, endpoint):
    ledger.save_payouts([PayoutRecord("88", PayoutStatus.FAILED, "Payouts disabled", amount=999,
                                      currency="EUR")])  # fmt: skip
    job = make_job(endpoint.url)
    summary = job.deliver()
    job.deliver()

    (body,) = endpoint.bodies
    assert body["type"] == "payout.failed"
    assert body["payload"]["miraklInvoiceId"] == "88"
    assert (body["payload"]["amount"], body["payload"]["currency"]) == (999, "eur")
    assert body["payload"]["failedReason"] == "Payouts disabled"
    assert statuses(ledger) == [("payout.failed", NotificationStatus.SENT, 1)]
    assert summary.counts == {"SENT": 1}


def test_500_is_retried_on_the_1_5_25_schedule_then_sent(ledger, make_job, endpoint, clock):
    ledger.enqueue_notification("account.updated", {"miraklShopId": 1, "stripeUserId": "acct_1"},
                                "account.updated:1:1")  # fmt: skip
    endpoint.statuses = [500, 500, 500]
    summary = make_job(endpoint.url).deliver()
    assert len(endpoint.bodies) == 4
    assert clock.slept == [1, 5, 25]
    assert statuses(ledger) == [("account.updated", NotificationStatus.SENT, 4)]
    assert summary.counts == {"RETRY_SCHEDULED": 3, "SENT": 1}


def test_retry_beyond_the_run_budget_waits_for_the_next_run(ledger, make_job, endpoint, clock):
    ledger.enqueue_notification("account.updated", {"miraklShopId": 1}, "k1")
    endpoint.statuses = [500, 500]
    make_job(endpoint.url, max_run_seconds=3).deliver()
    assert len(endpoint.bodies) == 2  # t0 and t0+1 s; the 5 s retry is beyond the budget
    (n,) = [n for b in ledger.iter_notifications(statuses=[NotificationStatus.PENDING]) for n in b]
    assert n.next_attempt_at == T0 + timedelta(seconds=6)
    clock.now += timedelta(seconds=60)  # next minute's run
    make_job(endpoint.url, max_run_seconds=3).deliver()
    assert statuses(ledger) == [("account.updated", NotificationStatus.SENT, 3)]


def test_unreachable_endpoint_fails_and_emails_once_per_cooldown(
    ledger, make_job, smtp_server, clock
):
    url = unreachable_url()
    inbox = smtp_server[2]
    ledger.enqueue_notification("transfer.failed", {"miraklId": "ORD-1", "amount": 1234}, "k1")
    summary = make_job(url).deliver()
    assert statuses(ledger) == [("transfer.failed", NotificationStatus.FAILED, 4)]
    assert summary.failed_total == 1
    (message,) = inbox.messages
    assert message["Subject"] == SUBJECT
    body = message.get_content()
    assert "/down" in body and "ConnectionError" in body and "ORD-1" in body
    assert "tried 4 time(s)" in body

    clock.now = T0 + timedelta(minutes=5)  # second failure within 10 minutes: no e-mail
    ledger.enqueue_notification("transfer.failed", {"miraklId": "ORD-2"}, "k2")
    make_job(url).deliver()
    assert len(inbox.messages) == 1

    clock.now = T0 + timedelta(minutes=15)  # after the cooldown: e-mail again
    ledger.enqueue_notification("transfer.failed", {"miraklId": "ORD-3"}, "k3")
    make_job(url).deliver()
    assert len(inbox.messages) == 2
    assert "ORD-3" in inbox.messages[1].get_content()


def test_response_body_goes_in_the_email_and_the_secret_query_does_not(
    ledger, make_job, endpoint, smtp_server
):
    ledger.enqueue_notification("account.updated", {"miraklShopId": 1}, "k1")
    endpoint.statuses = [503] * 4
    make_job(endpoint.url, retry_delays_seconds=(0, 0, 0)).deliver()
    body = smtp_server[2].messages[0].get_content()
    assert "HTTP 503" in body and "upstream exploded" in body
    assert "s3cret" not in body and "/hooks/mirakl" in body


def test_zero_cooldown_emails_every_time(ledger, make_job, smtp_server):
    url = unreachable_url()
    for key in ("k1", "k2"):
        ledger.enqueue_notification("account.updated", {"miraklShopId": 1}, key)
    make_job(url, retry_delays_seconds=(), email_cooldown_minutes=0).deliver()
    assert len(smtp_server[2].messages) == 2


def test_no_endpoint_keeps_notifications_pending(ledger, make_job):
    ledger.enqueue_notification("account.updated", {"miraklShopId": 1}, "k1")
    summary = make_job(None).deliver()
    assert statuses(ledger) == [("account.updated", NotificationStatus.PENDING, 0)]
    assert summary.notes == ["no operator endpoint configured: 1 notification(s) left PENDING"]


def test_settings_are_checked():
    with pytest.raises(ConfigurationError, match="unknown operator_notifications"):
        NotificationSettings.from_mapping({"url": "http://x"})
    with pytest.raises(ConfigurationError, match="retry_delays_seconds"):
        NotificationSettings.from_mapping({"retry_delays_seconds": [1, -5]})
    assert (
        NotificationSettings.from_mapping({"email_cooldown_minutes": 0}).email_cooldown_minutes == 0
    )
