"""Import the history of the Stripe Connector for Mirakl into the ledger (cutover).

The incumbent keeps its state in a Doctrine database (PostgreSQL, or MySQL for some installs).
Its schema, as its migrations leave it (``src/Migrations/Version2019…`` to ``Version20221031…``):

``account_mapping`` (was ``mirakl_stripe_mapping`` before ``Version20200929100110``)
    ``id``, ``mirakl_shop_id``, ``stripe_account_id``, ``payout_enabled``, ``payin_enabled``,
    ``disabled_reason``, ``onboarding_token`` (``Version20220201185936``), ``ignored``
    (``Version20221031140741``).
``stripe_transfer`` (``Version20191007085721``)
    ``id``, ``mirakl_id``, ``type``, ``account_mapping_id`` (was ``mirakl_stripe_mapping_id``),
    ``transfer_id``, ``transaction_id`` (``Version20191008133232``), ``amount``, ``currency``,
    ``status``, ``status_reason`` (was ``failed_reason``), ``mirakl_created_date`` (was
    ``mirakl_update_time``; both renamed in ``Version20201216133324``); unique
    ``(type, mirakl_id)``.
``stripe_refund`` (was ``mirakl_refund``, ``Version20200329141302`` / ``Version20200929091654``)
    ``id``, ``type`` (``Version20201601191812``), ``amount``, ``currency``, ``mirakl_refund_id``,
    ``mirakl_order_id``, ``mirakl_order_line_id``, ``mirakl_commercial_order_id``,
    ``transaction_id``, ``stripe_refund_id``, ``status``, ``status_reason``,
    ``mirakl_validation_time``.
``stripe_payout`` (``Version20191007085721``)
    ``id``, ``account_mapping_id``, ``amount``, ``currency``, ``mirakl_invoice_id``, ``payout_id``
    (was ``stripe_payout_id``), ``status``, ``status_reason`` (was ``failed_reason``),
    ``mirakl_created_date`` (was ``mirakl_update_time``).
``payment_mapping`` (was ``stripe_payment`` then ``stripe_charge``)
    ``id``, ``mirakl_commercial_order_id`` (was ``mirakl_order_id``), ``stripe_charge_id`` (was
    ``stripe_payment_id``), ``status``, ``stripe_amount``.
``config`` (``Version20201216133324``)
    ``key``, ``value``: the checkpoints ``product_payment_split_checkpoint``,
    ``service_payment_split_checkpoint``, ``seller_settlement_checkpoint``,
    ``seller_onboarding_checkpoint`` (before ``Version20201601191812``:
    ``process_transfer_checkpoint`` and ``process_payout_checkpoint``).

Tables and columns are reflected, and each logical column is looked up under its current name,
then its older names: an older install is read as well, and what it lacks is reported.

Statuses are the incumbent's own names (our ledger kept them), with three rules that protect the
money:

* a row with a provider id (``transfer_id``, ``stripe_refund_id``, ``payout_id``) is money that
  moved: it is imported with that id, so no workflow of ours sends it again;
* a row PENDING *without* a provider id was handed to the incumbent's worker, which may have
  called Stripe and died before writing the id (it sent no idempotency key, so nothing at Stripe
  can tell). It is imported *held*: ``*_ABORTED`` with a reason starting with
  :data:`HELD_PREFIX`, so no workflow sends it and Mirakl's copy of it is never picked up as new.
  It is reported as HELD (a failure the operator must settle); once the incumbent's row has an id
  or a final status, the next import replaces the held row;
* a refund the incumbent refunded in Stripe but did not validate in Mirakl keeps its ``re_`` id
  and stays PENDING: our refund step only validates it (PA02 / SPA02).

Re-running changes nothing: a row already in the ledger is left as it is (our workflows may have
moved it on), unless the incumbent has since moved the money (its row gained a provider id while
ours has none and was never attempted) or settled a held row. A provider id that differs from
ours is a CONFLICT, reported, never overwritten.

Checkpoints only move forward: the incumbent's value is taken when we have none or an older one.
A checkpoint the incumbent never wrote is reported (that workflow never ran there: the go-live
instant decides our first run).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, MetaData, Table, create_engine, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from mirakl_connector.core.batch import BatchSummary, ItemOutcome, chunked
from mirakl_connector.core.errors import ConfigurationError, InvalidItemError
from mirakl_connector.cutover import STRIPE_CONNECTOR, text_or_none
from mirakl_connector.cutover.claims import claim_imported
from mirakl_connector.ledger import Ledger, LedgerConflictError
from mirakl_connector.ledger.records import (
    TAX_SUFFIX,
    AccountMapping,
    PaymentMapping,
    PaymentMappingStatus,
    PayoutRecord,
    PayoutStatus,
    RefundRecord,
    RefundStatus,
    RefundType,
    TransferRecord,
    TransferStatus,
    TransferType,
)
from mirakl_connector.mirakl.orders import parse_mirakl_datetime
from mirakl_connector.operations.payout_provider import STRIPE
from mirakl_connector.stripe.currency import Operation, from_api

log = logging.getLogger(__name__)

WORKFLOW = "stripe_connector_cutover"
CHUNK_SIZE = 500

#: Start of the reason of a row imported *held* (PENDING at the incumbent, no provider id).
HELD_PREFIX = "Held at import"

# -- the incumbent's schema: logical name → table names, columns → names (newest first) -------


@dataclass(frozen=True)
class OldTable:
    """A table of the incumbent, by its current name and older ones, with the columns we read."""

    name: str
    names: tuple[str, ...]
    columns: Mapping[str, tuple[str, ...]]
    required: frozenset[str]


ACCOUNT_MAPPING = OldTable(
    "account_mapping",
    ("account_mapping", "mirakl_stripe_mapping"),
    {
        "id": ("id",),
        "mirakl_shop_id": ("mirakl_shop_id",),
        "stripe_account_id": ("stripe_account_id",),
        "payout_enabled": ("payout_enabled",),
        "payin_enabled": ("payin_enabled",),
        "disabled_reason": ("disabled_reason",),
        "onboarding_token": ("onboarding_token",),
        "ignored": ("ignored",),
    },
    frozenset({"id", "mirakl_shop_id", "stripe_account_id"}),
)
STRIPE_TRANSFER = OldTable(
    "stripe_transfer",
    ("stripe_transfer",),
    {
        "id": ("id",),
        "mirakl_id": ("mirakl_id",),
        "type": ("type",),
        "status": ("status",),
        "account_mapping_id": ("account_mapping_id", "mirakl_stripe_mapping_id"),
        "transfer_id": ("transfer_id",),
        "transaction_id": ("transaction_id",),
        "amount": ("amount",),
        "currency": ("currency",),
        "status_reason": ("status_reason", "failed_reason"),
        "mirakl_created_date": ("mirakl_created_date", "mirakl_update_time"),
    },
    frozenset({"id", "mirakl_id", "type", "status"}),
)
STRIPE_REFUND = OldTable(
    "stripe_refund",
    ("stripe_refund", "mirakl_refund"),
    {
        "id": ("id",),
        "mirakl_refund_id": ("mirakl_refund_id",),
        "type": ("type",),
        "status": ("status",),
        "amount": ("amount",),
        "currency": ("currency",),
        "mirakl_order_id": ("mirakl_order_id",),
        "mirakl_order_line_id": ("mirakl_order_line_id",),
        "mirakl_commercial_order_id": ("mirakl_commercial_order_id",),
        "transaction_id": ("transaction_id",),
        "stripe_refund_id": ("stripe_refund_id",),
        "status_reason": ("status_reason", "failed_reason"),
        "mirakl_validation_time": ("mirakl_validation_time",),
        "modification_datetime": ("modification_datetime",),
    },
    frozenset({"id", "mirakl_refund_id", "status"}),
)
STRIPE_PAYOUT = OldTable(
    "stripe_payout",
    ("stripe_payout",),
    {
        "id": ("id",),
        "mirakl_invoice_id": ("mirakl_invoice_id",),
        "status": ("status",),
        "account_mapping_id": ("account_mapping_id", "mirakl_stripe_mapping_id"),
        "payout_id": ("payout_id", "stripe_payout_id"),
        "amount": ("amount",),
        "currency": ("currency",),
        "status_reason": ("status_reason", "failed_reason"),
        "mirakl_created_date": ("mirakl_created_date", "mirakl_update_time"),
    },
    frozenset({"id", "mirakl_invoice_id", "status"}),
)
PAYMENT_MAPPING = OldTable(
    "payment_mapping",
    ("payment_mapping", "stripe_charge", "stripe_payment"),
    {
        "id": ("id",),
        "stripe_charge_id": ("stripe_charge_id", "stripe_payment_id"),
        "mirakl_commercial_order_id": ("mirakl_commercial_order_id", "mirakl_order_id"),
        "status": ("status",),
        "stripe_amount": ("stripe_amount",),
    },
    frozenset({"id", "stripe_charge_id", "status"}),
)
CONFIG = OldTable(
    "config",
    ("config",),
    {"key": ("key",), "value": ("value",)},
    frozenset({"key"}),
)
OLD_TABLES = (ACCOUNT_MAPPING, STRIPE_TRANSFER, STRIPE_REFUND, STRIPE_PAYOUT, PAYMENT_MAPPING)

#: Our checkpoint ← the incumbent's config keys (current name first, pre-2.0 name after).
CHECKPOINTS: dict[str, tuple[str, ...]] = {
    "product_payment_split_checkpoint": (
        "product_payment_split_checkpoint",
        "process_transfer_checkpoint",
    ),
    "service_payment_split_checkpoint": ("service_payment_split_checkpoint",),
    "seller_settlement_checkpoint": ("seller_settlement_checkpoint", "process_payout_checkpoint"),
    "seller_onboarding_checkpoint": ("seller_onboarding_checkpoint",),
}

_TRANSFER_TYPES = {t.value: t for t in TransferType} | {
    "TRANSFER_ORDER": TransferType.PRODUCT_ORDER
}
_TRANSFER_STATUSES = {s.value: s for s in TransferStatus} | {
    "TRANSFER_INVALID_AMOUNT": TransferStatus.ABORTED  # before 2.0 (Version20201216133324)
}
_REFUND_STATUSES = {s.value: s for s in RefundStatus}
_REFUND_TYPES = {t.value: t for t in RefundType}
_PAYOUT_STATUSES = {s.value: s for s in PayoutStatus}
_PAYMENT_STATUSES = {s.value: s for s in PaymentMappingStatus}


class NotMapped(Exception):
    """An incumbent row that cannot be expressed in the ledger; the reason says why."""


# -- reading the incumbent's database ---------------------------------------------------------


class OldConnectorDatabase:
    """Read-only access to the incumbent's tables, whatever version of its schema they are at.

    :param url: SQLAlchemy URL (contains the password: never logged; :attr:`url` is masked).
    :param timezone: the zone of its ``TIMESTAMP WITHOUT TIME ZONE`` values (PHP's default
        zone on the incumbent's servers; UTC unless they changed it).
    """

    def __init__(self, url: str, *, timezone: str = "UTC") -> None:
        self._url = make_url(url)
        try:
            self.timezone: tzinfo = ZoneInfo(timezone)
        except Exception:  # noqa: BLE001 - any unknown zone name
            raise ConfigurationError(
                f"unknown time zone {timezone!r} for the old database"
            ) from None
        self._engine: Engine = create_engine(self._url, pool_pre_ping=True)
        self.notes: list[str] = []
        try:
            self._table_names = set(inspect(self._engine).get_table_names())
        except SQLAlchemyError as exc:
            self._engine.dispose()
            raise ConfigurationError(
                f"Cannot read the Stripe connector's database {self.url}: "
                f"{type(exc.orig or exc).__name__}: {_first_line(exc.orig or exc)}"
            ) from None
        self._tables: dict[str, tuple[Table, dict[str, str]] | None] = {}

    @property
    def url(self) -> str:
        return self._url.render_as_string(hide_password=True)

    def dispose(self) -> None:
        self._engine.dispose()

    def _resolve(self, spec: OldTable) -> tuple[Table, dict[str, str]] | None:
        """The reflected table of ``spec`` and ``{logical column: actual column}``; None: absent."""
        if spec.name in self._tables:
            return self._tables[spec.name]
        name = next((n for n in spec.names if n in self._table_names), None)
        if name is None:
            self.notes.append(
                f"table {spec.name} not found (looked for {', '.join(spec.names)}): nothing "
                "imported from it"
            )
            self._tables[spec.name] = None
            return None
        if name != spec.name:
            self.notes.append(f"table {spec.name} read from its older name {name}")
        table = Table(name, MetaData(), autoload_with=self._engine)
        present = {c.name for c in table.columns}
        columns: dict[str, str] = {}
        for logical, candidates in spec.columns.items():
            actual = next((c for c in candidates if c in present), None)
            if actual is None:
                if logical in spec.required:
                    raise ConfigurationError(
                        f"table {name} of the Stripe connector has no {logical} column: this "
                        "is not a schema we know (looked for "
                        f"{', '.join(candidates)})"
                    )
                self.notes.append(
                    f"{name}.{logical} missing (older connector version): read as empty"
                )
                continue
            if actual != logical:
                self.notes.append(f"{name}.{logical} read from its older name {actual}")
            columns[logical] = actual
        self._tables[spec.name] = (table, columns)
        return self._tables[spec.name]

    def count(self, spec: OldTable) -> int:
        from sqlalchemy import func

        resolved = self._resolve(spec)
        if resolved is None:
            return 0
        table, _ = resolved
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    def rows(self, spec: OldTable) -> Iterator[dict[str, Any]]:
        """Every row of ``spec`` as ``{logical column: value}`` (missing columns: None), by id."""
        resolved = self._resolve(spec)
        if resolved is None:
            return
        table, columns = resolved
        selected = [table.c[actual].label(logical) for logical, actual in columns.items()]
        stmt = select(*selected)
        if "id" in columns:
            stmt = stmt.order_by(table.c[columns["id"]])
        with self._engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=CHUNK_SIZE).execute(stmt)
            for row in result.mappings():
                values = {logical: None for logical in spec.columns}
                values.update(row)
                yield values

    def config(self) -> dict[str, str | None]:
        """The incumbent's ``config`` table as ``{key: value}``."""
        return {str(r["key"]): r["value"] for r in self.rows(CONFIG)}

    def aware(self, value: Any) -> datetime | None:
        """A stored timestamp as an aware UTC datetime (naive ones are in :attr:`timezone`)."""
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.timezone)
        return value.astimezone(UTC)


