"""Retry queue (pending items) and alert cooldowns, including racing processes."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.ledger import STATUS_REASON_MAX

ONBOARDING = "seller_onboarding"
T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
TEN_MINUTES = timedelta(minutes=10)


# -- pending items ----------------------------------------------------------------------------


def test_first_failure_is_recorded_once(ledger):
    item = ledger.record_pending_item(ONBOARDING, "2000", "Stripe: rate limited")

    assert (item.workflow, item.item_id, item.reason, item.attempts) == (
        ONBOARDING,
        "2000",
        "Stripe: rate limited",
        1,
    )
    assert item.id is not None
    assert item.first_failed_at == item.last_failed_at
    assert abs(item.first_failed_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert ledger.pending_items(ONBOARDING) == [item]


def test_failing_again_counts_and_keeps_the_first_failure_time(ledger, open_ledger):
    first = ledger.record_pending_item(ONBOARDING, "2000", "timeout")
    second = open_ledger().record_pending_item(ONBOARDING, "2000", "HTTP 500")

    assert second.id == first.id
    assert second.attempts == 2
    assert second.reason == "HTTP 500"
    assert second.first_failed_at == first.first_failed_at
    assert second.last_failed_at > first.last_failed_at
    assert ledger.pending_items(ONBOARDING) == [second]


def test_items_come_oldest_first_and_per_workflow(ledger):
    ledger.record_pending_item(ONBOARDING, "b", "x")
    ledger.record_pending_item(ONBOARDING, "a", "x")
    ledger.record_pending_item("kyc_monitor", "a", "y")
    ledger.record_pending_item(ONBOARDING, "b", "again")  # does not move b to the back

    onboarding = ledger.pending_items(ONBOARDING)

    assert [(i.item_id, i.attempts) for i in onboarding] == [("b", 2), ("a", 1)]
    assert [i.item_id for i in ledger.pending_items("kyc_monitor")] == ["a"]
    assert ledger.pending_items("payout") == []


def test_clear_removes_only_that_item_and_tolerates_absence(ledger):
    ledger.record_pending_item(ONBOARDING, "2000", "x")
    ledger.record_pending_item(ONBOARDING, "2001", "x")
    ledger.record_pending_item("kyc_monitor", "2000", "x")

    ledger.clear_pending_item(ONBOARDING, "2000")
    ledger.clear_pending_item(ONBOARDING, "2000")  # already gone: no error
    ledger.clear_pending_item("never", "nothing")

    assert [i.item_id for i in ledger.pending_items(ONBOARDING)] == ["2001"]
    assert [i.item_id for i in ledger.pending_items("kyc_monitor")] == ["2000"]


def test_int_item_id_is_the_same_item_as_its_string(ledger):
    ledger.record_pending_item(ONBOARDING, 2000, "x")
    again = ledger.record_pending_item(ONBOARDING, "2000", "y")

    assert (again.item_id, again.attempts) == ("2000", 2)
    ledger.clear_pending_item(ONBOARDING, 2000)
    assert ledger.pending_items(ONBOARDING) == []


@pytest.mark.parametrize(("workflow", "item_id"), [("", "1"), (ONBOARDING, ""), (ONBOARDING, None)])
def test_pending_item_needs_workflow_and_id(ledger, workflow, item_id):
    with pytest.raises(InvalidItemError, match="workflow and an item id"):
        ledger.record_pending_item(workflow, item_id, "x")


def test_long_pending_reason_is_truncated(ledger):
    item = ledger.record_pending_item(ONBOARDING, "1", "boom " * 1000)

    assert len(item.reason) == STATUS_REASON_MAX
    assert ledger.pending_items(ONBOARDING)[0].reason == item.reason


# -- cooldowns --------------------------------------------------------------------------------


def test_cooldown_sequence(ledger):
    claims = [
        ledger.claim_cooldown("notification-endpoint-down", TEN_MINUTES, now=T0 + offset)
        for offset in (
            timedelta(0),  # never claimed
            timedelta(minutes=5),  # within the period
            timedelta(minutes=9, seconds=59),  # still within
            timedelta(minutes=10),  # exactly one period after the claim at T0
            timedelta(minutes=15),  # within the period of the claim at +10
            timedelta(minutes=25),
        )
    ]

    assert claims == [True, False, False, True, False, True]


def test_refused_claim_does_not_extend_the_cooldown(ledger):
    assert ledger.claim_cooldown("k", TEN_MINUTES, now=T0)
    assert not ledger.claim_cooldown("k", TEN_MINUTES, now=T0 + timedelta(minutes=9))
    # Measured from T0 (the last successful claim), not from the refused one at +9.
    assert ledger.claim_cooldown("k", TEN_MINUTES, now=T0 + timedelta(minutes=10))


def test_cooldown_keys_are_independent(ledger):
    assert ledger.claim_cooldown("a", TEN_MINUTES, now=T0)
    assert ledger.claim_cooldown("b", TEN_MINUTES, now=T0)
    assert not ledger.claim_cooldown("a", TEN_MINUTES, now=T0)


def test_cooldown_is_shared_between_processes(ledger, open_ledger):
    assert ledger.claim_cooldown("k", TEN_MINUTES, now=T0)
    assert not open_ledger().claim_cooldown("k", TEN_MINUTES, now=T0 + timedelta(minutes=1))


def test_cooldown_defaults_to_the_current_time(ledger):
    assert ledger.claim_cooldown("k", TEN_MINUTES)
    assert not ledger.claim_cooldown("k", TEN_MINUTES)
    # The claim recorded "now": an explicit time one period later is free again.
    later = datetime.now(UTC) + TEN_MINUTES + timedelta(seconds=1)
    assert ledger.claim_cooldown("k", TEN_MINUTES, now=later)


def test_zero_period_always_claims(ledger):
    assert ledger.claim_cooldown("k", timedelta(0), now=T0)
    assert ledger.claim_cooldown("k", timedelta(0), now=T0)


def test_cooldown_refuses_bad_arguments(ledger):
    with pytest.raises(ValueError, match="negative"):
        ledger.claim_cooldown("k", timedelta(seconds=-1), now=T0)
    with pytest.raises(InvalidItemError, match="naive"):
        ledger.claim_cooldown("k", TEN_MINUTES, now=datetime(2024, 5, 1, 8, 0))
    with pytest.raises(ValueError, match="key"):
        ledger.claim_cooldown("", TEN_MINUTES, now=T0)


@pytest.mark.parametrize("already_claimed", [False, True], ids=["insert-race", "update-race"])
def test_racing_processes_only_one_wins(ledger, open_ledger, already_claimed):
    if already_claimed:  # an expired claim exists: the race is on the conditional update
        assert ledger.claim_cooldown("race", TEN_MINUTES, now=T0 - timedelta(hours=1))
    racers = 6
    ledgers = [open_ledger() for _ in range(racers)]
    barrier = threading.Barrier(racers)
    results: list[bool] = []
    errors: list[BaseException] = []

    def race(n: int) -> None:
        barrier.wait()
        try:
            results.append(ledgers[n].claim_cooldown("race", TEN_MINUTES, now=T0))
        except BaseException as exc:  # asserted below
            errors.append(exc)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sorted(results) == [False] * (racers - 1) + [True]
