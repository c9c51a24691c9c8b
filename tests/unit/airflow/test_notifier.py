from __future__ import annotations

import email
import json
import socket
from email.header import decode_header, make_header
from types import SimpleNamespace

import pytest

from mirakl_connector.airflow.notifiers import ConnectorFailureNotifier
from mirakl_connector.airflow.operators.report import BatchFailuresError

CONFIG = {"alerts": {"email_to": ["ops@example.com", "cfo@example.com"],
                     "email_from": "airflow@example.com"}}  # fmt: skip


class FakeTI:
    dag_id = "stripe_payment_split"
    task_id = "report"
    run_id = "scheduled__2026-03-01T00:01:00+00:00"
    log_url = "http://localhost:8080/log"

    def xcom_pull(self, task_ids, key="return_value"):
        return None


def _logged(capfd) -> str:
    """Airflow's structlog writes task-side logs to the process output, not to caplog."""
    out, err = capfd.readouterr()
    return out + err


def _context(exception: BaseException) -> dict:
    ti = FakeTI()
    return {"ti": ti, "run_id": ti.run_id, "exception": exception, "dag": SimpleNamespace()}


def _subject_and_html(message: dict) -> tuple[str, str]:
    parsed = email.message_from_string(message["data"])
    subject = str(make_header(decode_header(parsed["Subject"])))
    html = next(
        part.get_payload(decode=True).decode()
        for part in parsed.walk()
        if part.get_content_type() == "text/html"
    )
    return subject, html


def test_sends_subject_body_and_failed_items_to_configured_recipients(
    smtp_sink, monkeypatch
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG", json.dumps(CONFIG))
    failed = [{"step": "create_transfers", "id": "1001-A", "reason": "Transfers <disabled>."}]
    ConnectorFailureNotifier().notify(_context(BatchFailuresError("1 item(s) failed", failed)))

    (message,) = smtp_sink.messages
    assert sorted(message["rcpt"]) == ["cfo@example.com", "ops@example.com"]
    assert message["from"] == "airflow@example.com"
    subject, html = _subject_and_html(message)
    assert subject == (
        "[Mirakl connector] stripe_payment_split.report failed "
        "(run scheduled__2026-03-01T00:01:00+00:00)"
    )
    assert "1 item(s) failed" in html
    assert "<td>1001-A</td>" in html
    assert "Transfers &lt;disabled&gt;." in html


def test_exception_text_with_jinja_braces_is_sent_verbatim(smtp_sink, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG", json.dumps(CONFIG))
    ConnectorFailureNotifier().notify(_context(RuntimeError("bad {{ value }}")))
    _, html = _subject_and_html(smtp_sink.messages[0])
    assert "bad {{ value }}" in html


def test_no_recipients_logs_an_error_and_sends_nothing(smtp_sink, monkeypatch, capfd) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG", json.dumps({"alerts": {}}))
    ConnectorFailureNotifier().notify(_context(RuntimeError("boom")))
    assert smtp_sink.messages == []
    assert "no recipients" in _logged(capfd)


def test_unreachable_smtp_logs_an_error_and_does_not_raise(monkeypatch, connection, capfd) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    extra = {"disable_tls": True, "disable_ssl": True, "timeout": 2, "retry_limit": 0}
    connection("smtp_default", conn_type="smtp", host="127.0.0.1", port=port, extra=extra)
    monkeypatch.setenv("AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG", json.dumps(CONFIG))
    ConnectorFailureNotifier().notify(_context(RuntimeError("boom")))
    assert "could not be sent via connection smtp_default" in _logged(capfd)


@pytest.mark.parametrize("raw", ["{not json", json.dumps({"alerts": {"email_to": 42}})])
def test_broken_config_logs_an_error_and_does_not_raise(raw, monkeypatch, capfd) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG", raw)
    ConnectorFailureNotifier().notify(_context(RuntimeError("boom")))
    assert "Cannot send the failure e-mail" in _logged(capfd)
