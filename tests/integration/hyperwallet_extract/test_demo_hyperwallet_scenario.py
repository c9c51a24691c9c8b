"""The Hyperwallet demo scenario gives the outcomes the README promises (both extracts)."""

from __future__ import annotations

import json
from pathlib import Path

from mirakl_connector.hyperwallet.bank_account_sync import BankAccountExtract
from mirakl_connector.hyperwallet.currency_selection import CurrencySettings
from mirakl_connector.hyperwallet.programs import HyperwalletSettings
from mirakl_connector.hyperwallet.seller_sync import SellerExtract, SellerExtractSettings
from mirakl_connector.ledger import Ledger

SCENARIO = (
    Path(__file__).resolve().parents[3]
    / "include/sandbox/mirakl_sandbox/scenarios/demo_hyperwallet.json"
)
DEMO_CONFIG = {
    "hyperwallet": {
        "programs": [
            {"name": "EUROPE", "user_token": "prg-demo-users", "payment_token": "prg-demo-payments",
             "bank_account_token": "trm-demo-operator"},
            {"name": "OTHER", "ignored": True},
        ]
    }
}  # fmt: skip


def test_demo_scenario_outcomes(sandbox, mirakl, hyperwallet, tmp_path):
    sandbox.load(json.loads(SCENARIO.read_text()))
    settings = HyperwalletSettings.from_config(DEMO_CONFIG)
    with Ledger(Ledger.default_sqlite_url(tmp_path)) as ledger:
        common = {"mirakl": mirakl, "hyperwallet": hyperwallet, "ledger": ledger,
                  "settings": settings}  # fmt: skip
        sellers = SellerExtract(seller_settings=SellerExtractSettings(), **common)
        assert sellers.check().counts == {"PROGRAM_OK": 2}
        assert sellers.sync().counts == {
            "CREATED": 5, "SKIPPED_IGNORED_PROGRAM": 1, "SKIPPED_NO_CONSENT": 1,
            "SKIPPED_TERMINATED": 1,
        }  # fmt: skip
        accounts = BankAccountExtract(currency_settings=CurrencySettings(), **common).sync()
    assert accounts.counts == {
        "CREATED": 4, "FAILED": 1, "SKIPPED_IGNORED_PROGRAM": 1, "SKIPPED_NO_CONSENT": 1,
        "SKIPPED_TERMINATED": 1,
    }  # fmt: skip
    assert accounts.failed == [
        {"id": "105", "reason": "invalid data: IBAN ****3457 has wrong check digits"}
    ]
