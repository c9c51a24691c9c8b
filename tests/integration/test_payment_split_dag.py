"""The payment split DAG run in-process (``dag.test``) against the sandbox's demo marketplace.

This is what a data engineer sees: the run's state, the report's XCom summary, and the transfers
that reached Stripe, for a scheduled-style run, a rerun, a dry run and a date override.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mirakl_sandbox.scenario import load_scenario

from mirakl_connector.airflow.demo import seed_ledger
from mirakl_connector.ledger import Ledger, TransferStatus, TransferType

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

DEMO = Path(__file__).resolve().parents[2] / "include/sandbox/mirakl_sandbox/scenarios/demo.json"
DAGS = Path(__file__).resolve().parents[2] / "dags"


def _demo_marketplace(sandbox, sandbox_server, monkeypatch, ledger_url):
    """Demo marketplace in the sandbox, the ledger at ``ledger_url`` seeded, connections set."""
    sandbox.reset(load_scenario(DEMO))
    seed_ledger(DEMO, url=ledger_url)
    monkeypatch.setenv(
        "AIRFLOW_CONN_MIRAKL_DEFAULT",
        json.dumps(
            {"conn_type": "mirakl", "host": sandbox_server.url, "password": "sandbox-mirakl-key"}
        ),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_STRIPE_DEFAULT",
        json.dumps(
            {
                "conn_type": "stripe",
                "password": "sk_test_sandbox",
                "host": sandbox_server.url,
            }
        ),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_MIRAKL_CONNECTOR_DB",
        json.dumps({"conn_type": "sqlite", "extra": {"sqlalchemy_url": ledger_url}}),
    )
    monkeypatch.setenv("AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG", json.dumps(
        {"payment_split": {"product_enabled": True, "service_enabled": True},
         "go_live": "2026-01-01T00:00:00Z"}))  # fmt: skip
    return ledger_url


@pytest.fixture
def demo_env(sandbox, sandbox_server, tmp_path, monkeypatch, airflow_db):
    """Demo marketplace in the sandbox, a fresh SQLite ledger, and the connections as env vars."""
    url = Ledger.default_sqlite_url(tmp_path)
    return _demo_marketplace(sandbox, sandbox_server, monkeypatch, url)


@pytest.fixture
def demo_env_each_ledger(sandbox, sandbox_server, ledger_url, monkeypatch, airflow_db):
    """The same on each ledger backend (SQLite, PostgreSQL)."""
    return _demo_marketplace(sandbox, sandbox_server, monkeypatch, ledger_url)


def fresh_dag():
    """Re-parse the DAG for every run: ``dag.test`` leaks run conf into params otherwise."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / "stripe_payment_split.py"))
    assert bag.import_errors == {}
    return bag.dags["stripe_payment_split"]


def run_dag(**conf):
    """Run the DAG; return the run and the XCom values of its steps and report."""
    run = fresh_dag().test(run_conf=conf or None, logical_date=None)
    ti = run.get_task_instance("report")
    xcoms = {t: ti.xcom_pull(task_ids=t) for t in ("plan_transfers", "create_transfers", "report")}
    # create_transfers is mapped (one task per shard): keep the shards, add them up for the rest.
    from mirakl_connector.airflow.operators.report import combine_mapped

    shards = xcoms["create_transfers"]
    xcoms["create_transfers_shards"] = [shards] if isinstance(shards, dict) else list(shards)
    xcoms["create_transfers"] = combine_mapped(xcoms["create_transfers_shards"])
    return run, xcoms


def test_scheduled_run_then_rerun(demo_env, sandbox):
    run, xcoms = run_dag()
    assert run.state == "success"
    report = xcoms["report"]
    assert report["failed_count"] == 0
    created = report["steps"]["create_transfers"]["TRANSFER_CREATED"]
    transfers = sandbox.transfers()
    assert created == len(transfers) > 0
    assert len({t["metadata"]["miraklId"] for t in transfers}) == len(transfers)
    executed = xcoms["create_transfers"]
    # the default 4 shards each sent their own rows, and together all of them
    shard_notes = sorted(n for s in xcoms["create_transfers_shards"] for n in s.get("notes", []))
    assert shard_notes == [f"shard {i} of 4" for i in range(4)]
    assert sum(t["amount"] for t in transfers if t["currency"] == "eur") == int(
        executed["amounts"]["TRANSFER_CREATED"]["EUR"].replace(".", "")
    )

    rerun, rerun_xcoms = run_dag()
    assert rerun.state == "success"
    assert len(sandbox.transfers()) == len(transfers)  # nothing moved twice
    assert rerun_xcoms["create_transfers"]["total"] == 0


