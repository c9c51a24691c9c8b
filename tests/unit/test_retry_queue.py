"""Retry spacing and exhaustion of failed items (pure parts and the queue with a fake ledger)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mirakl_connector.core.batch import ItemOutcome
from mirakl_connector.ledger.records import PendingItem
from mirakl_connector.operations.retry_queue import (
    RetryQueue,
    exhausted_email,
    is_due,
    is_exhausted,
    next_retry_at,
)

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DELAY = timedelta(minutes=30)


def item(attempts, last=T0):
    return PendingItem("wf", "2001", "boom", attempts, T0, last)


def test_first_retry_is_due_at_once_then_the_delay_grows():
    assert next_retry_at(item(1), DELAY) == T0
    assert next_retry_at(item(2), DELAY) == T0 + timedelta(minutes=30)
    assert next_retry_at(item(3), DELAY) == T0 + timedelta(minutes=60)
    assert next_retry_at(item(5), DELAY) == T0 + timedelta(minutes=120)
    assert not is_due(item(3), max_retries=5, delay=DELAY, now=T0 + timedelta(minutes=59))
    assert is_due(item(3), max_retries=5, delay=DELAY, now=T0 + timedelta(minutes=60))


def test_five_failed_retries_exhaust_the_item():
    assert not is_exhausted(item(5), 5)
    assert is_exhausted(item(6), 5)
    assert not is_due(item(6), max_retries=5, delay=DELAY, now=T0 + timedelta(days=9))


class FakeLedger:
    def __init__(self):
        self.rows: dict[tuple[str, str], PendingItem] = {}

    def pending_items(self, workflow):
        return [i for (w, _), i in self.rows.items() if w == workflow]

    def record_pending_item(self, workflow, item_id, reason):
        old = self.rows.get((workflow, item_id))
        attempts = old.attempts + 1 if old else 1
        self.rows[(workflow, item_id)] = PendingItem(workflow, item_id, reason, attempts, T0, T0)
        return self.rows[(workflow, item_id)]

    def clear_pending_item(self, workflow, item_id):
        self.rows.pop((workflow, item_id), None)


class Mailer:
    def __init__(self):
        self.sent = []

    def send(self, *, to, subject, html):
        self.sent.append((tuple(to), subject, html))


def test_queue_mails_once_when_retries_run_out_and_a_change_resets():
    ledger, mailer = FakeLedger(), Mailer()
    queue = RetryQueue(ledger, "wf", max_retries=5, delay=DELAY, mailer=mailer,
                       email_to=["ops@example.com"], now=lambda: T0)  # fmt: skip
    queue.load()
    for _ in range(6):  # the first failure and five failed retries
        queue.record_failure("2001", "Hyperwallet refused")
    assert queue.exhausted_ids() == ["2001"] and queue.due_ids() == []
    assert [s[1] for s in mailer.sent] == ["Max retry attempts reached when processing item [2001]"]
    queue.record_failure("2001", "still failing")
    assert len(mailer.sent) == 1  # never twice
    queue.record_failure("2001", "changed in Mirakl, failing again", changed=True)
    assert ledger.rows[("wf", "2001")].attempts == 1  # a fresh budget
    queue.record_success("2001")
    assert ledger.rows == {}


def test_exhausted_email_names_the_item_and_escapes_the_reason():
    subject, body = exhausted_email("2001", "<b>bad</b>", max_retries=5)
    assert subject == "Max retry attempts reached when processing item [2001]"
    assert "&lt;b&gt;bad&lt;/b&gt;" in body and "(5)" in body


def test_an_unbounded_queue_retries_for_ever_and_alerts_on_the_first_failure_only():
    ledger, mailer = FakeLedger(), Mailer()
    queue = RetryQueue(ledger, "onboarding", first_status="RETRY_QUEUED", mailer=mailer,
                       email_to=["ops@example.com"], now=lambda: T0)  # fmt: skip
    queue.load()
    first = queue.fail("2001", "HTTP 500")
    assert (first.status, first.failed) == ("RETRY_QUEUED", True)
    for _ in range(20):
        again = queue.fail("2001", "HTTP 500")
        assert (again.status, again.failed) == ("RETRY_PENDING", False)
    assert queue.due_ids() == ["2001"] and queue.exhausted_ids() == []
    assert mailer.sent == []
    queue.record_success("2001")
    assert ledger.rows == {}


def test_a_mark_before_a_risky_call_is_not_a_failure_and_a_dry_run_writes_nothing():
    ledger = FakeLedger()
    queue = RetryQueue(ledger, "kyc", first_status="UPDATE_FAILED", retry_status="UPDATE_RETRY")
    queue.load()
    queue.mark("7", "KYC to write")
    assert ledger.rows[("kyc", "7")].attempts == 1 and not queue.is_queued("7")
    outcome = queue.fail("7", "S07 refused", label="shop 7")
    assert outcome == ItemOutcome("shop 7", "UPDATE_FAILED", "S07 refused", failed=True)
    assert ledger.rows[("kyc", "7")].attempts == 2
    dry = queue.fail("7", "S07 refused", dry_run=True)
    assert (dry.status, dry.failed) == ("UPDATE_RETRY", False)
    assert ledger.rows[("kyc", "7")].attempts == 2
    assert queue.fail("8", "boom", first=False).status == "UPDATE_RETRY"
    queue.clear("7")
    assert ("kyc", "7") not in ledger.rows and not queue.is_queued("7")


def test_a_bounded_queue_says_first_failure_retry_pending_then_exhausted():
    queue = RetryQueue(FakeLedger(), "wf", max_retries=2, delay=DELAY, now=lambda: T0)
    queue.load()
    statuses = [queue.fail("2001", "boom").status for _ in range(3)]
    assert statuses == ["FAILED", "RETRY_PENDING", "RETRIES_EXHAUSTED"]
    fresh = queue.fail("2001", "boom", changed=True)  # changed in Mirakl: a fresh budget
    assert (fresh.status, fresh.failed) == ("FAILED", True)