# -- mapping one incumbent row to a ledger record (pure) --------------------------------------


def map_account_mapping(row: Mapping[str, Any]) -> AccountMapping:
    shop_id = _int(row["mirakl_shop_id"], "mirakl_shop_id")
    account = _text(row["stripe_account_id"])
    if not account:
        raise NotMapped("no stripe_account_id")
    return AccountMapping(
        mirakl_shop_id=shop_id,
        stripe_account_id=account,
        payouts_enabled=bool(row["payout_enabled"]),
        charges_enabled=bool(row["payin_enabled"]),
        ignored=bool(row["ignored"]),
        disabled_reason=_text(row["disabled_reason"]),
        onboarding_token=_text(row["onboarding_token"]),
    )


def map_transfer(
    row: Mapping[str, Any],
    accounts: Mapping[int, AccountMapping],
    aware: Callable[[Any], datetime | None],
) -> TransferRecord:
    """The ledger transfer of an incumbent ``stripe_transfer`` row (:class:`NotMapped` if none).

    :param accounts: the incumbent's account mappings by their (old) row id.
    """
    old_type = _text(row["type"]) or ""
    transfer_type = _TRANSFER_TYPES.get(old_type)
    if transfer_type is None:
        raise NotMapped(f"unknown transfer type {old_type!r}")
    old_status = _text(row["status"]) or ""
    status = _TRANSFER_STATUSES.get(old_status)
    mirakl_id = _text(row["mirakl_id"])
    if not mirakl_id:
        raise NotMapped("no mirakl_id")
    transfer_id = _text(row["transfer_id"])
    reason = _text(row["status_reason"])
    account = accounts.get(row["account_mapping_id"]) if row["account_mapping_id"] else None
    if transfer_id:
        if status is not TransferStatus.CREATED:
            reason = f"Imported as created: the Stripe connector had {transfer_id} ({old_status})"
        else:
            reason = None
        status = TransferStatus.CREATED
    elif status is None:
        raise NotMapped(f"unknown transfer status {old_status!r}")
    elif status is TransferStatus.CREATED:
        raise NotMapped("TRANSFER_CREATED without a transfer_id: check Stripe by hand")
    elif status is TransferStatus.PENDING:
        status, reason = TransferStatus.ABORTED, _held_reason("transfer", "transfer_id", mirakl_id)
    seller = account.stripe_account_id if account else None
    seller_to_platform = transfer_type in (TransferType.SUBSCRIPTION, TransferType.EXTRA_INVOICES)
    return TransferRecord(
        type=transfer_type,
        mirakl_id=mirakl_id,
        status=status,
        status_reason=reason,
        mirakl_shop_id=account.mirakl_shop_id if account else None,
        destination_account=None
        if seller_to_platform or transfer_type is TransferType.REFUND
        else seller,
        source_account=seller if seller_to_platform else None,
        transaction_id=_text(row["transaction_id"]),
        transfer_id=transfer_id,
        amount=_amount(
            row["amount"],
            row["currency"],
            Operation.REVERSAL if transfer_type is TransferType.REFUND else Operation.TRANSFER,
        ),
        currency=_currency(row["currency"]),
        mirakl_created_date=_date_text(aware(row["mirakl_created_date"])),
    )


