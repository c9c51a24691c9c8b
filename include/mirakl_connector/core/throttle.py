"""Client-side pacing: keep a task's calls to a provider under a requests-per-second budget.

Retrying on HTTP 429 keeps a burst *correct*; pacing keeps it *cheap*. Without it, a batch that
can send faster than the provider's limit spends a good share of its calls on 429 answers, each
one a wasted round trip and a back-off, and a thread unlucky several times in a row runs out of
retries (its item then waits for the next run, in doubt). A payment provider's rate limit is also
shared with the marketplace's own checkout: the connector should take its budget, not all of it.

:class:`Throttle` is a token bucket shared by every thread that holds it. It does not know
about other processes: each Airflow task paces itself, and the pool that the task runs in caps
how many tasks pace at once (see :mod:`mirakl_connector.airflow.pools`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Throttle:
    """At most ``rate`` calls per second for all threads sharing this object, with a burst of
    at most ``burst`` calls (the generic cell rate algorithm, i.e. a token bucket).

    With ``burst=1`` calls are evenly spaced, ``1 / rate`` seconds apart. A larger burst lets a
    caller that fell behind (a slow answer, a busy interpreter) catch up with the calls it did
    not make, instead of losing that share of the budget for good; over any window the rate
    stays at most ``rate`` plus ``burst`` calls.

    :param rate: calls per second; must be positive.
    :param burst: calls that may go at once; at least 1.
    :param clock: monotonic clock (injectable for tests).
    :param sleep: how to wait (injectable for tests).
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be a positive number of calls per second, got {rate!r}")
        if not burst >= 1:
            raise ValueError(f"burst must be at least 1 call, got {burst!r}")
        self.rate = float(rate)
        self._interval = 1.0 / self.rate
        self._tolerance = (float(burst) - 1.0) * self._interval
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._due: float | None = None  # when the next call is due at the steady rate

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rate={self.rate:g})"

    def acquire(self) -> float:
        """Wait for this call's slot; return the seconds waited (0 when the budget allows now).

        Slots are handed out under a lock but waited for outside it, so threads queue in order
        and none holds the others up while it sleeps.
        """
        with self._lock:
            now = self._clock()
            due = now if self._due is None else max(self._due, now)
            start = max(now, due - self._tolerance)
            self._due = due + self._interval
        wait = start - now
        if wait > 0:
            self._sleep(wait)
        return max(wait, 0.0)
