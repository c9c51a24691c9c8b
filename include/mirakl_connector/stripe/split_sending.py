"""Payment split, ``execute`` per row: send one PENDING order transfer to Stripe once, record it.

The ladder (in doubt: replay or look up; found: record, never create; refused: FAILED; unclear:
in doubt) is :func:`.exactly_once.write_once` over
:mod:`mirakl_connector.operations.send_once`; this module says what a transfer of an order is
at Stripe (its call, its lookup, its key) and how each answer is recorded in the ledger.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from functools import partial

from mirakl_connector.core.batch import ItemOutcome, outcome_of
from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.records import TAX_SUFFIX, TransferRecord, TransferStatus
from mirakl_connector.operations.send_once import (
    Recording,
    Refused,
    Unknown,
    Written,
    record_in_doubt,
)
from mirakl_connector.stripe.exactly_once import lacking, write_and_record
from mirakl_connector.stripe.gateway import CreatedObject, StripeGateway
from mirakl_connector.stripe.idempotency import attempt_key
from mirakl_connector.stripe.lookups import find_transfer

log = logging.getLogger("mirakl_connector.stripe.payment_split")


class TransferRecording:
    """Recording an order transfer or reversal row with its status: shared by the split's
    send (:class:`TransferSending`) and the refunds' reversals (:mod:`.refund_reversing`)."""

    ledger: Ledger
    run_id: str | None

    def _record(
        self, row: TransferRecord, status: TransferStatus, reason: str | None
    ) -> ItemOutcome:
        row = replace(row, status=status, status_reason=reason)
        self.ledger.save_transfers([row], run_id=self.run_id)
        return transfer_outcome(row)


class TransferSending(TransferRecording):
    """The ``execute`` step's per-row send, mixed into :class:`.payment_split.PaymentSplit`."""

    stripe: StripeGateway
    ledger: Ledger
    run_id: str | None

    def _send(self, row: TransferRecord) -> ItemOutcome:
        """Create (or recover) the Stripe transfer of one PENDING row, and record it."""
        return send_transfer_row(
            row,
            ledger=self.ledger,
            run_id=self.run_id,
            find=self._find,
            create=self._create,
            recording=Recording(
                created=self._created, refused=self._refused, unknown=self._unknown
            ),
        )

    def _created(self, row: TransferRecord, written: Written) -> ItemOutcome:
        if written.replayed:
            log.info(
                "Transfer %s for %s recovered from Stripe's idempotency store",
                written.object_id,
                row.mirakl_id,
            )
        row = replace(row, transfer_id=written.object_id)
        return self._record(row, TransferStatus.CREATED, None)

    def _refused(self, row: TransferRecord, refused: Refused) -> ItemOutcome:
        return self._record(row, TransferStatus.FAILED, refused.message)

    def _unknown(self, row: TransferRecord, unknown: Unknown) -> ItemOutcome:
        save = partial(self.ledger.save_transfers, run_id=self.run_id)
        return record_in_doubt(row, unknown.reason, item_id=row.mirakl_id, save=save)

    def _create(self, row: TransferRecord, key: str) -> CreatedObject:
        assert row.amount is not None and row.currency and row.destination_account
        return self.stripe.create_transfer(
            amount=row.amount,
            currency=row.currency,
            destination=row.destination_account,
            source_transaction=row.transaction_id,
            idempotency_key=key,
            metadata={
                "miraklId": row.mirakl_id,
                "miraklShopId": str(row.mirakl_shop_id or ""),
                "miraklTransferType": str(row.type),
            },
        )

    def _find(self, row: TransferRecord) -> str | None:
        return find_transfer(self.stripe, row)


def transfer_outcome(row: TransferRecord) -> ItemOutcome:
    """The item outcome of an order transfer row as it stands."""
    return outcome_of(row, row.mirakl_id, failed=row.status is TransferStatus.FAILED)


def order_id_of(mirakl_id: str) -> str:
    """The Mirakl order of a transfer row (its ``_TAX`` twin's included)."""
    return mirakl_id.removesuffix(TAX_SUFFIX)


def send_transfer_row(
    row: TransferRecord,
    *,
    ledger: Ledger,
    run_id: str | None,
    find: Callable[[TransferRecord], str | None],
    create: Callable[[TransferRecord, str], CreatedObject],
    recording: Recording[TransferRecord, ItemOutcome],
) -> ItemOutcome:
    """The one way a Stripe transfer row (an order's, an invoice's) is sent and recorded.

    Both the payment split and the seller settlement send :class:`TransferRecord` rows: the
    same required fields, the same key (``transfer:<type>:<Mirakl id>``, ``:retry<n>`` after
    refusals) and the same attempt mark; they differ in how the transfer is looked up, created
    (its metadata) and recorded.
    """
    return write_and_record(
        row,
        recorded=row.transfer_id,
        lacks=lacking(
            "PENDING row lacks destination or amount",
            row.destination_account,
            row.amount,
            row.currency,
        ),
        new_key=attempt_key(row.attempts, "transfer", row.type, row.mirakl_id),
        find=find,
        mark=partial(ledger.mark_transfer_attempt, run_id=run_id),
        create=create,
        recording=recording,
    )
