"""The one retry policy for every provider call (Mirakl, Stripe, later Hyperwallet).

Retries are bounded twice: by attempts and by elapsed time, so a run never hangs on a provider
that stays down. The wait is capped exponential back-off with jitter, except when the provider
says how long to wait (``Retry-After``), which is honoured up to ``max_delay``.

Callers decide *what* is retryable with a small predicate; this module decides *how long* and
*how often*. Money-moving POSTs are only retried with the same idempotency key (see
:mod:`mirakl_connector.stripe.gateway`), so a retry can never move money twice.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import tenacity

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a transient failure.

    :param max_attempts: total tries, the first one included.
    :param max_elapsed: seconds after which no new attempt is started.
    :param base_delay: first back-off delay in seconds; doubles on every attempt.
    :param max_delay: cap on a single wait, ``Retry-After`` included.
    :param sleep: injectable for tests (``lambda s: None``).
    """

    max_attempts: int = 5
    max_elapsed: float = 60.0
    base_delay: float = 0.5
    max_delay: float = 20.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)

    @classmethod
    def no_wait(cls, max_attempts: int = 5) -> RetryPolicy:
        """A policy that retries without sleeping (tests)."""
        return cls(max_attempts=max_attempts, base_delay=0, max_delay=0, sleep=lambda _s: None)

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` starts at 1)."""
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.max_delay)
        ceiling = min(self.base_delay * 2.0 ** (attempt - 1), self.max_delay)
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def call(
        self,
        fn: Callable[[], T],
        *,
        is_retryable: Callable[[BaseException], bool],
        retry_after: Callable[[BaseException], float | None] = lambda _exc: None,
        on_retry: Callable[[BaseException, int, float], None] | None = None,
    ) -> T:
        """Run ``fn``; retry while ``is_retryable(exc)`` and the budget allows; re-raise the last.

        :param retry_after: extracts a provider's wait hint (seconds) from the exception.
        :param on_retry: called with (exception, attempt number, wait) before each wait, for logs.
        """

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            delay = self.backoff(state.attempt_number, retry_after(exc) if exc else None)
            if on_retry and exc is not None:
                on_retry(exc, state.attempt_number, delay)
            return delay

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_attempts)
            | tenacity.stop_after_delay(self.max_elapsed),
            wait=wait,
            retry=tenacity.retry_if_exception(is_retryable),
            sleep=self.sleep,
            reraise=True,
        )
        return retrying(fn)


def parse_retry_after(value: str | None) -> float | None:
    """Parse a ``Retry-After`` header given in seconds (the form Mirakl documents)."""
    if not value:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        return None
