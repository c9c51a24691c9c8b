"""Issue 15 for refunds: a run costs what changed, not what waits.

150 orders, each with one refund Mirakl waits for (PA12) and no known payment: 150 refunds
ON_HOLD after the first run. A scheduled run between two full sweeps re-decides a waiting
refund only when what it waits for changed in the ledger (its order transfer, its payment
mapping), and reads its order from Mirakl for a reversal only once the reversal can move. PA12
has no filter (reference, PA12): it is still read in full every run, for new refunds. Calls are
counted at the sandbox.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from mirakl_connector.ledger.records import (
    PaymentMapping,
    PaymentMappingStatus,
    RefundStatus,
    TransferStatus,
    TransferType,
)
from mirakl_connector.stripe.refunds import (
    BACKLOG_NAME,
    REVERSALS_BACKLOG_NAME,
    PaymentRefund,
    PaymentRefundSettings,
)

from .test_refunds import TEST_GO_LIVE, load, product_order, run_all, split_done

ORDERS = [f"B-{n}-A" for n in range(150)]
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)


def _order(n: int) -> dict:
    refund = {"id": f"R-{n}", "amount": "30.00", "commission_total_amount": "3.00",
              "shipping_taxes": [], "taxes": []}  # fmt: skip
    return product_order(ORDERS[n], refunds=[refund])


def _age(ledger, *tables: str) -> None:
    """Say that these ledger rows changed long before the previous run (as in a deployment,
    where a change is seen by the runs of the next 10 minutes only)."""
    with ledger.engine.begin() as conn:
        for table in tables:
            conn.execute(text(f"UPDATE {table} SET updated_at = :at"), {"at": LONG_AGO})


def _sweep_due(ledger, name: str = BACKLOG_NAME) -> None:
    ledger.set_checkpoint(f"{name}_full_sweep", "2000-01-01T00:00:00+00:00")


def _decided(summary) -> set[str]:
    return {i for ids in summary.ids.values() for i in ids}


@pytest.fixture
def ledger(workflow_ledger):
    return workflow_ledger


@pytest.fixture
def make_job(mirakl, stripe_gateway, ledger):
    def make():
        return PaymentRefund(
            mirakl=mirakl, stripe=stripe_gateway, ledger=ledger, go_live=TEST_GO_LIVE,
            settings=PaymentRefundSettings(), run_id="run-1",
        )  # fmt: skip

    return make


@pytest.fixture
def backlog(sandbox, make_job, ledger):
    load(sandbox, [_order(n) for n in range(len(ORDERS))])
    planned, _, _ = run_all(make_job())
    assert planned.counts == {"REFUND_ON_HOLD": len(ORDERS)}
    assert ledger.get_checkpoint(f"{BACKLOG_NAME}_full_sweep")  # the first run swept
    # the first run recorded the 150 refunds a moment ago; in a deployment the next runs come
    # later than the 10 minutes of overlap: say so, or the next run re-decides them all
    _age(ledger, "refunds", "transfers", "payment_mappings")
    sandbox.clear_mirakl_calls()
    sandbox.clear_stripe_requests()
    return ledger


def test_an_idle_run_reads_pa12_only_and_decides_nothing(backlog, sandbox, make_job):
    planned, refunded, reversed_ = run_all(make_job())

    assert planned.total == 0  # no waiting refund re-decided
    assert refunded.total == 0 and reversed_.total == 0
    assert sandbox.stripe_requests() == []
    # PA12 has no filter: its 150 orders are 2 pages; nothing else is read
    assert [c["endpoint"] for c in sandbox.mirakl_calls()] == ["PA12", "PA12"]
    assert any("changes since" in n for n in planned.notes)

    _sweep_due(backlog)  # the daily sweep re-decides every waiting refund
    swept, _, _ = run_all(make_job())
    assert swept.counts == {"REFUND_ON_HOLD": len(ORDERS)}
    assert any("full sweep" in n for n in swept.notes)


def test_a_refund_is_paid_on_the_first_run_after_its_payment_is_recorded(
    backlog, sandbox, make_job
):
    """Our side: payment validation (or a charge event) records the order's payment."""
    backlog.upsert_payment_mapping(
        PaymentMapping("ch_paid", "B-3", PaymentMappingStatus.CAPTURED, stripe_amount=10800)
    )

    planned, refunded, _ = run_all(make_job())

    assert _decided(planned) == {"R-3"}
    [refund] = sandbox.refunds()
    assert (refund["charge"], refund["amount"], refund["metadata"]["miraklRefundId"]) == (
        "ch_paid",
        3000,
        "R-3",
    )
    [pa02] = sandbox.mirakl_calls("PA02")
    assert [r["refund_id"] for r in pa02["body"]["refunds"]] == ["R-3"]
    row = backlog.get_refunds(["R-3"])["R-3"]
    assert row.status is RefundStatus.CREATED
    # the charge of the one changed refund, not of the 149 still waiting
    reads = [r for r in sandbox.stripe_requests(method="GET") if "/charges" in r["path"]]
    assert len(reads) == 1
    # the reversal waits for the split: its order is not read from Mirakl
    assert sandbox.mirakl_calls("OR11") == []
    reversal = backlog.get_transfer(TransferType.REFUND, "R-3")
    assert reversal.status is TransferStatus.ON_HOLD
    assert reversal.status_reason.startswith("Payment split has to occur")


