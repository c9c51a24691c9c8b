"""Payment refund, the rows: which order transfer a refund's order has, and how refund and
reversal rows are reported (shared by the steps of :mod:`.refunds`)."""

from __future__ import annotations

from mirakl_connector.core.batch import ItemOutcome, outcome_of
from mirakl_connector.ledger.records import (
    TAX_SUFFIX,
    RefundRecord,
    RefundStatus,
    RefundType,
    TransferType,
)

#: the order transfer type of each refund type
ORDER_TYPE = {
    RefundType.PRODUCT_ORDER: TransferType.PRODUCT_ORDER,
    RefundType.SERVICE_ORDER: TransferType.SERVICE_ORDER,
}


def wanted_refund(refund: RefundRecord | None, wanted: set[str]) -> bool:
    if not wanted:
        return True
    return refund is not None and refund.mirakl_order_id in wanted


def refund_id_of(mirakl_id: str) -> str:
    return mirakl_id.removesuffix(TAX_SUFFIX)


def refund_outcome(row: RefundRecord) -> ItemOutcome:
    return outcome_of(row, row.mirakl_refund_id, failed=row.status is RefundStatus.FAILED)
