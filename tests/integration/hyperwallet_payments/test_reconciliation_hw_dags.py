"""Reconciliation of the Hyperwallet invoice payments, per run and per day (``dag.test``)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.schema import hyperwallet_payments

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

DAGS = Path(__file__).resolve().parents[3] / "dags"
PAYMENTS = "/rest/v4/payments"


@pytest.fixture
def dag_env(hw, sandbox, hw_admin, sandbox_server, tmp_path, monkeypatch, airflow_db):
    ledger_url = Ledger.default_sqlite_url(tmp_path)
    hw.dag_connections(monkeypatch, sandbox_server.url, ledger_url)
    ledger = Ledger(ledger_url)
    yield ledger
    ledger.dispose()


def run_dag(dag_id: str, **conf):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / f"{dag_id}.py"))
    assert bag.import_errors == {}
    run = bag.dags[dag_id].test(run_conf=conf or None, logical_date=None)
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    ti = run.get_task_instance("report")
    report = ti.xcom_pull(task_ids="report") or ti.xcom_pull(task_ids="report", key="run_summary")
    return run, states, report


def _window_lists(hw_admin) -> list[dict]:
    return [c for c in hw_admin.calls(path=PAYMENTS, method="GET") if "createdAfter" in c["query"]]


def test_a_payment_run_reconciles_then_a_tampered_row_fails_the_day(hw, sandbox, hw_admin, dag_env):
    sandbox.reset(hw.scenario(shops=[hw.shop()], invoices=[hw.invoice(230201)]))

    run, states, report = run_dag("hyperwallet_invoice_payments")

    assert run.state == "success" and states["reconcile"] == "success"
    assert report["steps"]["pay_invoices"]["PAID"] == 2
    assert report["steps"]["reconcile"] == {"MATCHED": 2}
    assert report["headlines"]["reconcile"].startswith(
        "Reconciles: hyperwallet_invoice_payments of this run: 2 ledger row(s) agree with "
        "Hyperwallet and Mirakl"
    )
    # Hyperwallet read once by creation window; Mirakl's invoice by one IV01 date window
    [listed] = _window_lists(hw_admin)  # a run's window: from its first call, no upper bound
    assert set(listed["query"]) == {"createdAfter", "limit"}
    reads = [c for c in sandbox.mirakl_calls("IV01") if c["query"].get("type") == "ALL"]
    assert len(reads) == 1 and {"start_date", "end_date"} <= set(reads[0]["query"])

    seller = dag_env.get_hyperwallet_payment("230201")
    with dag_env.engine.begin() as conn:
        conn.execute(
            update(hyperwallet_payments)
            .where(hyperwallet_payments.c.id == seller.id)
            .values(amount=seller.amount - 100)
        )
    hw_admin.clear_calls()
    today = run.start_date.date().isoformat()

    day, states, report = run_dag("payments_reconciliation", day=today)

    assert day.state == "failed" and states["reconcile_hyperwallet_invoice_payments"] == "success"
    assert report["steps"]["reconcile_hyperwallet_invoice_payments"] == {
        "AMOUNT_MISMATCH": 2,  # against Hyperwallet's payment and against Mirakl's invoice
        "MATCHED": 1,  # the operator commission
    }
    failed = [f for f in report["failed"] if f["step"] == "reconcile_hyperwallet_invoice_payments"]
    assert {f["id"] for f in failed} == {f"SELLER 230201 ({seller.payment_token})"}
    reasons = " | ".join(f["reason"] for f in failed)
    assert "ledger 4544.20 EUR (4544.20 in Hyperwallet's decimal amount)" in reasons
    assert f"Hyperwallet {seller.payment_token} 4545.2" in reasons and "(4545.20 EUR)" in reasons
    assert "Mirakl invoice 230201 says 4545.20 EUR" in reasons
    # no Stripe here: the Stripe workflows say so instead of reading anything
    assert "Stripe is not used here" in report["headlines"]["reconcile_payment_split"]
    [listed] = _window_lists(hw_admin)  # the day: both bounds
    assert {"createdAfter", "createdBefore"} <= set(listed["query"])
    day_before = run.start_date.date() - timedelta(days=1)  # the day, less 10 minutes
    assert listed["query"]["createdAfter"].startswith(f"{day_before}T23:50")
