"""Reads across the money tables: the audit trail, the failures, the rows waiting for one thing."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, select

from mirakl_connector.ledger import schema
from mirakl_connector.ledger.entities import PAYOUT, TRANSFER, plain, record_reader
from mirakl_connector.ledger.records import (
    LedgerEvent,
    PayoutRecord,
    PayoutStatus,
    RefundRecord,
    RefundStatus,
    TransferRecord,
    TransferStatus,
    TransferType,
)
from mirakl_connector.ledger.repositories.payouts import PayoutRepository
from mirakl_connector.ledger.repositories.refunds import RefundRepository
from mirakl_connector.ledger.repositories.transfers import TransferRepository


class ReportRepository(TransferRepository, RefundRepository, PayoutRepository):
    """``ledger_events`` (a row's history) and the reads that span transfers, refunds, payouts."""

    def events_for(self, entity: str, entity_id: int) -> list[LedgerEvent]:
        """Status history of one row (``entity``: ``transfer``, ``refund``...), oldest first."""
        table = schema.ledger_events
        stmt = (
            select(table)
            .where(table.c.entity == entity, table.c.entity_id == entity_id)
            .order_by(table.c.id)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [LedgerEvent(**{k: v for k, v in row.items() if k != "id"}) for row in rows]

    def iter_failed(self) -> Iterator[TransferRecord | RefundRecord | PayoutRecord]:
        """Every FAILED transfer, refund and payout (for the daily alert), streamed."""
        batches: Iterator[list[Any]] = chain(
            self.iter_transfers(types=list(TransferType), statuses=[TransferStatus.FAILED]),
            self.iter_refunds(statuses=[RefundStatus.FAILED]),
            self.iter_payouts(statuses=[PayoutStatus.FAILED]),
        )
        for batch in batches:
            yield from batch

    def iter_waiting(
        self,
        kind: str,
        *,
        reason_prefix: str,
        types: Iterable[TransferType] = (),
        batch_size: int = 100,
    ) -> Iterator[list[TransferRecord]] | Iterator[list[PayoutRecord]]:
        """The ON_HOLD ``"transfer"`` rows (of ``types``) or ``"payout"`` rows whose reason
        starts with ``reason_prefix``: the rows that wait for one thing (funds, say)."""
        reader: Callable[[RowMapping], Any]
        where: list[ColumnElement[bool]]
        if kind == "transfer":
            table = TRANSFER.table
            where = [
                table.c.type.in_([plain(t) for t in types]),
                table.c.status == plain(TransferStatus.ON_HOLD),
            ]
            reader = record_reader(TRANSFER)
        elif kind == "payout":
            table = PAYOUT.table
            where = [table.c.status == plain(PayoutStatus.ON_HOLD)]
            reader = record_reader(PAYOUT)
        else:
            raise ValueError(f"kind must be 'transfer' or 'payout', got {kind!r}")
        where.append(table.c.status_reason.startswith(reason_prefix, autoescape=True))
        return self._iter(table, where, batch_size, reader, None)
