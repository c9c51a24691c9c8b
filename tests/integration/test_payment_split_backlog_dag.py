"""Issue 15 through the payment split DAG: a run costs what changed, not what waits.

The demo marketplace plus 250 orders waiting for acceptance. After the first (full) run, a
scheduled run re-evaluates a waiting row only when its Mirakl order changed (OR11 by
``start_update_date``) or its ledger-side condition did (account mapped, KYC cleared); the full
sweep, on its own cadence, catches a change the update-date read missed.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from mirakl_connector.ledger import Ledger, TransferStatus, TransferType
from mirakl_connector.ledger.records import AccountMapping

from .test_payment_split_dag import demo_env, run_dag  # noqa: F401 - the fixture is used

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

WAITING = [f"WAIT-{n}-A" for n in range(250)]
SWEEP_KEY = "product_payment_split_full_sweep"
LONG_AGO = datetime(2026, 11, 1, tzinfo=UTC)
CONFIG = {"payment_split": {"product_enabled": True}, "go_live": "2026-01-01T00:00:00Z"}
CHARGE = 20000


@pytest.fixture
def backlog(demo_env, sandbox, monkeypatch):  # noqa: F811 - the fixture imported above
    """250 orders waiting for acceptance, each with its captured charge, and a first run.

    Product orders only: service rows are re-read every run (SPA11 has no date filter).
    """
    monkeypatch.setenv("AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG", json.dumps(CONFIG))
    template = sandbox.order("ORD-1005-A")  # WAITING_ACCEPTANCE, shop 1 (mapped, verified)
    sandbox.put_charges([{"id": f"ch_{i}", "amount": CHARGE, "currency": "eur",
                          "status": "succeeded", "captured": True, "refunded": False}
                         for i in WAITING])  # fmt: skip
    sandbox.put_orders([
        {**template, "id": 20000 + n, "order_id": i, "commercial_id": i.removesuffix("-A"),
         "created_date": f"2026-11-21T19:{n // 60:02}:{n % 60:02}Z",
         "last_updated_date": "2026-11-21T19:00:00Z", "transaction_number": f"ch_{i}"}
        for n, i in enumerate(WAITING)
    ])  # fmt: skip
    run, xcoms = run_dag()
    assert run.state == "success"
    assert any("full sweep" in n for n in xcoms["plan_transfers"]["notes"])
    with Ledger(demo_env) as ledger:
        rows = ledger.get_transfers(TransferType.PRODUCT_ORDER, WAITING)
        assert {r.status for r in rows.values()} == {TransferStatus.ON_HOLD}
        assert len(rows) == len(WAITING)
        # the demo's mappings were seeded a moment ago; in a deployment they are older than
        # the overlap window of the next run: say so, or every run re-reads their shops' rows
        with ledger.engine.begin() as conn:
            for table in ("account_mappings", "payment_mappings"):
                conn.execute(text(f"UPDATE {table} SET updated_at = :at"), {"at": LONG_AGO})
    sandbox.clear_mirakl_calls()
    sandbox.clear_stripe_requests()
    return demo_env


def _accept(sandbox, order_id: str, **fields) -> None:
    """The seller accepts, the customer is debited: the order becomes payable."""
    order = sandbox.order(order_id)
    lines = [{**line, "order_line_state": "SHIPPING"} for line in order.get("order_lines") or []]
    sandbox.patch_order(
        order_id,
        order_state="SHIPPING",
        order_lines=lines,
        acceptance_decision_date="2026-11-21T20:00:00Z",
        customer_debited_date="2026-11-21T20:05:00Z",
        **fields,
    )


def _decided(xcoms) -> set[str]:
    """The rows the plan decided, but the newest order: the creation-date read starts at the
    checkpoint, inclusive (an order created in the same second may come later), so it comes
    again every run."""
    ids = {i for group in xcoms["plan_transfers"]["ids"].values() for i in group}
    return ids - {WAITING[-1]}


def _paid(sandbox) -> list[str]:
    return sorted(t["metadata"]["miraklId"] for t in sandbox.transfers())


def test_an_idle_run_reads_what_changed_not_the_backlog(backlog, sandbox):
    paid_before = _paid(sandbox)

    run, xcoms = run_dag()

    assert run.state == "success"
    or11 = sandbox.mirakl_calls("OR11")
    # one update-date read and one creation-date read; the old full re-read took 3 by id
    assert len(or11) <= 2
    assert not any("order_ids" in c["query"] for c in or11)
    assert any("start_update_date" in c["query"] for c in or11)
    assert sandbox.stripe_requests() == []  # no charge listed for orders still waiting
    assert _decided(xcoms) == set()  # no waiting row re-decided
    assert _paid(sandbox) == paid_before


def test_a_waiting_order_is_paid_on_the_first_run_after_mirakl_says_it_changed(backlog, sandbox):
    changed = WAITING[:3]  # 1 % of the waiting orders
    for order_id in changed:
        _accept(sandbox, order_id)

    run, xcoms = run_dag()

    assert run.state == "success"
    paid = [t for t in sandbox.transfers() if t["metadata"]["miraklId"] in changed]
    assert sorted(t["metadata"]["miraklId"] for t in paid) == changed
    with Ledger(backlog) as ledger:
        rows = ledger.get_transfers(TransferType.PRODUCT_ORDER, changed)
    assert {r.status for r in rows.values()} == {TransferStatus.CREATED}
    assert sorted((t["amount"], t["currency"]) for t in paid) == sorted(
        (rows[t["metadata"]["miraklId"]].amount, "eur") for t in paid
    )
    assert all(0 < t["amount"] < CHARGE for t in paid)
    assert _decided(xcoms) == set(changed)  # only those rows decided
    assert len(sandbox.mirakl_calls("OR11")) <= 2 + len(changed) // 100 + 1
    # the charges of the three payable orders only (one list page), none for the 247 waiting
    reads = [r for r in sandbox.stripe_requests(method="GET") if r["path"].startswith("/v1/ch")]
    lists = [r for r in reads if r["path"] == "/v1/charges"]
    assert len(lists) <= 1
    # the charges were put now, far from their orders' dates: the list misses them (see
    # charge_prefetch) and each is retrieved once
    assert sorted(r["path"] for r in reads if r not in lists) == sorted(
        f"/v1/charges/ch_{i}" for i in changed
    )

    rerun, _ = run_dag()  # Mirakl's overlap returns them again: nothing moves twice
    assert rerun.state == "success"
    assert len([t for t in sandbox.transfers() if t["metadata"]["miraklId"] in changed]) == 3


def test_a_waiting_order_is_paid_when_its_shop_account_is_mapped(backlog, sandbox):
    """ORD-1012-A (shop 5) waits for a Stripe account: mapping it pays it on the next run."""
    with Ledger(backlog) as ledger:
        held = ledger.get_transfer(TransferType.PRODUCT_ORDER, "ORD-1012-A")
        assert held.status is TransferStatus.ON_HOLD
        assert "Cannot find Stripe account for shop ID 5" in held.status_reason
        sandbox.put_accounts([{"id": "acct_shop5", "payouts_enabled": True,
                               "charges_enabled": True}])  # fmt: skip
        ledger.upsert_account_mapping(
            AccountMapping(mirakl_shop_id=5, stripe_account_id="acct_shop5", kyc_status="APPROVED",
                           payouts_enabled=True, charges_enabled=True)
        )  # fmt: skip

    run, xcoms = run_dag()

    assert run.state == "success"
    assert "ORD-1012-A" in _paid(sandbox)
    assert _decided(xcoms) == {"ORD-1012-A"}
    by_id = [c for c in sandbox.mirakl_calls("OR11") if "order_ids" in c["query"]]
    # the plan's read of its shop's waiting row, then the reconcile task's of what it paid
    assert [c["query"]["order_ids"] for c in by_id] == ["ORD-1012-A", "ORD-1012-A"]


def test_a_waiting_order_is_paid_when_its_sellers_kyc_clears(backlog, sandbox):
    """ORD-1017-A (shop 7, KYC PENDING_SUBMISSION) waits; the KYC status clears in the ledger."""
    with Ledger(backlog) as ledger:
        held = ledger.get_transfer(TransferType.PRODUCT_ORDER, "ORD-1017-A")
        assert held.status is TransferStatus.ON_HOLD
        assert "not verified yet" in held.status_reason
        mapping = ledger.account_mappings_by_shop([7])[7]
        sandbox.patch_account("acct_demo_berlin", payouts_enabled=True, charges_enabled=True)
        ledger.upsert_account_mapping(replace(mapping, kyc_status="APPROVED"))

    run, _ = run_dag()

    assert run.state == "success"
    assert "ORD-1017-A" in _paid(sandbox)


def test_the_full_sweep_catches_a_change_the_update_date_read_missed(backlog, sandbox, monkeypatch):
    config = {**CONFIG, "payment_split": {"product_enabled": True, "backlog_full_sweep_hours": 6}}
    monkeypatch.setenv("AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG", json.dumps(config))
    # accepted, but its update date left in the past (a latency longer than any overlap)
    _accept(sandbox, WAITING[7], last_updated_date="2026-11-21T19:00:00Z")

    run, _ = run_dag()
    assert run.state == "success"
    assert WAITING[7] not in _paid(sandbox)  # the cheap read cannot see it

    with Ledger(backlog) as ledger:  # six hours later, the full sweep is due
        swept = datetime.fromisoformat(ledger.get_checkpoint(SWEEP_KEY))
        ledger.set_checkpoint(SWEEP_KEY, (swept - timedelta(hours=6)).isoformat())
    run, xcoms = run_dag()
    assert run.state == "success"
    assert WAITING[7] in _paid(sandbox)
    assert any("full sweep" in n for n in xcoms["plan_transfers"]["notes"])
    with Ledger(backlog) as ledger:
        swept_now = datetime.fromisoformat(ledger.get_checkpoint(SWEEP_KEY))
    assert swept_now > datetime.now(UTC) - timedelta(minutes=5)


def test_a_manual_since_run_moves_neither_backlog_checkpoint(backlog, sandbox):
    with Ledger(backlog) as ledger:
        before = {
            k: ledger.get_checkpoint(k)
            for k in (SWEEP_KEY, "product_payment_split_backlog_checked")
        }
    run, _ = run_dag(since="2026-11-21T00:00:00+00:00")
    assert run.state == "success"
    with Ledger(backlog) as ledger:
        assert {k: ledger.get_checkpoint(k) for k in before} == before
