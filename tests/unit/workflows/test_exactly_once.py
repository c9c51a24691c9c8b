"""The one exactly-once write: which key is sent, when Stripe is searched first, what is marked.

Stripe and the ledger are played by a recorder that logs every call in order, so each test
checks both the answer and the sequence of side effects that leads to it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from mirakl_connector.core.errors import PaymentProviderError
from mirakl_connector.ledger.records import TransferRecord, TransferStatus, TransferType
from mirakl_connector.stripe.exactly_once import (
    SPENT_KEY_SETTLE,
    Refused,
    Unknown,
    Written,
    write_once,
)
from mirakl_connector.stripe.gateway import KEY_SPENT, REPLAY_WINDOW, CreatedObject

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
MARKED_AT = NOW + timedelta(seconds=1)  # what the ledger stamps on the attempt
OLD_KEY = "mirakl-connector:transfer:PRODUCT_ORDER:ORD-1-A"
NEW_KEY = "mirakl-connector:transfer:PRODUCT_ORDER:ORD-1-A:retry1"


def pending(*, attempted_at: datetime | None = None, key: str | None = None) -> TransferRecord:
    return TransferRecord(
        type=TransferType.PRODUCT_ORDER,
        mirakl_id="ORD-1-A",
        status=TransferStatus.PENDING,
        destination_account="acct_seller",
        amount=1234,
        currency="EUR",
        idempotency_key=key,
        attempted_at=attempted_at,
        attempts=1 if attempted_at else 0,
    )


def idempotency_error() -> PaymentProviderError:
    """What the gateway raises when a key is reused with other parameters (a 400)."""
    return PaymentProviderError(
        "Keys can only be reused with the same parameters",
        code="idempotency_error",
        http_status=400,
        permanent=True,
    )


class Recorder:
    """Ledger and Stripe for one row: every call is logged as ``(name, key, attempted_at)``."""

    def __init__(
        self,
        *,
        found: str | None = None,
        error: PaymentProviderError | None = None,
        replayed: bool = False,
    ) -> None:
        self.found = found
        self.error = error
        self.replayed = replayed
        self.calls: list[tuple[str, str | None, datetime | None]] = []

    def find(self, row: TransferRecord) -> str | None:
        self.calls.append(("find", row.idempotency_key, row.attempted_at))
        return self.found

    def mark(self, row: TransferRecord, key: str) -> TransferRecord:
        self.calls.append(("mark", key, row.attempted_at))
        return replace(row, idempotency_key=key, attempted_at=MARKED_AT, attempts=row.attempts + 1)

    def create(self, row: TransferRecord, key: str) -> CreatedObject:
        self.calls.append(("create", key, row.attempted_at))
        if self.error:
            raise self.error
        return CreatedObject("tr_new", 1234, "EUR", replayed=self.replayed)

    def write(self, row: TransferRecord, *, new_key: str = NEW_KEY):
        return write_once(
            row,
            new_key=new_key,
            find=self.find,
            mark=self.mark,
            create=self.create,
            now=NOW,
        )


def test_a_fresh_row_is_marked_with_the_new_key_before_it_is_created():
    stripe = Recorder()

    result, row = stripe.write(pending(), new_key=OLD_KEY)

    assert result == Written("tr_new")
    # The key is in the ledger before Stripe hears of it, and create sees the marked row.
    assert stripe.calls == [("mark", OLD_KEY, None), ("create", OLD_KEY, MARKED_AT)]
    assert (row.idempotency_key, row.attempted_at, row.attempts) == (OLD_KEY, MARKED_AT, 1)


def test_in_doubt_inside_the_window_replays_the_stored_key_without_a_lookup():
    stripe = Recorder(replayed=True)
    attempted = NOW - REPLAY_WINDOW + timedelta(minutes=1)

    result, row = stripe.write(pending(attempted_at=attempted, key=OLD_KEY))

    assert result == Written("tr_new", replayed=True)
    assert stripe.calls == [("mark", OLD_KEY, attempted), ("create", OLD_KEY, MARKED_AT)]
    assert (row.idempotency_key, row.attempts) == (OLD_KEY, 2)


def test_in_doubt_inside_the_window_without_a_stored_key_sends_the_new_key():
    stripe = Recorder()
    attempted = NOW - timedelta(hours=1)

    result, _ = stripe.write(pending(attempted_at=attempted, key=None))

    assert result == Written("tr_new")
    assert stripe.calls == [("mark", NEW_KEY, attempted), ("create", NEW_KEY, MARKED_AT)]


@pytest.mark.parametrize("age", [REPLAY_WINDOW, timedelta(days=2)], ids=["at-23h", "2-days"])
def test_in_doubt_past_the_window_found_at_stripe_is_neither_marked_nor_created(age):
    stripe = Recorder(found="tr_old")
    row = pending(attempted_at=NOW - age, key=OLD_KEY)

    result, returned = stripe.write(row)

    assert result == Written("tr_old", found=True)
    assert stripe.calls == [("find", OLD_KEY, NOW - age)]
    assert returned == row  # nothing was written: the caller records the id on this row


def test_in_doubt_past_the_window_not_found_is_created_with_the_new_key():
    stripe = Recorder(found=None)
    attempted = NOW - timedelta(days=2)

    result, row = stripe.write(pending(attempted_at=attempted, key=OLD_KEY))

    assert result == Written("tr_new")
    assert stripe.calls == [
        ("find", OLD_KEY, attempted),
        ("mark", NEW_KEY, attempted),
        ("create", NEW_KEY, MARKED_AT),
    ]
    assert row.idempotency_key == NEW_KEY


def test_idempotency_error_looks_the_object_up_instead_of_failing_the_row():
    clash = idempotency_error()
    stripe = Recorder(found="tr_first", error=clash)

    result, row = stripe.write(pending(), new_key=OLD_KEY)

    assert result == Written("tr_first", found=True)
    assert stripe.calls == [
        ("mark", OLD_KEY, None),
        ("create", OLD_KEY, MARKED_AT),
        ("find", OLD_KEY, MARKED_AT),
    ]
    assert (row.idempotency_key, row.attempted_at) == (OLD_KEY, MARKED_AT)


def test_idempotency_error_with_nothing_found_stays_in_doubt_for_a_human():
    """Never a refusal: a FAILED row is retried with a new key, and the key that clashed did
    reach Stripe, so a second object could be made."""
    clash = idempotency_error()
    stripe = Recorder(found=None, error=clash)

    result, row = stripe.write(pending())

    assert isinstance(result, Unknown)
    assert "already used with other parameters" in result.reason
    assert "since 2026-11-21 11:00 UTC" in result.reason  # a key lifetime and a margin back
    assert [name for name, _, _ in stripe.calls] == ["mark", "create", "find"]
    assert (row.idempotency_key, row.attempted_at) == (NEW_KEY, MARKED_AT)  # still in doubt


def test_a_refusal_clears_attempted_at_so_the_next_attempt_gets_a_new_key():
    refusal = PaymentProviderError(
        "Insufficient funds in Stripe account",
        code="balance_insufficient",
        http_status=400,
        permanent=True,
    )
    stripe = Recorder(error=refusal)

    result, row = stripe.write(pending(), new_key=OLD_KEY)

    assert result == Refused("Insufficient funds in Stripe account", "balance_insufficient")
    assert stripe.calls == [("mark", OLD_KEY, None), ("create", OLD_KEY, MARKED_AT)]  # no lookup
    assert (row.attempted_at, row.idempotency_key, row.attempts) == (None, OLD_KEY, 1)
    assert not row.in_doubt


def test_a_lost_answer_leaves_the_row_in_doubt_with_its_key():
    timeout = PaymentProviderError("APIConnectionError no response: timed out", permanent=False)
    stripe = Recorder(error=timeout)

    result, row = stripe.write(pending(), new_key=OLD_KEY)

    assert result == Unknown(
        "Outcome unknown (APIConnectionError no response: timed out); "
        "the next run checks with the same key"
    )
    assert stripe.calls == [("mark", OLD_KEY, None), ("create", OLD_KEY, MARKED_AT)]  # no lookup
    assert (row.idempotency_key, row.attempted_at) == (OLD_KEY, MARKED_AT)
    assert row.in_doubt


def test_a_failed_mark_never_reaches_stripe():
    stripe = Recorder()

    def mark(row: TransferRecord, key: str) -> TransferRecord:
        stripe.calls.append(("mark", key, row.attempted_at))
        raise RuntimeError("ledger unavailable")

    with pytest.raises(RuntimeError, match="ledger unavailable"):
        write_once(
            pending(),
            new_key=OLD_KEY,
            find=stripe.find,
            mark=mark,
            create=stripe.create,
            now=NOW,
        )
    assert stripe.calls == [("mark", OLD_KEY, None)]


def spent_key() -> PaymentProviderError:
    """What the gateway raises when Stripe saved a 500 for the key (a replay answers the same)."""
    return PaymentProviderError(
        "APIError 500: An unknown error occurred.",
        code=KEY_SPENT,
        http_status=500,
        permanent=False,
    )


class SpentOnce(Recorder):
    """Stripe saved a 500 for the first key sent; the ledger keeps a key's first use."""

    def __init__(self, *, found: str | None = None, spent: tuple[str, ...] = (OLD_KEY,)) -> None:
        super().__init__(found=found)
        self.spent = spent

    def mark(self, row: TransferRecord, key: str) -> TransferRecord:
        self.calls.append(("mark", key, row.attempted_at))
        first_use = row.attempted_at if row.idempotency_key == key else MARKED_AT
        return replace(row, idempotency_key=key, attempted_at=first_use, attempts=row.attempts + 1)

    def create(self, row: TransferRecord, key: str) -> CreatedObject:
        self.calls.append(("create", key, row.attempted_at))
        if key in self.spent:
            raise spent_key()
        return CreatedObject("tr_new", 1234, "EUR")


