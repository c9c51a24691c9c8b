"""The generator, scenario validation, demo.json and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from mirakl_sandbox import SandboxAdmin, ScenarioError, generate_scenario
from mirakl_sandbox.scenario import load_scenario, validate_scenario

DEMO = Path(__file__).parents[2] / "include/sandbox/mirakl_sandbox/scenarios/demo.json"


@pytest.mark.slow  # 100,000 orders
def test_generate_100k_orders_and_serve_first_page(sandbox, admin: SandboxAdmin) -> None:
    summary = admin.generate(orders=100_000, shops=20, currency="EUR", seed=1)
    assert summary["orders"] == 100_000 and summary["charges"] == 100_000
    page = requests.get(
        sandbox.url + "/api/orders",
        params={"max": 100},
        headers={"Authorization": "sandbox-mirakl-key"},
        timeout=30,
    )
    body = page.json()
    assert body["total_count"] == 100_000 and len(body["orders"]) == 100
    first = body["orders"][0]
    assert first["order_id"] == "GEN-0000001-A" and first["order_state"] == "SHIPPING"
    assert first["customer_debited_date"] and first["transaction_number"] == "ch_gen_0000001"
    assert 'rel="next"' in page.headers["Link"]
    assert len(admin.accounts()) == 20


@pytest.mark.parametrize("currency, exponent", [("JPY", 0), ("EUR", 2), ("KWD", 3)])
def test_generated_charge_covers_amount_due(currency: str, exponent: int) -> None:
    scenario = generate_scenario(orders=50, shops=3, currency=currency, seed=5, service_orders=2)
    charges = {c["id"]: c for c in scenario["stripe"]["charges"]}
    for order in scenario["mirakl"]["orders"]:
        tax = Decimal(str(order["order_lines"][0]["taxes"][0]["amount"]))
        due = (Decimal(str(order["total_price"])) + tax).scaleb(exponent)
        charge = charges[order["transaction_number"]]
        assert charge["amount"] == int(due) and charge["currency"] == currency.lower()
        assert Decimal(str(order["total_commission"])).scaleb(exponent) < due
    dates = [o["created_date"] for o in scenario["mirakl"]["orders"]]
    assert dates == sorted(dates)
    assert generate_scenario(orders=5, seed=5) == generate_scenario(orders=5, seed=5)
    assert len(scenario["mirakl"]["service_debits"]) == 2


def test_scenario_errors_name_the_entry() -> None:
    with pytest.raises(ScenarioError, match=r"mirakl.orders\[1\]: missing 'order_id'"):
        validate_scenario(
            {
                "mirakl": {
                    "orders": [
                        {"order_id": "A", "created_date": "2026-01-01T00:00:00Z"},
                        {"created_date": "2026-01-01T00:00:00Z"},
                    ]
                }
            }
        )
    with pytest.raises(ScenarioError, match=r"stripe.charges\[0\].amount: must be an integer"):
        validate_scenario({"stripe": {"charges": [{"id": "ch", "amount": 1.5, "currency": "eur"}]}})
    with pytest.raises(ScenarioError, match="created_date"):
        validate_scenario({"mirakl": {"orders": [{"order_id": "A", "created_date": "soon"}]}})
    assert validate_scenario({"ledger": {"x": 1}}) == {"ledger": {"x": 1}}


def test_reset_with_bad_scenario_is_400(sandbox, admin: SandboxAdmin) -> None:
    response = requests.post(
        sandbox.url + "/_sandbox/reset", json={"mirakl": {"shops": [{"name": "x"}]}}, timeout=5
    )
    assert response.status_code == 400
    assert "mirakl.shops[0]: missing 'shop_id'" in response.json()["error"]


def test_demo_scenario_loads_and_is_consistent(sandbox, admin: SandboxAdmin) -> None:
    scenario = load_scenario(DEMO)
    admin.reset(scenario)
    mirakl, stripe_data = scenario["mirakl"], scenario["stripe"]
    states = {o["order_state"] for o in mirakl["orders"]}
    assert {
        "SHIPPING",
        "REFUSED",
        "CANCELED",
        "WAITING_ACCEPTANCE",
        "WAITING_DEBIT_PAYMENT",
    } <= states
    currencies = {o["currency_iso_code"] for o in mirakl["orders"]}
    assert {"EUR", "JPY", "KWD"} <= currencies
    for order in mirakl["orders"]:
        if order["total_price"]:  # refused / canceled orders are zeroed, as Mirakl does
            assert order["total_commission"] < order["total_price"], order["order_id"]
    mapped = {m["mirakl_shop_id"] for m in scenario["ledger"]["account_mappings"]}
    account_ids = {a["id"] for a in stripe_data["accounts"]}
    assert {m["stripe_account_id"] for m in scenario["ledger"]["account_mappings"]} <= account_ids
    assert {s["shop_id"] for s in mirakl["shops"]} - mapped  # at least one shop without account
    assert len(mirakl["service_orders"]) == 3
    page = requests.get(
        sandbox.url + "/api/orders",
        params={"max": 100},
        headers={"Authorization": mirakl["api_key"]},
        timeout=5,
    ).json()
    assert page["total_count"] == len(mirakl["orders"])


@pytest.mark.slow  # starts the sandbox as a process
def test_cli_prints_ready_line_and_serves(tmp_path: Path) -> None:
    scenario = tmp_path / "s.json"
    scenario.write_text(json.dumps({"mirakl": {"api_key": "k"}}))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mirakl_sandbox",
            "--port",
            "0",
            "--scenario",
            str(scenario),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": str(DEMO.parents[3]), "PATH": "/usr/bin:/bin"},
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("sandbox listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        assert requests.get(
            url + "/api/version", headers={"Authorization": "k"}, timeout=5
        ).json() == {"version": "3.210"}
    finally:
        proc.terminate()
        proc.wait(10)
