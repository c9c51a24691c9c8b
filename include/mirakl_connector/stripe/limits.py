"""Stripe's documented rate limits, as one table: it sizes the pools, paces the tasks and drives
the simulator's limiter.

What Stripe documents (https://docs.stripe.com/rate-limits, read 2026-12, with its en-GB, de-DE
and ja-JP versions):

* limits are counted in requests per second **per Stripe account**; the global limit covers all
  of an account's API use: **100 requests/s in live mode, 25 in a sandbox (test mode)**;
* "some endpoints have additional limits of their own", and they count against the global limit
  too. Stripe treats each *named API operation* as one endpoint (``POST /v1/payment_intents`` and
  ``GET /v1/payment_intents/{id}`` are two; every id shares one). **Individual endpoints: 25
  requests/s unless noted**. Noted lower: the Files API, 20 reads and 20 writes per second; the
  Search API, 20 reads per second "for all search endpoints in both live mode and test mode"
  (the 2023 page, https://web.archive.org/web/20230426171232/https://stripe.com/docs/rate-limits);
  and 1,000 update requests per PaymentIntent per hour. The Subscriptions and Meter Events limits
  concern APIs the connector does not call and are left out;
* beyond a limit Stripe answers HTTP 429 with error code ``rate_limit``; its rate limiters run
  *before* the idempotency layer, so a 429 is never saved for a key
  (https://docs.stripe.com/error-low-level, content errors). Stripe also has a concurrency
  limiter and answers 429 ``lock_timeout`` when requests contend for one object; neither has a
  published figure, so neither is in the table (each connector task has one request in flight);
* Stripe's advice for bulk work: "limit background jobs, such as performing mass refunds, to a
  subset of the maximum", so that live charges still succeed
  (https://support.stripe.com/questions/rate-limit-error-when-creating-bulk-api-requests): hence
  :data:`AIRFLOW_SHARE`.

Where the docs are silent, the stricter reading:

* requests a platform makes for a connected account (``Stripe-Account``) count against the
  platform's own limits (so a payout or a seller-to-platform transfer counts as the platform's);
* a key whose prefix is not ``sk_live_``/``rk_live_`` gets the (lower) test-mode limits;
* Payouts have no limit of their own in the docs: the default 25/s per endpoint applies;
* "update requests" of a PaymentIntent: every ``POST`` to one intent (update, confirm, capture,
  cancel) counts;
* the burst: Stripe's limiters are token buckets (https://stripe.com/blog/rate-limiters) whose
  size is not published. A bucket of one second's worth of requests is the smallest that never
  refuses traffic that keeps to the documented figure in every second, so the simulator uses it.

This module imports nothing from Airflow.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping
from dataclasses import dataclass

RATE_LIMITS_PAGE = "https://docs.stripe.com/rate-limits"
RATE_LIMITS_PAGE_2023 = (
    "https://web.archive.org/web/20230426171232/https://stripe.com/docs/rate-limits"
)

#: Every request of the account shares the budget.
ACCOUNT = "account"
#: Each endpoint (named API operation) has a budget of its own.
ENDPOINT = "endpoint"
#: Every request matching the row (several endpoints) shares one budget.
RESOURCE = "resource"
#: Each object (the id in the path) has a budget of its own.
OBJECT = "object"

MODES = ("live", "test")


@dataclass(frozen=True)
class StripeLimit:
    """One documented limit: ``live``/``test`` requests per ``window_seconds``.

    :param scope: what shares one budget: :data:`ACCOUNT`, :data:`ENDPOINT`, :data:`RESOURCE`
        or :data:`OBJECT`.
    :param method: the HTTP method the row applies to (``None``: every request).
    :param path: a glob of the paths it applies to (``None``: every request); for an
        :data:`OBJECT` row the ``*`` is the object's id.
    """

    name: str
    scope: str
    live: float
    test: float
    source: str
    window_seconds: float = 1.0
    method: str | None = None
    path: str | None = None

    def requests(self, mode: str) -> float:
        """Requests allowed per window in ``mode``."""
        return self.live if check_mode(mode) == "live" else self.test

    def rate(self, mode: str) -> float:
        """Requests per second in ``mode``."""
        return self.requests(mode) / self.window_seconds

    def matches(self, method: str, path: str) -> bool:
        """Whether the request ``method path`` counts against this row."""
        if self.method is not None and method.upper() != self.method:
            return False
        return self.path is None or fnmatch.fnmatchcase(path, self.path)

    def object_id(self, path: str) -> str:
        """The id of the object an :data:`OBJECT` row counts ``path`` against."""
        position = (self.path or "").split("/").index("*")
        return path.split("/")[position]


#: Stripe's documented limits (module docstring for the wording and the silences).
LIMITS: tuple[StripeLimit, ...] = (
    StripeLimit("global", ACCOUNT, 100, 25, RATE_LIMITS_PAGE),
    StripeLimit("endpoint", ENDPOINT, 25, 25, RATE_LIMITS_PAGE),
    StripeLimit("files_read", RESOURCE, 20, 20, RATE_LIMITS_PAGE, method="GET", path="/v1/files*"),
    StripeLimit(
        "files_write", RESOURCE, 20, 20, RATE_LIMITS_PAGE, method="POST", path="/v1/files*"
    ),
    StripeLimit(
        "search", RESOURCE, 20, 20, RATE_LIMITS_PAGE_2023, method="GET", path="/v1/*/search"
    ),
    StripeLimit(
        "payment_intent_updates",
        OBJECT,
        1000,
        1000,
        RATE_LIMITS_PAGE,
        window_seconds=3600,
        method="POST",
        path="/v1/payment_intents/*",
    ),
)
_BY_NAME = {row.name: row for row in LIMITS}
GLOBAL = _BY_NAME["global"]
ENDPOINT_DEFAULT = _BY_NAME["endpoint"]

#: Share of the account's limits the connector's tasks may use together; the rest is for the
#: marketplace's checkout, the webhook app, the dashboard and other integrations (Stripe's
#: advice above). Applied to the global limit and to every endpoint's.
AIRFLOW_SHARE = 0.8
#: What one task can send on its own: one request in flight, about 200 ms a write.
REQUESTS_PER_TASK = 5


def key_mode(api_key: str | None) -> str:
    """``live`` for a live key (``sk_live_``/``rk_live_``), ``test`` for anything else."""
    return "live" if (api_key or "").strip().startswith(("sk_live_", "rk_live_")) else "test"


def check_mode(mode: str) -> str:
    """``mode`` if it is ``live`` or ``test``; a clear error otherwise."""
    if mode not in MODES:
        raise ValueError(f"Stripe mode must be 'live' or 'test', got {mode!r}")
    return mode


def limit(name: str) -> StripeLimit:
    """The row named ``name`` (e.g. ``"global"``, ``"files_write"``)."""
    return _BY_NAME[name]


def global_limit(mode: str) -> float:
    """Requests per second of the whole account in ``mode`` (live 100, test 25)."""
    return GLOBAL.rate(mode)


def extra_limits(method: str, path: str) -> list[StripeLimit]:
    """The rows beyond the global and the default endpoint limit that ``method path`` counts
    against (a resource's shared budget, an object's)."""
    return [row for row in LIMITS if row.scope in (RESOURCE, OBJECT) and row.matches(method, path)]


def endpoint_limit(method: str, path: str, mode: str = "live") -> float:
    """Requests per second the endpoint of ``method path`` can take on its own: 25 unless a
    per-second row (Files, Search) is lower. Per-object limits are not per-second budgets of
    the endpoint and are left out."""
    rates = [ENDPOINT_DEFAULT.rate(mode)]
    rates += [row.rate(mode) for row in extra_limits(method, path) if row.window_seconds <= 1.0]
    return min(rates)


def requests_bound(
    requests: Mapping[tuple[str, str], int], mode: str, share: float = 1.0
) -> tuple[float, str]:
    """The fewest seconds Stripe's limits allow for ``requests`` and the limit that sets it.

    :param requests: ``(method, path template) → count``, one entry per endpoint, e.g.
        ``{("POST", "/v1/transfers"): 2500, ("GET", "/v1/charges"): 25}``.
    :param share: the part of each limit that may be used (1.0: the documented limits).
    :return: ``(seconds, "global")`` or ``(seconds, "POST /v1/transfers")``: the largest of the
        total over the global limit, each endpoint's count over its limit, and each shared
        resource's (Files, Search) total over its limit.
    """
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share!r}")
    seconds, binding = sum(requests.values()) / (global_limit(mode) * share), "global"
    shared: dict[str, int] = {}
    for (method, path), count in requests.items():
        own = count / (ENDPOINT_DEFAULT.rate(mode) * share)
        if own > seconds:
            seconds, binding = own, f"{method.upper()} {path}"
        for row in extra_limits(method, path):
            if row.scope == RESOURCE:
                shared[row.name] = shared.get(row.name, 0) + count
    for name, count in shared.items():
        own = count / (limit(name).rate(mode) * share)
        if own > seconds:
            seconds, binding = own, name
    return seconds, binding


# -- pacing: what the pools and the tasks take of the table ------------------------------------


def pool_slots(mode: str, share: float = AIRFLOW_SHARE) -> int:
    """Slots of the ``stripe_api`` pool: the tasks that fill the connector's share of the
    global limit at :data:`REQUESTS_PER_TASK` each (live 100 x 0.8 / 5 = 16, test 4)."""
    return max(1, math.floor(global_limit(mode) * share / REQUESTS_PER_TASK))


def _endpoint_share(mode: str, share: float) -> float:
    """The connector's share of one endpoint (the global limit caps it in test mode)."""
    return min(ENDPOINT_DEFAULT.rate(mode), global_limit(mode)) * share


