"""The payment validation and payment refund DAGs run in-process (``dag.test``) against the sandbox.

One run each: what a data engineer sees (run state, the report's XCom) and what reached Mirakl and
Stripe. The rules themselves are covered by the direct job tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.records import (
    PaymentMapping,
    PaymentMappingStatus,
    TransferRecord,
    TransferStatus,
    TransferType,
)

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

DAGS = Path(__file__).resolve().parents[2] / "dags"


def order(order_id, state, *, debited, refunds=()):
    return {
        "order_id": order_id, "commercial_id": order_id.rsplit("-", 1)[0],
        "created_date": "2026-11-20T10:00:00Z", "last_updated_date": "2026-11-20T10:00:00Z",
        "customer_debited_date": "2026-11-20T11:00:00Z" if debited else None,
        "currency_iso_code": "EUR", "order_state": state, "order_tax_mode": "TAX_INCLUDED",
        "shop_id": 1, "total_commission": "10.00", "total_price": "100.00",
        "customer": {"customer_id": "cust-1"},
        "order_lines": [{"order_line_id": f"{order_id}-L1", "order_line_state": state,
                         "total_price": "100.00", "shipping_taxes": [], "taxes": [],
                         "refunds": list(refunds)}],
    }  # fmt: skip


@pytest.fixture
def env(sandbox, sandbox_server, tmp_path, monkeypatch, airflow_db):
    ledger_url = Ledger.default_sqlite_url(tmp_path)
    for name, conn in {
        "MIRAKL_DEFAULT": {"conn_type": "mirakl", "host": sandbox_server.url,
                           "password": "sandbox-mirakl-key"},
        "STRIPE_DEFAULT": {"conn_type": "stripe", "host": sandbox_server.url,
                           "password": "sk_test_sandbox"},
        "MIRAKL_CONNECTOR_DB": {"conn_type": "sqlite", "extra": {"sqlalchemy_url": ledger_url}},
    }.items():  # fmt: skip
        monkeypatch.setenv(f"AIRFLOW_CONN_{name}", json.dumps(conn))
    monkeypatch.setenv(
        "AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG", json.dumps({"go_live": "2000-01-01T00:00:00Z"})
    )
    with Ledger(ledger_url) as ledger:
        yield ledger


def run_dag(dag_id, steps):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / f"{dag_id}.py"))
    assert bag.import_errors == {}
    run = bag.dags[dag_id].test(logical_date=None)
    ti = run.get_task_instance("report")
    xcoms = {t: ti.xcom_pull(task_ids=t) for t in (*steps, "report")}
    # The refund DAG's write steps are mapped (one summary per shard): add the shards up.
    from mirakl_connector.airflow.operators.report import combine_mapped

    return run, {
        t: v if v is None or isinstance(v, dict) else combine_mapped(list(v))
        for t, v in xcoms.items()
    }


def test_validation_dag_confirms_the_debit_then_captures(env, sandbox):
    sandbox.reset({
        "mirakl": {"api_key": "sandbox-mirakl-key",
                   "orders": [order("C1-A", "WAITING_DEBIT_PAYMENT", debited=False)]},
        "stripe": {"api_key": "sk_test_sandbox", "platform_account": {"id": "acct_platform"},
                   "payment_intents": [{"id": "pi_c1", "amount": 10000, "currency": "eur",
                                        "status": "requires_capture"}]},
    })  # fmt: skip
    env.upsert_payment_mapping(PaymentMapping("pi_c1", "C1", stripe_amount=10000))

    run, xcoms = run_dag("stripe_payment_validation", ("validate_debits", "capture_payments"))

    assert run.state == "success"
    assert xcoms["validate_debits"]["counts"] == {"VALIDATED": 1}
    assert xcoms["capture_payments"]["counts"] == {"captured": 1}
    assert xcoms["capture_payments"]["amounts"] == {"captured": {"EUR": "100.00"}}
    assert xcoms["report"]["failed_count"] == 0
    [pa01] = sandbox.mirakl_calls("PA01")
    assert pa01["status"] == 204
    assert sandbox.payment_intents()[0]["status"] == "succeeded"
    saved = env.get_payment_mapping("pi_c1")
    assert (saved.status, saved.captured_amount) == (PaymentMappingStatus.CAPTURED, 10000)


def test_refund_dag_refunds_validates_and_reverses(env, sandbox, stripe_gateway):
    refund = {"id": "R1", "amount": "30.00", "commission_total_amount": "3.00",
              "shipping_taxes": [], "taxes": []}  # fmt: skip
    sandbox.reset({
        "mirakl": {"api_key": "sandbox-mirakl-key",
                   "orders": [order("A-1", "SHIPPED", debited=True, refunds=[refund])]},
        "stripe": {"api_key": "sk_test_sandbox", "platform_account": {"id": "acct_platform"},
                   "accounts": [{"id": "acct_s1", "charges_enabled": True,
                                 "payouts_enabled": True}],
                   "charges": [{"id": "ch_paid", "amount": 10000, "currency": "eur"}]},
    })  # fmt: skip
    made = stripe_gateway.create_transfer(
        amount=9000, currency="EUR", destination="acct_s1", source_transaction="ch_paid",
        idempotency_key="test:A-1", metadata={"miraklId": "A-1"},
    )  # fmt: skip
    env.save_transfers([TransferRecord(
        type=TransferType.PRODUCT_ORDER, mirakl_id="A-1", status=TransferStatus.CREATED,
        mirakl_shop_id=1, destination_account="acct_s1", transaction_id="ch_paid",
        transfer_id=made.id, amount=9000, currency="EUR",
    )])  # fmt: skip

    run, xcoms = run_dag(
        "stripe_payment_refund", ("plan_refunds", "create_refunds", "reverse_transfers")
    )

    assert run.state == "success"
    assert xcoms["plan_refunds"]["counts"] == {"REFUND_PENDING": 1}
    assert xcoms["create_refunds"]["counts"] == {"REFUND_CREATED": 1}
    assert xcoms["reverse_transfers"]["counts"] == {"TRANSFER_CREATED": 1}
    assert xcoms["reverse_transfers"]["amounts"] == {"TRANSFER_CREATED": {"EUR": "27.00"}}
    assert [r["amount"] for r in sandbox.refunds()] == [3000]
    assert [r["amount"] for r in sandbox.reversals()] == [2700]
    assert len(sandbox.mirakl_calls("PA02")) == 1
