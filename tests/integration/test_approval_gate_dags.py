"""The approval gate through the Stripe DAGs (``dag.test``) on the sandbox: a held transfer or
payout reaches no Stripe endpoint, the console approves it, the next run sends it exactly once
and a rerun sends nothing more."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from sqlalchemy import update

from mirakl_connector.console.actions import Actor
from mirakl_connector.console.app import ConsoleAppConfig, create_app
from mirakl_connector.console.approvals import ApprovalsConfig
from mirakl_connector.ledger import (
    AccountMapping,
    Ledger,
    PayoutStatus,
    TransferStatus,
    TransferType,
    schema,
)
from mirakl_connector.ledger.engine import writer
from mirakl_connector.ledger.queries import ConsoleQueries

from .conftest import sandbox_connections

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

DAGS = Path(__file__).resolve().parents[2] / "dags"


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


YESTERDAY = datetime.now(UTC) - timedelta(days=1)


@pytest.fixture
def env(sandbox, sandbox_server, tmp_path, monkeypatch, airflow_db) -> Iterator[Ledger]:
    url = Ledger.default_sqlite_url(tmp_path)
    for name, conn in sandbox_connections(sandbox_server.url, url).items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{name}", json.dumps(conn))
    ledger = Ledger(url)
    ledger.upsert_account_mapping(AccountMapping(1, "acct_s1", True, True, kyc_status="APPROVED"))
    yield ledger
    ledger.dispose()


def configure(monkeypatch, approval):
    monkeypatch.setenv("AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG", json.dumps(
        {"go_live": "2000-01-01T00:00:00Z", "approval": approval}))  # fmt: skip


def run_dag(dag_id: str, **conf):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / f"{dag_id}.py"))
    assert bag.import_errors == {}
    run = bag.dags[dag_id].test(run_conf=conf or None, logical_date=None)
    return run, run.get_task_instance("report").xcom_pull(task_ids="report")


def console_decide(ledger: Ledger, path: str, **form) -> int:
    """A decision as an operator takes it on the console page (the form's POST)."""
    app = create_app(
        ConsoleAppConfig(
            queries=lambda: ConsoleQueries(ledger.engine),
            auth=lambda: None,
            edit_auth=lambda: None,
            actor=_ops,
            approvals=ApprovalsConfig(ledger=lambda: ledger),
        )
    )
    with TestClient(app) as client:
        listed = client.get("/api/approvals").json()["items"]
        shown = next(i for i in listed if f"/{i['entity']}/{i['id']}" == path)
        r = client.post(
            f"/approvals{path}",
            data={"amount": str(shown["amount_minor"]), "currency": shown["currency"],
                  "destination": shown["destination"], "source": shown["source"] or "", **form},
            headers={"Origin": "http://testserver"},
            follow_redirects=False,
        )  # fmt: skip
    return r.status_code


def _ops(request: Request) -> Actor:
    return Actor(name="ops-lead")


def posts(sandbox, path: str) -> list[dict]:
    return sandbox.stripe_requests(path=path, method="POST")


def order(order_id: str, total: str, charge: str, created: datetime) -> dict:
    return {
        "order_id": order_id, "commercial_id": order_id.rsplit("-", 1)[0],
        "created_date": iso(created), "last_updated_date": iso(created),
        "customer_debited_date": iso(created + timedelta(minutes=5)),
        "currency_iso_code": "EUR", "order_state": "SHIPPING", "order_tax_mode": "TAX_EXCLUDED",
        "shop_id": 1, "total_commission": "10.00", "total_price": total,
        "transaction_number": charge, "customer": {"customer_id": "cust-1"},
        "order_lines": [{"order_line_id": f"{order_id}-1", "order_line_state": "SHIPPING",
                         "total_price": total, "shipping_taxes": [], "taxes": []}],
    }  # fmt: skip


def charge(charge_id: str, amount: int) -> dict:
    return {"id": charge_id, "amount": amount, "currency": "eur", "status": "succeeded",
            "captured": True, "refunded": False}  # fmt: skip


def test_a_split_transfer_over_the_threshold_waits_then_goes_once_approved(
    env, sandbox, monkeypatch
):
    sandbox.reset({
        "mirakl": {"api_key": "sandbox-mirakl-key",
                   "shops": [{"shop_id": 1, "shop_name": "Shop 1",
                              "last_updated_date": iso(YESTERDAY)}],
                   # the big order is not the newest: the checkpoint read never returns it again
                   "orders": [order("BIG-1-A", "500.00", "ch_big", YESTERDAY - timedelta(1)),
                              order("SMALL-1-A", "100.00", "ch_small", YESTERDAY)]},
        "stripe": {"api_key": "sk_test_sandbox", "platform_account": {"id": "acct_platform"},
                   "accounts": [{"id": "acct_s1", "charges_enabled": True,
                                 "payouts_enabled": True}],
                   "charges": [charge("ch_big", 50_000), charge("ch_small", 10_000)],
                   "platform_balance": {"eur": 10_000_000}},
    })  # fmt: skip
    configure(monkeypatch, {"transfer_above": {"EUR": "200.00"}})

    run, report = run_dag("stripe_payment_split")

    assert run.state == "success"  # waiting for a person is not a failure
    assert report["steps"]["plan_transfers"]["TRANSFER_ON_HOLD"] == 1
    sent = [r["params"]["metadata"]["miraklId"] for r in posts(sandbox, "/v1/transfers")]
    assert sent == ["SMALL-1-A"]  # the big one never reached Stripe
    held = env.get_transfer(TransferType.PRODUCT_ORDER, "BIG-1-A")
    assert (held.status, held.amount, held.transfer_id) == (TransferStatus.ON_HOLD, 49_000, None)
    assert held.status_reason == (
        "awaiting approval: 490.00 EUR is above approval.transfer_above 200.00 EUR"
    )

    # a rerun before anyone decided moves nothing either
    run_dag("stripe_payment_split")
    assert len(posts(sandbox, "/v1/transfers")) == 1
    # Nothing else changes from now on (the shop's mapping was written before the first run):
    # only the decision can bring the row back between two full sweeps.
    with writer(env.engine).begin() as conn:
        conn.execute(update(schema.account_mappings).values(updated_at=YESTERDAY))

    assert console_decide(env, f"/transfer/{held.id}", decision="approve", why="VIP order") == 303
    run, report = run_dag("stripe_payment_split")

    assert run.state == "success"
    plan = run.get_task_instance("report").xcom_pull(task_ids="plan_transfers")
    assert not any(
        "full sweep" in note for note in plan.get("notes", [])
    )  # the cheap changed-only read
    big = [t for t in sandbox.transfers() if t["metadata"]["miraklId"] == "BIG-1-A"]
    assert [(t["amount"], t["destination"]) for t in big] == [(49_000, "acct_s1")]
    row = env.get_transfer(TransferType.PRODUCT_ORDER, "BIG-1-A")
    assert (row.status, row.transfer_id) == (TransferStatus.CREATED, big[0]["id"])
    history = [e.reason or "" for e in env.events_for("transfer", row.id)]
    assert any(h.startswith("approved by ops-lead: VIP order") for h in history)

    before = len(posts(sandbox, "/v1/transfers"))
    run, report = run_dag("stripe_payment_split")
    assert run.state == "success"
    assert len(posts(sandbox, "/v1/transfers")) == before  # nothing more, not even a replay
    assert len(sandbox.transfers()) == 2


def _invoice(invoice_id: int, amount: float, created: datetime) -> dict:
    summary = {"amount_transferred": amount, "total_subscription_incl_tax": 0,
               "total_other_credits_incl_tax": 0, "total_other_invoices_incl_tax": 0}  # fmt: skip
    return {"invoice_id": invoice_id, "shop_id": 1, "currency_iso_code": "EUR",
            "date_created": iso(created), "summary": summary}  # fmt: skip


def test_the_first_payout_to_an_account_waits_later_ones_do_not(env, sandbox, monkeypatch):
    sandbox.reset({
        "mirakl": {"api_key": "sandbox-mirakl-key",
                   "invoices": [_invoice(1, 12.34, YESTERDAY - timedelta(days=1)),
                                _invoice(2, 56.78, YESTERDAY)]},
        "stripe": {"api_key": "sk_test_sandbox", "platform_account": {"id": "acct_platform"},
                   "accounts": [{"id": "acct_s1", "payouts_enabled": True}],
                   "balances": {"acct_s1": {"eur": 100_000}}},
    })  # fmt: skip
    configure(monkeypatch, {"first_payout_to_new_account": True})

    run, report = run_dag("stripe_seller_settlement")

    assert run.state == "success"
    assert posts(sandbox, "/v1/payouts") == [] and sandbox.payouts() == []
    held = env.get_payouts(["1", "2"])
    assert {k: (p.status, p.status_reason) for k, p in held.items()} == {
        k: (PayoutStatus.ON_HOLD, "awaiting approval: first payout to acct_s1") for k in ("1", "2")
    }

    assert (
        console_decide(env, f"/payout/{held['1'].id}", decision="approve", why="new seller") == 303
    )
    run, report = run_dag("stripe_seller_settlement")

    assert run.state == "success"
    assert [(p["amount"], p["metadata"].get("invoiceId")) for p in sandbox.payouts()] == [
        (1234, "1")
    ]
    # invoice 2 was decided before the first payout existed: it waits for the next run
    assert env.get_payouts(["2"])["2"].status is PayoutStatus.ON_HOLD

    run, report = run_dag("stripe_seller_settlement")

    assert run.state == "success"  # the account has been paid out to: no approval needed now
    assert sorted(p["amount"] for p in sandbox.payouts()) == [1234, 5678]
    assert len(posts(sandbox, "/v1/payouts")) == 2
    run_dag("stripe_seller_settlement")
    assert len(posts(sandbox, "/v1/payouts")) == 2  # a rerun pays nothing twice
