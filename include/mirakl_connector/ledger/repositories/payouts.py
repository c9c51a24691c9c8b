"""Payouts: the Stripe payouts of Mirakl invoices to sellers' banks, keyed by invoice id."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from sqlalchemy import select, update

from mirakl_connector.core.shards import Shard
from mirakl_connector.ledger import schema
from mirakl_connector.ledger.base import LedgerStore, log
from mirakl_connector.ledger.entities import (
    PAYOUT,
    LedgerConflictError,
    key_text,
    now,
    plain,
    prepare,
    to_record,
)
from mirakl_connector.ledger.records import PayoutRecord, PayoutStatus
from mirakl_connector.ledger.sql import event, insert_events, one, select_by_keys


class PayoutRepository(LedgerStore):
    """The ``payouts`` table."""

    def get_payouts(self, mirakl_invoice_ids: Iterable[str]) -> dict[str, PayoutRecord]:
        """The payouts among ``mirakl_invoice_ids`` that exist, keyed by Mirakl invoice id."""
        return self._get_by_ids(PAYOUT, mirakl_invoice_ids)

    def iter_payouts(
        self,
        *,
        statuses: Iterable[PayoutStatus],
        batch_size: int = 100,
        shard: Shard | None = None,
    ) -> Iterator[list[PayoutRecord]]:
        """Stream the payouts in ``statuses`` by id (see :meth:`iter_transfers`)."""
        return self._iter_statuses(PAYOUT, statuses, batch_size, shard=shard)

    def save_payouts(
        self, records: Sequence[PayoutRecord], *, run_id: str | None = None
    ) -> list[PayoutRecord]:
        """Insert or update payouts by ``mirakl_invoice_id`` (see :meth:`save_transfers`)."""
        return self._save(PAYOUT, records, run_id)

    def mark_payout_attempt(
        self, record: PayoutRecord, idempotency_key: str, *, run_id: str | None = None
    ) -> PayoutRecord:
        """Commit that a Stripe payout is about to be made (see ``mark_transfer_attempt``)."""
        return self._mark_attempt(PAYOUT, record, idempotency_key, run_id)

    def iter_payouts_of_shops(
        self,
        *,
        statuses: Iterable[PayoutStatus],
        shop_ids: Iterable[int],
        batch_size: int = 100,
    ) -> Iterator[list[PayoutRecord]]:
        """Like :meth:`iter_payouts`, only the rows of ``shop_ids``."""
        table = PAYOUT.table
        where = [table.c.status.in_([plain(s) for s in statuses])]
        return self._iter_in_chunks(PAYOUT, table.c.mirakl_shop_id, shop_ids, where, batch_size)

    def payout_by_payout_id(self, payout_id: str) -> PayoutRecord | None:
        """The payout row of the Stripe payout ``payout_id`` (``po_...``), if any."""
        table = PAYOUT.table
        row = self._read_one(select(table).where(table.c.payout_id == payout_id))
        return to_record(PAYOUT, row) if row is not None else None

    def accounts_with_payouts_since(self, since: datetime) -> list[str]:
        """The Stripe accounts with a created payout (``PAYOUT_CREATED``, payout id known) whose
        row changed since ``since``: the accounts whose payouts may still fail at the bank, which
        the healing of connected-account events re-reads (see ``workflows/stripe_events.py``)."""
        table = PAYOUT.table
        return self._read_column(
            select(table.c.stripe_account_id)
            .where(
                table.c.status == plain(PayoutStatus.CREATED),
                table.c.payout_id.is_not(None),
                table.c.stripe_account_id.is_not(None),
                table.c.updated_at >= since,
            )
            .distinct()
            .order_by(table.c.stripe_account_id)
        )

    def reopen_failed_payout(
        self, record: PayoutRecord, *, run_id: str | None = None
    ) -> PayoutRecord:
        """Forget the payout id of a payout that failed at the bank, so it can be re-created.

        The one sanctioned way past the provider-id guard of :meth:`save_payouts`: Stripe sent
        ``payout.failed``, the money is back in the seller's balance, and the next settlement
        run must pay it out again (reference 4.1.1). Only a ``PAYOUT_FAILED`` row that has a
        ``payout_id`` qualifies. The old id is not lost: it goes into the audit event's reason
        (``payout po_x failed at the bank: <reason>; re-created by the next settlement run``),
        and the row keeps that reason. ``idempotency_key`` and ``attempted_at`` are cleared
        (the old key would make Stripe replay the failed payout); ``attempts`` is kept, so the
        next key is ``…:retry<attempts>``, never one used before. The row stays
        ``PAYOUT_FAILED`` until the settlement decides it again.

        :raises LedgerConflictError: the row is missing, not ``PAYOUT_FAILED``, or has no
            payout id.
        """
        key, _ = prepare(PAYOUT, record)
        table = PAYOUT.table
        at = now()
        with self._writer.begin() as conn:
            old = select_by_keys(conn, PAYOUT, [key], for_update=True).get(key)
            if old is None:
                raise LedgerConflictError(f"payout {key_text(key)} is not in the ledger")
            if old["status"] != PayoutStatus.FAILED.value or not old["payout_id"]:
                held = f"payout id {old['payout_id']}" if old["payout_id"] else "no payout id"
                raise LedgerConflictError(
                    f"payout {key_text(key)} (row {old['id']}) is {old['status']} with {held}; "
                    "only a PAYOUT_FAILED payout with a payout id can be reopened"
                )
            reason = schema.truncate_reason(
                f"payout {old['payout_id']} failed at the bank: "
                f"{old['status_reason'] or 'no reason given'}; "
                "re-created by the next settlement run"
            )
            values = {
                "payout_id": None,
                "idempotency_key": None,
                "attempted_at": None,
                "status_reason": reason,
                "updated_at": at,
            }
            conn.execute(update(table).where(table.c.id == old["id"]).values(**values))
            insert_events(
                conn,
                [event(PAYOUT.name, old["id"], old["status"], {**old, **values}, run_id, at)],
            )
            row = one(conn, select(table).where(table.c.id == old["id"]))
        assert row is not None
        log.info("Payout %s reopened: %s", key_text(key), reason)
        return to_record(PAYOUT, row)
