"""The onboarding and KYC monitor DAGs run in-process (``dag.test``) against the sandbox.

What an operator sees: the run state, the report's summary, the accounts in Stripe, the links in
Mirakl and the KYC e-mail as the SMTP server received it. The rules themselves are covered by
the job tests (test_onboarding.py, test_kyc_monitor.py); these prove the wiring.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mirakl_connector.ledger import Ledger
from mirakl_connector.stripe.onboarding import CHECKPOINT_KEY

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture
def airflow_env(sandbox, sandbox_server, tmp_path, monkeypatch, airflow_db, smtp_server):
    host, port, _inbox = smtp_server
    ledger_url = Ledger.default_sqlite_url(tmp_path)
    connections = {
        "MIRAKL_DEFAULT": {
            "conn_type": "mirakl", "host": sandbox_server.url, "password": "sandbox-mirakl-key",
        },
        "STRIPE_DEFAULT": {
            "conn_type": "stripe", "host": sandbox_server.url, "password": "sk_test_sandbox",
        },
        "MIRAKL_CONNECTOR_DB": {"conn_type": "sqlite", "extra": {"sqlalchemy_url": ledger_url}},
        "SMTP_DEFAULT": {
            "conn_type": "smtp", "host": host, "port": port,
            "extra": {"disable_tls": True, "disable_ssl": True,
                      "from_email": "airflow@example.com"},
        },
    }  # fmt: skip
    for name, conn in connections.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{name}", json.dumps(conn))
    monkeypatch.setenv(
        "AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG",
        json.dumps(
            {
                "seller_onboarding": {"refresh_base_url": "https://connector.example.com"},
                "kyc_monitor": {"update_mirakl": True},
                "alerts": {"email_to": ["kyc-ops@example.com"]},
            }
        ),
    )
    return ledger_url


def run_dag(dag_id, task_ids, **conf):
    """Parse the DAG file afresh, run it; return the run and the XComs of ``task_ids``."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / f"{dag_id}.py"))
    assert bag.import_errors == {}
    run = bag.dags[dag_id].test(run_conf=conf or None, logical_date=None)
    ti = run.get_task_instance("report")
    return run, {t: ti.xcom_pull(task_ids=t) for t in task_ids}


def test_onboarding_then_kyc_monitor(airflow_env, sandbox, smtp_server):
    sandbox.put_shops(
        [
            {"shop_id": 1, "shop_name": "Shop 1", "last_updated_date": "2026-11-20T10:00:00Z"},
            {"shop_id": 2, "shop_name": "Shop 2", "last_updated_date": "2026-11-20T11:00:00Z",
             "shop_additional_fields": [{"code": "stripe-ignored", "value": "true"}]},
        ]
    )  # fmt: skip

    # A dry run first: nothing created.
    run, xcoms = run_dag("stripe_seller_onboarding", ["onboard_sellers"], dry_run=True)
    assert run.state == "success"
    assert xcoms["onboard_sellers"]["counts"] == {"WOULD_CREATE_ACCOUNT": 2}
    assert sandbox.accounts() == []

    run, xcoms = run_dag("stripe_seller_onboarding", ["onboard_sellers", "report"])
    assert run.state == "success"
    assert xcoms["onboard_sellers"]["counts"] == {"ACCOUNT_CREATED": 2}
    assert xcoms["report"]["failed_count"] == 0
    accounts = {a["metadata"]["miraklShopId"]: a["id"] for a in sandbox.accounts()}
    assert set(accounts) == {"1", "2"}
    links = {
        s["shop_id"]: {f["code"]: f["value"] for f in s["shop_additional_fields"]}["stripe-url"]
        for s in sandbox.shops()
    }
    assert all("refresh_url=https://connector.example.com/onboarding/refresh" in v
               for v in links.values())  # fmt: skip
    with Ledger(airflow_env) as ledger:
        assert ledger.get_checkpoint(CHECKPOINT_KEY) == "2026-11-20T11:00:00Z"
        mappings = ledger.account_mappings_by_shop([1, 2])
        assert (mappings[1].ignored, mappings[2].ignored) == (False, True)

    # New Express accounts still have requirements due: the monitor reports both, once.
    inbox = smtp_server[2]
    run, xcoms = run_dag("stripe_kyc_monitor", ["monitor_kyc", "report"])
    assert run.state == "success"
    assert xcoms["monitor_kyc"]["counts"]["PENDING_SUBMISSION"] == 2
    [message] = inbox.messages
    assert message["Subject"] == "[Mirakl connector] KYC required"
    assert message["X-Rcpt-To"] == "kyc-ops@example.com"
    body = message.get_body().get_content()
    for shop_id, acct in accounts.items():
        assert f"<td>{shop_id}</td><td>{acct}</td><td>PENDING_SUBMISSION</td>" in body
    kyc = {s["shop_id"]: s.get("kyc", {}).get("status") for s in sandbox.shops()}
    assert kyc == {1: "PENDING_SUBMISSION", 2: "PENDING_SUBMISSION"}

    run, _ = run_dag("stripe_kyc_monitor", ["monitor_kyc"])
    assert run.state == "success"
    assert len(inbox.messages) == 1  # nothing new, no e-mail


