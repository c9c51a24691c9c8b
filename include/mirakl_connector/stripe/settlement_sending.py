"""Seller settlement, ``transfer`` and ``payout`` per row: send one PENDING row to Stripe once.

The ladder (in doubt: replay or look up; found: record, never create; refused: FAILED; unclear:
in doubt) is :func:`.exactly_once.write_once`; this module says what an invoice transfer and a
payout are at Stripe (call, lookup, key) and records each answer. A refusal for an insufficient
balance is a wait, not a failure: the row is held with the date the funds should be there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial

from mirakl_connector.core.batch import (
    BatchSummary,
    ItemOutcome,
)
from mirakl_connector.core.errors import PaymentProviderError
from mirakl_connector.ledger.claims import ClaimKind
from mirakl_connector.ledger.records import (
    INVOICE_TRANSFER_TYPES,
    PayoutRecord,
    PayoutStatus,
    TransferRecord,
    TransferStatus,
)
from mirakl_connector.operations.payout_provider import STRIPE
from mirakl_connector.operations.provider_guard import (
    refuse_claimed_before_sending,
)
from mirakl_connector.operations.send_once import (
    Recording,
    Refused,
    Unknown,
    Written,
    record_in_doubt,
)
from mirakl_connector.stripe.currency import from_api
from mirakl_connector.stripe.event_handlers import payout_failure_reason
from mirakl_connector.stripe.exactly_once import lacking, write_and_record
from mirakl_connector.stripe.gateway import CreatedObject, StripeGateway
from mirakl_connector.stripe.idempotency import attempt_key
from mirakl_connector.stripe.lookups import find_payout, find_transfer
from mirakl_connector.stripe.sendable import present
from mirakl_connector.stripe.settlement_decisions import (
    funds_hold_reason,
)
from mirakl_connector.stripe.settlement_rows import (
    Row,
    RowSaving,
    RowT,
    abort_row,
    invoice_id_of,
    item_id_of,
    row_outcome,
    stripe_id_of,
)
from mirakl_connector.stripe.specs import SELLER_SETTLEMENT
from mirakl_connector.stripe.split_sending import send_transfer_row

log = logging.getLogger("mirakl_connector.stripe.settlement")

#: how far back the pending balance transactions of a payout waiting for funds are read (the
#: longest standard settlement delays are about a month, docs.stripe.com/payouts)
FUNDS_LOOKBACK = timedelta(days=35)


class SettlementSending(RowSaving):
    """The ``transfer`` and ``payout`` steps' per-row work, mixed into
    :class:`.settlement.SellerSettlement`."""

    stripe: StripeGateway
    _now: Callable[[], datetime]

    def _claimed(self, rows: list[RowT], summary: BatchSummary, *, dry_run: bool) -> list[RowT]:
        """The rows to send; those whose invoice another provider holds are refused (saved)."""
        keep, refused = refuse_claimed_before_sending(
            self.ledger,
            STRIPE,
            ClaimKind.INVOICE,
            rows,
            document_of=invoice_id_of,
            shop_of=lambda r: r.mirakl_shop_id,
            untouched=lambda r: not stripe_id_of(r) and r.attempted_at is None,
            refuse=abort_row,
            save=self._save,
            workflow=SELLER_SETTLEMENT.name,
            run_id=self.run_id,
            dry_run=dry_run,
        )
        for row in refused:
            summary.add(row_outcome(row))
        return keep

    def _send_transfer(self, row: TransferRecord) -> ItemOutcome:
        return send_transfer_row(
            row,
            ledger=self.ledger,
            run_id=self.run_id,
            find=self._find_transfer,
            create=self._create_transfer,
            recording=Recording(
                created=self._transfer_created,
                refused=self._transfer_refused,
                unknown=partial(self._unknown, save=self.ledger.save_transfers),
            ),
        )

    def _transfer_created(self, row: TransferRecord, written: Written) -> ItemOutcome:
        row = replace(row, transfer_id=written.object_id)
        return self._record_transfer(row, TransferStatus.CREATED, None)

    def _transfer_refused(self, row: TransferRecord, refused: Refused) -> ItemOutcome:
        if refused.code == "balance_insufficient":
            # Funds not there yet (the seller's, for its fees): wait, tried again next run.
            assert row.amount is not None and row.currency
            reason = self._funds_reason("transfer", row.source_account, row.amount, row.currency)
            return self._record_transfer(row, TransferStatus.ON_HOLD, reason)
        return self._record_transfer(row, TransferStatus.FAILED, refused.message)

    def _unknown(self, row: Row, unknown: Unknown, *, save: Callable[..., object]) -> ItemOutcome:
        return record_in_doubt(
            row, unknown.reason, item_id=item_id_of(row), save=partial(save, run_id=self.run_id)
        )

    def _create_transfer(self, row: TransferRecord, key: str) -> CreatedObject:
        metadata = {
            "miraklId": row.mirakl_id,
            "miraklShopId": str(row.mirakl_shop_id or ""),
            "miraklTransferType": str(row.type),
        }
        item = item_id_of(row)
        return self.stripe.create_transfer(
            amount=present(row.amount, "amount", item),
            currency=present(row.currency, "currency", item),
            destination=present(row.destination_account, "destination", item),
            idempotency_key=key,
            metadata=metadata,
            on_account=row.source_account,
        )

    def _find_transfer(self, row: TransferRecord) -> str | None:
        return find_transfer(self.stripe, row)

    def _record_transfer(
        self, row: TransferRecord, status: TransferStatus, reason: str | None
    ) -> ItemOutcome:
        row = replace(row, status=status, status_reason=reason)
        self.ledger.save_transfers([row], run_id=self.run_id)
        return row_outcome(row)

    def _invoice_transfers(self, invoice_ids: list[str]) -> dict[str, list[TransferRecord]]:
        found: dict[str, list[TransferRecord]] = {}
        if not invoice_ids:
            return found
        for transfer_type in INVOICE_TRANSFER_TYPES:
            for invoice_id, row in self.ledger.get_transfers(transfer_type, invoice_ids).items():
                found.setdefault(invoice_id, []).append(row)
        return found

    def _send_payout(self, row: PayoutRecord) -> ItemOutcome:
        return write_and_record(
            row,
            recorded=row.payout_id,
            lacks=lacking(
                "PENDING payout lacks account or amount",
                row.stripe_account_id,
                row.amount,
                row.currency,
            ),
            new_key=attempt_key(row.attempts, "payout", row.mirakl_invoice_id),
            find=self._find_payout,
            mark=partial(self.ledger.mark_payout_attempt, run_id=self.run_id),
            create=self._create_payout,
            recording=Recording(
                created=self._payout_created,
                refused=self._payout_refused,
                unknown=partial(self._unknown, save=self.ledger.save_payouts),
            ),
        )

    def _payout_created(self, row: PayoutRecord, written: Written) -> ItemOutcome:
        row = replace(row, payout_id=written.object_id)
        if written.replayed or written.found:
            failure = self._failed_since(row)
            if failure:
                # Recorded as the payout.failed webhook would have (the event may have
                # come before the id was known): the next plan re-creates the payout.
                return self._record_payout(row, PayoutStatus.FAILED, failure)
        return self._record_payout(row, PayoutStatus.CREATED, None)

    def _payout_refused(self, row: PayoutRecord, refused: Refused) -> ItemOutcome:
        if refused.code == "balance_insufficient":
            assert row.amount is not None and row.currency
            reason = self._funds_reason("pay out", row.stripe_account_id, row.amount, row.currency)
            return self._record_payout(row, PayoutStatus.ON_HOLD, reason)
        return self._record_payout(row, PayoutStatus.FAILED, refused.message)

    def _funds_reason(self, action: str, account: str | None, amount: int, currency: str) -> str:
        """The hold reason of a payout or transfer the balance of ``account`` (``None``: the
        platform) cannot cover yet, with the date the pending funds should (its balance and
        pending balance transactions of the last :data:`FUNDS_LOOKBACK`); without the date when
        those reads fail."""
        lower = currency.lower()
        shown = account or "the platform"
        try:
            balance = self.stripe.retrieve_balance(account)
            # Balances are in Stripe's unit; ``amount`` is in the ledger's (ISO minor units).
            available = sum(
                from_api(b.get("amount", 0), lower) or 0
                for b in balance.get("available") or []
                if b.get("currency") == lower
            )
            now = self._now()
            pending = [
                (from_api(t["amount"], lower) or 0, t["available_on"])
                for t in self.stripe.iter_balance_transactions(
                    account=account, currency=lower, created_since=now - FUNDS_LOOKBACK
                )
                if t.get("available_on", 0) > now.timestamp()
            ]
        except PaymentProviderError as exc:
            log.warning("Balance of %s unreadable: %s", shown, exc)
            return funds_hold_reason(action, amount, currency, shown, 0, [])
        return funds_hold_reason(action, amount, currency, shown, available, pending)

    def _failed_since(self, row: PayoutRecord) -> str | None:
        """Why a recovered payout is dead (failed at the bank, cancelled), or ``None``.

        A replay answers with the payout as it was first created ("pending"), and a
        ``payout.failed`` event that came while the row was in doubt found no payout id to
        apply to. Without this check the invoice would be marked paid with a dead payout.
        """
        payout = self.stripe.retrieve_payout(
            account=row.stripe_account_id or "", payout_id=row.payout_id or ""
        )
        if payout.get("status") in ("failed", "canceled"):
            return payout_failure_reason(payout)
        return None

    def _create_payout(self, row: PayoutRecord, key: str) -> CreatedObject:
        item = item_id_of(row)
        return self.stripe.create_payout(
            account=present(row.stripe_account_id, "account", item),
            amount=present(row.amount, "amount", item),
            currency=present(row.currency, "currency", item),
            idempotency_key=key,
            metadata={
                "miraklShopId": str(row.mirakl_shop_id or ""),
                "invoiceId": row.mirakl_invoice_id,
            },
        )

    def _find_payout(self, row: PayoutRecord) -> str | None:
        return find_payout(self.stripe, row)

    def _record_payout(
        self, row: PayoutRecord, status: PayoutStatus, reason: str | None
    ) -> ItemOutcome:
        row = replace(row, status=status, status_reason=reason)
        self.ledger.save_payouts([row], run_id=self.run_id)
        return row_outcome(row)
