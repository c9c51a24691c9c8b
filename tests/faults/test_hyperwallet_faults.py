"""Hyperwallet invoice payments under injected faults and a killed task: each payment once.

Hyperwallet has no idempotency key: before creating a payment the job looks it up by its
``clientPaymentId`` (the invoice id; ``<id>-operatorFee`` for the operator's commission), and an
invoice that fails goes to the retry queue. The payment DAG (check → pay) runs through 10 %
failing Mirakl and Hyperwallet calls, or is killed mid-batch, and is rerun. In the end each
invoice has exactly one payment to the seller's bank account and one to the operator's, of the
invoice's amounts, and the ledger holds the same tokens and amounts, item by item. The last
test pins the bug the fault run found: an invoice whose lookup failed was lost.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from mirakl_sandbox.fault_audit import audit_hyperwallet_payments, problems, rule
from mirakl_sandbox.generate import generate_invoices, hyperwallet_sellers
from mirakl_sandbox.hyperwallet_admin import HyperwalletSandboxAdmin

from mirakl_connector.hyperwallet.invoice_payments import WINDOW_KEY

# the inner loop leaves out fault-injection runs (README "Two commands")
pytestmark = pytest.mark.slow

INVOICES = 15
SHOPS = 3
WORKFLOW = "hyperwallet_invoice_payments"  # also the name of its retry queue


@pytest.fixture
def hw_config(admin) -> dict:
    """Three sellers paid through Hyperwallet, their invoices of the last minutes in Mirakl;
    returns the connector configuration that goes with them."""
    scenario, config = hyperwallet_sellers(SHOPS)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    scenario["mirakl"]["invoices"] = generate_invoices(INVOICES, SHOPS, seed=8, end=now)
    admin.load(scenario)
    return config


@pytest.fixture
def hw_payments(fault_server):
    admin = HyperwalletSandboxAdmin(fault_server.url)
    yield admin.payments
    admin.close()


def test_ten_percent_faults_on_both_apis_pay_each_invoice_once(
    admin, hw_config, through_faults, fault_ledger
):
    # Besides the random faults, whatever the seed: the lookup by clientPaymentId failing for a
    # whole item, and a payment made by Hyperwallet whose answer is lost (the client does not
    # retry a creation: the next run finds it by that lookup).
    run, seen = through_faults(
        WORKFLOW,
        lambda: audit_hyperwallet_payments(admin, fault_ledger),
        seed=6,
        provider="hyperwallet",
        config=hw_config,
        rules=[rule("hyperwallet", "GET", "/rest/v4/payments", "error", times=2)],
        lost=["/rest/v4/payments"],
    )

    assert run.runs >= 2
    [audit] = audit_hyperwallet_payments(admin, fault_ledger)
    assert audit.found == 2 * INVOICES


def test_pay_killed_mid_batch_then_rerun_pays_each_once(
    admin, hw_config, fault_run, fault_ledger, hw_payments
):
    run = fault_run(WORKFLOW, hw_config)
    # Slow Hyperwallet down so that the kill lands mid-batch.
    admin.set_faults({"seed": 1, "hyperwallet": {"latency_ms": 30}})

    run.run_killed("pay", lambda: len(hw_payments()) >= 8)
    assert 8 <= len(hw_payments()) < 2 * INVOICES

    admin.clear_faults()
    assert run.rerun_until(lambda: not problems(audit_hyperwallet_payments(admin, fault_ledger)))
    assert problems(audit_hyperwallet_payments(admin, fault_ledger)) == []


def test_an_invoice_whose_lookup_failed_is_queued_and_paid_by_the_next_run(
    admin, hw_config, fault_run, fault_ledger
):
    """Regression: the lookup by clientPaymentId of the first invoice's payment failing raised
    out of the item, which was then neither paid nor queued for a retry, while the window moved
    past the invoice: no later run ever read it again."""
    admin.set_faults({"rules": [rule("hyperwallet", "GET", "/rest/v4/payments", "error", times=2)]})
    run = fault_run(WORKFLOW, hw_config)

    assert run.run_once()

    assert [item.item_id for item in fault_ledger.pending_items(WORKFLOW)] == ["1"]
    assert fault_ledger.get_checkpoint(WINDOW_KEY) is not None  # the window moved past it
    admin.clear_faults()
    assert run.rerun_until(lambda: not problems(audit_hyperwallet_payments(admin, fault_ledger)))
    assert problems(audit_hyperwallet_payments(admin, fault_ledger)) == []