def test_a_refund_and_its_reversal_go_on_the_first_run_after_the_split(
    backlog, sandbox, make_job, stripe_gateway
):
    """Our side: the payment split makes the order's transfer (its charge is the payment)."""
    transfer = split_done(backlog, stripe_gateway, order_id=ORDERS[5])
    sandbox.clear_stripe_requests()

    planned, _, reversed_ = run_all(make_job())

    assert _decided(planned) == {"R-5"}
    assert [r["metadata"]["miraklRefundId"] for r in sandbox.refunds()] == ["R-5"]
    [reversal] = sandbox.reversals()
    assert (reversal["transfer"], reversal["amount"]) == (transfer, 2700)  # 30 - 3 commission
    assert [c["query"].get("order_ids") for c in sandbox.mirakl_calls("OR11")] == [ORDERS[5]]

    sandbox.clear_stripe_requests()
    sandbox.clear_mirakl_calls()
    again, _, _ = run_all(make_job())  # the overlap sees the change again: nothing moves twice
    assert len(sandbox.refunds()) == 1 and len(sandbox.reversals()) == 1
    assert sandbox.stripe_requests(method="POST") == []


def test_a_new_refund_mirakl_lists_is_paid_on_the_first_run(backlog, sandbox, make_job):
    """Mirakl's side: PA12 lists a new refund (its order paid); the 150 waiting stay put."""
    backlog.upsert_payment_mapping(
        PaymentMapping("ch_paid", "N", PaymentMappingStatus.CAPTURED, stripe_amount=10800)
    )
    _age(backlog, "payment_mappings")
    new = product_order("N-A", refunds=[{"id": "R-new", "amount": "12.00",
                                         "commission_total_amount": "1.20",
                                         "shipping_taxes": [], "taxes": []}])  # fmt: skip
    sandbox.put_orders([new])

    planned, _, _ = run_all(make_job())

    assert _decided(planned) == {"R-new"}
    assert [(r["metadata"]["miraklRefundId"], r["amount"]) for r in sandbox.refunds()] == [
        ("R-new", 1200)
    ]


def test_the_full_sweep_catches_a_capture_the_ledger_did_not_see(backlog, sandbox, make_job):
    authorized = {"id": "ch_auth", "amount": 10800, "currency": "eur", "status": "succeeded",
                  "captured": False, "refunded": False}  # fmt: skip
    sandbox.put_charges([authorized])
    backlog.upsert_payment_mapping(PaymentMapping("ch_auth", "B-7", stripe_amount=10800))
    planned, _, _ = run_all(make_job())
    assert _decided(planned) == {"R-7"}
    row = backlog.get_refunds(["R-7"])["R-7"]
    assert row.status is RefundStatus.ON_HOLD and "not captured" in row.status_reason

    # captured at Stripe with no event reaching the connector, long after the mapping changed
    _age(backlog, "payment_mappings")
    sandbox.put_charges([{**authorized, "captured": True}])
    sandbox.clear_stripe_requests()
    missed, _, _ = run_all(make_job())
    assert missed.total == 0 and sandbox.refunds() == []
    assert sandbox.stripe_requests() == []

    _sweep_due(backlog)
    swept, _, _ = run_all(make_job())
    assert [r["metadata"]["miraklRefundId"] for r in sandbox.refunds()] == ["R-7"]
    assert swept.counts["REFUND_PENDING"] == 1
    assert backlog.get_refunds(["R-7"])["R-7"].status is RefundStatus.CREATED


def test_sharded_reverse_steps_each_keep_their_own_clock(
    backlog, sandbox, make_job, stripe_gateway
):
    backlog.upsert_payment_mapping(
        PaymentMapping("ch_paid", "B-9", PaymentMappingStatus.CAPTURED, stripe_amount=10800)
    )
    job = make_job()
    job.plan()
    job.refund()
    for shard in range(2):
        job.reverse(shard=shard, shards=2)
    assert all(
        backlog.get_checkpoint(f"{REVERSALS_BACKLOG_NAME}_{i}_of_2_backlog_checked")
        for i in range(2)
    )
    assert backlog.get_transfer(TransferType.REFUND, "R-9").status is TransferStatus.ON_HOLD
    sandbox.clear_mirakl_calls()

    split_done(backlog, stripe_gateway, order_id=ORDERS[9])
    decided = [make_job().reverse(shard=shard, shards=2) for shard in range(2)]

    assert sum(s.total for s in decided) == 1
    assert [r["metadata"]["miraklId"] for r in sandbox.reversals()] == ["R-9"]
    assert len(sandbox.mirakl_calls("OR11")) == 1
