"""The one batch runner every workflow uses: extract, decide, act, record — item by item.

A workflow hands :func:`run_batch` an iterable of items and one function that handles a single
item and returns its :class:`ItemOutcome`. The runner isolates failures: bad data
(:class:`~mirakl_connector.core.errors.InvalidItemError`) or an unexpected error in one item is
recorded
against that item with its reason, and the batch goes on. What comes back is a
:class:`BatchSummary`: counts per status, amounts per status and currency, and the failed items
with their reasons — small enough for one XCom value, readable in the Airflow UI.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from mirakl_connector.core.errors import (
    ConfigurationError,
    InvalidItemError,
    MiraklConnectorError,
    PaymentProviderError,
)
from mirakl_connector.core.money import format_minor, from_minor

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Status given to an item whose processing raised (bad data or an unexpected error).
FAILED = "FAILED"

#: How many failed items a summary lists by name (the counts stay exact).
MAX_LISTED_FAILURES = 100

#: How many distinct (status, reason) pairs a summary counts, e.g. why orders are ON_HOLD.
MAX_LISTED_REASONS = 30

#: How many item ids a summary names per outcome (the counts stay exact; the run's report says
#: "and N more" and links to the console filtered on the run for the whole list).
MAX_LISTED_IDS = 20


@dataclass(frozen=True)
class ItemOutcome:
    """What happened to one item: the status it ended in and why."""

    item_id: str
    status: str
    reason: str | None = None
    amount: int | None = None  # minor units
    currency: str | None = None
    failed: bool = False  # True when the status is a failure the operator must look at
    residue: int | None = None  # minor units owed but not moved (Stripe's currency rounding)


class MovingRow(Protocol):
    """A ledger row that moves an amount (a transfer, refund, payout) as it stands."""

    @property
    def status(self) -> object: ...

    @property
    def status_reason(self) -> str | None: ...

    @property
    def amount(self) -> int | None: ...

    @property
    def currency(self) -> str | None: ...

    @property
    def amount_residue(self) -> int | None: ...


def outcome_of(row: MovingRow, item_id: str, *, failed: bool) -> ItemOutcome:
    """The item outcome of ``row`` as it stands (its status, reason, amount and residue)."""
    return ItemOutcome(
        item_id=item_id,
        status=str(row.status),
        reason=row.status_reason,
        amount=row.amount,
        currency=row.currency,
        failed=failed,
        residue=row.amount_residue,
    )


@dataclass
class BatchSummary:
    """Counts, amounts and failures of one batch; ``to_dict()`` is what goes to XCom."""

    workflow: str
    step: str
    dry_run: bool = False
    counts: Counter[str] = field(default_factory=Counter)
    amounts: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    failed: list[dict[str, str]] = field(default_factory=list)
    failed_total: int = 0
    reasons: Counter[tuple[str, str]] = field(default_factory=Counter)
    items: list[dict[str, Any]] = field(default_factory=list)  # per-item lines (dry runs only)
    notes: list[str] = field(default_factory=list)
    #: the first :data:`MAX_LISTED_IDS` item ids of each outcome (status)
    ids: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    #: per status and currency, minor units owed but not moved because of Stripe's rounding
    residues: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    #: one sentence the run summary shows first for this step (e.g. the reconciliation's
    #: "Reconciles" / "Does not reconcile")
    headline: str | None = None

    @property
    def has_failures(self) -> bool:
        return self.failed_total > 0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, outcome: ItemOutcome) -> None:
        self.counts[outcome.status] += 1
        if len(self.ids[outcome.status]) < MAX_LISTED_IDS:
            self.ids[outcome.status].append(outcome.item_id)
        if outcome.amount is not None and outcome.currency:
            self.amounts[outcome.status][outcome.currency.upper()] += outcome.amount
        if outcome.residue and outcome.currency:
            self.residues[outcome.status][outcome.currency.upper()] += outcome.residue
        if outcome.reason and (
            (outcome.status, outcome.reason) in self.reasons
            or len(self.reasons) < MAX_LISTED_REASONS
        ):
            self.reasons[(outcome.status, outcome.reason)] += 1
        if outcome.failed:
            self.failed_total += 1
            if len(self.failed) < MAX_LISTED_FAILURES:
                self.failed.append({"id": outcome.item_id, "reason": outcome.reason or "unknown"})
        if self.dry_run:
            line: dict[str, Any] = {"id": outcome.item_id, "status": outcome.status}
            if outcome.reason:
                line["reason"] = outcome.reason
            if outcome.amount is not None and outcome.currency:
                line["amount"] = format_minor(outcome.amount, outcome.currency)
            if outcome.residue and outcome.currency:
                line["residue"] = format_minor(outcome.residue, outcome.currency)
            self.items.append(line)

    def merge(self, other: BatchSummary) -> None:
        """Fold another summary (e.g. the service orders of the same step) into this one."""
        self.counts.update(other.counts)
        for status, per_currency in other.amounts.items():
            self.amounts[status].update(per_currency)
        for status, per_currency in other.residues.items():
            self.residues[status].update(per_currency)
        room = MAX_LISTED_FAILURES - len(self.failed)
        self.failed.extend(other.failed[: max(room, 0)])
        self.failed_total += other.failed_total
        for pair, n in other.reasons.items():
            if pair in self.reasons or len(self.reasons) < MAX_LISTED_REASONS:
                self.reasons[pair] += n
        self.items.extend(other.items)
        self.notes.extend(other.notes)
        for status, ids in other.ids.items():
            mine = self.ids[status]
            mine.extend(ids[: max(MAX_LISTED_IDS - len(mine), 0)])

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe view: amounts as decimal strings in major units (``"12.34"``)."""
        amounts = _decimal_amounts(self.amounts)
        result: dict[str, Any] = {
            "workflow": self.workflow,
            "step": self.step,
            "dry_run": self.dry_run,
            "total": self.total,
            "counts": dict(sorted(self.counts.items())),
            "amounts": amounts,
            "failed_total": self.failed_total,
            "failed": list(self.failed),
            "ids": {status: list(ids) for status, ids in sorted(self.ids.items()) if ids},
            "reasons": [
                {"status": status, "reason": reason, "count": n}
                for (status, reason), n in self.reasons.most_common()
            ],
        }
        if self.dry_run:
            result["items"] = list(self.items)
        if self.notes:
            result["notes"] = list(self.notes)
        if self.headline:
            result["headline"] = self.headline
        residues = _decimal_amounts(self.residues, skip_zero=True)
        if residues:  # only when Stripe's rounding left something (README "Currencies")
            result["residues"] = residues
        return result

    def describe(self) -> str:
        """A few log lines a data engineer can read at a glance."""
        parts = [
            f"{self.workflow}/{self.step}{' (dry run)' if self.dry_run else ''}: "
            f"{self.total} item(s)"
        ]
        for status, n in sorted(self.counts.items()):
            money = ", ".join(
                format_minor(v, c) for c, v in sorted(self.amounts.get(status, {}).items())
            )
            parts.append(f"  {status}: {n}" + (f" ({money})" if money else ""))
            left = ", ".join(
                format_minor(v, c) for c, v in sorted(self.residues.get(status, {}).items()) if v
            )
            if left:
                parts.append(f"    residue not moved (Stripe rounding): {left}")
        for item in self.failed:
            parts.append(f"  failed {item['id']}: {item['reason']}")
        parts.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(parts)


