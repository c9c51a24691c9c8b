"""Refunds: the Stripe refunds of Mirakl refunds, keyed by Mirakl refund id."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, select

from mirakl_connector.core.shards import Shard
from mirakl_connector.ledger.base import LedgerStore
from mirakl_connector.ledger.entities import REFUND, plain
from mirakl_connector.ledger.records import RefundRecord, RefundStatus


class RefundRepository(LedgerStore):
    """The ``refunds`` table."""

    def get_refunds(self, mirakl_refund_ids: Iterable[str]) -> dict[str, RefundRecord]:
        """The refunds among ``mirakl_refund_ids`` that exist, keyed by Mirakl refund id."""
        return self._get_by_ids(REFUND, mirakl_refund_ids)

    def iter_refunds(
        self,
        *,
        statuses: Iterable[RefundStatus],
        batch_size: int = 100,
        shard: Shard | None = None,
    ) -> Iterator[list[RefundRecord]]:
        """Stream the refunds in ``statuses`` by id (see :meth:`iter_transfers`)."""
        return self._iter_statuses(REFUND, statuses, batch_size, shard=shard)

    def save_refunds(
        self, records: Sequence[RefundRecord], *, run_id: str | None = None
    ) -> list[RefundRecord]:
        """Insert or update refunds by ``mirakl_refund_id`` (see :meth:`save_transfers`)."""
        return self._save(REFUND, records, run_id)

    def mark_refund_attempt(
        self, record: RefundRecord, idempotency_key: str, *, run_id: str | None = None
    ) -> RefundRecord:
        """Commit that a Stripe refund is about to be made (see ``mark_transfer_attempt``)."""
        return self._mark_attempt(REFUND, record, idempotency_key, run_id)

    def refund_ids_changed_since(self, since: datetime) -> list[str]:
        """The Mirakl refund ids whose refund row changed since ``since`` (refunded, validated,
        aborted): what the reversal of a refund waits on."""
        table = REFUND.table
        return self._read_column(
            select(table.c.mirakl_refund_id)
            .where(table.c.updated_at >= since)
            .order_by(table.c.mirakl_refund_id)
        )

    def iter_refunds_of_orders(
        self,
        *,
        statuses: Iterable[RefundStatus] | None,
        order_ids: Iterable[str] = (),
        commercial_ids: Iterable[str] = (),
        batch_size: int = 100,
    ) -> Iterator[list[RefundRecord]]:
        """The refunds (in ``statuses``; every status with ``None``) of the Mirakl orders
        ``order_ids`` and of the commercial orders ``commercial_ids``; a refund matching both is
        yielded twice (callers keep what they have seen)."""
        table = REFUND.table
        where: list[ColumnElement[bool]] = []
        if statuses is not None:
            where.append(table.c.status.in_([plain(s) for s in statuses]))
        for column, ids in (
            (table.c.mirakl_order_id, order_ids),
            (table.c.mirakl_commercial_order_id, commercial_ids),
        ):
            yield from self._iter_in_chunks(REFUND, column, ids, where, batch_size)
