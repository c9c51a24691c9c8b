"""The console's queries against a real ledger (SQLite and PostgreSQL): figures, lists, history."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from mirakl_connector.ledger.queries import (
    ConsoleQueries,
    DateRange,
    ItemFilters,
    MovedRow,
    create_reader_engine,
    totals,
)

from .scenario import OLD_DAY, TODAY, YESTERDAY, fill, move_events


@pytest.fixture
def scenario(ledger, ledger_url) -> Iterator[tuple[ConsoleQueries, dict[str, int]]]:
    ids = fill(ledger)
    engine = create_reader_engine(ledger_url)  # the console's (SQLite: the file mapped)
    move_events(engine, "transfer", ids["ORD-2-A"], OLD_DAY)
    move_events(engine, "transfer", ids["R-1"], YESTERDAY)
    yield ConsoleQueries(engine), ids
    engine.dispose()


def test_moved_per_day_currency_provider_and_workflow(scenario):
    queries, _ = scenario
    rows = queries.moved(DateRange.last_days())
    assert rows == [
        MovedRow(YESTERDAY, "EUR", "stripe", "reversal", 1, 300),
        MovedRow(TODAY, "EUR", "hyperwallet", "hyperwallet payment", 1, 2000),
        MovedRow(TODAY, "EUR", "stripe", "payout", 1, 5000),
        MovedRow(TODAY, "EUR", "stripe", "refund", 1, 500),
        MovedRow(TODAY, "EUR", "stripe", "split", 1, 1000),
    ]
    # held, failed, in-doubt and never-sent rows moved nothing; the JPY split is 40 days old
    assert totals(rows).by_currency == {"EUR": 8800}


def test_moved_range_and_filters(scenario):
    queries, _ = scenario
    old = queries.moved(DateRange(OLD_DAY, OLD_DAY))
    assert old == [MovedRow(OLD_DAY, "JPY", "stripe", "split", 1, 1500)]
    assert queries.moved(DateRange.last_days(), provider="hyperwallet") == [
        MovedRow(TODAY, "EUR", "hyperwallet", "hyperwallet payment", 1, 2000)
    ]
    assert [r.workflow for r in queries.moved(DateRange.last_days(), workflow="split")] == ["split"]
    assert queries.moved(DateRange.last_days(), currency="JPY") == []
    wide = queries.moved(DateRange(OLD_DAY, TODAY))
    assert totals(wide).by_currency == {"EUR": 8800, "JPY": 1500}


def test_date_range_refuses_reversed_and_too_wide():
    with pytest.raises(ValueError, match="before it starts"):
        DateRange(TODAY, YESTERDAY)
    with pytest.raises(ValueError, match="at most"):
        DateRange(TODAY - timedelta(days=400), TODAY)


def test_waiting_grouped_by_reason_with_oldest(scenario):
    queries, _ = scenario
    groups = queries.summary("waiting")
    assert [(g.workflow, g.reason, g.count) for g in groups] == [
        ("split", "KYC pending", 2),
        ("payout", "payouts disabled", 1),
    ]
    assert all(g.oldest.tzinfo is not None for g in groups)


def test_failed_list_has_reason_and_attempts(scenario):
    queries, ids = scenario
    page = queries.items("failed")
    assert page.total == 2
    got = {(i.entity, i.mirakl_id, i.reason) for i in page.items}
    assert got == {
        ("transfer", "ORD-5-A", "insufficient funds"),
        ("hyperwallet_payment", "9103-operatorFee", "negative operator commission"),
    }


def test_in_doubt_is_sent_without_provider_id(scenario):
    queries, ids = scenario
    page = queries.items("in_doubt")
    assert {(i.entity, i.id) for i in page.items} == {
        ("transfer", ids["ORD-6-A"]),
        ("hyperwallet_payment", ids["9104"]),
    }
    transfer = next(i for i in page.items if i.entity == "transfer")
    assert transfer.attempts == 1 and transfer.attempted_at is not None
    assert transfer.provider_object_id is None


def test_item_filters_and_pagination(scenario):
    queries, ids = scenario
    waiting = queries.items("waiting", size=2, page=1)
    assert waiting.total == 3 and len(waiting.items) == 2 and waiting.pages == 2
    second = queries.items("waiting", size=2, page=2)
    assert len(second.items) == 1
    assert {i.key for i in waiting.items + second.items} == {
        f"transfer:{ids['ORD-3-A']}",
        f"transfer:{ids['ORD-4-A']}",
        f"payout:{ids['9001']}",
    }
    assert queries.items("waiting", ItemFilters(workflow="payout")).total == 1
    assert queries.items("waiting", ItemFilters(shop_id=3)).total == 2
    assert queries.items("waiting", ItemFilters(currency="usd")).total == 0
    assert queries.items(None, ItemFilters(currency="usd")).total == 1
    by_text = queries.items(None, ItemFilters(text_id="tr_1")).items
    assert [i.mirakl_id for i in by_text] == ["ORD-1-A"]
    assert queries.items(None, ItemFilters(text_id="acct_seven")).items[0].mirakl_id == "9001"
    assert queries.items(None, ItemFilters(status="REFUND_CREATED")).total == 1
    assert queries.items(None, ItemFilters(provider="hyperwallet")).total == 3
    # a filter on shop skips refunds (they have no shop) instead of failing
    assert queries.items(None, ItemFilters(workflow="refund", shop_id=1)).total == 0
    with pytest.raises(ValueError):
        queries.items("waiting", size=10_000)


def test_history_of_one_item(scenario):
    queries, ids = scenario
    item = queries.get_item("hyperwallet_payment", ids["9101"])
    assert item is not None and item.provider_object_id == "pmt-1"
    history = queries.history("hyperwallet_payment", ids["9101"])
    assert [(h.old_status, h.new_status, h.run_id) for h in history] == [
        (None, "HW_PAYMENT_PENDING", "run_hw"),
        ("HW_PAYMENT_PENDING", "HW_PAYMENT_CREATED", "run_hw"),
        ("HW_PAYMENT_CREATED", "HW_PAYMENT_COMPLETED", "run_hw_status"),
    ]
    held = queries.history("transfer", ids["ORD-3-A"])
    assert [(h.new_status, h.reason) for h in held] == [("TRANSFER_ON_HOLD", "KYC pending")]
    assert queries.get_item("nope", 1) is None
    assert queries.get_item("transfer", 999_999) is None


def test_items_of_one_run_whatever_their_state(scenario):
    """What a run summary links to: every row the run wrote a status event for."""
    queries, ids = scenario
    page = queries.items(None, ItemFilters(run_id="run_split"))
    assert sorted(i.mirakl_id for i in page.items) == ["ORD-1-A", "ORD-2-A", "R-1"]
    hw = queries.items(None, ItemFilters(run_id="run_hw"))
    assert sorted(i.mirakl_id for i in hw.items) == ["9101", "9103-operatorFee", "9104"]
    assert queries.items("failed", ItemFilters(run_id="run_hw")).total == 1
    assert queries.items(None, ItemFilters(run_id="no such run")).total == 0
    assert [i.mirakl_id for i in queries.iter_items(None, ItemFilters(run_id="run_refund"))] == [
        "RF-1"
    ]


@pytest.mark.parametrize("batch", [1, 2, 3, 20_000])
def test_export_batches_follow_the_keyset_without_loss_or_repeat(scenario, batch):
    """The CSV export reads in keyset batches (created_at, entity, id): any batch size gives
    every item once, in the page's order (rows of one save share created_at across tables)."""
    queries, _ = scenario
    expected = [(i.entity, i.id) for i in queries.items(None, size=500).items]
    assert len(expected) == 13  # 7 transfers, 1 refund, 2 payouts, 3 Hyperwallet payments
    got = [(i.entity, i.id) for i in queries.iter_items(None, batch=batch)]
    assert got == expected
    waiting = [(i.entity, i.id) for i in queries.iter_items("waiting", batch=batch)]
    assert waiting == [(i.entity, i.id) for i in queries.items("waiting").items]


