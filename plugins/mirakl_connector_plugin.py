"""Template macros for the connector's DAGs and e-mails.

Only macros live here: operators, hooks and sensors are in the installed ``mirakl_connector``
package, as Airflow 3 expects. Use them in any templated field as
``{{ macros.mirakl_connector_plugin.format_minor(1234, "EUR") }}`` → ``12.34 EUR``.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from mirakl_connector.core.money import format_minor, from_minor


def minor_to_major(amount: int, currency: str) -> str:
    """Minor units to a plain decimal string: ``(1500, "JPY")`` → ``1500``, ``(1234, "KWD")`` →
    ``1.234`` (the currency's ISO 4217 exponent decides, never a fixed 100)."""
    return str(from_minor(amount, currency))


class MiraklConnectorPlugin(AirflowPlugin):
    name = "mirakl_connector_plugin"
    macros = [format_minor, minor_to_major]
