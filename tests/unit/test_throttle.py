"""Client-side pacing: the slots a Throttle hands out, alone and across threads, and a paced
gateway against the sandbox's rate limit (no 429 at all where the unpaced one gets them)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from mirakl_sandbox import SandboxAdmin, SandboxServer

from mirakl_connector.core.retry import RetryPolicy
from mirakl_connector.core.throttle import Throttle
from mirakl_connector.stripe.gateway import StripeGateway


class FakeTime:
    """A clock that only moves when someone sleeps (thread-safe)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.waits: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.waits.append(round(seconds, 6))


def test_calls_are_spaced_one_interval_apart_and_idle_time_is_not_a_burst() -> None:
    t = FakeTime()
    throttle = Throttle(4, clock=t.clock, sleep=t.sleep)
    assert [throttle.acquire() for _ in range(4)] == [0.0, 0.25, 0.5, 0.75]
    t.now += 10  # a long pause: the next call goes at once, the one after waits again
    assert [throttle.acquire(), throttle.acquire()] == [0.0, 0.25]
    assert t.waits == [0.25, 0.5, 0.75, 0.25]


def test_threads_sharing_a_throttle_get_distinct_slots() -> None:
    t = FakeTime()
    throttle = Throttle(10, clock=t.clock, sleep=t.sleep)
    waits: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(5):
            w = throttle.acquire()
            with lock:
                waits.append(round(w, 6))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    # 20 calls at 10/s with the clock standing still: slots 0, 0.1, ... 1.9, each given once.
    assert sorted(waits) == [round(i / 10, 6) for i in range(20)]


@pytest.mark.parametrize("bad", [0, -1.5])
def test_rate_must_be_positive(bad: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        Throttle(bad)


def test_a_paced_gateway_never_meets_the_providers_rate_limit() -> None:
    """Against a 20 req/s bucket, 50 reads paced at 20/s get no 429; unpaced, they do."""
    with SandboxServer(seed=1, stripe_rate_limit=20) as server:
        admin = SandboxAdmin(server.url)
        try:
            admin.reset({"stripe": {"api_key": "sk_test_pace", "accounts": [{"id": "acct_1"}]}})

            def read_50(gateway: StripeGateway) -> int:
                admin.clear_stripe_requests()
                for _ in range(50):
                    gateway.platform_account_id()
                    gateway._platform_account = None  # read again, not from the cache
                return sum(1 for r in admin.stripe_requests() if r.get("status") == 429)

            retry = RetryPolicy(max_attempts=20, base_delay=0.05, max_delay=0.2)
            # Paced first, while the bucket is full: pacing keeps it from draining, it cannot
            # refill one that someone else emptied.
            paced = StripeGateway(
                "sk_test_pace", base_url=server.url, retry=retry, max_requests_per_second=20
            )
            assert read_50(paced) == 0
            assert paced.call_counts == {"accounts.retrieve_current": 50}
            unpaced = StripeGateway("sk_test_pace", base_url=server.url, retry=retry)
            assert read_50(unpaced) > 0, "the bucket never ran dry: the paced run proves nothing"
        finally:
            admin.close()


def test_a_burst_lets_a_late_caller_catch_up_without_exceeding_the_rate() -> None:
    t = FakeTime()

    def sleep(seconds: float) -> None:  # here the clock moves while the caller waits
        t.now += seconds

    throttle = Throttle(10, burst=3, clock=t.clock, sleep=sleep)
    starts = []

    def call() -> float:
        wait = round(throttle.acquire(), 6)
        starts.append(t.now)
        return wait

    # Three calls at once, then one every 0.1 s.
    assert [call() for _ in range(4)] == [0.0, 0.0, 0.0, 0.1]
    t.now += 0.35  # the caller was busy for 3.5 intervals
    # It catches up with a burst (not with everything it missed), then is paced again.
    assert [call() for _ in range(4)] == [0.0, 0.0, 0.0, 0.1]
    # In any window, never more than rate x window + burst calls.
    for i, first in enumerate(starts):
        for j in range(i, len(starts)):
            assert j - i + 1 <= 10 * (starts[j] - first) + 3 + 1e-9
    with pytest.raises(ValueError, match="burst"):
        Throttle(10, burst=0.5)


def test_per_endpoint_pacing_keeps_a_live_account_under_stripes_endpoint_limit() -> None:
    """The simulator enforces Stripe's documented limits: a live account may send 100
    requests/s, but 25/s to any one endpoint. A gateway paced per endpoint (as the hook paces a
    task by default) meets no 429 on one endpoint; the same calls unpaced do."""
    with SandboxServer(seed=1, stripe_documented_limits=True) as server:
        admin = SandboxAdmin(server.url)
        try:
            admin.reset({"stripe": {"api_key": "sk_live_pace", "accounts": [{"id": "acct_1"}]}})

            def read_40(gateway: StripeGateway) -> int:
                """40 reads of one endpoint by 4 threads sharing the gateway (a task's pool)."""
                admin.clear_stripe_requests()

                def read_10(_i: int) -> None:
                    for _ in range(10):
                        gateway._call(gateway._v1.accounts.retrieve_current)

                with ThreadPoolExecutor(4) as pool:
                    list(pool.map(read_10, range(4)))
                return sum(1 for r in admin.stripe_requests() if r.get("status") == 429)

            retry = RetryPolicy(max_attempts=20, base_delay=0.05, max_delay=0.2)
            paced = StripeGateway(
                "sk_live_pace", base_url=server.url, retry=retry, max_requests_per_endpoint=20
            )
            assert read_40(paced) == 0
            unpaced = StripeGateway("sk_live_pace", base_url=server.url, retry=retry)
            # On a loaded machine 40 unpaced reads may not reach 25/s: up to three bursts.
            assert any(read_40(unpaced) > 0 for _ in range(3)), (
                "the endpoint limit never bit: the paced run proves nothing"
            )
        finally:
            admin.close()
