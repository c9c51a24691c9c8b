"""Cutover from the Stripe connector, end to end: its PostgreSQL database → the import DAG → every
Stripe DAG (``dag.test``) against the sandbox's demo marketplace → the rollback SQL run on it.

The incumbent (see ``conftest.py``) ran on the demo marketplace until 2026-11-20: it transferred
seven orders, reversed one refund, refunded two, paid invoice 9001 out, left one transfer FAILED
and two ON_HOLD, and handed one transfer and one payout to its worker without an outcome. After
the import, our first run of every Stripe workflow must move none of what it moved, must never
send what it left in doubt, and must carry on with what it left pending.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mirakl_sandbox.scenario import load_scenario
from sqlalchemy import create_engine, select

from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger import schema as ledger_schema
from mirakl_connector.ledger.records import PayoutStatus, RefundStatus, TransferStatus, TransferType

pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.postgres]

REPO = Path(__file__).resolve().parents[3]
DEMO = REPO / "include/sandbox/mirakl_sandbox/scenarios/demo.json"
DEMO_CONFIG = REPO / "scripts/demo-config.json"
DAGS = REPO / "dags"
MIRAKL_KEY = "sandbox-mirakl-key"
STRIPE_KEY = "sk_test_sandbox"

#: Every Stripe DAG, in the order an operator would unpause them after the cutover.
STRIPE_DAGS = [
    "stripe_seller_onboarding",
    "stripe_kyc_monitor",
    "stripe_payment_validation",
    "stripe_payment_split",
    "stripe_payment_refund",
    "stripe_seller_settlement",
    "stripe_failed_operations_alert",
    "stripe_operator_notifications",
    "stripe_webhook_events",
    # stripe_event_healing is left out: its sensor defers until Stripe has new events (dag.test
    # would wait for ever), and it only feeds the inbox that stripe_webhook_events applies.
]
IMPORTED_TABLES = (
    ledger_schema.account_mappings,
    ledger_schema.payment_mappings,
    ledger_schema.transfers,
    ledger_schema.refunds,
    ledger_schema.payouts,
    ledger_schema.checkpoints,
    ledger_schema.ledger_events,
    ledger_schema.notifications,
)


@pytest.fixture
def cutover_env(
    sandbox, sandbox_server, old_stripe_db, smtp_server, tmp_path, monkeypatch, airflow_db
):
    """Demo marketplace in the sandbox, an empty ledger, the connections as env vars."""
    sandbox.reset(load_scenario(DEMO))
    ledger_url = Ledger.default_sqlite_url(tmp_path)
    monkeypatch.setenv(
        "AIRFLOW_CONN_STRIPE_CONNECTOR_DB",
        json.dumps({"conn_type": "postgres", "extra": {"sqlalchemy_url": old_stripe_db}}),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_MIRAKL_CONNECTOR_DB",
        json.dumps({"conn_type": "sqlite", "extra": {"sqlalchemy_url": ledger_url}}),
    )
    monkeypatch.setenv("AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG", DEMO_CONFIG.read_text())
    monkeypatch.setenv(
        "AIRFLOW_CONN_MIRAKL_DEFAULT",
        json.dumps({"conn_type": "mirakl", "host": sandbox_server.url, "password": MIRAKL_KEY}),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_STRIPE_DEFAULT",
        json.dumps({"conn_type": "stripe", "host": sandbox_server.url, "password": STRIPE_KEY}),
    )
    smtp = {"disable_tls": True, "disable_ssl": True, "from_email": "airflow@example.com"}
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        json.dumps(
            {"conn_type": "smtp", "host": smtp_server[0], "port": smtp_server[1], "extra": smtp}
        ),
    )
    return ledger_url


def run_import(**conf: Any) -> tuple[str, dict[str, Any]]:
    """Run the import DAG (``dag.test``); return the run's state and the import's summary."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / "connector_cutover_stripe.py"))
    assert bag.import_errors == {}
    run = bag.dags["connector_cutover_stripe"].test(run_conf=conf or None, logical_date=None)
    summary = run.get_task_instance("report").xcom_pull(task_ids="import_history")
    return run.state, summary


def snapshot(ledger_url: str) -> dict[str, list[tuple]]:
    engine = create_engine(ledger_url)
    try:
        with engine.connect() as conn:
            return {
                t.name: [tuple(r) for r in conn.execute(select(t).order_by(t.c.id))]
                for t in IMPORTED_TABLES
            }
    finally:
        engine.dispose()


