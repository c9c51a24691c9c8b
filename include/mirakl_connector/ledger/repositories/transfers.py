"""Transfers: the Stripe transfers of orders, reversals and invoices, by type and Mirakl id."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from sqlalchemy import func, select

from mirakl_connector.core.shards import Shard
from mirakl_connector.ledger.base import LedgerStore
from mirakl_connector.ledger.entities import TRANSFER, plain
from mirakl_connector.ledger.records import TransferRecord, TransferStatus, TransferType


class TransferRepository(LedgerStore):
    """The ``transfers`` table."""

    def get_transfers(
        self, type: TransferType, mirakl_ids: Iterable[str]
    ) -> dict[str, TransferRecord]:
        """The transfers of ``type`` among ``mirakl_ids`` that exist, keyed by Mirakl id."""
        found = self._get_by_keys(TRANSFER, [(plain(type), mirakl_id) for mirakl_id in mirakl_ids])
        return {key[1]: record for key, record in found.items()}

    def get_transfer(self, type: TransferType, mirakl_id: str) -> TransferRecord | None:
        """One transfer, or ``None``."""
        return self.get_transfers(type, [mirakl_id]).get(mirakl_id)

    def iter_transfers(
        self,
        *,
        types: Iterable[TransferType],
        statuses: Iterable[TransferStatus],
        batch_size: int = 100,
        shard: Shard | None = None,
    ) -> Iterator[list[TransferRecord]]:
        """Stream the transfers of ``types`` in ``statuses``, ``batch_size`` at a time, by id.

        Each batch is read in its own short transaction (keyset pagination on ``id``), so the
        caller may save rows between batches: a row whose status leaves the filter is simply
        not seen again, and no row is returned twice. With ``shard``, only that shard's rows
        (see :mod:`mirakl_connector.core.shards`).
        """
        where = [TRANSFER.table.c.type.in_([plain(t) for t in types])]
        return self._iter_statuses(TRANSFER, statuses, batch_size, shard=shard, where=where)

    def save_transfers(
        self, records: Sequence[TransferRecord], *, run_id: str | None = None
    ) -> list[TransferRecord]:
        """Insert or update ``records`` by ``(type, mirakl_id)`` in one transaction.

        Returns the records as saved (``id``, ``created_at``, ``updated_at`` set), in input
        order. New rows and status changes are written to the audit trail with ``run_id``. A
        row that becomes ``TRANSFER_FAILED`` (new, or a status change) also queues a
        ``transfer.failed`` notification in the same transaction (likewise for refunds and
        payouts): the outbox holds exactly the failures that were committed.

        :raises LedgerConflictError: a record would drop or replace a saved ``transfer_id``, or
            two records share a key.
        """
        return self._save(TRANSFER, records, run_id)

    def mark_transfer_attempt(
        self, record: TransferRecord, idempotency_key: str, *, run_id: str | None = None
    ) -> TransferRecord:
        """Commit that a Stripe transfer is about to be created with ``idempotency_key``.

        Call it right *before* the Stripe call: if the process dies after Stripe answered, the
        row is left "in doubt" (:attr:`TransferRecord.in_doubt`) and the next run looks the
        transfer up with the same key instead of creating a second one.
        """
        return self._mark_attempt(TRANSFER, record, idempotency_key, run_id)

    def iter_transfers_of_shops(
        self,
        *,
        types: Iterable[TransferType],
        statuses: Iterable[TransferStatus],
        shop_ids: Iterable[int],
        batch_size: int = 100,
    ) -> Iterator[list[TransferRecord]]:
        """Like :meth:`iter_transfers`, only the rows of ``shop_ids``."""
        table = TRANSFER.table
        where = [
            table.c.type.in_([plain(t) for t in types]),
            table.c.status.in_([plain(s) for s in statuses]),
        ]
        return self._iter_in_chunks(TRANSFER, table.c.mirakl_shop_id, shop_ids, where, batch_size)

    def transfer_ids_changed_since(
        self,
        *,
        types: Iterable[TransferType],
        since: datetime,
        statuses: Iterable[TransferStatus] | None = None,
    ) -> list[str]:
        """The Mirakl ids of the transfers of ``types`` (in ``statuses``, when given) saved with
        a change since ``since``: an order transfer made (what a refund waiting for its payment
        or its reversal waits on), an invoice transfer settled (what a payout waits on)."""
        table = TRANSFER.table
        where = [table.c.updated_at >= since, table.c.type.in_([plain(t) for t in types])]
        if statuses is not None:
            where.append(table.c.status.in_([plain(s) for s in statuses]))
        return self._read_column(
            select(table.c.mirakl_id).where(*where).distinct().order_by(table.c.mirakl_id)
        )

    def accounts_credited_since(self, since: datetime) -> list[str]:
        """The connected accounts a transfer was made to (``TRANSFER_CREATED``) since ``since``:
        money arrived on their balance, which a payout or fee transfer waiting for funds needs."""
        table = TRANSFER.table
        return self._read_column(
            select(table.c.destination_account)
            .where(
                table.c.updated_at >= since,
                table.c.status == plain(TransferStatus.CREATED),
                table.c.destination_account.is_not(None),
            )
            .distinct()
            .order_by(table.c.destination_account)
        )

    def count_transfers_by_status(
        self, types: Iterable[TransferType] | None = None
    ) -> dict[str, int]:
        """Number of transfers per status (every known status present, zero when none)."""
        table = TRANSFER.table
        stmt = select(table.c.status, func.count()).group_by(table.c.status)
        if types is not None:
            stmt = stmt.where(table.c.type.in_([plain(t) for t in types]))
        counts = {status.value: 0 for status in TransferStatus}
        with self._engine.connect() as conn:
            for status, count in conn.execute(stmt):
                counts[status] = int(count)
        return counts
