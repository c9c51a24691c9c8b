"""The four money tables (transfers, refunds, payouts, Hyperwallet payments) seen through the
payments console's one shape (:class:`~.query_shapes.Item`), and the SQL pieces the console's
queries build from it: which column holds what, which workflow a row belongs to, what an id typed
in the search box can name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    String,
    Table,
    and_,
    case,
    func,
    literal,
    literal_column,
    or_,
    true,
    type_coerce,
)
from sqlalchemy.sql.elements import ColumnElement

from mirakl_connector.ledger import schema
from mirakl_connector.ledger.manual_actions import ActionRecord
from mirakl_connector.ledger.query_shapes import (
    HW_OPERATOR_FEE,
    HW_PAYMENT,
    PAYOUT,
    REFUND,
    REVERSAL,
    SETTLEMENT_TRANSFER,
    SPLIT,
    Item,
    aware_utc,
)
from mirakl_connector.ledger.records import (
    HyperwalletPayment,
    HyperwalletPaymentKind,
    HyperwalletPaymentStatus,
    PayoutRecord,
    PayoutStatus,
    RefundRecord,
    RefundStatus,
    TransferRecord,
    TransferStatus,
    TransferType,
)


@dataclass(frozen=True)
class Source:
    """One money table seen through the console's common shape."""

    entity: str  # the name used in ledger_events.entity
    provider: str
    table: Table
    mirakl_id: ColumnElement[Any]  # the Mirakl document id
    provider_id: ColumnElement[Any]  # the provider object id once the money moved (PROVIDER_ID)
    shop: ColumnElement[Any] | None
    account: ColumnElement[Any] | None  # the connected account / Hyperwallet destination
    workflows: tuple[str, ...]
    on_hold: str
    failed: str
    terminal: frozenset[str]  # the record's ``SETTLED`` statuses

    @property
    def open_statuses(self) -> frozenset[str]:
        """Every status but the terminal ones (in doubt is only possible there)."""
        return frozenset(s.value for s in _STATUS_ENUMS[self.entity]) - self.terminal

    def workflow(self) -> ColumnElement[str]:
        c = self.table.c
        if self.entity == "transfer":
            return case(
                (c.type.in_([t.value for t in _SPLIT_TYPES]), SPLIT),
                (c.type == TransferType.REFUND.value, REVERSAL),
                else_=SETTLEMENT_TRANSFER,
            )
        if self.entity == "hyperwallet_payment":
            return case(
                (c.kind == HyperwalletPaymentKind.OPERATOR_FEE.value, HW_OPERATOR_FEE),
                else_=HW_PAYMENT,
            )
        return literal(self.workflows[0], String)

    def workflow_of(self, subtype: str) -> str:
        """The workflow of an aggregate row (``moved_daily.subtype``: transfer type, HW kind)."""
        if self.entity == "transfer":
            if subtype in _SPLIT_VALUES:
                return SPLIT
            return REVERSAL if subtype == _REVERSAL_TYPE else SETTLEMENT_TRANSFER
        if self.entity == "hyperwallet_payment":
            return HW_OPERATOR_FEE if subtype == _OPERATOR_FEE_KIND else HW_PAYMENT
        return self.workflows[0]

    def workflow_filter(self, workflows: Sequence[str]) -> ColumnElement[bool] | None:
        """``None``: no row of this table can match (skip the table)."""
        wanted = [w for w in workflows if w in self.workflows]
        if not wanted:
            return None
        if len(wanted) == len(self.workflows):
            return true()
        return self.workflow().in_(wanted)


_SPLIT_TYPES = (TransferType.PRODUCT_ORDER, TransferType.SERVICE_ORDER)
_SPLIT_VALUES = frozenset(t.value for t in _SPLIT_TYPES)
_REVERSAL_TYPE = TransferType.REFUND.value
_OPERATOR_FEE_KIND = HyperwalletPaymentKind.OPERATOR_FEE.value
#: The column a table's workflow derives from (``Source.workflow_of``), where it has one.
SUBTYPE_COLUMNS = {"transfer": "type", "hyperwallet_payment": "kind"}
_STATUS_ENUMS: dict[str, Any] = {
    "transfer": TransferStatus,
    "refund": RefundStatus,
    "payout": PayoutStatus,
    "hyperwallet_payment": HyperwalletPaymentStatus,
}

_T, _R, _P, _H = schema.transfers, schema.refunds, schema.payouts, schema.hyperwallet_payments


def _values(statuses: frozenset[str]) -> frozenset[str]:
    return frozenset(str(s) for s in statuses)


SOURCES: tuple[Source, ...] = (
    Source(
        "transfer",
        "stripe",
        _T,
        _T.c.mirakl_id,
        _T.c[TransferRecord.PROVIDER_ID],
        _T.c.mirakl_shop_id,
        # the account the money goes to, or comes from for a reversal
        func.coalesce(_T.c.destination_account, _T.c.source_account),
        (SPLIT, REVERSAL, SETTLEMENT_TRANSFER),
        TransferStatus.ON_HOLD.value,
        TransferStatus.FAILED.value,
        _values(TransferRecord.SETTLED),
    ),
    Source(
        "refund",
        "stripe",
        _R,
        _R.c.mirakl_refund_id,
        _R.c[RefundRecord.PROVIDER_ID],
        None,
        None,
        (REFUND,),
        RefundStatus.ON_HOLD.value,
        RefundStatus.FAILED.value,
        _values(RefundRecord.SETTLED),
    ),
    Source(
        "payout",
        "stripe",
        _P,
        _P.c.mirakl_invoice_id,
        _P.c[PayoutRecord.PROVIDER_ID],
        _P.c.mirakl_shop_id,
        _P.c.stripe_account_id,
        (PAYOUT,),
        PayoutStatus.ON_HOLD.value,
        PayoutStatus.FAILED.value,
        _values(PayoutRecord.SETTLED),
    ),
    Source(
        "hyperwallet_payment",
        "hyperwallet",
        _H,
        _H.c.client_payment_id,
        _H.c[HyperwalletPayment.PROVIDER_ID],
        _H.c.shop_id,
        _H.c.destination_token,
        (HW_PAYMENT, HW_OPERATOR_FEE),
        HyperwalletPaymentStatus.ON_HOLD.value,
        HyperwalletPaymentStatus.FAILED.value,
        _values(HyperwalletPayment.SETTLED),
    ),
)
SOURCE_BY_ENTITY = {s.entity: s for s in SOURCES}


