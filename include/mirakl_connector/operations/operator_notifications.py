"""Deliver the ledger's notification outbox to the operator's endpoint (server to server).

The ledger queues a notification in the same transaction as the change it reports (a row
becoming ``*_FAILED``, an account update), so none is lost or invented. This step POSTs each
PENDING one as ``{"type": ..., "payload": {...}}`` JSON; a 2xx answer makes it SENT.

Retries follow the Stripe connector's schedule: after the first attempt, 1 s, 5 s and 25 s
(four tries in all). The schedule is *recorded* (``next_attempt_at``), not slept through per
notification: one run keeps going while a retry falls due within its time budget
(``max_run_seconds``, default 40 s, enough for the whole 31 s schedule), sleeping only until
the next due time, so a hundred failing notifications cost one 31 s wait, not a hundred. A run
that stops (budget, crash) leaves the rest PENDING with their due times, and the next run
(every minute) continues exactly where it stopped.

After the last try the notification is FAILED and the alert recipients get one e-mail
"Operator notification endpoint unreachable" with the endpoint, the error, the response body and
the notification JSON; at most one such e-mail per ``email_cooldown_minutes`` (default 10, 0 =
every time), claimed atomically in the ledger so that parallel runs cannot both send it.

No endpoint configured: notifications stay PENDING (reported in the summary), to be delivered
once the operator sets one up. The Stripe connector dropped them silently; keeping them costs a
few rows and loses nothing.
"""

from __future__ import annotations

import html
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import requests

from mirakl_connector.core.batch import BatchSummary, ItemOutcome
from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.core.registry import Resources
from mirakl_connector.core.settings import checked_values
from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.records import Notification, NotificationStatus
from mirakl_connector.operations.mail import Mailer, alert_recipients
from mirakl_connector.operations.specs import OPERATOR_NOTIFICATIONS

log = logging.getLogger(__name__)

WORKFLOW = OPERATOR_NOTIFICATIONS.name
SUBJECT = "[Mirakl connector] Operator notification endpoint unreachable"
COOLDOWN_KEY = "notification-endpoint-down"
#: Most characters of the endpoint's answer kept in the ledger and the e-mail.
MAX_BODY = 2000


@dataclass(frozen=True)
class Reply:
    """The endpoint's answer."""

    status: int
    body: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class NotificationSender(Protocol):
    """POSTs one JSON document to the operator endpoint; raises when no answer came back."""

    @property
    def endpoint(self) -> str:
        """The URL without credentials or query (safe to log and e-mail)."""
        ...

    def post(self, document: Mapping[str, Any]) -> Reply: ...


class JsonPoster:
    """A :class:`NotificationSender` over ``requests``.

    :param url: the operator's endpoint; a query string or user info in it is kept secret.
    :param headers: extra headers (e.g. an ``Authorization`` token); never logged.
    :param timeout: seconds to connect and to read.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float = 10.0,
    ) -> None:
        if not url or urlsplit(url).scheme not in ("http", "https"):
            raise ConfigurationError("the operator notification URL must be http(s)://...")
        self._url = url
        self._headers = {"Content-Type": "application/json", **dict(headers or {})}
        self._auth = auth
        self._timeout = timeout
        self._session = requests.Session()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.endpoint!r})"

    @property
    def endpoint(self) -> str:
        return safe_url(self._url)

    def post(self, document: Mapping[str, Any]) -> Reply:
        response = self._session.post(
            self._url,
            data=json.dumps(document, default=str),
            headers=self._headers,
            auth=self._auth,
            timeout=self._timeout,
        )
        return Reply(response.status_code, response.text[:MAX_BODY])


def safe_url(url: str) -> str:
    """``scheme://host[:port]/path``: user info and query may carry secrets."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


@dataclass(frozen=True)
class NotificationSettings:
    """The ``operator_notifications`` section of the connector configuration."""

    retry_delays_seconds: tuple[float, ...] = (1, 5, 25)
    max_run_seconds: float = 40
    email_on_failure: bool = True
    email_cooldown_minutes: float = 10

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> NotificationSettings:
        values = checked_values(cls, values, "operator_notifications")
        if "retry_delays_seconds" in values:
            delays = values["retry_delays_seconds"]
            if not isinstance(delays, list | tuple) or not all(
                _number(d) and d >= 0 for d in delays
            ):
                raise ConfigurationError(
                    "operator_notifications.retry_delays_seconds must be a list of seconds ≥ 0"
                )
            values["retry_delays_seconds"] = tuple(delays)
        for name in ("max_run_seconds", "email_cooldown_minutes"):
            if name in values and not (_number(values[name]) and values[name] >= 0):
                raise ConfigurationError(f"operator_notifications.{name} must be a number ≥ 0")
        return cls(**values)


