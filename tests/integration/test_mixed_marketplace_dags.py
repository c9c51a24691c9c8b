"""A mixed marketplace through the DAGs of both providers: every order and invoice paid once.

The demo marketplace (Stripe shops 1-9) and its Hyperwallet shops (101-108) in one Mirakl, as
``demo.sh`` runs them, plus one shop moving: shop 2 (Stripe) moves to Hyperwallet on
2026-11-18T00:00Z (``payout_provider.shops``). Its orders created before the move are Stripe
transfers; its later orders and its invoice 9002 (2026-11-21) are Hyperwallet's. Then an operator
mistake: shop 104 is pinned to Stripe after Hyperwallet paid its invoice; the claim stops the
Stripe settlement from paying it again.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mirakl_sandbox.hyperwallet_admin import HyperwalletSandboxAdmin
from mirakl_sandbox.scenario import load_scenario

from mirakl_connector.airflow.demo import seed_ledger
from mirakl_connector.ledger import AccountMapping, Ledger
from mirakl_connector.ledger.claims import ClaimKind, find_claims
from mirakl_connector.ledger.records import ORDER_TRANSFER_TYPES, PayoutStatus, TransferStatus

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
SCENARIOS = REPO / "include/sandbox/mirakl_sandbox/scenarios"
MOVE = "2026-11-18T00:00:00Z"


def config(**shops):
    base = json.loads((REPO / "scripts/demo-config.json").read_text(encoding="utf-8"))
    base["payout_provider"]["shops"] = {"2": {"provider": "hyperwallet", "from": MOVE}, **shops}
    base.pop("approval")  # the demo's approval gate holds 9003's payout: not this test's story
    return base


@pytest.fixture
def mixed(sandbox, sandbox_server, tmp_path, monkeypatch, airflow_db):
    sandbox.reset(load_scenario(SCENARIOS / "demo.json"))
    hw = json.loads((SCENARIOS / "demo_hyperwallet.json").read_text(encoding="utf-8"))
    sandbox.load(hw)
    # Shop 2 gets what Hyperwallet needs (program, consent, bank details) for after its move.
    shop2 = next(s for s in sandbox.shops() if s["shop_id"] == 2)
    shop2["shop_additional_fields"] += [
        {"code": "hw-program", "type": "LIST", "value": "EUROPE"},
        {"code": "hw-terms-consent", "type": "BOOLEAN", "value": "true"},
        {"code": "hw-business-type", "type": "LIST", "value": "CORPORATION"},
    ]
    shop2["default_billing_information"] = {
        "corporate_information": {
            "company_registration_name": "Atelier Bois SAS",
            "company_registration_number": "REG2",
        },
        "default_language": "fr",
    }
    shop2["payment_info"] = {
        "@type": "IBAN",
        "owner": "Atelier Bois SAS",
        "bank_name": "BNP",
        "bank_city": "Paris",
        "bic": "BNPAFRPPXXX",
        "iban": "FR1420041010050500013M02606",
    }
    sandbox.put_shops([shop2])
    ledger_url = Ledger.default_sqlite_url(tmp_path)
    seed_ledger(SCENARIOS / "demo.json", url=ledger_url)
    conns = {
        "MIRAKL_DEFAULT": {
            "conn_type": "mirakl", "host": sandbox_server.url, "password": "sandbox-mirakl-key",
        },
        "STRIPE_DEFAULT": {
            "conn_type": "stripe", "password": "sk_test_sandbox", "host": sandbox_server.url,
        },
        "HYPERWALLET_DEFAULT": {
            "conn_type": "hyperwallet", "host": sandbox_server.url,
            "login": hw["hyperwallet"]["username"], "password": hw["hyperwallet"]["password"],
        },
        "MIRAKL_CONNECTOR_DB": {"conn_type": "sqlite", "extra": {"sqlalchemy_url": ledger_url}},
    }  # fmt: skip
    for name, conn in conns.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{name}", json.dumps(conn))
    monkeypatch.setenv("AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG", json.dumps(config()))
    ledger = Ledger(ledger_url)
    yield ledger
    ledger.dispose()


def run_dag(dag_id: str, step_task: str):
    """Run ``dag_id`` (parsed afresh); return the run state and ``step_task``'s summary."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / f"{dag_id}.py"))
    assert bag.import_errors == {}
    run = bag.dags[dag_id].test(logical_date=None)
    summary = run.get_task_instance("report").xcom_pull(task_ids=step_task)
    if isinstance(summary, list):  # a mapped step: its shards
        counts: dict[str, int] = {}
        for shard in summary:
            for status, n in shard["counts"].items():
                counts[status] = counts.get(status, 0) + n
        return run.state, {"counts": counts}
    return run.state, summary


def stripe_paid(sandbox) -> dict[str, list[str]]:
    """Mirakl document id → what Stripe moved for it (transfers and payouts)."""
    moved: dict[str, list[str]] = {}
    for t in sandbox.transfers():
        moved.setdefault(t["metadata"]["miraklId"], []).append(t["id"])
    for p in sandbox.payouts():
        moved.setdefault(p["metadata"]["invoiceId"], []).append(p["id"])
    return moved


def hw_paid(sandbox) -> list[str]:
    admin = HyperwalletSandboxAdmin(sandbox.url)
    try:
        return sorted(p["clientPaymentId"] for p in admin.payments())
    finally:
        admin.close()