def map_refund(row: Mapping[str, Any], aware: Callable[[Any], datetime | None]) -> RefundRecord:
    """The ledger refund of an incumbent ``stripe_refund`` row (:class:`NotMapped` if none)."""
    refund_id = _text(row["mirakl_refund_id"])
    if not refund_id:
        raise NotMapped("no mirakl_refund_id")
    old_status = _text(row["status"]) or ""
    status = _REFUND_STATUSES.get(old_status)
    if status is None:
        raise NotMapped(f"unknown refund status {old_status!r}")
    old_type = _text(row["type"]) or RefundType.PRODUCT_ORDER.value
    refund_type = _REFUND_TYPES.get(old_type)
    if refund_type is None:
        raise NotMapped(f"unknown refund type {old_type!r}")
    stripe_refund_id = _text(row["stripe_refund_id"])
    reason = _text(row["status_reason"])
    validated_at = None
    if status is RefundStatus.CREATED:
        if not stripe_refund_id:
            raise NotMapped("REFUND_CREATED without a stripe_refund_id: check Stripe by hand")
        validated_at = aware(row["mirakl_validation_time"]) or aware(row["modification_datetime"])
        validated_at = validated_at or datetime.now(UTC)
    elif status is RefundStatus.PENDING and not stripe_refund_id:
        status, reason = RefundStatus.ABORTED, _held_reason("refund", "stripe_refund_id", refund_id)
    return RefundRecord(
        mirakl_refund_id=refund_id,
        type=refund_type,
        status=status,
        status_reason=reason,
        amount=_amount(row["amount"], row["currency"], Operation.REFUND),
        currency=_currency(row["currency"]),
        mirakl_commercial_order_id=_text(row["mirakl_commercial_order_id"]),
        mirakl_order_id=_text(row["mirakl_order_id"]),
        mirakl_order_line_id=_text(row["mirakl_order_line_id"]),
        transaction_id=_text(row["transaction_id"]),
        stripe_refund_id=stripe_refund_id,
        mirakl_validated_at=validated_at,
    )


