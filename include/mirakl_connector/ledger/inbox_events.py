"""Turning a received provider event into an inbox row, and when to retry one (pure).

The inbox row keeps the whole event (the processing job needs nothing else), the object it is
about (for the out-of-order guard) and the provider's creation time (Stripe ``created``,
Hyperwallet ``createdOn``): arrival order is not event order, Stripe says so itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.ledger.records import InboxEvent, InboxStatus
from mirakl_connector.mirakl.orders import in_date_range

STRIPE = "stripe"
HYPERWALLET = "hyperwallet"

VIA_WEBHOOK = "webhook"
VIA_HEALING = "healing"

#: Attempts before an event is left FAILED for a human (about 4 hours of back-off in total).
MAX_ATTEMPTS = 8
_FIRST_DELAY = timedelta(minutes=1)
_MAX_DELAY = timedelta(hours=1)


def stripe_inbox_event(event: Mapping[str, Any], *, received_via: str = VIA_WEBHOOK) -> InboxEvent:
    """The inbox row of a (verified) Stripe event."""
    event_id = event.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise InvalidItemError("Stripe event without an id", item_id=None)
    obj = (event.get("data") or {}).get("object") or {}
    created = event.get("created")
    return InboxEvent(
        event_id=event_id,
        source=STRIPE,
        type=str(event.get("type") or ""),
        payload=dict(event),
        object_id=obj.get("id") if isinstance(obj.get("id"), str) else None,
        event_created=datetime.fromtimestamp(created, UTC) if isinstance(created, int) else None,
        received_via=received_via,
    )


def hyperwallet_inbox_event(notification: Mapping[str, Any]) -> InboxEvent:
    """The inbox row of a Hyperwallet notification (``token``, ``type``, ``createdOn``, ``object``).

    :raises InvalidItemError: no token or type (the endpoint answers 400).
    """
    token = notification.get("token")
    kind = notification.get("type")
    if not isinstance(token, str) or not token:
        raise InvalidItemError("Hyperwallet notification without a token", item_id=None)
    if not isinstance(kind, str) or not kind:
        raise InvalidItemError("Hyperwallet notification without a type", item_id=token)
    obj = notification.get("object") or {}
    object_id = obj.get("token") if isinstance(obj, Mapping) else None
    return InboxEvent(
        event_id=token,
        source=HYPERWALLET,
        type=kind,
        payload=dict(notification),
        object_id=object_id if isinstance(object_id, str) else None,
        event_created=_hyperwallet_time(notification.get("createdOn")),
        received_via=VIA_WEBHOOK,
    )


def _hyperwallet_time(value: Any) -> datetime | None:
    """``createdOn`` as an aware instant (Hyperwallet sends UTC without an offset).

    :raises InvalidItemError: a date outside 1970-2999 (year 9999 overflows the arithmetic the
        ordering and retry code does with it): the endpoint answers 400.
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if not in_date_range(parsed):
        raise InvalidItemError(f"createdOn is out of range: {value!r}")
    return parsed


def retry_delay(attempts: int) -> timedelta:
    """Back-off after the ``attempts``-th failed attempt: 1, 2, 4 ... minutes, at most 1 h."""
    if attempts < 1:
        return _FIRST_DELAY
    delay: timedelta = min(_FIRST_DELAY * (2 ** (attempts - 1)), _MAX_DELAY)
    return delay


def after_failure(event: InboxEvent, error: str, *, now: datetime) -> InboxEvent:
    """The event after a failed attempt: FAILED, with its next attempt or, past the last, none.

    A FAILED event without ``next_attempt_at`` is given up: the processing job no longer picks
    it up by itself (its run summary and the alert named it); a manual run with its id retries it.
    """
    attempts = event.attempts + 1
    next_at = now + retry_delay(attempts) if attempts < MAX_ATTEMPTS else None
    return _replace(
        event,
        status=InboxStatus.FAILED,
        attempts=attempts,
        last_error=error,
        next_attempt_at=next_at,
        processed_at=None,
    )


def settled(
    event: InboxEvent, status: InboxStatus, note: str | None, *, now: datetime
) -> InboxEvent:
    """The event once handled: PROCESSED or IGNORED (``note`` says why it was ignored)."""
    return _replace(
        event,
        status=status,
        attempts=event.attempts + 1,
        last_error=note,
        next_attempt_at=None,
        processed_at=now,
    )


def _replace(event: InboxEvent, **changes: Any) -> InboxEvent:
    from dataclasses import replace

    return replace(event, **changes)
