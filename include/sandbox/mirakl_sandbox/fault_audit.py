"""Exactly once under faults: run workflows through injected faults and killed tasks, then audit.

With a share of the Mirakl and Stripe calls failing (5xx, 429, timeouts, answers lost after the
work was done) and a task process killed mid-batch, the reruns must end with every transfer,
refund, reversal and payout made exactly once, and the ledger must say what the provider holds,
item by item. The fault tests (small sizes) and the fault benchmark (a larger run) both use this
module, so the figures the benchmark prints are the properties the tests assert.

* :class:`FaultRun` runs a workflow's steps the way its DAG does, through the workflow registry:
  each step is a task with retries, a task that still fails ends the run, and the next run starts
  over from the first step. :meth:`FaultRun.kill_mid` runs one step in a child process and kills
  it with SIGKILL once the sandbox holds enough of the objects it creates.
* The ``audit_*`` functions read the sandbox's objects, the ledger rows and the Mirakl data, and
  report duplicates, missing objects and every difference (amount, id, account, status). The
  expected amounts come from the Mirakl data alone, not from the ledger, so a wrong amount that
  the ledger and the provider agree on is still caught.

Run as a module, it is that child process: ``python -m mirakl_sandbox.fault_audit
<sandbox url> <ledger url> <workflow> <step> <config json> <timeout>``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import mirakl_connector
from mirakl_connector.airflow.workflows import spec_named
from mirakl_connector.core import registry
from mirakl_connector.core.money import normalize_currency, to_minor
from mirakl_connector.core.retry import RetryPolicy
from mirakl_connector.core.shards import shards_from_config
from mirakl_connector.hyperwallet.client import HyperwalletClient
from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.records import (
    INVOICE_TRANSFER_TYPES,
    OPERATOR_FEE_SUFFIX,
    HyperwalletPaymentStatus,
    PayoutStatus,
    RefundStatus,
    TransferStatus,
    TransferType,
)
from mirakl_connector.mirakl.client import MiraklClient
from mirakl_connector.stripe.gateway import StripeGateway
from mirakl_sandbox.client import SandboxAdmin
from mirakl_sandbox.hyperwallet_admin import (
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
    HyperwalletSandboxAdmin,
)
from mirakl_sandbox.scenario import DEFAULT_MIRAKL_API_KEY, DEFAULT_STRIPE_API_KEY

log = logging.getLogger(__name__)

#: The steps of each workflow's DAG, in order.
STEPS: Mapping[str, tuple[str, ...]] = {
    "payment_split": ("plan", "execute"),
    "payment_refund": ("plan", "refund", "reverse"),
    "seller_settlement": ("plan", "transfer", "payout"),
    "hyperwallet_invoice_payments": ("check", "pay"),
}

_INCLUDE = Path(mirakl_connector.__file__).resolve().parent.parent


class KillMissedError(RuntimeError):
    """The step ended (or never got far enough) before it could be killed mid-batch."""


@dataclass
class FaultRun:
    """One workflow against the sandbox at ``url``, run and rerun as its DAG would be.

    :param ledger_url: the ledger's URL, unmasked (the killed child opens it too).
    :param retry: the clients' retry policy (each client call retries on its own first).
    :param timeout: the clients' read timeout, seconds; keep it below the sandbox's
        ``timeout_seconds`` so that an injected timeout is one for the client too.
    :param task_retries: Airflow's ``retries`` of each task (the DAGs use 2).
    """

    url: str
    ledger: Ledger
    ledger_url: str
    workflow: str
    config: Mapping[str, Any] = field(default_factory=dict)
    retry: RetryPolicy = field(default_factory=RetryPolicy.no_wait)
    timeout: float = 1.0
    task_retries: int = 2
    runs: int = 0  # DAG runs so far
    failed_tasks: int = 0  # task attempts that raised (Airflow would retry them)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def steps(self) -> tuple[str, ...]:
        return STEPS[self.workflow]

    def job(self, run_id: str) -> Any:
        """The workflow's job as the Airflow operator builds it, with fresh clients."""
        resources = registry.Resources(
            mirakl=lambda: MiraklClient(
                self.url, DEFAULT_MIRAKL_API_KEY, retry=self.retry, timeout=(1, self.timeout)
            ),
            stripe=lambda: StripeGateway(
                DEFAULT_STRIPE_API_KEY, base_url=self.url, retry=self.retry, timeout=self.timeout
            ),
            ledger=lambda: self.ledger,
            hyperwallet=lambda: HyperwalletClient(
                self.url,
                DEFAULT_USERNAME,
                DEFAULT_PASSWORD,
                retry=self.retry,
                timeout=(1, self.timeout),
            ),  # fmt: skip
        )
        return spec_named(self.workflow).build(resources, self.config, run_id)

    def run_step(
        self, step: str, run_id: str | None = None, params: Mapping[str, Any] | None = None
    ) -> None:
        """One task attempt of ``step`` (raises what the task would fail with)."""
        declared = spec_named(self.workflow).step(step)
        registry.run_step(self.job(run_id or f"{self.workflow}-{step}"), declared, params or {})

    def run_task(self, step: str, run_id: str) -> bool:
        """``step`` as its Airflow task(s), each retried ``task_retries`` times; ``False`` if one
        never succeeded (the downstream tasks would not run).

        A step its spec declares sharded (:class:`~mirakl_connector.core.workflow_spec.StepSpec`)
        is mapped over its ``execute_shards`` (as in its DAG): the shards run at the same time,
        each with its own clients.
        """
        tasks = self._task_params(step)
        if len(tasks) == 1:
            return self._try(step, run_id, tasks[0])
        with ThreadPoolExecutor(max_workers=len(tasks)) as pool:
            return all(list(pool.map(lambda params: self._try(step, run_id, params), tasks)))

    def _task_params(self, step: str) -> list[dict[str, Any]]:
        spec = spec_named(self.workflow)
        if spec.step(step).sharded:
            return [
                dict(params) for params in shards_from_config(self.config, spec.settings_section)
            ]
        return [{}]

    def _try(self, step: str, run_id: str, params: Mapping[str, Any]) -> bool:
        for _try in range(self.task_retries + 1):
            try:
                self.run_step(step, run_id, params)
                return True
            except Exception as exc:  # noqa: BLE001 - a failed task; Airflow retries it
                with self._lock:
                    self.failed_tasks += 1
                log.info("%s %s%s failed (%s); retried", run_id, step, params or "", exc)
        return False

    def run_once(self) -> bool:
        """One DAG run; ``False`` when a task failed all its tries (the run stops there)."""
        self.runs += 1
        run_id = f"{self.workflow}-run-{self.runs}"
        return all(self.run_task(step, run_id) for step in self.steps)

    def run_killed(self, step: str, until: Callable[[], bool], **kill: Any) -> None:
        """One DAG run whose ``step`` task is killed mid-batch (see :meth:`kill_mid`); the
        steps before it run first, as tasks."""
        self.runs += 1
        run_id = f"{self.workflow}-run-{self.runs}"
        for earlier in self.steps[: self.steps.index(step)]:
            if not self.run_task(earlier, run_id):
                raise KillMissedError(f"{earlier} failed every try; {step} never started")
        self.kill_mid(step, until, **kill)

    def rerun_until(self, done: Callable[[], bool], max_runs: int = 8) -> bool:
        """Run the DAG until ``done()`` (the next scheduled runs); ``False`` if it never is."""
        for _ in range(max_runs):
            self.run_once()
            if done():
                return True
        return False

    def kill_mid(
        self,
        step: str,
        until: Callable[[], bool],
        *,
        deadline: float = 60.0,
        poll: float = 0.02,
    ) -> None:
        """Run ``step`` in a child process and SIGKILL it as soon as ``until()`` holds.

        ``until`` reads the sandbox (e.g. "at least 15 transfers exist"), so the kill lands in the
        middle of the batch, possibly between a Stripe answer and the ledger write that records
        it, which is the case the idempotency keys and ``in_doubt`` rows exist for.

        :raises KillMissedError: the step finished, crashed or stalled before ``until()`` held;
            the kill would prove nothing.
        """
        args = [self.url, self.ledger_url, self.workflow, step, json.dumps(self.config)]
        args.append(str(self.timeout))
        path = os.pathsep.join(p for p in (str(_INCLUDE), os.environ.get("PYTHONPATH")) if p)
        with tempfile.TemporaryFile() as stderr:
            child = subprocess.Popen(
                [sys.executable, "-m", __name__, *args],
                env={**os.environ, "PYTHONPATH": path},
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
            try:
                end = time.monotonic() + deadline
                while not until():
                    if child.poll() is not None or time.monotonic() > end:
                        stderr.seek(0)
                        tail = stderr.read()[-2000:].decode(errors="replace")
                        why = "ended" if child.poll() is not None else "did not get far enough"
                        raise KillMissedError(f"{step} {why} before the kill: {tail}")
                    time.sleep(poll)
                os.kill(child.pid, signal.SIGKILL)
            finally:
                if child.poll() is None:
                    child.kill()
                child.wait(10)


def _child_main(argv: Sequence[str]) -> int:
    """The killed task: one step of one workflow, with its own clients and ledger connection."""
    url, ledger_url, workflow, step, config, timeout = argv
    logging.basicConfig(level=logging.ERROR)
    ledger = Ledger(ledger_url)
    try:
        run = FaultRun(url, ledger, ledger_url, workflow, json.loads(config))
        run.timeout = float(timeout)
        run.run_step(step, f"{workflow}-killed")
    finally:
        ledger.dispose()
    return 0


# -- what the sandbox saw ---------------------------------------------------------------------


def injected_faults(admin: SandboxAdmin) -> dict[str, Counter[str]]:
    """The faults the sandbox injected so far, per API and kind (``error``, ``timeout``...).

    ``rate_limit_bucket`` (the steady request-rate limit, not a random fault) is left out.
    """
    seen: dict[str, Counter[str]] = {
        "mirakl": Counter(),
        "stripe": Counter(),
        "hyperwallet": Counter(),
    }
    logs = [
        ("mirakl", admin.mirakl_calls()),
        ("stripe", admin.stripe_requests()),
        ("hyperwallet", _hyperwallet(admin, HyperwalletSandboxAdmin.calls)),
    ]
    for api, calls in logs:
        for call in calls:
            fault = call.get("fault")
            if fault and fault != "rate_limit_bucket":
                seen[api][fault] += 1
    return seen


def _hyperwallet(admin: SandboxAdmin, read: Callable[[HyperwalletSandboxAdmin], Any]) -> Any:
    """``read(client)`` with a Hyperwallet admin client on the same sandbox as ``admin``."""
    client = HyperwalletSandboxAdmin(admin.url)
    try:
        return read(client)
    finally:
        client.close()


def fault_config(
    rate: float = 0.10,
    *,
    seed: int = 5,
    lost_response_rate: float = 0.03,
    timeout_seconds: float = 1.5,
) -> dict[str, Any]:
    """``rate`` of the calls of every API failing: 40 % of it 5xx, 30 % 429, 30 % timeouts.

    Stripe and Hyperwallet also lose ``lost_response_rate`` of their answers after doing the
    work (then answer 500): the fault an idempotency key (Stripe) or the lookup by
    ``clientPaymentId`` before creating (Hyperwallet) exists for. An injected timeout answers
    after ``timeout_seconds``: give the clients a shorter read timeout.
    """
    shares = {
        "error_rate": rate * 0.4,
        "rate_limit_rate": rate * 0.3,
        "timeout_rate": rate * 0.3,
        "timeout_seconds": timeout_seconds,
    }
    return {
        "seed": seed,
        "mirakl": {**shares, "retry_after_seconds": 0},
        "stripe": {**shares, "lost_response_rate": lost_response_rate},
        "hyperwallet": {**shares, "lost_response_rate": lost_response_rate},
    }


def rule(target: str, method: str, path: str, action: str, times: int = 1) -> dict[str, Any]:
    """A targeted fault for ``fault_config(...)["rules"]``: the next ``times`` calls matching
    ``method path`` (``*`` ends a prefix) get ``action``, before the random faults."""
    return {"target": target, "method": method, "path": path, "times": times, "action": action}


# -- audits -------------------------------------------------------------------------------------


@dataclass
class Audit:
    """One kind of provider object: the sandbox against the ledger and the expected amounts."""

    kind: str
    expected: int  # objects there should be (from the Mirakl data)
    found: int  # objects the sandbox holds
    duplicates: dict[str, int]  # Mirakl key → number of objects, when more than one
    missing: list[str]  # Mirakl keys without an object
    mismatches: list[str]  # a ledger row or an amount that differs, with both sides

    @property
    def problems(self) -> list[str]:
        """Everything wrong, one line each (empty: exactly once, ledger = sandbox)."""
        return [
            *(f"{self.kind} {key}: {n} objects" for key, n in sorted(self.duplicates.items())),
            *(f"{self.kind} {key}: missing" for key in self.missing),
            *(f"{self.kind} {line}" for line in self.mismatches),
        ]


def problems(audits: Iterable[Audit]) -> list[str]:
    """The problems of several audits, in order (empty: all of them clean)."""
    return [line for audit in audits for line in audit.problems]


def compare(
    kind: str,
    objects: Iterable[tuple[str, dict[str, Any]]],
    rows: Mapping[str, dict[str, Any]],
    expected: Mapping[str, int],
) -> Audit:
    """Compare provider objects with ledger rows and expected amounts, key by key.

    :param objects: ``(key, fields)`` per sandbox object, ``fields`` with ``id`` and ``amount``
        and the status the ledger must show once the object exists.
    :param rows: ``key → fields`` per ledger row, in the same shape: equal when they agree.
    :param expected: ``key → amount`` from the Mirakl data.
    """
    by_key: dict[str, list[dict[str, Any]]] = {}
    for key, fields in objects:
        by_key.setdefault(key, []).append(fields)
    mismatches = []
    for key, seen in sorted(by_key.items()):
        if key not in expected:
            mismatches.append(f"{key}: {seen} in the sandbox was not expected")
            continue
        amounts = {s["amount"] for s in seen}
        if amounts != {expected[key]}:
            mismatches.append(f"{key}: amount {sorted(amounts)} instead of {expected[key]}")
        if rows.get(key) not in seen:
            mismatches.append(f"{key}: ledger {rows.get(key)} != sandbox {seen}")
    for key, row in sorted(rows.items()):
        if key not in by_key and row.get("id"):
            mismatches.append(f"{key}: the ledger has {row['id']}, the sandbox has nothing")
    return Audit(
        kind=kind,
        expected=len(expected),
        found=sum(len(seen) for seen in by_key.values()),
        duplicates={key: len(seen) for key, seen in by_key.items() if len(seen) > 1},
        missing=sorted(set(expected) - set(by_key)),
        mismatches=mismatches,
    )


def _minor(value: Any, currency: str) -> int:
    """Minor units of a Mirakl amount as the admin API returns it (a JSON number)."""
    return to_minor(Decimal(str(value)), normalize_currency(currency))


def _transfer_rows(
    ledger: Ledger, types: Sequence[TransferType], key: Callable[[Any], str]
) -> dict[str, dict[str, Any]]:
    rows = {}
    for batch in ledger.iter_transfers(types=types, statuses=list(TransferStatus)):
        for r in batch:
            rows[key(r)] = {
                "id": r.transfer_id,
                "amount": r.amount,
                "currency": (r.currency or "").lower(),
                "on": r.source_account,
                "to": r.destination_account,
                "from": r.transaction_id,
                "status": r.status,
            }
    return rows


def _transfer_fields(t: Mapping[str, Any], source: str | None) -> dict[str, Any]:
    return {
        "id": t["id"],
        "amount": t["amount"],
        "currency": t["currency"],
        "on": t.get("sandbox_account"),
        "to": t["destination"],
        "from": source,
        "status": TransferStatus.CREATED,
    }


def audit_order_transfers(admin: SandboxAdmin, ledger: Ledger) -> Audit:
    """Payment split: one transfer per debited order of the seller's share (generated orders:
    price + tax − commission), from the order's charge."""
    expected = {}
    for order in admin.orders():
        if order.get("customer_debited_date") and order.get("transaction_number"):
            currency = order["currency_iso_code"]
            taxes = sum(
                _minor(tax["amount"], currency)
                for line in order["order_lines"]
                for tax in (*line.get("taxes", ()), *line.get("shipping_taxes", ()))
            )
            expected[order["order_id"]] = (
                _minor(order["total_price"], currency)
                + taxes
                - _minor(order["total_commission"], currency)
            )
    objects = [
        (t["metadata"]["miraklId"], _transfer_fields(t, t.get("source_transaction")))
        for t in admin.transfers()
        if t["metadata"].get("miraklTransferType") == TransferType.PRODUCT_ORDER
    ]
    rows = _transfer_rows(ledger, [TransferType.PRODUCT_ORDER], lambda r: r.mirakl_id)
    return compare("order transfer", objects, rows, expected)


def _product_refunds(admin: SandboxAdmin) -> dict[str, tuple[dict[str, Any], str]]:
    return {
        str(refund["id"]): (refund, order["currency_iso_code"])
        for order in admin.orders()
        for line in order.get("order_lines") or ()
        for refund in line.get("refunds") or ()
    }


def audit_refunds(admin: SandboxAdmin, ledger: Ledger) -> list[Audit]:
    """Payment refund: per Mirakl refund, one Stripe refund of its amount, one PA02 validation
    that reached Mirakl (the refund REFUNDED there with our refund id), and one reversal of the
    refund minus its commission from the order's transfer (no tax split)."""
    refunds = _product_refunds(admin)
    amounts = {rid: _minor(r["amount"], cur) for rid, (r, cur) in refunds.items()}
    reversed_ = {
        rid: amounts[rid] - _minor(r.get("commission_total_amount") or 0, cur)
        for rid, (r, cur) in refunds.items()
    }
    rows = ledger.get_refunds(refunds)
    refund_rows = {
        rid: {"id": r.stripe_refund_id, "amount": r.amount, "payment": r.transaction_id,
              "status": r.status}
        for rid, r in rows.items()
    }  # fmt: skip
    stripe_refunds = [
        (
            r["metadata"]["miraklRefundId"],
            {"id": r["id"], "amount": r["amount"], "payment": r.get("charge") or
             r.get("payment_intent"), "status": RefundStatus.CREATED},
        )
        for r in admin.refunds()
    ]  # fmt: skip

    validated_rows = {
        rid: {"id": r.stripe_refund_id, "amount": r.amount,
              "state": "REFUNDED" if r.mirakl_validated_at else None}
        for rid, r in rows.items()
    }  # fmt: skip
    validations = []
    for call in admin.mirakl_calls("PA02"):
        if call.get("fault") or not 200 <= int(call.get("status") or 0) < 300:
            continue
        for entry in call["body"]["refunds"]:
            rid = str(entry["refund_id"])
            refund, _ = refunds.get(rid, ({}, "EUR"))
            state = refund.get("refund_state")
            if refund.get("transaction_number") != entry.get("transaction_number"):
                state = f"{state} with {refund.get('transaction_number')}"
            amount = _minor(entry["amount"], entry["currency_iso_code"])
            fields = {"id": entry.get("transaction_number"), "amount": amount, "state": state}
            validations.append((rid, fields))

    reversal_rows = _transfer_rows(ledger, [TransferType.REFUND], lambda r: r.mirakl_id)
    transfers = {t["id"]: t for t in admin.transfers()}
    reversals = []
    for trr in admin.reversals():
        # A reversal lives on the platform and takes back from the reversed transfer's seller.
        seller = transfers.get(trr["transfer"], {}).get("destination")
        fields = _transfer_fields({**trr, "destination": seller}, trr["transfer"])
        reversals.append((trr["metadata"]["miraklId"], {**fields, "on": None}))
    return [
        compare("refund", stripe_refunds, refund_rows, amounts),
        compare("PA02 validation", validations, validated_rows, amounts),
        compare("reversal", reversals, reversal_rows, reversed_),
    ]


def audit_settlement(admin: SandboxAdmin, ledger: Ledger) -> list[Audit]:
    """Seller settlement: per invoice, one transfer of each non-zero summary amount (seller →
    platform on the seller's account, platform → seller on the platform) and one payout of
    ``amount_transferred`` from the seller's account."""
    fields = {
        TransferType.SUBSCRIPTION: "total_subscription_incl_tax",
        TransferType.EXTRA_INVOICES: "total_other_invoices_incl_tax",
        TransferType.EXTRA_CREDITS: "total_other_credits_incl_tax",
    }
    transfers_expected, payouts_expected = {}, {}
    for invoice in admin.invoices():
        invoice_id, currency = str(invoice["invoice_id"]), invoice["currency_iso_code"]
        summary = invoice["summary"]
        for transfer_type, name in fields.items():
            amount = abs(_minor(summary.get(name) or 0, currency))
            if amount:
                transfers_expected[f"{invoice_id}/{transfer_type}"] = amount
        paid = _minor(summary.get("amount_transferred") or 0, currency)
        if paid > 0:
            payouts_expected[invoice_id] = paid
    transfers = [
        (
            f"{t['metadata']['miraklId']}/{t['metadata']['miraklTransferType']}",
            _transfer_fields(t, None),
        )
        for t in admin.transfers()
        if t["metadata"].get("miraklTransferType") in INVOICE_TRANSFER_TYPES
    ]
    transfer_rows = _transfer_rows(
        ledger, INVOICE_TRANSFER_TYPES, lambda r: f"{r.mirakl_id}/{r.type}"
    )
    payouts = [
        (
            p["metadata"]["invoiceId"],
            {"id": p["id"], "amount": p["amount"], "currency": p["currency"],
             "on": p.get("sandbox_account"), "status": PayoutStatus.CREATED},
        )
        for p in admin.payouts()
    ]  # fmt: skip
    payout_rows = {}
    for batch in ledger.iter_payouts(statuses=list(PayoutStatus)):
        for p in batch:
            payout_rows[p.mirakl_invoice_id] = {
                "id": p.payout_id,
                "amount": p.amount,
                "currency": (p.currency or "").lower(),
                "on": p.stripe_account_id,
                "status": p.status,
            }
    return [
        compare("invoice transfer", transfers, transfer_rows, transfers_expected),
        compare("payout", payouts, payout_rows, payouts_expected),
    ]


def audit_hyperwallet_payments(admin: SandboxAdmin, ledger: Ledger) -> list[Audit]:
    """Hyperwallet invoice payments: per invoice, one payment of ``amount_transferred`` to the
    seller's bank account and one of ``amount_transferred_to_operator`` (``<id>-operatorFee``)
    to the operator's, none failed."""
    expected = {}
    for invoice in admin.invoices():
        invoice_id, currency = str(invoice["invoice_id"]), invoice["currency_iso_code"]
        for key, name in (
            (invoice_id, "amount_transferred"),
            (invoice_id + OPERATOR_FEE_SUFFIX, "amount_transferred_to_operator"),
        ):
            amount = _minor(invoice["summary"].get(name) or 0, currency)
            if amount > 0:
                expected[key] = amount
    payments = _hyperwallet(admin, HyperwalletSandboxAdmin.payments)
    objects = [
        (
            p["clientPaymentId"],
            {"id": p["token"], "amount": _minor(p["amount"], p["currency"]),
             "currency": p["currency"], "to": p["destinationToken"], "sent": True},
        )
        for p in payments
    ]  # fmt: skip
    sent = {HyperwalletPaymentStatus.CREATED, HyperwalletPaymentStatus.COMPLETED}
    rows = {}
    for batch in ledger.iter_hyperwallet_payments(statuses=list(HyperwalletPaymentStatus)):
        for r in batch:
            rows[r.client_payment_id] = {
                "id": r.payment_token, "amount": r.amount, "currency": r.currency,
                "to": r.destination_token, "sent": r.status in sent or str(r.status),
            }  # fmt: skip
    return [compare("Hyperwallet payment", objects, rows, expected)]


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
