"""Reconciliation through the DAGs (``dag.test``) against the sandbox's demo marketplace.

What an operator sees: a clean run's report says it reconciles; an object the ledger does not
know, or a ledger row tampered with, turns the report red naming the item, its ids and the
kind; the provider is read with list calls by creation window only, and Mirakl with list calls
(the sandbox records every call).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mirakl_sandbox.scenario import load_scenario
from sqlalchemy import select, update

from mirakl_connector.airflow.demo import seed_ledger
from mirakl_connector.core.money import format_minor
from mirakl_connector.ledger import Ledger, TransferStatus, TransferType
from mirakl_connector.ledger.records import PayoutStatus, RefundStatus
from mirakl_connector.ledger.schema import reconciliation_items, reconciliations, transfers

from .conftest import sandbox_connections  # noqa: TID252

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "include/sandbox/mirakl_sandbox/scenarios/demo.json"
DAGS = ROOT / "dags"


@pytest.fixture
def demo(sandbox, sandbox_server, tmp_path, monkeypatch, airflow_db) -> str:
    """The demo marketplace in the sandbox, its ledger seeded; the ledger's URL."""
    sandbox.reset(load_scenario(DEMO))
    url = Ledger.default_sqlite_url(tmp_path)
    seed_ledger(DEMO, url=url)
    for name, conn in sandbox_connections(sandbox_server.url, url).items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{name}", json.dumps(conn))
    monkeypatch.setenv("AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG", json.dumps(
        {"payment_split": {"product_enabled": True, "service_enabled": True},
         "go_live": "2026-01-01T00:00:00Z"}))  # fmt: skip
    return url


def run_dag(dag_id: str, **conf):
    """Run a DAG; its run, every task's state and the report's merged summary."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / f"{dag_id}.py"))
    assert bag.import_errors == {}
    run = bag.dags[dag_id].test(run_conf=conf or None, logical_date=None)
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    ti = run.get_task_instance("report")
    report = ti.xcom_pull(task_ids="report") or ti.xcom_pull(task_ids="report", key="run_summary")
    return run, states, report


def _stripe_reads(sandbox) -> list[dict]:
    return [r for r in sandbox.stripe_requests(method="GET") if r["status"] == 200]


def _assert_list_calls_only(reads: list[dict], lists: set[str]) -> None:
    """Every read of a reconciled resource is its list by creation window, never an object."""
    for read in reads:
        head = "/".join(read["path"].split("/")[:3])  # /v1/transfers
        if head in lists:
            assert read["path"] == head, f"one call per item: {read['path']}"
            created = read["params"]["created"]  # a run's: from its first call; a day's: the day
            assert "gte" in created and set(created) <= {"gte", "lte"}, read
            assert read["params"]["limit"] == "100"


def _reconciliation(
    url: str, scope_key: str, flow: str = "payment_split"
) -> tuple[dict, list[dict]]:
    with Ledger(url) as ledger, ledger.engine.connect() as conn:
        head = (
            conn.execute(
                select(reconciliations).where(
                    reconciliations.c.scope_key == scope_key, reconciliations.c.flow == flow
                )
            )
            .mappings()
            .one()
        )
        items = (
            conn.execute(
                select(reconciliation_items).where(
                    reconciliation_items.c.reconciliation_id == head["id"]
                )
            )
            .mappings()
            .all()
        )
    return dict(head), [dict(i) for i in items]


def test_a_clean_split_run_reconciles_reading_stripe_with_one_list_call(demo, sandbox):
    run, states, report = run_dag("stripe_payment_split")

    assert run.state == "success" and states["reconcile"] == "success"
    paid = sandbox.transfers()
    assert paid
    assert report["steps"]["reconcile"] == {"MATCHED": len(paid)}
    assert report["headlines"]["reconcile"].startswith("Reconciles: payment_split of this run:")
    assert (
        f"{len(paid)} ledger row(s) agree with Stripe and Mirakl"
        in report["headlines"]["reconcile"]
    )
    assert "**reconcile**: Reconciles" in report["summary_md"]
    # Stripe: the transfers were read with one list call over the run's window, nothing else
    reads = _stripe_reads(sandbox)
    transfer_reads = [r for r in reads if r["path"].startswith("/v1/transfers")]
    assert [r["path"] for r in transfer_reads] == ["/v1/transfers"]
    _assert_list_calls_only(reads, {"/v1/transfers"})
    # Mirakl: the paid product orders with one OR11 call by id (the last one of the run)
    with Ledger(demo) as ledger:
        product = {
            r.mirakl_id
            for batch in ledger.iter_transfers(
                types=[TransferType.PRODUCT_ORDER], statuses=[TransferStatus.CREATED]
            )
            for r in batch
        }
    last = sandbox.mirakl_calls("OR11")[-1]["query"]
    assert sorted(last["order_ids"].split(",")) == sorted(product)

    head, items = _reconciliation(demo, run.run_id)
    assert (head["flow"], head["scope"], head["matched"], head["mismatched"]) == (
        "payment_split",
        "run",
        len(paid),
        0,
    )
    assert head["provider_calls"] == 1
    by_object = {i["provider_object_id"]: i for i in items}
    for transfer in paid:  # each Stripe transfer matched with its amount, in Stripe's unit
        item = by_object[transfer["id"]]
        assert item["kind"] == "MATCHED"
        assert item["provider_amount_raw"] == str(transfer["amount"])
        assert item["mirakl_amount"] is not None and "agrees" in item["reason"]


def test_a_second_transfer_for_an_order_fails_the_report_naming_it(demo, sandbox, stripe_gateway):
    """Someone (or something) made a transfer with the connector's metadata for ORD-1001-A."""
    stray = stripe_gateway.create_transfer(
        amount=500, currency="EUR", destination="acct_demo_lumiere",
        idempotency_key="elsewhere:ORD-1001-A",
        metadata={"miraklId": "ORD-1001-A", "miraklTransferType": "TRANSFER_PRODUCT_ORDER"},
    )  # fmt: skip

    run, states, report = run_dag("stripe_payment_split")

    assert states["reconcile"] == "success"  # it could compare: green
    assert states["report"] == "failed" and run.state == "failed"
    assert report["steps"]["reconcile"]["MISSING_IN_LEDGER"] == 1
    [failure] = [f for f in report["failed"] if f["step"] == "reconcile"]
    assert failure["id"] == f"TRANSFER_PRODUCT_ORDER ORD-1001-A ({stray.id})"
    assert failure["reason"].startswith("MISSING_IN_LEDGER: ")
    assert stray.id in failure["reason"] and "5.00 EUR" in failure["reason"]
    with Ledger(demo) as ledger:
        row = ledger.get_transfer(TransferType.PRODUCT_ORDER, "ORD-1001-A")
    assert row.transfer_id != stray.id and row.transfer_id in failure["reason"]
    assert report["headlines"]["reconcile"].startswith(
        "Does not reconcile: payment_split of this run has 1 mismatch(es) (MISSING_IN_LEDGER 1)"
    )


