"""Issue 15 for Hyperwallet invoice payments: a retry run costs what changed, not what waits.

Three invoices held for their shop (no bank account token yet). Between two full sweeps a
retry run asks Mirakl which shops changed (S20 ``updated_since``, one call) and processes only
the held invoices of those shops; it makes no Hyperwallet call when none changed. What a held
invoice waits for lands in Mirakl whoever makes it: our bank account extract writes the token
with S07, the operator edits the shop. Calls are counted at the sandbox.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mirakl_connector.hyperwallet.invoice_payments import WORKFLOW
from mirakl_connector.ledger import HyperwalletPaymentStatus

from .conftest import iso
from .test_invoice_payments import _job

SHOPS = (2001, 2002, 2003)
INVOICES = {2001: "230201", 2002: "230202", 2003: "230203"}


def _paid(hw_admin) -> dict[str, str]:
    return {p["clientPaymentId"]: p["destinationToken"] for p in hw_admin.payments()}


@pytest.fixture
def held(hw, sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger):
    sandbox.reset(
        hw.scenario(
            shops=[hw.shop(s, bank_token=None) for s in SHOPS],
            invoices=[hw.invoice(int(i), shop_id=s) for s, i in INVOICES.items()],
        )
    )
    job = _job(mirakl, hyperwallet, workflow_ledger, operator_commissions=False)
    first = job.pay().to_dict()
    assert first["counts"] == {"ON_HOLD": 3}
    assert {i.item_id for i in workflow_ledger.pending_items(WORKFLOW)} == set(INVOICES.values())
    assert workflow_ledger.get_checkpoint(f"{WORKFLOW}_full_sweep")  # the first run swept
    sandbox.clear_mirakl_calls()
    hw_admin.clear_calls()
    return job


def test_an_idle_retry_asks_mirakl_once_and_hyperwallet_nothing(held, sandbox, hw_admin):
    summary = held.retry().to_dict()

    assert summary["total"] == 0
    assert hw_admin.calls() == []
    [s20] = sandbox.mirakl_calls()
    assert s20["endpoint"] == "S20" and "updated_since" in s20["query"]
    assert any("changes since" in n for n in summary["notes"])


def test_a_held_invoice_is_paid_once_our_bank_account_extract_writes_its_token(
    held, sandbox, hw_admin, mirakl, workflow_ledger
):
    # the bank account extract created the seller's bank account (a token the sandbox's
    # Hyperwallet holds) and wrote its token to the shop (S07)
    fields = [{"code": "hw-bankaccount-token", "value": "trm-seller-new"}]
    mirakl.update_shops([{"shop_id": 2001, "shop_additional_fields": fields}])

    summary = held.retry().to_dict()

    assert summary["counts"] == {"PAID": 1}
    assert _paid(hw_admin) == {"230201": "trm-seller-new"}
    row = workflow_ledger.get_hyperwallet_payment("230201")
    assert row.status is HyperwalletPaymentStatus.CREATED
    assert {i.item_id for i in workflow_ledger.pending_items(WORKFLOW)} == {"230202", "230203"}
    # the changed invoice read by id, not the window; the other two not looked at
    iv01 = sandbox.mirakl_calls("IV01")
    assert [c["query"].get("invoice_id") for c in iv01] == ["230201"]


def test_a_held_invoice_is_paid_once_the_shop_is_corrected_in_mirakl(held, hw, sandbox, hw_admin):
    now = iso(datetime.now(UTC))
    sandbox.put_shops([hw.shop(2002, bank_token="trm-seller", last_updated_date=now)])

    summary = held.retry().to_dict()

    assert summary["counts"] == {"PAID": 1}
    assert _paid(hw_admin) == {"230202": "trm-seller"}


def test_the_full_sweep_catches_a_shop_change_the_update_date_missed(
    held, hw, sandbox, hw_admin, workflow_ledger
):
    # corrected, but its update date left two days back (older than any overlap)
    sandbox.put_shops([hw.shop(2003, bank_token="trm-seller")])
    assert held.retry().to_dict()["total"] == 0
    assert hw_admin.calls() == []

    workflow_ledger.set_checkpoint(f"{WORKFLOW}_full_sweep", "2000-01-01T00:00:00+00:00")
    summary = held.retry().to_dict()

    assert summary["counts"]["PAID"] == 1
    assert _paid(hw_admin) == {"230203": "trm-seller"}
    assert any("full sweep" in n for n in summary["notes"])
