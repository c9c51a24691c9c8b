"""Payment validation and capture: confirm debits in Mirakl, then capture what sellers accepted.

Product orders only (Mirakl has no service-order validation). Two steps, each one Airflow task:

``validate``
    Mirakl lists the logistic orders waiting for their debit (PA11). Those whose commercial order
    has a Stripe payment in ``to_capture`` or ``captured`` are confirmed as paid in **one** PA01
    call (the client splits it into chunks of 100), and the mapping records when
    (``mirakl_validated_at``). A failed or cancelled payment is never confirmed.
``capture``
    For every ``to_capture`` mapping, read its logistic orders (OR11 by commercial id). Once each
    is accepted or refused, capture the authorisation less what refused and cancelled lines take
    away, or release it when nothing is left (see :mod:`.capture_decisions`). The mapping ends
    ``captured`` / ``canceled`` with ``captured_amount``; a capture Stripe refuses for good ends
    in a terminal status with its reason instead of being retried forever (a known flaw of the
    Stripe connector for Mirakl).

Every Stripe write carries an idempotency key from the payment id and the amount, committed on
the mapping *before* the call: a retry, a cleared task or a crash after Stripe answered replays
the same key (within 23 h) or reads the payment's state, and never captures twice. A dry run
decides and reports, and writes nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from mirakl_connector.core.batch import BatchSummary, ItemOutcome, chunked, run_batch
from mirakl_connector.core.errors import InvalidItemError, MiraklClientError, PaymentProviderError
from mirakl_connector.core.money import to_minor
from mirakl_connector.core.registry import Resources
from mirakl_connector.core.settings import checked_values
from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.records import PaymentMapping, PaymentMappingStatus
from mirakl_connector.mirakl.client import MiraklClient
from mirakl_connector.mirakl.orders import MiraklOrder, parse_product_order
from mirakl_connector.stripe.capture_decisions import (
    CaptureAction,
    CaptureDecision,
    PendingDebit,
    authorisation_open,
    decide_capture,
    pa01_entries,
    parse_pending_debit,
    settle_refused,
    validation_refusal,
)
from mirakl_connector.stripe.gateway import KEY_SPENT, REPLAY_WINDOW, StripeGateway, idempotency_key
from mirakl_connector.stripe.specs import PAYMENT_VALIDATION

log = logging.getLogger(__name__)

WORKFLOW = PAYMENT_VALIDATION.name
CHUNK_SIZE = 100


@dataclass(frozen=True)
class PaymentValidationSettings:
    """The ``payment_validation`` section of the connector configuration.

    ``capture_enabled=False`` is for operators who capture at checkout (issues #103/#105): the
    debits are still confirmed in Mirakl, but nothing is captured or released.
    """

    validation_enabled: bool = True
    capture_enabled: bool = True

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> PaymentValidationSettings:
        values = checked_values(cls, values, "payment_validation")
        return cls(**values)


class PaymentValidation:
    """The payment validation job; see the module docstring for what each step does."""

    def __init__(
        self,
        *,
        mirakl: MiraklClient,
        stripe: StripeGateway,
        ledger: Ledger,
        settings: PaymentValidationSettings | None = None,
        run_id: str | None = None,
    ) -> None:
        self.mirakl = mirakl
        self.stripe = stripe
        self.ledger = ledger
        self.settings = settings or PaymentValidationSettings()
        self.run_id = run_id

    # -- validate -------------------------------------------------------------------------------

    def validate(
        self, *, commercial_ids: Sequence[str] | None = None, dry_run: bool = False
    ) -> BatchSummary:
        """Confirm in Mirakl (PA01) the pending debits whose Stripe payment is authorised."""
        summary = BatchSummary(WORKFLOW, "validate", dry_run=dry_run)
        if not self.settings.validation_enabled:
            summary.notes.append("debit validation is disabled")
            return summary
        wanted = set(commercial_ids or ())
        debits: dict[str, list[PendingDebit]] = defaultdict(list)
        for raw in self.mirakl.iter_pending_debits():
            try:
                debit = parse_pending_debit(raw)
            except InvalidItemError as exc:
                item = exc.item_id or "<pending debit>"
                summary.add(ItemOutcome(item, "FAILED", f"invalid data: {exc.reason}", failed=True))
                continue
            if not wanted or debit.commercial_id in wanted:
                debits[debit.commercial_id].append(debit)
        if not debits:
            summary.notes.append("no pending debit in Mirakl")
            return summary

        mappings = self.ledger.payment_mappings_by_commercial_id(debits)
        ready: dict[str, PaymentMapping] = {}
        for commercial_id, items in sorted(debits.items()):
            refusal = validation_refusal(mappings.get(commercial_id))
            if refusal:
                summary.add(_debit_outcome(commercial_id, items, "NOT_VALIDATED", refusal))
            else:
                ready[commercial_id] = mappings[commercial_id]
        if not ready:
            summary.notes.append("no Mirakl order to validate")
            return summary
        if dry_run:
            for commercial_id in ready:
                summary.add(_debit_outcome(commercial_id, debits[commercial_id], "VALIDATED", None))
            return summary

        confirmed = self._send_pa01(ready, debits, summary)
        now = datetime.now(UTC)
        for commercial_id in confirmed:
            mapping = replace(ready[commercial_id], mirakl_validated_at=now)
            self.ledger.upsert_payment_mapping(mapping, run_id=self.run_id)
            summary.add(_debit_outcome(commercial_id, debits[commercial_id], "VALIDATED", None))
        log.info("%s", summary.describe())
        return summary

    def _send_pa01(
        self,
        ready: Mapping[str, PaymentMapping],
        debits: Mapping[str, list[PendingDebit]],
        summary: BatchSummary,
    ) -> list[str]:
        """One PA01 call for every ready order; the commercial ids Mirakl accepted.

        PA01 is all-or-nothing: one order Mirakl refuses (it left WAITING_DEBIT_PAYMENT since
        PA11) fails the whole call with a 400. Then each commercial order is sent on its own, so
        one bad order is reported with Mirakl's message and cannot block the others every
        five minutes. Transport and server errors (after the retry budget) fail the step.
        """
        entries = [e for cid, m in ready.items() for e in pa01_entries(debits[cid], m)]
        try:
            self.mirakl.validate_debits(entries)
            return list(ready)
        except MiraklClientError as exc:
            if len(ready) == 1:
                [commercial_id] = ready
                summary.add(
                    _debit_outcome(commercial_id, debits[commercial_id], "FAILED", str(exc))
                )
                return []
            log.warning("PA01 refused the batch (%s); sending each commercial order alone", exc)
        confirmed = []
        for commercial_id, mapping in ready.items():
            try:
                self.mirakl.validate_debits(pa01_entries(debits[commercial_id], mapping))
            except MiraklClientError as exc:
                summary.add(
                    _debit_outcome(commercial_id, debits[commercial_id], "FAILED", str(exc))
                )
                continue
            confirmed.append(commercial_id)
        return confirmed

    # -- capture ----------------------------------------------------------------------------------

    def capture(
        self, *, commercial_ids: Sequence[str] | None = None, dry_run: bool = False
    ) -> BatchSummary:
        """Capture (or release) every ``to_capture`` payment whose orders are all decided."""
        summary = BatchSummary(WORKFLOW, "capture", dry_run=dry_run)
        if not self.settings.capture_enabled:
            summary.notes.append("capture is disabled")
            return summary
        wanted = set(commercial_ids or ())
        for mappings in self.ledger.iter_payment_mappings(
            statuses=[PaymentMappingStatus.TO_CAPTURE], batch_size=CHUNK_SIZE
        ):
            batch = []
            for mapping in mappings:
                if not mapping.mirakl_commercial_order_id:
                    continue  # not linked to an order (yet): nothing decides its capture
                if wanted and mapping.mirakl_commercial_order_id not in wanted:
                    continue
                batch.append(mapping)
            if batch:
                self._capture_batch(batch, summary, dry_run=dry_run)
        log.info("%s", summary.describe())
        return summary

    def _capture_batch(
        self, mappings: list[PaymentMapping], summary: BatchSummary, *, dry_run: bool
    ) -> None:
        ids = sorted(
            {m.mirakl_commercial_order_id for m in mappings if m.mirakl_commercial_order_id}
        )
        orders: dict[str, list[MiraklOrder]] = defaultdict(list)
        invalid: dict[str, str] = {}
        for chunk in chunked(ids, CHUNK_SIZE):
            for raw in self.mirakl.iter_orders(commercial_ids=chunk):
                commercial_id = (
                    str(raw.get("commercial_id") or "") if isinstance(raw, Mapping) else ""
                )
                try:
                    orders[commercial_id].append(parse_product_order(raw))
                except InvalidItemError as exc:
                    invalid[commercial_id] = f"{exc}"

        def handle(mapping: PaymentMapping) -> ItemOutcome:
            commercial_id = mapping.mirakl_commercial_order_id or ""
            if commercial_id in invalid:
                # Bad data in one logistic order: wait (nothing is captured on a guess).
                return _outcome(mapping, "WAITING", f"invalid data: {invalid[commercial_id]}", True)
            decision = decide_capture(mapping, orders.get(commercial_id, []))
            if dry_run or decision.action is CaptureAction.WAIT:
                status = "WAITING" if decision.action is CaptureAction.WAIT else decision.action
                return _outcome(mapping, str(status), decision.reason, amount=decision.amount,
                                currency=decision.currency)  # fmt: skip
            if decision.action is CaptureAction.FAIL:
                return self._record(mapping, PaymentMappingStatus.FAILED, decision.reason, None)
            return self._settle(mapping, decision)

        run_batch(mappings, handle, item_id=_order_id, summary=summary)

    def _settle(self, mapping: PaymentMapping, decision: CaptureDecision) -> ItemOutcome:
        """Capture or cancel one payment in Stripe, exactly once, and record the result."""
        payment_id = mapping.stripe_charge_id
        key = _key(decision, payment_id)
        if mapping.attempted_at is not None and mapping.idempotency_key:
            if datetime.now(UTC) - mapping.attempted_at < REPLAY_WINDOW:
                key = mapping.idempotency_key  # replay: Stripe answers with the first result
            else:
                # The key may have expired at Stripe: the payment's own state says what the
                # lost attempt did; only a still-open authorisation is sent again.
                settled = self._record_stripe_state(
                    mapping, decision.action, "by an attempt whose answer was lost", open_ok=True
                )
                if settled is not None:
                    return settled
        for fresh in (True, False):
            mapping = self.ledger.mark_payment_mapping_attempt(mapping, key)
            try:
                if decision.action is CaptureAction.CAPTURE:
                    assert decision.amount is not None and decision.currency is not None
                    self.stripe.capture_payment(
                        payment_id,
                        amount=decision.amount,
                        currency=decision.currency,
                        idempotency_key=key,
                    )
                else:
                    self.stripe.cancel_payment(payment_id, idempotency_key=key)
                break
            except PaymentProviderError as exc:
                if exc.permanent:
                    settled = self._record_stripe_state(mapping, decision.action, exc.message)
                    assert settled is not None
                    return settled
                if exc.code == KEY_SPENT:
                    # Stripe saved a server error for the key and replays it for a day: the
                    # payment's own state says what the attempt did. One still open is sent
                    # once more with a new key: Stripe captures or cancels an authorisation
                    # only once, so this cannot move money twice.
                    settled = self._record_stripe_state(
                        mapping, decision.action, exc.message, open_ok=True
                    )
                    if settled is not None:
                        return settled
                    if fresh:
                        key = idempotency_key(key.split(":", 1)[1], f"retry{mapping.attempts}")
                        continue
                reason = f"Outcome unknown ({exc.message}); the next run checks with the same key"
                self.ledger.upsert_payment_mapping(
                    replace(mapping, status_reason=reason), run_id=self.run_id
                )
                return _outcome(mapping, "IN_DOUBT", reason, True)
        if decision.action is CaptureAction.CAPTURE:
            return self._record(
                mapping, PaymentMappingStatus.CAPTURED, None, decision.amount, decision.currency
            )
        return self._record(mapping, PaymentMappingStatus.CANCELED, decision.reason, 0)

    def _record_stripe_state(
        self, mapping: PaymentMapping, action: CaptureAction, error: str, *, open_ok: bool = False
    ) -> ItemOutcome | None:
        """Record the terminal status Stripe's own state implies for the payment.

        With ``open_ok``, an authorisation that is still open is left alone (returns None): the
        caller goes on and captures it.
        """
        try:
            payment = self.stripe.retrieve_payment(mapping.stripe_charge_id)
        except PaymentProviderError as exc:
            if not exc.permanent:
                raise
            return self._record(mapping, PaymentMappingStatus.FAILED, exc.message, None)
        if open_ok and authorisation_open(payment):
            return None
        settled = settle_refused(payment, action=action, error=error)
        return self._record(
            mapping,
            settled.status,
            settled.reason,
            settled.captured_amount,
            (payment.currency or "").upper() or None,
        )

    def _record(
        self,
        mapping: PaymentMapping,
        status: PaymentMappingStatus,
        reason: str | None,
        captured_amount: int | None,
        currency: str | None = None,
    ) -> ItemOutcome:
        mapping = replace(
            mapping,
            status=status,
            status_reason=reason,
            captured_amount=captured_amount,
            attempted_at=None,  # settled: nothing is in doubt any more
        )
        self.ledger.upsert_payment_mapping(mapping, run_id=self.run_id)
        return _outcome(
            mapping,
            str(status),
            reason,
            status is PaymentMappingStatus.FAILED,
            amount=captured_amount if status is PaymentMappingStatus.CAPTURED else None,
            currency=currency,
        )


def build(resources: Resources, config: Mapping[str, Any], run_id: str | None) -> PaymentValidation:
    """Registry entry: the job wired to the run's clients and ``config["payment_validation"]``."""
    return PaymentValidation(
        mirakl=resources.get("mirakl"),
        stripe=resources.get("stripe"),
        ledger=resources.get("ledger"),
        settings=PaymentValidationSettings.from_mapping(config.get("payment_validation")),
        run_id=run_id,
    )


def _key(decision: CaptureDecision, payment_id: str) -> str:
    """``capture:<payment>:<amount>`` or ``cancel:<payment>``.

    The amount is part of the key: if the orders changed between two attempts (a line refused
    meanwhile), the new amount gets a new key instead of Stripe's "keys reused with different
    parameters" error, and Stripe itself refuses a second capture of the same authorisation.
    """
    if decision.action is CaptureAction.CAPTURE:
        return idempotency_key("capture", payment_id, decision.amount)
    return idempotency_key("cancel", payment_id)


def _debit_outcome(
    commercial_id: str, debits: Sequence[PendingDebit], status: str, reason: str | None
) -> ItemOutcome:
    currency = debits[0].currency if debits else None
    amount = None
    if currency and all(d.currency == currency for d in debits):
        amount = sum(to_minor(d.amount, currency) for d in debits)
    return ItemOutcome(
        item_id=commercial_id,
        status=status,
        reason=reason,
        amount=amount,
        currency=currency,
        failed=status == "FAILED",
    )


def _outcome(
    mapping: PaymentMapping,
    status: str,
    reason: str | None,
    failed: bool = False,
    *,
    amount: int | None = None,
    currency: str | None = None,
) -> ItemOutcome:
    return ItemOutcome(
        item_id=mapping.mirakl_commercial_order_id or mapping.stripe_charge_id,
        status=status,
        reason=reason,
        amount=amount,
        currency=currency,
        failed=failed,
    )


def _order_id(mapping: PaymentMapping) -> str:
    """How the runner names a payment: its commercial order id (``"None"`` without one, as the
    runner's own ``str()`` of it always did)."""
    return str(mapping.mirakl_commercial_order_id)
