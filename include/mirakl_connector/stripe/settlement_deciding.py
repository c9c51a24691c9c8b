"""Seller settlement, ``plan`` per chunk: what each invoice row becomes, recorded and claimed.

The rules are :mod:`.settlement_decisions`; this module reads what they need for a chunk of
invoices at once (account mappings, the approval gates, which provider pays the shop), turns
an error while deciding into a FAILED row (never a lost one) and claims the invoices for Stripe.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from mirakl_connector.core.batch import (
    BatchSummary,
    ItemOutcome,
    decision_failure_reason,
    run_batch,
)
from mirakl_connector.core.errors import ConfigurationError, InvalidItemError
from mirakl_connector.ledger.claims import ClaimKind
from mirakl_connector.ledger.manual_rules import is_held_record
from mirakl_connector.ledger.records import (
    INVOICE_TRANSFER_TYPES,
    RETRIABLE_PAYOUT,
    RETRIABLE_TRANSFER,
    PayoutRecord,
    PayoutStatus,
    TransferRecord,
    TransferStatus,
)
from mirakl_connector.operations.approval_gate import ApprovalGate, ApprovalSettings
from mirakl_connector.operations.approvals import gate_for
from mirakl_connector.operations.payout_provider import STRIPE, ShopProviders
from mirakl_connector.operations.provider_guard import (
    claim_pending,
)
from mirakl_connector.stripe.gateway import StripeGateway
from mirakl_connector.stripe.settlement_decisions import (
    decide_invoice_transfer,
    decide_payout,
    payout_failed_at_bank,
)
from mirakl_connector.stripe.settlement_rows import (
    Candidate,
    Row,
    RowSaving,
    abort_row,
    invoice_id_of,
    item_id_of,
    row_key,
    row_outcome,
)
from mirakl_connector.stripe.specs import SELLER_SETTLEMENT

#: rows read from the ledger in one call
CHUNK_SIZE = 100


class SettlementDeciding(RowSaving):
    """The deciding part of :class:`.settlement.SellerSettlement` (mixed in)."""

    stripe: StripeGateway
    settings: Any  # SettlementSettings
    approval: ApprovalSettings
    providers: ShopProviders

    def _retriable_rows(self) -> Iterator[Row]:
        if self.settings.invoice_transfers:
            for rows in self.ledger.iter_transfers(
                types=INVOICE_TRANSFER_TYPES, statuses=RETRIABLE_TRANSFER, batch_size=CHUNK_SIZE
            ):
                yield from rows
        if self.settings.payouts:
            for payouts in self.ledger.iter_payouts(
                statuses=RETRIABLE_PAYOUT, batch_size=CHUNK_SIZE
            ):
                yield from payouts

    def _existing_rows(self, invoice_ids: list[str]) -> dict[tuple[str, ...], Row]:
        found: dict[tuple[str, ...], Row] = {}
        if self.settings.invoice_transfers:
            for transfer_type in INVOICE_TRANSFER_TYPES:
                for row in self.ledger.get_transfers(transfer_type, invoice_ids).values():
                    found[row_key(row)] = row
        if self.settings.payouts:
            for payout in self.ledger.get_payouts(invoice_ids).values():
                found[row_key(payout)] = payout
        return found

    def _rows_of(self, invoice_id: str, existing: Mapping[tuple[str, ...], Row]) -> list[Row]:
        """The invoice's rows as saved, or new ones (three transfers, one payout)."""
        rows: list[Row] = []
        if self.settings.invoice_transfers:
            for transfer_type in INVOICE_TRANSFER_TYPES:
                new = TransferRecord(type=transfer_type, mirakl_id=invoice_id)
                rows.append(existing.get(row_key(new)) or new)
        if self.settings.payouts:
            new_payout = PayoutRecord(mirakl_invoice_id=invoice_id)
            rows.append(existing.get(row_key(new_payout)) or new_payout)
        return rows

    def _decide_and_record(
        self, candidates: list[Candidate], summary: BatchSummary, *, dry_run: bool
    ) -> None:
        for candidate in candidates:
            for held in [r for r in candidate.rows if is_held_record(r)]:
                summary.add(row_outcome(held))  # a person holds it: not decided until released
            candidate.rows = [r for r in candidate.rows if not is_held_record(r)]
        candidates = [c for c in candidates if c.rows]
        if not candidates:
            return
        shop_ids = {c.invoice.shop_id for c in candidates if c.invoice and c.invoice.shop_id}
        mappings = self.ledger.account_mappings_by_shop(shop_ids)
        self.providers.prefetch(shop_ids)
        gates = self._approval_gates(candidates, mappings)
        decided: list[Row] = []

        def handle(candidate: Candidate) -> list[ItemOutcome]:
            rows = [
                self._decide_or_fail(row, candidate, mappings, gates, dry_run=dry_run)
                for row in candidate.rows
            ]
            decided.extend(rows)
            return []  # counted below, once the claims are settled

        run_batch(candidates, handle, item_id=lambda c: c.invoice_id, summary=summary)
        # One provider per invoice, whatever the rule said: claim the invoices about to be paid.
        decided = claim_pending(
            self.ledger,
            STRIPE,
            ClaimKind.INVOICE,
            decided,
            is_pending=lambda r: r.status in (TransferStatus.PENDING, PayoutStatus.PENDING),
            document_of=invoice_id_of,
            shop_of=lambda r: r.mirakl_shop_id,
            refuse=abort_row,
            workflow=SELLER_SETTLEMENT.name,
            run_id=self.run_id,
            dry_run=dry_run,
        )
        for row in decided:
            summary.add(row_outcome(row))
        if not dry_run:
            self._save(decided)

    def _approval_gates(
        self, candidates: list[Candidate], mappings: Mapping[int, Any]
    ) -> dict[str, ApprovalGate | None]:
        """The chunk's approval gates, for transfers and for payouts (``None`` when off): the
        decisions taken on its rows, and which of its accounts were already paid out to."""
        transfers = [
            f"{r.type}:{r.mirakl_id}"
            for c in candidates
            for r in c.rows
            if isinstance(r, TransferRecord) and r.id is not None
        ]
        payouts = [
            r.mirakl_invoice_id
            for c in candidates
            for r in c.rows
            if isinstance(r, PayoutRecord) and r.id is not None
        ]
        accounts = [m.stripe_account_id for m in mappings.values()]
        engine = self.ledger.engine
        return {
            "transfer": gate_for(engine, self.approval, "transfer", transfers),
            "payout": gate_for(engine, self.approval, "payout", payouts, destinations=accounts),
        }

    def _decide_or_fail(
        self,
        row: Row,
        candidate: Candidate,
        mappings: Mapping[int, Any],
        gates: Mapping[str, ApprovalGate | None],
        *,
        dry_run: bool,
    ) -> Row:
        """:meth:`_decide`, or the row FAILED with the reason when deciding raised.

        Deciding may call Stripe (the platform's account id); if that call fails, the row must
        still be saved: FAILED, it is in the backlog and decided again by the next run. Left
        unsaved, a new invoice was lost for good, since the checkpoint moves past it.
        """
        try:
            decided = self._decide(row, candidate, mappings, gates, dry_run=dry_run)
            problem = self.ledger.unrecordable_reason(decided)
            if problem is not None:
                raise InvalidItemError(problem)
            return decided
        except ConfigurationError:
            raise
        except Exception as exc:  # noqa: BLE001 - recorded on the row: nothing is lost
            reason = decision_failure_reason(exc, item=item_id_of(row))
            invoice = candidate.invoice
            if invoice is not None:  # the backlog re-reads IV01 from this date
                row = replace(
                    row, mirakl_shop_id=invoice.shop_id, mirakl_created_date=invoice.created_date
                )
            if isinstance(row, TransferRecord):
                return replace(row, status=TransferStatus.FAILED, status_reason=reason)
            return replace(row, status=PayoutStatus.FAILED, status_reason=reason)

    def _decide(
        self,
        row: Row,
        candidate: Candidate,
        mappings: Mapping[int, Any],
        gates: Mapping[str, ApprovalGate | None],
        *,
        dry_run: bool,
    ) -> Row:
        invoice = candidate.invoice
        if invoice is None:
            if isinstance(row, TransferRecord):
                return replace(row, status=TransferStatus.FAILED, status_reason=candidate.error)
            return replace(row, status=PayoutStatus.FAILED, status_reason=candidate.error)
        if isinstance(row, PayoutRecord) and payout_failed_at_bank(row):
            # payout.failed: forget the failed payout (its id goes to the audit trail) so it is
            # decided afresh and re-created with a new key (…:retry<n>) by the payout step.
            row = (
                replace(row, payout_id=None, idempotency_key=None, attempted_at=None)
                if dry_run
                else self.ledger.reopen_failed_payout(row, run_id=self.run_id)
            )
        mapping = mappings.get(invoice.shop_id) if invoice.shop_id else None
        done = row.transfer_id if isinstance(row, TransferRecord) else row.payout_id
        refusal = (
            None
            if done or not invoice.shop_id
            else self.providers.refusal(invoice.shop_id, invoice.created_at, STRIPE)
        )
        if refusal is not None:
            # Another provider pays this shop's invoices: nothing moves on Stripe for it.
            row = replace(
                row, mirakl_shop_id=invoice.shop_id, mirakl_created_date=invoice.created_date
            )
            return abort_row(row, refusal)
        if isinstance(row, TransferRecord):
            return decide_invoice_transfer(
                row,
                invoice,
                shop_mapping=mapping,
                platform_account=self.stripe.platform_account_id,
                approval=gates.get("transfer"),
            )
        return decide_payout(row, invoice, shop_mapping=mapping, approval=gates.get("payout"))
