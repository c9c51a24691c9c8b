"""The batch runner: one bad item never stops the batch, and the summary says what happened."""

from __future__ import annotations

import json

import pytest

from mirakl_connector.airflow.operators.report import merge_summaries, render_report
from mirakl_connector.core.batch import BatchSummary, ItemOutcome, chunked, run_batch
from mirakl_connector.core.errors import ConfigurationError, InvalidItemError, PaymentProviderError


def handle(item):
    if item == "bad-data":
        raise InvalidItemError("total_price is missing", item_id=item)
    if item == "stripe-down":
        raise PaymentProviderError("Stripe unreachable")
    if item == "bug":
        raise ZeroDivisionError("oops")
    if item == "held":
        return ItemOutcome(item, "TRANSFER_ON_HOLD", "Order is not ready yet, status is STAGING")
    return ItemOutcome(item, "TRANSFER_CREATED", amount=1050, currency="eur")


def test_failures_are_recorded_and_the_batch_goes_on():
    items = ["ok-1", "bad-data", "stripe-down", "bug", "held", "ok-2"]
    summary = run_batch(items, handle, item_id=str, summary=BatchSummary("w", "step"))
    assert summary.counts == {"TRANSFER_CREATED": 2, "FAILED": 3, "TRANSFER_ON_HOLD": 1}
    assert summary.failed_total == 3
    reasons = {f["id"]: f["reason"] for f in summary.failed}
    assert reasons["bad-data"] == "invalid data: total_price is missing"
    assert reasons["stripe-down"] == "Stripe unreachable"
    assert reasons["bug"].startswith("unexpected error: ZeroDivisionError")
    data = summary.to_dict()
    assert data["amounts"] == {"TRANSFER_CREATED": {"EUR": "21.00"}}
    assert {"status": "TRANSFER_ON_HOLD", "reason": "Order is not ready yet, status is STAGING",
            "count": 1} in data["reasons"]  # fmt: skip
    json.dumps(data)


def test_a_configuration_error_stops_the_step():
    def wrong_key(_item):
        raise ConfigurationError("Stripe rejected the API key")

    with pytest.raises(ConfigurationError):
        run_batch(["a", "b"], wrong_key, item_id=str, summary=BatchSummary("w", "s"))


def test_dry_run_lists_every_item_with_its_amount():
    summary = run_batch(["ok", "held"], handle, item_id=str,
                        summary=BatchSummary("w", "s", dry_run=True))  # fmt: skip
    assert summary.to_dict()["items"] == [
        {"id": "ok", "status": "TRANSFER_CREATED", "amount": "10.50 EUR"},
        {"id": "held", "status": "TRANSFER_ON_HOLD",
         "reason": "Order is not ready yet, status is STAGING"},
    ]  # fmt: skip


def test_merge_keeps_counts_amounts_failures_and_reasons():
    a = run_batch(["ok-1", "bad-data"], handle, item_id=str, summary=BatchSummary("w", "s"))
    b = run_batch(["held", "ok-2"], handle, item_id=str, summary=BatchSummary("w", "s"))
    a.merge(b)
    assert a.counts == {"TRANSFER_CREATED": 2, "FAILED": 1, "TRANSFER_ON_HOLD": 1}
    assert a.amounts["TRANSFER_CREATED"] == {"EUR": 2100}
    assert a.failed_total == 1 and len(a.reasons) == 2


def test_report_shows_why_items_wait():
    held = run_batch(["held"], handle, item_id=str, summary=BatchSummary("w", "plan"))
    report = merge_summaries({"plan_transfers": held.to_dict()})
    assert report["reasons"][0]["step"] == "plan_transfers"
    text = render_report(report)
    assert "Order is not ready yet, status is STAGING" in text


def test_chunked_streams_lists():
    assert list(chunked(iter(range(5)), 2)) == [[0, 1], [2, 3], [4]]
    assert list(chunked([], 3)) == []


def test_read_ahead_keeps_order_and_reads_at_most_depth_ahead():
    import threading

    from mirakl_connector.core.batch import read_ahead

    produced: list[int] = []
    taken = threading.Event()  # never set: only a pause

    def source():
        for i in range(6):
            produced.append(i)
            yield i

    seen = []
    it = read_ahead(source(), depth=2)
    seen.append(next(it))
    taken.wait(0.3)  # give the reader time to run ahead
    # one item handed over, two waiting in the queue, one held by the blocked reader
    assert len(produced) <= 4
    seen.extend(it)
    assert seen == [0, 1, 2, 3, 4, 5]


def test_read_ahead_raises_the_readers_error_where_it_happened():
    from mirakl_connector.core.batch import read_ahead

    def source():
        yield 1
        yield 2
        raise PaymentProviderError("OR11 failed: 503")

    got = []
    with pytest.raises(PaymentProviderError, match="OR11 failed"):
        for item in read_ahead(source()):
            got.append(item)
    assert got == [1, 2]


def test_a_caller_that_stops_early_stops_the_reader():
    import threading

    from mirakl_connector.core.batch import read_ahead

    finished = threading.Event()

    def source():
        try:
            yield from range(1000)
        finally:
            finished.set()

    for item in read_ahead(source()):
        if item == 3:
            break
    assert finished.wait(5), "the reader thread kept reading after the caller stopped"


def test_residues_of_stripe_rounding_are_summed_shown_and_reported():
    summary = BatchSummary("payment_split", "execute")
    summary.add(ItemOutcome("A", "TRANSFER_CREATED", amount=9120, currency="KWD", residue=5))
    summary.add(ItemOutcome("B", "TRANSFER_CREATED", amount=9120, currency="KWD", residue=3))
    summary.add(ItemOutcome("C", "TRANSFER_CREATED", amount=1000, currency="EUR"))
    data = summary.to_dict()
    assert data["amounts"]["TRANSFER_CREATED"] == {"EUR": "10.00", "KWD": "18.240"}
    assert data["residues"] == {"TRANSFER_CREATED": {"KWD": "0.008"}}
    assert "residue not moved (Stripe rounding): 0.008 KWD" in summary.describe()
    report = merge_summaries({"create_transfers": data})
    assert report["residues"] == {"create_transfers": {"TRANSFER_CREATED": {"KWD": "0.008"}}}
    assert "residue not moved (Stripe rounding): 0.008 KWD" in render_report(report)
    # no residue, no key: existing summaries are unchanged
    plain = BatchSummary("payment_split", "execute")
    plain.add(ItemOutcome("C", "TRANSFER_CREATED", amount=1000, currency="EUR"))
    assert "residues" not in plain.to_dict()
