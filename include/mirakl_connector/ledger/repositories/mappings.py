"""Mappings: which Stripe account is a shop's (account mappings), which Mirakl commercial order
a Stripe charge pays (payment mappings)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.ledger import schema
from mirakl_connector.ledger.base import LedgerStore
from mirakl_connector.ledger.entities import (
    PAYMENT_MAPPING,
    LedgerConflictError,
    Row,
    as_new_row,
    changed,
    from_row,
    merge_attempt,
    now,
    plain_values,
    prepare,
    to_record,
)
from mirakl_connector.ledger.records import AccountMapping, PaymentMapping, PaymentMappingStatus
from mirakl_connector.ledger.sql import event, insert_events, one, select_by_keys


def account_mapping(row: Row) -> AccountMapping:
    """The mapping of an ``account_mappings`` row."""
    return from_row(AccountMapping, row)


class AccountMappingRepository(LedgerStore):
    """The ``account_mappings`` table: a shop's Stripe account, its KYC and onboarding."""

    def upsert_account_mapping(self, mapping: AccountMapping) -> AccountMapping:
        """Insert or replace the mapping of ``mapping.mirakl_shop_id``; return it as saved.

        :raises LedgerConflictError: the Stripe account is already mapped to another shop.
        """
        if not mapping.stripe_account_id:
            raise InvalidItemError("no Stripe account id", item_id=f"shop {mapping.mirakl_shop_id}")
        table = schema.account_mappings
        values = plain_values(mapping, exclude=("id", "created_at", "updated_at"))
        at = now()
        try:
            with self._writer.begin() as conn:
                old = one(
                    conn,
                    select(table)
                    .where(table.c.mirakl_shop_id == mapping.mirakl_shop_id)
                    .with_for_update(),
                )
                if old is None:
                    values["created_at"] = at
                    values["updated_at"] = at
                    row_id = conn.execute(
                        insert(table).values(values).returning(table.c.id)
                    ).scalar_one()
                else:
                    row_id = old["id"]
                    values["created_at"] = old["created_at"]
                    values["updated_at"] = at if changed(values, old) else old["updated_at"]
                    conn.execute(update(table).where(table.c.id == row_id).values(values))
        except IntegrityError as exc:
            other = self.account_mapping_by_stripe_account(mapping.stripe_account_id)
            owner = f"shop {other.mirakl_shop_id}" if other else "another shop"
            raise LedgerConflictError(
                f"Stripe account {mapping.stripe_account_id} is already mapped to {owner}; "
                f"cannot map it to shop {mapping.mirakl_shop_id}"
            ) from exc
        return AccountMapping(**{**values, "id": row_id})

    def account_mappings_by_shop(self, shop_ids: Iterable[int]) -> dict[int, AccountMapping]:
        """The mappings of the given shops that exist, keyed by shop id."""
        table = schema.account_mappings
        rows = self._read_chunked(
            shop_ids, lambda chunk: select(table).where(table.c.mirakl_shop_id.in_(chunk))
        )
        return {row["mirakl_shop_id"]: account_mapping(row) for row in rows}

    def account_mapping_by_stripe_account(self, account_id: str) -> AccountMapping | None:
        """The mapping of the Stripe account ``account_id`` (e.g. from a webhook), if any."""
        table = schema.account_mappings
        row = self._read_one(select(table).where(table.c.stripe_account_id == account_id))
        return account_mapping(row) if row is not None else None

    def account_mapping_by_onboarding_token(self, token: str) -> AccountMapping | None:
        """The mapping whose onboarding link carries ``token`` (the refresh URL), if any."""
        if not token:
            return None
        table = schema.account_mappings
        row = self._read_one(select(table).where(table.c.onboarding_token == token))
        return account_mapping(row) if row is not None else None

    def list_account_mappings(self) -> list[AccountMapping]:
        """Every mapping, by shop id."""
        table = schema.account_mappings
        with self._engine.connect() as conn:
            rows = conn.execute(select(table).order_by(table.c.mirakl_shop_id)).mappings().all()
        return [account_mapping(row) for row in rows]

    def shops_with_mappings_changed_since(self, since: datetime) -> list[int]:
        """The shops whose account mapping was created or changed (account mapped, KYC status,
        ignored flag) since ``since``: what a transfer ON_HOLD for its shop's account waits on."""
        table = schema.account_mappings
        return self._read_column(
            select(table.c.mirakl_shop_id)
            .where(table.c.updated_at >= since)
            .order_by(table.c.mirakl_shop_id)
        )


