"""The operator's notification endpoint, from an Airflow HTTP connection.

Connection ``mirakl_operator_webhook`` (conn type ``http``): ``host`` (with or without scheme),
``schema`` (``https`` by default), ``port``, extra ``endpoint`` (path) and ``headers`` (e.g. an
``Authorization`` token), ``login``/``password`` for basic auth, extra ``timeout`` (seconds).
No such connection means "no endpoint": the notifications stay queued.
"""

from __future__ import annotations

import json
from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from mirakl_connector.airflow.hooks._extras import base_url_from, extra_value
from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.operations.operator_notifications import JsonPoster


class OperatorWebhookHook(BaseHook):
    """Builds the :class:`JsonPoster` of the operator endpoint (or ``None`` when not set up)."""

    conn_name_attr = "operator_webhook_conn_id"
    default_conn_name = "mirakl_operator_webhook"
    conn_type = "http"
    hook_name = "Mirakl operator webhook"

    def __init__(self, operator_webhook_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.conn_id = operator_webhook_conn_id

    def get_sender(self) -> JsonPoster | None:
        try:
            conn = self.get_connection(self.conn_id)
        except AirflowNotFoundException:
            self.log.info("No connection %s: operator notifications stay queued", self.conn_id)
            return None
        base = base_url_from(conn.host, conn.port, default_scheme=conn.schema or "https")
        if not base:
            return None
        extra: dict[str, Any] = conn.extra_dejson or {}
        path = str(extra.get("endpoint") or "").lstrip("/")
        headers = extra.get("headers") or {}
        if isinstance(headers, str):
            try:
                headers = json.loads(headers)
            except json.JSONDecodeError:
                raise ConfigurationError(
                    f"connection {self.conn_id!r}: extra 'headers' must be a JSON object"
                ) from None
        if not isinstance(headers, dict):
            raise ConfigurationError(
                f"connection {self.conn_id!r}: extra 'headers' must be an object"
            )
        timeout = extra_value(
            extra, "timeout", conn_type="http", conn_id=self.conn_id, default=10.0, cast=float
        )
        auth = (conn.login, conn.password or "") if conn.login else None
        url = f"{base}/{path}" if path else base
        return JsonPoster(
            url, headers={str(k): str(v) for k, v in headers.items()}, auth=auth, timeout=timeout
        )
