"""Reading a chunk's Stripe charges in bulk: a list page or two instead of one GET per order.

Deciding a transfer or a refund needs the state of the order's charge (captured? refunded?).
One ``GET /v1/charges/<id>`` per order costs a call against the same rate limit the writes need;
a list page returns 100 charges for the same price. A checkout's charge is created within
moments of its Mirakl order, so the charges created around a chunk's orders hold almost all of
them. A charge the window misses (or any payment intent) is retrieved on its own by the caller:
the prefetch only saves calls, it never decides anything, and a failed list is not an error.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta

from mirakl_connector.core.errors import PaymentProviderError
from mirakl_connector.stripe.gateway import PaymentState, StripeGateway

log = logging.getLogger(__name__)

#: charges created this long before the chunk's first order or after its last are not listed
MARGIN = timedelta(hours=1)
#: below this many charges to check, one GET each costs no more than a list page
MIN_CHARGES = 3


class ChargePrefetch:
    """Lists the charges of consecutive chunks of orders, remembering the last window read.

    Chunks usually come in creation order, so a chunk's window overlaps the previous one's end:
    what that list returned is reused and only the part not read yet is listed.
    """

    def __init__(self, stripe: StripeGateway) -> None:
        self.stripe = stripe
        self._previous: dict[str, PaymentState] = {}
        self._listed: tuple[datetime, datetime] | None = None

    def fetch(self, wanted: Mapping[str, datetime]) -> dict[str, PaymentState]:
        """The states of the charges in ``wanted`` (charge id → its order's creation time) that
        a bulk read found; ids that are not charges (``ch_``/``py_``) are ignored."""
        charges = {i: at for i, at in wanted.items() if i.startswith(("ch_", "py_"))}
        found = {i: self._previous[i] for i in charges if i in self._previous}
        missing = len(charges) - len(found)
        if missing < MIN_CHARGES:
            return found
        dates = [at for i, at in charges.items() if i not in found]
        since, until = min(dates) - MARGIN, max(dates) + MARGIN
        if self._listed is not None and self._listed[0] <= since <= self._listed[1] < until:
            since = self._listed[1]
        try:
            listed, complete = self.stripe.list_charges(
                created_since=since, created_until=until, max_pages=missing // 100 + 2
            )
        except PaymentProviderError as exc:
            log.warning("Listing the chunk's charges failed (%s); checking them one by one", exc)
            return found
        self._previous = {c.id: c for c in listed}
        self._listed = (since, until) if complete else None
        found.update((i, self._previous[i]) for i in charges if i in self._previous)
        return found
