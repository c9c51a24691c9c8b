"""The demo writes its settings where a user looks for them (Admin -> Connections, Variables,
Pools) instead of environment variables that silently win over the UI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mirakl_connector.airflow.config import CONFIG_VARIABLE
from mirakl_connector.airflow.demo_settings import (
    FAST_SCHEDULES,
    DemoEndpoints,
    dag_table,
    demo_settings,
)
from mirakl_connector.airflow.pools import pool_specs

REPO_ROOT = Path(__file__).resolve().parents[3]
SCENARIOS = REPO_ROOT / "include/sandbox/mirakl_sandbox/scenarios"
ENDPOINTS = DemoEndpoints(
    sandbox_url="http://127.0.0.1:18765",
    api_url="http://127.0.0.1:18080",
    smtp_port=18025,
    scenario=SCENARIOS / "demo.json",
    hyperwallet_scenario=SCENARIOS / "demo_hyperwallet.json",
    config_file=REPO_ROOT / "scripts/demo-config.json",
)


def test_demo_settings_point_every_connection_at_the_local_services():
    settings = demo_settings(ENDPOINTS)
    conns = settings.connections
    assert set(conns) == {
        "mirakl_default",
        "stripe_default",
        "hyperwallet_default",
        "stripe_webhook",
        "hyperwallet_webhook",
        "smtp_default",
    }
    for conn_id in ("mirakl_default", "stripe_default", "hyperwallet_default"):
        assert conns[conn_id]["host"] == "http://127.0.0.1:18765"
    assert conns["smtp_default"]["port"] == 18025
    config = json.loads(settings.variables[CONFIG_VARIABLE])
    assert (
        config["seller_onboarding"]["refresh_base_url"] == "http://127.0.0.1:18080/mirakl-connector"
    )
    # Every other setting is the demo config file's, unchanged.
    expected = json.loads(ENDPOINTS.config_file.read_text())
    expected["seller_onboarding"]["refresh_base_url"] = config["seller_onboarding"][
        "refresh_base_url"
    ]
    assert config == expected
    assert {k: v for k, v in settings.variables.items() if k.endswith("__schedule")} == {
        f"{dag_id}__schedule": cron for dag_id, cron in FAST_SCHEDULES.items()
    }


def test_production_schedules_write_no_schedule_variable():
    settings = demo_settings(ENDPOINTS, fast_schedules=False)
    assert [k for k in settings.variables if k.endswith("__schedule")] == []


def test_dag_table_names_asset_and_manual_schedules():
    table = dag_table(
        [
            {"dag_id": "stripe_payment_split", "timetable_summary": "1-59/5 * * * *"},
            {"dag_id": "stripe_webhook_events", "timetable_summary": "Asset"},
            {"dag_id": "example_stripe_generic", "timetable_summary": None},
        ]
    )
    assert table.splitlines() == [
        "    stripe_payment_split    1-59/5 * * * *",
        "    stripe_webhook_events   on each stored webhook (asset watcher)",
        "    example_stripe_generic  manual",
    ]


@pytest.mark.slow  # migrates an Airflow metadata DB
@pytest.mark.airflow
def test_configure_airflow_writes_connections_variables_and_pools(airflow_db):
    """Through the demo's own command, into a migrated metadata DB; read back the way a task
    and the UI read them (no AIRFLOW_CONN_/AIRFLOW_VAR_ in the environment)."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))
    }
    command = [
        sys.executable, "-m", "mirakl_connector.airflow.demo", "configure-airflow",
        "--sandbox-url", ENDPOINTS.sandbox_url, "--api-url", ENDPOINTS.api_url,
        "--smtp-port", str(ENDPOINTS.smtp_port), "--scenario", str(ENDPOINTS.scenario),
        "--hyperwallet-scenario", str(ENDPOINTS.hyperwallet_scenario),
        "--config-file", str(ENDPOINTS.config_file),
    ]  # fmt: skip
    for _ in range(2):  # a second demo start overwrites, never duplicates
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stderr[-2000:]
    read_back = subprocess.run(
        [sys.executable, "-c", """
import json
from airflow.models import Connection, Pool, Variable
from airflow.utils.session import create_session
with create_session() as s:
    conns = {c.conn_id: (c.conn_type, c.host) for c in s.query(Connection)}
    pools = {p.pool: p.slots for p in s.query(Pool)}
config = json.loads(Variable.get("mirakl_connector_config"))
print(json.dumps({"conns": conns, "pools": pools, "config": config,
                  "schedule": Variable.get("stripe_kyc_monitor__schedule")}))
"""],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert read_back.returncode == 0, read_back.stderr[-2000:]
    state = json.loads(read_back.stdout.strip().splitlines()[-1])
    assert state["conns"]["stripe_default"] == ["stripe", ENDPOINTS.sandbox_url]
    assert state["conns"]["smtp_default"] == ["smtp", "127.0.0.1"]
    for spec in pool_specs("test"):
        assert state["pools"][spec.name] == spec.slots
    assert state["config"]["seller_onboarding"]["refresh_base_url"].startswith(ENDPOINTS.api_url)
    assert state["schedule"] == FAST_SCHEDULES["stripe_kyc_monitor"]
