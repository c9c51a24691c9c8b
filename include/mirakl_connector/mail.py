"""E-mail as the workflows see it: one ``send`` call, whatever delivers it.

The KYC monitor, the daily failed-operations alert and the operator-notification fallback all
send e-mail from the library core, which must not import Airflow. They take a :class:`Mailer`;
the Airflow layer passes one that goes through the ``smtp_default`` connection
(:mod:`mirakl_connector.airflow.mail`), tests pass one that talks to a local SMTP server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Mailer(Protocol):
    """Sends one HTML e-mail; raises on failure (the caller decides whether that is fatal)."""

    def send(self, *, to: Sequence[str], subject: str, html: str) -> None: ...