def test_every_order_and_invoice_is_paid_once_by_its_provider(mixed, sandbox, monkeypatch):
    ledger = mixed
    states = {}
    summaries = {}
    for dag_id, step in [
        ("stripe_seller_onboarding", "onboard_sellers"),
        ("stripe_payment_split", "plan_transfers"),
        ("stripe_seller_settlement", "plan_settlement"),
        ("hyperwallet_seller_extract", "extract_sellers"),
        ("hyperwallet_bank_account_extract", "extract_bank_accounts"),
        ("hyperwallet_invoice_payments", "pay_invoices"),
    ]:
        states[dag_id], summaries[dag_id] = run_dag(dag_id, step)

    # Onboarding: no Stripe account for a Hyperwallet shop; shop 2 keeps its account.
    onboarding = summaries["stripe_seller_onboarding"]["counts"]
    assert onboarding["NOT_STRIPE_SHOP"] == 9  # 101-108, and 2 since its move
    accounts = {a["metadata"].get("miraklShopId") for a in sandbox.accounts()}
    assert not accounts & {str(i) for i in range(101, 109)}

    # Orders: shop 2's orders before the move went to Stripe, the later ones did not.
    moved = stripe_paid(sandbox)
    assert "ORD-1002-A" in moved  # shop 2, 15 November
    # 17 November, still Stripe's: waits for its capture (the validation DAG), not refused
    assert ledger.get_transfer(ORDER_TRANSFER_TYPES[0], "ORD-1007-A").status is (
        TransferStatus.ON_HOLD
    )
    assert "ORD-1009-A" not in moved  # shop 2, 18 November: Hyperwallet's (via its invoice)
    row = ledger.get_transfer(ORDER_TRANSFER_TYPES[0], "ORD-1009-A")
    assert (row.status, row.status_reason) == (
        TransferStatus.ABORTED,
        "Shop 2 is paid by Hyperwallet, not Stripe (payout_provider.shops.2: stripe before "
        "2026-11-18T00:00:00+00:00, hyperwallet from then on)",
    )

    # Each order transferred at most once, and never one of a shop Hyperwallet pays then.
    assert all(len(ids) == 1 for doc, ids in moved.items() if doc.startswith(("ORD", "SRV")))
    hw_orders = {o["order_id"] for o in sandbox.orders() if o["shop_id"] in range(101, 109)}
    assert not hw_orders & set(moved)

    # Invoices: each paid once, by the right provider.
    paid_by_hw = hw_paid(sandbox)
    assert "9002" in paid_by_hw  # shop 2's invoice of 21 November: after the move
    assert {"9101", "9102", "9104"} <= set(paid_by_hw)
    for invoice in ("9002", "9101", "9102", "9103", "9104", "9108"):
        assert invoice not in moved  # never on Stripe
    for invoice in ("9001", "9003"):
        assert invoice not in paid_by_hw
        assert len([p for p in sandbox.payouts() if p["metadata"]["invoiceId"] == invoice]) == 1
    assert paid_by_hw.count("9002") == 1 and paid_by_hw.count("9101") == 1
    claims = find_claims(ledger, ClaimKind.INVOICE, ["9001", "9002", "9003", "9101", "9104"])
    assert {i: c.provider for i, c in claims.items()} == {
        "9001": "stripe", "9003": "stripe",
        "9002": "hyperwallet", "9101": "hyperwallet", "9104": "hyperwallet",
    }  # fmt: skip
    order_claims = find_claims(ledger, ClaimKind.ORDER, ["ORD-1002-A", "ORD-1009-A"])
    assert {i: c.provider for i, c in order_claims.items()} == {"ORD-1002-A": "stripe"}

    # Rerunning every money DAG moves nothing more.
    before = (stripe_paid(sandbox), hw_paid(sandbox))
    for dag_id, step in [
        ("stripe_payment_split", "plan_transfers"),
        ("stripe_seller_settlement", "plan_settlement"),
        ("hyperwallet_invoice_payments", "pay_invoices"),
    ]:
        run_dag(dag_id, step)
    assert (stripe_paid(sandbox), hw_paid(sandbox)) == before

    # An operator mistake: shop 104 pinned to Stripe (and given a verified account) after
    # Hyperwallet paid invoice 9104. The rule now says Stripe; the claim says no.
    ledger.upsert_account_mapping(
        AccountMapping(104, "acct_demo_104", True, True, kyc_status="APPROVED")
    )
    monkeypatch.setenv(
        "AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG", json.dumps(config(**{"104": "stripe"}))
    )
    for row in ledger.get_payouts(["9104"]).values():  # as if Stripe had never seen 9104
        ledger.save_payouts([_reset(row)])
    state, plan = run_dag("stripe_seller_settlement", "plan_settlement")
    payout = ledger.get_payouts(["9104"])["9104"]
    assert payout.status is PayoutStatus.ABORTED
    assert payout.status_reason.startswith(
        "Invoice 9104 is already claimed for payment by hyperwallet "
        "(by hyperwallet_invoice_payments, run "
    )
    assert "9104" not in stripe_paid(sandbox)
    assert hw_paid(sandbox).count("9104") == 1


def _reset(row):
    from dataclasses import replace

    return replace(row, status=PayoutStatus.ON_HOLD, status_reason="reset by the test")
