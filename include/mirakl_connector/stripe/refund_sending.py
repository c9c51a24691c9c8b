"""Payment refund, ``refund`` per row: refund it in Stripe once, then validate it in Mirakl.

The Stripe side is :func:`.exactly_once.write_once` (in doubt: replay or look up; refused:
FAILED; unclear: in doubt); the ``re_`` id is stored **before** Mirakl hears of it, so a failed
validation (PA02 products, SPA02 services) is retried alone and never refunds twice.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

from mirakl_connector.core.batch import ItemOutcome
from mirakl_connector.core.errors import MiraklApiError
from mirakl_connector.core.money import from_minor
from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.records import (
    RefundRecord,
    RefundStatus,
    RefundType,
)
from mirakl_connector.mirakl.client import MiraklClient
from mirakl_connector.mirakl.spa02 import REFUSED as SPA02_REFUSED
from mirakl_connector.mirakl.spa02 import VALIDATED as SPA02_VALIDATED
from mirakl_connector.mirakl.spa02 import spa02_results
from mirakl_connector.operations.send_once import (
    Recording,
    Refused,
    Unknown,
    Written,
    record_in_doubt,
)
from mirakl_connector.stripe.exactly_once import lacking, write_and_record
from mirakl_connector.stripe.gateway import (
    CreatedObject,
    StripeGateway,
)
from mirakl_connector.stripe.idempotency import attempt_key
from mirakl_connector.stripe.lookups import find_refund
from mirakl_connector.stripe.refund_rows import (
    refund_outcome,
)
from mirakl_connector.stripe.sendable import present


class RefundSending:
    """The ``refund`` step's per-row work, mixed into :class:`.refunds.PaymentRefund`."""

    mirakl: MiraklClient
    stripe: StripeGateway
    ledger: Ledger
    run_id: str | None

    def _refund_in_stripe(self, row: RefundRecord) -> tuple[ItemOutcome, RefundRecord]:
        """Create (or recover) the Stripe refund of one row; store its id at once."""
        if row.stripe_refund_id:
            return refund_outcome(row), row
        return write_and_record(
            row,
            recorded=None,  # a row with its refund id was answered above, and not saved again
            lacks=lacking("PENDING refund lacks payment or amount", row.transaction_id, row.amount),
            new_key=attempt_key(row.attempts, "refund", row.mirakl_refund_id),
            find=self._find_refund,
            mark=partial(self.ledger.mark_refund_attempt, run_id=self.run_id),
            create=self._create_refund,
            recording=Recording(
                created=self._refund_created,
                refused=self._refund_refused,
                unknown=self._refund_unknown,
            ),
        )

    def _refund_created(
        self, row: RefundRecord, written: Written
    ) -> tuple[ItemOutcome, RefundRecord]:
        # Stored before Mirakl hears of it: whatever happens next, it is never re-made.
        row = self._save_refund(
            replace(row, stripe_refund_id=written.object_id), RefundStatus.PENDING, None
        )
        return refund_outcome(row), row

    def _refund_refused(
        self, row: RefundRecord, refused: Refused
    ) -> tuple[ItemOutcome, RefundRecord]:
        row = self._save_refund(row, RefundStatus.FAILED, refused.message)
        return refund_outcome(row), row

    def _refund_unknown(
        self, row: RefundRecord, unknown: Unknown
    ) -> tuple[ItemOutcome, RefundRecord]:
        save = partial(self.ledger.save_refunds, run_id=self.run_id)
        return record_in_doubt(row, unknown.reason, item_id=row.mirakl_refund_id, save=save), row

    def _create_refund(self, row: RefundRecord, key: str) -> CreatedObject:
        item = row.mirakl_refund_id
        return self.stripe.create_refund(
            payment_id=present(row.transaction_id, "payment", item),
            amount=present(row.amount, "amount", item),
            currency=present(row.currency, "currency", item),
            idempotency_key=key,
            metadata={"miraklRefundId": row.mirakl_refund_id},
        )

    def _find_refund(self, row: RefundRecord) -> str | None:
        return find_refund(self.stripe, row)

    def _validate_in_mirakl(self, rows: list[RefundRecord]) -> list[ItemOutcome]:
        """PA02 / SPA02 for refunded rows; CREATED on success, FAILED with Mirakl's reason."""
        outcomes: list[ItemOutcome] = []
        product = [r for r in rows if r.type is RefundType.PRODUCT_ORDER]
        service = [r for r in rows if r.type is RefundType.SERVICE_ORDER]
        if product:
            outcomes += self._validate_products(product)
        if service:
            outcomes += self._validate_services(service)
        return outcomes

    def _validate_products(self, rows: list[RefundRecord]) -> list[ItemOutcome]:
        """One PA02 call; if Mirakl refuses the batch (all-or-nothing 400), one call per refund
        so a single refund it rejects cannot hold the others back."""
        try:
            self.mirakl.validate_refunds([_pa02_entry(r) for r in rows])
            return self._all_validated(rows)
        except MiraklApiError as exc:
            if len(rows) == 1 or exc.http_status is None or exc.http_status >= 500:
                return [self._mirakl_refused(r, exc) for r in rows]
        outcomes = []
        for row in rows:
            try:
                self.mirakl.validate_refunds([_pa02_entry(row)])
            except MiraklApiError as exc:
                outcomes.append(self._mirakl_refused(row, exc))
                continue
            outcomes.append(self._validated(row))
        return outcomes

    def _validate_services(self, rows: list[RefundRecord]) -> list[ItemOutcome]:
        """SPA02, read as Mirakl publishes it (:mod:`mirakl_connector.mirakl.spa02`): only a
        refund Mirakl confirms is validated; one it refuses is FAILED with its message; one its
        answer does not name stays PENDING (validated again next run) and is reported."""
        try:
            answer = self.mirakl.validate_service_refunds([_spa02_entry(r) for r in rows])
        except MiraklApiError as exc:
            return [self._mirakl_refused(r, exc) for r in rows]
        results = spa02_results([r.mirakl_refund_id for r in rows], answer)
        outcomes = []
        for row in rows:
            result = results[row.mirakl_refund_id]
            if result.outcome == SPA02_VALIDATED:
                outcomes.append(self._validated(row))
            elif result.outcome == SPA02_REFUSED and "already validated" in result.message:
                # A validation whose answer was lost reached Mirakl (as PA02's 400 below).
                outcomes.append(
                    self._validated(row, f"Mirakl already had it validated: {result.message}")
                )
            elif result.outcome == SPA02_REFUSED:
                outcomes.append(
                    self._failed_validation(row, f"Mirakl SPA02 refused: {result.message}")
                )
            else:
                saved = self._save_refund(
                    row,
                    RefundStatus.PENDING,
                    f"Refunded in Stripe ({row.stripe_refund_id}); "
                    f"Mirakl validation unknown: {result.message}; validated again next run",
                )
                outcomes.append(
                    replace(refund_outcome(saved), status="MIRAKL_UNCONFIRMED", failed=True)
                )
        return outcomes

    def _mirakl_refused(self, row: RefundRecord, exc: MiraklApiError) -> ItemOutcome:
        # "<id> already validated": a previous validation whose answer was lost (timeout) did
        # reach Mirakl. Our refund exists and Mirakl has it: the refund is done.
        if exc.http_status == 400 and "already validated" in exc.message:
            return self._validated(row, f"Mirakl already had it validated: {exc.message}")
        return self._failed_validation(row, str(exc))

    def _validated(self, row: RefundRecord, reason: str | None = None) -> ItemOutcome:
        row = replace(row, mirakl_validated_at=datetime.now(UTC))
        return refund_outcome(self._save_refund(row, RefundStatus.CREATED, reason))

    def _all_validated(self, rows: list[RefundRecord]) -> list[ItemOutcome]:
        """CREATED for every row of a batch Mirakl validated, in one ledger transaction: PA02
        validated them all at once, and one commit instead of one per row keeps the shard
        sending refunds at its pace."""
        now = datetime.now(UTC)
        validated = [
            replace(r, mirakl_validated_at=now, status=RefundStatus.CREATED, status_reason=None)
            for r in rows
        ]
        return [refund_outcome(r) for r in self.ledger.save_refunds(validated, run_id=self.run_id)]

    def _failed_validation(self, row: RefundRecord, reason: str) -> ItemOutcome:
        reason = f"Refunded in Stripe ({row.stripe_refund_id}); Mirakl validation failed: {reason}"
        return refund_outcome(self._save_refund(row, RefundStatus.FAILED, reason))

    def _save_refund(
        self, row: RefundRecord, status: RefundStatus, reason: str | None
    ) -> RefundRecord:
        row = replace(row, status=status, status_reason=reason)
        [saved] = self.ledger.save_refunds([row], run_id=self.run_id)
        return saved


def _mirakl_amount(row: RefundRecord) -> Any:
    """Mirakl's own refund amount: what Stripe refunded plus the residue its rounding left
    (README "Currencies"), as PA01 confirms PA11's own amount. The residue stays on the row."""
    assert row.amount is not None and row.currency
    return from_minor(row.amount + (row.amount_residue or 0), row.currency)


def _pa02_entry(row: RefundRecord) -> dict[str, Any]:
    assert row.amount is not None and row.currency
    return {
        "refund_id": row.mirakl_refund_id,
        "amount": _mirakl_amount(row),
        "currency_iso_code": row.currency,
        "payment_status": "OK",
        "transaction_number": row.stripe_refund_id,
    }


def _spa02_entry(row: RefundRecord) -> dict[str, Any]:
    assert row.amount is not None and row.currency
    return {
        "id": row.mirakl_refund_id,
        "order_id": row.mirakl_order_id,
        "amount": _mirakl_amount(row),
        "currency_code": row.currency,
        "state": "OK",
        "transaction_number": row.stripe_refund_id,
    }
