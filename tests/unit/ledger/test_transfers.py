"""Transfers: upsert by (type, mirakl_id), audit trail, double-transfer guards, streaming."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import Engine, event

from mirakl_connector.ledger import (
    ORDER_TRANSFER_TYPES,
    LedgerConflictError,
    TransferRecord,
    TransferStatus,
    TransferType,
)

PRODUCT = TransferType.PRODUCT_ORDER
SERVICE = TransferType.SERVICE_ORDER


def _transfer(
    mirakl_id: str, status=TransferStatus.ON_HOLD, status_reason=None, **fields
) -> TransferRecord:
    fields.setdefault("type", PRODUCT)
    return TransferRecord(mirakl_id=mirakl_id, status=status, status_reason=status_reason, **fields)


class _StatementCounter:
    """Counts SQL statements sent to any engine while active."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def _record(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.statements.append(statement)

    def __enter__(self) -> _StatementCounter:
        event.listen(Engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc_info) -> None:
        event.remove(Engine, "before_cursor_execute", self._record)


# -- upsert semantics -------------------------------------------------------------------------


def test_save_inserts_then_updates_by_type_and_mirakl_id(ledger):
    [created] = ledger.save_transfers(
        [_transfer("o-1", amount=1000, currency="EUR", mirakl_shop_id=2000)]
    )
    [updated] = ledger.save_transfers(
        [
            _transfer(
                "o-1",
                TransferStatus.PENDING,
                amount=950,
                currency="EUR",
                mirakl_shop_id=2000,
                destination_account="acct_1",
            )
        ]
    )

    assert created.id is not None and updated.id == created.id
    assert updated.created_at == created.created_at
    assert updated.updated_at > created.updated_at
    stored = ledger.get_transfer(PRODUCT, "o-1")
    assert stored == updated
    assert (stored.status, stored.amount, stored.destination_account) == (
        TransferStatus.PENDING,
        950,
        "acct_1",
    )


def test_same_mirakl_id_of_another_type_is_another_row(ledger):
    saved = ledger.save_transfers(
        [_transfer("o-1", amount=1), _transfer("o-1", type=SERVICE, amount=2)]
    )

    assert saved[0].id != saved[1].id
    assert ledger.get_transfers(PRODUCT, ["o-1"])["o-1"].amount == 1
    assert ledger.get_transfers(SERVICE, ["o-1", "o-2"]) == {"o-1": saved[1]}
    assert ledger.get_transfer(SERVICE, "missing") is None


def test_saved_records_come_back_in_input_order_with_enums(ledger):
    ledger.save_transfers([_transfer("b")])
    saved = ledger.save_transfers(
        [_transfer("c"), _transfer("b", TransferStatus.PENDING), _transfer("a")]
    )

    assert [r.mirakl_id for r in saved] == ["c", "b", "a"]
    assert all(r.id and r.created_at and r.updated_at for r in saved)
    assert saved[1].status is TransferStatus.PENDING
    assert isinstance(saved[0].type, TransferType)


def test_the_same_key_twice_in_one_save_is_refused(ledger):
    with pytest.raises(LedgerConflictError, match="TRANSFER_PRODUCT_ORDER/o-1 appears twice"):
        ledger.save_transfers([_transfer("o-1"), _transfer("o-1", TransferStatus.PENDING)])

    assert ledger.get_transfer(PRODUCT, "o-1") is None


def test_saving_nothing_is_a_no_op(ledger):
    assert ledger.save_transfers([]) == []


# -- audit trail ------------------------------------------------------------------------------


def test_events_are_written_for_new_rows_and_status_changes_only(ledger):
    [row] = ledger.save_transfers(
        [_transfer("o-1", status_reason="Order is not ready yet")], run_id="r1"
    )
    ledger.save_transfers(
        [_transfer("o-1", status_reason="Order is not ready yet, status is SHIPPING")], run_id="r2"
    )
    ledger.save_transfers([_transfer("o-1", TransferStatus.PENDING)], run_id="r3")
    ledger.save_transfers(
        [_transfer("o-1", TransferStatus.CREATED, transfer_id="tr_1")], run_id="r3"
    )

    events = ledger.events_for("transfer", row.id)

    assert [(e.old_status, e.new_status, e.reason, e.run_id) for e in events] == [
        (None, "TRANSFER_ON_HOLD", "Order is not ready yet", "r1"),
        ("TRANSFER_ON_HOLD", "TRANSFER_PENDING", None, "r3"),
        ("TRANSFER_PENDING", "TRANSFER_CREATED", None, "r3"),
    ]
    assert all(e.entity == "transfer" and e.entity_id == row.id for e in events)
    assert events[0].at <= events[1].at <= events[2].at
    assert ledger.events_for("refund", row.id) == []


