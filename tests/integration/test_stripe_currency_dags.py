"""One shop paid in MGA, ISK, KWD, JPY, HUF, EUR (and IRR, which Stripe does not support),
through the payment split and settlement DAGs, on each ledger backend.

What Stripe must receive follows docs.stripe.com/currencies ("Zero-decimal", "Three-decimal",
"Special cases"); the ledger keeps ISO 4217 minor units and the residue Stripe's unit left over.
The simulator refuses what Stripe refuses (KWD not ending in 0, HUF payouts not in hundreds,
unsupported currencies), so an amount sent in the wrong unit fails these tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.records import (
    AccountMapping,
    PayoutStatus,
    TransferStatus,
    TransferType,
)

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

DAGS = Path(__file__).resolve().parents[2] / "dags"
SHOP = 60
ACCOUNT = "acct_multi_currency"

#: currency -> (order total, commission, the charge in Stripe's unit or None)
ORDERS = {
    "MGA": ("12000.50", "1000.00", 12000),  # zero-decimal for Stripe (two in ISO 4217)
    "ISK": ("5000", "600", 500000),  # two decimals for Stripe, whole kronur (none in ISO)
    "KWD": ("12.755", "1.530", 12760),  # three decimals, last one 0
    "JPY": ("12800", "1536", 12800),
    "HUF": ("1234.56", "100.00", 123456),  # transfers keep fillér
    "EUR": ("108.68", "10.00", 10868),
    "IRR": ("1000.00", "100.00", None),  # Stripe does not support it
}

#: currency -> (Stripe amount, ledger amount in ISO minor units, residue)
EXPECTED_TRANSFERS = {
    "mga": (11000, 1100000, 50),
    "isk": (440000, 4400, None),
    "kwd": (11220, 11220, 5),
    "jpy": (11264, 11264, None),
    "huf": (113456, 113456, None),
    "eur": (9868, 9868, None),
}


def _order(currency: str, total: str, commission: str, charge: int | None) -> dict:
    order_id = f"MC-{currency}-A"
    return {
        "id": abs(hash(currency)) % 100000, "order_id": order_id,
        "commercial_id": f"MC-{currency}", "created_date": "2026-11-18T08:15:00Z",
        "last_updated_date": "2026-11-18T08:15:00Z",
        "acceptance_decision_date": "2026-11-18T08:15:00Z",
        "customer_debited_date": "2026-11-18T09:00:00Z", "currency_iso_code": currency,
        "order_state": "SHIPPING", "order_tax_mode": "TAX_EXCLUDED",
        "payment_workflow": "PAY_ON_ACCEPTANCE", "shop_id": SHOP, "shop_name": "Multi",
        "price": total, "shipping_price": 0, "total_price": total,
        "total_commission": commission,
        "transaction_number": f"ch_mc_{currency.lower()}" if charge else None,
        "customer": {"customer_id": "c1", "firstname": "A", "lastname": "B",
                     "email": "b@demo.test"},
        "order_lines": [{
            "order_line_id": f"{order_id}-1", "order_line_state": "SHIPPING",
            "offer_sku": "SKU", "quantity": 1, "price": total, "total_price": total,
            "commission_fee": commission, "total_commission": commission,
            "taxes": [], "shipping_taxes": [],
        }],
    }  # fmt: skip


def _invoice(invoice_id: int, currency: str, amount: str) -> dict:
    return {
        "invoice_id": invoice_id, "shop_id": SHOP, "currency_iso_code": currency,
        "date_created": "2026-11-20T00:00:00Z",
        "summary": {"amount_transferred": amount, "total_subscription_incl_tax": 0,
                    "total_other_credits_incl_tax": 0, "total_other_invoices_incl_tax": 0},
    }  # fmt: skip


def _scenario() -> dict:
    orders = [_order(c, t, m, ch) for c, (t, m, ch) in ORDERS.items()]
    charges = [
        {"id": f"ch_mc_{c.lower()}", "amount": ch, "currency": c.lower(), "status": "succeeded",
         "captured": True, "refunded": False, "payment_intent": None,
         "metadata": {"mirakl_commercial_order_id": f"MC-{c}"}}
        for c, (_, _, ch) in ORDERS.items() if ch
    ]  # fmt: skip
    return {
        "mirakl": {
            "api_key": "sandbox-mirakl-key",
            "shops": [{"shop_id": SHOP, "shop_name": "Multi", "shop_state": "OPEN",
                       "currency_iso_code": "EUR", "date_created": "2026-10-01T09:00:00Z",
                       "last_updated_date": "2026-11-11T09:00:00Z"}],
            "orders": orders,
            "invoices": [_invoice(9601, "HUF", "1234.56"), _invoice(9602, "ISK", "5000"),
                         _invoice(9603, "IRR", "50.00"), _invoice(9604, "MGA", "1500.75")],
        },
        "stripe": {
            "api_key": "sk_test_sandbox",
            "platform_account": {"id": "acct_platform", "country": "FR",
                                 "default_currency": "eur"},
            "accounts": [{"id": ACCOUNT, "type": "express", "country": "FR",
                          "default_currency": "eur", "charges_enabled": False,
                          "payouts_enabled": True, "details_submitted": True,
                          "capabilities": {"transfers": "active"},
                          "requirements": {"currently_due": [], "pending_verification": [],
                                           "disabled_reason": None},
                          "metadata": {"miraklShopId": str(SHOP)}}],
            "charges": charges,
        },
    }  # fmt: skip


@pytest.fixture
def env(sandbox, sandbox_server, ledger_url, monkeypatch, airflow_db):
    sandbox.reset(_scenario())
    conns = {
        "MIRAKL_DEFAULT": {"conn_type": "mirakl", "host": sandbox_server.url,
                           "password": "sandbox-mirakl-key"},
        "STRIPE_DEFAULT": {"conn_type": "stripe", "host": sandbox_server.url,
                           "password": "sk_test_sandbox"},
        "MIRAKL_CONNECTOR_DB": {"conn_type": "sqlite", "extra": {"sqlalchemy_url": ledger_url}},
    }  # fmt: skip
    for name, conn in conns.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{name}", json.dumps(conn))
    monkeypatch.setenv("AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG", json.dumps(
        {"payment_split": {"product_enabled": True, "service_enabled": True},
         "go_live": "2026-01-01T00:00:00Z"}))  # fmt: skip
    ledger = Ledger(ledger_url)
    ledger.upsert_account_mapping(AccountMapping(SHOP, ACCOUNT, True, False, kyc_status="APPROVED"))
    yield ledger
    ledger.dispose()


def run_dag(dag_id: str, **conf):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / f"{dag_id}.py"))
    assert bag.import_errors == {}
    run = bag.dags[dag_id].test(run_conf=conf or None, logical_date=None)
    return run, run.get_task_instance("report").xcom_pull(task_ids="report")


def _steps(run, task_id: str) -> dict:
    from mirakl_connector.airflow.operators.report import combine_mapped

    value = run.get_task_instance("report").xcom_pull(task_ids=task_id)
    return combine_mapped([value] if isinstance(value, dict) else list(value))


def test_a_shop_paid_in_six_currencies_gets_what_stripes_rules_say(env, sandbox):
    run, report = run_dag("stripe_payment_split")

    # every supported currency went out once, in Stripe's unit, rounded down
    sent = {t["currency"]: t["amount"] for t in sandbox.transfers()}
    assert sent == {cur: stripe for cur, (stripe, _, _) in EXPECTED_TRANSFERS.items()}
    rows = env.get_transfers(TransferType.PRODUCT_ORDER, [f"MC-{c}-A" for c in ORDERS])
    for cur, (_, ledger_amount, residue) in EXPECTED_TRANSFERS.items():
        row = rows[f"MC-{cur.upper()}-A"]
        assert (row.status, row.amount, row.amount_residue) == (
            TransferStatus.CREATED,
            ledger_amount,
            residue,
        ), cur
    # the unsupported currency failed alone, with the reason, before any call
    irr = rows["MC-IRR-A"]
    assert irr.status is TransferStatus.FAILED
    assert irr.status_reason.startswith("Currency IRR is not supported by Stripe")
    assert not [r for r in sandbox.stripe_requests() if "irr" in json.dumps(r).lower()]
    assert run.state == "failed"  # a failed item fails the report (the operator must look)
    created = _steps(run, "create_transfers")
    assert created["counts"]["TRANSFER_CREATED"] == 6
    # the residues are in the run summary, in major units
    assert created["residues"]["TRANSFER_CREATED"] == {"KWD": "0.005", "MGA": "0.50"}
    plan = _steps(run, "plan_transfers")
    assert [f["id"] for f in plan["failed"]] == ["MC-IRR-A"]
    assert report is None  # the report task raised: the failure is e-mailed, not hidden

    # a rerun moves nothing twice
    run_dag("stripe_payment_split")
    assert len(sandbox.transfers()) == 6


def test_settlement_pays_out_huf_in_whole_forints_and_isk_with_two_decimals(env, sandbox):
    run, _ = run_dag("stripe_seller_settlement")

    paid = {p["currency"]: p["amount"] for p in sandbox.payouts()}
    # HUF 1234.56: payouts in whole forints (divisible by 100); ISK 5000 is 500000;
    # MGA 1500.75 is 1500 (zero-decimal)
    assert paid == {"huf": 123400, "isk": 500000, "mga": 1500}
    rows = env.get_payouts(["9601", "9602", "9603", "9604"])
    assert (rows["9601"].amount, rows["9601"].amount_residue) == (123400, 56)
    assert (rows["9602"].amount, rows["9602"].amount_residue) == (5000, None)
    assert (rows["9604"].amount, rows["9604"].amount_residue) == (150000, 75)
    assert rows["9603"].status is PayoutStatus.FAILED
    assert "IRR is not supported by Stripe" in rows["9603"].status_reason
    payouts = _steps(run, "create_payouts")
    assert payouts["residues"]["PAYOUT_CREATED"] == {"HUF": "0.56", "MGA": "0.75"}

    run_dag("stripe_seller_settlement")
    assert len(sandbox.payouts()) == 3  # never paid twice