def test_manual_since_run_leaves_the_gap_to_the_next_scheduled_run(airflow_env, sandbox):
    """Issue 11 point 1: a ``since`` later than the checkpoint must not move it past the shops
    updated in between, or they are never onboarded."""

    def shop(shop_id, updated):
        link = {"code": "stripe-url", "value": "https://kept"}
        return {"shop_id": shop_id, "shop_name": f"Shop {shop_id}", "last_updated_date": updated,
                "shop_additional_fields": [link]}  # fmt: skip

    def onboarded():
        return sorted(a["metadata"]["miraklShopId"] for a in sandbox.accounts())

    sandbox.put_shops([shop(1, "2026-11-20T10:00:00Z")])
    run, _ = run_dag("stripe_seller_onboarding", ["onboard_sellers"])
    assert run.state == "success"
    assert onboarded() == ["1"]
    with Ledger(airflow_env) as ledger:
        assert ledger.get_checkpoint(CHECKPOINT_KEY) == "2026-11-20T10:00:00Z"

    sandbox.put_shops([shop(2, "2026-11-20T12:00:00Z"), shop(3, "2026-11-20T14:00:00Z")])
    run, xcoms = run_dag("stripe_seller_onboarding", ["onboard_sellers"],
                         since="2026-11-20T13:00:00+00:00")  # fmt: skip
    assert run.state == "success"
    assert onboarded() == ["1", "3"]  # shop 2 is before `since`: not read by this run
    with Ledger(airflow_env) as ledger:
        assert ledger.get_checkpoint(CHECKPOINT_KEY) == "2026-11-20T10:00:00Z"

    run, xcoms = run_dag("stripe_seller_onboarding", ["onboard_sellers"])  # scheduled
    assert run.state == "success"
    assert onboarded() == ["1", "2", "3"]  # one account each
    assert xcoms["onboard_sellers"]["counts"]["ACCOUNT_CREATED"] == 1


def test_a_transfers_only_seller_is_approved_once_onboarded(airflow_env, sandbox, sandbox_server):
    """The seller account has only the ``transfers`` capability: ``charges_enabled`` stays
    false after onboarding, and the KYC monitor still approves it (payouts enabled and
    transfers active), so its transfers are not held forever."""
    import httpx

    sandbox.put_shops(
        [{"shop_id": 1, "shop_name": "Shop 1", "last_updated_date": "2026-11-20T10:00:00Z"}]
    )
    run, _ = run_dag("stripe_seller_onboarding", ["onboard_sellers"])
    assert run.state == "success"
    [account] = sandbox.accounts()
    assert account["capabilities"] == {"transfers": "inactive"}

    # the seller completes the onboarding link
    httpx.get(f"{sandbox_server.url}/_sandbox/onboarding/{account['id']}").raise_for_status()
    [account] = sandbox.accounts()
    assert account["capabilities"] == {"transfers": "active"}
    assert (account["charges_enabled"], account["payouts_enabled"]) == (False, True)

    run, xcoms = run_dag("stripe_kyc_monitor", ["monitor_kyc"])
    assert run.state == "success"
    assert xcoms["monitor_kyc"]["counts"].get("APPROVED") == 1
    with Ledger(airflow_env) as ledger:
        assert ledger.account_mappings_by_shop([1])[1].kyc_status == "APPROVED"
