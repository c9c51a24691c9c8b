"""Hyperwallet invoice payments, the outcomes: what each payment of a run reports, and whether
its invoice goes to the retry queue (:mod:`mirakl_connector.operations.retry_queue`)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from mirakl_connector.core.batch import ItemOutcome
from mirakl_connector.hyperwallet.payment_decisions import (
    HwInvoice,
)
from mirakl_connector.ledger import (
    HyperwalletPayment,
    HyperwalletPaymentStatus,
)
from mirakl_connector.operations.retry_queue import RetryQueue, is_exhausted

S = HyperwalletPaymentStatus

# Item outcomes (one per payment; an invoice that could not be planned gets one for itself).
PAID = "PAID"
ALREADY_PAID = "ALREADY_PAID"
WOULD_PAY = "WOULD_PAY"
IN_DOUBT = "IN_DOUBT"
FAILED = "FAILED"
ON_HOLD = "ON_HOLD"
REFUSED = "REFUSED"
SKIPPED = "SKIPPED"
#: A person holds the payment on the payments console: neither sent nor queued until released.
HELD = "HELD"
#: The invoice's shop is paid by the other provider (mirakl_connector.operations.payout_provider),
#: or the
#: invoice is already claimed by it (mirakl_connector.ledger.claims): never paid here.
NOT_HYPERWALLET = "NOT_HYPERWALLET"
RETRY_PENDING = "RETRY_PENDING"
RETRIES_EXHAUSTED = "RETRIES_EXHAUSTED"
#: Held for a person's approval (the approval gate): not a failure, not retried by itself.
AWAITING_APPROVAL = "AWAITING_APPROVAL"
#: Another copy of the step holds the payment's send claim (it is being sent): retried later.
SENDING_ELSEWHERE = "SENDING_ELSEWHERE"
#: Outcomes after which the invoice is queued for a retry.
RETRIABLE_OUTCOMES = frozenset({FAILED, IN_DOUBT, ON_HOLD, SENDING_ELSEWHERE})


@dataclass
class InvoiceItem:
    """One invoice of the run: parsed, or why it cannot be (reason), with where it came from."""

    invoice_id: str
    invoice: HwInvoice | None
    problem: str | None = None  # invalid data
    skip: str | None = None  # not to be paid (state, PAID...)
    changed: bool = True  # read by the window / named by a run (fresh retry budget)


class OutcomeQueueing:
    """The retry-queue part of :class:`.invoice_payments.HyperwalletInvoicePayments` (mixed in)."""

    queue: RetryQueue

    def _failure(self, item: InvoiceItem, reason: str, *, dry_run: bool) -> ItemOutcome:
        """The outcome of an invoice that could not even be planned (queued for retry)."""
        failed = ItemOutcome(item.invoice_id, FAILED, reason, failed=True)
        return self._queue([failed], item, dry_run=dry_run)[0]

    def _queue(
        self, outcomes: list[ItemOutcome], item: InvoiceItem, *, dry_run: bool
    ) -> list[ItemOutcome]:
        """Queue the invoice when a payment must be retried, else clear it from the queue.

        Only the first failure (or the exhaustion) is a *failed* item of the run, turning it red
        and e-mailing; a failed retry is counted as ``RETRY_PENDING`` with what happened.
        """
        retriable = [o for o in outcomes if o.status in RETRIABLE_OUTCOMES]
        if dry_run:
            return outcomes
        if not retriable:
            self.queue.record_success(item.invoice_id)
            return outcomes
        reason = "; ".join(
            o.reason or o.status if o.item_id == item.invoice_id else f"{o.item_id}: {o.reason}"
            for o in retriable
        )
        first = not self.queue.is_queued(item.invoice_id)
        previous = self.queue.items.get(item.invoice_id)
        reset = (
            item.changed and previous is not None and is_exhausted(previous, self.queue.max_retries)
        )
        queued = self.queue.record_failure(item.invoice_id, reason, changed=item.changed)
        if first or reset:
            return outcomes
        exhausted = is_exhausted(queued, self.queue.max_retries)
        return [
            replace(
                o,
                status=RETRIES_EXHAUSTED if exhausted else RETRY_PENDING,
                reason=f"{o.status}: {o.reason}",
                failed=exhausted,
            )
            if o in retriable
            else o
            for o in outcomes
        ]


def payment_outcome(
    row: HyperwalletPayment, status: str, reason: str | None, *, failed: bool = False
) -> ItemOutcome:
    return ItemOutcome(
        item_id=row.client_payment_id,
        status=status,
        reason=reason,
        amount=row.amount,
        currency=row.currency,
        failed=failed,
    )