#: The columns of every item row, in order (``_select_items``; the CSV export's cells).
ITEM_COLUMNS = (
    "entity", "id", "provider", "workflow", "mirakl_id", "shop_id", "account", "status",
    "reason", "amount", "currency", "provider_object_id", "attempts", "attempted_at",
    "created_at", "updated_at",
)  # fmt: skip


def unindexed(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """``column || ''``: the same value (NULL stays NULL), that no index of ``column`` answers.

    SQLite's planner has no statistics of NULLs (the connector runs no ``ANALYZE``): given
    ``transfer_id IS NULL`` it reads the NULL entries of the transfer id's index, every row not
    sent yet; given ``status IN (...)``, every open row. Written so, the terms leave the choice
    to the partial in-doubt index (``schema.in_doubt_index``, whose predicate has the same
    text), on PostgreSQL as on SQLite.
    """
    return column.concat(literal_column("''"))


def iso_text(column: Any, dialect: str) -> ColumnElement[str]:
    """A UTC timestamp column as ISO 8601 text, ``YYYY-MM-DDTHH:MM:SS.ffffff+00:00``.

    The same text on both backends, so it sorts as the instants do. SQLite holds the
    timestamps as naive UTC text ``YYYY-MM-DD HH:MM:SS.ffffff`` (SQLAlchemy's storage format
    for ``DateTime``, see ``schema.UTCDateTime``); PostgreSQL formats its ``timestamptz`` in
    UTC with ``to_char``.
    """
    if dialect == "sqlite":
        raw = type_coerce(column, String)
        return func.replace(raw, " ", "T").concat("+00:00")
    return func.to_char(
        func.timezone("UTC", column), literal('YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"', String)
    )


#: Provider id prefixes: an id that starts so is only looked for where such ids live.
_ACCOUNT_PREFIXES = ("acct_", "trm-")
_OBJECT_PREFIXES = ("tr_", "trr_", "po_", "re_", "pyr_", "pmt-")
_PAYMENT_PREFIXES = ("ch_", "py_", "pi_")
#: The account column searched (indexed); a reversal's seller account is found by its shop.
_ACCOUNT_COLUMNS = {
    "transfer": "destination_account",
    "payout": "stripe_account_id",
    "hyperwallet_payment": "destination_token",
}


def text_id_match(source: Source, text_id: str) -> ColumnElement[bool] | None:
    """Rows of ``source`` that ``text_id`` names exactly; ``None`` when none can.

    The id's shape says which column holds it, so each search is one indexed lookup per table,
    never a scan of every id column of a million rows.
    """
    c = source.table.c
    if text_id.startswith(_ACCOUNT_PREFIXES):
        name = _ACCOUNT_COLUMNS.get(source.entity)
        return None if name is None else c[name] == text_id
    if text_id.startswith(_OBJECT_PREFIXES):
        return source.provider_id == text_id
    if text_id.startswith(_PAYMENT_PREFIXES):
        return c.transaction_id == text_id if "transaction_id" in c else None
    if source.entity == "transfer":  # the unique (type, mirakl_id) index, every type
        return and_(c.type.in_([t.value for t in TransferType]), c.mirakl_id == text_id)
    if source.entity == "hyperwallet_payment":
        return or_(c.client_payment_id == text_id, c.invoice_id == text_id)
    return source.mirakl_id == text_id


def moved_kind(
    entity: str, subtype: str, provider: str | None, workflow: str | None
) -> tuple[str, str] | None:
    """(provider, workflow) of ``moved_daily`` rows of ``entity``/``subtype``; ``None`` when
    the filters leave them out (or the entity is unknown)."""
    source = SOURCE_BY_ENTITY.get(entity)
    if source is None or (provider and source.provider != provider):
        return None
    wf = source.workflow_of(subtype)
    if workflow and wf != workflow:
        return None
    return source.provider, wf


def item_of_row(row: Any) -> Item:
    return Item(
        entity=row["entity"],
        id=int(row["id"]),
        provider=row["provider"],
        workflow=row["workflow"],
        mirakl_id=row["mirakl_id"],
        shop_id=int(row["shop_id"]) if row["shop_id"] is not None else None,
        account=row["account"],
        status=row["status"],
        reason=row["reason"],
        amount=int(row["amount"]) if row["amount"] is not None else None,
        currency=row["currency"],
        provider_object_id=row["provider_object_id"],
        attempts=int(row["attempts"] or 0),
        attempted_at=aware_utc(row["attempted_at"]),
        created_at=aware_utc(row["created_at"]),
        updated_at=aware_utc(row["updated_at"]),
    )


def action_record(row: Any) -> ActionRecord:
    return ActionRecord(
        at=aware_utc(row["at"]),
        user=row["user_name"],
        action=row["action"],
        entity=row["entity"],
        entity_id=row["entity_id"],
        item=row["item"],
        why=row["why"],
        result=row["result"],
        detail=row["detail"],
        id=row["id"],
    )
