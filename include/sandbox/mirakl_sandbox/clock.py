"""The sandbox clock: real time plus an offset that tests can advance.

Everything time-dependent in the simulator (idempotency key expiry, ``created`` stamps, Mirakl
``customer_debited_date``) reads this clock, so a test can jump 24 hours ahead without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class SandboxClock:
    """Wall-clock seconds shifted by an adjustable offset.

    :param source: the underlying time source (``time.time`` by default; inject a fake in tests).
    """

    def __init__(self, source: Callable[[], float] = time.time) -> None:
        self._source = source
        self._offset = 0.0

    def now(self) -> float:
        """Current sandbox time, Unix seconds."""
        return self._source() + self._offset

    def advance(self, seconds: float) -> float:
        """Move the clock forward (or back, with a negative value); return the new time."""
        self._offset += float(seconds)
        return self.now()

    def set(self, timestamp: float) -> float:
        """Jump to an absolute Unix time; the clock keeps ticking from there."""
        self._offset = float(timestamp) - self._source()
        return self.now()

    @property
    def offset(self) -> float:
        """Seconds added to the source time."""
        return self._offset
