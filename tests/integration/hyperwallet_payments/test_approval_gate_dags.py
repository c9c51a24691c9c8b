"""The approval gate through the Hyperwallet payment DAGs (``dag.test``) on the sandbox: a payment
above ``payout_above`` is held and never created at Hyperwallet, the commission below it is
paid; once approved the next run pays it exactly once; a rerun pays nothing more."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mirakl_connector.ledger import HyperwalletPaymentStatus, Ledger
from mirakl_connector.operations.approval_gate import Decision
from mirakl_connector.operations.approvals import record_decision

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

DAGS = Path(__file__).resolve().parents[3] / "dags"


@pytest.fixture
def dag_env(hw, sandbox, hw_admin, sandbox_server, tmp_path, monkeypatch, airflow_db):
    ledger_url = Ledger.default_sqlite_url(tmp_path)
    hw.dag_connections(monkeypatch, sandbox_server.url, ledger_url)
    config = {**hw.config, "approval": {"payout_above": {"EUR": "1000.00"}}}
    monkeypatch.setenv("AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG", json.dumps(config))
    ledger = Ledger(ledger_url)
    yield ledger
    ledger.dispose()


def run_dag(file: str, dag_id: str, **conf):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / file))
    assert bag.import_errors == {}
    run = bag.dags[dag_id].test(run_conf=conf or None, logical_date=None)
    return run, run.get_task_instance("report").xcom_pull(task_ids="report")


def created(hw_admin) -> list[tuple[str, str, str]]:
    calls = hw_admin.calls(path="/rest/v4/payments", method="POST")
    return [(c["body"]["clientPaymentId"], c["body"]["amount"], c["body"]["destinationToken"])
            for c in calls]  # fmt: skip


def test_a_payment_above_the_threshold_waits_for_approval_then_is_paid_once(
    hw, sandbox, hw_admin, dag_env
):
    sandbox.reset(hw.scenario(shops=[hw.shop()], invoices=[hw.invoice(230201)]))

    run, report = run_dag("hyperwallet_invoice_payments.py", "hyperwallet_invoice_payments")

    assert run.state == "success"  # waiting for a person is not a failure
    assert report["steps"]["pay_invoices"] == {"AWAITING_APPROVAL": 1, "PAID": 1}
    # only the operator's commission (955.69 EUR) reached Hyperwallet
    assert created(hw_admin) == [("230201-operatorFee", "955.69", "trm-operator")]
    held = dag_env.get_hyperwallet_payment("230201")
    assert (held.status, held.amount, held.destination_token, held.payment_token) == (
        HyperwalletPaymentStatus.ON_HOLD,
        454_520,
        "trm-seller",
        None,
    )
    assert held.status_reason == (
        "awaiting approval: 4545.20 EUR is above approval.payout_above 1000.00 EUR"
    )
    assert dag_env.pending_items("hyperwallet_invoice_payments") == []  # not a retry

    # the frequent retry DAG does not send it either while nobody decided
    run, report = run_dag("hyperwallet_retries.py", "hyperwallet_retries")
    assert run.state == "success"
    assert len(created(hw_admin)) == 1

    record_decision(
        dag_env, entity="hyperwallet_payment", row_id=held.id,
        decision=Decision.APPROVED, by="ops-lead", why="annual settlement, checked",
        seen={"amount": 454_520, "currency": "EUR", "destination": "trm-seller"},
    )  # fmt: skip
    run, report = run_dag("hyperwallet_invoice_payments.py", "hyperwallet_invoice_payments")

    assert run.state == "success"
    assert report["steps"]["pay_invoices"]["PAID"] == 1
    assert created(hw_admin)[1:] == [("230201", "4545.20", "trm-seller")]
    paid = dag_env.get_hyperwallet_payment("230201")
    assert paid.status is HyperwalletPaymentStatus.CREATED and paid.payment_token

    run, _ = run_dag("hyperwallet_retries.py", "hyperwallet_retries")
    run, _ = run_dag("hyperwallet_invoice_payments.py", "hyperwallet_invoice_payments")
    assert run.state == "success"
    assert len(created(hw_admin)) == 2  # nothing paid twice
    assert len(hw_admin.payments()) == 2


def test_an_approval_for_another_bank_account_is_void(hw, sandbox, hw_admin, mirakl, dag_env):
    sandbox.reset(hw.scenario(shops=[hw.shop()], invoices=[hw.invoice(230201)]))
    run_dag("hyperwallet_invoice_payments.py", "hyperwallet_invoice_payments")
    held = dag_env.get_hyperwallet_payment("230201")
    record_decision(
        dag_env, entity="hyperwallet_payment", row_id=held.id,
        decision=Decision.APPROVED, by="ops-lead", why="checked",
        seen={"amount": 454_520, "currency": "EUR", "destination": "trm-seller"},
    )  # fmt: skip
    # the seller's bank account token changes in Mirakl before the next run
    mirakl.update_shops([{"shop_id": 2001, "shop_additional_fields": [
        {"code": "hw-bankaccount-token", "value": "trm-seller-new"}]}])  # fmt: skip

    run, report = run_dag("hyperwallet_invoice_payments.py", "hyperwallet_invoice_payments")

    assert run.state == "success"
    # re-read because of the approval, held again because it is not what was approved
    assert report["steps"]["pay_invoices"] == {"AWAITING_APPROVAL": 1, "ALREADY_PAID": 1}
    assert [c[0] for c in created(hw_admin)] == ["230201-operatorFee"]
    row = dag_env.get_hyperwallet_payment("230201")
    assert (row.status, row.destination_token) == (
        HyperwalletPaymentStatus.ON_HOLD,
        "trm-seller-new",
    )
    assert row.status_reason.endswith(
        "was for 4545.20 EUR to trm-seller, now 4545.20 EUR to trm-seller-new: void"
    )
