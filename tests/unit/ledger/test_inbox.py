"""Ledger step 3: the provider event inbox and the out-of-order guard (both backends)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from mirakl_connector.ledger import InboxEvent, InboxStatus

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _event(event_id: str, **kw) -> InboxEvent:
    return InboxEvent(
        event_id=event_id,
        source="stripe",
        type="payout.failed",
        payload={"id": event_id},
        event_created=T0,
        **kw,
    )


def test_store_once_per_source_and_event_id(ledger):
    assert ledger.store_webhook_event(_event("evt_1")) is True
    assert ledger.store_webhook_event(_event("evt_1")) is False
    assert ledger.store_webhook_event(replace(_event("evt_1"), source="hyperwallet")) is True
    assert ledger.inbox_event_ids("stripe", ["evt_1", "evt_2"]) == {"evt_1"}
    assert ledger.get_inbox_event("stripe", "evt_1").payload == {"id": "evt_1"}


def test_pending_counts_received_and_due_retries_but_not_given_up(ledger):
    for name in ("evt_a", "evt_b", "evt_c"):
        ledger.store_webhook_event(_event(name))
    a, b, c = (ledger.get_inbox_event("stripe", n) for n in ("evt_a", "evt_b", "evt_c"))
    ledger.save_inbox_event(
        replace(a, status=InboxStatus.FAILED, attempts=1, next_attempt_at=T0 + timedelta(minutes=5))
    )
    ledger.save_inbox_event(replace(b, status=InboxStatus.FAILED, attempts=8, next_attempt_at=None))
    assert ledger.inbox_pending(now=T0) == (1, c.id)
    assert ledger.inbox_pending(now=T0 + timedelta(minutes=6)) == (2, c.id)
    due = [
        e.event_id
        for batch in ledger.iter_inbox(
            statuses=[InboxStatus.RECEIVED, InboxStatus.FAILED], due_before=T0
        )
        for e in batch
    ]
    assert "evt_a" not in due and "evt_c" in due


def test_claim_object_event_refuses_older_events(ledger):
    assert ledger.claim_object_event("ch_1", T0, "evt_new") is True
    assert ledger.claim_object_event("ch_1", T0 - timedelta(seconds=1), "evt_old") is False
    assert ledger.claim_object_event("ch_1", T0, "evt_same_second") is True
    assert ledger.last_applied_event("ch_1") == (T0, "evt_same_second")