def map_payout(
    row: Mapping[str, Any],
    accounts: Mapping[int, AccountMapping],
    aware: Callable[[Any], datetime | None],
) -> PayoutRecord:
    """The ledger payout of an incumbent ``stripe_payout`` row (:class:`NotMapped` if none)."""
    invoice_id = _text(row["mirakl_invoice_id"])
    if not invoice_id:
        raise NotMapped("no mirakl_invoice_id")
    old_status = _text(row["status"]) or ""
    status = _PAYOUT_STATUSES.get(old_status)
    if status is None:
        raise NotMapped(f"unknown payout status {old_status!r}")
    payout_id = _text(row["payout_id"])
    reason = _text(row["status_reason"])
    if payout_id and status is PayoutStatus.PENDING:
        status, reason = PayoutStatus.CREATED, None
    elif status is PayoutStatus.CREATED and not payout_id:
        raise NotMapped("PAYOUT_CREATED without a payout_id: check Stripe by hand")
    elif status is PayoutStatus.PENDING:
        status, reason = PayoutStatus.ABORTED, _held_reason("payout", "payout_id", invoice_id)
    account = accounts.get(row["account_mapping_id"]) if row["account_mapping_id"] else None
    return PayoutRecord(
        mirakl_invoice_id=invoice_id,
        status=status,
        status_reason=reason,
        mirakl_shop_id=account.mirakl_shop_id if account else None,
        stripe_account_id=account.stripe_account_id if account else None,
        amount=_amount(row["amount"], row["currency"], Operation.PAYOUT),
        currency=_currency(row["currency"]),
        payout_id=payout_id,
        mirakl_created_date=_date_text(aware(row["mirakl_created_date"])),
    )


