"""Operators of the cutover DAGs: import what an incumbent connector moved into the ledger.

The work is in :mod:`mirakl_connector.cutover` (imported when the task runs, never at parse
time); these operators turn connections into a database URL and clients, the trigger form into
arguments, and return the import's summary as one XCom value (the ``report`` task fails the run
when something could not be mapped).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook, BaseOperator, Param

from mirakl_connector.airflow.hooks.ledger import LedgerHook, server_url
from mirakl_connector.airflow.params import parse_run_params
from mirakl_connector.core.errors import ConfigurationError

if TYPE_CHECKING:
    from airflow.sdk import Connection, Context

#: conn type → SQLAlchemy driver of the incumbent's database.
_DRIVERS = {
    "postgres": "postgresql+psycopg2",
    "postgresql": "postgresql+psycopg2",
    "mysql": "mysql+pymysql",
}


def source_url_from_connection(conn: Connection) -> str:
    """SQLAlchemy URL of the incumbent's database (pure; contains the password: never log it).

    Extra ``sqlalchemy_url`` wins; otherwise conn type ``postgres`` or ``mysql`` with host,
    port, login, password and schema (the database name).
    """
    explicit = conn.extra_dejson.get("sqlalchemy_url")
    if explicit:
        return str(explicit)
    driver = _DRIVERS.get((conn.conn_type or "").lower())
    if driver is None:
        raise ConfigurationError(
            f"connection {conn.conn_id!r}: conn type {conn.conn_type!r} is not supported for the "
            "Stripe connector's database (use postgres or mysql, or set extra 'sqlalchemy_url')"
        )
    return server_url(driver, conn)


class StripeConnectorImportOperator(BaseOperator):
    """Import the Stripe Connector for Mirakl's history into the ledger.

    Params of the run: ``dry_run`` (default true: report only), ``old_timezone`` (zone of the
    incumbent's timestamps, default ``UTC``), ``mode`` (``import``, or ``rollback_sql``: return
    and log the SQL that records in the incumbent's tables what moved since the cutover; nothing
    is written anywhere).

    :param source_conn_id: connection to the incumbent's database (read only). (templated)
    :param ledger_conn_id: the ledger's connection. (templated)
    """

    template_fields: Sequence[str] = ("source_conn_id", "ledger_conn_id")
    ui_color = "#fdf1e6"

    def __init__(
        self,
        *,
        source_conn_id: str = "stripe_connector_db",
        ledger_conn_id: str = LedgerHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source_conn_id = source_conn_id
        self.ledger_conn_id = ledger_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from mirakl_connector.cutover.stripe_connector import import_stripe_connector

        params = _params(context)
        if params.get("mode") == "rollback_sql":
            return self._rollback_sql()
        dry_run = params.get("dry_run", True)
        timezone = str(params.get("old_timezone") or "UTC")
        self.log.info(
            "Importing the Stripe connector's history from connection %s (%s)",
            self.source_conn_id,
            "dry run: nothing is written" if dry_run else "writing to the ledger",
        )
        url = source_url_from_connection(BaseHook.get_connection(self.source_conn_id))
        ledger = LedgerHook(self.ledger_conn_id).get_ledger()
        try:
            summary = import_stripe_connector(
                url, ledger, dry_run=dry_run, timezone=timezone, run_id=context.get("run_id")
            )
        finally:
            ledger.dispose()
        return summary.to_dict()

    def _rollback_sql(self) -> dict[str, Any]:
        """The statements telling the incumbent what moved since (written nowhere, logged)."""
        from sqlalchemy.engine import make_url

        from mirakl_connector.cutover.stripe_rollback import rollback_sql

        url = source_url_from_connection(BaseHook.get_connection(self.source_conn_id))
        dialect = "mysql" if make_url(url).get_backend_name() == "mysql" else "postgresql"
        ledger = LedgerHook(self.ledger_conn_id).get_ledger()
        try:
            statements, summary = rollback_sql(ledger, dialect=dialect)
        finally:
            ledger.dispose()
        self.log.info(
            "Run these %d statements on the Stripe connector's database before restarting it:\n%s",
            len(statements),
            "\n".join(statements),
        )
        return {**summary.to_dict(), "sql": statements}


class HyperwalletConnectorImportOperator(BaseOperator):
    """Take over from the Mirakl-Hyperwallet connector (see ``cutover.hyperwallet_connector``).

    Params of the run: ``dry_run`` (default true), ``job_dates`` (the incumbent's last job start
    times), ``since`` (how far back to look for its payments), ``invoice_ids``.

    :param mirakl_conn_id: Mirakl connection. (templated)
    :param hyperwallet_conn_id: Hyperwallet connection. (templated)
    :param ledger_conn_id: the ledger's connection. (templated)
    """

    template_fields: Sequence[str] = ("mirakl_conn_id", "hyperwallet_conn_id", "ledger_conn_id")
    ui_color = "#fdf1e6"

    def __init__(
        self,
        *,
        mirakl_conn_id: str = "mirakl_default",
        hyperwallet_conn_id: str = "hyperwallet_default",
        ledger_conn_id: str = LedgerHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.mirakl_conn_id = mirakl_conn_id
        self.hyperwallet_conn_id = hyperwallet_conn_id
        self.ledger_conn_id = ledger_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from mirakl_connector.airflow.config import load_connector_config
        from mirakl_connector.airflow.hooks.hyperwallet import HyperwalletHook
        from mirakl_connector.airflow.hooks.mirakl import MiraklHook
        from mirakl_connector.cutover.hyperwallet_connector import HyperwalletCutover

        params = _params(context)
        config = load_connector_config()
        ledger = LedgerHook(self.ledger_conn_id).get_ledger()
        try:
            job = HyperwalletCutover.from_config(
                mirakl=MiraklHook(self.mirakl_conn_id).get_client(),
                hyperwallet=HyperwalletHook(self.hyperwallet_conn_id).get_client(),
                ledger=ledger,
                config=config,
                run_id=context.get("run_id"),
            )
            summary = job.run(
                dry_run=params.get("dry_run", True),
                job_dates=params.get("job_dates"),
                since=params.get("since"),
                invoice_ids=params.get("invoice_ids"),
            )
        finally:
            ledger.dispose()
        return summary.to_dict()


def cutover_dry_run_param() -> Param:
    """``dry_run`` of the cutover DAGs: on unless unticked (empty also means a dry run)."""
    return Param(
        True,
        type=["null", "boolean"],
        title="Dry run",
        description="Report what would be imported; write nothing. Untick to import.",
    )


def _params(context: Mapping[str, Any]) -> dict[str, Any]:
    raw = dict(context.get("params") or {})
    if raw.get("dry_run") is None:  # the form's empty value: the safe default
        raw["dry_run"] = True
    return parse_run_params(raw)
