"""Airflow plugin: the connector's webhook endpoints on the API server, at /mirakl-connector.

URLs (``{[api] base_url}/mirakl-connector/...``, no trailing slash: Stripe counts a 307 as failed):

* ``POST /webhooks/stripe``: signing secrets from connection ``stripe_webhook`` (password, plus
  extra ``secrets``: a list, for a second endpoint or a secret being rolled);
* ``POST /webhooks/hyperwallet/<secret>``: secret from connection ``hyperwallet_webhook``
  (password), optional extra ``allowed_ips`` (list or comma-separated networks);
* ``GET /hyperwallet/jwks.json``: our public JWK set for a Hyperwallet program with payload
  encryption (keys from connection ``hyperwallet_default``'s extra; public parts only);
  encrypted notifications are decrypted with the same keys;
* ``GET /onboarding/refresh?token=...``: the account link refresh URL (uses ``stripe_default``,
  ``mirakl_default`` and the ledger connection ``mirakl_connector_db``).

Airflow applies no authentication to plugin apps: the signature / secret checks are the only gate,
and the app publishes no docs or OpenAPI pages. The route only stores the event; the
``stripe_webhook_events`` DAG's asset watcher picks it up within seconds.
"""

from __future__ import annotations

import threading
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from mirakl_connector.webhooks.app import WebhookAppConfig, create_app

_lock = threading.Lock()
_ledger: Any = None


def _connection(conn_id: str) -> Any | None:
    """The connection, read the API server's way (secrets backends, env, metadata DB)."""
    from airflow.models.connection import Connection

    try:
        return Connection.get_connection_from_secrets(conn_id)
    except Exception:  # noqa: BLE001 - not defined: the endpoint answers 503
        return None


def _secrets(conn_id: str) -> list[str]:
    conn = _connection(conn_id)
    if conn is None:
        return []
    values = [conn.password] if conn.password else []
    extra = conn.extra_dejson.get("secrets") or []
    values.extend([extra] if isinstance(extra, str) else list(extra))
    return [v for v in values if v]


def _allow_list() -> list[str]:
    from mirakl_connector.webhooks.signature import parse_allow_list

    conn = _connection("hyperwallet_webhook")
    return list(parse_allow_list(conn.extra_dejson.get("allowed_ips"))) if conn else []


def _hyperwallet_encryption() -> Any:
    """Payload encryption from the Hyperwallet API connection's extra (None when off)."""
    from mirakl_connector.hyperwallet.encryption import encryption_from_extra

    conn = _connection("hyperwallet_default")
    if conn is None:
        return None
    return encryption_from_extra(conn.extra_dejson, where="connection 'hyperwallet_default'")


def _ledger_instance() -> Any:
    """One ledger (connection pool) per API server process."""
    global _ledger
    with _lock:
        if _ledger is None:
            from mirakl_connector.airflow.hooks.ledger import ledger_url_from_connection
            from mirakl_connector.ledger import Ledger

            conn = _connection("mirakl_connector_db")
            url = ledger_url_from_connection(conn, airflow_home=_home())
            _ledger = Ledger(url)
        return _ledger


def _home() -> str:
    import os

    return os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")


def _refresh() -> Any:
    from airflow.models import Variable

    from mirakl_connector.airflow.config import CONFIG_VARIABLE, parse_connector_config
    from mirakl_connector.airflow.hooks._extras import base_url_from
    from mirakl_connector.mirakl.client import MiraklClient
    from mirakl_connector.stripe.gateway import StripeGateway
    from mirakl_connector.stripe.onboarding import OnboardingSettings
    from mirakl_connector.webhooks.refresh import OnboardingRefresh

    raw = Variable.get(CONFIG_VARIABLE, default_var=None)  # noqa: AIR311 - API server, no task SDK
    config = parse_connector_config(raw)
    stripe_conn = _connection("stripe_default")
    mirakl_conn = _connection("mirakl_default")
    if stripe_conn is None or mirakl_conn is None:
        from mirakl_connector.core.errors import ConfigurationError

        raise ConfigurationError("connections stripe_default and mirakl_default are required")
    stripe = StripeGateway(
        stripe_conn.password, base_url=base_url_from(stripe_conn.host, stripe_conn.port) or None
    )
    mirakl = MiraklClient(
        base_url_from(mirakl_conn.host, mirakl_conn.port), mirakl_conn.password or ""
    )
    return OnboardingRefresh(
        ledger=_ledger_instance(),
        stripe=stripe,
        mirakl=mirakl,
        settings=OnboardingSettings.from_mapping(config.get("seller_onboarding")),
    )


app = create_app(
    WebhookAppConfig(
        ledger=_ledger_instance,
        stripe_secrets=lambda: _secrets("stripe_webhook"),
        hyperwallet_secrets=lambda: _secrets("hyperwallet_webhook"),
        hyperwallet_allow_list=_allow_list,
        hyperwallet_encryption=_hyperwallet_encryption,
        refresh=_refresh,
    )
)


class MiraklConnectorWebhooksPlugin(AirflowPlugin):
    name = "mirakl_connector_webhooks"
    fastapi_apps = [{"app": app, "url_prefix": "/mirakl-connector", "name": "mirakl-connector"}]