def _decimal_amounts(
    per_status: dict[str, Counter[str]], *, skip_zero: bool = False
) -> dict[str, dict[str, str]]:
    """``{status: {currency: "12.34"}}`` in major units (JSON-safe)."""
    return {
        status: {
            cur: str(from_minor(minor, cur))
            for cur, minor in sorted(per.items())
            if minor or not skip_zero
        }
        for status, per in sorted(per_status.items())
        if per and (any(per.values()) or not skip_zero)
    }


def run_batch(
    items: Iterable[T],
    handle: Callable[[T], ItemOutcome | Iterable[ItemOutcome]],
    *,
    item_id: Callable[[T], str],
    summary: BatchSummary,
) -> BatchSummary:
    """Run ``handle`` on every item; one item's failure never stops the batch.

    ``handle`` may return one outcome or several (an order with a tax-split twin yields two).
    An :class:`InvalidItemError` becomes a failed outcome with its reason; any other exception is
    logged with its traceback and also recorded as failed, so nothing is lost silently.
    Errors raised while *iterating* ``items`` (the provider is down) propagate, and so does a
    :class:`ConfigurationError` (a wrong key is not an item's fault): the step fails.
    """
    for item in items:
        ident = _safe_id(item_id, item)
        try:
            result = handle(item)
        except ConfigurationError:
            raise
        except InvalidItemError as exc:
            log.warning("Skipping %s: %s", ident, exc.reason)
            summary.add(ItemOutcome(ident, FAILED, f"invalid data: {exc.reason}", failed=True))
            continue
        except MiraklConnectorError as exc:
            log.error("Item %s failed: %s", ident, exc)
            summary.add(ItemOutcome(ident, FAILED, str(exc), failed=True))
            continue
        except Exception as exc:  # noqa: BLE001 - one bad item must not stop the batch
            log.exception("Unexpected error on item %s", ident)
            summary.add(ItemOutcome(ident, FAILED, f"unexpected error: {exc!r}", failed=True))
            continue
        outcomes = [result] if isinstance(result, ItemOutcome) else list(result)
        for outcome in outcomes:
            summary.add(outcome)
    return summary


def decision_failure_reason(exc: Exception, *, item: str) -> str:
    """The reason recorded on a ledger row whose *decision* raised ``exc`` (the row is saved
    FAILED with it, so the next run decides it again); an unexpected error is logged with its
    traceback."""
    if isinstance(exc, InvalidItemError):
        return f"invalid data: {exc.reason}"
    if isinstance(exc, PaymentProviderError):
        return f"Stripe error: {exc.message}"
    log.exception("Unexpected error while deciding %s", item)
    return f"unexpected error: {exc!r}"


def _safe_id(item_id: Callable[[Any], str], item: Any) -> str:
    try:
        return str(item_id(item))
    except Exception:  # noqa: BLE001 - a malformed item still needs a name in the summary
        return repr(item)[:80]


def chunked(iterable: Iterable[T], size: int) -> Iterable[list[T]]:
    """Yield lists of at most ``size`` items, streaming (the one chunking helper)."""
    chunk: list[T] = []
    for item in iterable:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def read_ahead(iterable: Iterable[T], depth: int = 1) -> Iterator[T]:
    """Iterate ``iterable`` in a background thread, up to ``depth`` items ahead of the caller.

    A plan step alternates between waiting for the next page of a provider list and deciding
    the page it has; reading the next chunk while this one is decided hides the network wait.
    Items arrive in order; an exception raised by the iterable is raised to the caller at the
    point it happened; a caller that stops early stops the reader. The iterable must not be
    shared with the caller's thread meanwhile (a client is used by one thread at a time).
    """
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(kind: str, value: Any) -> bool:
        while not stop.is_set():
            try:
                slots.put((kind, value), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def reader() -> None:
        try:
            for item in iterable:
                if not put("item", item):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, raised there
            put("error", exc)
            return
        put("end", None)

    thread = threading.Thread(target=reader, name="read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = slots.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        thread.join(timeout=5)
