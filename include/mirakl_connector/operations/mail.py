"""E-mail as the workflows see it: one ``send`` call, whatever delivers it.

The KYC monitor, the daily failed-operations alert and the operator-notification fallback all
send e-mail from the library core, which must not import Airflow. They take a :class:`Mailer`;
the Airflow layer passes one that goes through the ``smtp_default`` connection
(:mod:`mirakl_connector.airflow.mail`), tests pass one that talks to a local SMTP server.
Who receives the alerts is read here too, once for every sender (:func:`alert_recipients`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.core.settings import refuse_unknown

#: the keys of the ``alerts`` section (``email_from`` is read by the Airflow failure notifier)
ALERT_SETTINGS = ("email_to", "email_from")


class Mailer(Protocol):
    """Sends one HTML e-mail; raises on failure (the caller decides whether that is fatal)."""

    def send(self, *, to: Sequence[str], subject: str, html: str) -> None: ...


def alert_recipients(config: Mapping[str, Any]) -> tuple[str, ...]:
    """The addresses of ``alerts.email_to`` in the connector's configuration: the one parser.

    Every e-mail of the connector (task failures, KYC, failed operations, Hyperwallet
    exhaustions, notification fall-backs) goes to these addresses, so one reading of the setting
    serves them all. Missing or empty means nobody (each sender logs or fails on that as it
    must). See :func:`parse_email_to` for the accepted forms.
    """
    alerts = config.get("alerts")
    if alerts is None:
        return ()
    if not isinstance(alerts, Mapping):
        raise ConfigurationError(
            f"mirakl_connector_config.alerts must be an object, got {alerts!r}"
        )
    refuse_unknown(alerts, ALERT_SETTINGS, "alerts")
    return parse_email_to(alerts.get("email_to"))


def parse_email_to(value: Any) -> tuple[str, ...]:
    """``alerts.email_to`` as a tuple of addresses, in order, each once.

    Accepted: a list of addresses, or one string of addresses separated by commas or semicolons
    (as Airflow's own ``email`` argument takes them); entries are trimmed and empty ones dropped.
    Anything else, or an entry that is not an address (``local@domain``, no spaces), is a
    :class:`~mirakl_connector.core.errors.ConfigurationError` that names the bad entry: an alert
    sent
    to a typo would be an alert nobody reads.
    """
    if value is None:
        return ()
    if isinstance(value, str):
        entries: list[Any] = [value]
    elif isinstance(value, list | tuple):
        entries = list(value)
    else:
        raise ConfigurationError(
            f"{_SETTING} must be a list of addresses or a string of addresses separated by "
            f"commas, got {value!r}"
        )
    addresses: list[str] = []
    bad: list[str] = []
    for entry in entries:
        if not isinstance(entry, str):
            bad.append(repr(entry))
            continue
        for part in _SEPARATORS.split(entry):
            address = part.strip()
            if not address:
                continue
            if not _ADDRESS.fullmatch(address):
                bad.append(repr(address))
            elif address not in addresses:
                addresses.append(address)
    if bad:
        raise ConfigurationError(f"{_SETTING}: not an e-mail address: {', '.join(bad)}")
    return tuple(addresses)


_SETTING = "mirakl_connector_config.alerts.email_to"
_SEPARATORS = re.compile(r"[,;]")
# local@domain: no spaces, one "@", a domain that does not start or end with a dot. Deliberately
# loose (RFC 5322 allows far more); it catches the typos that lose an alert.
_ADDRESS = re.compile(r"[^@\s]+@[^@\s.][^@\s]*(?<!\.)")
