"""The console's actions on Hyperwallet payments, with the invoice payments job after them:
a held payment is not sent (its invoice's other payment is), its release queues the invoice
again and the next retry pays it once; a payment in doubt resolved *found* is checked at
Hyperwallet and never created again."""

from __future__ import annotations

import pytest

from mirakl_connector.console.actions import ActionServices, Actor, ConsoleActions
from mirakl_connector.hyperwallet.invoice_payments import WORKFLOW
from mirakl_connector.ledger import HyperwalletPaymentStatus
from mirakl_connector.ledger.manual_actions import ActionRefused

from .test_invoice_payments import _job, _payments

S = HyperwalletPaymentStatus
ALICE = Actor("alice")


@pytest.fixture
def actions(workflow_ledger, hyperwallet):
    def no_trigger(*args, **kwargs):
        raise AssertionError("no run is triggered here")

    return ConsoleActions(
        ActionServices(
            ledger=lambda: workflow_ledger, trigger=no_trigger, hyperwallet=lambda: hyperwallet
        )
    )


def test_held_payment_is_not_sent_until_released_then_paid_once(
    hw, sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger, clock, actions
):
    sandbox.reset(hw.scenario(shops=[hw.shop(bank_token=None)], invoices=[hw.invoice(230201)]))
    job = _job(mirakl, hyperwallet, workflow_ledger, clock=clock)
    assert job.pay().to_dict()["counts"] == {"ON_HOLD": 1}  # no bank account token yet
    seller = workflow_ledger.get_hyperwallet_payment("230201")
    actions.hold("hyperwallet_payment", seller.id, actor=ALICE, why="bank details disputed")
    mirakl.update_shops([{"shop_id": 2001, "shop_additional_fields": [
        {"code": "hw-bankaccount-token", "value": "trm-seller"}]}])  # fmt: skip

    retried = job.retry().to_dict()

    assert retried["counts"] == {"HELD": 1, "PAID": 1}
    assert [p["clientPaymentId"] for p in _payments(hw_admin)] == ["230201-operatorFee"]
    assert workflow_ledger.get_hyperwallet_payment("230201").status_reason == (
        "held by alice: bank details disputed"
    )
    assert workflow_ledger.pending_items(WORKFLOW) == []  # held: neither retried nor alerted

    actions.release("hyperwallet_payment", seller.id, actor=ALICE, why="bank confirmed")
    assert [i.item_id for i in workflow_ledger.pending_items(WORKFLOW)] == ["230201"]
    paid = job.retry().to_dict()

    assert paid["counts"] == {"PAID": 1, "ALREADY_PAID": 1}
    assert [p["clientPaymentId"] for p in _payments(hw_admin)] == ["230201", "230201-operatorFee"]
    assert job.retry().to_dict()["total"] == 0 and len(hw_admin.payments()) == 2


def test_payment_in_doubt_resolved_found_is_checked_and_never_created_again(
    hw, sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger, actions
):
    sandbox.reset(hw.scenario(shops=[hw.shop()], invoices=[hw.invoice(230201)]))
    sandbox.set_faults({"rules": [{"target": "hyperwallet", "method": "POST",
                                   "path": "/rest/v4/payments", "times": 1,
                                   "action": "lost_response"}]})  # fmt: skip
    job = _job(mirakl, hyperwallet, workflow_ledger, operator_commissions=False)
    assert job.pay().to_dict()["counts"] == {"IN_DOUBT": 1}
    row = workflow_ledger.get_hyperwallet_payment("230201")
    [made] = hw_admin.payments()

    with pytest.raises(ActionRefused, match="Hyperwallet has no pmt-nope"):
        actions.resolve("hyperwallet_payment", row.id, actor=ALICE, why="x", found=True,
                        object_id="pmt-nope")  # fmt: skip
    with pytest.raises(ActionRefused, match="looked up by its clientPaymentId"):
        actions.resolve("hyperwallet_payment", row.id, actor=ALICE, why="x", found=False)
    actions.resolve("hyperwallet_payment", row.id, actor=ALICE, why="seen in the portal",
                    found=True, object_id=made["token"])  # fmt: skip

    saved = workflow_ledger.get_hyperwallet_payment("230201")
    assert (saved.status, saved.payment_token, saved.hw_status) == (
        S.CREATED, made["token"], made["status"],
    )  # fmt: skip
    assert job.retry().to_dict()["counts"] == {"ALREADY_PAID": 1}
    assert len(hw_admin.payments()) == 1
