"""Issue 16 point 3 through the DAGs (``dag.test``) against the simulator: credit notes.

IV01 manual credit notes (``type=MANUAL_CREDIT``) are paid with ``hyperwallet_payments.
credit_notes`` (off by default, as the connector's ``PAYPAL_HYPERWALLET_OPERATOR_CREDIT_NOTES_
ENABLED``): listed with the invoices' filters, paid once under their own invoice id for
``total_charged_amount`` with no commission (the PayPal connector ≤ 5.2 on IV01), once
even when the run dies between Hyperwallet's answer and the ledger write, and confirmed with
IV07 when Hyperwallet reports the payment COMPLETED.
"""

from __future__ import annotations

import copy
import json

import pytest

from mirakl_connector.hyperwallet.invoice_payments import HyperwalletInvoicePayments
from mirakl_connector.ledger import HyperwalletPaymentKind, HyperwalletPaymentStatus

from . import test_hyperwallet_payment_dags as _dags
from .test_hyperwallet_payment_dags import DAGS, run_dag

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

INVOICES = ("hyperwallet_invoice_payments.py", "hyperwallet_invoice_payments")
STATUS = ("hyperwallet_notifications.py", "hyperwallet_payment_status")
CREDIT = "230301"
RECORD_CREATED = HyperwalletInvoicePayments._record_created
S = HyperwalletPaymentStatus

dag_env = _dags.dag_env


def run_without_task_retries(file: str, dag_id: str, **conf):
    """:func:`run_dag` with Airflow's task retries off: the crashed task is not retried in the
    same run (``dag.test`` would wait out the 5-minute retry delay); the next run takes over."""
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(DAGS / file)).dags[dag_id]
    for task in dag.tasks:
        task.retries = 0
    return dag.test(run_conf=conf or None, logical_date=None)


def _credit_note(hw, **changes) -> dict:
    """An IV01 manual credit note as the published schema shapes it (``IV01_Response_200_
    Invoices``: ``type`` MANUAL_CREDIT, ``total_charged_amount``), 120.50 EUR to shop 2001."""
    raw = hw.invoice(int(CREDIT), type="MANUAL_CREDIT", total_charged_amount=120.5)
    raw["summary"] = {"amount_transferred": 0, "amount_transferred_to_operator": 0}
    raw.update(changes)
    return raw


def _configure(monkeypatch, hw, **payments) -> None:
    config = copy.deepcopy(hw.config)
    config["hyperwallet_payments"] = payments
    config["alerts"] = {"email_to": []}  # no SMTP here
    monkeypatch.setenv("AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG", json.dumps(config))


class SimulatedCrash(BaseException):
    """The process dying (SIGKILL, OOM): nothing of the task runs after it, the window stays."""


def _crash_after_hyperwallet_answers(monkeypatch, error: BaseException) -> list[str]:
    """Make the credit note's ledger write after Hyperwallet created its payment raise
    ``error`` once; returns the token(s) Hyperwallet answered with."""
    record = RECORD_CREATED
    crashed: list[str] = []

    def crash_once(self, row, payment, status, reason, *, note=None):
        if row.client_payment_id == CREDIT and not crashed:
            crashed.append(str(payment.get("token")))
            raise error
        return record(self, row, payment, status, reason, note=note)

    monkeypatch.setattr(HyperwalletInvoicePayments, "_record_created", crash_once)
    return crashed


def _posted(hw_admin, cpid: str) -> list[dict]:
    calls = hw_admin.calls(path="/rest/v4/payments", method="POST")
    return [c for c in calls if (c.get("body") or {}).get("clientPaymentId") == cpid]


def test_credit_notes_are_not_read_by_default(hw, sandbox, hw_admin, dag_env):
    sandbox.reset(hw.scenario(shops=[hw.shop()], invoices=[hw.invoice(230201), _credit_note(hw)]))

    run, _ = run_dag(*INVOICES)

    assert run.state == "success"
    # the pay step's reads (the reconcile task reads the run's invoices after it, type=ALL and
    # without payment_status, to compare amounts)
    reads = [c for c in sandbox.mirakl_calls("IV01") if "payment_status" in c["query"]]
    assert [c["query"]["type"] for c in reads] == ["AUTO_INVOICE"]
    assert sorted(p["clientPaymentId"] for p in hw_admin.payments()) == [
        "230201",
        "230201-operatorFee",
    ]


