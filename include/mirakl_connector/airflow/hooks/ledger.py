"""Ledger hook: where the connector's own state (transfers, mappings, checkpoints) is stored.

The database is chosen from the connection ``mirakl_connector_db``:

* extra ``sqlalchemy_url`` wins when set (any SQLAlchemy URL);
* conn type ``postgres``/``postgresql`` → ``postgresql+psycopg2://login:password@host:port/schema``;
* conn type ``sqlite`` → ``sqlite:///<host or schema>`` (a file path);
* no such connection → a SQLite file in ``AIRFLOW_HOME``, so a laptop demo needs no setup.

It is deliberately not Airflow's metadata database: Airflow 3 workers may not touch that one.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from mirakl_connector.core.errors import ConfigurationError

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from mirakl_connector.ledger import Ledger

_POSTGRES_TYPES = frozenset({"postgres", "postgresql"})


def ledger_url_from_connection(conn: Connection | None, *, airflow_home: str | Path) -> str:
    """Derive the ledger's SQLAlchemy URL (pure: no I/O, easy to test).

    :param conn: the connection, or None when it is not defined.
    :param airflow_home: directory of the default SQLite file.
    """
    from mirakl_connector.ledger import Ledger

    if conn is None:
        return Ledger.default_sqlite_url(airflow_home)
    explicit = conn.extra_dejson.get("sqlalchemy_url")
    if explicit:
        return str(explicit)
    conn_type = (conn.conn_type or "").lower()
    if conn_type in _POSTGRES_TYPES:
        return server_url("postgresql+psycopg2", conn)
    if conn_type == "sqlite":
        path = conn.host or conn.schema
        if not path:
            raise ConfigurationError(f"connection {conn.conn_id!r}: sqlite needs a file path")
        return f"sqlite:///{path}"
    raise ConfigurationError(
        f"connection {conn.conn_id!r}: conn type {conn.conn_type!r} is not supported for the "
        "ledger (use postgres, sqlite, or set extra 'sqlalchemy_url')"
    )


def server_url(driver: str, conn: Connection) -> str:
    """``<driver>://login:password@host:port/schema`` of a database server connection (pure;
    the result holds the password: never log it)."""
    if not conn.host:
        raise ConfigurationError(f"connection {conn.conn_id!r}: host is empty")
    auth = ""
    if conn.login:
        auth = quote(conn.login, safe="")
        if conn.password:
            auth += ":" + quote(conn.password, safe="")
        auth += "@"
    port = f":{conn.port}" if conn.port else ""
    return f"{driver}://{auth}{conn.host}{port}/{conn.schema or ''}"


class LedgerHook(BaseHook):
    """Open the connector's ledger.

    :param ledger_conn_id: the Airflow connection describing the ledger database.
    """

    conn_name_attr = "ledger_conn_id"
    default_conn_name = "mirakl_connector_db"
    conn_type = "postgres"
    hook_name = "Mirakl connector ledger"

    def __init__(self, ledger_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ledger_conn_id = ledger_conn_id

    @cached_property
    def url(self) -> str:
        """SQLAlchemy URL of the ledger (contains the password: never log it)."""
        try:
            conn = self.get_connection(self.ledger_conn_id)
        except AirflowNotFoundException:
            conn = None
            self.log.info(
                "Connection %s not defined: using the SQLite ledger in AIRFLOW_HOME",
                self.ledger_conn_id,
            )
        return ledger_url_from_connection(conn, airflow_home=_airflow_home())

    def get_conn(self) -> Ledger:
        return self.get_ledger()

    def get_ledger(self) -> Ledger:
        """Return a :class:`~mirakl_connector.ledger.Ledger` (creates/migrates the schema)."""
        from mirakl_connector.ledger import Ledger

        return Ledger(self.url)

    def test_connection(self) -> tuple[bool, str]:
        try:
            ledger = self.get_ledger()
        except Exception as exc:  # the UI button must answer, whatever the driver raised
            return False, f"cannot open the ledger: {type(exc).__name__}"
        dispose = getattr(ledger, "dispose", None)
        if dispose:
            dispose()
        return True, "ledger reachable"


def _airflow_home() -> str:
    return os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
