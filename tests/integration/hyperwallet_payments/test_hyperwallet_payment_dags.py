"""The Hyperwallet payment, notification and retry DAGs run in-process (``dag.test``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mirakl_connector.ledger import HyperwalletPaymentStatus, InboxStatus, Ledger
from mirakl_connector.webhooks.inbox import HYPERWALLET

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

DAGS = Path(__file__).resolve().parents[3] / "dags"


@pytest.fixture
def dag_env(hw, sandbox, hw_admin, sandbox_server, tmp_path, monkeypatch, airflow_db):
    """Connections and the configuration Variable pointing at the sandbox; returns the ledger."""
    ledger_url = Ledger.default_sqlite_url(tmp_path)
    conns = {
        "MIRAKL_DEFAULT": {
            "conn_type": "mirakl",
            "host": sandbox_server.url,
            "password": "sandbox-mirakl-key",
        },
        "HYPERWALLET_DEFAULT": {
            "conn_type": "hyperwallet",
            "host": sandbox_server.url,
            "login": "sandbox-hw-user",
            "password": "sandbox-hw-password",
        },
        "MIRAKL_CONNECTOR_DB": {"conn_type": "sqlite", "extra": {"sqlalchemy_url": ledger_url}},
    }
    for name, conn in conns.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{name}", json.dumps(conn))
    monkeypatch.setenv("AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG", json.dumps(hw.config))
    ledger = Ledger(ledger_url)
    yield ledger
    ledger.dispose()


def run_dag(file: str, dag_id: str, **conf):
    """Parse the DAG file afresh, run ``dag_id``; return the run and its report XCom."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / file))
    assert bag.import_errors == {}
    run = bag.dags[dag_id].test(run_conf=conf or None, logical_date=None)
    report = run.get_task_instance("report").xcom_pull(task_ids="report")
    return run, report


def test_invoice_payments_dag_pays_once_and_reruns_safely(hw, sandbox, hw_admin, dag_env):
    sandbox.reset(hw.scenario(shops=[hw.shop()], invoices=[hw.invoice(230201)]))

    run, report = run_dag("hyperwallet_invoice_payments.py", "hyperwallet_invoice_payments")
    assert run.state == "success"
    assert report["steps"]["pay_invoices"]["PAID"] == 2
    assert len(hw_admin.payments()) == 2

    rerun, report = run_dag(
        "hyperwallet_invoice_payments.py",
        "hyperwallet_invoice_payments",
        since="2020-01-01T00:00:00+00:00",
    )
    assert rerun.state == "success"
    assert report["steps"]["pay_invoices"]["ALREADY_PAID"] == 2
    assert len(hw_admin.payments()) == 2


def test_payment_status_and_kyc_dags_apply_their_notifications(hw, sandbox, hw_admin, dag_env):
    sandbox.reset(hw.scenario(shops=[hw.shop()], invoices=[hw.invoice(230201)]))
    run_dag("hyperwallet_invoice_payments.py", "hyperwallet_invoice_payments")
    seller = next(p for p in hw_admin.payments() if p["clientPaymentId"] == "230201")
    completed = hw_admin.set_payment_status(seller["token"], "COMPLETED")["notification"]
    verified = hw_admin.set_user_status("usr-seller", verificationStatus="VERIFIED")
    hw.store(dag_env, completed)
    hw.store(dag_env, verified["notification"])

    run, report = run_dag("hyperwallet_notifications.py", "hyperwallet_payment_status")
    assert run.state == "success"
    assert report["steps"]["process_notifications"] == {"PROCESSED": 1}
    assert sandbox.state()["mirakl"]["invoices"][0]["payment"]["state"] == "PAID"
    row = dag_env.get_hyperwallet_payment("230201")
    assert row.status == HyperwalletPaymentStatus.COMPLETED and row.confirmed_at
    kyc_event = dag_env.get_inbox_event(HYPERWALLET, verified["notification"]["token"])
    assert kyc_event.status == InboxStatus.RECEIVED  # the KYC DAG's, not this one's

    run, report = run_dag("hyperwallet_notifications.py", "hyperwallet_kyc_status")
    assert run.state == "success"
    assert report["steps"]["process_notifications"] == {"PROCESSED": 1}
    shop = next(s for s in sandbox.state()["mirakl"]["shops"] if s["shop_id"] == 2001)
    assert shop["kyc"]["status"] == "APPROVED"


def test_retries_dag_pays_a_held_invoice_once_its_bank_account_exists(
    hw, sandbox, hw_admin, mirakl, dag_env
):
    sandbox.reset(hw.scenario(shops=[hw.shop(bank_token=None)], invoices=[hw.invoice(230201)]))
    run, report = run_dag("hyperwallet_invoice_payments.py", "hyperwallet_invoice_payments")
    assert run.state == "failed"  # the report turns the run red: the invoice is held
    assert [i.item_id for i in dag_env.pending_items("hyperwallet_invoice_payments")] == ["230201"]
    mirakl.update_shops(
        [
            {
                "shop_id": 2001,
                "shop_additional_fields": [{"code": "hw-bankaccount-token", "value": "trm-seller"}],
            }
        ]
    )

    run, report = run_dag("hyperwallet_retries.py", "hyperwallet_retries")

    assert run.state == "success"
    assert report["steps"]["retry_invoice_payments"]["PAID"] == 2
    assert len(hw_admin.payments()) == 2
    assert dag_env.pending_items("hyperwallet_invoice_payments") == []
