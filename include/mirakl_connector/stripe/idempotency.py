"""Idempotency keys: every Stripe write carries one, derived from Mirakl ids.

The same key is reused on every retry and every replay, so a retried or replayed call can never
move money twice. Stripe keeps a key's result for at least 24 h; after that, the workflows look
the object up by its metadata before anything is re-created (:data:`REPLAY_WINDOW`).
"""

from __future__ import annotations

from datetime import timedelta

#: Stripe keeps an idempotency key's result at least 24 h; every workflow replays a request whose
#: outcome is unknown with the same key only inside this window, and looks the object up after it.
REPLAY_WINDOW = timedelta(hours=23)


def idempotency_key(*parts: object) -> str:
    """Build a deterministic idempotency key from Mirakl ids (≤ 255 chars, as Stripe allows)."""
    key = "mirakl-connector:" + ":".join(str(p) for p in parts)
    if len(key) > 255:
        raise ValueError(f"idempotency key too long ({len(key)} chars): {key[:60]}...")
    return key


def attempt_key(attempts: int, *parts: object) -> str:
    """The key of a row's next attempt: :func:`idempotency_key` of ``parts`` for the first, with
    ``retry<n>`` after ``n`` definite refusals (a refused request is never replayed)."""
    if attempts:
        parts = (*parts, f"retry{attempts}")
    return idempotency_key(*parts)