def test_a_dry_run_says_so_and_reads_nothing(demo, sandbox):
    run, states, report = run_dag("stripe_payment_split", dry_run=True)

    assert run.state == "success"
    assert report["headlines"]["reconcile"].startswith("DRY RUN — nothing moved")
    assert not [r for r in _stripe_reads(sandbox) if r["path"].startswith("/v1/transfers")]
    with Ledger(demo) as ledger, ledger.engine.connect() as conn:
        assert conn.execute(select(reconciliations)).all() == []


def test_tampered_ledger_rows_are_reported_by_the_day_reconciliation(demo, sandbox):
    run, _, _ = run_dag("stripe_payment_split")
    assert run.state == "success"
    with Ledger(demo) as ledger:
        created = sorted(
            (
                r
                for batch in ledger.iter_transfers(
                    types=[TransferType.PRODUCT_ORDER], statuses=[TransferStatus.CREATED]
                )
                for r in batch
                if r.currency == "EUR"
            ),
            key=lambda r: r.mirakl_id,
        )
        changed_amount, lost_id, gone_doc = created[:3]
        real_transfer = lost_id.transfer_id
        with ledger.engine.begin() as conn:
            t = transfers.c
            conn.execute(update(transfers).where(t.id == changed_amount.id).values(
                amount=changed_amount.amount + 1))  # fmt: skip
            conn.execute(update(transfers).where(t.id == lost_id.id).values(
                transfer_id="tr_gone"))  # fmt: skip
            conn.execute(update(transfers).where(t.id == gone_doc.id).values(
                mirakl_id="ORD-9999-A"))  # fmt: skip
    sandbox.clear_stripe_requests()
    sandbox.clear_mirakl_calls()
    today = run.start_date.date().isoformat()

    day_run, states, report = run_dag("payments_reconciliation", day=today)

    assert day_run.state == "failed" and states["report"] == "failed"
    assert {s for t, s in states.items() if t.startswith("reconcile_")} == {"success"}
    failed = sorted((f["id"], f["reason"].split(":")[0]) for f in report["failed"])
    changed = f"TRANSFER_PRODUCT_ORDER {changed_amount.mirakl_id} ({changed_amount.transfer_id})"
    assert failed == sorted([
        (changed, "AMOUNT_MISMATCH"),  # against Stripe's transfer
        (changed, "AMOUNT_MISMATCH"),  # against Mirakl's order
        (f"TRANSFER_PRODUCT_ORDER {lost_id.mirakl_id} (tr_gone)", "MISSING_AT_PROVIDER"),
        (f"TRANSFER_PRODUCT_ORDER {lost_id.mirakl_id} ({real_transfer})", "MISSING_IN_LEDGER"),
        (f"TRANSFER_PRODUCT_ORDER ORD-9999-A ({gone_doc.transfer_id})", "MISSING_IN_MIRAKL"),
    ])  # fmt: skip
    split = report["steps"]["reconcile_payment_split"]
    assert split["AMOUNT_MISMATCH"] == 2  # Stripe and Mirakl disagree with the ledger
    amount_reasons = [f["reason"] for f in report["failed"] if "AMOUNT" in f["reason"]]
    money = format_minor(changed_amount.amount + 1, "EUR")
    assert all(money in r for r in amount_reasons), amount_reasons
    assert any("Stripe" in r and changed_amount.transfer_id in r for r in amount_reasons)
    assert any(f"Mirakl order {changed_amount.mirakl_id}" in r for r in amount_reasons)
    # the other workflows had nothing that day and reconcile
    for flow in ("payment_refund", "seller_settlement"):
        assert report["headlines"][f"reconcile_{flow}"].startswith("Reconciles"), flow
    assert "not configured" in report["headlines"]["reconcile_hyperwallet_invoice_payments"]
    # every read by creation window, none per item; Mirakl's orders by id in one OR11 call
    lists = {"/v1/transfers", "/v1/refunds", "/v1/balance_transactions"}
    reads = _stripe_reads(sandbox)
    assert {r["path"] for r in reads} == lists
    _assert_list_calls_only(reads, lists)
    # the split's and the settlement's transfers (two windows), refunds, reversals: 4 calls
    assert len(reads) == 4
    calls = sandbox.mirakl_calls()
    assert {c["endpoint"] for c in calls} <= {"OR11", "SOR11"} and len(calls) <= 2
    assert all("order_ids" in c["query"] or "order_id" in c["query"] for c in calls)

    head, items = _reconciliation(demo, today)
    assert (head["scope"], head["run_id"], head["mismatched"]) == ("day", None, 5)
    kinds = sorted(i["kind"] for i in items if i["kind"] != "MATCHED")
    assert kinds == ["AMOUNT_MISMATCH", "AMOUNT_MISMATCH", "MISSING_AT_PROVIDER",
                     "MISSING_IN_LEDGER", "MISSING_IN_MIRAKL"]  # fmt: skip


