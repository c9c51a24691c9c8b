"""Payment refund, ``plan`` per chunk: decide the refunds, record them, give each its reversal rows.

The rules are :func:`.refund_decisions.decide_refund`; this module gathers what they read for a
chunk of refunds at once (the order transfers, the payment mappings, the charges, which provider
pays the shop, the order's date for go-live) and records the decisions, claimed for Stripe.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from mirakl_connector.core.batch import BatchSummary, ItemOutcome, chunked, run_batch
from mirakl_connector.core.errors import InvalidItemError, PaymentProviderError
from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.claims import ClaimKind
from mirakl_connector.ledger.manual_rules import is_held_record
from mirakl_connector.ledger.records import (
    TAX_SUFFIX,
    RefundRecord,
    RefundStatus,
    RefundType,
    TransferRecord,
    TransferStatus,
    TransferType,
)
from mirakl_connector.mirakl.client import MiraklClient
from mirakl_connector.mirakl.orders import (
    parse_mirakl_datetime,
)
from mirakl_connector.operations.first_run import GoLive
from mirakl_connector.operations.payout_provider import STRIPE, ShopProviders
from mirakl_connector.operations.provider_guard import (
    claim_pending,
)
from mirakl_connector.stripe.charge_prefetch import ChargePrefetch
from mirakl_connector.stripe.gateway import (
    PaymentState,
    StripeGateway,
    idempotency_key,
)
from mirakl_connector.stripe.refund_decisions import (
    decide_refund,
)
from mirakl_connector.stripe.refund_rows import (
    ORDER_TYPE,
    refund_outcome,
)
from mirakl_connector.stripe.specs import PAYMENT_REFUND

log = logging.getLogger("mirakl_connector.stripe.refunds")

#: orders read from Mirakl in one call
CHUNK_SIZE = 100


class RefundDeciding:
    """The deciding part of :class:`.refunds.PaymentRefund` (mixed in)."""

    mirakl: MiraklClient
    stripe: StripeGateway
    ledger: Ledger
    run_id: str | None
    tax_split: bool
    go_live: GoLive
    providers: ShopProviders
    _charges: ChargePrefetch

    def _decide_and_record(
        self, rows: list[RefundRecord], summary: BatchSummary, *, dry_run: bool
    ) -> None:
        for held in [r for r in rows if is_held_record(r)]:
            summary.add(refund_outcome(held))  # a person holds it: not decided until released
        rows = [r for r in rows if not is_held_record(r)]
        if not rows:
            return
        transfers: dict[str, TransferRecord] = {}
        for refund_type, transfer_type in ORDER_TYPE.items():
            ids = [r.mirakl_order_id for r in rows if r.type is refund_type and r.mirakl_order_id]
            if ids:
                for order_id, transfer in self.ledger.get_transfers(transfer_type, ids).items():
                    transfers[f"{refund_type}:{order_id}"] = transfer
        mappings = self.ledger.payment_mappings_by_commercial_id(
            r.mirakl_commercial_order_id for r in rows if r.mirakl_commercial_order_id
        )
        payments = self._charges.fetch(_order_charges(transfers.values()))
        orders = self._order_facts(rows, transfers)
        self.providers.prefetch(shop for shop, _ in orders.values())

        def lookup(payment_id: str) -> PaymentState:
            if payment_id not in payments:
                payments[payment_id] = self.stripe.retrieve_payment(payment_id)
            return payments[payment_id]

        decided: list[RefundRecord] = []

        def handle(row: RefundRecord) -> ItemOutcome | list[ItemOutcome]:
            transfer = transfers.get(f"{row.type}:{row.mirakl_order_id}")
            mapping = mappings.get(row.mirakl_commercial_order_id or "")
            shop_id, created = orders.get(f"{row.type}:{row.mirakl_order_id}", (None, None))
            if row.id is None and self.go_live.before(created):
                # A refund of an order from before go-live: a previous connector's to make.
                return self.go_live.outcome(
                    row.mirakl_refund_id, created, amount=row.amount, currency=row.currency
                )
            refusal = (
                None if row.stripe_refund_id else self.providers.refusal(shop_id, created, STRIPE)
            )
            if refusal is not None:
                decided.append(replace(row, status=RefundStatus.ABORTED, status_reason=refusal))
                return []
            verdict = decide_refund(
                row,
                transfer_payment_id=transfer.transaction_id if transfer else None,
                mapping_payment_id=mapping.stripe_charge_id if mapping else None,
                lookup_payment=lookup,
            )
            problem = self.ledger.unrecordable_reason(verdict.row)
            if problem is not None:  # fail this refund alone (Mirakl lists it again), not the chunk
                raise InvalidItemError(problem, item_id=row.mirakl_refund_id[:80])
            if verdict.cancel_intent and not dry_run:
                self._cancel_intent(verdict.cancel_intent)
            decided.append(verdict.row)
            return []  # counted below, once the claims are settled

        run_batch(rows, handle, item_id=lambda r: r.mirakl_refund_id, summary=summary)
        # One provider per refund: claim the refunds about to be paid back.
        decided = claim_pending(
            self.ledger,
            STRIPE,
            ClaimKind.REFUND,
            decided,
            is_pending=lambda r: r.status is RefundStatus.PENDING,
            document_of=lambda r: r.mirakl_refund_id,
            shop_of=lambda r: orders.get(f"{r.type}:{r.mirakl_order_id}", (None, None))[0],
            refuse=lambda r, reason: replace(r, status=RefundStatus.ABORTED, status_reason=reason),
            workflow=PAYMENT_REFUND.name,
            run_id=self.run_id,
            dry_run=dry_run,
        )
        for row in decided:
            summary.add(refund_outcome(row))
        if dry_run or not decided:
            return
        self.ledger.save_refunds(decided, run_id=self.run_id)
        self._ensure_reversal_rows(decided)

    def _needs_order_facts(self) -> bool:
        rule = self.providers.rule
        return (
            self.go_live.instant is not None
            or bool(rule.shops)
            or rule.reads_shop_fields
            or rule.default != STRIPE
        )

    def _order_facts(
        self, rows: Sequence[RefundRecord], transfers: Mapping[str, TransferRecord]
    ) -> dict[str, tuple[int | None, datetime | None]]:
        """``"<type>:<order id>"`` → (shop id, creation instant) of each refund's order.

        From the order's transfer row when the split recorded one, else read from Mirakl (OR11 /
        SOR11 by id, 100 a call) for refunds new to the ledger: the go-live instant and the
        payout provider rule both need the order's date and shop.
        """
        facts: dict[str, tuple[int | None, datetime | None]] = {}
        unknown: dict[RefundType, set[str]] = {}
        for row in rows:
            key = f"{row.type}:{row.mirakl_order_id}"
            transfer = transfers.get(key)
            if transfer is not None and transfer.mirakl_created_date:
                facts[key] = (
                    transfer.mirakl_shop_id,
                    _instant_or_none(transfer.mirakl_created_date),
                )
            elif row.id is None and row.mirakl_order_id and self._needs_order_facts():
                unknown.setdefault(row.type, set()).add(row.mirakl_order_id)
        for refund_type, ids in unknown.items():
            for chunk in chunked(sorted(ids), CHUNK_SIZE):
                if refund_type is RefundType.PRODUCT_ORDER:
                    raws = self.mirakl.iter_orders(order_ids=chunk)
                    id_key, date_key = "order_id", "created_date"
                else:
                    raws = self.mirakl.iter_service_orders(order_ids=chunk)
                    id_key, date_key = "id", "date_created"
                for raw in raws:
                    if not isinstance(raw, Mapping) or not raw.get(id_key):
                        continue
                    shop = raw.get("shop_id")
                    if shop is None and isinstance(raw.get("shop"), Mapping):
                        shop = raw["shop"].get("id")
                    shop_text = str(shop or "")
                    facts[f"{refund_type}:{raw[id_key]}"] = (
                        int(shop_text) if shop_text.isdigit() else None,
                        _instant_or_none(raw.get(date_key)),
                    )
        return facts

    def _cancel_intent(self, intent_id: str) -> None:
        """Release an intent still waiting for confirmation (the incumbent's side effect, #131)."""
        try:
            self.stripe.cancel_payment(
                intent_id, idempotency_key=idempotency_key("cancel", intent_id)
            )
            log.info("Payment %s cancelled: a refund was asked before it was confirmed", intent_id)
        except PaymentProviderError as exc:
            if not exc.permanent:
                raise
            log.warning("Payment %s could not be cancelled: %s", intent_id, exc.message)

    def _ensure_reversal_rows(self, refunds: list[RefundRecord]) -> None:
        """Give each refund its ``TRANSFER_REFUND`` row(s), ON_HOLD until ``reverse`` decides."""
        ids = [r.mirakl_refund_id for r in refunds]
        if self.tax_split:
            ids += [i + TAX_SUFFIX for i in ids]
        existing = self.ledger.get_transfers(TransferType.REFUND, ids)
        new = [
            TransferRecord(
                type=TransferType.REFUND,
                mirakl_id=mirakl_id,
                status=TransferStatus.ON_HOLD,
                status_reason=f"Refund {mirakl_id.removesuffix(TAX_SUFFIX)} has yet to be "
                "validated",
            )
            for mirakl_id in ids
            if mirakl_id not in existing
        ]
        self.ledger.save_transfers(new, run_id=self.run_id)


def _order_charges(transfers: Iterable[TransferRecord]) -> dict[str, datetime]:
    """Charge id → creation time of its order, for the order transfers that know both (the
    window :class:`.ChargePrefetch` lists)."""
    found: dict[str, datetime] = {}
    for transfer in transfers:
        if not transfer.transaction_id or not transfer.mirakl_created_date:
            continue
        try:
            found[transfer.transaction_id] = parse_mirakl_datetime(transfer.mirakl_created_date)
        except InvalidItemError:
            continue  # no date, no window: the charge is retrieved on its own
    return found


def _instant_or_none(value: Any) -> datetime | None:
    try:
        return parse_mirakl_datetime(value) if isinstance(value, str) else None
    except InvalidItemError:
        return None
