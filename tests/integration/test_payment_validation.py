"""Payment validation and capture against the sandbox, on SQLite and PostgreSQL.

Each test checks what Mirakl received (PA01), what Stripe did (captures, cancels) and what the
payment mapping says afterwards.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from mirakl_connector.ledger.records import PaymentMapping, PaymentMappingStatus
from mirakl_connector.stripe.payment_validation import PaymentValidation, PaymentValidationSettings

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def iso(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def order(
    order_id,
    *,
    state="SHIPPING",
    total="100.00",
    debited=True,
    line_state=None,
    cancelled=None,
    tax=None,
    currency="EUR",
):
    """One logistic order of commercial order ``order_id.rsplit('-', 1)[0]`` with one line."""
    line = {
        "order_line_id": f"{order_id}-1",
        "order_line_state": line_state or state,
        "total_price": total,
        "shipping_taxes": [],
        "taxes": [{"amount": tax, "code": "VAT"}] if tax else [],
    }
    if cancelled is not None:
        line.update(total_price="0", cancelations=[{"amount": cancelled, "taxes": []}])
    return {
        "order_id": order_id, "commercial_id": order_id.rsplit("-", 1)[0],
        "created_date": iso(1), "last_updated_date": iso(1),
        "customer_debited_date": iso(0.5) if debited else None,
        "currency_iso_code": currency, "order_state": state, "order_tax_mode": "TAX_EXCLUDED",
        "shop_id": 1, "total_commission": "1.00", "total_price": total,
        "customer": {"customer_id": f"cust-{order_id}"}, "order_lines": [line],
    }  # fmt: skip


def intent(pi_id, amount, status="requires_capture", currency="eur"):
    return {"id": pi_id, "amount": amount, "currency": currency, "status": status}


def load(sandbox, orders, *, intents=(), charges=()):
    sandbox.reset({
        "mirakl": {"api_key": "sandbox-mirakl-key", "orders": list(orders)},
        "stripe": {"api_key": "sk_test_sandbox", "platform_account": {"id": "acct_platform"},
                   "payment_intents": list(intents), "charges": list(charges)},
    })  # fmt: skip


@pytest.fixture
def ledger(workflow_ledger):
    return workflow_ledger


@pytest.fixture
def job(mirakl, stripe_gateway, ledger):
    return PaymentValidation(
        mirakl=mirakl,
        stripe=stripe_gateway,
        ledger=ledger,
        settings=PaymentValidationSettings(),
        run_id="run-1",
    )


def mapping(ledger, payment_id, commercial_id, amount, status=PaymentMappingStatus.TO_CAPTURE):
    return ledger.upsert_payment_mapping(
        PaymentMapping(payment_id, commercial_id, status=status, stripe_amount=amount)
    )


def captures(sandbox):
    return [
        r
        for r in sandbox.stripe_requests(method="POST")
        if r["path"].endswith(("/capture", "/cancel")) or r["path"] == "/v1/refunds"
    ]


# -- validate ---------------------------------------------------------------------------------


def test_one_pa01_call_confirms_every_logistic_order_of_ready_commercial_orders(
    sandbox, job, ledger
):
    load(
        sandbox,
        [
            order("C1-A", state="WAITING_DEBIT_PAYMENT", total="12.34", debited=False),
            order("C1-B", state="WAITING_DEBIT_PAYMENT", total="56.78", debited=False, tax="1.50"),
            order("C2-A", state="WAITING_DEBIT_PAYMENT", total="10.00", debited=False),
            order("C3-A", state="WAITING_DEBIT_PAYMENT", total="10.00", debited=False),
            order("C4-A", state="WAITING_DEBIT_PAYMENT", total="10.00", debited=False),
        ],
    )
    mapping(ledger, "pi_c1", "C1", 7062)
    mapping(ledger, "pi_c2", "C2", 1000, status=PaymentMappingStatus.FAILED)
    mapping(ledger, "pi_c3", "C3", 1000, status=PaymentMappingStatus.CANCELED)

    summary = job.validate()

    calls = sandbox.mirakl_calls("PA01")
    assert len(calls) == 1
    body = calls[0]["body"]
    body = json.loads(body) if isinstance(body, str) else body
    assert body == {
        "orders": [
            {"amount": 12.34, "customer_id": "cust-C1-A", "order_id": "C1-A",
             "payment_status": "OK", "transaction_number": "pi_c1"},
            {"amount": 58.28, "customer_id": "cust-C1-B", "order_id": "C1-B",
             "payment_status": "OK", "transaction_number": "pi_c1"},
        ]
    }  # fmt: skip
    assert summary.counts == {"VALIDATED": 1, "NOT_VALIDATED": 3}
    assert summary.amounts["VALIDATED"] == {"EUR": 7062}
    assert ledger.get_payment_mapping("pi_c1").mirakl_validated_at is not None
    assert ledger.get_payment_mapping("pi_c2").mirakl_validated_at is None
    states = {o["order_id"]: o["order_state"] for o in sandbox.orders()}
    assert states == {"C1-A": "SHIPPING", "C1-B": "SHIPPING", "C2-A": "WAITING_DEBIT_PAYMENT",
                      "C3-A": "WAITING_DEBIT_PAYMENT", "C4-A": "WAITING_DEBIT_PAYMENT"}  # fmt: skip

    # Nothing is pending for C1 any more: a rerun sends no PA01 at all.
    sandbox.clear_mirakl_calls()
    job.validate()
    assert sandbox.mirakl_calls("PA01") == []


def test_dry_run_validates_nothing(sandbox, job, ledger):
    load(sandbox, [order("C1-A", state="WAITING_DEBIT_PAYMENT", debited=False)])
    mapping(ledger, "pi_c1", "C1", 10000)

    summary = job.validate(dry_run=True)

    assert summary.counts == {"VALIDATED": 1}
    assert sandbox.mirakl_calls("PA01") == []
    assert ledger.get_payment_mapping("pi_c1").mirakl_validated_at is None


def test_one_order_mirakl_refuses_does_not_block_the_others(sandbox, job, ledger, monkeypatch):
    load(
        sandbox,
        [
            order("C1-A", state="WAITING_DEBIT_PAYMENT", debited=False),
            order("C2-A", state="WAITING_DEBIT_PAYMENT", debited=False),
        ],
    )
    mapping(ledger, "pi_c1", "C1", 10000)
    mapping(ledger, "pi_c2", "C2", 10000)
    # C2-A leaves WAITING_DEBIT_PAYMENT between PA11 and PA01 (the customer cancelled).
    real = job.mirakl.iter_pending_debits

    def pending_then_cancel():
        items = list(real())
        sandbox.patch_order("C2-A", order_state="CANCELED")
        return iter(items)

    monkeypatch.setattr(job.mirakl, "iter_pending_debits", pending_then_cancel)

    summary = job.validate()

    assert summary.counts == {"VALIDATED": 1, "FAILED": 1}
    assert "WAITING_DEBIT_PAYMENT" in summary.failed[0]["reason"]
    assert summary.failed[0]["id"] == "C2"
    assert {o["order_id"]: o["order_state"] for o in sandbox.orders()}["C1-A"] == "SHIPPING"
    assert ledger.get_payment_mapping("pi_c2").mirakl_validated_at is None


# -- capture ----------------------------------------------------------------------------------


def test_capture_subtracts_refused_and_cancelled_lines_once(sandbox, job, ledger):
    load(
        sandbox,
        [
            order("C1-A", total="100.00"),
            order("C1-B", state="REFUSED", total="30.00", debited=False, tax="3.00"),
            order("C1-C", state="CANCELED", debited=False, cancelled="20.00"),
        ],
        intents=[intent("pi_c1", 15300)],
    )
    mapping(ledger, "pi_c1", "C1", 15300)

    summary = job.capture()

    assert summary.counts == {"captured": 1}
    assert summary.amounts["captured"] == {"EUR": 10000}
    [pi] = sandbox.payment_intents()
    assert (pi["status"], pi["amount_received"]) == ("succeeded", 10000)
    saved = ledger.get_payment_mapping("pi_c1")
    assert (saved.status, saved.captured_amount) == (PaymentMappingStatus.CAPTURED, 10000)
    assert saved.idempotency_key.endswith("capture:pi_c1:10000")

    # A rerun (or a cleared task) finds nothing to capture.
    again = job.capture()
    assert again.total == 0
    assert len(captures(sandbox)) == 1


def test_partial_acceptance_waits_without_touching_stripe(sandbox, job, ledger):
    load(
        sandbox,
        [order("C1-A"), order("C1-B", state="WAITING_ACCEPTANCE", debited=False)],
        intents=[intent("pi_c1", 20000)],
    )
    mapping(ledger, "pi_c1", "C1", 20000)

    summary = job.capture()

    assert summary.counts == {"WAITING": 1}
    rehearsal = job.capture(dry_run=True)
    assert (
        rehearsal.items[0]["reason"] == "Order C1-B is not ready yet, status is WAITING_ACCEPTANCE"
    )
    assert captures(sandbox) == []
    assert ledger.get_payment_mapping("pi_c1").status is PaymentMappingStatus.TO_CAPTURE


def test_accepted_but_not_debited_order_waits(sandbox, job, ledger):
    load(sandbox, [order("C1-A", debited=False)], intents=[intent("pi_c1", 10000)])
    mapping(ledger, "pi_c1", "C1", 10000)

    assert job.capture().counts == {"WAITING": 1}
    assert captures(sandbox) == []


def test_everything_refused_cancels_the_authorisation(sandbox, job, ledger):
    load(
        sandbox,
        [order("C1-A", state="REFUSED", debited=False), order("C1-B", state="REFUSED",
                                                               debited=False)],
        intents=[intent("pi_c1", 20000)],
    )  # fmt: skip
    mapping(ledger, "pi_c1", "C1", 20000)

    summary = job.capture()

    assert summary.counts == {"canceled": 1}
    assert sandbox.payment_intents()[0]["status"] == "canceled"
    saved = ledger.get_payment_mapping("pi_c1")
    assert (saved.status, saved.captured_amount) == (PaymentMappingStatus.CANCELED, 0)
    job.capture()
    assert len(captures(sandbox)) == 1


def test_uncaptured_charge_without_intent_is_captured_as_a_charge(sandbox, job, ledger):
    load(
        sandbox,
        [order("C1-A", total="80.00"), order("C1-B", state="REFUSED", total="20.00",
                                             debited=False)],
        charges=[{"id": "ch_c1", "amount": 10000, "currency": "eur", "captured": False}],
    )  # fmt: skip
    mapping(ledger, "ch_c1", "C1", 10000)

    job.capture()

    [charge] = sandbox.charges()
    assert (charge["captured"], charge["amount_captured"]) == (True, 8000)
    assert [r["path"] for r in captures(sandbox)] == ["/v1/charges/ch_c1/capture"]
    assert ledger.get_payment_mapping("ch_c1").captured_amount == 8000


def test_charge_of_an_intent_is_captured_through_the_intent(sandbox, job, ledger):
    load(
        sandbox,
        [order("C1-A", total="50.00")],
        intents=[{**intent("pi_c1", 5000), "latest_charge": "ch_c1"}],
        charges=[{"id": "ch_c1", "amount": 5000, "currency": "eur", "captured": False,
                  "payment_intent": "pi_c1"}],
    )  # fmt: skip
    mapping(ledger, "ch_c1", "C1", 5000)

    job.capture()

    assert [r["path"] for r in captures(sandbox)] == ["/v1/payment_intents/pi_c1/capture"]
    assert sandbox.payment_intents()[0]["status"] == "succeeded"
    assert ledger.get_payment_mapping("ch_c1").status is PaymentMappingStatus.CAPTURED


def test_payment_captured_at_checkout_ends_captured_with_reason(sandbox, job, ledger):
    charge = {"id": "ch_c1", "amount": 10000, "currency": "eur", "captured": True,
              "amount_captured": 10000, "payment_intent": "pi_c1"}  # fmt: skip
    load(
        sandbox,
        [order("C1-A")],
        intents=[{**intent("pi_c1", 10000, status="succeeded"), "latest_charge": "ch_c1",
                  "amount_received": 10000}],
        charges=[charge],
    )  # fmt: skip
    mapping(ledger, "pi_c1", "C1", 10000)

    summary = job.capture()

    saved = ledger.get_payment_mapping("pi_c1")
    assert (saved.status, saved.captured_amount) == (PaymentMappingStatus.CAPTURED, 10000)
    assert "already captured" in saved.status_reason
    assert summary.failed_total == 0
    assert saved.attempted_at is None
    # Terminal: the next run does not try again (issues #103/#105).
    job.capture()
    assert len(captures(sandbox)) == 1


def test_expired_authorisation_fails_for_good_with_reason(sandbox, job, ledger):
    load(sandbox, [order("C1-A")], intents=[intent("pi_c1", 10000, status="canceled")])
    mapping(ledger, "pi_c1", "C1", 10000)

    summary = job.capture()

    saved = ledger.get_payment_mapping("pi_c1")
    assert saved.status is PaymentMappingStatus.FAILED
    assert "can no longer be captured, status is canceled" in saved.status_reason
    assert summary.failed_total == 1
    job.capture()
    assert len(captures(sandbox)) == 1


def test_amount_too_large_fails_for_good(sandbox, job, ledger):
    load(sandbox, [order("C1-A")], intents=[intent("pi_c1", 5000)])
    mapping(ledger, "pi_c1", "C1", 10000)  # the ledger believes more was authorised

    job.capture()

    saved = ledger.get_payment_mapping("pi_c1")
    assert saved.status is PaymentMappingStatus.FAILED
    assert "amount_to_capture" in saved.status_reason
    assert sandbox.payment_intents()[0]["status"] == "requires_capture"


def test_lost_capture_answer_is_replayed_with_the_same_key(sandbox, job, ledger):
    load(sandbox, [order("C1-A")], intents=[intent("pi_c1", 10000)])
    mapping(ledger, "pi_c1", "C1", 10000)
    path = "/v1/payment_intents/pi_c1/capture"
    sandbox.set_faults({"rules": [
        {"target": "stripe", "method": "POST", "path": path, "times": 1, "action": "lost_response"},
        {"target": "stripe", "method": "POST", "path": path, "times": 10, "action": "error"},
    ]})  # fmt: skip

    first = job.capture()

    assert first.counts == {"IN_DOUBT": 1}
    in_doubt = ledger.get_payment_mapping("pi_c1")
    assert in_doubt.status is PaymentMappingStatus.TO_CAPTURE
    assert in_doubt.attempted_at is not None
    assert sandbox.payment_intents()[0]["status"] == "succeeded"  # Stripe did capture

    sandbox.clear_faults()
    second = job.capture()

    assert second.counts == {"captured": 1}
    keys = {r["idempotency_key"] for r in captures(sandbox)}
    assert keys == {in_doubt.idempotency_key}
    assert any(r["replayed"] for r in captures(sandbox))
    assert ledger.get_payment_mapping("pi_c1").captured_amount == 10000


def test_capture_dry_run_moves_nothing(sandbox, job, ledger):
    load(sandbox, [order("C1-A")], intents=[intent("pi_c1", 10000)])
    mapping(ledger, "pi_c1", "C1", 10000)

    summary = job.capture(dry_run=True)

    assert summary.counts == {"CAPTURE": 1}
    assert summary.items[0]["amount"] == "100.00 EUR"
    assert captures(sandbox) == []
    assert ledger.get_payment_mapping("pi_c1").status is PaymentMappingStatus.TO_CAPTURE
