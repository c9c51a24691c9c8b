"""Airflow glue of the payments console: who may read it and act on it, which ledger it reads,
how it triggers a run.

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

Actions (hold, release, retry, resolve, map a shop, approve or reject what the approval gate
holds) also depend on :func:`console_edit_access`:
``requires_access_dag("PUT", DagAccessEntity.RUN)``, the permission Airflow asks to change a DAG
run (its state, its note), so a viewer reads the console and cannot act. Who acts is the
auth manager's user (:func:`console_actor`); a retry creates the DAG run with
:func:`trigger_run`, Airflow's own ``trigger_dag`` (what its CLI and the Task SDK's
TriggerDagRunOperator route call), after asking the auth manager whether that user may trigger
*that* DAG, as Airflow's ``POST /api/v2/dags/{dag_id}/dagRuns`` does; the run records the user
as its triggering user and the reason as its note. Stripe, Mirakl and Hyperwallet are reached
through the DAGs' own connections (``stripe_default``, ``mirakl_default``,
``hyperwallet_default``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from fastapi import Depends, Request

from mirakl_connector.console.actions import ActionServices, Actor, TriggeredRun
from mirakl_connector.ledger.manual_actions import ActionRefused
from mirakl_connector.ledger.queries import ConsoleQueries

if TYPE_CHECKING:
    from mirakl_connector.ledger import Ledger

log = logging.getLogger(__name__)

#: Airflow connection of the ledger (the same the DAGs use).
LEDGER_CONN_ID = "mirakl_connector_db"


def console_read_access() -> Callable[..., Any]:
    """The FastAPI dependency allowing users who may read DAG runs (any DAG)."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag

    return requires_access_dag("GET", DagAccessEntity.RUN)


def console_edit_access() -> Callable[..., Any]:
    """The FastAPI dependency allowing users who may change DAG runs (any DAG): the actions."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag

    return requires_access_dag("PUT", DagAccessEntity.RUN)


def console_actor() -> Callable[..., Actor]:
    """The FastAPI dependency naming who acts: Airflow's user of the request (its Bearer token,
    else its session cookie, as Airflow's ``get_user`` decides)."""
    from airflow.api_fastapi.core_api.security import get_user

    def actor(request: Request, user: Any = Depends(get_user)) -> Actor:  # noqa: B008
        bearer = request.headers.get("authorization", "")[:7].lower() == "bearer "
        return Actor(name=str(user.get_name()), raw=user, via="api" if bearer else "ui")

    return actor


def trigger_run(dag_id: str, conf: Mapping[str, Any], *, actor: Actor, note: str) -> TriggeredRun:
    """Create a run of ``dag_id`` with ``conf``, triggered by ``actor``, its note ``note``.

    Refused (:class:`ActionRefused`) as Airflow's REST API refuses it: an unknown or stale DAG
    (404), one with import errors or that allows no manual run (409), a user the auth manager
    does not allow to trigger that DAG (403), a conf its params refuse (422).
    """
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import (
        DagAccessEntity,
        DagDetails,
    )
    from airflow.exceptions import DagNotFound, DagRunAlreadyExists
    from airflow.models.dag import DagModel
    from airflow.sdk.definitions.param import ParamValidationError
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunTriggeredByType, DagRunType
    from sqlalchemy import select

    with create_session() as session:
        dag = session.scalar(
            select(DagModel).where(~DagModel.is_stale, DagModel.dag_id == dag_id).limit(1)
        )
        if dag is None:
            raise ActionRefused(f"DAG {dag_id} is not in Airflow (not parsed yet?)", status=404)
        allowed = get_auth_manager().is_authorized_dag(
            method="POST",
            access_entity=DagAccessEntity.RUN,
            details=DagDetails(id=dag_id, team_name=DagModel.get_team_name(dag_id)),
            user=actor.raw,
        )
        if not allowed:
            raise ActionRefused(f"{actor.name} may not trigger DAG {dag_id}", status=403)
        if dag.has_import_errors:
            raise ActionRefused(f"DAG {dag_id} has import errors: fix them first")
        if dag.allowed_run_types is not None and DagRunType.MANUAL not in dag.allowed_run_types:
            raise ActionRefused(f"DAG {dag_id} does not allow manual runs")
        paused = bool(dag.is_paused)
        try:
            run = trigger_dag(
                dag_id,
                triggered_by=(
                    DagRunTriggeredByType.REST_API
                    if actor.via == "api"
                    else DagRunTriggeredByType.UI
                ),
                triggering_user_name=actor.name,
                conf=dict(conf),
                session=session,
            )
        except (DagNotFound, DagRunAlreadyExists) as exc:
            raise ActionRefused(f"DAG {dag_id}: {exc}") from exc
        except (ParamValidationError, ValueError) as exc:
            raise ActionRefused(
                f"DAG {dag_id} refused the run's params: {exc}", status=422
            ) from exc
        if run is None:
            raise ActionRefused(f"DAG {dag_id}: no run was created")
        # as Airflow's REST route does: the note is the triggering user's
        run.note = (note, actor.raw.get_id() if actor.raw is not None else None)
        return TriggeredRun(dag_id=dag_id, run_id=run.run_id, paused=paused)


