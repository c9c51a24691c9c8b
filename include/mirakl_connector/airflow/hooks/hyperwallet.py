"""Hyperwallet hook: an Airflow connection of type ``hyperwallet`` → :class:`HyperwalletClient`.

Connection fields: ``host`` is the API server (``https://api.paylution.com``,
``https://uat-api.paylution.com``; a bare host gets ``https://``; ``/rest/v4`` is added),
``login`` the REST API user, ``password`` its password. Extras, each with a default:
``timeout_connect`` (5 s), ``timeout_read`` (30 s), ``max_retries`` (4), ``page_size`` (100).
Payload encryption (programs that have it on): ``encryption`` true, ``private_jwks`` (our JWK
set, private), ``hyperwallet_jwks_url`` or ``hyperwallet_jwks``, optional algorithms; see
:func:`mirakl_connector.hyperwallet.encryption.encryption_from_extra`.
Program tokens are not part of the connection: they are per program, in the connector
configuration (``hyperwallet.programs``).
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from mirakl_connector.airflow.hooks._extras import base_url_from, extra_value
from mirakl_connector.core.errors import ConfigurationError, PaymentProviderError

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from mirakl_connector.hyperwallet.client import HyperwalletClient


class HyperwalletHook(BaseHook):
    """Build a :class:`~mirakl_connector.hyperwallet.client.HyperwalletClient` from a connection.

    :param hyperwallet_conn_id: the Airflow connection to use (read on first use only).
    """

    conn_name_attr = "hyperwallet_conn_id"
    default_conn_name = "hyperwallet_default"
    conn_type = "hyperwallet"
    hook_name = "Hyperwallet"

    def __init__(self, hyperwallet_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hyperwallet_conn_id = hyperwallet_conn_id

    @cached_property
    def connection(self) -> Connection:
        return self.get_connection(self.hyperwallet_conn_id)

    def _extra(self, name: str, default: Any, cast: Any) -> Any:
        return extra_value(
            self.connection.extra_dejson,
            name,
            conn_type=self.conn_type,
            conn_id=self.hyperwallet_conn_id,
            default=default,
            cast=cast,
        )

    def get_conn(self) -> HyperwalletClient:
        return self.get_client()

    def get_client(self) -> HyperwalletClient:
        """A client configured from the connection (timeouts, retries, page size)."""
        from mirakl_connector.core.retry import RetryPolicy
        from mirakl_connector.hyperwallet.client import HyperwalletClient
        from mirakl_connector.hyperwallet.encryption import encryption_from_extra

        conn = self.connection
        server = base_url_from(conn.host, conn.port)
        where = f"connection {self.hyperwallet_conn_id!r}"
        if not server:
            raise ConfigurationError(f"{where}: host (the Hyperwallet API server) is empty")
        if not conn.login or not conn.password:
            raise ConfigurationError(
                f"{where}: login and password (the REST API user) are required"
            )
        page_size = self._extra("page_size", 100, int)
        if not 1 <= page_size <= 100:
            raise ConfigurationError(f"{where}: extra 'page_size' must be between 1 and 100")
        return HyperwalletClient(
            server,
            conn.login,
            conn.password,
            timeout=(
                self._extra("timeout_connect", 5.0, float),
                self._extra("timeout_read", 30.0, float),
            ),
            retry=RetryPolicy(max_attempts=self._extra("max_retries", 4, int) + 1),
            page_size=page_size,
            encryption=encryption_from_extra(conn.extra_dejson, where=where),
        )

    def test_connection(self) -> tuple[bool, str]:
        """List one user: proves the server and the credentials (no program token needed)."""
        try:
            client = self.get_client()
            next(iter(client.iter_users()), None)
        except (ConfigurationError, PaymentProviderError) as exc:
            return False, str(exc)
        return True, "Hyperwallet answered"
