"""Stripe's documented rate limits, in one place: the pools, the tasks' pacing and the simulator.

From Stripe's rate-limit page (https://docs.stripe.com/rate-limits, read 2026-12):

* limits are counted in requests per second **per Stripe account**; the global limit covers all
  of an account's API use: **100 requests/s in live mode, 25 in a sandbox (test mode)**;
* "some endpoints have additional limits of their own", and they count against the global limit
  too. Stripe treats each *named API operation* as one endpoint (``POST /v1/payment_intents`` and
  ``GET /v1/payment_intents/{id}`` are two; every id shares one). **Individual endpoints: 25
  requests/s unless noted**; noted lower: the Files API (20 reads and 20 writes per second) and the
  Search API (20 reads per second); 1,000 updates per PaymentIntent per hour (the connector
  updates an intent at most twice: not modelled);
* beyond a limit Stripe answers HTTP 429 with error code ``rate_limit``, and its rate limiters run
  *before* the idempotency layer, so a 429 is never saved for a key
  (https://docs.stripe.com/error-low-level, content errors).

Where the docs are silent, the stricter reading: requests a platform makes for a connected
account (``Stripe-Account``) count against the platform's own limits, and a key whose prefix is
not ``sk_live_``/``rk_live_`` gets the (lower) test-mode limits.

This module imports nothing from Airflow.
"""

from __future__ import annotations

import fnmatch
import math

#: Global limit per account, requests per second.
GLOBAL_LIMITS = {"live": 100, "test": 25}
#: Limit of one endpoint (named API operation) unless noted, requests per second, both modes.
ENDPOINT_LIMIT = 25
#: Endpoints with a lower documented limit: (method, path glob, requests per second).
ENDPOINT_LIMITS: tuple[tuple[str, str, int], ...] = (
    ("GET", "/v1/files*", 20),
    ("POST", "/v1/files*", 20),
    ("GET", "/v1/*/search", 20),
)
#: Share of the account's limits the connector's tasks may use together; the rest is for the
#: operator's checkout, the webhook app, the dashboard and other integrations.
AIRFLOW_SHARE = 0.8
#: What one task can send on its own: one request in flight, about 200 ms a write.
REQUESTS_PER_TASK = 5
MODES = tuple(GLOBAL_LIMITS)


def key_mode(api_key: str | None) -> str:
    """``live`` for a live key (``sk_live_``/``rk_live_``), ``test`` for anything else."""
    return "live" if (api_key or "").strip().startswith(("sk_live_", "rk_live_")) else "test"


def endpoint_limit(method: str, path: str) -> int:
    """The documented limit of the endpoint ``method path`` (requests per second)."""
    for limit_method, pattern, limit in ENDPOINT_LIMITS:
        if method.upper() == limit_method and fnmatch.fnmatchcase(path, pattern):
            return limit
    return ENDPOINT_LIMIT


def _checked(mode: str) -> str:
    if mode not in GLOBAL_LIMITS:
        raise ValueError(f"Stripe mode must be 'live' or 'test', got {mode!r}")
    return mode


def pool_slots(mode: str) -> int:
    """Slots of the ``stripe_api`` pool: the tasks that can fill the connector's share of the
    global limit at :data:`REQUESTS_PER_TASK` each (live 100 x 0.8 / 5 = 16, test 4)."""
    limit = GLOBAL_LIMITS[_checked(mode)]
    return max(1, math.floor(limit * AIRFLOW_SHARE / REQUESTS_PER_TASK))


def task_pacing(mode: str) -> tuple[float, float]:
    """Default pacing of one task: (requests/s overall, requests/s on any one endpoint).

    Every slot of the pool may run at once and, in a sharded step, all of them call the same
    endpoint (``POST /v1/transfers``), so each task keeps to an equal share of both the global
    limit and the endpoint limit: live 80 / 16 = 5 overall and 20 / 16 = 1.25 per endpoint,
    test 20 / 4 = 5 and 5. The endpoint limit (25/s in both modes) is what binds in live mode.
    """
    slots = pool_slots(mode)
    overall = GLOBAL_LIMITS[mode] * AIRFLOW_SHARE / slots
    per_endpoint = min(ENDPOINT_LIMIT, GLOBAL_LIMITS[mode]) * AIRFLOW_SHARE / slots
    return overall, per_endpoint
