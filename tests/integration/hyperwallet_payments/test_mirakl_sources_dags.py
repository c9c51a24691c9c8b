"""Issue 19 points 1 and 4 through the DAGs (``dag.test``) against the simulator.

* IV01: an invoice Mirakl marks paid (``payment.state`` PAID, as the published accounting-document
  schema carries it) is never paid: not by the window, not by a run naming it, not by a retry,
  including one whose Hyperwallet payment was returned and that was then settled by hand.
* SBC11: a seller billing cycle (UUID id) is paid once and confirmed with SBC07; a COMPLETED
  notification for a UUID ``clientPaymentId`` whose ledger row has no source goes to SBC07 too.
* The ``clientPaymentId`` convention: what the previous connector paid under the other id is
  found before anything is created.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest

from mirakl_connector.ledger import (
    HyperwalletPayment,
    HyperwalletPaymentKind,
    HyperwalletPaymentStatus,
)

from . import test_hyperwallet_payment_dags as _dags
from .test_hyperwallet_payment_dags import run_dag

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

INVOICES = ("hyperwallet_invoice_payments.py", "hyperwallet_invoice_payments")
STATUS = ("hyperwallet_notifications.py", "hyperwallet_payment_status")
RETRIES = ("hyperwallet_retries.py", "hyperwallet_retries")
CYCLE = "98665be1-ce69-4ab6-8d93-b8dfd3e67404"
S = HyperwalletPaymentStatus

dag_env = _dags.dag_env  # the shared DAG environment fixture (connections, Variable, ledger)


def _configure(monkeypatch, hw, *, email_to=None, **payments) -> None:
    config = copy.deepcopy(hw.config)
    config["hyperwallet_payments"] = payments
    if email_to is not None:
        config["alerts"] = {"email_to": email_to}
    monkeypatch.setenv("AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG", json.dumps(config))


def _cycle(hw, cycle_id: str = CYCLE, state: str = "TO_PAY") -> dict:
    """An SBC11 cycle as the published schema (``SBC11_Response_200_Data``) shapes it."""
    return {
        "id": cycle_id,
        "date_created": hw.invoice(1)["date_created"],
        "currency_iso_code": "EUR",
        "amount_transferred_to_seller": 4545.2,
        "amount_transferred_to_operator": 955.69,
        "pay_out": {"state": state},
        "shop": {"shop_id": 2001, "shop_name": "Shop 2001"},
    }


def _previous_connector_pays(hyperwallet, cpid: str, amount: str, destination: str) -> dict:
    """A payment the Hyperwallet connector made before the switch (its body, as the PayPal
    connector sends it)."""
    return hyperwallet.create_payment(
        {
            "clientPaymentId": cpid,
            "amount": amount,
            "currency": "EUR",
            "destinationToken": destination,
            "programToken": "prg-pay",
            "purpose": "OTHER",
        }
    )


def _created(hw_admin) -> list[dict]:
    return hw_admin.calls(path="/rest/v4/payments", method="POST")


def test_an_iv01_invoice_whose_payment_state_is_paid_is_never_paid(
    hw, sandbox, hw_admin, mirakl, dag_env
):
    settled = hw.invoice(230201, payment={"state": "PAID"})  # settled outside Hyperwallet
    settled.pop("payment_status", None)
    sandbox.reset(hw.scenario(shops=[hw.shop()], invoices=[settled, hw.invoice(230202)]))

    run, report = run_dag(*INVOICES)

    assert run.state == "success"
    assert sorted(p["clientPaymentId"] for p in hw_admin.payments()) == [
        "230202",
        "230202-operatorFee",
    ]
    # the pay step's read (the reconcile task's comes after it, without payment_status)
    (call,) = [c for c in sandbox.mirakl_calls("IV01") if "payment_status" in c["query"]]
    assert (call["query"]["payment_status"], call["query"]["states"]) == ("PENDING", "COMPLETE")
    assert call["query"]["type"] == "AUTO_INVOICE"

    # Named by a manual run, even with include_paid: nothing is created for it.
    run, report = run_dag(*INVOICES, invoice_ids=["230201"], include_paid=True)

    assert run.state == "success"
    assert report["steps"]["pay_invoices"] == {"SKIPPED": 2}
    assert len(_created(hw_admin)) == 2
    assert dag_env.hyperwallet_payments_by_invoice(["230201"]) == {}


def test_a_returned_payment_settled_by_hand_in_mirakl_is_never_paid_again(
    hw, sandbox, hw_admin, mirakl, monkeypatch, dag_env
):
    _configure(monkeypatch, hw, email_to=[])  # no SMTP here: the failure is not e-mailed
    sandbox.reset(hw.scenario(shops=[hw.shop()], invoices=[hw.invoice(230201)]))
    run_dag(*INVOICES)
    seller = next(p for p in hw_admin.payments() if p["clientPaymentId"] == "230201")
    returned = hw_admin.set_payment_status(seller["token"], "RETURNED")["notification"]
    hw.store(dag_env, returned)
    run, _ = run_dag(*STATUS)
    assert run.state == "success"
    assert dag_env.get_hyperwallet_payment("230201").status == S.FAILED
    # The operator pays the seller by hand and marks the invoice paid in Mirakl.
    mirakl.confirm_invoice_payments(
        [
            {
                "invoice_id": 230201,
                "amount": Decimal("4545.2"),
                "currency_iso_code": "EUR",
                "transaction_date": "2026-11-20T10:00:00Z",
                "confirm_all_linked_manual_documents": True,
            }
        ]
    )
    assert sandbox.state()["mirakl"]["invoices"][0]["payment"]["state"] == "PAID"
    before = len(_created(hw_admin))

    run, report = run_dag(*INVOICES, invoice_ids=["230201"], include_paid=True)
    assert report["steps"]["pay_invoices"].get("PAID", 0) == 0
    run, report = run_dag(*RETRIES)
    run, report = run_dag(*INVOICES, since="2020-01-01T00:00:00+00:00")

    assert len(_created(hw_admin)) == before
    assert dag_env.get_hyperwallet_payment("230201").status == S.FAILED


def test_an_sbc11_billing_cycle_is_paid_once_and_confirmed_with_sbc07(
    hw, sandbox, hw_admin, monkeypatch, dag_env
):
    _configure(monkeypatch, hw, invoice_source="SBC11")
    sandbox.reset(hw.scenario(shops=[hw.shop()], billing_cycles=[_cycle(hw)]))

    run, report = run_dag(*INVOICES)
    assert run.state == "success"
    assert report["steps"]["pay_invoices"]["PAID"] == 2
    seller = next(p for p in hw_admin.payments() if p["clientPaymentId"] == CYCLE)
    assert (seller["amount"], seller["destinationToken"]) == ("4545.20", "trm-seller")
    rerun, report = run_dag(*INVOICES, since="2020-01-01T00:00:00+00:00")
    assert report["steps"]["pay_invoices"]["ALREADY_PAID"] == 2
    assert len(_created(hw_admin)) == 2
    # SBC11 as the Hyperwallet connector calls it: start_date and pay_out_state, never an id.
    assert all("id" not in c["query"] for c in sandbox.mirakl_calls("SBC11"))

    completed = hw_admin.set_payment_status(seller["token"], "COMPLETED")["notification"]
    hw.store(dag_env, completed)
    run, report = run_dag(*STATUS)

    assert run.state == "success"
    (call,) = sandbox.mirakl_calls("SBC07")
    (sent,) = call["body"]["seller_billing_cycles"]
    assert (sent["id"], sent["state"], sent["amount_transferred_to_seller"]) == (
        CYCLE,
        "PAID",
        4545.2,
    )
    assert sandbox.mirakl_calls("IV07") == []
    (stored,) = sandbox.state()["mirakl"]["billing_cycles"]
    assert stored["pay_out"]["state"] == "PAID"
    run, report = run_dag(*INVOICES, since="2020-01-01T00:00:00+00:00")
    assert len(_created(hw_admin)) == 2


def test_a_completed_uuid_payment_the_ledger_knows_without_its_source_goes_to_sbc07(
    hw, sandbox, hw_admin, hyperwallet, dag_env
):
    """A payment of the Hyperwallet connector 5.3+ that the ledger knows without its source (a
    row the notification path wrote before verified notifications, "known from its notification
    only"); our setting is IV01. Its COMPLETED notification used to be dropped as "IV07 needs a
    number": the UUID routes it to SBC07."""
    sandbox.reset(hw.scenario(shops=[hw.shop()], billing_cycles=[_cycle(hw)]))
    created = _previous_connector_pays(hyperwallet, CYCLE, "4545.20", "trm-seller")
    dag_env.save_hyperwallet_payments(
        [
            HyperwalletPayment(
                client_payment_id=CYCLE,
                invoice_id=CYCLE,
                kind=HyperwalletPaymentKind.SELLER,
                status=S.CREATED,
                hw_status="CREATED",
                payment_token=created["token"],
                amount=454520,
                currency="EUR",
                destination_token="trm-seller",
                status_reason="known from its notification only",
            )
        ]
    )
    completed = hw_admin.set_payment_status(created["token"], "COMPLETED")["notification"]
    hw.store(dag_env, completed)

    run, report = run_dag(*STATUS)

    assert run.state == "success"
    assert report["steps"]["process_notifications"] == {"PROCESSED": 1}
    (call,) = sandbox.mirakl_calls("SBC07")
    assert call["body"]["seller_billing_cycles"][0]["id"] == CYCLE
    assert sandbox.mirakl_calls("IV07") == []
    assert sandbox.state()["mirakl"]["billing_cycles"][0]["pay_out"]["state"] == "PAID"


def test_payments_made_under_the_billing_cycle_id_are_found_from_iv01(
    hw, sandbox, hw_admin, hyperwallet, dag_env
):
    """An operator who ran the Hyperwallet connector 5.3+ (payments keyed by the billing cycle)
    and reads IV01 here: the invoice carries its ``seller_billing_cycle_id`` and the payment
    is found under it: adopted, not made again."""
    invoice = hw.invoice(230201, seller_billing_cycle_id=CYCLE)
    sandbox.reset(hw.scenario(shops=[hw.shop()], invoices=[invoice]))
    _previous_connector_pays(hyperwallet, CYCLE, "4545.20", "trm-seller")
    _previous_connector_pays(hyperwallet, f"{CYCLE}-operatorFee", "955.69", "trm-operator")
    hw_admin.clear_calls()

    run, report = run_dag(*INVOICES)

    assert run.state == "success"
    assert report["steps"]["pay_invoices"] == {"ALREADY_PAID": 2}
    assert _created(hw_admin) == []
    assert dag_env.get_hyperwallet_payment(CYCLE).invoice_id == "230201"
    rerun, report = run_dag(*INVOICES, since="2020-01-01T00:00:00+00:00")
    assert report["steps"]["pay_invoices"] == {"ALREADY_PAID": 2}
    assert _created(hw_admin) == []


@pytest.mark.parametrize("convention", ["invoice_id"])
def test_sbc11_under_the_invoice_id_convention_pays_and_confirms_the_cycle(
    hw, sandbox, hw_admin, monkeypatch, dag_env, convention
):
    """Migrating from the Hyperwallet connector ≤ 5.2 (payments keyed by the invoice id) to
    SBC11: new payments keep that convention (found through IV01 ``seller_billing_cycle_id``),
    and their COMPLETED notifications confirm the billing cycle with SBC07."""
    _configure(monkeypatch, hw, invoice_source="SBC11", client_payment_id=convention)
    invoice = hw.invoice(230201, seller_billing_cycle_id=CYCLE)
    sandbox.reset(hw.scenario(shops=[hw.shop()], invoices=[invoice], billing_cycles=[_cycle(hw)]))

    run, report = run_dag(*INVOICES)

    assert run.state == "success"
    assert sorted(p["clientPaymentId"] for p in hw_admin.payments()) == [
        "230201",
        "230201-operatorFee",
    ]
    (link,) = sandbox.mirakl_calls("IV01")
    assert link["query"]["seller_billing_cycle_id"] == CYCLE
    row = dag_env.get_hyperwallet_payment("230201")
    assert (row.invoice_id, row.invoice_source) == (CYCLE, "SBC11")
    seller = next(p for p in hw_admin.payments() if p["clientPaymentId"] == "230201")
    hw.store(dag_env, hw_admin.set_payment_status(seller["token"], "COMPLETED")["notification"])

    run, report = run_dag(*STATUS)

    assert run.state == "success"
    (call,) = sandbox.mirakl_calls("SBC07")
    assert call["body"]["seller_billing_cycles"][0]["id"] == CYCLE
    assert sandbox.mirakl_calls("IV07") == []
