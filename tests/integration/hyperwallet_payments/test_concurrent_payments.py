"""Issue 11 point 7: copies of the ``pay`` step running at once send each payment once.

Hyperwallet has no idempotency key, and nothing documents that it refuses a reused
``clientPaymentId`` (docs.hyperwallet.com is silent), so the simulator's refusal is turned off
here: only the ledger's send claim may keep two copies from creating the same payment.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from mirakl_connector.core.retry import RetryPolicy
from mirakl_connector.hyperwallet.client import HyperwalletClient
from mirakl_connector.hyperwallet.invoice_payments import SEND_LEASE, sender_gone
from mirakl_connector.ledger import HyperwalletPaymentStatus, Ledger, schema
from mirakl_connector.mirakl.client import MiraklClient

from .conftest import HW_PASSWORD, HW_USER
from .test_invoice_payments import _job

# concurrent copies of a step: the inner loop leaves them out (README "Two commands")
pytestmark = pytest.mark.slow

INVOICES = 20
COPIES = 3
MIRAKL_KEY = "sandbox-mirakl-key"


def _scenario(hw) -> dict:
    scenario = hw.scenario(
        shops=[hw.shop()], invoices=[hw.invoice(500_000 + n) for n in range(INVOICES)]
    )
    scenario["hyperwallet"]["refuse_duplicate_client_payment_ids"] = False
    return scenario


def _copy(url: str, ledger: Ledger):
    """One copy of the step: its own clients and ledger connection, like another worker."""
    mirakl = MiraklClient(url, MIRAKL_KEY, retry=RetryPolicy.no_wait(2))
    hyperwallet = HyperwalletClient(
        url, HW_USER, HW_PASSWORD, retry=RetryPolicy.no_wait(2), timeout=(2, 10)
    )
    return _job(mirakl, hyperwallet, ledger)


def _hold_claim(ledger: Ledger, holder: str, until: datetime) -> None:
    """Seller payment 500000 as a run that died mid-send leaves it: a claim held by ``holder``
    (and a ledger that lost track of the payment: FAILED, so only the lookup can find it)."""
    table = schema.hyperwallet_payments
    with ledger._writer.begin() as conn:
        conn.execute(
            table.update()
            .where(table.c.client_payment_id == "500000")
            .values(status="HW_PAYMENT_FAILED", send_claimed_by=holder, send_claimed_until=until)
        )


def test_three_copies_of_the_pay_step_create_each_payment_once(
    hw, sandbox, sandbox_server, hw_admin, open_ledger: Callable[[], Ledger]
):
    sandbox.reset(_scenario(hw))
    # Hyperwallet answering in 30 ms leaves each copy's lookup and creation overlapping the
    # others' (the attack saw 110 creations for 60 payments with three copies).
    sandbox.set_faults({"hyperwallet": {"latency_ms": 30}})
    jobs = [_copy(sandbox_server.url, open_ledger()) for _ in range(COPIES)]
    start = threading.Barrier(COPIES)
    summaries: list[dict] = []
    errors: list[BaseException] = []

    def run(job) -> None:
        try:
            start.wait()
            summaries.append(job.pay().to_dict())
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    assert errors == []
    payments = 2 * INVOICES  # seller and operator commission of each invoice
    creates = hw_admin.calls(path="/rest/v4/payments", method="POST")
    assert len(creates) == payments
    per_id = Counter(p["clientPaymentId"] for p in hw_admin.payments())
    assert len(per_id) == payments and set(per_id.values()) == {1}
    # every payment is recorded once in the ledger, with the token Hyperwallet gave it
    ledger = open_ledger()
    rows = ledger.get_hyperwallet_payments(per_id)
    tokens = {p["clientPaymentId"]: p["token"] for p in hw_admin.payments()}
    assert {cpid: row.payment_token for cpid, row in rows.items()} == tokens
    assert {row.status for row in rows.values()} == {HyperwalletPaymentStatus.CREATED}
    counts: Counter[str] = Counter()
    for summary in summaries:
        counts.update(summary["counts"])
    assert counts["PAID"] == payments


def test_a_sender_that_died_holding_its_claim_delays_the_payment_by_the_lease(
    hw, sandbox, sandbox_server, hw_admin, open_ledger: Callable[[], Ledger]
):
    sandbox.reset(_scenario(hw))
    ledger = open_ledger()
    first = _copy(sandbox_server.url, ledger).pay(invoice_ids=["500000"]).to_dict()
    assert first["counts"] == {"PAID": 2}
    hw_admin.clear_calls()
    # The ledger lost track of the seller payment (FAILED without reason to believe so) and a
    # run that died holding the claim to send it again.
    dead = "dead-run/0"
    _hold_claim(ledger, dead, datetime.now(UTC) + SEND_LEASE)

    held = _copy(sandbox_server.url, open_ledger()).pay(invoice_ids=["500000"]).to_dict()

    assert held["counts"] == {"ALREADY_PAID": 1, "SENDING_ELSEWHERE": 1}
    (waiting,) = [r for r in held["reasons"] if r["status"] == "SENDING_ELSEWHERE"]
    assert dead in waiting["reason"]
    assert hw_admin.calls(path="/rest/v4/payments") == []  # not even looked up

    _hold_claim(ledger, dead, datetime.now(UTC) - timedelta(seconds=1))  # the lease has passed
    after = _copy(sandbox_server.url, open_ledger()).pay(invoice_ids=["500000"]).to_dict()

    # The lease has passed: looked up first, and the payment Hyperwallet holds is adopted.
    assert after["counts"] == {"ALREADY_PAID": 2}
    assert [c["method"] for c in hw_admin.calls(path="/rest/v4/payments")] == ["GET"]
    assert len(hw_admin.payments()) == 2


def test_a_claim_of_a_killed_process_on_this_host_is_taken_over_at_once(
    hw, sandbox, sandbox_server, hw_admin, open_ledger: Callable[[], Ledger]
):
    """The pay step killed mid-send (SIGKILL, OOM) on this worker: its process is gone, so the
    next run need not wait out the lease; it looks the payment up before creating anything."""
    sandbox.reset(_scenario(hw))
    ledger = open_ledger()
    assert _copy(sandbox_server.url, ledger).pay(invoice_ids=["500000"]).to_dict()["counts"] == {
        "PAID": 2
    }
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    gone = f"{socket.gethostname()}/{child.pid}/dead/run"
    assert sender_gone(gone) and not sender_gone(f"{socket.gethostname()}/{os.getpid()}/x/run")
    _hold_claim(ledger, gone, datetime.now(UTC) + SEND_LEASE)
    hw_admin.clear_calls()

    summary = _copy(sandbox_server.url, open_ledger()).pay(invoice_ids=["500000"]).to_dict()

    assert summary["counts"] == {"ALREADY_PAID": 2}  # found by the lookup, not created again
    assert hw_admin.calls(path="/rest/v4/payments", method="POST") == []
