"""Rolling back to the Stripe connector: tell its database what this connector moved meanwhile.

After the switch, our DAGs create transfers, reversals, refunds and payouts (and Stripe accounts
for new shops) that the incumbent's database knows nothing of. Restarted as it was, the incumbent
would re-read Mirakl from its old checkpoints and retry its old ON_HOLD and FAILED rows: it would
pay all of that again. This module writes the SQL that records our moves in its tables, for a
human to review and run there (we never write to its database):

* every ledger row with a Stripe id: the incumbent's row is set to ``*_CREATED`` with that id
  when it has none, or inserted when it has no row (rows it moved itself are left as they are);
* every account mapping it lacks: inserted, so it does not create a second account;
* its ``config`` checkpoints set to ours.

Statements are idempotent (``WHERE … IS NULL`` / ``WHERE NOT EXISTS``), in the incumbent's own
dialect (PostgreSQL with its ``*_id_seq`` sequences, or MySQL with auto-increment ids).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from mirakl_connector.core.batch import BatchSummary, ItemOutcome
from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.cutover.stripe_schema import CHECKPOINTS
from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.records import PayoutRecord, RefundRecord, TransferRecord

WORKFLOW = "stripe_connector_rollback"
DIALECTS = ("postgresql", "mysql")


def rollback_sql(ledger: Ledger, *, dialect: str = "postgresql") -> tuple[list[str], BatchSummary]:
    """The statements for the incumbent's database, and a summary counting them by kind."""
    if dialect not in DIALECTS:
        raise ConfigurationError(f"dialect must be one of {', '.join(DIALECTS)}, got {dialect!r}")
    summary = BatchSummary(WORKFLOW, "rollback_sql", dry_run=True)
    sql = _Sql(dialect)
    statements: list[str] = ["BEGIN;" if dialect == "postgresql" else "START TRANSACTION;"]
    for mapping in ledger.list_account_mappings():
        statements.append(
            sql.account_mapping(
                mapping.mirakl_shop_id,
                mapping.stripe_account_id,
                mapping.payouts_enabled,
                mapping.charges_enabled,
            )
        )
        summary.add(ItemOutcome(f"shop {mapping.mirakl_shop_id}", "ROLLBACK_ACCOUNT_MAPPING"))
    for transfer in ledger.iter_moved("transfer"):
        statements.extend(sql.transfer(transfer))
        summary.add(
            _outcome(
                "ROLLBACK_TRANSFER",
                f"{transfer.type} {transfer.mirakl_id}",
                transfer.amount,
                transfer.currency,
            )
        )
    for refund in ledger.iter_moved("refund"):
        statements.extend(sql.refund(refund))
        summary.add(
            _outcome("ROLLBACK_REFUND", refund.mirakl_refund_id, refund.amount, refund.currency)
        )
    for payout in ledger.iter_moved("payout"):
        statements.extend(sql.payout(payout))
        summary.add(
            _outcome("ROLLBACK_PAYOUT", payout.mirakl_invoice_id, payout.amount, payout.currency)
        )
    for ours, keys in CHECKPOINTS.items():
        value = ledger.get_checkpoint(ours)
        if value:
            statements.extend(sql.config(keys[0], value))
            summary.add(ItemOutcome(f"checkpoint {keys[0]}", "ROLLBACK_CHECKPOINT", value))
    statements.append("COMMIT;")
    summary.notes.append(
        f"{len(statements) - 2} statement(s) for the Stripe connector's {dialect} database: "
        "review them, run them there, then restart its crontab and workers"
    )
    return statements, summary


def _outcome(status: str, item: str, amount: int | None, currency: str | None) -> ItemOutcome:
    return ItemOutcome(item, status, None, amount, currency)


