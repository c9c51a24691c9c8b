"""Wait until the Mirakl API answers before a batch reads from it.

Mirakl has maintenance windows and rate limits; starting a batch into either wastes the run's
retries. This sensor keeps waiting on transport errors, 5xx and 429, but a 401/403 means the key is
wrong, and waiting would only hide that for the sensor's whole timeout: it fails at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowException

from mirakl_connector.airflow.hooks.mirakl import MiraklHook
from mirakl_connector.airflow.pools import MIRAKL_POOL, set_default_pool
from mirakl_connector.core.errors import (
    MiraklApiError,
    MiraklRateLimitError,
    MiraklServerError,
    MiraklTransportError,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

_AUTH_STATUSES = frozenset({401, 403})


class MiraklAuthenticationError(AirflowException):
    """Mirakl refused the API key (401/403)."""


class MiraklApiSensor(BaseSensorOperator):
    """Succeed when ``GET /api/version`` answers.

    :param mirakl_conn_id: Mirakl connection. (templated)
    """

    template_fields: Sequence[str] = ("mirakl_conn_id",)

    def __init__(self, *, mirakl_conn_id: str = MiraklHook.default_conn_name, **kwargs: Any):
        # Each poke is a Mirakl call; in reschedule mode the slot is free between pokes.
        set_default_pool(kwargs, MIRAKL_POOL)
        super().__init__(**kwargs)
        self.mirakl_conn_id = mirakl_conn_id

    def get_client(self) -> Any:
        """The client to poke (a method so tests can hand in a fake)."""
        return MiraklHook(self.mirakl_conn_id).get_client()

    def poke(self, context: Context) -> bool:
        try:
            version = self.get_client().version()
        except (MiraklTransportError, MiraklServerError, MiraklRateLimitError) as exc:
            self.log.info("Mirakl not available yet: %s", exc)
            return False
        except MiraklApiError as exc:
            if exc.http_status in _AUTH_STATUSES:
                raise MiraklAuthenticationError(
                    f"Mirakl refused the API key of connection {self.mirakl_conn_id!r} "
                    f"(HTTP {exc.http_status}); fix the connection's password"
                ) from exc
            if exc.http_status is not None and (exc.http_status >= 500 or exc.http_status == 429):
                self.log.info("Mirakl not available yet: %s", exc)
                return False
            raise
        self.log.info("Mirakl is up (version %s)", (version or {}).get("version", "unknown"))
        return True