def test_a_saved_server_error_is_looked_up_at_once_and_found_is_done():
    stripe = SpentOnce(found="tr_made")

    result, _row = stripe.write(pending(), new_key=OLD_KEY)

    assert result == Written("tr_made", found=True)
    assert [c[0] for c in stripe.calls] == ["mark", "create", "find"]


def test_a_saved_server_error_with_nothing_found_waits_before_a_new_key():
    stripe = SpentOnce()

    result, row = stripe.write(pending(), new_key=OLD_KEY)

    assert isinstance(result, Unknown)
    assert "Stripe saved a server error for key" in result.reason
    assert f"{MARKED_AT + SPENT_KEY_SETTLE:%Y-%m-%d %H:%M}" in result.reason
    assert [c[:2] for c in stripe.calls] == [
        ("mark", OLD_KEY),
        ("create", OLD_KEY),
        ("find", OLD_KEY),
    ]
    assert row.in_doubt and row.idempotency_key == OLD_KEY  # no second key inside the settle time


def test_a_spent_key_replayed_inside_the_settle_time_is_only_looked_up_again():
    stripe = SpentOnce()
    attempted = NOW - SPENT_KEY_SETTLE + timedelta(minutes=1)

    result, row = stripe.write(pending(attempted_at=attempted, key=OLD_KEY))

    assert isinstance(result, Unknown)
    assert [c[:2] for c in stripe.calls] == [
        ("mark", OLD_KEY),
        ("create", OLD_KEY),
        ("find", OLD_KEY),
    ]
    assert row.attempted_at == attempted


def test_a_spent_key_past_the_settle_time_with_nothing_found_is_sent_with_a_new_key():
    stripe = SpentOnce()
    attempted = NOW - SPENT_KEY_SETTLE

    result, row = stripe.write(pending(attempted_at=attempted, key=OLD_KEY))

    assert result == Written("tr_new")
    assert [c[:2] for c in stripe.calls] == [
        ("mark", OLD_KEY), ("create", OLD_KEY), ("find", OLD_KEY),
        ("mark", NEW_KEY), ("create", NEW_KEY),
    ]  # fmt: skip
    assert (row.idempotency_key, row.attempted_at) == (NEW_KEY, MARKED_AT)


def test_a_new_key_spent_too_is_not_replaced_in_the_same_run():
    stripe = SpentOnce(spent=(OLD_KEY, NEW_KEY))

    result, row = stripe.write(pending(attempted_at=NOW - timedelta(hours=2), key=OLD_KEY))

    assert isinstance(result, Unknown)
    assert [c[:2] for c in stripe.calls][-2:] == [("create", NEW_KEY), ("find", NEW_KEY)]
    assert row.idempotency_key == NEW_KEY and row.in_doubt
