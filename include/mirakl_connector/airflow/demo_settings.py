"""The demo's Airflow settings, written where a user looks for them: Admin → Connections,
Admin → Variables and Admin → Pools of the demo's Airflow.

Earlier the demo exported everything as ``AIRFLOW_CONN_*`` / ``AIRFLOW_VAR_*`` environment
variables. Those pages were then empty, and a Variable edited in the UI was silently ignored
(the environment wins over the metadata database). Now the demo writes its connections (to the
sandbox and the local SMTP sink), its Variables (the connector's config, pretty-printed, and the
demo's faster schedules) and the pools into the metadata database *before* Airflow starts, so:

* every setting is visible and editable in the UI, and an edit takes effect at the next task
  (schedules: at the next parse of the DAG file);
* no task is scheduled before its pool exists (a task of a missing pool waits forever, and the
  startup logged one "pool does not exist" warning per task);
* each demo start writes them again, like the sandbox and the ledger, which also start afresh.

Used by ``scripts/demo.sh`` (``python -m mirakl_connector.airflow.demo configure-airflow``).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mirakl_connector.airflow.config import CONFIG_VARIABLE
from mirakl_connector.airflow.pools import pool_specs
from mirakl_connector.airflow.schedules import schedule_variable_name

#: Demo-only webhook secrets (the sandbox signs with them); never used outside the demo.
STRIPE_WEBHOOK_SECRET = "whsec_demo_sandbox"
HYPERWALLET_WEBHOOK_SECRET = "demo-hyperwallet-secret"

#: The daily and hourly DAGs run every 10-15 minutes in the demo, so that their scheduled runs
#: show up within a session (``DEMO_SCHEDULES=production`` keeps the DAG files' defaults).
FAST_SCHEDULES = {
    "stripe_kyc_monitor": "5-59/10 * * * *",
    "stripe_seller_settlement": "3-59/15 * * * *",
    "stripe_failed_operations_alert": "9-59/15 * * * *",
    "hyperwallet_seller_extract": "*/10 * * * *",
    "hyperwallet_bank_account_extract": "2-59/10 * * * *",
    "hyperwallet_documents_extract": "3-59/10 * * * *",
    "hyperwallet_invoice_payments": "4-59/10 * * * *",
}


@dataclass(frozen=True)
class DemoEndpoints:
    """Where the demo's local services listen, and the files that describe them."""

    sandbox_url: str
    api_url: str
    smtp_port: int
    scenario: Path
    hyperwallet_scenario: Path
    config_file: Path


@dataclass
class AirflowSettings:
    """Connections (``conn_id`` → fields of ``airflow.models.Connection``) and Variables."""

    connections: dict[str, dict[str, Any]] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)


def demo_settings(endpoints: DemoEndpoints, *, fast_schedules: bool = True) -> AirflowSettings:
    """What the demo's Airflow needs to run every DAG against the sandbox (pure: no I/O but
    reading the scenario and config files)."""
    scenario = json.loads(endpoints.scenario.read_text(encoding="utf-8"))
    hyperwallet = json.loads(endpoints.hyperwallet_scenario.read_text(encoding="utf-8"))
    config = json.loads(endpoints.config_file.read_text(encoding="utf-8"))
    # The onboarding refresh link points at the plugin route of this API server.
    config.setdefault("seller_onboarding", {})["refresh_base_url"] = (
        endpoints.api_url + "/mirakl-connector"
    )
    retries = json.dumps({"max_retries": 2})
    hw = hyperwallet["hyperwallet"]
    settings = AirflowSettings()
    settings.connections = {
        "mirakl_default": {
            "conn_type": "mirakl",
            "host": endpoints.sandbox_url,
            "password": scenario.get("mirakl", {}).get("api_key", "sandbox-mirakl-key"),
            "extra": retries,
            "description": "Demo: the sandbox's Mirakl API",
        },
        "stripe_default": {
            "conn_type": "stripe",
            "host": endpoints.sandbox_url,
            "password": scenario.get("stripe", {}).get("api_key", "sk_test_sandbox"),
            "extra": retries,
            "description": "Demo: the sandbox's Stripe API",
        },
        "hyperwallet_default": {
            "conn_type": "hyperwallet",
            "host": endpoints.sandbox_url,
            "login": hw["username"],
            "password": hw["password"],
            "extra": retries,
            "description": "Demo: the sandbox's Hyperwallet REST v4 API",
        },
        "stripe_webhook": {
            "conn_type": "generic",
            "password": STRIPE_WEBHOOK_SECRET,
            "description": "Demo: the secret the sandbox signs its Stripe webhooks with",
        },
        "hyperwallet_webhook": {
            "conn_type": "generic",
            "password": HYPERWALLET_WEBHOOK_SECRET,
            "description": "Demo: the secret of the sandbox's Hyperwallet notifications",
        },
        "smtp_default": {
            "conn_type": "smtp",
            "host": "127.0.0.1",
            "port": endpoints.smtp_port,
            "extra": json.dumps(
                {
                    "disable_tls": True,
                    "disable_ssl": True,
                    "from_email": "mirakl-connector@demo.test",
                }
            ),
            "description": "Demo: the local SMTP sink (demo-logs/mail.log)",
        },
    }
    settings.variables = {CONFIG_VARIABLE: json.dumps(config, indent=2)}
    if fast_schedules:
        settings.variables |= {
            schedule_variable_name(dag_id): cron for dag_id, cron in FAST_SCHEDULES.items()
        }
    return settings


