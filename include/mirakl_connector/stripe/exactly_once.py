"""Write to Stripe exactly once: replay the key, else look the object up, else create it.

Every money-moving write (transfer, reversal, payout, refund) follows the same sequence, because
each step closes a window in which a crash or a lost answer could move money twice or lose it:

* The key is committed to the ledger (``mark_*_attempt``) *before* the call. A process killed
  after Stripe acted but before the id was saved leaves a row *in doubt* (``attempted_at`` set, no
  Stripe id) that says which key it sent.
* A row in doubt is sent again with the *same* key inside :data:`REPLAY_WINDOW`: Stripe creates
  the object if the first request never arrived, or answers with the first result if it did.
* Past the window Stripe may have forgotten the key, so a replay could create a second object:
  the row is looked up at Stripe by its metadata first, and created with a new key only when
  nothing is found.
* ``idempotency_error`` (the key was already used with other parameters) means an earlier
  request with this key reached Stripe: look the object up rather than fail the row, since a
  FAILED row is retried with a new key. Found nothing: the row stays in doubt with a reason
  asking for a human, never FAILED.
* A server error that Stripe saved for the key (``KEY_SPENT``: ``Stripe-Should-Retry: false``
  or a replayed 5xx) will be answered again to every replay of that key for 24 h, so replaying
  cannot settle the row. Stripe's advice for a server error is to reconcile before starting
  another operation (https://docs.stripe.com/error-handling): the object is looked up by its
  metadata at once (found: done, minutes after the error instead of a day). Found nothing, the
  row waits :data:`SPENT_KEY_SETTLE` from the key's first use, looked up again on every run,
  and only then is sent with a new key: see :data:`SPENT_KEY_SETTLE` for why it waits.
* A refusal (``permanent``) means nothing was created: ``attempted_at`` is cleared so the next
  attempt gets a new key instead of replaying the refusal.
* Any other error (network, 5xx, 429 after the retry budget) leaves the outcome unknown: the row
  stays PENDING and in doubt, and the next run checks with the same key. It is never FAILED,
  because a FAILED row is retried with a new key.

The ladder itself (in doubt: look up first; found: record, never create; refused: FAILED;
unclear: UNKNOWN) is the provider-neutral :mod:`mirakl_connector.operations.send_once`; this
module adds what only Stripe has: the key, its replay window and spent keys. Each workflow
supplies the calls (find, mark, create) and records the result
(:class:`~mirakl_connector.operations.send_once.Recording`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Generic, Protocol, TypeVar

from mirakl_connector.core.errors import PaymentProviderError
from mirakl_connector.operations.send_once import (
    Recording,
    Refused,
    SendResult,
    Unknown,
    Written,
    attempt_once,
    refused_or_unknown,
    send_once,
)
from mirakl_connector.stripe.gateway import KEY_SPENT, REPLAY_WINDOW, CreatedObject

__all__ = [
    "KEY_LIFETIME",
    "LOOKUP_MARGIN",
    "SPENT_KEY_SETTLE",
    "Attempted",
    "Refused",
    "Unknown",
    "WriteResult",
    "Written",
    "lacking",
    "lookup_since",
    "write_and_record",
    "write_once",
]


class Attempted(Protocol):
    """A ledger row (a dataclass) that remembers its last attempt: transfer, payout, refund."""

    @property
    def attempted_at(self) -> datetime | None: ...

    @property
    def idempotency_key(self) -> str | None: ...

    @property
    def in_doubt(self) -> bool: ...


R = TypeVar("R", bound=Attempted)
T = TypeVar("T")

#: Stripe prunes an idempotency key once it is at least this old
KEY_LIFETIME = timedelta(hours=24)
#: slack for clock differences between us and Stripe
LOOKUP_MARGIN = timedelta(hours=1)
#: How long after the first use of a key for which Stripe saved a server error (and nothing made
#: with it can be found) the row is sent with a new key. Stripe documents that a 500's outcome is
#: indeterminate and that the saved answer never changes, but not whether or when the failed
#: request's effects can still appear (docs are silent, so the stricter choice): a new key sent
#: while they could would pay twice, waiting only pays later. The row is looked up on every run
#: meanwhile, and an hour is twelve runs of the 5-minute DAGs and within an Airflow day.
SPENT_KEY_SETTLE = timedelta(hours=1)

#: the answers of a Stripe write (see :mod:`mirakl_connector.operations.send_once`)
WriteResult = SendResult


def write_once(
    row: R,
    *,
    new_key: str,
    find: Callable[[R], str | None],
    mark: Callable[[R, str], R],
    create: Callable[[R, str], CreatedObject],
    now: datetime | None = None,
) -> tuple[WriteResult, R]:
    """Create (or recover) the Stripe object of ``row`` without ever creating it twice.

    The row is in doubt when :attr:`~mirakl_connector.ledger.records.ProviderWrite.in_doubt`
    says so (a previous attempt may have reached Stripe). Inside :data:`REPLAY_WINDOW` it is
    replayed with its key; past it, it is looked up first
    (:func:`mirakl_connector.operations.send_once.send_once`).

    :param new_key: the key for a fresh attempt (``…:retry<n>`` after a refusal).
    :param find: the object's id at Stripe, looked up by metadata, or ``None``.
    :param mark: commit the key to the ledger; returns the row as stored.
    :param create: the Stripe call, with the key.
    :return: the result and the row to record: as marked (``attempted_at`` cleared when
        refused), or unchanged when it was found before any attempt.
    """
    now = now or datetime.now(UTC)
    replay = row.in_doubt and row.attempted_at and now - row.attempted_at < REPLAY_WINDOW
    if replay:
        key = row.idempotency_key or new_key  # replay: Stripe answers with the first result
    else:
        key = new_key
    attempt = _Attempt(new_key, find, mark, create, now)
    return send_once(
        row,
        look_up_first=row.in_doubt and not replay,
        find=attempt.found,
        attempt=partial(attempt.send, key=key),
    )


def write_and_record(
    row: R,
    *,
    recorded: str | None,
    lacks: str | None,
    new_key: str,
    find: Callable[[R], str | None],
    mark: Callable[[R, str], R],
    create: Callable[[R, str], CreatedObject],
    recording: Recording[R, T],
) -> T:
    """The one way a workflow sends a row to Stripe and records the answer.

    A row that already holds its Stripe id (``recorded``) is recorded as created and never sent
    again; a row that lacks what the call needs (``lacks``: why, see :func:`lacking`) is
    recorded as refused, nothing sent; any other goes through :func:`write_once` and its answer
    is recorded by ``recording``.
    """
    if recorded:
        return recording.created(row, Written(recorded))
    if lacks:
        return recording.refused(row, Refused(lacks))
    result, row = write_once(row, new_key=new_key, find=find, mark=mark, create=create)
    return recording.record(row, result)


def lacking(reason: str, *needed: object) -> str | None:
    """``reason`` when any of the ``needed`` values is missing (empty, zero), else ``None``."""
    return None if all(needed) else reason


@dataclass(frozen=True)
class _Attempt(Generic[R]):
    """The calls of one :func:`write_once`, and what it does with each answer."""

    new_key: str
    find: Callable[[R], str | None]
    mark: Callable[[R, str], R]
    create: Callable[[R, str], CreatedObject]
    now: datetime

    def found(self, row: R) -> Written | None:
        """The object made for ``row``, looked up at Stripe by its metadata."""
        found = self.find(row)
        return Written(found, found=True) if found else None

    def send(self, row: R, key: str, *, fresh: bool = True) -> tuple[WriteResult, R]:
        """Mark ``key``, send it and read the answer (``fresh``: a spent key may be replaced)."""
        return attempt_once(
            row,
            mark=lambda r: self.mark(r, key),
            create=lambda r: self._created(r, key),
            on_error=partial(self._error, key=key, fresh=fresh),
        )

    def _created(self, row: R, key: str) -> Written:
        created = self.create(row, key)
        return Written(created.id, replayed=created.replayed)

    def _error(
        self, row: R, exc: PaymentProviderError, *, key: str, fresh: bool
    ) -> tuple[WriteResult, R]:
        if exc.code == "idempotency_error":
            found = self.found(row)
            if found:
                return found, row
            # The key reached Stripe, yet nothing made with it was found: refusing would
            # send a new key next run and could pay twice. The row stays in doubt, reported
            # every run, until someone checks Stripe.
            return Unknown(
                f"Stripe says key {key} was already used with other parameters and no "
                "object made with it was found since "
                f"{lookup_since(row, self.now):%Y-%m-%d %H:%M} UTC: "
                "check Stripe before settling this row by hand"
            ), row
        if exc.code == KEY_SPENT:
            return self.after_spent_key(row, key, exc, fresh=fresh)
        reason = f"Outcome unknown ({exc.message}); the next run checks with the same key"
        return refused_or_unknown(exc, reason), row

    def after_spent_key(
        self, row: R, key: str, exc: PaymentProviderError, *, fresh: bool
    ) -> tuple[WriteResult, R]:
        """Stripe saved a server error for ``key``: look the object up, or wait, or re-send."""
        found = self.found(row)
        if found:
            return found, row
        settled = (row.attempted_at or self.now) + SPENT_KEY_SETTLE
        if not fresh or self.now < settled or self.new_key == key:
            return Unknown(
                f"Stripe saved a server error for key {key} ({exc.message}) and nothing made "
                "with it was found; looked up again every run, sent with a new key from "
                f"{max(settled, self.now):%Y-%m-%d %H:%M} UTC if still nothing is found"
            ), row
        return self.send(row, self.new_key, fresh=False)


def lookup_since(row: Attempted, now: datetime | None = None) -> datetime:
    """How far back a metadata lookup of ``row``'s object must search Stripe.

    From the first use of the row's key (``attempted_at``, which a replay with the same key does
    not move), and never less than one key lifetime back: an ``idempotency_error`` proves that
    a request with this key reached Stripe, at most that long ago, even when the ledger does not
    know when (a ledger restored from a backup). Searching from the *latest* attempt instead
    missed an object made earlier, and the row was then re-created with a new key.
    """
    now = now or datetime.now(UTC)
    first_use = row.attempted_at or now
    return min(first_use, now - KEY_LIFETIME) - LOOKUP_MARGIN
