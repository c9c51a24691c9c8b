"""The Hyperwallet payment, notification and retry DAGs run in-process (``dag.test``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mirakl_connector.ledger import HyperwalletPaymentStatus, InboxStatus, Ledger
from mirakl_connector.ledger.inbox_events import HYPERWALLET

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

DAGS = Path(__file__).resolve().parents[3] / "dags"


@pytest.fixture
def dag_env(hw, sandbox, hw_admin, sandbox_server, tmp_path, monkeypatch, airflow_db):
    """Connections and the configuration Variable pointing at the sandbox; returns the ledger."""
    ledger_url = Ledger.default_sqlite_url(tmp_path)
    hw.dag_connections(monkeypatch, sandbox_server.url, ledger_url)
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


def test_forged_completed_notification_confirms_nothing_and_fails_the_run(
    hw, sandbox, hw_admin, dag_env
):
    """Issue 19 pt 3 through the DAGs: the endpoint secret is not enough to get an invoice PAID."""
    sandbox.reset(hw.scenario(shops=[hw.shop()], invoices=[hw.invoice(230201)]))
    run_dag("hyperwallet_invoice_payments.py", "hyperwallet_invoice_payments")
    seller = next(p for p in hw_admin.payments() if p["clientPaymentId"] == "230201")
    forged = {
        "token": "wbh-forged-0001",
        "type": "PAYMENTS.UPDATED.STATUS.COMPLETED",
        "createdOn": "2030-01-01T09:00:00.000",
        "object": {**seller, "status": "COMPLETED"},
    }
    hw.store(dag_env, forged)

    run, report = run_dag("hyperwallet_notifications.py", "hyperwallet_payment_status")

    assert run.state == "failed"  # the report task names it (and the failure e-mail)
    summary = run.get_task_instance("process_notifications").xcom_pull(
        task_ids="process_notifications"
    )
    assert summary["counts"] == {"REJECTED": 1}
    assert (
        "Hyperwallet does not know notification wbh-forged-0001" in (summary["failed"][0]["reason"])
    )
    assert sandbox.mirakl_calls("IV07") == []
    assert sandbox.state()["mirakl"]["invoices"][0]["payment"]["state"] == "PENDING"
    row = dag_env.get_hyperwallet_payment("230201")
    assert (row.status, row.confirmed_at) == (HyperwalletPaymentStatus.CREATED, None)
    assert dag_env.get_inbox_event(HYPERWALLET, "wbh-forged-0001").status == InboxStatus.FAILED

    # The genuine COMPLETED, when Hyperwallet sends it, confirms the invoice.
    genuine = hw_admin.set_payment_status(seller["token"], "COMPLETED")["notification"]
    hw.store(dag_env, genuine)
    run, report = run_dag("hyperwallet_notifications.py", "hyperwallet_payment_status")
    assert report["steps"]["process_notifications"] == {"PROCESSED": 1}
    assert len(sandbox.mirakl_calls("IV07")) == 1
    assert sandbox.state()["mirakl"]["invoices"][0]["payment"]["state"] == "PAID"


def test_mirakl_host_with_api_suffix_works_through_the_dag(
    hw, sandbox, hw_admin, sandbox_server, dag_env, monkeypatch
):
    """Issue 19 pt 2: the Hyperwallet connector's Mirakl setting (``https://x.mirakl.net/api``)
    copied as is: the sensor's V01 and every call reach ``/api/...``, never ``/api/api/...``."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_MIRAKL_DEFAULT",
        json.dumps(
            {"conn_type": "mirakl", "host": sandbox_server.url + "/api/",
             "password": "sandbox-mirakl-key"}
        ),
    )  # fmt: skip
    sandbox.reset(hw.scenario(shops=[hw.shop()], invoices=[hw.invoice(230201)]))

    run, report = run_dag("hyperwallet_invoice_payments.py", "hyperwallet_invoice_payments")

    assert run.state == "success"
    assert report["steps"]["pay_invoices"]["PAID"] == 2
    paths = {c["path"] for c in sandbox.mirakl_calls()}
    assert "/api/invoices" in paths and not any(p.startswith("/api/api") for p in paths)


def test_notification_of_a_payment_we_never_made_leaves_the_invoice_payable(
    hw, sandbox, hw_admin, dag_env
):
    """Issue 11 pt 4 through the DAGs: Hyperwallet sent a COMPLETED about a payment that does not
    exist, for our invoice's id; nothing is marked paid and a manual run pays the invoice."""
    sandbox.reset(hw.scenario(shops=[hw.shop()], invoices=[hw.invoice(230201)]))
    ghost = {
        "token": "pmt-does-not-exist", "status": "COMPLETED", "createdOn": "2030-01-01T09:00:00",
        "amount": "4545.20", "currency": "EUR", "clientPaymentId": "230201",
        "destinationToken": "trm-seller", "programToken": "prg-pay", "purpose": "OTHER",
    }  # fmt: skip
    hw.store(dag_env, hw_admin.emit("PAYMENTS.UPDATED.STATUS.COMPLETED", ghost)["notification"])

    run, _ = run_dag("hyperwallet_notifications.py", "hyperwallet_payment_status")

    assert run.state == "failed"
    summary = run.get_task_instance("process_notifications").xcom_pull(
        task_ids="process_notifications"
    )
    assert summary["counts"] == {"REJECTED": 1}
    assert dag_env.get_hyperwallet_payment("230201") is None
    assert sandbox.mirakl_calls("IV07") == []

    run, report = run_dag(
        "hyperwallet_invoice_payments.py", "hyperwallet_invoice_payments", invoice_ids=["230201"]
    )
    assert run.state == "success"
    assert report["steps"]["pay_invoices"]["PAID"] == 2  # not ALREADY_PAID
    assert sorted(p["clientPaymentId"] for p in hw_admin.payments()) == [
        "230201",
        "230201-operatorFee",
    ]
