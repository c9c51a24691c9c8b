"""Seller settlement, the rows: an invoice's transfers and payout as one kind of row.

An invoice has three invoice transfers (:class:`TransferRecord`) and one payout
(:class:`PayoutRecord`); the steps of :mod:`.settlement` handle them together through these
helpers (their key, their item id in reports, aborting one, saving a mixed list).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar, overload

from mirakl_connector.core.batch import ItemOutcome, outcome_of
from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.records import (
    INVOICE_TRANSFER_TYPES,
    RETRIABLE_PAYOUT,
    RETRIABLE_TRANSFER,
    PayoutRecord,
    PayoutStatus,
    TransferRecord,
    TransferStatus,
    TransferType,
)
from mirakl_connector.mirakl.orders import check_not_future, parse_mirakl_datetime
from mirakl_connector.stripe.settlement_decisions import (
    MiraklInvoice,
    parse_invoice,
)

Row = TransferRecord | PayoutRecord
#: one kind of row (a list of transfers stays a list of transfers)
RowT = TypeVar("RowT", TransferRecord, PayoutRecord)


@dataclass
class Candidate:
    """The ledger rows of one invoice to decide, with the invoice (None when unusable)."""

    invoice_id: str
    rows: list[Row]
    invoice: MiraklInvoice | None
    error: str | None = None


class RowSaving:
    """Saving a mixed list of rows, shared by the parts of :class:`.settlement.SellerSettlement`."""

    ledger: Ledger
    run_id: str | None

    def _save(self, rows: Iterable[Row]) -> None:
        rows = list(rows)
        transfers = [r for r in rows if isinstance(r, TransferRecord)]
        payouts = [r for r in rows if isinstance(r, PayoutRecord)]
        self.ledger.save_transfers(transfers, run_id=self.run_id)
        self.ledger.save_payouts(payouts, run_id=self.run_id)


def parse_raw_invoice(raw: Any, now: datetime) -> tuple[str, MiraklInvoice | InvalidItemError]:
    invoice_id = raw.get("invoice_id") if isinstance(raw, Mapping) else None
    item = "" if invoice_id in (None, "") else str(invoice_id)
    try:
        invoice = parse_invoice(raw)
        check_not_future(invoice.created_at, invoice.created_date, now=now, field="date_created")
        return item, invoice
    except InvalidItemError as exc:
        return item, exc.for_item(item or "<invoice without id>")


def candidate_of(
    invoice_id: str, rows: list[Row], invoice: MiraklInvoice | InvalidItemError
) -> Candidate:
    if isinstance(invoice, InvalidItemError):
        return Candidate(invoice_id, rows, None, f"invalid data: {invoice.reason}")
    return Candidate(invoice_id, rows, invoice)


def earliest_date(rows: Iterable[Row]) -> str | None:
    """The earliest ``mirakl_created_date`` (raw string), or None to read every invoice."""
    earliest: tuple[datetime, str] | None = None
    for row in rows:
        if not row.mirakl_created_date:
            return None
        try:
            at = parse_mirakl_datetime(row.mirakl_created_date)
        except InvalidItemError:
            return None
        if earliest is None or at < earliest[0]:
            earliest = (at, row.mirakl_created_date)
    return earliest[1] if earliest else None


def invoice_id_of(row: Row) -> str:
    return row.mirakl_id if isinstance(row, TransferRecord) else row.mirakl_invoice_id


def row_key(row: Row) -> tuple[str, ...]:
    if isinstance(row, TransferRecord):
        return ("transfer", str(TransferType(row.type)), row.mirakl_id)
    return ("payout", row.mirakl_invoice_id)


def is_open(row: Row) -> bool:
    """New, or retriable: a row decided for good (or waiting to be sent) is left alone."""
    if row.id is None:
        return True
    if isinstance(row, TransferRecord):
        return row.status in RETRIABLE_TRANSFER
    return row.status in RETRIABLE_PAYOUT


def is_ours(row: Any) -> bool:
    """An invoice transfer or payout (a released order transfer is the split's)."""
    return isinstance(row, PayoutRecord) or (
        isinstance(row, TransferRecord) and row.type in INVOICE_TRANSFER_TYPES
    )


def item_id_of(row: Row) -> str:
    if isinstance(row, TransferRecord):
        return f"{row.mirakl_id}/{row.type}"
    return f"{row.mirakl_invoice_id}/PAYOUT"


def row_outcome(row: Row, *, failed: bool | None = None) -> ItemOutcome:
    if failed is None:
        failed = row.status in (TransferStatus.FAILED, PayoutStatus.FAILED)
    return outcome_of(row, item_id_of(row), failed=failed)


@overload
def abort_row(row: TransferRecord, reason: str) -> TransferRecord: ...
@overload
def abort_row(row: PayoutRecord, reason: str) -> PayoutRecord: ...
@overload
def abort_row(row: Row, reason: str) -> Row: ...
def abort_row(row: Row, reason: str) -> Row:
    if isinstance(row, TransferRecord):
        return replace(row, status=TransferStatus.ABORTED, status_reason=reason)
    return replace(row, status=PayoutStatus.ABORTED, status_reason=reason)


def stripe_id_of(row: Row) -> str | None:
    return row.transfer_id if isinstance(row, TransferRecord) else row.payout_id
