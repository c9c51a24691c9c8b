"""Payment claims for what an incumbent connector already paid.

An imported row that moved money (it carries the provider's id) binds its Mirakl document to
that provider for good, exactly as one of our own workflows would when it pays: the document is
claimed with ``origin="import"`` (see :mod:`mirakl_connector.ledger.claims`). So after a cutover
no rule of :mod:`mirakl_connector.operations.payout_provider` (a shop moved to the other provider,
a wrong
default) can pay an order, refund or invoice a second time through the other provider.

Rows imported *held* (nothing moved at the incumbent) are not claimed: the workflow that pays
them later claims them then, like any row of ours.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.claims import ClaimKind, record_imported_claims
from mirakl_connector.ledger.records import (
    INVOICE_TRANSFER_TYPES,
    ORDER_TRANSFER_TYPES,
    TAX_SUFFIX,
    HyperwalletPayment,
    PayoutRecord,
    RefundRecord,
    TransferRecord,
)

_Document = tuple[ClaimKind, str, int | None, str]  # kind, document id, shop id, old id


def _document_of(record: object) -> _Document | None:
    """The Mirakl document an imported row paid, or ``None`` when it moved nothing."""
    if isinstance(record, TransferRecord) and record.transfer_id:
        if record.type in ORDER_TRANSFER_TYPES:
            order_id = record.mirakl_id.removesuffix(TAX_SUFFIX)
            return ClaimKind.ORDER, order_id, record.mirakl_shop_id, record.transfer_id
        if record.type in INVOICE_TRANSFER_TYPES:
            return ClaimKind.INVOICE, record.mirakl_id, record.mirakl_shop_id, record.transfer_id
        return None  # a reversal: its refund is claimed by the refund row
    if isinstance(record, RefundRecord) and record.stripe_refund_id:
        return ClaimKind.REFUND, record.mirakl_refund_id, None, record.stripe_refund_id
    if isinstance(record, PayoutRecord) and record.payout_id:
        return ClaimKind.INVOICE, record.mirakl_invoice_id, record.mirakl_shop_id, record.payout_id
    if isinstance(record, HyperwalletPayment) and record.payment_token and record.invoice_id:
        return ClaimKind.INVOICE, str(record.invoice_id), record.shop_id, record.payment_token
    return None


def claim_imported(ledger: Ledger, provider: str, records: Iterable[object], *, source: str) -> int:
    """Claim for ``provider`` the documents the imported ``records`` paid; return how many.

    Idempotent (an existing claim is kept): an import run twice claims nothing new.
    """
    by_kind: dict[ClaimKind, dict[str, int | None]] = defaultdict(dict)
    notes: dict[ClaimKind, dict[str, str]] = defaultdict(dict)
    for record in records:
        document = _document_of(record)
        if document is None:
            continue
        kind, document_id, shop_id, old_id = document
        by_kind[kind].setdefault(document_id, shop_id)
        notes[kind].setdefault(document_id, f"paid by {source} as {old_id}")
    for kind, documents in by_kind.items():
        record_imported_claims(ledger, provider, kind, documents, source=source, notes=notes[kind])
    return sum(len(d) for d in by_kind.values())