def test_dry_run_moves_nothing(demo_env, sandbox):
    run, xcoms = run_dag(dry_run=True)
    assert run.state == "success"
    assert sandbox.transfers() == []
    plan = xcoms["plan_transfers"]
    assert plan["dry_run"] is True
    assert plan["counts"]["TRANSFER_PENDING"] > 0


def test_order_ids_and_since_override(demo_env, sandbox):
    run, _ = run_dag(order_ids=["ORD-1001-A"])
    assert run.state == "success"
    assert {t["metadata"]["miraklId"] for t in sandbox.transfers()} <= {"ORD-1001-A"}
    run, _ = run_dag(since="2026-11-01T00:00:00+00:00")
    assert run.state == "success"
    # the plan's creation-date read (the reconcile task reads its orders by id after it)
    by_date = [c for c in sandbox.mirakl_calls("OR11") if "start_date" in c["query"]]
    assert by_date[-1]["query"]["start_date"] == "2026-11-01T00:00:00Z"


def test_first_run_without_checkpoint_or_go_live_moves_nothing_and_says_why(
    demo_env, sandbox, monkeypatch, capfd
):
    """A first run (no checkpoint) without a go-live instant would pay the whole history."""
    monkeypatch.setenv("AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG", json.dumps(
        {"payment_split": {"product_enabled": True, "service_enabled": True}}))  # fmt: skip
    run = fresh_dag().test(logical_date=None)

    assert run.state == "failed"
    assert run.get_task_instance("plan_transfers").state == "failed"
    assert sandbox.transfers() == []  # nothing moved
    assert sandbox.mirakl_calls("OR11") == sandbox.mirakl_calls("SOR11") == []  # not even read
    with Ledger(demo_env) as ledger:
        assert _recorded(ledger) == set()  # nothing recorded either
        assert ledger.get_checkpoint("product_payment_split_checkpoint") is None
    assert (
        "payment_split: this is a first run (no checkpoint 'product_payment_split_checkpoint' "
        "in the ledger) and no go-live instant is configured, so nothing was moved. Set "
        '"go_live" in the Airflow Variable mirakl_connector_config' in "".join(capfd.readouterr())
    )


def test_first_run_with_go_live_counts_what_lies_before_it(demo_env, sandbox, monkeypatch):
    """Orders created before the go-live instant are counted in the summary, never moved."""
    monkeypatch.setenv("AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG", json.dumps(
        {"payment_split": {"product_enabled": True, "service_enabled": True},
         "go_live": "2026-11-17T00:00:00Z"}))  # fmt: skip
    # created before 2026-11-17T00:00Z (the service orders' dates are +01:00)
    before = {"ORD-1014-A", "ORD-1001-A", "ORD-1002-A", "ORD-1003-A", "ORD-1004-A", "SRV-2001-A"}

    run, xcoms = run_dag()

    assert run.state == "success"
    plan = xcoms["plan_transfers"]
    assert plan["counts"]["BEFORE_GO_LIVE"] == len(before)
    moved = {t["metadata"]["miraklId"] for t in sandbox.transfers()}
    assert moved and not moved & before
    with Ledger(demo_env) as ledger:
        recorded = _recorded(ledger)
    assert recorded and not recorded & before  # counted, not recorded: nothing to pay later either

    rerun, rerun_xcoms = run_dag()
    assert rerun.state == "success"
    assert {t["metadata"]["miraklId"] for t in sandbox.transfers()} == moved


def _recorded(ledger: Ledger) -> set[str]:
    from mirakl_connector.ledger.records import ORDER_TRANSFER_TYPES, TransferStatus

    rows = ledger.iter_transfers(types=ORDER_TRANSFER_TYPES, statuses=list(TransferStatus))
    return {r.mirakl_id for batch in rows for r in batch}


