"""The :class:`~mirakl_connector.operations.mail.Mailer` of Airflow deployments: the
``smtp_default`` hook."""

from __future__ import annotations

from collections.abc import Sequence

from mirakl_connector.core.errors import ConfigurationError


class SmtpMailer:
    """Send through Airflow's SMTP provider hook (host, port, login and TLS from the connection).

    :param smtp_conn_id: the SMTP connection.
    :param email_from: sender address; falls back to the connection's ``from_email`` extra.
    """

    def __init__(self, smtp_conn_id: str = "smtp_default", email_from: str | None = None) -> None:
        self.smtp_conn_id = smtp_conn_id
        self.email_from = email_from

    def send(self, *, to: Sequence[str], subject: str, html: str) -> None:
        if not to:
            raise ConfigurationError("no e-mail recipient configured (alerts.email_to)")
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        with SmtpHook(smtp_conn_id=self.smtp_conn_id) as hook:
            hook.send_email_smtp(
                to=list(to), subject=subject, html_content=html, from_email=self.email_from
            )