def map_payment_mapping(row: Mapping[str, Any]) -> PaymentMapping:
    charge = _text(row["stripe_charge_id"])
    if not charge:
        raise NotMapped("no stripe_charge_id")
    old_status = _text(row["status"]) or ""
    status = _PAYMENT_STATUSES.get(old_status)
    if status is None:
        raise NotMapped(f"unknown payment mapping status {old_status!r}")
    return PaymentMapping(
        stripe_charge_id=charge,
        mirakl_commercial_order_id=_text(row["mirakl_commercial_order_id"]),
        status=status,
        # The incumbent's payment_mapping has no currency: its amount is kept as stored (in
        # Stripe's unit, the same as ISO minor units but for MGA, ISK and the like).
        stripe_amount=_amount(row["stripe_amount"]),
        captured_amount=_amount(row["stripe_amount"])
        if status is PaymentMappingStatus.CAPTURED
        else None,
    )


def is_held(record: Any) -> bool:
    """True for a row imported held (PENDING at the incumbent without a provider id)."""
    return bool(record.status_reason and record.status_reason.startswith(HELD_PREFIX))


_HELD_LOOKUP = {
    "transfer": "a transfer with metadata miraklId={item}",
    "refund": "a refund with metadata miraklRefundId={item}",
    "payout": "a payout on the seller's account with metadata invoiceId={item}",
}


def _held_reason(kind: str, id_name: str, item: str) -> str:
    lookup = _HELD_LOOKUP[kind].format(item=item)
    return (
        f"{HELD_PREFIX}: the Stripe connector had this {kind} PENDING without a {id_name}; its "
        f"worker may have sent it (look for {lookup} in Stripe). Let its workers finish or "
        "settle the row there, then import again; never sent from here"
    )


# -- the import ---------------------------------------------------------------------------------


@dataclass
class _Kind:
    """How one incumbent table is imported."""

    label: str  # outcome prefix: TRANSFER, REFUND, PAYOUT, PAYMENT_MAPPING
    ledger_kind: str  # Ledger.save_imported kind
    provider_id: str | None
    table: OldTable
    key: Callable[[Any], str]
    existing: Callable[[Ledger, list[Any]], dict[str, Any]]
    item_id: Callable[[Any], str]
    raw_key: str  # the incumbent's column naming the item, for rows that cannot be mapped


