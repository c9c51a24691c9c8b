"""Mirakl hook: an Airflow connection of type ``mirakl`` → :class:`MiraklClient`.

Connection fields: ``host`` is the marketplace base URL (``https://x.mirakl.net``, or
``https://x.mirakl.net/api`` as the Hyperwallet connector documents it; a bare host gets
``https://``; any other path, a query or a fragment is refused, naming the forms accepted),
``password`` the operator API key or ``Bearer <token>``. Extras, each with a default:
``timeout_connect`` (5 s), ``timeout_read`` (30 s), ``max_retries`` (4) and ``page_size`` (100).
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from mirakl_connector.airflow.hooks._extras import base_url_from, extra_value
from mirakl_connector.core.errors import ConfigurationError, MiraklApiError
from mirakl_connector.core.instance_url import mirakl_instance_url

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from mirakl_connector.mirakl.client import MiraklClient


class MiraklHook(BaseHook):
    """Build a :class:`~mirakl_connector.mirakl.client.MiraklClient` from a connection.

    The connection is read lazily (first use), never in ``__init__``, so building the hook at DAG
    parse time costs nothing.

    :param mirakl_conn_id: the Airflow connection to use.
    """

    conn_name_attr = "mirakl_conn_id"
    default_conn_name = "mirakl_default"
    conn_type = "mirakl"
    hook_name = "Mirakl"

    def __init__(self, mirakl_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mirakl_conn_id = mirakl_conn_id

    @cached_property
    def connection(self) -> Connection:
        return self.get_connection(self.mirakl_conn_id)

    def _extra(self, name: str, default: Any, cast: Any) -> Any:
        return extra_value(
            self.connection.extra_dejson,
            name,
            conn_type=self.conn_type,
            conn_id=self.mirakl_conn_id,
            default=default,
            cast=cast,
        )

    @property
    def base_url(self) -> str:
        url = base_url_from(self.connection.host, self.connection.port)
        if not url:
            raise ConfigurationError(
                f"connection {self.mirakl_conn_id!r}: host (the Mirakl base URL) is empty"
            )
        try:
            return mirakl_instance_url(url)
        except ConfigurationError as exc:
            raise ConfigurationError(f"connection {self.mirakl_conn_id!r}: {exc}") from None

    @property
    def timeout_connect(self) -> float:
        return self._extra("timeout_connect", 5.0, float)

    @property
    def timeout_read(self) -> float:
        return self._extra("timeout_read", 30.0, float)

    @property
    def max_retries(self) -> int:
        return self._extra("max_retries", 4, int)

    @property
    def page_size(self) -> int:
        return self._extra("page_size", 100, int)

    def get_conn(self) -> MiraklClient:
        return self.get_client()

    def get_client(self) -> MiraklClient:
        """Return a client configured from the connection (timeouts, retries, page size)."""
        from mirakl_connector.core.retry import RetryPolicy
        from mirakl_connector.mirakl.client import MiraklClient

        api_key = self.connection.password
        if not api_key:
            raise ConfigurationError(
                f"connection {self.mirakl_conn_id!r}: password (the Mirakl API key) is empty"
            )
        return MiraklClient(
            self.base_url,
            api_key,
            timeout=(self.timeout_connect, self.timeout_read),
            retry=RetryPolicy(max_attempts=self.max_retries + 1),
            page_size=self.page_size,
        )

    def test_connection(self) -> tuple[bool, str]:
        """Call Mirakl's version endpoint (V01) with the configured key."""
        try:
            version = self.get_client().version()
        except (ConfigurationError, MiraklApiError) as exc:
            return False, str(exc)
        return True, f"Mirakl answered, version {version.get('version', 'unknown')}"
