"""The approval gate: large transfers and payouts, and first payouts to a new account, wait for
a person's approval of exactly that amount, currency and destination.

The ``approval`` section of ``mirakl_connector_config`` (off by default: nothing changes for an
operator who does not set it)::

    "approval": {"transfer_above": {"EUR": "10000.00", "JPY": "1500000"},
                 "payout_above": {"EUR": "25000.00"},
                 "first_payout_to_new_account": true}

* ``transfer_above``: a Stripe transfer (payment split, its tax twin, settlement invoice
  transfers, whichever direction) whose amount is *above* the currency's threshold waits;
* ``payout_above``: the same for money leaving for a bank account: Stripe payouts and
  Hyperwallet payments (the seller's and the operator's commission);
* ``first_payout_to_new_account``: a payout (Stripe: to a connected account that never received
  a payout from this ledger; Hyperwallet: to a bank account token never paid) waits.

Thresholds are decimal strings in major units (``"10000.00"``), parsed with ``Decimal`` and
compared in the ledger's ISO 4217 minor units with the amount Stripe would actually move
(after its currency rounding, :mod:`mirakl_connector.stripe.currency`). JSON numbers are refused:
``10000`` could mean major or minor units, and a float is not money. Once a threshold map is set,
a currency it does not name waits too (the stricter choice: a forgotten currency must not slip
through ungated); give that currency a threshold to let it through.

The check is pure (:meth:`ApprovalGate.hold`) and runs *last* in each decision function, only
when the row would otherwise be sent (PENDING): it never hides another reason to wait. The row
is recorded ON_HOLD with a reason starting ``awaiting approval:`` and nothing is sent. A decision
(approve or reject) is recorded per ledger item on the payments console (or its JSON API) and is
bound to the item's amount, currency and destination (and source, for a transfer taken from a
seller's account) as the approver saw them: if any of them changes, the decision is void and the
item waits again. The latest decision for an item wins: an approval can be withdrawn by a
rejection before the next run, a rejection reversed by an approval. A rejected item stays
ON_HOLD (``approval rejected by …``), never cancelled: a rejection is an operator's judgement
that can be revised, while ABORTED is final and would need a new Mirakl document to pay the
seller; the failed-operations e-mail lists it once it has waited ``on_hold_max_age_days``.

Why the console and not Airflow's human-in-the-loop operators (``HITLOperator`` /
``ApprovalOperator`` of ``apache-airflow-providers-standard`` 1.21, Airflow 3.3): on 3.3 a HITL
task parks in ``AWAITING_INPUT`` and holds no worker or pool slot, which is good, but

* it approves a *task instance*, not a ledger item: nothing binds the answer to an amount and a
  destination, so the gate would have to re-check everything here anyway, and a cleared task or
  a rerun asks again;
* the DAG run stays running until someone answers: every workflow DAG runs one run at a time
  (``max_active_runs=1``), so one unanswered approval would stop the next scheduled runs, i.e. the
  rest of the batch and every later order or invoice, and ``response_timeout`` only trades that for
  a default answer or a failure;
* one task per held item would have to be mapped at run time, and each answer would wake a run
  that may no longer exist when the next one decides the item.

An approval in the ledger has none of these problems: the run records the item ON_HOLD and goes
on; the approval waits as long as it takes in the ledger, and the next run (of any kind) sends
the item exactly once, with the same idempotency key as any other row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from mirakl_connector.core.errors import ConfigurationError, InvalidItemError
from mirakl_connector.core.money import currency_exponent, format_minor, parse_amount, to_minor
from mirakl_connector.core.settings import checked_values
from mirakl_connector.ledger.records import (
    HyperwalletPayment,
    HyperwalletPaymentStatus,
    PayoutRecord,
    PayoutStatus,
    TransferRecord,
    TransferStatus,
)

SETTINGS_SECTION = "approval"

#: Start of the reason of an item held by the gate (what the console lists).
AWAITING = "awaiting approval: "
#: Start of the reason of an item whose latest decision is a rejection.
REJECTED = "approval rejected by "
#: Reasons of items a person may decide on.
DECIDABLE_PREFIXES = (AWAITING, REJECTED)


class Movement(StrEnum):
    """Which threshold applies: money between Stripe balances, or money leaving for a bank."""

    TRANSFER = "transfer"
    PAYOUT = "payout"


class Decision(StrEnum):
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


@dataclass(frozen=True)
class ApprovalSettings:
    """The ``approval`` section (see the module docstring); everything off by default."""

    #: currency → decimal string in major units: a transfer above it waits for approval
    transfer_above: dict[str, str] = field(default_factory=dict)
    #: the same for payouts (Stripe) and payments to bank accounts (Hyperwallet)
    payout_above: dict[str, str] = field(default_factory=dict)
    #: the first payout to a destination the ledger never paid waits for approval
    first_payout_to_new_account: bool = False

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> ApprovalSettings:
        values = checked_values(cls, values, SETTINGS_SECTION)
        for name in ("transfer_above", "payout_above"):
            if name in values:
                values[name] = _thresholds(values[name], f"{SETTINGS_SECTION}.{name}")
        return cls(**values)

    @property
    def enabled(self) -> bool:
        """Whether any rule is on (off: the workflows do not even read the decisions)."""
        return bool(self.transfer_above or self.payout_above or self.first_payout_to_new_account)

    def thresholds(self, movement: Movement) -> dict[str, str]:
        return self.transfer_above if movement is Movement.TRANSFER else self.payout_above

    def threshold(self, movement: Movement, currency: str) -> int | None:
        """The threshold of ``currency`` in ISO minor units; ``None`` when it has none."""
        text = self.thresholds(movement).get(currency.upper())
        return None if text is None else to_minor(text, currency)


def _thresholds(values: dict[str, str], key: str) -> dict[str, str]:
    """Check each currency and decimal string; return them with upper-case codes."""
    checked: dict[str, str] = {}
    for code, text in values.items():
        where = f"{key}.{code}"
        try:
            exponent = currency_exponent(code)
            amount = parse_amount(text, field=where)
        except InvalidItemError as exc:
            raise ConfigurationError(f"{where}: {exc.reason}") from None
        if amount < 0:
            raise ConfigurationError(f"{where} must not be negative, got {text!r}")
        decimals = -amount.as_tuple().exponent  # type: ignore[operator]
        if decimals > exponent:
            raise ConfigurationError(
                f"{where} has more decimals than {code.upper()} has ({exponent}), got {text!r}"
            )
        upper = code.strip().upper()
        if upper in checked:
            raise ConfigurationError(f"{key} names {upper} twice")
        checked[upper] = text.strip()
    return checked


@dataclass(frozen=True)
class GatedItem:
    """What an approval is for: one ledger item and the facts a decision is bound to."""

    entity: str  # as in ledger_events: transfer | payout | hyperwallet_payment
    item: str  # the item's natural key (see the *_item functions)
    movement: Movement
    amount: int  # ISO minor units, as the ledger records it (what would move)
    currency: str
    destination: str
    source: str | None = None  # a transfer taken from a seller's account


@dataclass(frozen=True)
class ApprovalDecision:
    """One person's decision on one item, as recorded in the ledger's ``approvals`` table."""

    entity: str
    item: str
    decision: Decision
    amount: int
    currency: str
    destination: str
    decided_by: str
    decided_at: datetime
    why: str
    source: str | None = None
    row_id: int | None = None
    id: int | None = None

    def covers(self, item: GatedItem) -> bool:
        """Whether the decision was taken on exactly what ``item`` would move now."""
        return (
            self.entity == item.entity
            and self.item == item.item
            and self.amount == item.amount
            and self.currency == item.currency
            and self.destination == item.destination
            and (self.source or None) == (item.source or None)
        )

    def describe(self) -> str:
        """``12.00 EUR to acct_x`` (``from acct_y``): what was decided on."""
        return _describe(self.amount, self.currency, self.destination, self.source)


def describe_item(item: GatedItem) -> str:
    """``12.00 EUR to acct_x`` (``from acct_y``): what ``item`` would move."""
    return _describe(item.amount, item.currency, item.destination, item.source)


def _describe(amount: int, currency: str, destination: str, source: str | None) -> str:
    text = f"{format_minor(amount, currency)} to {destination}"
    return text + (f" from {source}" if source else "")


def approval_needed(
    settings: ApprovalSettings, item: GatedItem, *, new_destination: bool
) -> list[str]:
    """Why ``item`` needs a person's approval (empty: it does not). Pure.

    :param new_destination: the ledger never paid ``item.destination`` (payouts only).
    """
    reasons = []
    limits = settings.thresholds(item.movement)
    name = f"{SETTINGS_SECTION}.{item.movement}_above"
    if limits:
        limit = settings.threshold(item.movement, item.currency)
        if limit is None:
            reasons.append(f"{item.currency} has no {name} threshold")
        elif item.amount > limit:
            reasons.append(
                f"{format_minor(item.amount, item.currency)} is above {name} "
                f"{format_minor(limit, item.currency)}"
            )
    if (
        item.movement is Movement.PAYOUT
        and settings.first_payout_to_new_account
        and new_destination
    ):
        reasons.append(f"first payout to {item.destination}")
    return reasons


@dataclass(frozen=True)
class ApprovalGate:
    """The gate for one chunk of decisions: the settings and what the ledger knows (read before,
    so that deciding stays pure).

    :param decisions: the latest decision per ``(entity, item)`` of the chunk's items.
    :param paid_destinations: the chunk's payout destinations the ledger has already paid.
    """

    settings: ApprovalSettings
    decisions: Mapping[tuple[str, str], ApprovalDecision] = field(default_factory=dict)
    paid_destinations: frozenset[str] = frozenset()

    def hold(self, item: GatedItem) -> str | None:
        """The ON_HOLD reason of ``item``, or ``None`` when it may be sent now."""
        needed = approval_needed(
            self.settings, item, new_destination=item.destination not in self.paid_destinations
        )
        if not needed:
            return None
        decision = self.decisions.get((item.entity, item.item))
        if decision is not None and decision.covers(item):
            if decision.decision is Decision.APPROVED:
                return None
            return (
                f"{REJECTED}{decision.decided_by} on {_when(decision.decided_at)}: "
                f"{decision.why} ({'; '.join(needed)})"
            )
        reason = AWAITING + "; ".join(needed)
        if decision is not None:
            reason += (
                f"; the {decision.decision.lower()} decision of {decision.decided_by} on "
                f"{_when(decision.decided_at)} was for {decision.describe()}, now "
                f"{describe_item(item)}: void"
            )
        return reason


def is_decidable(reason: str | None) -> bool:
    """Whether a held row's reason says that it waits for a person's decision."""
    return bool(reason) and str(reason).startswith(DECIDABLE_PREFIXES)


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


# -- the items of each ledger table -----------------------------------------------------------


def transfer_item(row: TransferRecord) -> GatedItem:
    """A Stripe transfer (split, tax twin, settlement invoice transfer)."""
    item = f"{row.type}:{row.mirakl_id}"
    source = row.source_account
    return _row_item("transfer", item, Movement.TRANSFER, row, row.destination_account, source)


def payout_item(row: PayoutRecord) -> GatedItem:
    """A Stripe payout: its destination is the connected account whose balance pays out (the
    bank account behind it is Stripe's: the ledger never sees it)."""
    return _row_item("payout", row.mirakl_invoice_id, Movement.PAYOUT, row, row.stripe_account_id)


def hyperwallet_item(row: HyperwalletPayment) -> GatedItem:
    """A Hyperwallet payment to a bank account token (the seller's or the operator's)."""
    entity, item = "hyperwallet_payment", row.client_payment_id
    return _row_item(entity, item, Movement.PAYOUT, row, row.destination_token)


def _row_item(
    entity: str,
    item: str,
    movement: Movement,
    row: TransferRecord | PayoutRecord | HyperwalletPayment,
    destination: str | None,
    source: str | None = None,
) -> GatedItem:
    """The gated item of a ledger row: its amount and currency as the row records them."""
    return GatedItem(
        entity=entity,
        item=item,
        movement=movement,
        amount=int(row.amount or 0),
        currency=str(row.currency or "").upper(),
        destination=str(destination or ""),
        source=source or None,
    )


# -- the gate applied to a row that would be sent ---------------------------------------------


def gate_transfer(row: TransferRecord, gate: ApprovalGate | None) -> TransferRecord:
    """``row`` PENDING, or ON_HOLD with the gate's reason when a person must approve it first."""
    hold = gate.hold(transfer_item(row)) if gate is not None else None
    if hold is not None:
        return replace(row, status=TransferStatus.ON_HOLD, status_reason=hold)
    return replace(row, status=TransferStatus.PENDING, status_reason=None)


def gate_payout(row: PayoutRecord, gate: ApprovalGate | None) -> PayoutRecord:
    """The same for a Stripe payout."""
    hold = gate.hold(payout_item(row)) if gate is not None else None
    if hold is not None:
        return replace(row, status=PayoutStatus.ON_HOLD, status_reason=hold)
    return replace(row, status=PayoutStatus.PENDING, status_reason=None)


def gate_hyperwallet_payment(
    row: HyperwalletPayment, gate: ApprovalGate | None
) -> HyperwalletPayment:
    """A Hyperwallet payment about to be sent (PENDING), held when a person must approve it."""
    if gate is None or row.status != HyperwalletPaymentStatus.PENDING:
        return row
    hold = gate.hold(hyperwallet_item(row))
    if hold is None:
        return row
    return replace(row, status=HyperwalletPaymentStatus.ON_HOLD, status_reason=hold)
