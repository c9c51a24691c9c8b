"""Payment split, reading Mirakl: the orders (OR11) and service orders (SOR11 + SPA11) to decide.

Each order comes parsed, or with the reason it cannot be used (:class:`InvalidItemError`), so
that one bad order fails alone; a creation date in the future is such a reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from mirakl_connector.core.batch import chunked
from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.ledger.records import TransferType
from mirakl_connector.mirakl.client import MiraklClient
from mirakl_connector.mirakl.orders import (
    MiraklOrder,
    check_not_future,
    parse_product_order,
    parse_service_order,
)

#: service orders whose debits (SPA11) are read in one call
CHUNK_SIZE = 100


class OrderReading:
    """Mirakl reads of :class:`.payment_split.PaymentSplit` (mixed in)."""

    mirakl: MiraklClient
    _now: Callable[[], datetime]

    def _fetch_orders(
        self,
        transfer_type: TransferType,
        *,
        start: datetime | str | None = None,
        order_ids: Sequence[str] | None = None,
        start_update: datetime | None = None,
        commercial_ids: Sequence[str] | None = None,
    ) -> Iterator[tuple[str, MiraklOrder | InvalidItemError]]:
        """Stream ``(order id, parsed order or the reason it is unusable)`` from Mirakl.

        ``start_update`` and ``commercial_ids`` are read for product orders (OR11) only.
        """
        now = self._now()
        field = "created_date" if transfer_type is TransferType.PRODUCT_ORDER else "date_created"
        if start_update is not None or commercial_ids:
            raw = self.mirakl.iter_orders(
                start_update_date=start_update, commercial_ids=commercial_ids or None
            )
            fetched: Iterator[tuple[str, MiraklOrder | InvalidItemError]] = (
                _parse(r, "order_id", parse_product_order) for r in raw
            )
        else:
            fetched = self._fetch_raw_orders(transfer_type, start, order_ids)
        for order_id, order in fetched:
            if isinstance(order, MiraklOrder):
                try:
                    check_not_future(order.created_at, order.created_date, now=now, field=field)
                except InvalidItemError as exc:
                    order = exc.for_item(order_id)
            yield order_id, order

    def _fetch_raw_orders(
        self,
        transfer_type: TransferType,
        start: datetime | str | None,
        order_ids: Sequence[str] | None,
    ) -> Iterator[tuple[str, MiraklOrder | InvalidItemError]]:
        if transfer_type is TransferType.PRODUCT_ORDER:
            raw_orders = self.mirakl.iter_orders(start_date=start, order_ids=order_ids or None)
            for raw in raw_orders:
                yield _parse(raw, "order_id", parse_product_order)
            return
        raw_orders = self.mirakl.iter_service_orders(
            date_created_start=start, order_ids=order_ids or None
        )
        for chunk in chunked(raw_orders, CHUNK_SIZE):
            ids = [
                str(raw.get("id")) for raw in chunk if isinstance(raw, Mapping) and raw.get("id")
            ]
            debits = {
                str(d.get("order_id")): d for d in self.mirakl.iter_service_debits(order_ids=ids)
            }
            for raw in chunk:
                debit = debits.get(str(raw.get("id"))) if isinstance(raw, Mapping) else None
                yield _parse(raw, "id", lambda r, d=debit: parse_service_order(r, d))


def _parse(raw: object, id_field: str, parser: Any) -> tuple[str, MiraklOrder | InvalidItemError]:
    order_id = str(raw.get(id_field) or "") if isinstance(raw, Mapping) else ""
    try:
        return order_id, parser(raw)
    except InvalidItemError as exc:
        return order_id, exc.for_item(order_id or "<order without id>")
