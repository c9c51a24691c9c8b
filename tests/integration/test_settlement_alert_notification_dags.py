"""The settlement, failed-operations and notification DAGs run in-process (``dag.test``)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.records import AccountMapping, NotificationStatus, PayoutStatus

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture
def env(sandbox, sandbox_server, smtp_server, tmp_path, monkeypatch, airflow_db):
    ledger_url = Ledger.default_sqlite_url(tmp_path)
    conns = {
        "MIRAKL_DEFAULT": {"conn_type": "mirakl", "host": sandbox_server.url,
                           "password": "sandbox-mirakl-key"},
        "STRIPE_DEFAULT": {"conn_type": "stripe", "host": sandbox_server.url,
                           "password": "sk_test_sandbox"},
        "MIRAKL_CONNECTOR_DB": {"conn_type": "sqlite", "extra": {"sqlalchemy_url": ledger_url}},
        "SMTP_DEFAULT": {"conn_type": "smtp", "host": smtp_server[0], "port": smtp_server[1],
                         "extra": {"disable_tls": True, "disable_ssl": True,
                                   "from_email": "airflow@example.com"}},
    }  # fmt: skip
    for name, conn in conns.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{name}", json.dumps(conn))
    monkeypatch.setenv("AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG", json.dumps(
        {"alerts": {"email_to": ["ops@example.com"]},
         "go_live": "2000-01-01T00:00:00Z"}))  # fmt: skip
    ledger = Ledger(ledger_url)
    yield ledger
    ledger.dispose()


def run_dag(dag_id, **conf):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / f"{dag_id}.py"))
    assert bag.import_errors == {}
    return bag.dags[dag_id].test(run_conf=conf or None, logical_date=None)


def test_settlement_dag_pays_out_then_moves_nothing_on_rerun(env, sandbox):
    sandbox.reset({
        "mirakl": {"api_key": "sandbox-mirakl-key", "invoices": [
            {"invoice_id": 1, "shop_id": 1, "currency_iso_code": "EUR",
             "date_created": "2026-11-01T00:00:00Z",
             "summary": {"amount_transferred": 12.34, "total_subscription_incl_tax": -9.99,
                         "total_other_credits_incl_tax": 0, "total_other_invoices_incl_tax": 0}},
        ]},
        "stripe": {"api_key": "sk_test_sandbox", "platform_account": {"id": "acct_platform"},
                   "accounts": [{"id": "acct_s1", "payouts_enabled": True}],
                   "balances": {"acct_s1": {"eur": 100_000}}},
    })  # fmt: skip
    env.upsert_account_mapping(AccountMapping(1, "acct_s1", True, True, kyc_status="APPROVED"))

    run = run_dag("stripe_seller_settlement")
    assert run.state == "success"
    report = run.get_task_instance("report").xcom_pull(task_ids="report")
    assert report["failed_count"] == 0
    assert report["steps"]["create_payouts"]["PAYOUT_CREATED"] == 1
    assert [p["amount"] for p in sandbox.payouts()] == [1234]
    assert [t["amount"] for t in sandbox.transfers()] == [999]

    run = run_dag("stripe_seller_settlement", shop_id=1)
    assert run.state == "success"
    assert len(sandbox.payouts()) == 1 and len(sandbox.transfers()) == 1
    assert env.get_payouts(["1"])["1"].status is PayoutStatus.CREATED


def test_alert_and_notification_dags(env, smtp_server, monkeypatch):
    from mirakl_connector.ledger.records import PayoutRecord

    env.save_payouts([PayoutRecord("88", PayoutStatus.FAILED, "Payouts disabled", amount=999,
                                   currency="EUR")])  # fmt: skip
    run = run_dag("stripe_failed_operations_alert")
    assert run.state == "success"
    (message,) = smtp_server[2].messages
    assert message["Subject"] == "[Mirakl connector] Failed operations"
    assert "9.99 EUR" in message.get_body().get_content()

    bodies = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("AIRFLOW_CONN_MIRAKL_OPERATOR_WEBHOOK", json.dumps(
            {"conn_type": "http", "host": "127.0.0.1", "schema": "http",
             "port": server.server_address[1], "extra": {"endpoint": "/notify"}}))  # fmt: skip
        run = run_dag("stripe_operator_notifications")
    finally:
        server.shutdown()
        server.server_close()
    assert run.state == "success"
    assert [b["type"] for b in bodies] == ["payout.failed"]
    sent = [n for b in env.iter_notifications(statuses=[NotificationStatus.SENT]) for n in b]
    assert len(sent) == 1
