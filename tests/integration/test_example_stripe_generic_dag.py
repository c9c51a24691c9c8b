"""The generic Stripe example DAG, run in-process (``dag.test``) against the sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

DAGS = Path(__file__).resolve().parents[2] / "dags"


def _stripe_conn(monkeypatch, url: str, key: str) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_STRIPE_DEFAULT",
        json.dumps({"conn_type": "stripe", "password": key, "host": url}),
    )


def fresh_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / "example_stripe_generic.py"))
    assert bag.import_errors == {}
    return bag.dags["example_stripe_generic"]


def run(**conf):
    dag_run = fresh_dag().test(run_conf=conf or None, logical_date=None)
    report = dag_run.get_task_instance("report")
    return dag_run, report.xcom_pull(task_ids="report") if report else None


def test_example_runs_twice_and_sensors_only_return_new_objects(
    sandbox, sandbox_server, monkeypatch, airflow_db
):
    _stripe_conn(monkeypatch, sandbox_server.url, "sk_test_sandbox")
    dag_run, report = run()
    assert dag_run.state == "success"
    (charge,) = sandbox.charges()
    assert (charge["amount"], charge["currency"], charge["amount_refunded"]) == (1250, "eur", 250)
    assert charge["customer"].startswith("cus_") and charge["metadata"]["product_id"]
    assert report["new_charges"] == [charge["id"]]
    assert report["charged_minor_units"] == {"eur": 1250}
    assert report["refunded_minor_units"] == {"eur": 250}

    again, second = run(amount=300, currency="jpy", refund_amount=100)
    assert again.state == "success"
    newest = [c for c in sandbox.charges() if c["id"] != charge["id"]]
    assert second["new_charges"] == [newest[0]["id"]]  # the cursor skipped the first run's charge
    assert second["charged_minor_units"] == {"jpy": 300}
    assert second["refunded_minor_units"] == {"jpy": 100}
    assert len(sandbox.refunds()) == 2


def test_example_refuses_a_live_key(sandbox, sandbox_server, monkeypatch, airflow_db):
    _stripe_conn(monkeypatch, sandbox_server.url, "sk_live_not_for_examples")
    sandbox.clear_stripe_requests()
    dag_run, _ = run()
    assert dag_run.state == "failed"
    assert dag_run.get_task_instance("check_test_mode").state == "failed"
    assert sandbox.stripe_requests() == []
