"""Send once and record: the one step every money-moving write goes through, whatever the provider.

A transfer, a reversal, a refund, a payout (Stripe) and a payment (Hyperwallet) are all created
the same way, because the same windows must be closed for each of them:

1. A row *in doubt* (:attr:`~mirakl_connector.ledger.records.ProviderWrite.in_doubt`: a create
   call was sent, its answer never reached the ledger) may already exist at the provider: it is
   **looked up first**, and when it is found it is **recorded, never created** again.
2. Otherwise the attempt is committed to the ledger (``mark``) *before* the call, then sent:
   a process killed after the provider acted leaves a row in doubt, which step 1 settles.
3. The answer is recorded: the created object; a **refusal** (the provider said no for good:
   nothing was created) as FAILED with the provider's reason, ``attempted_at`` cleared so the
   next attempt is a new one; an **unclear answer** (network, 5xx, 429 after the retries, an
   answer without the object's id) as UNKNOWN: the row stays in doubt with its reason and the
   next run looks it up. An unclear answer is never taken for a refusal, because a refused row
   is sent anew and could pay twice.

What differs between providers is supplied as small callables: how to look the object up, how
to mark and send (Stripe's idempotency keys, its replay window and spent keys live in
:mod:`mirakl_connector.stripe.exactly_once`; Hyperwallet has no key and looks every row up), and
how each workflow records each kind of answer in its ledger table (:class:`Recording`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from mirakl_connector.core.batch import ItemOutcome
from mirakl_connector.core.errors import PaymentProviderError

#: the item outcome of a write whose answer is unknown (the row stays in doubt)
IN_DOUBT = "IN_DOUBT"


@dataclass(frozen=True)
class Written:
    """The provider holds the object: created now, answered from the provider's idempotency
    store (``replayed``), or looked up (``found``). ``answer``: the object as the provider
    returned it, for the workflows that record more than its id (a Hyperwallet payment)."""

    object_id: str
    replayed: bool = False
    found: bool = False
    answer: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Refused:
    """The provider refused the request for good: nothing was created."""

    message: str
    code: str | None = None  # the provider's error code (``balance_insufficient`` ...)


@dataclass(frozen=True)
class Unknown:
    """The provider's answer was lost or unclear: the row stays in doubt."""

    reason: str


SendResult = Written | Refused | Unknown


class Attempted(Protocol):
    """A ledger row (a dataclass) that remembers when its current attempt was first sent."""

    @property
    def attempted_at(self) -> datetime | None: ...


class Payable(Protocol):
    """A ledger row that moves an amount: what an item outcome reports of it."""

    @property
    def amount(self) -> int | None: ...

    @property
    def currency(self) -> str | None: ...


R = TypeVar("R", bound=Attempted)
P = TypeVar("P", bound=Payable)
T = TypeVar("T")


def send_once(
    row: R,
    *,
    look_up_first: bool,
    find: Callable[[R], Written | None],
    attempt: Callable[[R], tuple[SendResult, R]],
) -> tuple[SendResult, R]:
    """Create (or recover) the provider object of ``row`` without ever creating it twice.

    :param look_up_first: the object may exist already (a row in doubt; every Hyperwallet row):
        found, it is returned as :class:`Written` (``found``) and nothing is sent.
    :param find: the object at the provider, or ``None``.
    :param attempt: mark the attempt in the ledger, send it, and read the answer (see
        :func:`attempt_once`); returns the row as stored.
    :return: the result and the row to record.
    """
    if look_up_first:
        found = find(row)
        if found is not None:
            return found, row
    return attempt(row)


def attempt_once(
    row: R,
    *,
    mark: Callable[[R], R],
    create: Callable[[R], SendResult],
    on_error: Callable[[R, PaymentProviderError], tuple[SendResult, R]],
) -> tuple[SendResult, R]:
    """Commit the attempt to the ledger (``mark``), then send it (``create``).

    ``on_error`` reads a provider error (usually with :func:`refused_or_unknown`). A refusal
    clears ``attempted_at`` on the returned row: nothing was created, so the next attempt is a
    new one instead of a replay of the refusal.
    """
    row = mark(row)
    try:
        result: SendResult = create(row)
    except PaymentProviderError as exc:
        result, row = on_error(row, exc)
    if isinstance(result, Refused):
        row = replace(row, attempted_at=None)  # type: ignore[type-var]
    return result, row


def refused_or_unknown(exc: PaymentProviderError, unknown: str) -> Refused | Unknown:
    """A provider's error answer to a create call: a refusal when it is ``permanent`` (nothing
    was created), else the outcome is unknown (``unknown`` is the reason), never a refusal."""
    if exc.permanent:
        return Refused(exc.message, exc.code)
    return Unknown(unknown)


@dataclass(frozen=True)
class Recording(Generic[R, T]):
    """How a workflow records each kind of answer in its ledger, and what it reports."""

    created: Callable[[R, Written], T]
    refused: Callable[[R, Refused], T]
    unknown: Callable[[R, Unknown], T]

    def record(self, row: R, result: SendResult) -> T:
        match result:
            case Written():
                return self.created(row, result)
            case Refused():
                return self.refused(row, result)
            case Unknown():
                return self.unknown(row, result)


def send_and_record(
    row: R,
    *,
    look_up_first: bool,
    find: Callable[[R], Written | None],
    attempt: Callable[[R], tuple[SendResult, R]],
    recording: Recording[R, T],
) -> T:
    """:func:`send_once`, then the answer recorded by ``recording``."""
    result, row = send_once(row, look_up_first=look_up_first, find=find, attempt=attempt)
    return recording.record(row, result)


def record_in_doubt(
    row: P, reason: str, *, item_id: str, save: Callable[[list[P]], object]
) -> ItemOutcome:
    """Save ``row`` (still in doubt) with why, and report it ``IN_DOUBT`` (a failed item: a
    person may have to look)."""
    save([replace(row, status_reason=reason)])  # type: ignore[type-var]
    return ItemOutcome(item_id, IN_DOUBT, reason, row.amount, row.currency, True)