def shards_to_fill(mode: str, share: float = AIRFLOW_SHARE) -> int:
    """Tasks at :data:`REQUESTS_PER_TASK` it takes to fill the connector's share of one
    endpoint: 25 x 0.8 / 5 = 4 in both modes. A sharded step with this many shards writes at
    the whole share; each shard paces itself to its part (:func:`task_pacing`)."""
    return max(1, math.ceil(_endpoint_share(mode, share) / REQUESTS_PER_TASK))


def shard_slots(mode: str, share: float = AIRFLOW_SHARE) -> int:
    """Pool slots each shard of a sharded step takes (``pool_slots``): so many that a full
    step (:func:`shards_to_fill` shards) holds at most half of the pool, and each shard's
    overall budget is twice its endpoint budget, room for its reads. Live 16 // 8 = 2, test 1
    (its 4 slots are the step's)."""
    return max(1, pool_slots(mode, share) // (2 * shards_to_fill(mode, share)))


def task_pacing(mode: str, slots: int = 1, share: float = AIRFLOW_SHARE) -> tuple[float, float]:
    """The pace of a task holding ``slots`` slots of the ``stripe_api`` pool: (requests/s
    overall, requests/s on any one endpoint).

    * Overall: each slot is worth an equal part of the connector's share of the global limit,
      so the pool, full, stays within it: live 100 x 0.8 / 16 = 5 per slot, test 20 / 4 = 5.
    * On one endpoint: a shard's part of the endpoint's share, 25 x 0.8 / 4 = 5 in both modes
      (never more than the task's overall pace). The shards of a step, together, write at the
      connector's share of their endpoint (20/s), the one limit that binds a step that sends
      one kind of write. Two steps of different DAGs on one endpoint at once can exceed it for
      that while (nothing coordinates tasks but the pool); Stripe's 429 and the retries cover it.
    """
    slots = max(1, min(slots, pool_slots(mode, share)))
    overall = slots * global_limit(mode) * share / pool_slots(mode, share)
    per_endpoint = _endpoint_share(mode, share) / shards_to_fill(mode, share)
    return overall, min(per_endpoint, overall)