def test_a_credit_note_is_paid_once_across_a_crash_and_confirmed_with_iv07(
    hw, sandbox, hw_admin, monkeypatch, dag_env
):
    _configure(monkeypatch, hw, credit_notes=True)
    sandbox.reset(hw.scenario(shops=[hw.shop()], invoices=[hw.invoice(230201), _credit_note(hw)]))
    # The process dies after Hyperwallet created the credit note's payment, before the ledger
    # records it.
    crashed = _crash_after_hyperwallet_answers(monkeypatch, SimulatedCrash())

    run = run_without_task_retries(*INVOICES)

    assert crashed, "the credit note's payment was never created"
    assert run.state == "failed"
    queries = [c["query"] for c in sandbox.mirakl_calls("IV01")]
    assert {q["type"] for q in queries} == {"AUTO_INVOICE", "MANUAL_CREDIT"}
    assert all((q["payment_status"], q["states"]) == ("PENDING", "COMPLETE") for q in queries)
    row = dag_env.get_hyperwallet_payment(CREDIT)
    assert row is not None and row.payment_token is None  # the ledger never heard the answer

    monkeypatch.setattr(HyperwalletInvoicePayments, "_record_created", RECORD_CREATED)
    run, report = run_dag(*INVOICES)  # the window starts where the dead run did not move it

    assert run.state == "success"
    assert report["steps"]["pay_invoices"].get("ALREADY_PAID", 0) >= 1
    assert len(_posted(hw_admin, CREDIT)) == 1
    (paid,) = [p for p in hw_admin.payments() if p["clientPaymentId"] == CREDIT]
    assert (paid["amount"], paid["currency"], paid["destinationToken"]) == (
        "120.50",
        "EUR",
        "trm-seller",
    )
    assert paid["token"] == crashed[0]
    assert not [p for p in hw_admin.payments() if p["clientPaymentId"] == f"{CREDIT}-operatorFee"]
    row = dag_env.get_hyperwallet_payment(CREDIT)
    assert (row.payment_token, row.kind, row.amount) == (
        crashed[0],
        HyperwalletPaymentKind.SELLER,
        12050,
    )

    # Hyperwallet completes it: IV07 confirms the credit note for its amount.
    completed = hw_admin.set_payment_status(paid["token"], "COMPLETED")["notification"]
    hw.store(dag_env, completed)
    run, _ = run_dag(*STATUS)

    assert run.state == "success"
    confirmations = [
        d
        for c in sandbox.mirakl_calls("IV07")
        for d in (c.get("body") or {}).get("accounting_documents", [])
    ]
    assert [(d["invoice_id"], str(d["amount"])) for d in confirmations] == [(230301, "120.5")]
    credit = next(
        i for i in sandbox.state()["mirakl"]["invoices"] if str(i["invoice_id"]) == CREDIT
    )
    assert credit["payment"]["state"] == "PAID"
    assert dag_env.get_hyperwallet_payment(CREDIT).status == S.COMPLETED

    # Re-reading everything (include_paid too) never pays it again.
    run, report = run_dag(*INVOICES, since="2020-01-01T00:00:00+00:00", include_paid=True)
    assert run.state == "success"
    assert len(_posted(hw_admin, CREDIT)) == 1


def test_a_ledger_write_failing_after_hyperwallet_answered_queues_the_credit_note(
    hw, sandbox, hw_admin, monkeypatch, dag_env
):
    """The ledger write raising (not a kill: the run goes on and moves its window) used to fail
    the item without queueing it: no later run read the credit note again."""
    _configure(monkeypatch, hw, credit_notes=True)
    sandbox.reset(hw.scenario(shops=[hw.shop()], invoices=[_credit_note(hw)]))
    crashed = _crash_after_hyperwallet_answers(monkeypatch, RuntimeError("database is locked"))

    run, report = run_dag(*INVOICES)

    assert crashed and run.state == "failed"
    assert [i.item_id for i in dag_env.pending_items("hyperwallet_invoice_payments")] == [CREDIT]

    # Its retry (named here: the queue's first delay is 30 minutes) finds it, creates nothing.
    run, report = run_dag(*INVOICES, invoice_ids=[CREDIT])

    assert run.state == "success"
    assert report["steps"]["pay_invoices"] == {"ALREADY_PAID": 1}
    assert len(_posted(hw_admin, CREDIT)) == 1
    assert dag_env.get_hyperwallet_payment(CREDIT).payment_token == crashed[0]
    assert dag_env.pending_items("hyperwallet_invoice_payments") == []
