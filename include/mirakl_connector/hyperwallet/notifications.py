"""Processing the Hyperwallet notifications stored in the ledger inbox: what both DAGs share.

The webhook endpoint (``POST /webhooks/hyperwallet/<secret>``) stores each notification once,
keyed by its ``wbh-`` token, so a duplicate delivery is never processed twice. Two jobs read the
inbox, each taking the notifications of its kind by the prefix of ``object.token`` (how the
incumbent routes them, not by the ``type`` text):

* ``hyperwallet_payment_status``: ``pmt-`` (payments); ``trm-`` and unrecognised objects are
  acknowledged and IGNORED there (the incumbent retried them five times and alerted, for
  nothing: there is no handler for them);
* ``hyperwallet_kyc_status``: ``usr-`` (users) and ``stk-`` (business stakeholders).

Retries, as the incumbent's notification queue: a failed attempt is retried after 1, 2, 4 then 8
minutes (``hyperwallet_notifications.first_retry_minutes`` × 2ⁿ); the fifth failure leaves the
notification FAILED, without a next attempt, and sends one e-mail naming it. A manual run with
``event_ids`` retries exactly those notifications.

Trust: a notification is never acted on as posted. Before a job applies one of the kinds it acts
on, it re-reads it from Hyperwallet by its token (``GET /webhook-notifications/{token}``, as the
incumbent's queue does) and works on Hyperwallet's copy; one Hyperwallet does not know, or whose
posted body differs from Hyperwallet's copy, is REJECTED: not applied, not retried by itself,
named in the run summary (the run fails) and e-mailed (see :mod:`.hyperwallet_notification_checks`).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from mirakl_connector.core.batch import BatchSummary, ItemOutcome, run_batch
from mirakl_connector.core.errors import ConfigurationError, InvalidItemError, MiraklConnectorError
from mirakl_connector.core.settings import checked_values
from mirakl_connector.hyperwallet.errors import HyperwalletNotFoundError
from mirakl_connector.hyperwallet.notification_checks import (
    NotificationRejected,
    posted_differences,
)
from mirakl_connector.hyperwallet.specs import NOTIFICATIONS_SECTION
from mirakl_connector.ledger import InboxEvent, InboxStatus, Ledger
from mirakl_connector.ledger.inbox_events import HYPERWALLET, settled
from mirakl_connector.ledger.inbox_events import after_failure as inbox_after_failure

log = logging.getLogger(__name__)

SETTINGS_SECTION = NOTIFICATIONS_SECTION

PAYMENT = "PMT"
USER = "USR"
STAKEHOLDER = "STK"
TRANSFER_METHOD = "TRM"
UNKNOWN = "UNK"

RETRY_SCHEDULED = "RETRY_SCHEDULED"
GAVE_UP = "GAVE_UP"
REJECTED = "REJECTED"


@dataclass(frozen=True)
class NotificationSettings:
    """The ``hyperwallet_notifications`` section.

    :param max_attempts: attempts before a notification is left FAILED and e-mailed (5).
    :param first_retry_minutes: delay after the first failure; doubled after each (1, 2, 4, 8).
    :param kyc_automated: also flag the letter of authorisation as wanted on KYC updates (the
        incumbent's ``PAYPAL_HYPERWALLET_KYC_AUTOMATED``).
    :param batch_size: notifications read per ledger query.
    """

    max_attempts: int = 5
    first_retry_minutes: int = 1
    kyc_automated: bool = False
    batch_size: int = 100

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> NotificationSettings:
        values = checked_values(cls, values, SETTINGS_SECTION)
        for name in ("max_attempts", "first_retry_minutes", "batch_size"):
            value = values.get(name, getattr(cls, name))
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(
                    f"{SETTINGS_SECTION}.{name} must be a positive integer, got {value!r}"
                )
        return cls(**values)


def notification_kind(payload: Mapping[str, Any]) -> str:
    """``PMT``, ``USR``, ``STK``, ``TRM`` from ``object.token``'s prefix; ``UNK`` otherwise."""
    obj = payload.get("object")
    token = obj.get("token") if isinstance(obj, Mapping) else None
    if not isinstance(token, str) or "-" not in token:
        return UNKNOWN
    prefix = token.split("-", 1)[0].upper()
    return prefix if prefix in (PAYMENT, USER, STAKEHOLDER, TRANSFER_METHOD) else UNKNOWN


def retry_delay(attempts: int, first: timedelta) -> timedelta:
    """Wait after the ``attempts``-th failure: ``first`` × 2^(attempts − 1)."""
    factor: int = 2 ** max(attempts - 1, 0)
    return first * factor


def after_failure(
    event: InboxEvent,
    error: str,
    *,
    now: datetime,
    max_attempts: int,
    first_delay: timedelta,
    permanent: bool = False,
) -> InboxEvent:
    """The notification after a failed attempt: FAILED, due again later or (last one) never.

    As any inbox event's failure (:func:`~mirakl_connector.ledger.inbox_events.after_failure`),
    with the Hyperwallet notifications' own attempts and delays.
    """
    failed = inbox_after_failure(event, error, now=now)
    last = permanent or failed.attempts >= max_attempts
    next_at = None if last else now + retry_delay(failed.attempts, first_delay)
    return replace(failed, next_attempt_at=next_at)


def gave_up_email(event: InboxEvent, error: str, attempts: int) -> tuple[str, str]:
    """(subject, html) of the one e-mail sent when a notification is given up."""
    token = html.escape(event.event_id)
    subject = f"Hyperwallet notification {event.event_id} could not be processed"
    body = (
        f"<p>The Hyperwallet notification <b>{token}</b> ({html.escape(event.type)}, object "
        f"{html.escape(event.object_id or 'unknown')}) failed {attempts} time(s) and will not be "
        "processed again automatically.</p>"
        f"<p>Last error: {html.escape(error)}</p>"
        "<p>Fix the cause, then retry it by triggering the DAG with "
        f'<code>event_ids</code> = ["{token}"].</p>'
    )
    return subject, body


def rejected_email(event: InboxEvent, reason: str) -> tuple[str, str]:
    """(subject, html) of the e-mail sent when a notification is rejected as untrue."""
    token = html.escape(event.event_id)
    subject = f"Hyperwallet notification {event.event_id} rejected: not confirmed by Hyperwallet"
    body = (
        f"<p>The notification <b>{token}</b> ({html.escape(event.type)}, object "
        f"{html.escape(event.object_id or 'unknown')}) posted to the connector was not applied: "
        f"{html.escape(reason)}</p>"
        "<p>Nothing was written to Mirakl and no payment was marked paid. If it was not sent by "
        "Hyperwallet, the notification secret may be known to someone else: rotate it. If "
        "Hyperwallet confirms it later, retry it by triggering the DAG with "
        f'<code>event_ids</code> = ["{token}"].</p>'
    )
    return subject, body


class NotificationJob:
    """Base of the two notification jobs: picking, retrying, giving up, e-mailing.

    Subclasses set ``WORKFLOW`` and ``KINDS`` and implement :meth:`apply`, which returns the
    final status (PROCESSED or IGNORED) with a note, or raises: :class:`InvalidItemError` gives
    up at once (bad data does not improve by waiting), :class:`NotificationRejected` rejects it
    (reported, never retried by itself), any other error is retried. Notifications of
    ``VERIFIED_KINDS`` reach :meth:`apply` as Hyperwallet's copy, re-read by token.
    """

    WORKFLOW = ""
    KINDS: frozenset[str] = frozenset()
    VERIFIED_KINDS: frozenset[str] = frozenset()

    def __init__(
        self,
        *,
        ledger: Ledger,
        settings: NotificationSettings,
        hyperwallet: Callable[[], Any] | None = None,
        mirakl: Callable[[], Any] | None = None,
        mailer: Any = None,
        email_to: Sequence[str] = (),
        run_id: str | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._hyperwallet_factory = hyperwallet
        self._mirakl_factory = mirakl
        self.ledger = ledger
        self.settings = settings
        self.mailer = mailer
        self.email_to = tuple(email_to)
        self.run_id = run_id
        self._now = now or (lambda: datetime.now(UTC))

    def process(self, event_ids: Sequence[str] | None = None) -> BatchSummary:
        """Apply the due notifications of this job's kinds (or exactly ``event_ids``)."""
        summary = BatchSummary(self.WORKFLOW, "process")
        run_batch(self._due(event_ids), self._handle, item_id=lambda e: e.event_id, summary=summary)
        log.info("%s", summary.describe())
        return summary

    def apply(self, event: InboxEvent, kind: str) -> tuple[InboxStatus, str | None]:
        raise NotImplementedError

    @property
    def mirakl(self) -> Any:
        """The Mirakl client the notifications are written back with (made when first used)."""
        if self._mirakl_factory is None:
            raise ConfigurationError(f"{self.WORKFLOW} needs the Mirakl connection")
        return self._mirakl_factory()

    @property
    def hyperwallet(self) -> Any:
        if self._hyperwallet_factory is None:
            raise ConfigurationError(
                f"{self.WORKFLOW} needs the Hyperwallet connection: every notification is "
                "re-read from Hyperwallet before it is applied"
            )
        return self._hyperwallet_factory()

    def verified(self, event: InboxEvent) -> InboxEvent:
        """``event`` with Hyperwallet's copy of the notification as its payload.

        :raises NotificationRejected: Hyperwallet does not know the token (404), or the posted
            body differs from its copy.
        """
        try:
            known = self.hyperwallet.get_webhook_notification(event.event_id)
        except HyperwalletNotFoundError:
            raise NotificationRejected(
                f"Hyperwallet does not know notification {event.event_id} "
                "(GET /webhook-notifications/{token} answered 404)"
            ) from None
        if not isinstance(known, Mapping) or not known:
            raise NotificationRejected(f"Hyperwallet returned no notification {event.event_id}")
        differences = posted_differences(event.payload, known)
        if differences:
            raise NotificationRejected(
                "the notification posted differs from Hyperwallet's copy: " + "; ".join(differences)
            )
        return replace(event, payload=dict(known))

    # -- picking ----------------------------------------------------------------------------

    def _due(self, event_ids: Sequence[str] | None) -> Iterator[InboxEvent]:
        if event_ids:
            for event_id in event_ids:
                event = self.ledger.get_inbox_event(HYPERWALLET, event_id)
                if event is None:
                    raise InvalidItemError("not in the inbox", item_id=event_id)
                if notification_kind(event.payload) not in self.KINDS:
                    raise InvalidItemError(
                        f"not a notification for {self.WORKFLOW} "
                        f"({notification_kind(event.payload)})",
                        item_id=event_id,
                    )
                if event.status != InboxStatus.PROCESSED:
                    yield event
            return
        batches = self.ledger.iter_inbox(
            statuses=[InboxStatus.RECEIVED, InboxStatus.FAILED],
            source=HYPERWALLET,
            due_before=self._now(),
            batch_size=self.settings.batch_size,
        )
        due = []
        for batch in batches:
            for event in batch:
                if event.status == InboxStatus.FAILED and event.next_attempt_at is None:
                    continue  # given up: only a manual run names it again
                if notification_kind(event.payload) in self.KINDS:
                    due.append(event)
        # Oldest first, as the incumbent's queue: arrival order is not creation order.
        yield from sorted(due, key=lambda e: (e.event_created or e.created_at or self._now(), e.id))

    # -- one notification -------------------------------------------------------------------

    def _handle(self, event: InboxEvent) -> ItemOutcome:
        kind = notification_kind(event.payload)
        try:
            checked = self.verified(event) if kind in self.VERIFIED_KINDS else event
            status, note = self.apply(checked, kind)
        except ConfigurationError:
            raise
        except NotificationRejected as exc:
            return self._rejected(event, exc.reason)
        except InvalidItemError as exc:
            return self._failed(event, f"invalid data: {exc.reason}", permanent=True)
        except MiraklConnectorError as exc:
            return self._failed(event, str(exc))
        except Exception as exc:  # noqa: BLE001 - recorded on the notification, retried
            log.exception("Unexpected error applying %s", event.event_id)
            return self._failed(event, f"unexpected error: {exc!r}")
        self.ledger.save_inbox_event(settled(event, status, note, now=self._now()))
        return ItemOutcome(event.event_id, status.value, note)

    def _rejected(self, event: InboxEvent, reason: str) -> ItemOutcome:
        """Left FAILED without a next attempt, named in the run summary and e-mailed."""
        updated = after_failure(
            event,
            f"rejected: {reason}",
            now=self._now(),
            max_attempts=self.settings.max_attempts,
            first_delay=timedelta(minutes=self.settings.first_retry_minutes),
            permanent=True,
        )
        self.ledger.save_inbox_event(updated)
        log.error("Notification %s rejected: %s", event.event_id, reason)
        try:
            self.send_email(*rejected_email(event, reason))
        except Exception:  # noqa: BLE001 - the inbox row and the run summary still name it
            log.exception("Could not e-mail that notification %s was rejected", event.event_id)
        return ItemOutcome(event.event_id, REJECTED, f"{event.type}: {reason}", failed=True)

    def _failed(self, event: InboxEvent, error: str, *, permanent: bool = False) -> ItemOutcome:
        updated = after_failure(
            event,
            error,
            now=self._now(),
            max_attempts=self.settings.max_attempts,
            first_delay=timedelta(minutes=self.settings.first_retry_minutes),
            permanent=permanent,
        )
        self.ledger.save_inbox_event(updated)
        if updated.next_attempt_at is not None:
            log.warning(
                "Notification %s failed (attempt %d), retried at %s: %s",
                event.event_id,
                updated.attempts,
                updated.next_attempt_at.isoformat(),
                error,
            )
            return ItemOutcome(
                event.event_id,
                RETRY_SCHEDULED,
                f"{event.type}: {error} (attempt {updated.attempts}, next at "
                f"{updated.next_attempt_at.isoformat()})",
                failed=True,
            )
        self._email_gave_up(updated, error)
        return ItemOutcome(event.event_id, GAVE_UP, f"{event.type}: {error}", failed=True)

    def _email_gave_up(self, event: InboxEvent, error: str) -> None:
        log.error(
            "Notification %s given up after %d attempt(s): %s",
            event.event_id,
            event.attempts,
            error,
        )
        try:
            self.send_email(*gave_up_email(event, error, event.attempts))
        except Exception:  # noqa: BLE001 - the inbox row and the run summary still name it
            log.exception("Could not e-mail that notification %s was given up", event.event_id)

    def send_email(self, subject: str, body: str) -> bool:
        """E-mail ``alerts.email_to``; False (logged) when there is nobody or no mailer."""
        if self.mailer is None or not self.email_to:
            log.error("No mailer or alerts.email_to: not e-mailed: %s", subject)
            return False
        self.mailer.send(to=self.email_to, subject=subject, html=body)
        return True