def write_airflow_settings(settings: AirflowSettings, *, stripe_mode: str = "test") -> None:
    """Write connections, Variables and pools into Airflow's metadata database (upserts).

    An administration step run before Airflow starts, so it uses the metadata DB's models (the
    Task SDK's ``Connection``/``Variable`` only read, through the API server).
    """
    from airflow.models import Connection, Pool, Variable  # noqa: AIR311 - metadata DB models
    from airflow.utils.session import create_session

    with create_session() as session:
        for conn_id, fields in settings.connections.items():
            session.query(Connection).filter(Connection.conn_id == conn_id).delete()  # noqa: AIR311
            session.add(Connection(conn_id=conn_id, **fields))  # noqa: AIR311
        for key, value in settings.variables.items():
            Variable.set(key, value, description="Set by scripts/demo.sh", session=session)  # noqa: AIR311
        for spec in pool_specs(stripe_mode):
            Pool.create_or_update_pool(
                spec.name, spec.slots, spec.description, False, session=session
            )


def list_dags(
    api_url: str, username: str, password: str, *, settle_seconds: float = 5, timeout: float = 180
) -> list[Mapping[str, Any]]:
    """The DAGs the UI shows, from Airflow's REST API, once the DAG processor has parsed them all
    (the list stopped growing for ``settle_seconds``), so the banner counts what the UI counts."""
    deadline = time.monotonic() + timeout
    token = ""
    seen: list[Mapping[str, Any]] = []
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        try:  # a busy API server answers slowly at first: retry until the deadline
            if not token:
                token = _post_json(
                    api_url + "/auth/token", {"username": username, "password": password}
                )["access_token"]
            dags = _get_json(api_url + "/api/v2/dags?limit=1000&order_by=dag_id", token)["dags"]
        except OSError:
            time.sleep(2)
            continue
        if len(dags) != len(seen):
            seen, stable_since = dags, time.monotonic()
        elif dags and time.monotonic() - stable_since >= settle_seconds:
            return dags
        time.sleep(1)
    return seen


def _post_json(url: str, body: Mapping[str, Any]) -> Any:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local API
        return json.load(response)


def _get_json(url: str, token: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local API
        return json.load(response)


def dag_table(dags: list[Mapping[str, Any]]) -> str:
    """One line per DAG: id and the schedule in effect (as Airflow reports it)."""
    width = max((len(d["dag_id"]) for d in dags), default=0)
    lines = []
    for dag in dags:
        schedule = dag.get("timetable_summary") or "manual"
        if schedule.lower() in ("asset", "dataset"):
            schedule = "on each stored webhook (asset watcher)"
        lines.append(f"    {dag['dag_id']:<{width}}  {schedule}")
    return "\n".join(lines)
