"""Hyperwallet invoice payments, per payment: make sure it exists at Hyperwallet exactly once.

Hyperwallet has no idempotency key: each payment is claimed in the ledger (:data:`SEND_LEASE`),
looked up by ``clientPaymentId`` (and the ids an earlier connector used), and created only when
nothing live is found; the attempt is committed before the call
(:mod:`mirakl_connector.operations.send_once`).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from functools import partial
from typing import Any

from mirakl_connector.core.batch import ItemOutcome
from mirakl_connector.core.errors import (
    ConfigurationError,
    PaymentProviderError,
)
from mirakl_connector.hyperwallet.errors import HyperwalletApiError
from mirakl_connector.hyperwallet.invoice_outcomes import (
    ALREADY_PAID,
    AWAITING_APPROVAL,
    FAILED,
    ON_HOLD,
    PAID,
    REFUSED,
    SENDING_ELSEWHERE,
    SKIPPED,
    WOULD_PAY,
    S,
    payment_outcome,
)
from mirakl_connector.hyperwallet.payment_decisions import (
    ProgramTokens,
    is_live,
    ledger_status,
    live_payment,
    payment_body,
)
from mirakl_connector.ledger import (
    HyperwalletPayment,
    Ledger,
)
from mirakl_connector.ledger.store import LedgerConflictError
from mirakl_connector.operations.approval_gate import (
    is_decidable,
)
from mirakl_connector.operations.send_once import (
    Recording,
    Refused,
    SendResult,
    Unknown,
    Written,
    attempt_once,
    record_in_doubt,
    refused_or_unknown,
    send_and_record,
)

log = logging.getLogger("mirakl_connector.hyperwallet.invoice_payments")

#: How long one run's claim to send a payment keeps the others away: the lookup and the
#: creation (each at most a few HTTP timeouts and retries) fit well inside it. A run that dies
#: holding it delays that payment by this much; the next run looks it up before creating.
SEND_LEASE = timedelta(minutes=15)


class PaymentSending:
    """The send-once part of :class:`.invoice_payments.HyperwalletInvoicePayments` (mixed in)."""

    hyperwallet: Any
    ledger: Ledger
    run_id: str | None
    programs: dict[str, ProgramTokens]
    _aliases: dict[str, tuple[str, ...]]
    _sender: str

    def _payment_or_failure(
        self, row: HyperwalletPayment, *, dry_run: bool, paid_elsewhere: str | None = None
    ) -> ItemOutcome:
        """:meth:`_payment`, a Hyperwallet error it raises (the lookup by ``clientPaymentId``
        failing) turned into a FAILED outcome, so that the invoice goes to the retry queue.

        Raised, it failed the item without queueing it, and the window moved past the invoice:
        no later run read it again, and it was never paid.
        """
        try:
            return self._payment(row, dry_run=dry_run, paid_elsewhere=paid_elsewhere)
        except HyperwalletApiError as exc:
            log.error("Payment %s not sent: %s", row.client_payment_id, exc)
            return payment_outcome(row, FAILED, f"not sent: {exc}", failed=True)

    def _payment(
        self, row: HyperwalletPayment, *, dry_run: bool, paid_elsewhere: str | None = None
    ) -> ItemOutcome:
        """Make sure ``row`` exists at Hyperwallet exactly once.

        One sender per payment: the row is claimed in the ledger (:data:`SEND_LEASE`) before it
        is looked up and created, so copies of this step running at once never both create it.
        """
        if is_live(row):
            reason = f"already sent ({row.payment_token}, {row.hw_status or row.status})"
            return payment_outcome(row, ALREADY_PAID, reason)
        if row.status in (S.ABORTED, S.ON_HOLD):
            if not dry_run:
                self.ledger.save_hyperwallet_payments([row], run_id=self.run_id)
            if row.status == S.ON_HOLD and is_decidable(row.status_reason):
                # Waits for a person (approval gate): expected, not a failure to retry.
                return payment_outcome(row, AWAITING_APPROVAL, row.status_reason)
            status = REFUSED if row.status == S.ABORTED else ON_HOLD
            return payment_outcome(row, status, row.status_reason, failed=True)

        program = self.programs.get(row.program or "")
        if program is None or not program.payment_token:
            raise ConfigurationError(f"program {row.program!r} has no payment program token")
        if dry_run or paid_elsewhere:
            # Nothing will be created: a payment Hyperwallet holds is recorded, that is all.
            found = self._lookup(row)
            if found is not None:
                return self._adopt(row, found, dry_run=dry_run)
            if paid_elsewhere:
                return payment_outcome(row, SKIPPED, paid_elsewhere)
            return payment_outcome(row, WOULD_PAY, f"would pay to {row.destination_token}")

        if self.ledger.get_hyperwallet_payment(row.client_payment_id) is None:
            try:
                self.ledger.save_hyperwallet_payments([row], run_id=self.run_id)
            except LedgerConflictError:
                pass  # saved meanwhile by another copy of this step: the claim decides
        held = self.ledger.claim_hyperwallet_payment_send(
            row.client_payment_id, owner=self._sender, lease=SEND_LEASE, gone=sender_gone
        )
        if held is not None:
            if held.startswith("already sent"):
                return payment_outcome(row, ALREADY_PAID, held)
            return payment_outcome(row, SENDING_ELSEWHERE, held)
        try:
            return self._send(row, program.payment_token)
        finally:
            self.ledger.release_hyperwallet_payment_send(row.client_payment_id, owner=self._sender)

    def _lookup(self, row: HyperwalletPayment) -> Mapping[str, Any] | None:
        """The live payment Hyperwallet holds under the row's ``clientPaymentId`` or under the
        id an earlier connector used for the same document (the other convention)."""
        for cpid in (row.client_payment_id, *self._aliases.get(row.client_payment_id, ())):
            found = live_payment(self.hyperwallet.find_payments(cpid))
            if found is not None:
                return found
        return None

    def _send(self, row: HyperwalletPayment, program_token: str) -> ItemOutcome:
        """Under the claim: look the payment up, then create it (Hyperwallet has no idempotency
        key, so every row is looked up first, in doubt or not)."""
        # A payment Hyperwallet reported failed (RETURNED...) is replaced by a new one.
        replaced = f"replaces failed {row.payment_token}" if row.payment_token else None
        body: dict[str, Any] = {}  # made once nothing is found, before the attempt is marked

        def mark(row: HyperwalletPayment) -> HyperwalletPayment:
            body.update(payment_body(row, program_token))
            row = replace(
                row, status=S.PENDING, status_reason=replaced, payment_token=None, hw_status=None
            )
            row = self.ledger.save_hyperwallet_payments([row], run_id=self.run_id)[0]
            row = self.ledger.mark_hyperwallet_payment_attempt(row, run_id=self.run_id)
            log.info("Trying to create payment for invoice [%s]", row.client_payment_id)
            return row

        def on_error(
            row: HyperwalletPayment, exc: PaymentProviderError
        ) -> tuple[SendResult, HyperwalletPayment]:
            unknown = (
                f"outcome unknown ({exc}); the next attempt looks it up by clientPaymentId "
                "before creating anything"
            )
            return refused_or_unknown(exc, unknown), row

        def created(row: HyperwalletPayment, written: Written) -> ItemOutcome:
            assert written.answer is not None
            if written.found:
                return self._adopt(row, written.answer, dry_run=False)
            log.info("Payment successfully created for invoice [%s]", row.client_payment_id)
            reason = f"payment {written.object_id} created"
            return self._record_created(row, written.answer, PAID, reason, note=replaced)

        def refused(row: HyperwalletPayment, refused: Refused) -> ItemOutcome:
            # Hyperwallet said no: nothing was created; the retry sends it again.
            failed = replace(row, status=S.FAILED, status_reason=refused.message)
            self.ledger.save_hyperwallet_payments([failed], run_id=self.run_id)
            return payment_outcome(failed, FAILED, refused.message, failed=True)

        def unknown(row: HyperwalletPayment, unknown: Unknown) -> ItemOutcome:
            save = partial(self.ledger.save_hyperwallet_payments, run_id=self.run_id)
            return record_in_doubt(row, unknown.reason, item_id=row.client_payment_id, save=save)

        return send_and_record(
            row,
            look_up_first=True,
            find=self._found,
            attempt=partial(
                attempt_once, mark=mark, create=partial(self._create, body=body), on_error=on_error
            ),
            recording=Recording(created=created, refused=refused, unknown=unknown),
        )

    def _found(self, row: HyperwalletPayment) -> Written | None:
        """The live payment of ``row`` at Hyperwallet (see :meth:`_lookup`), or ``None``."""
        found = self._lookup(row)
        if found is None:
            return None
        return Written(str(found.get("token")), found=True, answer=found)

    def _create(self, row: HyperwalletPayment, *, body: Mapping[str, Any]) -> SendResult:
        """Create the payment; an answer without a token leaves it in doubt (looked up next)."""
        created = self.hyperwallet.create_payment(body)
        token = created.get("token") if isinstance(created, Mapping) else None
        if not token:
            return Unknown(
                "Hyperwallet answered without a payment token; looked up on the next attempt"
            )
        return Written(str(token), answer=created)

    def _adopt(
        self, row: HyperwalletPayment, found: Mapping[str, Any], *, dry_run: bool
    ) -> ItemOutcome:
        """Hyperwallet already has a live payment for this id: record it, create nothing."""
        token = found.get("token")
        found_id = str(found.get("clientPaymentId") or row.client_payment_id)
        under = "" if found_id == row.client_payment_id else f" as {found_id}"
        reason = (
            f"already sent to Hyperwallet{under} ({token}, {found.get('status')}): "
            "not created again"
        )
        log.info("Invoice %s already sent to Hyperwallet%s", row.client_payment_id, under)
        if dry_run:
            return payment_outcome(row, ALREADY_PAID, reason)
        note = f"replaces failed {row.payment_token}" if row.payment_token else None
        if under:
            # Recorded under the id it carries, so that its notifications find it; the row
            # under our id stays unsent with why (sent only if that payment ever fails).
            if self.ledger.get_hyperwallet_payment(row.client_payment_id) is not None:
                self.ledger.save_hyperwallet_payments(
                    [replace(row, status_reason=f"paid{under} ({token})")], run_id=self.run_id
                )
            row = replace(row, client_payment_id=found_id, id=None, attempted_at=None, attempts=0)
        return self._record_created(row, found, ALREADY_PAID, reason, note=note)

    def _record_created(
        self,
        row: HyperwalletPayment,
        payment: Mapping[str, Any],
        status: str,
        reason: str,
        *,
        note: str | None = None,
    ) -> ItemOutcome:
        hw_status = str(payment.get("status") or "CREATED").upper()
        recorded = replace(
            row,
            status=ledger_status(hw_status),
            status_reason=note,  # kept in the audit trail: which failed payment it replaces
            hw_status=hw_status,
            payment_token=str(payment.get("token")),
            hw_created_on=payment.get("createdOn") or row.hw_created_on,
        )
        self.ledger.save_hyperwallet_payments([recorded], run_id=self.run_id)
        return payment_outcome(recorded, status, reason)


def sender_id(run_id: str | None) -> str:
    """``<host>/<pid>/<random>/<run>``: unique per job object, and telling where it runs."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}/{run_id or 'run'}"[:190]


def sender_gone(holder: str) -> bool:
    """The holder of a send claim is a process of this host that no longer exists (killed
    mid-send): its claim need not wait out the lease. Anything else (another host, a live
    process, an unreadable id) counts as alive: the lease decides."""
    host, _, rest = holder.partition("/")
    pid_text = rest.partition("/")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False  # another job object of this process: alive (a thread of ours)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # exists, owned by someone else
    return False
