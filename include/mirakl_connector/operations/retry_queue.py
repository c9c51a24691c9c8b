"""The retry queue every workflow uses: a failed item is retried on later runs until it succeeds.

A shop, invoice or KYC update that failed goes to the ledger's retry queue (``pending_items``)
with the reason, and leaves it when it succeeds. The queue's ``attempts`` counts failures. Only
the *first* failure of an item is a failed item of the run (turning it red and e-mailing); a
failed retry is counted as ``RETRY_PENDING`` (or the workflow's own retry status), so a stuck
item does not alert every run.

Two policies, one queue:

* **Bounded** (the Hyperwallet jobs, ``max_retries`` set): the first retry is due at the next
  run, the n-th one ``n × delay`` after the previous failure (30, 60, 90, 120 minutes by
  default). After ``max_retries`` failed retries (5) the item is *exhausted*: one e-mail names
  it, and it is no longer retried by itself. It is processed again when it changes in Mirakl
  (which gives it a fresh budget, where the incumbent kept it exhausted for good) or when a
  manual run names it.
* **Unbounded** (the Stripe onboarding and KYC monitor, ``max_retries=None``): every queued item
  is retried every run until it succeeds (the incumbent forgot it until the shop changed).

An item may also be queued *before* a risky call (:meth:`RetryQueue.mark`): if the process dies
half-way, the next run finds it in the queue and finishes (or checks) what was under way.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from mirakl_connector.core.batch import ItemOutcome
from mirakl_connector.ledger.records import PendingItem

log = logging.getLogger(__name__)

# Outcome statuses of an item that failed (the summary's counts).
#: The first failure of an item (a failed item of the run) in the Hyperwallet jobs.
FAILED = "FAILED"
#: The first failure of a shop (a failed item of the run) in the Stripe onboarding.
RETRY_QUEUED = "RETRY_QUEUED"
#: A failed retry of an item already queued: counted, not alerted on again.
RETRY_PENDING = "RETRY_PENDING"
#: The failed retry that used up a bounded queue's budget (a failed item; e-mailed once).
RETRIES_EXHAUSTED = "RETRIES_EXHAUSTED"


class PendingItemStore(Protocol):
    """The ledger methods the queue uses (:class:`~mirakl_connector.ledger.Ledger` has them)."""

    def pending_items(self, workflow: str) -> list[PendingItem]: ...

    def record_pending_item(
        self, workflow: str, item_id: str | int, reason: str | None
    ) -> PendingItem: ...

    def clear_pending_item(self, workflow: str, item_id: str | int) -> None: ...


def retries_done(item: PendingItem) -> int:
    """Failed retries so far (the first failure is not a retry)."""
    return max(item.attempts - 1, 0)


def is_exhausted(item: PendingItem, max_retries: int | None) -> bool:
    """True when a bounded queue's item has used up its retries (never when unbounded)."""
    return max_retries is not None and retries_done(item) >= max_retries


def next_retry_at(item: PendingItem, delay: timedelta) -> datetime:
    """When the item may be retried: ``retries done × delay`` after its last failure."""
    last = item.last_failed_at or item.first_failed_at or datetime.min.replace(tzinfo=UTC)
    if last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    return last + delay * retries_done(item)


def is_due(item: PendingItem, *, max_retries: int | None, delay: timedelta, now: datetime) -> bool:
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
    :param max_retries: failed retries before an item is exhausted; ``None`` retries for ever.
    :param delay: the growing delay between retries (zero: every run).
    :param mailer: a :class:`~mirakl_connector.operations.mail.Mailer`, or ``None`` (then the
        exhaustion is only logged).
    :param first_status: the outcome status of an item's first failure.
    :param retry_status: the outcome status of a failed retry.
    """

    def __init__(
        self,
        ledger: PendingItemStore,
        workflow: str,
        *,
        max_retries: int | None = None,
        delay: timedelta = timedelta(0),
        mailer: Any = None,
        email_to: Sequence[str] = (),
        now: Callable[[], datetime] | None = None,
        first_status: str = FAILED,
        retry_status: str = RETRY_PENDING,
    ) -> None:
        self.ledger = ledger
        self.workflow = workflow
        self.max_retries = max_retries
        self.delay = delay
        self.mailer = mailer
        self.email_to = tuple(email_to)
        self.first_status = first_status
        self.retry_status = retry_status
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

    def is_exhausted(self, item: PendingItem) -> bool:
        return is_exhausted(item, self.max_retries)

    def mark(self, item_id: str, reason: str) -> PendingItem:
        """Queue the item *before* a risky call, so a crash half-way is finished next run.

        The mark is not a failure of this run: :meth:`fail` still counts the item's first
        failure as such.
        """
        return self.ledger.record_pending_item(self.workflow, item_id, reason)

    def clear(self, item_id: str) -> None:
        """Take the item out of the queue (done, or no longer this workflow's)."""
        self.ledger.clear_pending_item(self.workflow, item_id)
        self.items.pop(item_id, None)

    def record_failure(self, item_id: str, reason: str, *, changed: bool = False) -> PendingItem:
        """Queue (or count) a failure; e-mail once when it exhausts the retries.

        :param changed: the item was re-read because it changed in Mirakl: an exhausted item
            gets a fresh budget.
        """
        previous = self.items.get(item_id)
        if changed and previous is not None and self.is_exhausted(previous):
            self.ledger.clear_pending_item(self.workflow, item_id)
        item = self.ledger.record_pending_item(self.workflow, item_id, reason)
        self.items[item_id] = item
        if self.max_retries is not None and retries_done(item) == self.max_retries:
            self._send_exhausted(item_id, reason)
        return item

    def record_success(self, item_id: str) -> None:
        if item_id in self.items:
            self.clear(item_id)

    def fail(
        self,
        item_id: str,
        reason: str,
        *,
        changed: bool = False,
        dry_run: bool = False,
        first: bool | None = None,
        label: str | None = None,
    ) -> ItemOutcome:
        """Queue the failure and say what it is: only a first failure (or a fresh budget, or an
        exhaustion) is a failed item of the run; a failed retry is counted only.

        :param first: whether this is the item's first failure; by default, whether it is not
            queued (a :meth:`mark` does not count).
        :param label: the outcome's item id (default ``item_id``).
        :param dry_run: nothing is written; the outcome says what the failure would be.
        """
        first = not self.is_queued(item_id) if first is None else first
        label = item_id if label is None else label
        if dry_run:
            status = self.first_status if first else self.retry_status
            return ItemOutcome(label, status, reason, failed=first)
        previous = self.items.get(item_id)
        reset = changed and previous is not None and self.is_exhausted(previous)
        item = self.record_failure(item_id, reason, changed=changed)
        if first or reset:
            return ItemOutcome(label, self.first_status, reason, failed=True)
        if self.is_exhausted(item):
            return ItemOutcome(label, RETRIES_EXHAUSTED, reason, failed=True)
        return ItemOutcome(label, self.retry_status, reason)

    def _send_exhausted(self, item_id: str, reason: str) -> None:
        log.error(
            "%s: item %s failed %d retries: %s", self.workflow, item_id, self.max_retries, reason
        )
        if self.mailer is None or not self.email_to:
            log.error("No mailer or alerts.email_to: the exhaustion of %s is not e-mailed", item_id)
            return
        subject, body = exhausted_email(item_id, reason, max_retries=self.max_retries or 0)
        try:
            self.mailer.send(to=self.email_to, subject=subject, html=body)
        except Exception:  # noqa: BLE001 - the queue row says it all; the e-mail is a courtesy
            log.exception("Could not e-mail the exhaustion of %s", item_id)