def run_stripe_dags() -> dict[str, str]:
    """Run every Stripe DAG once (``dag.test``), in order; return each run's state."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    return {
        dag_id: bag.dags[dag_id].test(run_conf=None, logical_date=None).state
        for dag_id in STRIPE_DAGS
    }


def test_import_then_every_stripe_workflow_moves_nothing_the_old_connector_moved(
    cutover_env, sandbox, old_history, old_stripe_db
):
    ledger_url = cutover_env

    # 1. Dry run (the default): the report, nothing written.
    state, dry = run_import()
    assert dry["dry_run"] is True
    assert state == "failed"  # held and unmappable rows make the report fail the run
    with Ledger(ledger_url) as ledger:
        assert ledger.list_account_mappings() == []
        assert ledger.get_checkpoint("product_payment_split_checkpoint") is None

    # 2. The import.
    state, first = run_import(dry_run=False)
    assert first["dry_run"] is False
    assert first["counts"] == {
        "ACCOUNT_MAPPING_IMPORTED": 5,
        "PAYMENT_MAPPING_IMPORTED": 4,
        "PAYMENT_MAPPING_NOT_MAPPED": 1,  # status 'authorised_maybe'
        "TRANSFER_IMPORTED": 17,
        "TRANSFER_HELD": 1,  # ORD-1009-A: PENDING, no transfer id
        "TRANSFER_NOT_MAPPED": 2,  # unknown status, unknown type
        "REFUND_IMPORTED": 3,
        "PAYOUT_IMPORTED": 2,
        "PAYOUT_HELD": 1,  # invoice 8998: PENDING, no payout id
        "CHECKPOINT_IMPORTED": 3,
        "CHECKPOINT_NOT_SET": 1,  # onboarding never checkpointed at the incumbent
    }
    assert first["counts"] == {k: v for k, v in dry["counts"].items()}  # the dry run said so
    assert first["failed_total"] == 5
    not_mapped = {f["id"]: f["reason"] for f in first["failed"]}
    assert (
        not_mapped["stripe_transfer #19 (ORD-0999-A)"]
        == "unknown transfer status 'TRANSFER_QUEUED'"
    )
    assert (
        not_mapped["stripe_transfer #20 (ORD-0998-A)"] == "unknown transfer type 'TRANSFER_MYSTERY'"
    )
    assert not_mapped["payment_mapping #5 (ch_demo_0990)"].startswith("unknown payment mapping")
    assert not_mapped["transfer TRANSFER_PRODUCT_ORDER ORD-1009-A (old #7)"].startswith("Held")
    assert not_mapped["payout of invoice 8998 (old #2)"].startswith("Held")
    assert first["amounts"]["TRANSFER_IMPORTED"] == {"EUR": "484.99", "JPY": "300000"}
    assert any("stripe_transfer: 20 row(s) read" == n for n in first["notes"])

    with Ledger(ledger_url) as ledger:
        moved = ledger.get_transfer(TransferType.PRODUCT_ORDER, "ORD-1001-A")
        assert (moved.status, moved.transfer_id) == (TransferStatus.CREATED, "tr_old_1001")
        assert moved.destination_account == "acct_demo_lumiere" and moved.currency == "EUR"
        assert ledger.imported_ids("transfer", ["TRANSFER_PRODUCT_ORDER/ORD-1001-A"]) == {
            "TRANSFER_PRODUCT_ORDER/ORD-1001-A": ("stripe-mirakl-connector", "1")
        }
        held = ledger.get_transfer(TransferType.PRODUCT_ORDER, "ORD-1009-A")
        assert held.status is TransferStatus.ABORTED and held.status_reason.startswith("Held")
        assert ledger.get_refunds(["SR-4001"])["SR-4001"].stripe_refund_id == "re_old_4001"
        assert ledger.get_checkpoint("product_payment_split_checkpoint") == (
            "2026-11-19T10:15:00+0000"
        )
        assert ledger.iter_notifications is not None
    after_first = snapshot(ledger_url)
    assert after_first["notifications"] == []  # imported failures are not re-announced

    # 3. Rerunning the import changes nothing.
    state, second = run_import(dry_run=False)
    assert snapshot(ledger_url) == after_first
    assert set(second["counts"]) <= {
        "ACCOUNT_MAPPING_UNCHANGED",
        "PAYMENT_MAPPING_UNCHANGED",
        "PAYMENT_MAPPING_NOT_MAPPED",
        "TRANSFER_UNCHANGED",
        "TRANSFER_HELD",
        "TRANSFER_NOT_MAPPED",
        "REFUND_UNCHANGED",
        "PAYOUT_UNCHANGED",
        "PAYOUT_HELD",
        "CHECKPOINT_UNCHANGED",
        "CHECKPOINT_NOT_SET",
    }
    assert second["counts"]["TRANSFER_UNCHANGED"] == 17

    # 4. Every Stripe DAG, first run after the cutover.
    states = run_stripe_dags()
    with Ledger(ledger_url) as ledger:
        transfers = {t["metadata"].get("miraklId") for t in sandbox.transfers()}
        reversals = {r["metadata"].get("miraklId") for r in sandbox.reversals()}
        refunds = {r["metadata"].get("miraklRefundId") for r in sandbox.refunds()}
        payouts = {p["metadata"].get("invoiceId") for p in sandbox.payouts()}

        # Nothing the incumbent moved, nothing it left in doubt, is moved again.
        assert transfers & (old_history["transfers"] | old_history["in_doubt"]) == set()
        assert reversals & old_history["reversals"] == set()
        assert refunds & old_history["refunds"] == set()
        assert payouts & (old_history["payouts"] | old_history["in_doubt"]) == set()

        # What it left pending continues.
        assert "ORD-1011-A" in transfers  # ON_HOLD there (payment not ready): paid here
        retried = ledger.get_transfer(TransferType.PRODUCT_ORDER, "ORD-1008-A")
        assert retried.attempts == 1  # FAILED there: retried here (the sandbox refuses it again)
        assert "R-3002" in refunds  # FAILED refund: refunded
        sr = ledger.get_refunds(["SR-4001"])["SR-4001"]
        assert sr.status is RefundStatus.CREATED  # refunded there, validated in Mirakl here
        assert "9002" in payouts  # invoice after the incumbent's checkpoint: settled here
        assert ledger.get_payouts(["8998"])["8998"].status is PayoutStatus.ABORTED
        # Orders after the checkpoint are new to both and handled here.
        assert "ORD-1017-A" not in old_history["transfers"]
    print(json.dumps(states, indent=1))

    # 5. Rolling back (the DAG in rollback_sql mode): the SQL telling the incumbent what we moved
    #    runs on its database, twice (idempotent), and leaves it knowing every one of our moves.
    state, rollback = run_import(mode="rollback_sql")
    assert state == "success"
    statements = rollback["sql"]
    assert statements[0] == "BEGIN;" and statements[-1] == "COMMIT;"
    with Ledger(ledger_url) as ledger:
        ours = {
            t.mirakl_id: t.transfer_id
            for t in ledger.iter_moved("transfer")
            if t.type is not TransferType.REFUND and not t.transfer_id.startswith("tr_old")
        }
    assert rollback["counts"]["ROLLBACK_TRANSFER"] >= 1
    assert rollback["counts"]["ROLLBACK_PAYOUT"] >= 1
    assert "ORD-1011-A" in ours and ours.keys().isdisjoint(old_history["transfers"])
    engine = create_engine(old_stripe_db)
    try:
        for _ in range(2):
            with engine.begin() as conn:
                for statement in statements[1:-1]:  # BEGIN/COMMIT: engine.begin() is the txn
                    conn.exec_driver_sql(statement)
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT mirakl_id, transfer_id, status FROM stripe_transfer "
                "WHERE type IN ('TRANSFER_PRODUCT_ORDER', 'TRANSFER_SERVICE_ORDER', "
                "'TRANSFER_SUBSCRIPTION', 'TRANSFER_EXTRA_CREDITS', 'TRANSFER_EXTRA_INVOICES')"
            ).all()
            payouts_there = dict(
                conn.exec_driver_sql("SELECT mirakl_invoice_id, payout_id FROM stripe_payout").all()
            )
            checkpoint = conn.exec_driver_sql(
                "SELECT value FROM config WHERE key = 'product_payment_split_checkpoint'"
            ).scalar_one()
    finally:
        engine.dispose()
    there = {}
    for mirakl_id, transfer_id, status in rows:
        if transfer_id:
            there.setdefault(mirakl_id, set()).add((transfer_id, status))
    for mirakl_id, transfer_id in ours.items():
        assert (transfer_id, "TRANSFER_CREATED") in there[mirakl_id]
    assert there["ORD-1001-A"] == {("tr_old_1001", "TRANSFER_CREATED")}  # its own, untouched
    assert payouts_there[9002] is not None and payouts_there[9001] == "po_old_9001"
    assert checkpoint == "2026-11-21T18:15:00Z"  # ours, further than its own
