"""Payment mappings: capture fields, attempts before the Stripe call, streaming; KYC columns."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.ledger import (
    AccountMapping,
    LedgerConflictError,
    PaymentMapping,
    PaymentMappingStatus,
)

TO_CAPTURE = PaymentMappingStatus.TO_CAPTURE
CAPTURED = PaymentMappingStatus.CAPTURED


def test_capture_fields_round_trip_in_utc(ledger, open_ledger):
    validated = datetime(2024, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    ledger.upsert_payment_mapping(
        PaymentMapping(
            "pi_1",
            "CO-1",
            CAPTURED,
            stripe_amount=1500,
            captured_amount=1200,
            mirakl_validated_at=validated,
        )
    )

    stored = open_ledger().get_payment_mapping("pi_1")

    assert (stored.status, stored.stripe_amount, stored.captured_amount) == (CAPTURED, 1500, 1200)
    assert stored.mirakl_validated_at == datetime(2024, 6, 1, 10, 0, tzinfo=UTC)
    assert stored.attempts == 0 and stored.attempted_at is None


def test_get_payment_mapping_of_unknown_charge_is_none(ledger):
    ledger.upsert_payment_mapping(PaymentMapping("ch_1", "CO-1"))
    assert ledger.get_payment_mapping("ch_2") is None


def test_naive_validation_time_is_refused_with_the_charge(ledger):
    mapping = PaymentMapping("ch_9", "CO-9", mirakl_validated_at=datetime(2024, 6, 1, 12, 0))

    with pytest.raises(InvalidItemError, match=r"ch_9.*naive"):
        ledger.upsert_payment_mapping(mapping)
    assert ledger.get_payment_mapping("ch_9") is None


def test_mark_attempt_commits_key_time_and_count(ledger, open_ledger):
    saved = ledger.upsert_payment_mapping(PaymentMapping("pi_1", "CO-1", stripe_amount=1000))
    before = datetime.now(UTC)

    first = ledger.mark_payment_mapping_attempt(saved, "capture-pi_1", run_id="run-1")
    second = ledger.mark_payment_mapping_attempt(first, "capture-pi_1")

    stored = open_ledger().get_payment_mapping("pi_1")
    assert (first.attempts, second.attempts, stored.attempts) == (1, 2, 2)
    assert stored.idempotency_key == "capture-pi_1"
    assert before <= first.attempted_at <= second.attempted_at == stored.attempted_at
    assert stored.status is TO_CAPTURE  # an attempt is not a status change
    assert [e.new_status for e in ledger.events_for("payment_mapping", saved.id)] == ["to_capture"]


def test_mark_attempt_refuses_unsaved_mapping(ledger):
    with pytest.raises(LedgerConflictError, match="pi_404 is not in the ledger"):
        ledger.mark_payment_mapping_attempt(PaymentMapping("pi_404"), "key")


@pytest.mark.parametrize("done", [CAPTURED, PaymentMappingStatus.CANCELED])
def test_mark_attempt_refuses_a_captured_or_canceled_mapping(ledger, done):
    saved = ledger.upsert_payment_mapping(PaymentMapping("pi_1", "CO-1", done))

    with pytest.raises(LedgerConflictError, match=rf"pi_1 .*already {done.value}"):
        ledger.mark_payment_mapping_attempt(saved, "capture-pi_1")
    assert ledger.get_payment_mapping("pi_1").attempts == 0


def test_mark_attempt_needs_a_key(ledger):
    saved = ledger.upsert_payment_mapping(PaymentMapping("pi_1", "CO-1"))
    with pytest.raises(ValueError, match="idempotency key"):
        ledger.mark_payment_mapping_attempt(saved, "")


def test_stale_copy_does_not_erase_the_attempt(ledger):
    stale = ledger.upsert_payment_mapping(PaymentMapping("pi_1", "CO-1", stripe_amount=1000))
    marked = ledger.mark_payment_mapping_attempt(stale, "capture-pi_1")

    # A copy read before the mark (attempts 0) is saved: its other fields win, not its attempt.
    saved = ledger.upsert_payment_mapping(replace(stale, status_reason="webhook says hello"))

    assert saved.status_reason == "webhook says hello"
    assert (saved.idempotency_key, saved.attempted_at, saved.attempts) == (
        "capture-pi_1",
        marked.attempted_at,
        1,
    )
    assert ledger.get_payment_mapping("pi_1") == saved


def test_current_copy_settles_the_attempt(ledger):
    pi_1 = ledger.upsert_payment_mapping(PaymentMapping("pi_1", "CO-1", stripe_amount=1000))
    pi_2 = ledger.upsert_payment_mapping(PaymentMapping("pi_2", "CO-2", stripe_amount=500))
    marked_1 = ledger.mark_payment_mapping_attempt(pi_1, "capture-pi_1")
    marked_2 = ledger.mark_payment_mapping_attempt(pi_2, "capture-pi_2")

    # Stripe captured pi_1 (partially) and definitely declined pi_2: the copies returned by the
    # marks are current, so what they say is saved, including a cleared attempted_at.
    captured = ledger.upsert_payment_mapping(
        replace(marked_1, status=CAPTURED, captured_amount=800), run_id="capture"
    )
    declined = ledger.upsert_payment_mapping(
        replace(marked_2, attempted_at=None, status_reason="card_declined")
    )

    assert (captured.status, captured.captured_amount, captured.attempts) == (CAPTURED, 800, 1)
    assert (declined.attempted_at, declined.attempts, declined.idempotency_key) == (
        None,
        1,
        "capture-pi_2",
    )
    assert ledger.get_payment_mapping("pi_2").attempted_at is None
    assert ledger.get_payment_mapping("pi_1").captured_amount == 800


def test_iter_payment_mappings_by_status_in_batches(ledger):
    for i in range(7):
        ledger.upsert_payment_mapping(PaymentMapping(f"pi_{i}", f"CO-{i}"))
    ledger.upsert_payment_mapping(PaymentMapping("pi_done", "CO-done", CAPTURED))
    ledger.upsert_payment_mapping(PaymentMapping("pi_failed", "CO-x", PaymentMappingStatus.FAILED))

    batches = list(ledger.iter_payment_mappings(statuses=[TO_CAPTURE], batch_size=3))
    both = [
        m.stripe_charge_id
        for batch in ledger.iter_payment_mappings(statuses=[TO_CAPTURE, CAPTURED])
        for m in batch
    ]

    assert [len(b) for b in batches] == [3, 3, 1]
    assert [m.stripe_charge_id for b in batches for m in b] == [f"pi_{i}" for i in range(7)]
    assert all(m.status is TO_CAPTURE for b in batches for m in b)
    assert both == [*(f"pi_{i}" for i in range(7)), "pi_done"]
    with pytest.raises(ValueError, match="batch_size"):
        ledger.iter_payment_mappings(statuses=[TO_CAPTURE], batch_size=0)


def test_iteration_tolerates_saves_between_batches(ledger):
    for i in range(4):
        ledger.upsert_payment_mapping(PaymentMapping(f"pi_{i}", f"CO-{i}"))

    seen = []
    for batch in ledger.iter_payment_mappings(statuses=[TO_CAPTURE], batch_size=2):
        for mapping in batch:
            seen.append(mapping.stripe_charge_id)
            ledger.upsert_payment_mapping(replace(mapping, status=CAPTURED))

    assert seen == ["pi_0", "pi_1", "pi_2", "pi_3"]
    assert list(ledger.iter_payment_mappings(statuses=[TO_CAPTURE])) == []


def test_account_mapping_kyc_columns_round_trip(ledger, open_ledger):
    ledger.upsert_account_mapping(
        AccountMapping(2000, "acct_1", kyc_status="PENDING_APPROVAL", kyc_reported_status=None)
    )
    ledger.upsert_account_mapping(
        AccountMapping(
            2000, "acct_1", kyc_status="PENDING_APPROVAL", kyc_reported_status="PENDING_APPROVAL"
        )
    )

    stored = open_ledger().account_mapping_by_stripe_account("acct_1")

    assert (stored.kyc_status, stored.kyc_reported_status) == (
        "PENDING_APPROVAL",
        "PENDING_APPROVAL",
    )
    assert ledger.list_account_mappings() == [stored]
