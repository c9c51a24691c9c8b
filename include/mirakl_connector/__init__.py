"""Mirakl marketplace payments on Stripe Connect, as a library with an Airflow adapter.

The core (clients, ledger, workflows) imports nothing from Airflow; the adapter lives in
:mod:`mirakl_connector.airflow`. This module stays import-light on purpose: Airflow's providers
manager calls :func:`get_provider_info` through the ``apache_airflow_provider`` entry point in every
component (api-server, scheduler, workers), so importing it must not pull in Airflow, Stripe or
SQLAlchemy.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_HOOKS = "mirakl_connector.airflow.hooks"


def get_provider_info() -> dict[str, Any]:
    """Describe the package to Airflow's providers manager.

    The connection forms are declared here (``conn-fields`` + ``ui-field-behaviour``, the Airflow
    3.2+ way) rather than on the hooks, so the UI can build them without importing the hooks.
    Secrets are typed ``"format": "password"`` so the UI masks them.
    """
    return {
        "package-name": "mirakl-connector",
        "name": "Mirakl Connector",
        "description": "Mirakl marketplace payments (payment split, refunds, payouts) on Stripe "
        "Connect, run as Airflow DAGs.",
        "versions": [__version__],
        "integrations": [
            {"integration-name": "Mirakl", "tags": ["service"]},
            {"integration-name": "Stripe Connect", "tags": ["service"]},
            {"integration-name": "Hyperwallet", "tags": ["service"]},
        ],
        "hooks": [
            {"integration-name": "Mirakl", "python-modules": [f"{_HOOKS}.mirakl"]},
            {"integration-name": "Stripe Connect", "python-modules": [f"{_HOOKS}.stripe"]},
            {"integration-name": "Hyperwallet", "python-modules": [f"{_HOOKS}.hyperwallet"]},
        ],
        "connection-types": [
            {
                "connection-type": "mirakl",
                "hook-class-name": f"{_HOOKS}.mirakl.MiraklHook",
                "hook-name": "Mirakl",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "login", "port"],
                    "relabeling": {"host": "Mirakl base URL", "password": "API key"},
                    "placeholders": {
                        "host": "https://your-marketplace.mirakl.net",
                        "password": "operator API key, or 'Bearer <token>' for OAuth",
                    },
                },
                "conn-fields": {
                    "timeout_connect": {
                        "label": "Connect timeout (s)",
                        "description": "Seconds to wait for the TCP/TLS connection.",
                        "schema": {"type": ["number", "null"], "minimum": 0, "default": 5},
                    },
                    "timeout_read": {
                        "label": "Read timeout (s)",
                        "description": "Seconds to wait for Mirakl's answer.",
                        "schema": {"type": ["number", "null"], "minimum": 0, "default": 30},
                    },
                    "max_retries": {
                        "label": "Max retries",
                        "description": "Retries of a 429/5xx/transport failure before giving up.",
                        "schema": {"type": ["integer", "null"], "minimum": 0, "default": 4},
                    },
                    "page_size": {
                        "label": "Page size",
                        "description": "Items per page on paginated endpoints (Mirakl max 100).",
                        "schema": {
                            "type": ["integer", "null"],
                            "minimum": 1,
                            "maximum": 100,
                            "default": 100,
                        },
                    },
                },
            },
            {
                "connection-type": "stripe",
                "hook-class-name": f"{_HOOKS}.stripe.StripeHook",
                "hook-name": "Stripe Connect",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "login", "port"],
                    "relabeling": {"host": "API base override", "password": "Secret key"},
                    "placeholders": {
                        "host": "leave empty for api.stripe.com (set for the sandbox)",
                        "password": "sk_test_..., sk_live_... or rk_...",
                    },
                },
                "conn-fields": {
                    "max_retries": {
                        "label": "Max retries",
                        "description": "Retries of a rate-limited or failed Stripe call; safe "
                        "because every money-moving call carries an idempotency key.",
                        "schema": {"type": ["integer", "null"], "minimum": 0, "default": 2},
                    },
                    "timeout": {
                        "label": "Timeout (s)",
                        "description": "Seconds to wait for Stripe's answer.",
                        "schema": {"type": ["number", "null"], "minimum": 0, "default": 30},
                    },
                    "max_requests_per_second": {
                        "label": "Max requests per second (per task)",
                        "description": "Pace each task's Stripe calls to this budget. Empty: "
                        "the task's share of Stripe's documented limit for the key's mode (5 per "
                        "stripe_api pool slot it holds), or no pacing when Host points at a "
                        "sandbox. Pool slots x this value should stay under the account's limit.",
                        "schema": {"type": ["number", "null"], "exclusiveMinimum": 0},
                    },
                    "max_requests_per_endpoint": {
                        "label": "Max requests per second on one endpoint (per task)",
                        "description": "Pace each task's calls to any one Stripe endpoint "
                        "(25 requests/s each at Stripe). Empty: 5 (the 4 shards of a step then "
                        "send 80 % of it), or no pacing when Host points at a sandbox.",
                        "schema": {"type": ["number", "null"], "exclusiveMinimum": 0},
                    },
                },
            },
            {
                "connection-type": "hyperwallet",
                "hook-class-name": f"{_HOOKS}.hyperwallet.HyperwalletHook",
                "hook-name": "Hyperwallet",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {
                        "host": "API server",
                        "login": "REST API user",
                        "password": "REST API password",
                    },
                    "placeholders": {
                        "host": "https://api.paylution.com (UAT: https://uat-api.paylution.com)",
                        "login": "restapiuser@...",
                    },
                },
                "conn-fields": {
                    "timeout_connect": {
                        "label": "Connect timeout (s)",
                        "description": "Seconds to wait for the TCP/TLS connection.",
                        "schema": {"type": ["number", "null"], "minimum": 0, "default": 5},
                    },
                    "timeout_read": {
                        "label": "Read timeout (s)",
                        "description": "Seconds to wait for Hyperwallet's answer.",
                        "schema": {"type": ["number", "null"], "minimum": 0, "default": 30},
                    },
                    "max_retries": {
                        "label": "Max retries",
                        "description": "Retries of a 429/5xx/transport failure; a create (POST) "
                        "is only retried when it certainly did not arrive.",
                        "schema": {"type": ["integer", "null"], "minimum": 0, "default": 4},
                    },
                    "page_size": {
                        "label": "Page size",
                        "description": "Items per page of list calls (max 100).",
                        "schema": {
                            "type": ["integer", "null"],
                            "minimum": 1,
                            "maximum": 100,
                            "default": 100,
                        },
                    },
                },
            },
        ],
    }
