"""Issue 12, points 2 and 3, through the DAGs (``dag.test``) against the sandbox.

* Connected-account events (``payout.failed``, ``account.updated``) are not in the platform's
  Events list (as on Stripe): a lost webhook is healed by ``stripe_event_healing`` (its
  ``heal_connected_accounts`` task) and applied by ``stripe_webhook_events``.
* A payout the seller's available balance cannot cover waits ON_HOLD with the date the pending
  funds become available, and goes out once the sandbox clock passes it; never twice.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.records import (
    AccountMapping,
    InboxStatus,
    PayoutRecord,
    PayoutStatus,
)

from .conftest import sandbox_connections  # noqa: TID252

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

DAGS = Path(__file__).resolve().parents[2] / "dags"
DAY = 86400


@pytest.fixture
def env(sandbox, sandbox_server, tmp_path, monkeypatch, airflow_db):
    ledger_url = Ledger.default_sqlite_url(tmp_path)
    for name, conn in sandbox_connections(sandbox_server.url, ledger_url).items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{name}", json.dumps(conn))
    monkeypatch.setenv(
        "AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG", json.dumps({"go_live": "2000-01-01T00:00:00Z"})
    )
    ledger = Ledger(ledger_url)
    yield ledger
    ledger.dispose()


@pytest.fixture
def gateway(stripe_gateway):
    return stripe_gateway


def run_dag(file, dag_id, **kwargs):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / f"{file}.py"))
    assert bag.import_errors == {}
    return bag.dags[dag_id].test(logical_date=None, **kwargs)


def test_lost_connected_account_webhooks_are_healed_by_the_scheduled_dags(env, sandbox, gateway):
    sandbox.reset({
        "mirakl": {"api_key": "sandbox-mirakl-key", "shops": [
            {"shop_id": 1, "shop_name": "Shop 1", "last_updated_date": "2026-11-20T10:00:00Z"}]},
        "stripe": {"api_key": "sk_test_sandbox", "platform_account": {"id": "acct_platform"},
                   "accounts": [{"id": "acct_s1", "payouts_enabled": True,
                                 "charges_enabled": True, "details_submitted": True,
                                 "requirements": {"currently_due": []}}],
                   "balances": {"acct_s1": {"eur": 5000}}},
    })  # fmt: skip
    env.upsert_account_mapping(AccountMapping(1, "acct_s1", True, True, kyc_status="APPROVED"))
    payout = gateway.create_payout(
        account="acct_s1", amount=1234, currency="eur", idempotency_key="k-po", metadata={}
    )
    env.save_payouts([PayoutRecord("1", PayoutStatus.CREATED, mirakl_shop_id=1,
                                   stripe_account_id="acct_s1", amount=1234, currency="EUR",
                                   payout_id=payout.id)])  # fmt: skip
    # Both happen on the connected account; no webhook endpoint is configured: both are lost.
    sandbox.set_payout_status(payout.id, "failed", failure_code="account_closed",
                              failure_message="The bank account has been closed")  # fmt: skip
    sandbox.patch_account("acct_s1", payouts_enabled=False,
                          requirements={"currently_due": ["external_account"],
                                        "disabled_reason": "requirements.past_due"})  # fmt: skip
    # As on Stripe, the platform's Events list does not hold them; the account's own list does.
    since = datetime(2000, 1, 1, tzinfo=UTC)
    handled = ["account.updated", "payout.failed"]
    assert list(gateway.iter_events(types=handled, created_since=since)) == []
    seller_events = gateway._list(gateway._v1.events.list, {"types": handled}, on_account="acct_s1")
    assert sorted(e["type"] for e in seller_events) == ["account.updated", "payout.failed"]

    sandbox.clear_stripe_requests()
    run = run_dag(
        "stripe_webhook_events", "stripe_event_healing", mark_success_pattern="heal_events"
    )
    assert run.state == "success"
    healed = run.get_task_instance("heal_connected_accounts").xcom_pull(
        task_ids="heal_connected_accounts"
    )
    assert healed["counts"] == {"HEALED": 2}
    calls = sorted((r["method"], r["path"], r["stripe_account"]) for r in sandbox.stripe_requests())
    assert calls == [("GET", "/v1/accounts", None), ("GET", "/v1/payouts", "acct_s1")]

    run = run_dag("stripe_webhook_events", "stripe_webhook_events")
    assert run.state == "success"
    row = env.get_payouts(["1"])["1"]
    assert (row.status, row.status_reason, row.payout_id) == (
        PayoutStatus.FAILED,
        "account_closed: The bank account has been closed",
        payout.id,
    )
    mapping = env.account_mapping_by_stripe_account("acct_s1")
    assert (mapping.payouts_enabled, mapping.disabled_reason) == (False, "requirements.past_due")
    inbox = env.inbox_event_ids("stripe", [f"heal_{payout.id}_failed"])
    assert env.get_inbox_event("stripe", inbox.pop()).status == InboxStatus.PROCESSED

    # Rerun: nothing new to heal, nothing applied twice.
    run = run_dag(
        "stripe_webhook_events", "stripe_event_healing", mark_success_pattern="heal_events"
    )
    again = run.get_task_instance("heal_connected_accounts").xcom_pull(
        task_ids="heal_connected_accounts"
    )
    assert "HEALED" not in again["counts"]


def test_payout_waits_for_pending_funds_then_goes_out_once(env, sandbox, gateway):
    sandbox.reset({
        "mirakl": {"api_key": "sandbox-mirakl-key", "invoices": [
            {"invoice_id": 1, "shop_id": 1, "currency_iso_code": "EUR",
             "date_created": "2026-11-01T00:00:00Z",
             "summary": {"amount_transferred": 12.34, "total_subscription_incl_tax": 0,
                         "total_other_credits_incl_tax": 0, "total_other_invoices_incl_tax": 0}},
        ]},
        "stripe": {"api_key": "sk_test_sandbox", "platform_account": {"id": "acct_platform"},
                   "accounts": [{"id": "acct_s1", "payouts_enabled": True}],
                   "funds_available_after_days": 7},
    })  # fmt: skip
    env.upsert_account_mapping(AccountMapping(1, "acct_s1", True, True, kyc_status="APPROVED"))
    # The seller's share of a charge captured now: pending on its balance for 7 days.
    charge = gateway.create_charge(
        {"amount": 2000, "currency": "eur", "source": "tok_visa"}, idempotency_key="k-ch"
    )
    gateway.create_transfer(amount=1234, currency="eur", destination="acct_s1",
                            idempotency_key="k-tr", metadata={},
                            source_transaction=charge["id"])  # fmt: skip
    expected = datetime.fromtimestamp(charge["created"] + 7 * DAY, UTC)
    balance = gateway.retrieve_balance("acct_s1")
    assert (balance["available"][0]["amount"], balance["pending"][0]["amount"]) == (0, 1234)

    advanced = 0
    try:
        for _ in range(2):  # two daily runs before the funds are there: held, never failed
            run = run_dag("stripe_seller_settlement", "stripe_seller_settlement")
            assert run.state == "success"
            report = run.get_task_instance("report").xcom_pull(task_ids="report")
            assert report["failed_count"] == 0
            row = env.get_payouts(["1"])["1"]
            assert row.status is PayoutStatus.ON_HOLD and row.payout_id is None
            assert row.status_reason == (
                "Waiting for funds: 12.34 EUR to pay out, 0.00 EUR available on acct_s1 "
                f"(balance_insufficient); expected available on {expected:%Y-%m-%d %H:%M} UTC"
            )
            assert sandbox.payouts() == []

        advanced = 7 * DAY + 60
        sandbox.advance_clock(advanced)
        for _ in range(2):  # paid once; the rerun moves nothing more
            run = run_dag("stripe_seller_settlement", "stripe_seller_settlement")
            assert run.state == "success"
        row = env.get_payouts(["1"])["1"]
        assert row.status is PayoutStatus.CREATED and row.status_reason is None
        (paid,) = sandbox.payouts()
        assert (paid["id"], paid["amount"], paid["sandbox_account"]) == (
            row.payout_id,
            1234,
            "acct_s1",
        )
        keys = [r["idempotency_key"] for r in sandbox.stripe_requests("/v1/payouts", "POST")]
        assert keys == [
            "mirakl-connector:payout:1",
            "mirakl-connector:payout:1:retry1",
            "mirakl-connector:payout:1:retry2",
        ]
        assert gateway.retrieve_balance("acct_s1")["available"][0]["amount"] == 0
    finally:
        sandbox.advance_clock(-advanced)
