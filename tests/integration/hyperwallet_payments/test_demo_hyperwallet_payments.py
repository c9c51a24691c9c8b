"""The Hyperwallet demo scenario end to end: extracts, invoice payments, notifications."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from mirakl_connector.hyperwallet.bank_account_sync import BankAccountExtract
from mirakl_connector.hyperwallet.currency_selection import CurrencySettings
from mirakl_connector.hyperwallet.invoice_payments import (
    HyperwalletInvoicePayments,
    HyperwalletPaymentSettings,
)
from mirakl_connector.hyperwallet.kyc_status import HyperwalletKycStatusJob
from mirakl_connector.hyperwallet.notifications import NotificationSettings
from mirakl_connector.hyperwallet.payment_status import HyperwalletPaymentStatusJob
from mirakl_connector.hyperwallet.programs import HyperwalletSettings
from mirakl_connector.hyperwallet.seller_sync import SellerExtract, SellerExtractSettings
from mirakl_connector.ledger import Ledger
from mirakl_connector.operations.first_run import GoLive

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
SINCE = datetime(2026, 1, 1, tzinfo=UTC)  # the demo invoices are dated November 2026


def test_demo_invoices_are_paid_confirmed_and_kyc_applied(
    hw, sandbox, hw_admin, mirakl, hyperwallet, tmp_path
):
    sandbox.load(json.loads(SCENARIO.read_text()))
    settings = HyperwalletSettings.from_config(DEMO_CONFIG)
    with Ledger(Ledger.default_sqlite_url(tmp_path)) as ledger:
        common = {"mirakl": mirakl, "hyperwallet": hyperwallet, "ledger": ledger,
                  "settings": settings}  # fmt: skip
        SellerExtract(seller_settings=SellerExtractSettings(), **common).sync()
        BankAccountExtract(currency_settings=CurrencySettings(), **common).sync()
        payments = HyperwalletInvoicePayments(
            payments=HyperwalletPaymentSettings(), go_live=GoLive(SINCE), **common
        ).pay(since=SINCE)

        assert payments.counts == {"PAID": 6, "REFUSED": 1, "SKIPPED": 1}
        assert [f["id"] for f in payments.failed] == ["9103-operatorFee"]
        paid = {p["clientPaymentId"]: p for p in hw_admin.payments()}
        assert sorted(paid) == [
            "9101",
            "9101-operatorFee",
            "9102",
            "9102-operatorFee",
            "9103",
            "9104",
        ]
        assert (paid["9102"]["amount"], paid["9102"]["currency"]) == ("860.00", "CAD")
        assert paid["9101-operatorFee"]["destinationToken"] == "trm-demo-operator"

        sent = hw_admin.set_payment_status(paid["9101"]["token"], "COMPLETED")
        hw.store(ledger, sent["notification"])
        user = next(u for u in hw_admin.users() if u.get("clientUserId") == "101")
        verified = hw_admin.set_user_status(user["token"], verificationStatus="VERIFIED")
        hw.store(ledger, verified["notification"])

        status = HyperwalletPaymentStatusJob(
            mirakl=lambda: mirakl,
            hyperwallet=lambda: hyperwallet,
            ledger=ledger,
            settings=NotificationSettings(),
            payments=HyperwalletPaymentSettings(),
        ).process()
        kyc = HyperwalletKycStatusJob(
            mirakl=lambda: mirakl,
            hyperwallet=lambda: hyperwallet,
            ledger=ledger,
            settings=NotificationSettings(),
        ).process()

    assert status.counts == {"PROCESSED": 1} and kyc.counts == {"PROCESSED": 1}
    invoices = {i["invoice_id"]: i for i in sandbox.state()["mirakl"]["invoices"]}
    assert invoices[9101]["payment"]["state"] == "PAID"
    shop = next(s for s in sandbox.state()["mirakl"]["shops"] if s["shop_id"] == 101)
    assert shop["kyc"]["status"] == "APPROVED"
