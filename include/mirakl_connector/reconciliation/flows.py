"""What each money-moving workflow reconciles: its ledger rows, provider lists and Mirakl reads.

========================================  ====================================================
Flow                                      Ledger rows → provider list → Mirakl documents
========================================  ====================================================
``payment_split``                         order transfers → platform transfers → OR11/SOR11
                                          orders by id (seller amount, or the ``_TAX`` part)
``payment_refund``                        refunds and reversals → platform refunds and
                                          ``transfer_refund`` balance transactions → the
                                          refunds in their OR11/SOR11 orders
``seller_settlement``                     invoice transfers and payouts → platform transfers,
                                          each seller account's transfers and payouts → IV01
                                          invoices by date window
``hyperwallet_invoice_payments``          Hyperwallet payments → ``GET /payments`` by window →
                                          IV01 invoices / SBC11 billing cycles by date window
========================================  ====================================================

The provider window of a run starts at the earliest call of the reconciled rows
(``attempted_at``, else the row's creation) minus :data:`CLOCK_SKEW` (a provider stamps its
objects with its own clock) and has no upper bound (``created[gte]`` only: nothing created after
the run is older than it, and a provider clock ahead of ours must not hide what the run made);
a day's is the day, widened by :data:`CLOCK_SKEW` both ways. Connected accounts are listed
only for the accounts the rows name: a settlement run never lists every seller.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.hyperwallet.client import parse_hw_datetime
from mirakl_connector.hyperwallet.payment_decisions import IV01, SBC11
from mirakl_connector.ledger.reconciliation import MoneyRecord, RowSource
from mirakl_connector.ledger.records import (
    INVOICE_TRANSFER_TYPES,
    ORDER_TRANSFER_TYPES,
    TAX_SUFFIX,
    HyperwalletPayment,
    PayoutRecord,
    RefundRecord,
    RefundType,
    TransferRecord,
    TransferType,
)
from mirakl_connector.mirakl.orders import parse_mirakl_datetime
from mirakl_connector.reconciliation import mirakl_amounts, readers
from mirakl_connector.reconciliation.compare import LedgerEntry, MiraklAmount, ProviderObject, Unit
from mirakl_connector.reconciliation.readers import Window
from mirakl_connector.stripe.settlement_decisions import SELLER_TO_PLATFORM

#: How far a provider's clock may be from ours: the window is widened by this both ways.
CLOCK_SKEW = timedelta(minutes=10)
#: How far around the invoices' dates the IV01/SBC11 window reaches (Mirakl's second rounding).
DOCUMENT_MARGIN = timedelta(seconds=1)

PAYMENT_SPLIT = "payment_split"
PAYMENT_REFUND = "payment_refund"
SELLER_SETTLEMENT = "seller_settlement"
HYPERWALLET_INVOICE_PAYMENTS = "hyperwallet_invoice_payments"

#: The ledger rows of each flow.
SOURCES: Mapping[str, tuple[RowSource, ...]] = {
    PAYMENT_SPLIT: (RowSource("transfer", ORDER_TRANSFER_TYPES),),
    PAYMENT_REFUND: (RowSource("refund"), RowSource("transfer", (TransferType.REFUND,))),
    SELLER_SETTLEMENT: (RowSource("transfer", INVOICE_TRANSFER_TYPES), RowSource("payout")),
    HYPERWALLET_INVOICE_PAYMENTS: (RowSource("hyperwallet_payment"),),
}
FLOWS = tuple(SOURCES)
#: The provider of each flow.
PROVIDERS: Mapping[str, str] = {
    PAYMENT_SPLIT: "stripe",
    PAYMENT_REFUND: "stripe",
    SELLER_SETTLEMENT: "stripe",
    HYPERWALLET_INVOICE_PAYMENTS: "hyperwallet",
}


@dataclass
class Clients:
    """Factories of the clients a reconciliation may read with (each built on first use)."""

    stripe: Callable[[], Any]
    mirakl: Callable[[], Any]
    hyperwallet: Callable[[], Any]
    #: the refund rows of given Mirakl refund ids (the ledger): a reversal's order is its refund's
    refunds: Callable[[Iterable[str]], Mapping[str, RefundRecord]] = lambda ids: {}


@dataclass
class Inputs:
    """What :func:`mirakl_connector.reconciliation.compare.reconcile` needs, and the notes."""

    entries: list[LedgerEntry]
    objects: list[ProviderObject] = field(default_factory=list)
    mirakl: dict[tuple[str, int], MiraklAmount | None] = field(default_factory=dict)
    window: Window | None = None
    notes: list[str] = field(default_factory=list)


# -- ledger rows as entries -----------------------------------------------------------------------


def to_entry(record: MoneyRecord) -> LedgerEntry | None:
    """The row as reconciled, or ``None`` when it has no provider object to compare (neither a
    provider id nor a call whose answer was lost)."""
    match record:
        case TransferRecord():
            reversal = record.type is TransferType.REFUND
            return _entry(
                record,
                "transfer",
                f"{record.type} {record.mirakl_id}",
                Unit.STRIPE_REVERSAL if reversal else Unit.STRIPE_TRANSFER,
                record.transfer_id,
                None if reversal else f"{record.type}:{record.mirakl_id}",
                record.mirakl_id,
                record.amount_residue,
            )
        case RefundRecord():
            return _entry(
                record,
                "refund",
                f"{record.type} {record.mirakl_refund_id}",
                Unit.STRIPE_REFUND,
                record.stripe_refund_id,
                f"refund:{record.mirakl_refund_id}",
                record.mirakl_refund_id,
                record.amount_residue,
            )
        case PayoutRecord():
            return _entry(
                record,
                "payout",
                f"PAYOUT {record.mirakl_invoice_id}",
                Unit.STRIPE_PAYOUT,
                record.payout_id,
                f"payout:{record.mirakl_invoice_id}",
                record.mirakl_invoice_id,
                record.amount_residue,
            )
        case HyperwalletPayment():
            return _entry(
                record,
                "hyperwallet_payment",
                f"{record.kind} {record.client_payment_id}",
                Unit.HYPERWALLET,
                record.payment_token,
                f"hw:{record.client_payment_id}",
                record.invoice_id,
                None,
            )
    raise TypeError(f"not a money record: {type(record).__name__}")


def _entry(
    record: Any,
    entity: str,
    item: str,
    unit: Unit,
    provider_id: str | None,
    match_key: str | None,
    mirakl_id: str,
    residue: int | None,
) -> LedgerEntry | None:
    if not provider_id and record.attempted_at is None:
        return None
    amount = record.amount
    return LedgerEntry(
        entity=entity,
        row_id=int(record.id),
        item=item,
        mirakl_id=mirakl_id,
        unit=unit,
        provider_id=provider_id or None,
        match_key=match_key,
        amount=amount,
        owed=None if amount is None else amount + (residue or 0),
        currency=(record.currency or "").upper() or None,
    )


def provider_window(
    records: Sequence[MoneyRecord],
    *,
    since: datetime | None,
    until: datetime | None,
    now: datetime | None = None,
) -> Window:
    """From the earliest call of ``records`` (or ``since``, whichever is earlier) to ``until``
    (``None``: no upper bound), widened by :data:`CLOCK_SKEW`; without rows nor ``since``, from
    ``now``.

    A row's object was created at its first call (``attempted_at``), else when the row was made;
    a Hyperwallet payment found by its ``clientPaymentId`` (made earlier, or by the incumbent)
    carries its own ``createdOn`` (``hw_created_on``), which counts too.
    """
    starts: list[datetime] = [
        stamp for r in records if (stamp := r.attempted_at or r.created_at) is not None
    ]
    for record in records:
        if isinstance(record, HyperwalletPayment):
            created = parse_hw_datetime(record.hw_created_on)
            if created is not None:
                starts.append(created)
    if since is not None:
        starts.append(since)
    start = min(starts) if starts else (until or now or datetime.now(UTC))
    return Window(start - CLOCK_SKEW, None if until is None else until + CLOCK_SKEW)


# -- per flow -------------------------------------------------------------------------------------


def gather(
    flow: str,
    records: Sequence[MoneyRecord],
    clients: Clients,
    *,
    window: Window,
    tax_split: bool,
    list_empty_window: bool = False,
) -> Inputs:
    """Read what ``flow``'s rows are compared with.

    :param list_empty_window: read the provider's window even when no row is reconciled (a day:
        objects of ours the ledger does not know are findings of their own); a run with nothing
        to reconcile reads nothing.
    """
    pairs = [(r, e) for r in records if (e := to_entry(r)) is not None]
    inputs = Inputs(entries=[e for _, e in pairs], window=window)
    if not pairs and not list_empty_window:
        return inputs
    kept = [r for r, _ in pairs]
    if flow == PAYMENT_SPLIT:
        inputs.objects = readers.stripe_transfers(
            clients.stripe(), window, types={t.value for t in ORDER_TRANSFER_TYPES}
        )
        if pairs:
            inputs.mirakl = _split_amounts(kept, clients, tax_split=tax_split)
    elif flow == PAYMENT_REFUND:
        stripe = clients.stripe()
        inputs.objects = readers.stripe_refunds(stripe, window) + readers.stripe_reversals(
            stripe, window
        )
        if pairs:
            inputs.mirakl = _refund_amounts(kept, clients, tax_split=tax_split)
    elif flow == SELLER_SETTLEMENT:
        inputs.objects = _settlement_objects(kept, clients, window)
        if pairs:
            inputs.mirakl, notes = _settlement_amounts(kept, clients)
            inputs.notes.extend(notes)
    elif flow == HYPERWALLET_INVOICE_PAYMENTS:
        inputs.objects = readers.hyperwallet_payments(clients.hyperwallet(), window)
        if pairs:
            inputs.mirakl, notes = _hyperwallet_amounts(kept, clients)
            inputs.notes.extend(notes)
    else:
        raise ValueError(f"unknown flow {flow!r}")
    return inputs


def _key(record: Any) -> tuple[str, int]:
    entity = {
        TransferRecord: "transfer",
        RefundRecord: "refund",
        PayoutRecord: "payout",
        HyperwalletPayment: "hyperwallet_payment",
    }[type(record)]
    return (entity, int(record.id))


def _split_amounts(
    records: Sequence[MoneyRecord], clients: Clients, *, tax_split: bool
) -> dict[tuple[str, int], MiraklAmount | None]:
    rows = [r for r in records if isinstance(r, TransferRecord)]
    product = {_order_id(r.mirakl_id) for r in rows if r.type is TransferType.PRODUCT_ORDER}
    service = {_order_id(r.mirakl_id) for r in rows if r.type is TransferType.SERVICE_ORDER}
    mirakl = clients.mirakl()
    orders = {
        mirakl_amounts.PRODUCT: readers.mirakl_orders(mirakl, product),
        mirakl_amounts.SERVICE: readers.mirakl_service_orders(mirakl, service),
    }
    found: dict[tuple[str, int], MiraklAmount | None] = {}
    for row in rows:
        kind = (
            mirakl_amounts.SERVICE
            if row.type is TransferType.SERVICE_ORDER
            else mirakl_amounts.PRODUCT
        )
        raw = orders[kind].get(_order_id(row.mirakl_id))
        found[_key(row)] = (
            None
            if raw is None
            else mirakl_amounts.order_transfer_amount(
                raw, kind, is_tax=row.mirakl_id.endswith(TAX_SUFFIX), tax_split=tax_split
            )
        )
    return found


def _refund_amounts(
    records: Sequence[MoneyRecord], clients: Clients, *, tax_split: bool
) -> dict[tuple[str, int], MiraklAmount | None]:
    refunds = {r.mirakl_refund_id: r for r in records if isinstance(r, RefundRecord)}
    reversals = [
        r for r in records if isinstance(r, TransferRecord) and r.type is TransferType.REFUND
    ]
    wanted = {_order_id(r.mirakl_id) for r in reversals} - set(refunds)
    refunds.update(clients.refunds(sorted(wanted)))
    by_kind: dict[str, set[str]] = defaultdict(set)
    for known in refunds.values():
        if known.mirakl_order_id:
            by_kind[_order_kind(known)].add(known.mirakl_order_id)
    mirakl = clients.mirakl()
    orders = {
        mirakl_amounts.PRODUCT: readers.mirakl_orders(mirakl, by_kind[mirakl_amounts.PRODUCT]),
        mirakl_amounts.SERVICE: readers.mirakl_service_orders(
            mirakl, by_kind[mirakl_amounts.SERVICE]
        ),
    }
    found: dict[tuple[str, int], MiraklAmount | None] = {}
    refund: RefundRecord | None
    for row in records:
        if isinstance(row, RefundRecord):
            refund_id, is_tax, refund = row.mirakl_refund_id, False, row
        elif isinstance(row, TransferRecord):
            refund_id = _order_id(row.mirakl_id)
            is_tax, refund = row.mirakl_id.endswith(TAX_SUFFIX), refunds.get(refund_id)
        else:
            continue
        if refund is None or not refund.mirakl_order_id:
            found[_key(row)] = MiraklAmount(
                f"refund {refund_id}",
                problem=f"the ledger has no order for refund {refund_id}: cannot find it in Mirakl",
            )
            continue
        kind = _order_kind(refund)
        raw = orders[kind].get(refund.mirakl_order_id)
        if raw is None:
            found[_key(row)] = None
        elif isinstance(row, RefundRecord):
            found[_key(row)] = mirakl_amounts.refund_amount(raw, kind, refund_id)
        else:
            found[_key(row)] = mirakl_amounts.reversal_amount(
                raw, kind, refund_id, is_tax=is_tax, tax_split=tax_split
            )
    return found


def _settlement_objects(
    records: Sequence[MoneyRecord], clients: Clients, window: Window
) -> list[ProviderObject]:
    stripe = clients.stripe()
    objects = readers.stripe_transfers(stripe, window, types={TransferType.EXTRA_CREDITS.value})
    sellers = sorted(
        {
            r.source_account
            for r in records
            if isinstance(r, TransferRecord) and r.type in SELLER_TO_PLATFORM and r.source_account
        }
    )
    for account in sellers:
        objects += readers.stripe_transfers(
            stripe, window, types={t.value for t in SELLER_TO_PLATFORM}, on_account=account
        )
    payout_accounts = sorted(
        {
            r.stripe_account_id
            for r in records
            if isinstance(r, PayoutRecord) and r.stripe_account_id
        }
    )
    for account in payout_accounts:
        objects += readers.stripe_payouts(stripe, window, account)
    return objects


def _settlement_amounts(
    records: Sequence[MoneyRecord], clients: Clients
) -> tuple[dict[tuple[str, int], MiraklAmount | None], list[str]]:
    rows = [r for r in records if isinstance(r, TransferRecord | PayoutRecord)]
    dated, notes = _dated(rows, lambda r: r.mirakl_created_date)
    found: dict[tuple[str, int], MiraklAmount | None] = {}
    if not dated:
        return found, notes
    invoices = readers.mirakl_invoices(
        clients.mirakl(),
        min(dated.values()) - DOCUMENT_MARGIN,
        max(dated.values()) + DOCUMENT_MARGIN,
    )
    for row in rows:
        if _key(row) not in dated:
            continue
        raw = invoices.get(_document_id(row))
        transfer_type = row.type if isinstance(row, TransferRecord) else None
        found[_key(row)] = (
            None if raw is None else mirakl_amounts.settlement_amount(raw, transfer_type)
        )
    return found, notes


def _hyperwallet_amounts(
    records: Sequence[MoneyRecord], clients: Clients
) -> tuple[dict[tuple[str, int], MiraklAmount | None], list[str]]:
    rows = [r for r in records if isinstance(r, HyperwalletPayment)]
    dated, notes = _dated(rows, lambda r: r.invoice_created_date)
    found: dict[tuple[str, int], MiraklAmount | None] = {}
    for source in (IV01, SBC11):
        of_source = [r for r in rows if (r.invoice_source or IV01) == source and _key(r) in dated]
        if not of_source:
            continue
        since = min(dated[_key(r)] for r in of_source) - DOCUMENT_MARGIN
        until = max(dated[_key(r)] for r in of_source) + DOCUMENT_MARGIN
        if source == SBC11:
            documents = readers.mirakl_billing_cycles(clients.mirakl(), since, until)
        else:  # automatic invoices and manual credit notes alike
            documents = readers.mirakl_invoices(clients.mirakl(), since, until, doc_type="ALL")
        for row in of_source:
            raw = documents.get(str(row.invoice_id))
            found[_key(row)] = (
                None if raw is None else mirakl_amounts.hyperwallet_amount(raw, source, row.kind)
            )
    return found, notes


def _dated(
    rows: Sequence[Any], date_of: Callable[[Any], str | None]
) -> tuple[dict[tuple[str, int], datetime], list[str]]:
    """The Mirakl creation instant of each row's document; rows without one are noted (their
    document cannot be placed in a date window, so Mirakl is not checked for them)."""
    dated: dict[tuple[str, int], datetime] = {}
    undated: list[str] = []
    for row in rows:
        raw = date_of(row)
        try:
            dated[_key(row)] = parse_mirakl_datetime(raw or "")
        except (InvalidItemError, ValueError):
            undated.append(_document_id(row))
    notes = []
    if undated:
        notes.append(
            f"{len(undated)} row(s) have no Mirakl document date, not checked against Mirakl: "
            + ", ".join(undated[:20])
        )
    return dated, notes


def _document_id(row: Any) -> str:
    if isinstance(row, PayoutRecord):
        return row.mirakl_invoice_id
    if isinstance(row, HyperwalletPayment):
        return row.invoice_id
    return str(row.mirakl_id)


def _order_id(mirakl_id: str) -> str:
    return mirakl_id.removesuffix(TAX_SUFFIX)


def _order_kind(refund: RefundRecord) -> str:
    if refund.type is RefundType.SERVICE_ORDER:
        return mirakl_amounts.SERVICE
    return mirakl_amounts.PRODUCT