class StripeConnectorImport:
    """Fill the ledger from the incumbent's database; see the module docstring.

    :param source: the incumbent's database.
    :param ledger: our ledger.
    :param run_id: written on the audit events of the imported rows.
    """

    def __init__(
        self, *, source: OldConnectorDatabase, ledger: Ledger, run_id: str | None = None
    ) -> None:
        self.source = source
        self.ledger = ledger
        self.run_id = run_id or "cutover-import"
        self._held_refunds: set[str] = set()

    def run(self, *, dry_run: bool = True) -> BatchSummary:
        """Import everything (or, in a dry run, say what would be imported); return the report."""
        summary = BatchSummary(WORKFLOW, "import", dry_run=dry_run)
        accounts = self._import_account_mappings(summary, dry_run=dry_run)
        aware = self.source.aware
        kinds = [
            (
                _Kind(
                    "PAYMENT_MAPPING",
                    "payment_mapping",
                    None,
                    PAYMENT_MAPPING,
                    lambda r: r.stripe_charge_id,
                    lambda ledger, keys: {
                        k: m for k in keys if (m := ledger.get_payment_mapping(k)) is not None
                    },
                    lambda r: f"payment mapping {r.stripe_charge_id}",
                    "stripe_charge_id",
                ),
                map_payment_mapping,
            ),
            (
                _Kind(
                    "REFUND",
                    "refund",
                    "stripe_refund_id",
                    STRIPE_REFUND,
                    lambda r: r.mirakl_refund_id,
                    lambda ledger, keys: ledger.get_refunds(keys),
                    lambda r: f"refund {r.mirakl_refund_id}",
                    "mirakl_refund_id",
                ),
                lambda row: self._note_held_refund(map_refund(row, aware)),
            ),
            (
                _Kind(
                    "TRANSFER",
                    "transfer",
                    "transfer_id",
                    STRIPE_TRANSFER,
                    lambda r: f"{r.type}/{r.mirakl_id}",
                    _existing_transfers,
                    lambda r: f"transfer {r.type} {r.mirakl_id}",
                    "mirakl_id",
                ),
                lambda row: self._hold_reversal_of_held_refund(map_transfer(row, accounts, aware)),
            ),
            (
                _Kind(
                    "PAYOUT",
                    "payout",
                    "payout_id",
                    STRIPE_PAYOUT,
                    lambda r: r.mirakl_invoice_id,
                    lambda ledger, keys: ledger.get_payouts(keys),
                    lambda r: f"payout of invoice {r.mirakl_invoice_id}",
                    "mirakl_invoice_id",
                ),
                lambda row: map_payout(row, accounts, aware),
            ),
        ]
        for kind, mapper in kinds:
            self._import_rows(kind, mapper, summary, dry_run=dry_run)
        self._import_checkpoints(summary, dry_run=dry_run)
        summary.notes.extend(self.source.notes)
        log.info("%s", summary.describe())
        return summary

    def _note_held_refund(self, refund: RefundRecord) -> RefundRecord:
        if is_held(refund):
            self._held_refunds.add(refund.mirakl_refund_id)
        return refund

    def _hold_reversal_of_held_refund(self, transfer: TransferRecord) -> TransferRecord:
        """A reversal whose refund is held is held too: deciding it now would abort it for good
        ("refund aborted") although the incumbent may have refunded the customer."""
        refund_id = transfer.mirakl_id.removesuffix(TAX_SUFFIX)
        if (
            transfer.type is TransferType.REFUND
            and transfer.transfer_id is None
            and refund_id in self._held_refunds
        ):
            reason = (
                f"{HELD_PREFIX}: its refund {refund_id} is held (PENDING at the Stripe connector "
                "without a refund id); imported again once that refund is settled there"
            )
            return replace(transfer, status=TransferStatus.ABORTED, status_reason=reason)
        return transfer

    # -- account mappings -----------------------------------------------------------------

    def _import_account_mappings(
        self, summary: BatchSummary, *, dry_run: bool
    ) -> dict[int, AccountMapping]:
        """Import the mappings; return every old mapping by its old row id (for the joins)."""
        by_old_id: dict[int, AccountMapping] = {}
        read = 0
        for rows in chunked(self.source.rows(ACCOUNT_MAPPING), CHUNK_SIZE):
            read += len(rows)
            mapped: list[tuple[dict[str, Any], AccountMapping]] = []
            for row in rows:
                item = f"account mapping of shop {row['mirakl_shop_id']} (old #{row['id']})"
                try:
                    mapping = map_account_mapping(row)
                except (NotMapped, InvalidItemError) as exc:
                    summary.add(_not_mapped("ACCOUNT_MAPPING", item, exc))
                    continue
                by_old_id[row["id"]] = mapping
                mapped.append((row, mapping))
            existing = self.ledger.account_mappings_by_shop(m.mirakl_shop_id for _, m in mapped)
            for row, mapping in mapped:
                item = f"account mapping of shop {mapping.mirakl_shop_id} (old #{row['id']})"
                ours = existing.get(mapping.mirakl_shop_id)
                if ours is not None:
                    if ours.stripe_account_id != mapping.stripe_account_id:
                        reason = (
                            f"shop {mapping.mirakl_shop_id} is mapped here to "
                            f"{ours.stripe_account_id}, at the Stripe connector to "
                            f"{mapping.stripe_account_id}: settle which account is the seller's"
                        )
                        summary.add(
                            ItemOutcome(item, "ACCOUNT_MAPPING_CONFLICT", reason, failed=True)
                        )
                    else:
                        summary.add(ItemOutcome(item, "ACCOUNT_MAPPING_UNCHANGED"))
                    continue
                if not dry_run:
                    try:
                        self.ledger.upsert_account_mapping(mapping)
                    except LedgerConflictError as exc:
                        summary.add(
                            ItemOutcome(item, "ACCOUNT_MAPPING_CONFLICT", str(exc), failed=True)
                        )
                        continue
                    self.ledger.mark_account_mapping_imported(
                        mapping.mirakl_shop_id, source=STRIPE_CONNECTOR, old_id=str(row["id"])
                    )
                summary.add(ItemOutcome(item, "ACCOUNT_MAPPING_IMPORTED"))
        summary.notes.append(f"{ACCOUNT_MAPPING.name}: {read} row(s) read")
        return by_old_id

    # -- transfers, refunds, payouts, payment mappings --------------------------------------

    def _import_rows(
        self,
        kind: _Kind,
        mapper: Callable[[Mapping[str, Any]], Any],
        summary: BatchSummary,
        *,
        dry_run: bool,
    ) -> None:
        read = 0
        for rows in chunked(self.source.rows(kind.table), CHUNK_SIZE):
            read += len(rows)
            mapped: list[tuple[str, Any]] = []  # (old id, record)
            seen: set[str] = set()
            for row in rows:
                old_id = str(row["id"])
                try:
                    record = mapper(row)
                except (NotMapped, InvalidItemError) as exc:
                    item = f"{kind.table.name} #{old_id} ({_text(row[kind.raw_key]) or '?'})"
                    summary.add(_not_mapped(kind.label, item, exc))
                    continue
                key = kind.key(record)
                if key in seen:  # the incumbent's unique keys make this impossible; still
                    summary.add(
                        _not_mapped(
                            kind.label,
                            f"{kind.item_id(record)} (old #{old_id})",
                            NotMapped("the same key appears twice in the old table"),
                        )
                    )
                    continue
                seen.add(key)
                mapped.append((old_id, record))
            existing = kind.existing(self.ledger, [kind.key(r) for _, r in mapped])
            to_save: list[tuple[str, Any]] = []
            for old_id, record in mapped:
                item = f"{kind.item_id(record)} (old #{old_id})"
                outcome, write = _merge(kind, existing.get(kind.key(record)), record, item)
                summary.add(outcome)
                if write is not None:
                    to_save.append((old_id, write))
            if to_save and not dry_run:
                self._save(kind, to_save, summary)
        summary.notes.append(f"{kind.table.name}: {read} row(s) read")

    def _save(self, kind: _Kind, to_save: list[tuple[str, Any]], summary: BatchSummary) -> None:
        saved = [r for _, r in to_save]
        try:
            self.ledger.save_imported(
                kind.ledger_kind,
                saved,
                source=STRIPE_CONNECTOR,
                old_ids=[i for i, _ in to_save],
                run_id=self.run_id,
            )
        except LedgerConflictError:
            # Someone wrote meanwhile: one by one, so only the clashing rows are reported.
            saved = []
            for old_id, record in to_save:
                try:
                    self.ledger.save_imported(
                        kind.ledger_kind,
                        [record],
                        source=STRIPE_CONNECTOR,
                        old_ids=[old_id],
                        run_id=self.run_id,
                    )
                except LedgerConflictError as exc:
                    item = f"{kind.item_id(record)} (old #{old_id})"
                    summary.add(ItemOutcome(item, f"{kind.label}_CONFLICT", str(exc), failed=True))
                else:
                    saved.append(record)
        # What the incumbent paid is Stripe's for good: no rule can pay it through Hyperwallet.
        claim_imported(self.ledger, STRIPE, saved, source=STRIPE_CONNECTOR)

    # -- checkpoints ----------------------------------------------------------------------

    def _import_checkpoints(self, summary: BatchSummary, *, dry_run: bool) -> None:
        config = self.source.config()
        for ours, keys in CHECKPOINTS.items():
            value = next((config[k] for k in keys if config.get(k)), None)
            item = f"checkpoint {ours}"
            if not value:
                summary.add(
                    ItemOutcome(
                        item,
                        "CHECKPOINT_NOT_SET",
                        "the Stripe connector never wrote it (that job never ran or was "
                        "disabled there): our first run is bounded by the go-live instant",
                    )
                )
                continue
            try:
                old_at = parse_mirakl_datetime(value, field=ours)
            except InvalidItemError as exc:
                summary.add(_not_mapped("CHECKPOINT", item, exc))
                continue
            current = self.ledger.get_checkpoint(ours)
            current_at = _parse_or_none(current)
            if current_at is not None and current_at >= old_at:
                summary.add(
                    ItemOutcome(item, "CHECKPOINT_UNCHANGED", f"ours ({current}) is not older")
                )
                continue
            if current is not None and current_at is None:
                summary.add(
                    _not_mapped(
                        "CHECKPOINT",
                        item,
                        NotMapped(f"ours ({current!r}) is unreadable: fix it before importing"),
                    )
                )
                continue
            if not dry_run:
                self.ledger.set_checkpoint(ours, value)
            status = "CHECKPOINT_IMPORTED" if current is None else "CHECKPOINT_UPDATED"
            summary.add(ItemOutcome(item, status, f"{current or 'none'} → {value}"))


