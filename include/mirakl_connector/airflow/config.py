"""The connector's run-time settings: one JSON Airflow Variable, ``mirakl_connector_config``.

Example::

    {
      "payment_split": {"product_enabled": true, "service_enabled": true,
                        "tax_split_enabled": false, "tax_account": null},
      "alerts": {"email_to": ["payments-ops@example.com"], "email_from": "airflow@example.com"}
    }

Read it inside tasks and callbacks only (never at DAG parse time): inside a task the Variable comes
from the metadata DB through the Execution API, so an edit in the UI applies to the next task.
A missing Variable means "all defaults"; malformed JSON is a configuration error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.operations.mail import alert_recipients

CONFIG_VARIABLE = "mirakl_connector_config"


@dataclass(frozen=True)
class AlertSettings:
    """Who gets the failure e-mails (empty ``email_to`` = nobody, logged as an error)."""

    email_to: tuple[str, ...] = ()
    email_from: str | None = None

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> AlertSettings:
        to = alert_recipients({"alerts": values})  # the one reading of the section's keys
        values = values or {}
        sender = values.get("email_from")
        if sender is not None and not isinstance(sender, str):
            raise ConfigurationError(
                f"{CONFIG_VARIABLE}.alerts.email_from must be a string, got {sender!r}"
            )
        return cls(email_to=to, email_from=sender or None)


def parse_connector_config(text: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """Parse the Variable's value (JSON text or an already-decoded mapping) into a dict."""
    if text is None or text == "":
        return {}
    if isinstance(text, Mapping):
        return dict(text)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"Variable {CONFIG_VARIABLE} is not valid JSON (line {exc.lineno}, "
            f"column {exc.colno}: {exc.msg})"
        ) from None
    if not isinstance(value, dict):
        raise ConfigurationError(f"Variable {CONFIG_VARIABLE} must be a JSON object")
    for section in ("payment_split", "alerts"):
        if value.get(section) is not None and not isinstance(value[section], dict):
            raise ConfigurationError(f"{CONFIG_VARIABLE}.{section} must be an object")
    return value


def load_connector_config() -> dict[str, Any]:
    """Read and parse the Variable. Call from ``execute()``/``notify()``, not at parse time."""
    from airflow.sdk import Variable

    return parse_connector_config(Variable.get(CONFIG_VARIABLE, default=None))


def alert_settings(config: Mapping[str, Any]) -> AlertSettings:
    """The ``alerts`` section, typed."""
    return AlertSettings.from_mapping(config.get("alerts"))
