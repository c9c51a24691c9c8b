"""The payment split under injected faults and a killed task: every transfer exactly once.

10% of Mirakl and Stripe calls fail (5xx, 429, timeouts; seeded), and a task process is killed
with SIGKILL in the middle of execute. After reruns, each order has exactly one Stripe transfer
and the ledger matches the sandbox item by item (amount, destination, transfer id).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from datetime import UTC as _UTC
from datetime import datetime as _dt
from pathlib import Path

import pytest

from mirakl_connector.ledger.records import TransferStatus, TransferType
from mirakl_connector.operations.first_run import GoLive
from mirakl_connector.stripe.payment_split import PaymentSplit, PaymentSplitSettings

# the inner loop leaves out fault-injection runs and killed tasks (README "Two commands")
pytestmark = pytest.mark.slow

#: Tests move money from any date: an explicit go-live instant far in the past.
TEST_GO_LIVE = GoLive(_dt(2000, 1, 1, tzinfo=_UTC))

ORDERS = 60
FAULTS = {"error_rate": 0.04, "rate_limit_rate": 0.03, "timeout_rate": 0.03}


def rows_by_order(ledger) -> dict:
    batches = ledger.iter_transfers(
        types=[TransferType.PRODUCT_ORDER], statuses=list(TransferStatus)
    )
    return {r.mirakl_id: r for batch in batches for r in batch}


def assert_ledger_equals_sandbox(admin, ledger) -> None:
    transfers = admin.transfers()
    per_order = Counter(t["metadata"]["miraklId"] for t in transfers)
    assert len(per_order) == ORDERS and set(per_order.values()) == {1}, "a transfer twice/missing"
    rows = rows_by_order(ledger)
    failed = {k: r.status_reason for k, r in rows.items() if r.status != TransferStatus.CREATED}
    assert not failed
    for t in transfers:
        row = rows[t["metadata"]["miraklId"]]
        assert (row.transfer_id, row.amount, row.destination_account, row.currency.lower()) == (
            t["id"], t["amount"], t["destination"], t["currency"],
        )  # fmt: skip


def job(clients, ledger, run_id: str) -> PaymentSplit:
    mirakl, stripe = clients
    return PaymentSplit(
        mirakl=mirakl, stripe=stripe, ledger=ledger, settings=PaymentSplitSettings(),
        go_live=TEST_GO_LIVE,
        run_id=run_id,
    )  # fmt: skip


def test_ten_percent_faults_on_both_apis_move_every_transfer_exactly_once(
    admin, clients, fault_ledger, map_accounts
):
    admin.generate(orders=ORDERS, shops=4, currency="EUR", seed=2)
    map_accounts(admin, fault_ledger)
    admin.set_faults(
        {
            "seed": 5,
            "mirakl": {**FAULTS, "timeout_seconds": 1.5, "retry_after_seconds": 0},
            "stripe": {**FAULTS, "timeout_seconds": 1.5, "lost_response_rate": 0.03},
        }
    )
    for attempt in range(8):  # the DAG's task retries, and the next scheduled runs
        split = job(clients, fault_ledger, f"run-{attempt}")
        try:
            split.plan()
            split.execute()
        except Exception:  # noqa: BLE001 - a task that failed; Airflow would retry it
            pass
        pending = [r for r in rows_by_order(fault_ledger).values() if r.status != "CREATED"]
        if len(rows_by_order(fault_ledger)) == ORDERS and not pending:
            break
    injected = sum(1 for r in admin.stripe_requests() if r.get("fault"))
    injected += sum(1 for c in admin.mirakl_calls() if c.get("fault"))
    assert injected >= 5, "the faults did not fire; the test proves nothing"
    admin.clear_faults()
    assert_ledger_equals_sandbox(admin, fault_ledger)


_CHILD = textwrap.dedent(
    """
    import sys
    from mirakl_connector.ledger import Ledger
    from mirakl_connector.mirakl.client import MiraklClient
    from mirakl_connector.core.retry import RetryPolicy
    from mirakl_connector.stripe.gateway import StripeGateway
    from mirakl_connector.stripe.payment_split import PaymentSplit, PaymentSplitSettings
    url, ledger_url = sys.argv[1:3]
    retry = RetryPolicy.no_wait()
    PaymentSplit(
        mirakl=MiraklClient(url, "sandbox-mirakl-key", retry=retry),
        stripe=StripeGateway("sk_test_sandbox", base_url=url, retry=retry),
        ledger=Ledger(ledger_url),
        settings=PaymentSplitSettings(),
        run_id="killed",
    ).execute()
    """
)


def test_task_killed_mid_batch_then_rerun_sends_each_transfer_once(
    admin, clients, fault_ledger, ledger_path, fault_server, map_accounts
):
    admin.generate(orders=ORDERS, shops=4, currency="EUR", seed=3)
    map_accounts(admin, fault_ledger)
    job(clients, fault_ledger, "plan").plan()
    # Slow Stripe down so that the kill lands mid-batch.
    admin.set_faults({"seed": 1, "stripe": {"latency_ms": 40}})

    include = Path(__file__).resolve().parents[2] / "include"
    env = {**os.environ, "PYTHONPATH": str(include)}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, fault_server.url, ledger_path], env=env)
    deadline = time.monotonic() + 30
    while len(admin.transfers()) < 15 and time.monotonic() < deadline:
        assert child.poll() is None, "the task finished before it could be killed"
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    sent_before_kill = len(admin.transfers())
    assert 15 <= sent_before_kill < ORDERS

    admin.clear_faults()
    for attempt in range(2):
        job(clients, fault_ledger, f"rerun-{attempt}").execute()
    transfers = admin.transfers()
    per_order = Counter(t["metadata"]["miraklId"] for t in transfers)
    assert set(per_order.values()) == {1}, "a transfer was created twice"
    rows = rows_by_order(fault_ledger)
    by_id = {t["id"]: t for t in transfers}
    for mirakl_id, row in rows.items():
        if row.status is TransferStatus.CREATED:
            sent = by_id[row.transfer_id]
            assert (sent["amount"], sent["destination"]) == (row.amount, row.destination_account)
        else:
            # The request the kill interrupted: never FAILED (a new key could pay twice), only
            # PENDING in doubt with its first key, until Stripe (here the sandbox) answers it.
            assert row.status is TransferStatus.PENDING and row.in_doubt, (mirakl_id, row)
            assert row.idempotency_key.endswith(mirakl_id)
    created = sum(1 for r in rows.values() if r.status is TransferStatus.CREATED)
    assert created == len(transfers) >= ORDERS - 1
