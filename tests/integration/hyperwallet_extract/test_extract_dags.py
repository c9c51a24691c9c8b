"""The two Hyperwallet extract DAGs run in-process (``dag.test``) against the sandbox.

The rules are covered by the job tests next to this file; this proves the wiring: the
``hyperwallet`` connection type and hook, the configuration check task, the params, the report.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mirakl_sandbox.hyperwallet_admin import DEFAULT_PASSWORD, DEFAULT_USERNAME

from mirakl_connector.ledger import Ledger

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

DAGS = Path(__file__).resolve().parents[3] / "dags"
IBAN = {"@type": "IBAN", "owner": "Fake", "bank_city": "Barcelona", "bic": "CAIXESBBXXX",
        "iban": "ES3920956580417064096726"}  # fmt: skip


@pytest.fixture
def airflow_env(sandbox, sandbox_server, tmp_path, monkeypatch, airflow_db, connector_config):
    ledger_url = Ledger.default_sqlite_url(tmp_path)
    connections = {
        "MIRAKL_DEFAULT": {
            "conn_type": "mirakl", "host": sandbox_server.url, "password": "sandbox-mirakl-key",
        },
        "HYPERWALLET_DEFAULT": {
            "conn_type": "hyperwallet", "host": sandbox_server.url, "login": DEFAULT_USERNAME,
            "password": DEFAULT_PASSWORD, "extra": {"max_retries": 1},
        },
        "MIRAKL_CONNECTOR_DB": {"conn_type": "sqlite", "extra": {"sqlalchemy_url": ledger_url}},
    }  # fmt: skip
    for name, conn in connections.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{name}", json.dumps(conn))
    monkeypatch.setenv("AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG", json.dumps(connector_config))
    return ledger_url


def run_dag(dag_id, task_ids, **conf):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / f"{dag_id}.py"))
    assert bag.import_errors == {}
    run = bag.dags[dag_id].test(run_conf=conf or None, logical_date=None)
    ti = run.get_task_instance("report")
    return run, {t: ti.xcom_pull(task_ids=t) for t in task_ids}


def test_seller_then_bank_account_extract(
    airflow_env, sandbox, hw_admin, shop_factory, shop_fields
):
    sandbox.put_shops(
        [
            shop_factory(1, payment_info=IBAN),
            shop_factory(2, payment_info=IBAN, professional=True),
            shop_factory(3, payment_info=IBAN, program=None),
        ]
    )
    run, xcoms = run_dag(
        "hyperwallet_seller_extract", ["check_hyperwallet", "extract_sellers", "report"]
    )
    assert run.state == "success"
    assert xcoms["check_hyperwallet"]["counts"] == {"PROGRAM_OK": 2}
    assert xcoms["extract_sellers"]["counts"] == {"CREATED": 2, "SKIPPED_NO_PROGRAM": 1}
    assert xcoms["report"]["failed_count"] == 0
    assert sorted(u["clientUserId"] for u in hw_admin.users()) == ["1", "2"]

    run, xcoms = run_dag(
        "hyperwallet_bank_account_extract", ["extract_bank_accounts", "report"], dry_run=True
    )
    assert run.state == "success"
    assert xcoms["extract_bank_accounts"]["counts"] == {"SKIPPED_NO_PROGRAM": 1, "WOULD_CREATE": 2}
    assert hw_admin.bank_accounts() == []

    run, xcoms = run_dag("hyperwallet_bank_account_extract", ["extract_bank_accounts", "report"])
    assert run.state == "success"
    assert xcoms["extract_bank_accounts"]["counts"] == {"CREATED": 2, "SKIPPED_NO_PROGRAM": 1}
    tokens = {s["shop_id"]: shop_fields(s).get("hw-bankaccount-token") for s in sandbox.shops()}
    assert {a["token"] for a in hw_admin.bank_accounts()} == {tokens[1], tokens[2]}
    assert tokens[3] is None


def test_a_wrong_program_token_fails_the_check_task(airflow_env, sandbox, hw_admin, monkeypatch,
                                                     connector_config):  # fmt: skip
    connector_config["hyperwallet"]["programs"][0]["user_token"] = "prg-unknown"
    monkeypatch.setenv("AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG", json.dumps(connector_config))
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / "hyperwallet_seller_extract.py"))
    run = bag.dags["hyperwallet_seller_extract"].test(logical_date=None)
    assert run.state == "failed"
    assert run.get_task_instance("check_hyperwallet").state == "failed"
    assert run.get_task_instance("extract_sellers").state == "upstream_failed"
    assert hw_admin.users() == []