def _merge(kind: _Kind, ours: Any, theirs: Any, item: str) -> tuple[ItemOutcome, Any | None]:
    """What to do with an incumbent row given our row of the same key: (outcome, row to save)."""
    label = kind.label
    amount = getattr(theirs, "amount", None)
    currency = getattr(theirs, "currency", None)
    held = kind.provider_id is not None and is_held(theirs)

    def outcome(action: str, reason: str | None = None, failed: bool = False) -> ItemOutcome:
        return ItemOutcome(item, f"{label}_{action}", reason, amount, currency, failed)

    if ours is None:
        if held:
            return outcome("HELD", theirs.status_reason, failed=True), theirs
        return outcome("IMPORTED"), theirs
    if kind.provider_id is None:  # payment mappings: ours is the truth once it exists
        return outcome("UNCHANGED"), None
    our_id = getattr(ours, kind.provider_id)
    their_id = getattr(theirs, kind.provider_id)
    if our_id:
        if their_id and their_id != our_id:
            return outcome(
                "CONFLICT",
                f"ledger has {our_id}, the Stripe connector {their_id}: the money may have "
                "moved twice; check Stripe",
                failed=True,
            ), None
        return outcome("UNCHANGED"), None
    if their_id:
        if ours.attempted_at is not None:
            return outcome(
                "CONFLICT",
                f"the Stripe connector has {their_id} but this connector attempted it too "
                f"(key {ours.idempotency_key}): check Stripe before settling the row",
                failed=True,
            ), None
        return outcome("UPDATED", f"{ours.status} → {theirs.status} ({their_id})"), theirs
    if is_held(ours):
        if held:
            return outcome("HELD", ours.status_reason, failed=True), None
        return outcome("UPDATED", f"held row released as {theirs.status}"), theirs
    if held:
        return outcome(
            "UNCHANGED", f"kept ours ({ours.status}); the Stripe connector is PENDING"
        ), None
    return outcome("UNCHANGED"), None