def test_refund_and_settlement_runs_reconcile_with_list_calls(demo, sandbox):
    split, _, _ = run_dag("stripe_payment_split")
    assert split.state == "success"
    sandbox.clear_stripe_requests()

    run, states, report = run_dag("stripe_payment_refund")

    assert run.state == "success" and states["reconcile"] == "success"
    with Ledger(demo) as ledger:
        refunds = [
            r
            for b in ledger.iter_refunds(statuses=list(RefundStatus))
            for r in b
            if r.stripe_refund_id
        ]
        reversals = [
            r
            for b in ledger.iter_transfers(
                types=[TransferType.REFUND], statuses=list(TransferStatus)
            )
            for r in b
            if r.transfer_id
        ]
    assert refunds and reversals
    assert report["steps"]["reconcile"] == {"MATCHED": len(refunds) + len(reversals)}
    assert report["headlines"]["reconcile"].startswith("Reconciles")
    reads = _stripe_reads(sandbox)
    lists = {"/v1/refunds", "/v1/balance_transactions"}
    assert sorted(r["path"] for r in reads if r["path"] in lists) == sorted(lists)
    _assert_list_calls_only(reads, lists | {"/v1/transfers"})
    [txns] = [r for r in reads if r["path"] == "/v1/balance_transactions"]
    assert txns["params"]["type"] == "transfer_refund"
    sandbox.clear_stripe_requests()

    run, states, report = run_dag("stripe_seller_settlement")

    assert run.state == "success" and states["reconcile"] == "success"
    with Ledger(demo) as ledger:
        kinds = [TransferType.SUBSCRIPTION, TransferType.EXTRA_CREDITS, TransferType.EXTRA_INVOICES]
        moved = [
            r
            for b in ledger.iter_transfers(types=kinds, statuses=list(TransferStatus))
            for r in b
            if r.transfer_id
        ]
        payouts = [
            p for b in ledger.iter_payouts(statuses=list(PayoutStatus)) for p in b if p.payout_id
        ]
    assert payouts and {p.currency for p in payouts} >= {"EUR", "JPY"}
    assert report["steps"]["reconcile"] == {"MATCHED": len(moved) + len(payouts)}
    reads = _stripe_reads(sandbox)
    _assert_list_calls_only(reads, {"/v1/transfers", "/v1/payouts"})
    # each paid seller's payouts listed once on its own account, no payout read one by one
    listed = sorted(r["stripe_account"] for r in reads if r["path"] == "/v1/payouts")
    assert listed == sorted({p.stripe_account_id for p in payouts})
    iv01 = sandbox.mirakl_calls("IV01")
    assert {"start_date", "end_date"} <= set(iv01[-1]["query"])  # the reconcile's window read
