"""Hyperwallet invoice payments, per chunk of invoices: decide each invoice's payments and pay.

The rules are :mod:`.payment_decisions`; this module reads what they need for a chunk at once
(the shops' tokens, fresh from Mirakl; the recorded payments; the approval gate), applies the
payout provider rule and the document claim, holds what must wait, and sends the rest
(:mod:`.invoice_sending`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from mirakl_connector.core.batch import BatchSummary, ItemOutcome, run_batch
from mirakl_connector.core.errors import (
    ConfigurationError,
    InvalidItemError,
    MiraklConnectorError,
)
from mirakl_connector.hyperwallet.invoice_outcomes import (
    HELD,
    NOT_HYPERWALLET,
    ON_HOLD,
    SKIPPED,
    InvoiceItem,
    OutcomeQueueing,
    S,
    payment_outcome,
)
from mirakl_connector.hyperwallet.invoice_sending import PaymentSending
from mirakl_connector.hyperwallet.payment_decisions import (
    INVOICE_ID,
    SBC11,
    HwInvoice,
    ShopTokens,
    client_payment_base,
    is_live,
    known_payment_ids,
    operator_fee_id,
    plan_invoice_payments,
    refresh_payment,
    shop_tokens,
)
from mirakl_connector.hyperwallet.specs import INVOICE_PAYMENTS
from mirakl_connector.ledger import (
    HyperwalletPayment,
    HyperwalletPaymentKind,
)
from mirakl_connector.ledger.claims import ClaimKind, claim_documents, find_claims
from mirakl_connector.ledger.manual_rules import is_held_record
from mirakl_connector.mirakl.client import MiraklClient
from mirakl_connector.operations.approval_gate import (
    ApprovalGate,
    ApprovalSettings,
    gate_hyperwallet_payment,
)
from mirakl_connector.operations.approvals import gate_for
from mirakl_connector.operations.first_run import GoLive
from mirakl_connector.operations.payout_provider import HYPERWALLET, PayoutProviderRule

log = logging.getLogger("mirakl_connector.hyperwallet.invoice_payments")


class InvoiceDeciding(OutcomeQueueing, PaymentSending):
    """The deciding part of :class:`.invoice_payments.HyperwalletInvoicePayments` (mixed in)."""

    mirakl: MiraklClient
    payments: Any  # HyperwalletPaymentSettings
    approval: ApprovalSettings
    go_live: GoLive
    providers: PayoutProviderRule
    _raw_shops: dict[int, Mapping[str, Any]]

    @property
    def _source(self) -> str:
        return str(self.payments.invoice_source)

    def _process(
        self, items: Sequence[InvoiceItem], summary: BatchSummary, *, dry_run: bool
    ) -> None:
        self._link_invoices(items)
        invoices = [item.invoice for item in items if item.invoice is not None]
        shops = self._shops({inv.shop_id for inv in invoices})
        saved = self.ledger.hyperwallet_payments_by_invoice(inv.invoice_id for inv in invoices)
        gate = self._approval_gate(saved, shops)

        def handle(item: InvoiceItem) -> list[ItemOutcome]:
            try:
                return self._one(item, shops, saved, gate, dry_run=dry_run)
            except (ConfigurationError, InvalidItemError):
                raise
            except Exception as exc:  # noqa: BLE001 - queued, so that it is read again
                # E.g. the ledger write after Hyperwallet answered failing: left to run_batch,
                # the item failed without a retry and the window moved past it, so nothing
                # read it again (its payment, at Hyperwallet, was never recorded).
                log.exception("Unexpected error on invoice %s", item.invoice_id)
                return [self._failure(item, f"unexpected error: {exc!r}", dry_run=dry_run)]

        run_batch(items, handle, item_id=lambda item: item.invoice_id, summary=summary)

    def _approval_gate(
        self,
        saved: Mapping[str, list[HyperwalletPayment]],
        shops: Mapping[int, ShopTokens] | MiraklConnectorError,
    ) -> ApprovalGate | None:
        """The chunk's approval gate (``None`` when off): the decisions taken on its recorded
        payments, and which of the bank accounts it would pay were already paid."""
        items = [p.client_payment_id for rows in saved.values() for p in rows]
        tokens = [p.bank_account_token for p in self.programs.values()]
        if not isinstance(shops, MiraklConnectorError):
            tokens += [shop.bank_account_token for shop in shops.values()]
        tokens += [p.destination_token for rows in saved.values() for p in rows]
        return gate_for(
            self.ledger.engine,
            self.approval,
            "hyperwallet_payment",
            items,
            destinations=[t for t in tokens if t],
        )

    def _link_invoices(self, items: Sequence[InvoiceItem]) -> None:
        """SBC11 under the invoice-id convention: each cycle's automatic invoice id (IV01
        ``seller_billing_cycle_id`` filter), the ``clientPaymentId`` its payments carry.

        A cycle whose invoice Mirakl does not return keeps none and fails with the reason.
        """
        if self._source != SBC11 or self.payments.payment_id_convention != INVOICE_ID:
            return
        cycles = [item for item in items if item.invoice is not None]
        if not cycles:
            return
        by_cycle: dict[str, str] = {}
        try:
            for raw in self.mirakl.iter_invoices(
                seller_billing_cycle_ids=[item.invoice_id for item in cycles],
                doc_type="AUTO_INVOICE",
            ):
                cycle = raw.get("seller_billing_cycle_id") if isinstance(raw, Mapping) else None
                if cycle and raw.get("invoice_id") is not None:
                    by_cycle[str(cycle)] = str(raw["invoice_id"])
        except MiraklConnectorError as exc:
            log.warning("IV01 by seller_billing_cycle_id failed: %s", exc)
        for item in cycles:
            assert item.invoice is not None
            linked = by_cycle.get(item.invoice_id)
            if linked:
                item.invoice = replace(item.invoice, accounting_invoice_id=linked)

    def _shops(self, shop_ids: set[int]) -> dict[int, ShopTokens] | MiraklConnectorError:
        """The shops by id, read now (tokens may have been corrected in Mirakl since)."""
        if not shop_ids:
            return {}
        try:
            raw = {
                int(shop["shop_id"]): shop
                for shop in self.mirakl.iter_shops(shop_ids=sorted(shop_ids))
                if isinstance(shop, Mapping) and shop.get("shop_id") is not None
            }
            self._raw_shops.update(raw)
            return {shop_id: shop_tokens(shop) for shop_id, shop in raw.items()}
        except MiraklConnectorError as exc:
            # The invoices of this chunk fail (and are retried); the run goes on.
            return exc

    def _one(
        self,
        item: InvoiceItem,
        shops: Mapping[int, ShopTokens] | MiraklConnectorError,
        saved: Mapping[str, list[HyperwalletPayment]],
        gate: ApprovalGate | None,
        *,
        dry_run: bool,
    ) -> list[ItemOutcome]:
        if item.skip is not None:
            if not dry_run:
                self.queue.record_success(item.invoice_id)
            return [ItemOutcome(item.invoice_id, SKIPPED, item.skip)]
        if item.invoice is None:
            return [self._failure(item, f"invalid data: {item.problem}", dry_run=dry_run)]
        if isinstance(shops, MiraklConnectorError):
            return [self._failure(item, f"shops not read: {shops}", dry_run=dry_run)]
        invoice = item.invoice
        known = saved.get(invoice.invoice_id, [])
        if self.go_live.before(invoice.created_at) and not known:
            before = self.go_live.outcome(
                invoice.invoice_id,
                invoice.created_date,
                amount=invoice.seller_amount,
                currency=invoice.currency,
            )
            return [before]
        convention = self.payments.payment_id_convention
        base = client_payment_base(invoice, convention)
        if base is None:
            return [
                self._failure(
                    item,
                    f"no {convention} for this {invoice.source} document: it cannot be paid "
                    f"under the clientPaymentId convention {convention!r}",
                    dry_run=dry_run,
                )
            ]
        plan = plan_invoice_payments(
            invoice,
            shops.get(invoice.shop_id),
            self.programs,
            operator_commissions=self.payments.operator_commissions and not invoice.credit_note,
            client_payment_id=base,
        )
        if plan.skip is not None:
            if not dry_run:
                self.queue.record_success(invoice.invoice_id)
            return [ItemOutcome(invoice.invoice_id, SKIPPED, plan.skip)]
        # The rule first (a hold must not wait for a shop Stripe pays), the claim only when
        # something is about to be sent (a held invoice is not bound to Hyperwallet yet).
        for claim in (False, plan.hold is None):
            refusal = self._refusal(invoice, known, claim=claim, dry_run=dry_run)
            if refusal is not None:
                if not dry_run:
                    self.queue.record_success(invoice.invoice_id)
                return [ItemOutcome(invoice.invoice_id, NOT_HYPERWALLET, refusal)]
        if plan.hold is not None:
            if not dry_run:
                self._hold_rows(invoice, saved.get(invoice.invoice_id, []), plan.hold)
            held = ItemOutcome(invoice.invoice_id, ON_HOLD, plan.hold, failed=True)
            return self._queue([held], item, dry_run=dry_run)

        rows = saved.get(invoice.invoice_id, [])
        by_id = {p.client_payment_id: p for p in rows}
        # A live payment recorded under the other convention's id (adopted) is this one.
        live = {p.kind: p for p in rows if is_live(p)}
        outcomes = []
        for planned in plan.payments:
            saved_row = live.get(planned.kind) or by_id.get(planned.client_payment_id)
            if saved_row is not None and is_held_record(saved_row):
                # A person holds it on the payments console: not sent until released (the
                # release queues the invoice again, see the console's actions).
                outcomes.append(payment_outcome(saved_row, HELD, saved_row.status_reason))
                continue
            row = refresh_payment(saved_row, planned)
            if saved_row is None or not saved_row.in_doubt:
                # A row in doubt may already be paid: it is looked up, never held.
                row = gate_hyperwallet_payment(row, gate)
            self._aliases[row.client_payment_id] = alias_ids(invoice, row)
            outcomes.append(
                self._payment_or_failure(
                    row, dry_run=dry_run, paid_elsewhere=self._paid_elsewhere(invoice, row, rows)
                )
            )
        for note in plan.notes:
            log.info("Invoice %s: %s", invoice.invoice_id, note)
        if not outcomes:
            outcomes = [ItemOutcome(invoice.invoice_id, SKIPPED, "; ".join(plan.notes) or None)]
        return self._queue(outcomes, item, dry_run=dry_run)

    @staticmethod
    def _paid_elsewhere(
        invoice: HwInvoice, row: HyperwalletPayment, rows: Sequence[HyperwalletPayment]
    ) -> str | None:
        """Why ``row`` must not be created although no payment is found for it: the document is
        PAID in Mirakl and the ledger does not show that this connector paid it.

        The operator commission of an invoice whose seller payment we made and Hyperwallet
        COMPLETED (so we confirmed the invoice) is still paid: it is independent of the seller's.
        """
        if invoice.paid_in_mirakl is None:
            return None
        ours = any(
            r.kind == HyperwalletPaymentKind.SELLER and r.status == S.COMPLETED and r.payment_token
            for r in rows
        )
        if row.kind == HyperwalletPaymentKind.OPERATOR_FEE and ours:
            return None
        return (
            f"the invoice is PAID in Mirakl ({invoice.paid_in_mirakl}) without a payment of "
            "this connector: settled outside Hyperwallet, never paid again"
        )

    def _refusal(
        self,
        invoice: HwInvoice,
        known: Sequence[HyperwalletPayment],
        *,
        claim: bool,
        dry_run: bool,
    ) -> str | None:
        """Why Hyperwallet must not pay ``invoice``: its shop is another provider's (the rule),
        or the invoice is claimed by another provider. Otherwise it is claimed for Hyperwallet
        here, before anything is sent (a dry run only reads the claim)."""
        if any(p.payment_token for p in known):
            return None  # already at Hyperwallet: its payments are followed, never refused
        shop_id = invoice.shop_id
        raw = self._raw_shops.get(shop_id)
        if raw is not None or not self.providers.needs_shop(shop_id):
            verdict = self.providers.provider(shop_id, shop=raw, at=invoice.created_at)
            if verdict.provider not in (HYPERWALLET, "none"):
                return verdict.refusal(shop_id, HYPERWALLET)
        if not claim:
            return None
        documents = {invoice.invoice_id: shop_id}
        if dry_run:
            claims = find_claims(self.ledger, ClaimKind.INVOICE, documents)
        else:
            claims = claim_documents(
                self.ledger,
                HYPERWALLET,
                ClaimKind.INVOICE,
                documents,
                workflow=INVOICE_PAYMENTS.name,
                run_id=self.run_id,
            )
        held = claims.get(invoice.invoice_id)
        return held.refusal(HYPERWALLET) if held is not None else None

    def _hold_rows(self, invoice: HwInvoice, saved: list[HyperwalletPayment], reason: str) -> None:
        """Record (or update) the invoice's payments as ON_HOLD with why: visible in the ledger."""
        by_id = {p.client_payment_id: p for p in saved}
        rows = []
        wanted = [(invoice.invoice_id, HyperwalletPaymentKind.SELLER, invoice.seller_amount)]
        if self.payments.operator_commissions and not invoice.credit_note:
            fee_id = operator_fee_id(invoice.invoice_id)
            wanted.append((fee_id, HyperwalletPaymentKind.OPERATOR_FEE, invoice.operator_amount))
        for cpid, kind, amount in wanted:
            if amount <= 0:
                continue
            row = by_id.get(cpid) or HyperwalletPayment(
                client_payment_id=cpid,
                invoice_id=invoice.invoice_id,
                kind=kind,
                amount=amount,
                currency=invoice.currency,
                shop_id=invoice.shop_id,
                invoice_source=invoice.source,
                invoice_created_date=invoice.created_date,
            )
            # A row with a payment (even a failed one) or an attempt in doubt keeps its status.
            if row.status in (S.PENDING, S.ON_HOLD) and not row.payment_token and not row.in_doubt:
                rows.append(replace(row, status=S.ON_HOLD, status_reason=reason))
        self.ledger.save_hyperwallet_payments(rows, run_id=self.run_id)


def alias_ids(invoice: HwInvoice, row: HyperwalletPayment) -> tuple[str, ...]:
    """The ids other than ``row``'s under which the same payment may exist at Hyperwallet."""
    fee = row.kind == HyperwalletPaymentKind.OPERATOR_FEE
    ids = [operator_fee_id(i) if fee else i for i in known_payment_ids(invoice)]
    return tuple(i for i in ids if i != row.client_payment_id)
