"""Stripe's limits table: what it says (docs.stripe.com/rate-limits), and that the simulator's
limiter, the pools and the tasks' pacing all read it."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from mirakl_sandbox.faults import DocumentedLimits

from mirakl_connector.airflow import pools
from mirakl_connector.core.shards import DEFAULT_SHARDS
from mirakl_connector.stripe import limits as stripe_limits


class FrozenClock:
    """A monotonic clock that only moves when told: token buckets never refill by themselves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_table_holds_stripe_s_documented_figures() -> None:
    rows = {row.name: (row.scope, row.live, row.test, row.window_seconds) for row in
            stripe_limits.LIMITS}  # fmt: skip
    assert rows == {
        "global": ("account", 100, 25, 1.0),  # live 100 requests/s, sandbox 25
        "endpoint": ("endpoint", 25, 25, 1.0),  # "individual API endpoints": 25 unless noted
        "files_read": ("resource", 20, 20, 1.0),
        "files_write": ("resource", 20, 20, 1.0),
        "search": ("resource", 20, 20, 1.0),
        "payment_intent_updates": ("object", 1000, 1000, 3600.0),  # per PaymentIntent per hour
    }
    assert all(row.source.startswith("https://") for row in stripe_limits.LIMITS)
    assert [stripe_limits.key_mode(k) for k in ("sk_live_x", "rk_live_x", "sk_test_x", "x")] == [
        "live", "live", "test", "test"
    ]  # fmt: skip
    assert stripe_limits.endpoint_limit("POST", "/v1/transfers") == 25
    assert stripe_limits.endpoint_limit("POST", "/v1/payouts") == 25  # silent: the default
    assert stripe_limits.endpoint_limit("POST", "/v1/files") == 20
    assert stripe_limits.endpoint_limit("GET", "/v1/files/file_1") == 20
    assert stripe_limits.endpoint_limit("GET", "/v1/customers/search") == 20
    # a per-hour object limit is not a per-second endpoint budget
    assert stripe_limits.endpoint_limit("POST", "/v1/payment_intents/pi_1/capture") == 25
    with pytest.raises(ValueError, match="'live' or 'test'"):
        stripe_limits.global_limit("prod")


def _burst(limits: DocumentedLimits, key: str, method: str, path: str, endpoint: str, n: int):
    return [limits.refuse(key, method, path, endpoint) for _ in range(n)]


@pytest.mark.parametrize("mode", stripe_limits.MODES)
def test_the_simulator_allows_each_row_s_figure_in_a_second_and_refuses_the_next(mode) -> None:
    clock = FrozenClock()
    limits = DocumentedLimits(clock, mode=mode)  # the mode forced, whatever the key
    key = "sk_test_any"
    per_endpoint = int(stripe_limits.ENDPOINT_DEFAULT.requests(mode))
    whole = int(stripe_limits.GLOBAL.requests(mode))

    # One endpoint: 25 then "endpoint" (in both modes).
    assert _burst(limits, key, "POST", "/v1/transfers", "POST transfers", per_endpoint + 1) == [
        None
    ] * per_endpoint + ["endpoint"]
    clock.now += 1.0
    # The account: 100 (live) / 25 (test) over several endpoints, then "global".
    results = [limits.refuse(key, "GET", "/v1/x", f"GET e{i % 10}") for i in range(whole + 1)]
    assert results == [None] * whole + ["global"]
    clock.now += 1.0
    # Shared resources: every Files read (list and retrieve) draws on one budget of 20.
    reads = [
        limits.refuse(key, "GET", path, f"GET {path}")
        for path in ["/v1/files", "/v1/files/file_1"] * 10 + ["/v1/files/file_2"]
    ]
    assert reads == [None] * 20 + ["files_read"]
    clock.now += 1.0
    searches = [limits.refuse(key, "GET", f"/v1/{r}/search", f"GET {r}") for r in
                ["charges", "customers"] * 10 + ["invoices"]]  # fmt: skip
    assert searches == [None] * 20 + ["search"]


def test_the_simulator_takes_each_key_s_mode_from_its_prefix_unless_told() -> None:
    limits = DocumentedLimits(FrozenClock())
    test = [limits.refuse("sk_test_a", "GET", "/v1/x", f"GET e{i % 5}") for i in range(26)]
    live = [limits.refuse("sk_live_a", "GET", "/v1/x", f"GET e{i % 5}") for i in range(101)]
    assert test == [None] * 25 + ["global"]
    assert live == [None] * 100 + ["global"]


