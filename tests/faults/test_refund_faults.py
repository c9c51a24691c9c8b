"""Payment refunds under injected faults and killed tasks: every refund and reversal exactly once.

Refunds are the money going back: to the customer (a Stripe refund, then PA02 so Mirakl knows)
and from the seller (a reversal of the order's transfer). Each test starts from orders the split
has paid, gives some of them a pending refund in Mirakl, then runs the refund DAG (plan → refund
→ reverse) through 10 % failing calls on both APIs or through a killed task, and reruns it. In
the end each Mirakl refund has exactly one Stripe refund of its amount, one PA02 validation that
reached Mirakl (the refund REFUNDED there with our refund id) and one reversal of the refund less
its commission; the ledger holds the same ids and amounts, item by item.
"""

from __future__ import annotations

import pytest
from mirakl_sandbox.fault_audit import audit_refunds, problems, rule
from mirakl_sandbox.generate import add_line_refunds

from mirakl_connector.ledger.records import RefundStatus

ORDERS = 30


def ask_refunds(admin, orders: list[dict]) -> None:
    """Mirakl asks for one refund on each paid order (PA12 lists them from now on)."""
    admin.put_orders(add_line_refunds(orders, len(orders), seed=4))
    admin.clear_stripe_requests()
    admin.clear_mirakl_calls()


@pytest.mark.slow
def test_ten_percent_faults_on_both_apis_refund_validate_and_reverse_each_once(
    admin, paid_orders, through_faults, fault_ledger
):
    ask_refunds(admin, paid_orders(ORDERS))

    # Besides the random faults, whatever the seed: PA02 down for the first validation (refunded
    # in Stripe, not yet validated in Mirakl), PA12 and OR11 timing out, a refund and a reversal
    # in doubt.
    run, seen = through_faults(
        "payment_refund",
        lambda: audit_refunds(admin, fault_ledger),
        seed=3,
        rules=[
            rule("mirakl", "PUT", "/api/payment/refund", "error", times=2),
            rule("mirakl", "GET", "/api/payment/refund", "timeout"),
            # OR11 down for both tries of each of the 4 reverse shards' first call
            rule("mirakl", "GET", "/api/orders", "timeout", times=8),
        ],
        lost=["/v1/refunds", "/v1/transfers/*"],
    )

    assert seen["mirakl"]["error"] >= 2 and seen["mirakl"]["timeout"] >= 3, seen
    assert run.runs >= 2  # PA02 was down for the first validation: the next run did it
    assert run.failed_tasks >= 1  # OR11 was down for a whole reverse task: Airflow's retry
    refunds = fault_ledger.get_refunds(f"RF-{o['order_id']}" for o in admin.orders())
    assert len(refunds) == ORDERS
    assert {r.status for r in refunds.values()} == {RefundStatus.CREATED}
    assert all(r.mirakl_validated_at is not None for r in refunds.values())


@pytest.mark.slow
def test_refund_validation_and_reverse_killed_mid_batch_then_rerun_move_each_once(
    admin, paid_orders, fault_run, fault_ledger
):
    ask_refunds(admin, paid_orders(ORDERS))
    run = fault_run("payment_refund")
    run.run_step("plan")
    # Slow Stripe down so that the kills land mid-batch.
    admin.set_faults({"seed": 1, "stripe": {"latency_ms": 40}})

    # 1. Killed among the Stripe refunds: Mirakl has heard of none of them yet.
    run.kill_mid("refund", lambda: len(admin.refunds()) >= 10)
    assert 10 <= len(admin.refunds()) < ORDERS
    assert admin.mirakl_calls("PA02") == []

    # 2. Airflow's retry, killed as soon as Mirakl has answered PA02: Mirakl has validated every
    # refund while the ledger is still writing that down (the worst moment for a retry).
    run.kill_mid("refund", lambda: bool(admin.mirakl_calls("PA02")), poll=0.005)
    assert len(admin.refunds()) == ORDERS
    assert all(r["refund_state"] == "REFUNDED" for r in pending_refunds(admin))
    validated = fault_ledger.get_refunds(r["id"] for r in pending_refunds(admin)).values()
    # One PA02 batch, recorded in one ledger transaction: the kill finds it all or nothing
    # written down (usually nothing; on a loaded machine the commit may win the race).
    assert sum(r.mirakl_validated_at is not None for r in validated) in (0, ORDERS)

    # 3. The reversals, killed mid-batch.
    run.run_step("refund")  # the retry: validates the rest ("already validated"), refunds nothing
    run.kill_mid("reverse", lambda: len(admin.reversals()) >= 10)
    assert 10 <= len(admin.reversals()) < ORDERS

    admin.clear_faults()
    assert run.rerun_until(lambda: not problems(audit_refunds(admin, fault_ledger)))
    assert problems(audit_refunds(admin, fault_ledger)) == []
    accepted = [c for c in admin.mirakl_calls("PA02") if c["status"] < 300]
    assert len(accepted) == 1  # one PA02 reached Mirakl; the later ones were refused, harmless


def pending_refunds(admin) -> list[dict]:
    """The refunds Mirakl asked for (all of them, whatever their state now)."""
    return [r for o in admin.orders() for line in o["order_lines"] for r in line.get("refunds", [])]
