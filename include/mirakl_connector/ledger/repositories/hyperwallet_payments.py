"""Hyperwallet payments, keyed by ``clientPaymentId``: sellers' invoices and operator fees.

Hyperwallet has no idempotency key, so beyond the audited save and the attempt mark every money
table has, a payment has a send claim (one sender at a time) and the out-of-order guard of its
webhook notifications.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update

from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.ledger.base import LedgerStore
from mirakl_connector.ledger.entities import (
    HW_PAYMENT,
    as_new_row,
    aware,
    guard_provider_id,
    held,
    merge_attempt,
    now,
    plain,
    prepare,
    to_record,
)
from mirakl_connector.ledger.records import HyperwalletPayment, HyperwalletPaymentStatus
from mirakl_connector.ledger.sql import event, insert_events, one, select_by_keys


class HyperwalletPaymentRepository(LedgerStore):
    """The ``hyperwallet_payments`` table."""

    def get_hyperwallet_payments(
        self, client_payment_ids: Iterable[str]
    ) -> dict[str, HyperwalletPayment]:
        """The saved payments among ``client_payment_ids``, by ``clientPaymentId``."""
        return self._get_by_ids(HW_PAYMENT, client_payment_ids)

    def get_hyperwallet_payment(self, client_payment_id: str) -> HyperwalletPayment | None:
        """One payment by ``clientPaymentId``, or ``None``."""
        return self.get_hyperwallet_payments([client_payment_id]).get(client_payment_id)

    def hyperwallet_payments_by_invoice(
        self, invoice_ids: Iterable[str]
    ) -> dict[str, list[HyperwalletPayment]]:
        """The payments (seller and operator fee) of each of ``invoice_ids`` that has any."""
        table = HW_PAYMENT.table
        found: dict[str, list[HyperwalletPayment]] = {}
        rows = self._read_chunked(
            (str(i) for i in invoice_ids),
            lambda chunk: select(table).where(table.c.invoice_id.in_(chunk)).order_by(table.c.id),
        )
        for row in rows:
            found.setdefault(row["invoice_id"], []).append(to_record(HW_PAYMENT, row))
        return found

    def hyperwallet_invoice_ids(
        self,
        *,
        statuses: Iterable[HyperwalletPaymentStatus],
        shop_ids: Iterable[int] | None = None,
    ) -> set[str]:
        """The invoices with a payment in ``statuses`` (of ``shop_ids`` when given): the
        invoices held for their shop, or those of shops that changed."""
        table = HW_PAYMENT.table
        where = [table.c.status.in_([plain(s) for s in statuses])]
        if shop_ids is None:
            return set(self._read_column(select(table.c.invoice_id).where(*where).distinct()))
        rows = self._read_chunked(
            shop_ids,
            lambda chunk: (
                select(table.c.invoice_id).where(*where, table.c.shop_id.in_(chunk)).distinct()
            ),
        )
        return {row["invoice_id"] for row in rows}

    def iter_hyperwallet_payments(
        self, *, statuses: Iterable[HyperwalletPaymentStatus], batch_size: int = 100
    ) -> Iterator[list[HyperwalletPayment]]:
        """Stream the payments in ``statuses`` by id (see :meth:`iter_transfers`)."""
        return self._iter_statuses(HW_PAYMENT, statuses, batch_size)

    def save_hyperwallet_payments(
        self, records: Sequence[HyperwalletPayment], *, run_id: str | None = None
    ) -> list[HyperwalletPayment]:
        """Insert or update payments by ``clientPaymentId`` (see :meth:`save_transfers`).

        A saved ``payment_token`` is never replaced or cleared, except on a row in
        ``HW_PAYMENT_FAILED``: that payment failed for good and the invoice is paid anew.
        """
        return self._save(HW_PAYMENT, records, run_id)

    def mark_hyperwallet_payment_attempt(
        self, record: HyperwalletPayment, *, run_id: str | None = None
    ) -> HyperwalletPayment:
        """Commit that the payment is about to be created at Hyperwallet; return the row.

        The key recorded is the ``clientPaymentId`` itself, the only de-duplication Hyperwallet
        offers. Refused (:class:`LedgerConflictError`) on a row that is COMPLETED or ABORTED, or
        that has a payment token and has not failed.
        """
        return self._mark_attempt(HW_PAYMENT, record, record.client_payment_id, run_id)

    def claim_hyperwallet_payment_send(
        self,
        client_payment_id: str,
        *,
        owner: str,
        lease: timedelta,
        gone: Callable[[str], bool] | None = None,
    ) -> str | None:
        """Take the right to look the payment up and create it; ``None`` when taken.

        Hyperwallet has no idempotency key and nothing documents that it refuses a reused
        ``clientPaymentId``, so two runs that both looked the payment up (and found nothing)
        would both create it. One transaction locks the row, checks it and sets
        ``send_claimed_until`` = now + ``lease``: the other runs get the reason why not (sent
        already, or being sent by another run until when) and send nothing. A run that dies
        holding the claim only delays the payment by ``lease``, or not at all when ``gone``
        says its holder is known dead; the next one looks it up first.
        Release it with :meth:`release_hyperwallet_payment_send`.

        :raises LedgerConflictError: the row is not in the ledger (save it first).
        """
        table = HW_PAYMENT.table
        at = now()
        with self._writer.begin() as conn:
            old = self._locked_row(conn, HW_PAYMENT, (client_payment_id,), "claiming it")
            if held(HW_PAYMENT, old):
                return f"{old['status_reason']}: not sent until released on the payments console"
            until = old["send_claimed_until"]
            if until is not None and until.tzinfo is None:
                until = until.replace(tzinfo=UTC)
            holder = old["send_claimed_by"]
            if (
                until is not None
                and until > at
                and holder != owner
                and not (holder and gone is not None and gone(holder))
            ):
                return (
                    f"being sent by another run ({old['send_claimed_by']}) until "
                    f"{until.isoformat()}"
                )
            if old["status"] in HW_PAYMENT.done_statuses or (
                old["payment_token"] is not None
                and old["status"] not in HW_PAYMENT.replaceable_statuses
            ):
                token = old["payment_token"] or "no payment"
                return f"already sent ({token}, {old['hw_status'] or old['status']})"
            conn.execute(
                update(table)
                .where(table.c.id == old["id"])
                .values(send_claimed_until=at + lease, send_claimed_by=owner)
            )
        return None

    def release_hyperwallet_payment_send(self, client_payment_id: str, *, owner: str) -> None:
        """Give the claim of :meth:`claim_hyperwallet_payment_send` back (only the owner's)."""
        table = HW_PAYMENT.table
        with self._writer.begin() as conn:
            conn.execute(
                update(table)
                .where(table.c.client_payment_id == client_payment_id)
                .where(table.c.send_claimed_by == owner)
                .values(send_claimed_until=None, send_claimed_by=None)
            )

    def record_hyperwallet_notification(
        self,
        record: HyperwalletPayment,
        *,
        notification_token: str,
        notified_at: datetime,
        run_id: str | None = None,
    ) -> HyperwalletPayment | None:
        """Save ``record`` as the effect of one webhook, unless a newer one was applied.

        Hyperwallet delivers out of order. The row keeps the ``createdOn`` and token of the
        newest notification applied; one created strictly earlier changes nothing and ``None``
        comes back. The same notification again (a retry of its processing) passes. Locked,
        checked and written in one transaction, so two runs cannot both win. The row is
        inserted when the ledger does not know the payment yet (made by another system).
        """
        if not notification_token:
            raise InvalidItemError(
                "a notification token is required", item_id=record.client_payment_id
            )
        notified = aware(notified_at, "notified_at", notification_token)
        assert notified is not None
        record = replace(
            record, last_notification_at=notified, last_notification_token=notification_token
        )
        key, values = prepare(HW_PAYMENT, record)
        table = HW_PAYMENT.table
        at = now()
        with self._writer.begin() as conn:
            old = select_by_keys(conn, HW_PAYMENT, [key], for_update=True).get(key)
            if old is None:
                as_new_row(values, at)
                conn.execute(insert(table), [values])
                row = one(conn, select(table).where(table.c.client_payment_id == key[0]))
                assert row is not None
                insert_events(conn, [event(HW_PAYMENT.name, row["id"], None, values, run_id, at)])
                return to_record(HW_PAYMENT, row)
            last = old["last_notification_at"]
            if (
                last is not None
                and last > notified
                and old["last_notification_token"] != notification_token
            ):
                return None
            guard_provider_id(HW_PAYMENT, key, values, old)
            merge_attempt(values, old)
            values["id"] = old["id"]
            values["created_at"] = old["created_at"]
            values["updated_at"] = at
            columns = [c for c in HW_PAYMENT.field_names if c not in ("id", "created_at")]
            conn.execute(
                update(table).where(table.c.id == old["id"]).values({c: values[c] for c in columns})
            )
            if values["status"] != old["status"]:
                insert_events(
                    conn, [event(HW_PAYMENT.name, old["id"], old["status"], values, run_id, at)]
                )
        return to_record(HW_PAYMENT, values)
