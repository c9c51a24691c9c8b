"""Client-side pacing: keep a task's calls to a provider under a requests-per-second budget.

Retrying on HTTP 429 keeps a burst *correct*; pacing keeps it *cheap*. Without it, a batch that
can send faster than the provider's limit spends a good share of its calls on 429 answers, each
one a wasted round trip and a back-off, and a thread unlucky several times in a row runs out of
retries (its item then waits for the next run, in doubt). A payment provider's rate limit is also
shared with the marketplace's own checkout: the connector should take its budget, not all of it.

:class:`Throttle` spaces calls evenly (``1 / rate`` seconds apart) across every thread that
shares it. It does not know about other processes: each Airflow task paces itself, and the pool
that the task runs in caps how many tasks pace at once (see :mod:`mirakl_connector.airflow.pools`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Throttle:
    """At most ``rate`` calls per second, evenly spaced, for all threads sharing this object.

    :param rate: calls per second; must be positive.
    :param clock: monotonic clock (injectable for tests).
    :param sleep: how to wait (injectable for tests).
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be a positive number of calls per second, got {rate!r}")
        self.rate = float(rate)
        self._interval = 1.0 / self.rate
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot: float | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rate={self.rate:g})"

    def acquire(self) -> float:
        """Wait for this call's slot; return the seconds waited (0 when the budget allows now).

        Slots are handed out under a lock but waited for outside it, so threads queue in order
        and none holds the others up while it sleeps. An idle period is not saved up as a burst:
        the provider's own bucket may be drained by someone else meanwhile.
        """
        with self._lock:
            now = self._clock()
            slot = now if self._next_slot is None else max(now, self._next_slot)
            self._next_slot = slot + self._interval
        wait = slot - now
        if wait > 0:
            self._sleep(wait)
        return max(wait, 0.0)