def test_a_payment_intent_takes_1000_updates_an_hour_whatever_the_endpoint() -> None:
    """1,000 update requests per PaymentIntent per hour; the docs do not say which requests are
    updates, so every POST to the intent counts (update, capture, cancel)."""
    clock = FrozenClock()
    limits = DocumentedLimits(clock, mode="live")
    results = []
    for i in range(1020):
        clock.now += 0.05  # 20/s: under every per-second limit
        action = ("", "/capture", "/cancel")[i % 3]
        results.append(
            limits.refuse(
                "sk_live_k", "POST", f"/v1/payment_intents/pi_1{action}", f"POST a{i % 3}"
            )
        )
    # 51 s have passed: the bucket refilled 1000 / 3600 x 51 = 14 tokens on top of its 1000.
    assert results[:1000] == [None] * 1000
    assert "payment_intent_updates" in results
    assert set(results) == {None, "payment_intent_updates"}
    assert limits.refuse("sk_live_k", "POST", "/v1/payment_intents/pi_2", "POST a0") is None
    clock.now += 3600
    assert limits.refuse("sk_live_k", "POST", "/v1/payment_intents/pi_1", "POST a0") is None


def test_the_limiter_and_the_pacing_read_the_table(monkeypatch) -> None:
    """Change a figure in the table: the simulator, the pool sizes and the pacing follow."""
    monkeypatch.setattr(
        stripe_limits, "GLOBAL", dataclasses.replace(stripe_limits.GLOBAL, live=200)
    )
    monkeypatch.setattr(
        stripe_limits,
        "ENDPOINT_DEFAULT",
        dataclasses.replace(stripe_limits.ENDPOINT_DEFAULT, live=50),
    )
    assert pools.stripe_slots("live") == 32  # 200 x 0.8 / 5
    assert pools.pool_specs("live")[0].slots == 32
    assert stripe_limits.shards_to_fill("live") == 8  # 50 x 0.8 / 5
    assert stripe_limits.task_pacing("live") == (5, 5)
    limits = DocumentedLimits(FrozenClock(), mode="live")
    burst = _burst(limits, "sk_live_k", "POST", "/v1/transfers", "POST transfers", 51)
    assert burst == [None] * 50 + ["endpoint"]
    assert stripe_limits.requests_bound({("POST", "/v1/transfers"): 500}, "live") == (
        10.0,
        "POST /v1/transfers",
    )


@pytest.mark.parametrize("mode", stripe_limits.MODES)
def test_a_full_pool_and_a_full_step_stay_within_the_share_of_each_limit(mode) -> None:
    share = stripe_limits.AIRFLOW_SHARE
    slots = stripe_limits.pool_slots(mode)
    overall, per_endpoint = stripe_limits.task_pacing(mode)
    # Every slot busy: the account's share of the global limit, no more.
    assert slots * overall <= stripe_limits.global_limit(mode) * share + 1e-9
    # A sharded step: its shards, together, at exactly the share of their endpoint.
    shards, shard_slots = stripe_limits.shards_to_fill(mode), stripe_limits.shard_slots(mode)
    assert shards * per_endpoint == pytest.approx(stripe_limits.ENDPOINT_DEFAULT.rate(mode) * share)
    assert shards * shard_slots <= slots
    shard_overall, shard_endpoint = stripe_limits.task_pacing(mode, shard_slots)
    assert shard_endpoint == per_endpoint
    # Room for a shard's reads on top of its writes wherever the global limit allows it.
    if mode == "live":
        assert shard_overall == 2 * shard_endpoint and shards * shard_slots <= slots // 2
    # No task is paced beyond what the pool pays for.
    assert stripe_limits.task_pacing(mode, slots + 5) == (slots * overall, per_endpoint)


@pytest.mark.parametrize("mode", stripe_limits.MODES)
def test_the_default_shard_count_fills_the_endpoint_share(mode) -> None:
    assert DEFAULT_SHARDS == stripe_limits.shards_to_fill(mode) == 4


def test_requests_bound_names_the_limit_that_binds() -> None:
    split = {("POST", "/v1/transfers"): 2500, ("GET", "/v1/charges"): 25}
    assert stripe_limits.requests_bound(split, "live") == (100.0, "POST /v1/transfers")
    assert stripe_limits.requests_bound(split, "live", 0.8) == (125.0, "POST /v1/transfers")
    # Test mode: the account's 25/s count the reads too.
    assert stripe_limits.requests_bound(split, "test") == (101.0, "global")
    many = {("POST", f"/v1/e{i}"): 500 for i in range(8)}  # 4,000 on 8 endpoints
    assert stripe_limits.requests_bound(many, "live") == (40.0, "global")
    files = {("GET", "/v1/files"): 300, ("GET", "/v1/files/{id}"): 300}
    assert stripe_limits.requests_bound(files, "live") == (30.0, "files_read")
    with pytest.raises(ValueError, match="share"):
        stripe_limits.requests_bound(split, "live", 0)


def test_every_endpoint_the_gateway_calls_has_the_default_endpoint_limit() -> None:
    """The gateway paces every endpoint to one budget: right only while it calls no endpoint
    with a lower limit of its own (Files, Search)."""
    here = Path(stripe_limits.__file__).parent
    source = "".join((here / name).read_text() for name in ("gateway.py", "requestor.py"))
    operations = set(re.findall(r"(?:\._v1|\bv1)\.([a-z_]+(?:\.[a-z_]+)+)", source))
    assert {"transfers.create", "refunds.create", "payouts.create"} <= operations
    assert not [op for op in operations if op.startswith("files.") or "search" in op]