# -- double-transfer guards -------------------------------------------------------------------


def test_transfer_id_cannot_be_dropped_and_the_whole_batch_is_kept_out(ledger):
    ledger.save_transfers([_transfer("o-1", TransferStatus.CREATED, transfer_id="tr_1")])

    with pytest.raises(LedgerConflictError, match=r"TRANSFER_PRODUCT_ORDER/o-1 .*tr_1"):
        ledger.save_transfers([_transfer("o-2"), _transfer("o-1", TransferStatus.PENDING)])

    stored = ledger.get_transfer(PRODUCT, "o-1")
    assert (stored.status, stored.transfer_id) == (TransferStatus.CREATED, "tr_1")
    assert ledger.get_transfer(PRODUCT, "o-2") is None  # rolled back with the bad record


def test_transfer_id_cannot_be_replaced_by_another(ledger):
    ledger.save_transfers([_transfer("o-1", TransferStatus.CREATED, transfer_id="tr_1")])

    with pytest.raises(LedgerConflictError, match="refusing to overwrite"):
        ledger.save_transfers([_transfer("o-1", TransferStatus.CREATED, transfer_id="tr_2")])

    assert ledger.get_transfer(PRODUCT, "o-1").transfer_id == "tr_1"


def test_resaving_with_the_same_transfer_id_is_allowed(ledger):
    ledger.save_transfers([_transfer("o-1", TransferStatus.CREATED, transfer_id="tr_1")])

    [again] = ledger.save_transfers(
        [_transfer("o-1", TransferStatus.CREATED, "done", transfer_id="tr_1")]
    )

    assert again.status_reason == "done" and again.transfer_id == "tr_1"


def test_mark_attempt_is_committed_and_seen_by_another_ledger(ledger, open_ledger):
    [pending] = ledger.save_transfers([_transfer("o-1", TransferStatus.PENDING, amount=10)])

    marked = ledger.mark_transfer_attempt(pending, "transfer-1", run_id="r1")
    other = open_ledger().get_transfer(PRODUCT, "o-1")

    assert (marked.idempotency_key, marked.attempts) == ("transfer-1", 1)
    assert marked.attempted_at is not None and marked.in_doubt
    assert (other.idempotency_key, other.attempts, other.attempted_at) == (
        "transfer-1",
        1,
        marked.attempted_at,
    )
    assert other.in_doubt
    # No status changed: the audit trail only has the insert.
    assert len(ledger.events_for("transfer", pending.id)) == 1


def test_mark_attempt_counts_attempts(ledger):
    [pending] = ledger.save_transfers([_transfer("o-1", TransferStatus.PENDING)])

    first = ledger.mark_transfer_attempt(pending, "transfer-1")
    second = ledger.mark_transfer_attempt(pending, "transfer-1")  # stale record: counted in SQL

    assert (first.attempts, second.attempts) == (1, 2)
    assert second.attempted_at >= first.attempted_at
    assert ledger.get_transfer(PRODUCT, "o-1").attempts == 2


def test_a_replay_with_the_same_key_keeps_the_keys_first_use(ledger):
    """Stripe ages a key from its first use: replays must not make it look younger, or the
    replay window would outlive the key and a replay could create a second transfer."""
    [pending] = ledger.save_transfers([_transfer("o-1", TransferStatus.PENDING)])
    first = ledger.mark_transfer_attempt(pending, "transfer-1")
    # Make the first use 20 hours old, as if the row had stayed in doubt since.
    [aged] = ledger.save_transfers(
        [replace(first, attempted_at=first.attempted_at - timedelta(hours=20))]
    )

    replayed = ledger.mark_transfer_attempt(aged, "transfer-1")
    assert replayed.attempted_at == aged.attempted_at and replayed.attempts == 2

    # A new key (after a definite refusal) starts a new clock.
    refused = ledger.save_transfers([replace(replayed, attempted_at=None)])[0]
    fresh = ledger.mark_transfer_attempt(refused, "transfer-1:retry2")
    assert fresh.attempted_at > aged.attempted_at + timedelta(hours=19)