def _existing_transfers(ledger: Ledger, keys: list[str]) -> dict[str, TransferRecord]:
    by_type: dict[str, list[str]] = {}
    for key in keys:
        transfer_type, mirakl_id = key.split("/", 1)
        by_type.setdefault(transfer_type, []).append(mirakl_id)
    found: dict[str, TransferRecord] = {}
    for transfer_type, ids in by_type.items():
        for mirakl_id, record in ledger.get_transfers(TransferType(transfer_type), ids).items():
            found[f"{transfer_type}/{mirakl_id}"] = record
    return found


def _not_mapped(label: str, item: str, exc: Exception) -> ItemOutcome:
    reason = exc.reason if isinstance(exc, InvalidItemError) else str(exc)
    return ItemOutcome(item, f"{label}_NOT_MAPPED", reason, failed=True)


def _parse_or_none(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parse_mirakl_datetime(value)
    except InvalidItemError:
        return None


_text = text_or_none


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise NotMapped(f"{name} is not a number: {value!r}") from None


def _amount(
    value: Any, currency: Any = None, operation: Operation = Operation.CHARGE
) -> int | None:
    """The incumbent's amount in our ledger's unit (ISO 4217 minor units).

    The incumbent stored what it sent to Stripe (Mirakl's amount × 100 for every currency): an
    amount in *Stripe's* unit. Read back like any Stripe amount (:func:`from_api`), the row says
    what really moved: the same for EUR or JPY, a hundredth for ISK (two decimals at Stripe,
    none in ISO 4217), a hundred times for MGA (zero-decimal at Stripe, two in ISO 4217).
    """
    if value is None:
        return None
    try:
        amount = int(value)
    except (TypeError, ValueError):
        raise NotMapped(f"amount is not a whole number of minor units: {value!r}") from None
    code = _currency(currency)
    return from_api(amount, code, operation) if code else amount


def _currency(value: Any) -> str | None:
    text = _text(value)
    return text.upper() if text else None


def _date_text(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _first_line(error: object) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def import_stripe_connector(
    source_url: str,
    ledger: Ledger,
    *,
    dry_run: bool = True,
    timezone: str = "UTC",
    run_id: str | None = None,
) -> BatchSummary:
    """Open the incumbent's database at ``source_url`` and import it into ``ledger``."""
    source = OldConnectorDatabase(source_url, timezone=timezone)
    try:
        return StripeConnectorImport(source=source, ledger=ledger, run_id=run_id).run(
            dry_run=dry_run
        )
    finally:
        source.dispose()


__all__: Sequence[str] = (
    "HELD_PREFIX",
    "OldConnectorDatabase",
    "StripeConnectorImport",
    "import_stripe_connector",
    "is_held",
    "map_payout",
    "map_refund",
    "map_transfer",
)
