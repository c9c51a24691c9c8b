"""Airflow glue of the payments console: who may read it, and which ledger it reads.

The console app (:mod:`mirakl_connector.console.app`) is mounted by the plugin
``plugins/mirakl_connector_console.py`` on Airflow's API server, where plugin apps get no
authentication of their own. Every route therefore depends on :func:`console_read_access`:
Airflow's own FastAPI dependency ``requires_access_dag("GET", DagAccessEntity.RUN)`` from
``airflow.api_fastapi.core_api.security``, the one Airflow's ``GET /api/v2/dags/~/dagRuns`` uses.
It reads the caller from a ``Authorization: Bearer <JWT>`` header or the UI's ``_token`` cookie,
asks the configured auth manager (SimpleAuthManager, FAB, Keycloak...) whether that user may read
DAG runs, and answers 401 (no or expired credentials), 403 (invalid token, or not allowed) before
the route reads anything. No login of our own: a user who can see DAG runs in the Airflow UI can
see the console, in the same Airflow session.

The console's only write, a decision of the approval gate (``POST /approvals/...``, see
:mod:`mirakl_connector.console.approvals`), also depends on :func:`console_edit_access`: Airflow's
``requires_access_dag("PUT", DagAccessEntity.RUN)``, the permission to change DAG runs (clear,
mark, trigger). Releasing a held payout is what running the DAG would do, so the same users may;
a read-only user gets 403. The decision is recorded under :func:`console_user_name`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from mirakl_connector.console.queries import ConsoleQueries

#: Airflow connection of the ledger (the same the DAGs use).
LEDGER_CONN_ID = "mirakl_connector_db"


def console_read_access() -> Callable[..., Any]:
    """The FastAPI dependency allowing users who may read DAG runs (any DAG)."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag

    return requires_access_dag("GET", DagAccessEntity.RUN)


def console_edit_access() -> Callable[..., Any]:
    """The FastAPI dependency allowing users who may change DAG runs (any DAG)."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag

    return requires_access_dag("PUT", DagAccessEntity.RUN)


def console_user_name() -> Callable[..., Any]:
    """The FastAPI dependency giving the name of the user Airflow authenticated."""
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi import Depends

    def user_name(user: Any = Depends(get_user)) -> str:
        return str(user.get_name())

    return user_name


class LedgerReader:
    """One read engine on the ledger per API server process, opened on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queries: ConsoleQueries | None = None
        self._engine: Any = None

    def __call__(self) -> ConsoleQueries:
        with self._lock:
            if self._queries is None:
                from mirakl_connector.ledger import Ledger
                from mirakl_connector.ledger.engine import create_ledger_engine

                url = ledger_url()
                Ledger(url).dispose()  # creates or upgrades the schema, as every task does
                self._engine = create_ledger_engine(url)
                self._queries = ConsoleQueries(self._engine)
            return self._queries

    def engine(self) -> Any:
        """The same engine (opened on first use): the approval decisions are written with it."""
        self()
        return self._engine

    def dispose(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
            self._engine = self._queries = None


def ledger_url() -> str:
    """The ledger URL from connection ``mirakl_connector_db`` (default: SQLite in the home)."""
    from airflow.models.connection import Connection

    from mirakl_connector.airflow.hooks.ledger import ledger_url_from_connection

    try:
        conn = Connection.get_connection_from_secrets(LEDGER_CONN_ID)
    except Exception:  # noqa: BLE001 - not defined: the default SQLite ledger
        conn = None
    home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
    return ledger_url_from_connection(conn, airflow_home=home)
