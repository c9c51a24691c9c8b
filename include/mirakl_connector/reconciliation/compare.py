"""The reconciliation itself: ledger rows against provider objects and Mirakl documents (pure).

Three sources say what moved: the **ledger** (what the connector decided and recorded), the
**provider** (the Stripe transfer, refund, reversal or payout; the Hyperwallet payment) and
**Mirakl** (the order, refund or invoice the money is for). :func:`reconcile` compares them and
returns one :class:`ReconItem` per finding:

========================  =====================================================================
``MATCHED``               the ledger row, its provider object and its Mirakl document agree
``MISSING_AT_PROVIDER``   the ledger names a provider object the provider's list does not hold
``MISSING_IN_MIRAKL``     the ledger row's Mirakl document is not in Mirakl
``MISSING_IN_LEDGER``     the provider holds an object of ours the ledger does not know (a
                          second transfer for one order, or one whose answer never reached the
                          ledger: a row in doubt)
``AMOUNT_MISMATCH``       ledger and provider, or ledger and Mirakl, disagree on the amount
                          (also: a Mirakl document whose amount cannot be read)
``CURRENCY_MISMATCH``     they disagree on the currency
========================  =====================================================================

Amounts are compared in the unit each side defines: the ledger's ISO 4217 minor units are
turned into the provider's unit with the provider's own rules (Stripe:
:mod:`mirakl_connector.stripe.currency`, where JPY, MGA, ISK, KWD and payouts in HUF differ from
ISO; Hyperwallet: a decimal amount in major units) and compared with what the provider
returned, as it returned it. A ledger amount the provider's unit cannot express is a mismatch
too. Against Mirakl, the ledger's *owed* amount (what moved plus the residue Stripe's rounding
left, README "Currencies") is compared with the document's amount in ISO minor units.

Nothing here reads or writes anything: the inputs come from :mod:`.readers` and the ledger, the
items go to the ledger and the run's summary.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import TypedDict, Unpack

from mirakl_connector.core.errors import MiraklConnectorError
from mirakl_connector.core.money import format_minor, from_minor, to_minor
from mirakl_connector.stripe.currency import Operation, for_stripe, from_api


class Kind(StrEnum):
    MATCHED = "MATCHED"
    MISSING_AT_PROVIDER = "MISSING_AT_PROVIDER"
    MISSING_IN_MIRAKL = "MISSING_IN_MIRAKL"
    MISSING_IN_LEDGER = "MISSING_IN_LEDGER"
    AMOUNT_MISMATCH = "AMOUNT_MISMATCH"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"


#: Every kind but MATCHED: the run does not reconcile.
MISMATCHES = frozenset(Kind) - {Kind.MATCHED}


class Unit(StrEnum):
    """How a provider expresses an amount (Stripe's unit depends on the operation)."""

    STRIPE_TRANSFER = "stripe:transfer"
    STRIPE_REVERSAL = "stripe:reversal"
    STRIPE_REFUND = "stripe:refund"
    STRIPE_PAYOUT = "stripe:payout"
    HYPERWALLET = "hyperwallet"  # a decimal amount in major units ("12.34")

    @property
    def provider(self) -> str:
        return "hyperwallet" if self is Unit.HYPERWALLET else "stripe"

    @property
    def operation(self) -> Operation | None:
        return _OPERATIONS.get(self)


_OPERATIONS = {
    Unit.STRIPE_TRANSFER: Operation.TRANSFER,
    Unit.STRIPE_REVERSAL: Operation.REVERSAL,
    Unit.STRIPE_REFUND: Operation.REFUND,
    Unit.STRIPE_PAYOUT: Operation.PAYOUT,
}
_PROVIDER_NAMES = {"stripe": "Stripe", "hyperwallet": "Hyperwallet"}


@dataclass(frozen=True)
class LedgerEntry:
    """One ledger row that moved money (or may have: a row in doubt), as reconciled."""

    entity: str  # ledger table: transfer, refund, payout, hyperwallet_payment
    row_id: int
    item: str  # what a person reads: "TRANSFER_PRODUCT_ORDER ORD-1-A"
    mirakl_id: str
    unit: Unit
    provider_id: str | None  # tr_, trr_, re_, po_, pmt-; None: in doubt
    #: what a provider object of this row says in its metadata (see ProviderObject.match_key)
    match_key: str | None
    amount: int | None  # ISO minor units moved
    owed: int | None  # ISO minor units owed: moved + residue (what Mirakl's document says)
    currency: str | None  # upper-case ISO code

    @property
    def key(self) -> tuple[str, int]:
        return (self.entity, self.row_id)


@dataclass(frozen=True)
class ProviderObject:
    """One object as a provider's list returned it."""

    object_id: str
    unit: Unit
    amount: int | Decimal  # in the provider's unit, exactly as returned
    currency: str  # upper-case
    #: the ledger row it is for, from its metadata (``TRANSFER_PRODUCT_ORDER:ORD-1-A``); None when
    #: the object carries none (not made by this connector, or a list without metadata)
    match_key: str | None = None
    #: False for an object that moved nothing (a failed or cancelled payout, a Hyperwallet
    #: payment returned or failed): never reported as missing in the ledger
    live: bool = True


@dataclass(frozen=True)
class MiraklAmount:
    """What Mirakl's document says a ledger row should move."""

    document: str  # "order ORD-1-A", "invoice 9001"
    amount: int | None = None  # ISO minor units
    currency: str | None = None
    problem: str | None = None  # the document is there but its amount cannot be read: why


@dataclass(frozen=True)
class ReconItem:
    """One finding of a reconciliation."""

    kind: Kind
    item: str
    reason: str
    provider: str
    entity: str | None = None
    row_id: int | None = None
    mirakl_id: str | None = None
    provider_object_id: str | None = None
    currency: str | None = None
    ledger_amount: int | None = None  # ISO minor
    provider_amount: int | None = None  # ISO minor (converted from the provider's unit)
    provider_amount_raw: str | None = None  # in the provider's unit, as returned
    mirakl_amount: int | None = None  # ISO minor

    @property
    def is_mismatch(self) -> bool:
        return self.kind is not Kind.MATCHED


def reconcile(
    entries: Iterable[LedgerEntry],
    objects: Iterable[ProviderObject],
    mirakl: Mapping[tuple[str, int], MiraklAmount | None],
    *,
    known_provider_ids: Collection[str] = frozenset(),
) -> list[ReconItem]:
    """Compare ledger ``entries`` with the provider's ``objects`` and Mirakl's amounts.

    :param objects: every object the provider listed for the reconciled window (and accounts):
        an entry whose ``provider_id`` is not among them is ``MISSING_AT_PROVIDER``.
    :param mirakl: per entry (``entry.key``), Mirakl's amount, or ``None`` when the document is
        not in Mirakl; an entry without a key here was not checked against Mirakl.
    :param known_provider_ids: provider ids the ledger holds outside ``entries`` (rows of other
        runs or days): such objects are someone else's business, never ``MISSING_IN_LEDGER``.
    """
    entries = list(entries)
    objects = list(objects)
    by_id = {o.object_id: o for o in objects}
    by_key: dict[str, list[ProviderObject]] = defaultdict(list)
    for candidate in objects:
        if candidate.match_key:
            by_key[candidate.match_key].append(candidate)
    ledger_ids = {e.provider_id for e in entries if e.provider_id} | set(known_provider_ids)
    entry_by_key = {e.match_key: e for e in entries if e.match_key}
    used: set[str] = set()
    items: list[ReconItem] = []

    for entry in entries:
        found: list[ReconItem] = []
        if entry.provider_id:
            obj = by_id.get(entry.provider_id)
            if obj is None:
                found.append(_missing_at_provider(entry))
            else:
                used.add(obj.object_id)
                found.extend(_compare_provider(entry, obj))
        else:
            for obj in by_key.get(entry.match_key or "", []):
                if obj.live and obj.object_id not in ledger_ids:
                    used.add(obj.object_id)
                    found.append(_in_doubt_found(entry, obj))
        if entry.key in mirakl:
            found.extend(_compare_mirakl(entry, mirakl[entry.key]))
        if found:
            items.extend(found)
        elif entry.provider_id:
            items.append(_matched(entry, by_id[entry.provider_id], mirakl.get(entry.key)))

    for obj in objects:
        if obj.object_id in used or obj.object_id in ledger_ids:
            continue
        if not obj.live or obj.match_key is None:
            continue
        items.append(_unknown_object(obj, entry_by_key.get(obj.match_key)))
    return items


# -- units ----------------------------------------------------------------------------------------


def to_provider_unit(amount: int, currency: str, unit: Unit) -> int | Decimal | None:
    """``amount`` (ISO minor) in ``unit``; ``None`` when the provider's unit cannot express it
    (e.g. 9.125 KWD for Stripe, whose three-decimal amounts end in 0)."""
    operation = unit.operation
    try:
        if operation is None:
            return from_minor(amount, currency)
        rounded = for_stripe(amount, currency, operation)
    except MiraklConnectorError:  # unknown or unsupported currency
        return None
    return None if rounded.residue else rounded.stripe


def from_provider_unit(value: int | Decimal, currency: str, unit: Unit) -> int | None:
    """A provider amount back in ISO minor units (for display); ``None`` when it has no exact
    ISO form (more decimals than the currency has)."""
    try:
        if unit.operation is None:
            minor = to_minor(Decimal(value), currency)
            return minor if from_minor(minor, currency) == Decimal(value) else None
        if isinstance(value, Decimal):
            return None
        return from_api(value, currency, unit.operation)
    except (MiraklConnectorError, InvalidOperation, ValueError):
        return None


def unit_name(unit: Unit) -> str:
    """How a reason names the provider's unit."""
    if unit is Unit.HYPERWALLET:
        return "Hyperwallet's decimal amount"
    return f"Stripe's {unit.operation} unit"


# -- findings -------------------------------------------------------------------------------------


def _money(amount: int | None, currency: str | None) -> str:
    if amount is None:
        return "no amount"
    if not currency:
        return f"{amount} (minor units, no currency)"
    try:
        return format_minor(amount, currency)
    except MiraklConnectorError:
        return f"{amount} (minor units) {currency}"


def _provider_money(obj: ProviderObject) -> str:
    iso = from_provider_unit(obj.amount, obj.currency, obj.unit)
    shown = _money(iso, obj.currency) if iso is not None else f"? {obj.currency}"
    return f"{obj.amount} in {unit_name(obj.unit)} ({shown})"


def _name(unit: Unit) -> str:
    return _PROVIDER_NAMES[unit.provider]


class _Found(TypedDict, total=False):
    """What a finding adds to its ledger entry's fields: the provider's object, Mirakl's
    amount (a key given overrides the entry's value; one not given keeps it)."""

    provider_object_id: str | None
    provider_amount: int | None
    provider_amount_raw: str | None
    mirakl_amount: int | None


def _base(entry: LedgerEntry, kind: Kind, reason: str, **extra: Unpack[_Found]) -> ReconItem:
    return ReconItem(
        kind=kind,
        item=entry.item,
        reason=reason,
        provider=entry.unit.provider,
        entity=entry.entity,
        row_id=entry.row_id,
        mirakl_id=entry.mirakl_id,
        provider_object_id=extra.get("provider_object_id", entry.provider_id),
        currency=entry.currency,
        ledger_amount=entry.amount,
        provider_amount=extra.get("provider_amount"),
        provider_amount_raw=extra.get("provider_amount_raw"),
        mirakl_amount=extra.get("mirakl_amount"),
    )


def _object_fields(obj: ProviderObject) -> _Found:
    return {
        "provider_object_id": obj.object_id,
        "provider_amount": from_provider_unit(obj.amount, obj.currency, obj.unit),
        "provider_amount_raw": str(obj.amount),
    }


def _missing_at_provider(entry: LedgerEntry) -> ReconItem:
    reason = (
        f"{entry.item}: the ledger records {_name(entry.unit)} {entry.provider_id} "
        f"({_money(entry.amount, entry.currency)}), which {_name(entry.unit)}'s list does not hold"
    )
    return _base(entry, Kind.MISSING_AT_PROVIDER, reason)


def _compare_provider(entry: LedgerEntry, obj: ProviderObject) -> list[ReconItem]:
    provider = _name(entry.unit)
    fields = _object_fields(obj)
    ledger_currency = (entry.currency or "").upper()
    if ledger_currency != obj.currency.upper():
        reason = (
            f"{entry.item}: ledger {_money(entry.amount, entry.currency)}, {provider} "
            f"{obj.object_id} {_provider_money(obj)}: currency {ledger_currency or 'none'} in the "
            f"ledger, {obj.currency.upper()} at {provider}"
        )
        return [_base(entry, Kind.CURRENCY_MISMATCH, reason, **fields)]
    expected = (
        None
        if entry.amount is None
        else to_provider_unit(entry.amount, ledger_currency, entry.unit)
    )
    if expected is None or expected != obj.amount:
        said = (
            f"{expected} in {unit_name(entry.unit)}"
            if expected is not None
            else f"not expressible in {unit_name(entry.unit)}"
        )
        reason = (
            f"{entry.item}: ledger {_money(entry.amount, entry.currency)} ({said}), "
            f"{provider} {obj.object_id} {_provider_money(obj)}"
        )
        return [_base(entry, Kind.AMOUNT_MISMATCH, reason, **fields)]
    return []


def _in_doubt_found(entry: LedgerEntry, obj: ProviderObject) -> ReconItem:
    reason = (
        f"{entry.item}: {_name(entry.unit)} holds {obj.object_id} ({_provider_money(obj)}) for "
        "this row, but the ledger has no provider id (the answer never reached it; the next run "
        "of the workflow looks it up and records it)"
    )
    return _base(entry, Kind.MISSING_IN_LEDGER, reason, **_object_fields(obj))


def _compare_mirakl(entry: LedgerEntry, found: MiraklAmount | None) -> list[ReconItem]:
    if found is None:
        reason = f"{entry.item}: Mirakl has no document {entry.mirakl_id} for this ledger row"
        return [_base(entry, Kind.MISSING_IN_MIRAKL, reason)]
    if found.problem:
        reason = (
            f"{entry.item}: the amount of Mirakl {found.document} cannot be read: {found.problem}"
        )
        return [_base(entry, Kind.AMOUNT_MISMATCH, reason)]
    fields: _Found = {"mirakl_amount": found.amount}
    ledger_currency = (entry.currency or "").upper()
    mirakl_currency = (found.currency or "").upper()
    if ledger_currency != mirakl_currency:
        reason = (
            f"{entry.item}: ledger owes {_money(entry.owed, entry.currency)}, Mirakl "
            f"{found.document} {_money(found.amount, found.currency)}: currency "
            f"{ledger_currency or 'none'} in the ledger, {mirakl_currency or 'none'} in Mirakl"
        )
        return [_base(entry, Kind.CURRENCY_MISMATCH, reason, **fields)]
    if found.amount != entry.owed:
        reason = (
            f"{entry.item}: ledger owes {_money(entry.owed, entry.currency)} "
            f"({entry.owed} minor units), Mirakl {found.document} says "
            f"{_money(found.amount, found.currency)} ({found.amount} minor units)"
        )
        return [_base(entry, Kind.AMOUNT_MISMATCH, reason, **fields)]
    return []


def _matched(entry: LedgerEntry, obj: ProviderObject, found: MiraklAmount | None) -> ReconItem:
    mirakl = f", Mirakl {found.document} agrees" if found is not None else ""
    reason = (
        f"{entry.item}: {_money(entry.amount, entry.currency)} = {_name(entry.unit)} "
        f"{obj.object_id} {_provider_money(obj)}{mirakl}"
    )
    fields = _object_fields(obj)
    if found is not None:
        fields["mirakl_amount"] = found.amount
    return _base(entry, Kind.MATCHED, reason, **fields)


def _unknown_object(obj: ProviderObject, entry: LedgerEntry | None) -> ReconItem:
    provider = _name(obj.unit)
    if entry is not None:
        theirs = entry.provider_id or "none (in doubt)"
        reason = (
            f"{entry.item}: {provider} also holds {obj.object_id} ({_provider_money(obj)}) for "
            f"it; the ledger records {theirs}: a second object for one Mirakl document"
        )
        return _base(entry, Kind.MISSING_IN_LEDGER, reason, **_object_fields(obj))
    reason = (
        f"{provider} {obj.object_id} ({_provider_money(obj)}, for {obj.match_key}) is not in the "
        "ledger"
    )
    iso = from_provider_unit(obj.amount, obj.currency, obj.unit)
    return ReconItem(
        kind=Kind.MISSING_IN_LEDGER,
        item=obj.match_key or obj.object_id,
        reason=reason,
        provider=obj.unit.provider,
        mirakl_id=(obj.match_key or "").partition(":")[2] or None,
        provider_object_id=obj.object_id,
        currency=obj.currency,
        provider_amount=iso,
        provider_amount_raw=str(obj.amount),
    )
