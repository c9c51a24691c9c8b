"""Failed items of the Hyperwallet jobs: retried on later runs with a growing delay, then dropped.

A shop or invoice that failed goes to the ledger's retry queue (``pending_items``) with the
reason. The queue's ``attempts`` counts failures; the first retry is due at the next run, the
n-th one ``n × item_retry_delay`` after the previous failure (30, 60, 90, 120 minutes by
default). After ``max_item_retries`` failed retries (5) the item is *exhausted*: one e-mail names
it, and it is no longer retried by itself. It is processed again when it changes in Mirakl
(which gives it a fresh budget, where the incumbent kept it exhausted for good) or when a manual
run names it. Success clears it from the queue.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from mirakl_connector.ledger.records import PendingItem

log = logging.getLogger(__name__)


def retries_done(item: PendingItem) -> int:
    """Failed retries so far (the first failure is not a retry)."""
    return max(item.attempts - 1, 0)


def is_exhausted(item: PendingItem, max_retries: int) -> bool:
    return retries_done(item) >= max_retries


def next_retry_at(item: PendingItem, delay: timedelta) -> datetime:
    """When the item may be retried: ``retries done × delay`` after its last failure."""
    last = item.last_failed_at or item.first_failed_at or datetime.min.replace(tzinfo=UTC)
    if last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    return last + delay * retries_done(item)


def is_due(item: PendingItem, *, max_retries: int, delay: timedelta, now: datetime) -> bool:
    return not is_exhausted(item, max_retries) and now >= next_retry_at(item, delay)


def exhausted_email(item_id: str, reason: str | None, *, max_retries: int) -> tuple[str, str]:
    """(subject, html) of the one e-mail sent when an item runs out of retries."""
    subject = f"Max retry attempts reached when processing item [{item_id}]"
    body = (
        f"<p>Max retry attempts ({max_retries}) reached when processing item "
        f"[{html.escape(item_id)}]; the item won't be automatically retried again. It will be "
        "processed again if the item has any changes or if a manual job execution is done "
        "with its id.</p>"
        f"<p>Last error: {html.escape(reason or 'unknown')}</p>"
    )
    return subject, body


class RetryQueue:
    """One workflow's view of the ledger retry queue, with the exhaustion e-mail.

    :param ledger: the connector ledger (``record_pending_item`` / ``pending_items`` /
        ``clear_pending_item``).
    :param mailer: a :class:`~mirakl_connector.operations.mail.Mailer`, or ``None`` (then the
    exhaustion
        is only logged).
    """

    def __init__(
        self,
        ledger: Any,
        workflow: str,
        *,
        max_retries: int,
        delay: timedelta,
        mailer: Any = None,
        email_to: Sequence[str] = (),
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.ledger = ledger
        self.workflow = workflow
        self.max_retries = max_retries
        self.delay = delay
        self.mailer = mailer
        self.email_to = tuple(email_to)
        self._now = now or (lambda: datetime.now(UTC))
        self.items: dict[str, PendingItem] = {}

    def load(self) -> dict[str, PendingItem]:
        self.items = {i.item_id: i for i in self.ledger.pending_items(self.workflow)}
        return self.items

    def due_ids(self) -> list[str]:
        now = self._now()
        return [
            item_id
            for item_id, item in self.items.items()
            if is_due(item, max_retries=self.max_retries, delay=self.delay, now=now)
        ]

    def exhausted_ids(self) -> list[str]:
        return [i for i, item in self.items.items() if is_exhausted(item, self.max_retries)]

    def is_queued(self, item_id: str) -> bool:
        return item_id in self.items

    def record_failure(self, item_id: str, reason: str, *, changed: bool = False) -> PendingItem:
        """Queue (or count) a failure; e-mail once when it exhausts the retries.

        :param changed: the item was re-read because it changed in Mirakl: an exhausted item
            gets a fresh budget.
        """
        previous = self.items.get(item_id)
        if changed and previous is not None and is_exhausted(previous, self.max_retries):
            self.ledger.clear_pending_item(self.workflow, item_id)
        item = self.ledger.record_pending_item(self.workflow, item_id, reason)
        self.items[item_id] = item
        if retries_done(item) == self.max_retries:
            self._send_exhausted(item_id, reason)
        return item

    def record_success(self, item_id: str) -> None:
        if item_id in self.items:
            self.ledger.clear_pending_item(self.workflow, item_id)
            del self.items[item_id]

    def _send_exhausted(self, item_id: str, reason: str) -> None:
        log.error(
            "%s: item %s failed %d retries: %s", self.workflow, item_id, self.max_retries, reason
        )
        if self.mailer is None or not self.email_to:
            log.error("No mailer or alerts.email_to: the exhaustion of %s is not e-mailed", item_id)
            return
        subject, body = exhausted_email(item_id, reason, max_retries=self.max_retries)
        try:
            self.mailer.send(to=self.email_to, subject=subject, html=body)
        except Exception:  # noqa: BLE001 - the queue row says it all; the e-mail is a courtesy
            log.exception("Could not e-mail the exhaustion of %s", item_id)
