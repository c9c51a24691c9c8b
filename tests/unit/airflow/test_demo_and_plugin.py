from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from mirakl_connector.airflow.demo import main, mappings_from_scenario
from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.ledger.records import PaymentMappingStatus

PLUGIN = Path(__file__).resolve().parents[3] / "plugins" / "mirakl_connector_plugin.py"
SCENARIO = {
    "mirakl": {},
    "ledger": {
        "account_mappings": [{"mirakl_shop_id": 2001, "stripe_account_id": "acct_1"}],
        "payment_mappings": [
            {"mirakl_commercial_order_id": "CO-1", "stripe_charge_id": "ch_1",
             "status": "CAPTURED"}
        ],
    },
}  # fmt: skip


def test_mappings_parsed_from_the_scenario_ledger_section() -> None:
    accounts, payments = mappings_from_scenario(SCENARIO)
    assert [(a.mirakl_shop_id, a.stripe_account_id) for a in accounts] == [(2001, "acct_1")]
    assert payments[0].stripe_charge_id == "ch_1"
    assert payments[0].status is PaymentMappingStatus.CAPTURED
    assert mappings_from_scenario({}) == ([], [])


def test_unknown_field_is_named() -> None:
    bad = {"ledger": {"account_mappings": [{"mirakl_shop_id": 1, "stripe_acct": "x"}]}}
    with pytest.raises(ConfigurationError, match=r"account_mappings\[0\].*stripe_acct"):
        mappings_from_scenario(bad)


def test_bad_payment_status_is_named() -> None:
    bad = {"ledger": {"payment_mappings": [{"stripe_charge_id": "ch_1", "status": "paid"}]}}
    with pytest.raises(ConfigurationError, match=r"payment_mappings\[0\].*'paid'"):
        mappings_from_scenario(bad)


def test_seed_ledger_command_upserts_every_mapping(fake_library, tmp_path, capsys) -> None:
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(SCENARIO))
    assert main(["seed-ledger", str(path), "--url", "sqlite:///x.db"]) == 0
    assert fake_library.ledgers == ["sqlite:///x.db"]
    assert [type(m).__name__ for m in fake_library.upserts] == ["AccountMapping", "PaymentMapping"]
    assert "1 account mapping(s), 1 payment mapping(s)" in capsys.readouterr().out


def test_plugin_macros_format_minor_units_per_currency() -> None:
    spec = importlib.util.spec_from_file_location("mirakl_connector_plugin_under_test", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    macros = {m.__name__: m for m in module.MiraklConnectorPlugin.macros}
    assert macros["format_minor"](1234, "EUR") == "12.34 EUR"
    assert macros["minor_to_major"](1500, "JPY") == "1500"
    assert macros["minor_to_major"](1234, "KWD") == "1.234"