class OperatorNotifications:
    """The delivery job; see the module docstring.

    :param clock: current time (aware); injected by tests with ``sleep`` advancing it.
    """

    def __init__(
        self,
        *,
        ledger: Ledger,
        sender: NotificationSender | None,
        settings: NotificationSettings,
        mailer: Mailer | None = None,
        recipients: Sequence[str] = (),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.ledger = ledger
        self.sender = sender
        self.settings = settings
        self.mailer = mailer
        self.recipients = list(recipients)
        self.clock = clock
        self.sleep = sleep

    def deliver(self, *, dry_run: bool = False) -> BatchSummary:
        """Send every due PENDING notification; keep retrying within the run's time budget."""
        summary = BatchSummary(WORKFLOW, "deliver", dry_run=dry_run)
        if self.sender is None or dry_run:
            waiting = sum(
                len(batch)
                for batch in self.ledger.iter_notifications(statuses=[NotificationStatus.PENDING])
            )
            why = "dry run" if dry_run else "no operator endpoint configured"
            summary.notes.append(f"{why}: {waiting} notification(s) left PENDING")
            return summary
        deadline = self.clock() + timedelta(seconds=self.settings.max_run_seconds)
        retries: list[datetime] = []
        while True:
            now = self.clock()
            # Retries scheduled earlier and due now are attempted by this pass.
            retries = [at for at in retries if at > now]
            for batch in self.ledger.iter_notifications(
                statuses=[NotificationStatus.PENDING], due_before=now
            ):
                for notification in batch:
                    outcome, retry_at = self._attempt(notification)
                    summary.add(outcome)
                    if retry_at is not None:
                        retries.append(retry_at)
            upcoming = min(retries, default=None)
            if upcoming is None or upcoming > deadline:
                break
            self.sleep(max((upcoming - self.clock()).total_seconds(), 0.0))
        if retries:
            summary.notes.append(f"{len(retries)} notification(s) to retry in a later run")
        log.info("%s", summary.describe())
        return summary

    def _attempt(self, notification: Notification) -> tuple[ItemOutcome, datetime | None]:
        """One POST; record the result. Returns the outcome and the retry time, if any."""
        document = {"type": notification.type, "payload": notification.payload}
        attempts = notification.attempts + 1
        item = f"{notification.type}/{notification.dedup_key}"
        reply: Reply | None = None
        error: str | None
        try:
            reply = self.sender.post(document)  # type: ignore[union-attr]
        except Exception as exc:  # noqa: BLE001 - any transport failure is a failed try
            error = f"{type(exc).__name__}: {exc}"
        else:
            error = None if reply.ok else f"HTTP {reply.status}"
        now = self.clock()
        if error is None:
            log.info("Notification %s delivered (%s)", item, reply.body if reply else "")
            self.ledger.save_notification(
                replace(
                    notification,
                    status=NotificationStatus.SENT,
                    attempts=attempts,
                    last_error=None,
                    next_attempt_at=None,
                    sent_at=now,
                )
            )
            return ItemOutcome(item, str(NotificationStatus.SENT)), None

        delays = self.settings.retry_delays_seconds
        body = reply.body if reply is not None else None
        last_error = f"{error}; response: {body}" if body else error
        log.warning("Notification %s attempt %d failed: %s", item, attempts, last_error)
        if attempts <= len(delays):
            retry_at = now + timedelta(seconds=delays[attempts - 1])
            self.ledger.save_notification(
                replace(
                    notification,
                    attempts=attempts,
                    last_error=last_error,
                    next_attempt_at=retry_at,
                )
            )
            return ItemOutcome(item, "RETRY_SCHEDULED", error), retry_at

        failed = replace(
            notification,
            status=NotificationStatus.FAILED,
            attempts=attempts,
            last_error=last_error,
            next_attempt_at=None,
        )
        self.ledger.save_notification(failed)
        self._fallback_email(failed, error, body, now)
        return ItemOutcome(item, str(NotificationStatus.FAILED), last_error, failed=True), None

    def _fallback_email(
        self, notification: Notification, error: str, body: str | None, now: datetime
    ) -> None:
        """Tell a human the endpoint is down, at most once per cooldown; never raise."""
        if not self.settings.email_on_failure:
            return
        if not self.recipients or self.mailer is None:
            log.error(
                "Notification %s failed for good and no alert recipient is configured",
                notification.dedup_key,
            )
            return
        minutes = self.settings.email_cooldown_minutes
        if minutes and not self.ledger.claim_cooldown(
            COOLDOWN_KEY, timedelta(minutes=minutes), now=now
        ):
            log.info("Endpoint-down e-mail already sent within %s minute(s)", minutes)
            return
        try:
            self.mailer.send(
                to=self.recipients,
                subject=SUBJECT,
                html=build_fallback_html(
                    endpoint=self.sender.endpoint if self.sender else "",
                    tries=notification.attempts,
                    error=error,
                    body=body,
                    document={"type": notification.type, "payload": notification.payload},
                ),
            )
        except Exception as exc:  # noqa: BLE001 - the delivery results are already saved
            log.error("Endpoint-down e-mail could not be sent: %s: %s", type(exc).__name__, exc)


def build_fallback_html(
    *, endpoint: str, tries: int, error: str, body: str | None, document: Mapping[str, Any]
) -> str:
    """Body of the endpoint-down e-mail (escaped: payloads carry Mirakl and Stripe text)."""
    esc = html.escape
    parts = [
        f"<p>The operator notification endpoint <code>{esc(endpoint)}</code> could not be "
        f"reached: we tried {tries} time(s).</p>",
        f"<p>Error: <code>{esc(error)}</code></p>",
    ]
    if body:
        parts.append(f"<p>Response body:</p><pre>{esc(body[:MAX_BODY])}</pre>")
    pretty = json.dumps(document, indent=2, sort_keys=True, default=str)
    parts.append(f"<p>Notification:</p><pre>{esc(pretty)}</pre>")
    parts.append(
        "<p>It is kept as FAILED in the connector's ledger. Later notifications are still "
        "sent; this e-mail is not repeated during the cooldown.</p>"
    )
    return "\n".join(parts)


def build(
    resources: Resources, config: Mapping[str, Any], run_id: str | None
) -> OperatorNotifications:
    """Registry entry: the outbox, the endpoint (``Resources.http``, may be None), the mailer."""
    sender = resources.get("http") if getattr(resources, "http", None) is not None else None
    mailer = resources.get("mailer") if resources.mailer is not None else None
    return OperatorNotifications(
        ledger=resources.get("ledger"),
        sender=sender,
        settings=NotificationSettings.from_mapping(config.get("operator_notifications")),
        mailer=mailer,
        recipients=alert_recipients(config),
    )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