class PaymentMappingRepository(LedgerStore):
    """The ``payment_mappings`` table: a Stripe charge, its commercial order and its capture."""

    def upsert_payment_mapping(
        self, mapping: PaymentMapping, *, run_id: str | None = None
    ) -> PaymentMapping:
        """Insert or replace the mapping of ``mapping.stripe_charge_id``; return it as saved.

        A new mapping or a status change is written to the audit trail. As in ``save_*``, a
        copy read before the last :meth:`mark_payment_mapping_attempt` keeps the row's attempt
        columns.
        """
        if not mapping.stripe_charge_id:
            raise InvalidItemError(
                "no Stripe charge id", item_id=mapping.mirakl_commercial_order_id
            )
        key, values = prepare(PAYMENT_MAPPING, mapping)
        table = PAYMENT_MAPPING.table
        at = now()
        with self._writer.begin() as conn:
            old = select_by_keys(conn, PAYMENT_MAPPING, [key], for_update=True).get(key)
            if old is None:
                as_new_row(values, at)
                values["id"] = conn.execute(
                    insert(table).values(values).returning(table.c.id)
                ).scalar_one()
            else:
                merge_attempt(values, old)
                values["id"] = old["id"]
                values["created_at"] = old["created_at"]
                values["updated_at"] = at if changed(values, old) else old["updated_at"]
                conn.execute(update(table).where(table.c.id == old["id"]).values(values))
            old_status = old["status"] if old is not None else None
            if old_status != values["status"]:
                insert_events(
                    conn,
                    [event(PAYMENT_MAPPING.name, values["id"], old_status, values, run_id, at)],
                )
        return to_record(PAYMENT_MAPPING, values)

    def get_payment_mapping(self, stripe_charge_id: str) -> PaymentMapping | None:
        """The mapping of the Stripe charge or payment intent ``stripe_charge_id``, if any."""
        return self._get_by_ids(PAYMENT_MAPPING, [stripe_charge_id]).get(stripe_charge_id)

    def iter_payment_mappings(
        self, *, statuses: Iterable[PaymentMappingStatus], batch_size: int = 100
    ) -> Iterator[list[PaymentMapping]]:
        """Stream the mappings in ``statuses`` by id (see :meth:`iter_transfers`)."""
        return self._iter_statuses(PAYMENT_MAPPING, statuses, batch_size)

    def mark_payment_mapping_attempt(
        self, mapping: PaymentMapping, idempotency_key: str, *, run_id: str | None = None
    ) -> PaymentMapping:
        """Commit that a Stripe capture (or cancel) is about to be made with ``idempotency_key``.

        Same contract as :meth:`mark_transfer_attempt`; a mapping already ``captured`` or
        ``canceled`` is done and refused (:class:`LedgerConflictError`).
        """
        return self._mark_attempt(PAYMENT_MAPPING, mapping, idempotency_key, run_id)

    def payment_mappings_by_commercial_id(self, ids: Iterable[str]) -> dict[str, PaymentMapping]:
        """The mappings of the given Mirakl commercial orders, keyed by commercial order id.

        An order paid twice (a failed charge, then a new one) has several mappings: the most
        recently created one wins.
        """
        table = PAYMENT_MAPPING.table
        rows = self._read_chunked(
            ids,
            lambda chunk: (
                select(table)
                .where(table.c.mirakl_commercial_order_id.in_(chunk))
                .order_by(table.c.id)
            ),
        )
        return {row["mirakl_commercial_order_id"]: to_record(PAYMENT_MAPPING, row) for row in rows}

    def commercial_ids_with_payments_changed_since(self, since: datetime) -> list[str]:
        """The commercial orders whose payment mapping was recorded or changed since ``since``:
        what a transfer waiting for its customer's payment waits on."""
        table = PAYMENT_MAPPING.table
        return self._read_column(
            select(table.c.mirakl_commercial_order_id)
            .where(table.c.updated_at >= since, table.c.mirakl_commercial_order_id.is_not(None))
            .distinct()
            .order_by(table.c.mirakl_commercial_order_id)
        )
