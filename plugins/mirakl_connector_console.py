"""Airflow plugin: the payments console, a "Payments" entry in the Airflow UI's navigation.

Served by the API server at ``{[api] base_url}/mirakl-connector-console/`` and shown inside the
UI (``/plugin/payments``): money moved per day, currency, provider and workflow; what waits, what
failed and what is in doubt; each item's history; JSON under ``/api/...``, CSV under
``/export/...``. ``?run=<run id>`` lists what one DAG run touched: the run summaries and the
tasks' "Payments console (this run)" extra link open it. Actions (retry, hold, release, resolve
an item in doubt, map a shop, approve or reject what the approval gate holds), each with a
reason and recorded in the ledger's audit.

Every route answers only to users logged into Airflow who may read DAG runs, every action only to
those who may change them, checked by Airflow's own auth manager (see
:mod:`mirakl_connector.airflow.console`); the UI's session cookie is enough inside the UI, a
Bearer token from ``POST /auth/token`` for scripts. The ledger is the one of connection
``mirakl_connector_db``.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from mirakl_connector.airflow.console import (
    LedgerReader,
    action_services,
    console_actor,
    console_edit_access,
    console_read_access,
    trusted_origins,
)
from mirakl_connector.airflow.console_links import CONSOLE_URL_PREFIX, ConsoleRunLink
from mirakl_connector.console.actions import ConsoleActions
from mirakl_connector.console.app import ConsoleAppConfig, create_app
from mirakl_connector.console.approvals import ApprovalsConfig

URL_PREFIX = CONSOLE_URL_PREFIX

reader = LedgerReader()
actions = ConsoleActions(action_services(reader))
app = create_app(
    ConsoleAppConfig(
        queries=reader,
        auth=console_read_access(),
        actions=lambda: actions,
        edit_auth=console_edit_access(),
        actor=console_actor(),
        trusted_origins=trusted_origins(),
        approvals=ApprovalsConfig(ledger=reader.ledger),
    )
)


class MiraklConnectorConsolePlugin(AirflowPlugin):
    name = "mirakl_connector_console"
    # "Payments console (this run)" on the workflow and report tasks (their operators list it;
    # registered here as Airflow's extra-link docs ask)
    operator_extra_links = [ConsoleRunLink()]
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "mirakl-connector-console"}]
    external_views = [
        {
            "name": "Payments",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "url_route": "payments",  # shown inside the UI, at /plugin/payments
        }
    ]