def test_export_rows_carry_the_same_instants_as_text(scenario):
    """The export's timestamps are formatted by the database, the same ISO text on both
    backends (sortable as the instants are), for the very instants the page shows."""
    from datetime import datetime

    queries, _ = scenario
    shown = {(i.entity, i.id): i for i in queries.items(None, size=500).items}
    rows = list(queries.iter_rows(None, times_as_text=True, batch=2))
    assert [(r.entity, r.id) for r in rows] == list(shown)
    for row in rows:
        item = shown[(row.entity, row.id)]
        assert len(row.created_at) == len("2026-05-01T12:34:56.000000+00:00")
        assert row.created_at.endswith("+00:00") and row.created_at[10] == "T"
        assert datetime.fromisoformat(row.created_at) == item.created_at
        assert datetime.fromisoformat(row.updated_at) == item.updated_at
        if item.attempted_at is None:
            assert row.attempted_at is None
        else:
            assert datetime.fromisoformat(row.attempted_at) == item.attempted_at


def test_the_console_maps_a_sqlite_ledger_and_leaves_writers_as_they_were(tmp_path):
    """The console's read connections map the file (its large reads cost about half); the
    workflows' connections keep SQLite's default."""
    from mirakl_connector.ledger import Ledger
    from mirakl_connector.ledger.engine import create_ledger_engine
    from mirakl_connector.ledger.queries import READER_SQLITE_MMAP_BYTES

    url = Ledger.default_sqlite_url(tmp_path)
    Ledger(url).dispose()
    reader, plain = create_reader_engine(url), create_ledger_engine(url)
    try:
        with reader.connect() as conn:
            mapped = conn.exec_driver_sql("PRAGMA mmap_size").scalar_one()
            assert 0 < mapped <= READER_SQLITE_MMAP_BYTES
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        with plain.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA mmap_size").scalar_one() == 0
    finally:
        reader.dispose()
        plain.dispose()
