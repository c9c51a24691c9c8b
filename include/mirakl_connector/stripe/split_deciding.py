"""Payment split, deciding: what each order row becomes (PENDING, ON_HOLD, ABORTED, FAILED).

The rules are :func:`.transfer_decisions.decide_order_transfer`; this module gathers what they
read for a chunk of rows at once (account and payment mappings, the charges, the approval
gate, which provider pays the shop) and turns any error into a FAILED row, never a lost one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from mirakl_connector.core.batch import (
    BatchSummary,
    ItemOutcome,
    decision_failure_reason,
    run_batch,
)
from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.manual_rules import is_held_record
from mirakl_connector.ledger.records import (
    TAX_SUFFIX,
    AccountMapping,
    TransferRecord,
    TransferStatus,
)
from mirakl_connector.mirakl.orders import MiraklOrder
from mirakl_connector.operations.approval_gate import ApprovalGate, ApprovalSettings
from mirakl_connector.operations.approvals import gate_for
from mirakl_connector.operations.payout_provider import STRIPE, ShopProviders
from mirakl_connector.stripe.charge_prefetch import ChargePrefetch
from mirakl_connector.stripe.gateway import PaymentState, StripeGateway
from mirakl_connector.stripe.split_sending import transfer_outcome
from mirakl_connector.stripe.transfer_decisions import decide_order_transfer, needs_payment_check


@dataclass
class Candidate:
    """One ledger row to decide, with the order it belongs to (None when Mirakl lost it)."""

    row: TransferRecord
    order: MiraklOrder | None
    error: str | None = None


class TransferDeciding:
    """The deciding part of :class:`.payment_split.PaymentSplit` (mixed in)."""

    stripe: StripeGateway
    ledger: Ledger
    settings: Any  # PaymentSplitSettings
    approval: ApprovalSettings
    providers: ShopProviders
    _charges: ChargePrefetch

    def _decide(
        self, candidates: list[Candidate], summary: BatchSummary, *, dry_run: bool
    ) -> list[TransferRecord]:
        """Decide each candidate (see :mod:`.transfer_decisions`); the rows a person holds are
        reported as they are. Returns the decided rows, neither claimed nor saved yet."""
        for held in [c for c in candidates if is_held_record(c.row)]:
            summary.add(transfer_outcome(held.row))  # a person holds it: not decided until released
        candidates = [c for c in candidates if not is_held_record(c.row)]
        if not candidates:
            return []
        shop_ids = {c.order.shop_id for c in candidates if c.order and c.order.shop_id}
        mappings = self.ledger.account_mappings_by_shop(shop_ids)
        commercial_ids = {c.order.commercial_id for c in candidates if c.order}
        payment_mappings = self.ledger.payment_mappings_by_commercial_id(commercial_ids)
        payments = self._prefetch_charges(candidates, payment_mappings, mappings)

        def lookup_for(seller: str | None) -> Callable[[str], PaymentState]:
            """Payments as the order's seller sees them: a ``py_`` lives on its account."""

            def lookup(payment_id: str) -> PaymentState:
                if payment_id not in payments:
                    payments[payment_id] = self.stripe.retrieve_payment(
                        payment_id, seller_account=seller
                    )
                return payments[payment_id]

            return lookup

        self.providers.prefetch(shop_ids)
        gate = self._approval_gate(candidates)
        decided: list[TransferRecord] = []

        def handle(candidate: Candidate) -> ItemOutcome | list[ItemOutcome]:
            row = candidate.row
            if candidate.order is None:
                row = replace(row, status=TransferStatus.FAILED, status_reason=candidate.error)
            else:
                order = candidate.order
                mapping = payment_mappings.get(order.commercial_id)
                try:
                    refusal = (
                        None
                        if row.transfer_id
                        else self.providers.refusal(order.shop_id, order.created_at, STRIPE)
                    )
                    if refusal is not None:
                        # Another provider pays this shop's orders: never transferred here.
                        row = replace(
                            row,
                            mirakl_shop_id=order.shop_id,
                            mirakl_created_date=order.created_date,
                            status=TransferStatus.ABORTED,
                            status_reason=refusal,
                        )
                    else:
                        shop_mapping = mappings.get(order.shop_id) if order.shop_id else None
                        row = decide_order_transfer(
                            row,
                            order,
                            shop_mapping=shop_mapping,
                            is_tax_row=row.mirakl_id.endswith(TAX_SUFFIX),
                            tax_split=self.settings.tax_split_enabled,
                            tax_account=self.settings.tax_account,
                            fallback_payment_id=mapping.stripe_charge_id if mapping else None,
                            lookup_payment=lookup_for(
                                shop_mapping.stripe_account_id if shop_mapping else None
                            ),
                            approval=gate,
                        )
                except ConfigurationError:
                    raise
                except Exception as exc:  # noqa: BLE001 - record it on the row: nothing is lost
                    row = replace(
                        row,
                        status=TransferStatus.FAILED,
                        status_reason=decision_failure_reason(exc, item=row.mirakl_id),
                    )
            checked = recordable(row, candidate.row, self.ledger.unrecordable_reason)
            if checked is None:
                why = [row.status_reason] if row.status is TransferStatus.FAILED else []
                why.append(str(self.ledger.unrecordable_reason(candidate.row)))
                item = candidate.row.mirakl_id[:80]
                return ItemOutcome(item, "FAILED", "; ".join(filter(None, why)), failed=True)
            decided.append(checked)
            return []  # counted below, once the claims are settled

        run_batch(candidates, handle, item_id=lambda c: c.row.mirakl_id, summary=summary)
        return decided

    def _approval_gate(self, candidates: list[Candidate]) -> ApprovalGate | None:
        """The chunk's approval gate (the decisions taken on its rows); ``None`` when off."""
        items = [f"{c.row.type}:{c.row.mirakl_id}" for c in candidates if c.row.id is not None]
        return gate_for(self.ledger.engine, self.approval, "transfer", items)

    def _prefetch_charges(
        self,
        candidates: list[Candidate],
        payment_mappings: Mapping[str, Any],
        account_mappings: Mapping[int, AccountMapping],
    ) -> dict[str, PaymentState]:
        """The charges of the chunk's rows that may move now, read in bulk (see
        :mod:`.charge_prefetch`). A row that waits for something else first (the order's
        acceptance or debit, the seller's account or KYC) needs no charge: none is listed."""
        wanted: dict[str, datetime] = {}
        for c in candidates:
            if c.order is None or c.row.transfer_id:
                continue
            if not needs_payment_check(
                c.order,
                account_mappings.get(c.order.shop_id) if c.order.shop_id else None,
                is_tax_row=c.row.mirakl_id.endswith(TAX_SUFFIX),
            ):
                continue
            mapping = payment_mappings.get(c.order.commercial_id)
            payment_id = c.order.payment_id or (mapping.stripe_charge_id if mapping else None)
            if payment_id:
                wanted[payment_id] = c.order.created_at
        return self._charges.fetch(wanted)


def recordable(
    row: TransferRecord,
    original: TransferRecord,
    unrecordable_reason: Any,
) -> TransferRecord | None:
    """``row`` if the ledger can hold it; else ``original`` (the row as it was before this run
    decided it) FAILED with the reason; ``None`` when not even that can be written (an absurd
    order id), and the item is only reported."""
    problem = unrecordable_reason(row)
    if problem is None:
        return row
    failed = replace(
        original, status=TransferStatus.FAILED, status_reason=f"invalid data: {problem}"
    )
    return failed if unrecordable_reason(failed) is None else None