def test_manual_since_run_leaves_the_gap_to_the_next_scheduled_run(demo_env, sandbox):
    """Issue 11 point 1: a ``since`` later than the checkpoint must not move it past the orders
    created in between, or a scheduled run never reads them (no ledger row, no alert)."""
    run, _ = run_dag()
    assert run.state == "success"
    ledger = Ledger(demo_env)
    checkpoint = ledger.get_checkpoint("product_payment_split_checkpoint")
    assert checkpoint == "2026-11-21T18:15:00Z"  # the demo's newest order

    template = sandbox.order("ORD-1001-A")
    new = {"GAP-1-A": "2026-11-22T09:00:00Z", "GAP-2-A": "2026-11-22T10:00:00Z",
           "LATE-1-A": "2026-11-22T12:00:00Z"}  # fmt: skip
    sandbox.put_charges([{"id": f"ch_{i}", "amount": 10868, "currency": "eur",
                          "status": "succeeded", "captured": True, "refunded": False}
                         for i in new])  # fmt: skip
    sandbox.put_orders([
        {**template, "id": 9000 + n, "order_id": i, "commercial_id": i.removesuffix("-A"),
         "created_date": at, "last_updated_date": at, "transaction_number": f"ch_{i}"}
        for n, (i, at) in enumerate(new.items())
    ])  # fmt: skip

    run, xcoms = run_dag(since="2026-11-22T11:00:00+00:00")  # later than the two gap orders
    assert run.state == "success"
    assert {t["metadata"]["miraklId"] for t in sandbox.transfers()} >= {"LATE-1-A"}
    assert not {"GAP-1-A", "GAP-2-A"} & {t["metadata"]["miraklId"] for t in sandbox.transfers()}
    assert ledger.get_checkpoint("product_payment_split_checkpoint") == checkpoint

    run, xcoms = run_dag()  # the next scheduled run reads from the checkpoint: the gap is paid
    assert run.state == "success"
    paid = [t for t in sandbox.transfers() if t["metadata"]["miraklId"] in new]
    assert sorted(t["metadata"]["miraklId"] for t in paid) == sorted(new)  # each exactly once
    assert all(t["amount"] == 8990 + 1798 + 80 - 1079 and t["currency"] == "eur" for t in paid)
    assert ledger.get_checkpoint("product_payment_split_checkpoint") == "2026-11-22T12:00:00Z"
    ledger.dispose()


def test_a_string_false_setting_fails_the_run_and_moves_nothing(demo_env, sandbox, monkeypatch):
    """Issue 11 point 5: ``"false"`` used to be truthy, and the split planned transfers."""
    config = {"payment_split": {"product_enabled": "false", "service_enabled": False}}
    monkeypatch.setenv("AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG", json.dumps(config))
    run = fresh_dag().test(run_conf=None, logical_date=None)
    assert run.state == "failed"
    assert run.get_task_instance("plan_transfers").state == "failed"
    assert sandbox.transfers() == []
    with Ledger(demo_env) as ledger:
        assert ledger.get_checkpoint("product_payment_split_checkpoint") is None


def test_bad_orders_in_the_batch_fail_alone_through_the_dag(demo_env_each_ledger, sandbox):
    """Issue 11 point 3 through the DAG, on SQLite and PostgreSQL: each of these orders once
    stopped every run; now each fails with its reason and the good orders are paid."""
    template = sandbox.order("ORD-1001-A")
    bad = {
        "BAD-HUGE-A": {"total_price": 10**17},
        "BAD-SHOP-A": {"shop_id": 2**63},
        "BAD-SUPER-A": {"shop_id": "²"},
        "BAD-WIDE-A": {"shop_id": "１"},
        "BAD-Y9999-A": {"created_date": "9999-12-31T23:59:59Z"},
        "BAD-TXN-A": {"transaction_number": 123456},
    }
    sandbox.put_orders([
        {**template, "id": 9100 + n, "order_id": i, "commercial_id": i.removesuffix("-A"),
         "created_date": "2026-11-21T12:00:00Z", **fields}
        for n, (i, fields) in enumerate(bad.items())
    ])  # fmt: skip

    run, xcoms = run_dag()

    assert run.state == "failed"  # the report lists the failed orders and fails the run
    assert run.get_task_instance("plan_transfers").state == "success"
    assert run.get_task_instance("report").state == "failed"
    paid = {t["metadata"]["miraklId"] for t in sandbox.transfers()}
    assert "ORD-1001-A" in paid and not paid & set(bad)
    failed = {f["id"]: f["reason"] for f in xcoms["plan_transfers"]["failed"]}
    assert set(failed) == set(bad)
    assert "total_price is out of range" in failed["BAD-HUGE-A"]
    assert "shop_id is out of range" in failed["BAD-SHOP-A"]
    assert "shop_id is not numeric: '²'" in failed["BAD-SUPER-A"]
    assert "shop_id is not numeric: '１'" in failed["BAD-WIDE-A"]
    assert "created_date is out of range" in failed["BAD-Y9999-A"]
    assert "transaction_number is not a string: 123456" in failed["BAD-TXN-A"]
    with Ledger(demo_env_each_ledger) as ledger:
        rows = ledger.get_transfers(TransferType.PRODUCT_ORDER, list(bad))
        assert {r.status for r in rows.values()} == {TransferStatus.FAILED} and len(rows) == 6
        assert ledger.get_checkpoint("product_payment_split_checkpoint") == "2026-11-21T18:15:00Z"