def test_saving_a_stale_copy_keeps_the_attempt(ledger):
    [stale] = ledger.save_transfers([_transfer("o-1", TransferStatus.PENDING)])
    marked = ledger.mark_transfer_attempt(stale, "transfer-1")

    [saved] = ledger.save_transfers([_transfer("o-1", TransferStatus.FAILED, "card_declined")])

    assert (saved.idempotency_key, saved.attempts, saved.attempted_at) == (
        "transfer-1",
        1,
        marked.attempted_at,
    )
    assert ledger.get_transfer(PRODUCT, "o-1").in_doubt


def test_a_current_copy_may_settle_or_backdate_the_attempt(ledger):
    [pending] = ledger.save_transfers([_transfer("o-1", TransferStatus.PENDING)])
    marked = ledger.mark_transfer_attempt(pending, "transfer-1")

    # Stripe refused for good: nothing was created, the row is no longer in doubt.
    [settled] = ledger.save_transfers(
        [replace(marked, status=TransferStatus.FAILED, attempted_at=None)]
    )
    assert not settled.in_doubt and settled.attempts == 1
    assert not ledger.get_transfer(PRODUCT, "o-1").in_doubt

    remarked = ledger.mark_transfer_attempt(settled, "transfer-1-retry1")
    older = remarked.attempted_at - timedelta(hours=48)
    [backdated] = ledger.save_transfers([replace(remarked, attempted_at=older)])
    assert (backdated.attempted_at, backdated.idempotency_key, backdated.attempts) == (
        older,
        "transfer-1-retry1",
        2,
    )
    assert ledger.get_transfer(PRODUCT, "o-1") == backdated


def test_mark_attempt_refuses_created_or_unsaved_rows(ledger):
    [created] = ledger.save_transfers(
        [_transfer("o-1", TransferStatus.CREATED, transfer_id="tr_1")]
    )

    with pytest.raises(LedgerConflictError, match="already has transfer_id tr_1"):
        ledger.mark_transfer_attempt(created, "transfer-1")
    with pytest.raises(LedgerConflictError, match="o-2 is not in the ledger"):
        ledger.mark_transfer_attempt(_transfer("o-2", TransferStatus.PENDING), "transfer-2")
    with pytest.raises(ValueError, match="idempotency key"):
        ledger.mark_transfer_attempt(created, "")


# -- streaming --------------------------------------------------------------------------------


def test_iter_transfers_streams_in_batches_filtered_by_type_and_status(ledger):
    records = [_transfer(f"o-{i:03}") for i in range(25)]
    records += [_transfer(f"f-{i}", TransferStatus.FAILED) for i in range(3)]
    records += [
        _transfer(f"c-{i}", TransferStatus.CREATED, transfer_id=f"tr_{i}") for i in range(4)
    ]
    records += [_transfer(f"s-{i}", type=TransferType.SUBSCRIPTION) for i in range(5)]
    ledger.save_transfers(records)

    batches = list(
        ledger.iter_transfers(
            types=ORDER_TRANSFER_TYPES,
            statuses=[TransferStatus.ON_HOLD, TransferStatus.FAILED],
            batch_size=10,
        )
    )

    assert [len(b) for b in batches] == [10, 10, 8]
    seen = [r.mirakl_id for b in batches for r in b]
    assert seen == [f"o-{i:03}" for i in range(25)] + [f"f-{i}" for i in range(3)]
    ids = [r.id for b in batches for r in b]
    assert ids == sorted(ids)


def test_iter_transfers_reads_lazily(ledger):
    ledger.save_transfers([_transfer(f"o-{i}") for i in range(4)])
    batches = ledger.iter_transfers(
        types=[PRODUCT], statuses=[TransferStatus.ON_HOLD], batch_size=2
    )

    first = next(batches)
    ledger.save_transfers([_transfer("late")])  # written after the first batch was read
    rest = [r.mirakl_id for b in batches for r in b]

    assert [r.mirakl_id for r in first] == ["o-0", "o-1"]
    assert rest == ["o-2", "o-3", "late"]