class _Sql:
    def __init__(self, dialect: str) -> None:
        self.pg = dialect == "postgresql"
        self.key = '"key"' if self.pg else "`key`"

    def _id(self, table: str) -> tuple[str, str]:
        """(column list prefix, value prefix) giving a new row its id."""
        if self.pg:
            return "id, ", f"nextval('{table}_id_seq'), "
        return "", ""  # AUTO_INCREMENT

    def account_mapping(self, shop_id: int, account: str, payouts: bool, charges: bool) -> str:
        return self._insert_missing(
            "account_mapping",
            "mirakl_shop_id, stripe_account_id, payout_enabled, payin_enabled, ignored",
            f"{int(shop_id)}, {_q(account)}, {_bool(payouts, self.pg)}, "
            f"{_bool(charges, self.pg)}, {_bool(False, self.pg)}",
            f"mirakl_shop_id = {int(shop_id)}",
        )

    def _mapping_of(self, account: str | None) -> str:
        if not account:
            return "NULL"
        return f"(SELECT id FROM account_mapping WHERE stripe_account_id = {_q(account)})"

    def _insert_missing(self, table: str, columns: str, values: str, where: str) -> str:
        """Insert one row into ``table`` unless a row matches ``where``: ``INSERT … SELECT …
        WHERE NOT EXISTS``, which both dialects read (no upsert syntax of either)."""
        col, val = self._id(table)
        from_dual = "" if self.pg else "FROM DUAL "
        return (
            f"INSERT INTO {table} ({col}{columns}) SELECT {val}{values} "
            f"{from_dual}WHERE NOT EXISTS (SELECT 1 FROM {table} WHERE {where});"
        )

    def _created(self, table: str, status: str, id_column: str, object_id: str | None,
                 where: str, *, also: str = "") -> str:  # fmt: skip
        """Mark the incumbent's row of ``where`` as moved (``status``, our provider id), unless
        it already has an id of its own; ``also``: more ``column = value, `` to set."""
        return (
            f"UPDATE {table} SET status = '{status}', {id_column} = {_q(object_id)}, {also}"
            f"status_reason = NULL WHERE {where} AND {id_column} IS NULL;"
        )

    def transfer(self, t: TransferRecord) -> Iterator[str]:
        where = f"type = {_q(str(t.type))} AND mirakl_id = {_q(t.mirakl_id)}"
        yield self._created(
            "stripe_transfer", "TRANSFER_CREATED", "transfer_id", t.transfer_id, where
        )
        account = t.destination_account or t.source_account
        yield self._insert_missing(
            "stripe_transfer",
            "type, mirakl_id, account_mapping_id, transfer_id, transaction_id, amount, currency, "
            "status, mirakl_created_date",
            f"{_q(str(t.type))}, {_q(t.mirakl_id)}, {self._mapping_of(account)}, "
            f"{_q(t.transfer_id)}, {_q(t.transaction_id)}, {_int(t.amount)}, "
            f"{_q(_lower(t.currency))}, 'TRANSFER_CREATED', "
            f"{_q(_timestamp(t.mirakl_created_date))}",
            where,
        )

    def refund(self, r: RefundRecord) -> Iterator[str]:
        where = f"mirakl_refund_id = {_q(r.mirakl_refund_id)}"
        validated = _q(_stamp(r.mirakl_validated_at))
        yield self._created(
            "stripe_refund", "REFUND_CREATED", "stripe_refund_id", r.stripe_refund_id, where,
            also=f"mirakl_validation_time = {validated}, ",
        )  # fmt: skip
        yield self._insert_missing(
            "stripe_refund",
            "type, mirakl_refund_id, mirakl_order_id, mirakl_order_line_id, "
            "mirakl_commercial_order_id, transaction_id, stripe_refund_id, amount, currency, "
            "status, mirakl_validation_time",
            f"{_q(str(r.type))}, {_q(r.mirakl_refund_id)}, {_q(r.mirakl_order_id or '')}, "
            f"{_q(r.mirakl_order_line_id)}, {_q(r.mirakl_commercial_order_id)}, "
            f"{_q(r.transaction_id)}, {_q(r.stripe_refund_id)}, {_int(r.amount or 0)}, "
            f"{_q(_lower(r.currency) or '')}, 'REFUND_CREATED', {validated}",
            where,
        )

    def payout(self, p: PayoutRecord) -> Iterator[str]:
        where = f"mirakl_invoice_id = {_int(_invoice_number(p.mirakl_invoice_id))}"
        yield self._created("stripe_payout", "PAYOUT_CREATED", "payout_id", p.payout_id, where)
        yield self._insert_missing(
            "stripe_payout",
            "account_mapping_id, mirakl_invoice_id, payout_id, amount, currency, status, "
            "mirakl_created_date",
            f"{self._mapping_of(p.stripe_account_id)}, "
            f"{_int(_invoice_number(p.mirakl_invoice_id))}, {_q(p.payout_id)}, {_int(p.amount)}, "
            f"{_q(_lower(p.currency))}, 'PAYOUT_CREATED', "
            f"{_q(_timestamp(p.mirakl_created_date) or '1970-01-01 00:00:00')}",
            where,
        )

    def config(self, key: str, value: str) -> Iterator[str]:
        yield f"UPDATE config SET value = {_q(value)} WHERE {self.key} = {_q(key)};"
        yield self._insert_missing(
            "config", f"{self.key}, value", f"{_q(key)}, {_q(value)}", f"{self.key} = {_q(key)}"
        )


def _q(value: str | None) -> str:
    """A SQL string literal. Backslashes are refused rather than escaped per dialect (MySQL
    reads them as escapes, PostgreSQL does not): no Mirakl or Stripe id contains one."""
    if value is None:
        return "NULL"
    text = str(value)
    if "\\" in text:
        raise ConfigurationError(f"refusing to write {text!r} into SQL: it contains a backslash")
    return "'" + text.replace("'", "''") + "'"


def _int(value: int | None) -> str:
    return "NULL" if value is None else str(int(value))


def _bool(value: bool, pg: bool) -> str:
    if pg:
        return "true" if value else "false"
    return "1" if value else "0"


def _lower(value: str | None) -> str | None:
    return value.lower() if value else value


def _invoice_number(invoice_id: str) -> int:
    try:
        return int(invoice_id)
    except ValueError:
        raise ConfigurationError(
            f"invoice {invoice_id!r} is not numeric: the Stripe connector keys payouts by an "
            "integer invoice id"
        ) from None


def _stamp(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else None


def _timestamp(mirakl_date: str | None) -> str | None:
    """A Mirakl date as the incumbent's ``TIMESTAMP`` (UTC, no zone)."""
    if not mirakl_date:
        return None
    from datetime import UTC

    from mirakl_connector.mirakl.orders import parse_mirakl_datetime

    try:
        return _stamp(parse_mirakl_datetime(mirakl_date).astimezone(UTC))
    except Exception:  # noqa: BLE001 - an unreadable date is left out, not guessed
        return None