class LedgerReader:
    """One :class:`Ledger` per API server process, opened on first use (its writer serves the
    actions), and the console's read engine on the same database (its queries)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queries: ConsoleQueries | None = None
        self._ledger: Any = None
        self._url = ""
        self._engine: Any = None

    def __call__(self) -> ConsoleQueries:
        with self._lock:
            self._open_ledger()  # creates or upgrades the schema first
            if self._queries is None:
                from mirakl_connector.ledger.queries import create_reader_engine

                self._engine = create_reader_engine(self._url)
                self._queries = ConsoleQueries(self._engine)
            return self._queries

    def ledger(self) -> Ledger:
        """The ledger the actions write to (the same database the queries read)."""
        with self._lock:
            return self._open_ledger()

    def _open_ledger(self) -> Ledger:
        # The connection is read on every request: one edited in the UI (or a test's) applies
        # at once, and the console never keeps reading a ledger the connection no longer names.
        url = ledger_url()
        if self._ledger is not None and url != self._url:
            self._dispose()
        if self._ledger is None:
            from mirakl_connector.ledger import Ledger

            self._url = url
            # creates or upgrades the schema, as every task does
            self._ledger = Ledger(self._url)
        return self._ledger

    def dispose(self) -> None:
        with self._lock:
            self._dispose()

    def _dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
        if self._ledger is not None:
            self._ledger.dispose()
        self._queries = self._ledger = self._engine = None


def action_services(reader: LedgerReader) -> ActionServices:
    """The actions' ledger (``reader``'s) and providers, from the DAGs' connections (read at
    each action, so a connection edited in the UI applies at once)."""

    def stripe() -> Any:
        from mirakl_connector.airflow.hooks.stripe import StripeHook

        return StripeHook().get_gateway()

    def mirakl() -> Any:
        from mirakl_connector.airflow.hooks.mirakl import MiraklHook

        return MiraklHook().get_client()

    def hyperwallet() -> Any:
        from mirakl_connector.airflow.hooks.hyperwallet import HyperwalletHook

        return HyperwalletHook().get_client()

    return ActionServices(
        ledger=reader.ledger, trigger=trigger_run, stripe=stripe, mirakl=mirakl,
        hyperwallet=hyperwallet,
    )  # fmt: skip


def trusted_origins() -> tuple[str, ...]:
    """The API server's public origin (``[api] base_url``), for actions behind a proxy."""
    from airflow.configuration import conf

    base = conf.get("api", "base_url", fallback="") or ""
    return (base,) if base.startswith(("http://", "https://")) else ()


def ledger_url() -> str:
    """The ledger URL from connection ``mirakl_connector_db`` (default: SQLite in the home)."""
    from airflow.models.connection import Connection

    from mirakl_connector.airflow.hooks.ledger import ledger_url_from_connection

    try:
        conn = Connection.get_connection_from_secrets(LEDGER_CONN_ID)
    except Exception as exc:  # noqa: BLE001 - not defined: the default SQLite ledger
        log.warning(
            "connection %s not read (%s): the console reads the default SQLite ledger",
            LEDGER_CONN_ID,
            type(exc).__name__,
        )
        conn = None
    home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
    return ledger_url_from_connection(conn, airflow_home=home)