def test_iter_transfers_is_stable_while_rows_leave_the_filter(ledger):
    ledger.save_transfers([_transfer(f"o-{i:02}") for i in range(35)])
    seen: list[str] = []

    for batch in ledger.iter_transfers(
        types=[PRODUCT], statuses=[TransferStatus.ON_HOLD], batch_size=10
    ):
        seen += [r.mirakl_id for r in batch]
        # Processing moves every row of the batch out of ON_HOLD (offset paging would skip rows).
        ledger.save_transfers([_transfer(r.mirakl_id, TransferStatus.PENDING) for r in batch])

    assert seen == [f"o-{i:02}" for i in range(35)]
    assert ledger.count_transfers_by_status()["TRANSFER_PENDING"] == 35


def test_iter_transfers_with_empty_filters_or_bad_batch_size(ledger):
    ledger.save_transfers([_transfer("o-1")])

    assert list(ledger.iter_transfers(types=[PRODUCT], statuses=[])) == []
    with pytest.raises(ValueError, match="batch_size"):
        ledger.iter_transfers(types=[PRODUCT], statuses=[TransferStatus.ON_HOLD], batch_size=0)


def test_count_transfers_by_status(ledger):
    ledger.save_transfers(
        [_transfer("o-1"), _transfer("o-2"), _transfer("o-3", TransferStatus.ABORTED)]
        + [_transfer("s-1", TransferStatus.ABORTED, type=TransferType.EXTRA_CREDITS)]
    )

    all_types = ledger.count_transfers_by_status()
    orders = ledger.count_transfers_by_status(ORDER_TRANSFER_TYPES)

    assert all_types["TRANSFER_ON_HOLD"] == 2 and all_types["TRANSFER_ABORTED"] == 2
    assert orders["TRANSFER_ABORTED"] == 1 and orders["TRANSFER_CREATED"] == 0
    assert set(orders) == {s.value for s in TransferStatus}


# -- volume -----------------------------------------------------------------------------------


def test_save_of_100_records_uses_a_bounded_number_of_statements(ledger):
    with _StatementCounter() as first:
        ledger.save_transfers([_transfer(f"o-{i}") for i in range(100)])
    with _StatementCounter() as second:
        ledger.save_transfers([_transfer(f"o-{i}", TransferStatus.PENDING) for i in range(100)])

    assert len(first.statements) <= 6, first.statements
    assert len(second.statements) <= 6, second.statements


def test_save_1000_transfers_in_one_call(ledger):
    records = [
        _transfer(f"o-{i:04}", TransferStatus.PENDING, amount=i + 1, currency="JPY")
        for i in range(1000)
    ]

    saved = ledger.save_transfers(records, run_id="bulk")
    resaved = ledger.save_transfers(
        [
            _transfer(
                r.mirakl_id,
                TransferStatus.CREATED,
                amount=r.amount,
                currency="JPY",
                transfer_id=f"tr_{r.mirakl_id}",
            )
            for r in saved
        ]
    )

    assert len({r.id for r in saved}) == 1000
    assert [r.id for r in resaved] == [r.id for r in saved]
    found = ledger.get_transfers(PRODUCT, [r.mirakl_id for r in records])
    assert len(found) == 1000
    assert sum(r.amount for r in found.values()) == sum(range(1, 1001))
    assert all(r.transfer_id == f"tr_{r.mirakl_id}" for r in found.values())
    assert ledger.count_transfers_by_status()["TRANSFER_CREATED"] == 1000
    assert len(ledger.events_for("transfer", saved[999].id)) == 2


def test_concurrent_writers_do_not_lose_rows(ledger, open_ledger):
    writers = 4
    ledgers = [open_ledger() for _ in range(writers)]
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        barrier.wait()
        try:
            for chunk in range(5):
                ledgers[n].save_transfers(
                    [_transfer(f"w{n}-{chunk}-{i}") for i in range(20)], run_id=f"w{n}"
                )
        except BaseException as exc:  # asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert ledger.count_transfers_by_status()["TRANSFER_ON_HOLD"] == writers * 5 * 20
