"""Idempotency replay/mismatch/expiry, rate limits and injected faults."""

from __future__ import annotations

import threading

import pytest
import requests
import stripe
from mirakl_sandbox import SandboxAdmin
from mirakl_sandbox.faults import DocumentedLimits

TRANSFER = {
    "amount": 700,
    "currency": "eur",
    "destination": "acct_seller",
    "source_transaction": "ch_paid",
    "metadata": {"miraklId": "ORD-1-A"},
}


def _raw_post(url: str, key: str, data: dict[str, str]) -> requests.Response:
    return requests.post(
        url + "/v1/transfers",
        data=data,
        headers={"Authorization": "Bearer sk_test_unit", "Idempotency-Key": key},
        timeout=10,
    )


def test_same_key_replays_without_a_second_transfer(sandbox, admin: SandboxAdmin) -> None:
    data = {"amount": "700", "currency": "eur", "destination": "acct_seller"}
    first = _raw_post(sandbox.url, "k-1", data)
    second = _raw_post(sandbox.url, "k-1", data)
    assert first.status_code == second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert len(admin.transfers()) == 1
    assert [e["type"] for e in admin.events()] == ["transfer.created"]
    assert [r["replayed"] for r in admin.stripe_requests(path="/v1/transfers")] == [False, True]


def test_errors_are_replayed_too(stripe_client: stripe.StripeClient, admin: SandboxAdmin) -> None:
    options = {"idempotency_key": "k-err"}
    too_big = {**TRANSFER, "amount": 10001}
    for _ in range(2):
        with pytest.raises(stripe.InvalidRequestError, match="exceeds the available amount"):
            stripe_client.v1.transfers.create(params=too_big, options=options)
    assert admin.stripe_requests(path="/v1/transfers")[-1]["replayed"] is True


def test_changed_params_raise_idempotency_error(
    stripe_client: stripe.StripeClient, admin: SandboxAdmin
) -> None:
    options = {"idempotency_key": "k-2"}
    stripe_client.v1.transfers.create(params=TRANSFER, options=options)
    with pytest.raises(stripe.IdempotencyError) as info:
        stripe_client.v1.transfers.create(params={**TRANSFER, "amount": 701}, options=options)
    assert "Try using a key other than 'k-2'" in info.value.user_message
    with pytest.raises(stripe.IdempotencyError):  # same key on another path
        stripe_client.v1.payouts.create(params={"amount": 1, "currency": "eur"}, options=options)
    # the key is scoped by Stripe-Account: the same key on a connected account is a new request
    stripe_client.v1.payouts.create(
        params={"amount": 1, "currency": "eur"},
        options={**options, "stripe_account": "acct_seller"},
    )
    assert len(admin.transfers()) == 1 and len(admin.payouts()) == 1


def test_keys_expire_after_24_hours_of_sandbox_clock(
    stripe_client: stripe.StripeClient, admin: SandboxAdmin
) -> None:
    options = {"idempotency_key": "k-3"}
    first = stripe_client.v1.transfers.create(params=TRANSFER, options=options)
    admin.advance_clock(23 * 3600)
    assert stripe_client.v1.transfers.create(params=TRANSFER, options=options).id == first.id
    admin.advance_clock(3600)
    fresh = stripe_client.v1.transfers.create(params=TRANSFER, options=options)
    assert fresh.id != first.id and len(admin.transfers()) == 2


def test_concurrent_request_with_key_in_flight_gets_409(sandbox, admin: SandboxAdmin) -> None:
    admin.set_faults({"stripe": {"latency_ms": 150}})
    data = {"amount": "5", "currency": "eur", "destination": "acct_seller"}
    results: list[requests.Response] = []
    threads = [
        threading.Thread(target=lambda: results.append(_raw_post(sandbox.url, "k-4", data)))
        for _ in range(2)
    ]
    threads[0].start()
    threading.Event().wait(0.05)
    threads[1].start()
    for thread in threads:
        thread.join()
    assert sorted(r.status_code for r in results) == [200, 409]
    conflict = [r for r in results if r.status_code == 409][0]
    assert conflict.json()["error"]["type"] == "idempotency_error"
    assert len(admin.transfers()) == 1


def test_token_bucket_rate_limit_raises_rate_limit_error(
    stripe_client: stripe.StripeClient, admin: SandboxAdmin
) -> None:
    admin.set_faults({"stripe": {"rate_limit_per_second": 2}})
    with pytest.raises(stripe.RateLimitError) as info:
        for _ in range(10):
            stripe_client.v1.accounts.retrieve("acct_seller")
    assert info.value.http_status == 429
    assert info.value.json_body["error"]["code"] == "rate_limit"


def test_lost_response_does_the_work_and_replay_returns_it(
    stripe_client: stripe.StripeClient, admin: SandboxAdmin
) -> None:
    admin.set_faults(
        {
            "rules": [
                {
                    "target": "stripe",
                    "method": "POST",
                    "path": "/v1/transfers",
                    "times": 1,
                    "action": "lost_response",
                }
            ]
        }
    )
    options = {"idempotency_key": "k-lost"}
    with pytest.raises(stripe.APIError):
        stripe_client.v1.transfers.create(params=TRANSFER, options=options)
    created = admin.transfers()
    assert len(created) == 1 and created[0]["metadata"] == {"miraklId": "ORD-1-A"}
    retried = stripe_client.v1.transfers.create(params=TRANSFER, options=options)
    assert retried.id == created[0]["id"] and len(admin.transfers()) == 1
    assert admin.faults()["rules"] == []


def test_targeted_error_rule_does_no_work(
    stripe_client: stripe.StripeClient, admin: SandboxAdmin
) -> None:
    admin.set_faults(
        {"rules": [{"target": "stripe", "path": "/v1/transfers", "times": 2, "action": "error"}]}
    )
    for _ in range(2):
        with pytest.raises(stripe.APIError):
            stripe_client.v1.transfers.create(params=TRANSFER)
    assert admin.transfers() == []
    assert stripe_client.v1.transfers.create(params=TRANSFER).amount == 700


def test_a_rule_with_an_idempotency_key_hits_that_key_only(sandbox, admin: SandboxAdmin) -> None:
    """One item's calls fail (the demo's transfer in doubt); every other transfer goes through."""
    from mirakl_sandbox.client import SandboxAdminError

    admin.set_faults(
        {
            "rules": [
                {"target": "stripe", "path": "/v1/transfers", "idempotency_key": "k-doubt",
                 "action": "lost_response"},
                {"target": "stripe", "path": "/v1/transfers", "idempotency_key": "k-doubt",
                 "times": 3, "action": "error"},
            ]
        }
    )  # fmt: skip
    data = {"amount": "700", "currency": "eur", "destination": "acct_seller"}
    assert _raw_post(sandbox.url, "k-other", data).status_code == 200
    statuses = [_raw_post(sandbox.url, "k-doubt", data).status_code for _ in range(4)]
    assert _raw_post(sandbox.url, "k-doubt-2", data).status_code == 200  # not a prefix rule
    assert statuses == [500, 500, 500, 500]  # the answer lost, then three errors
    assert len(admin.transfers()) == 3  # k-other, k-doubt (made, answer lost), k-doubt-2
    replay = _raw_post(sandbox.url, "k-doubt", data)  # the rules are used up
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    with pytest.raises(SandboxAdminError, match=r"faults.rules\[0\].idempotency_key"):
        admin.set_faults(
            {"rules": [{"target": "mirakl", "idempotency_key": "k", "action": "error"}]}
        )


def _fault_pattern(admin: SandboxAdmin, mirakl, seed: int) -> list[int]:
    admin.set_faults(
        {
            "seed": seed,
            "mirakl": {"error_rate": 0.3, "rate_limit_rate": 0.2, "retry_after_seconds": 2},
        }
    )
    return [mirakl.get(mirakl.base + "/api/version", timeout=5).status_code for _ in range(40)]


def test_seeded_faults_are_deterministic(admin: SandboxAdmin, mirakl) -> None:
    first = _fault_pattern(admin, mirakl, 7)
    second = _fault_pattern(admin, mirakl, 7)
    other = _fault_pattern(admin, mirakl, 8)
    assert first == second and first != other
    assert {200, 429, 500} <= set(first)
    limited = mirakl.get(mirakl.base + "/api/version", timeout=5)
    while limited.status_code != 429:
        limited = mirakl.get(mirakl.base + "/api/version", timeout=5)
    assert limited.headers["Retry-After"] == "2"
    assert limited.json() == {"status": 429, "message": "Too Many Requests"}


def test_timeout_fault_makes_the_client_time_out(admin: SandboxAdmin, mirakl) -> None:
    admin.set_faults({"mirakl": {"timeout_rate": 1.0, "timeout_seconds": 0.6}})
    with pytest.raises(requests.Timeout):
        mirakl.get(mirakl.base + "/api/version", timeout=0.2)


def test_bad_fault_config_is_refused(admin: SandboxAdmin) -> None:
    from mirakl_sandbox.client import SandboxAdminError

    with pytest.raises(SandboxAdminError, match="faults.stripe.error_rate"):
        admin.set_faults({"stripe": {"error_rate": 2}})
    with pytest.raises(SandboxAdminError, match=r"faults.rules\[0\].action"):
        admin.set_faults({"rules": [{"target": "stripe", "action": "explode"}]})


def _raw_transfer(url: str, key: str) -> requests.Response:
    data = {"amount": "700", "currency": "eur", "destination": "acct_seller"}
    return _raw_post(url, key, data)


@pytest.mark.parametrize(("action", "made"), [("saved_error", 0), ("error_after_work", 1)])
def test_a_500_of_an_executing_request_is_saved_and_replayed_for_its_key(
    sandbox, admin: SandboxAdmin, action: str, made: int
) -> None:
    """Stripe saves a keyed request's answer "regardless of whether it succeeds or fails" and
    replays it "including 500 errors" (docs.stripe.com/idempotency); the retry creates nothing."""
    admin.set_faults({"rules": [{"target": "stripe", "path": "/v1/transfers", "action": action}]})

    first = _raw_transfer(sandbox.url, "k-saved")
    again = _raw_transfer(sandbox.url, "k-saved")

    assert first.status_code == again.status_code == 500
    assert first.json() == again.json()
    assert first.json()["error"]["type"] == "api_error"
    assert first.headers["Stripe-Should-Retry"] == again.headers["Stripe-Should-Retry"] == "false"
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(admin.transfers()) == made  # the replay did not create anything
    assert _raw_transfer(sandbox.url, "k-other").status_code == 200  # a new key is a new request
    assert len(admin.transfers()) == made + 1


def test_a_500_before_execution_is_not_saved(sandbox, admin: SandboxAdmin) -> None:
    """Results are saved "only after the execution of an endpoint begins" (docs): the injected
    ``error`` is such a 500, so a retry with the key runs the request."""
    admin.set_faults({"rules": [{"target": "stripe", "path": "/v1/transfers", "action": "error"}]})

    assert _raw_transfer(sandbox.url, "k-early").status_code == 500
    retried = _raw_transfer(sandbox.url, "k-early")

    assert retried.status_code == 200 and "Idempotent-Replayed" not in retried.headers
    assert len(admin.transfers()) == 1


class FrozenClock:
    """A monotonic clock that only moves when told: token buckets never refill by themselves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_documented_limits_live_mode_per_endpoint_and_global() -> None:
    """docs.stripe.com/rate-limits: 100 requests/s per live account, 25/s per endpoint."""
    clock = FrozenClock()
    limits = DocumentedLimits(clock)
    key = "sk_live_platform"

    def burst(endpoint: str, n: int) -> list[str | None]:
        return [limits.refuse(key, "POST", "/v1/x", endpoint) for _ in range(n)]

    assert burst("POST transfers", 26) == [None] * 25 + ["endpoint"]
    for endpoint in ("POST refunds", "POST payouts", "GET accounts"):
        assert burst(endpoint, 25) == [None] * 25  # 100 in all: the global limit reached
    assert burst("GET charges", 1) == ["global"]
    clock.now += 1.0  # one second later every bucket is full again
    assert burst("POST transfers", 25) == [None] * 25
    assert limits.refuse("sk_live_other", "GET", "/v1/x", "GET charges") is None  # per account


def test_documented_limits_test_mode_is_25_for_the_whole_account() -> None:
    limits = DocumentedLimits(FrozenClock())
    results = [limits.refuse("sk_test_unit", "GET", "/v1/x", f"GET e{i % 5}") for i in range(26)]
    assert results == [None] * 25 + ["global"]
    # Documented lower limits: Files API 20/s, Search API 20/s.
    files = [limits.refuse("sk_live_f", "POST", "/v1/files", "POST files") for _ in range(21)]
    assert files == [None] * 20 + ["files_write"]


def test_the_simulator_answers_429_as_stripe_and_saves_nothing_for_the_key(
    sandbox, admin: SandboxAdmin
) -> None:
    admin.set_faults({"stripe": {"documented_rate_limits": True}})
    sandbox.faults.targets["stripe"].documented_limits = limits = DocumentedLimits(FrozenClock())
    for _ in range(25):  # the endpoint's whole second (and, in test mode, the account's)
        limits.refuse("sk_test_unit", "POST", "/v1/transfers", "POST create_transfer")

    refused = _raw_transfer(sandbox.url, "k-limited")

    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit"
    assert refused.json()["error"]["type"] == "invalid_request_error"
    assert "Request-Id" in refused.headers
    assert "Retry-After" not in refused.headers and "Stripe-Should-Retry" not in refused.headers
    client = stripe.StripeClient("sk_test_unit", base_addresses={"api": sandbox.url})
    with pytest.raises(stripe.RateLimitError):  # another endpoint: the account's 25/s are used
        client.v1.accounts.list()
    assert [r["fault"] for r in admin.stripe_requests()] == [
        "rate_limit_endpoint", "rate_limit_global"
    ]  # fmt: skip
    assert admin.transfers() == []
    # Rate limiters run before the idempotency layer: the same key, once allowed, does the work.
    sandbox.faults.targets["stripe"].documented_limits = None
    assert _raw_transfer(sandbox.url, "k-limited").status_code == 200
    assert len(admin.transfers()) == 1
    assert admin.faults()["stripe"]["documented_rate_limits"] is False


def test_the_documented_limits_take_a_mode_from_the_configuration(
    sandbox, admin: SandboxAdmin
) -> None:
    """``"live"``/``"test"`` apply that mode's limits whatever the key (the sandbox's key is a
    test key); ``true`` reads each key's prefix; anything else is refused, naming the setting."""
    assert (
        admin.set_faults({"stripe": {"documented_rate_limits": "live"}})["stripe"][
            "documented_rate_limits"
        ]
        == "live"
    )
    sandbox.faults.targets["stripe"].documented_limits = limits = DocumentedLimits(
        FrozenClock(), mode="live"
    )
    for i in range(99):  # the live account's second, less one, on other endpoints
        assert limits.refuse("sk_test_unit", "GET", "/v1/x", f"GET e{i % 5}") is None
    assert _raw_transfer(sandbox.url, "k-live").status_code == 200  # the 100th
    refused = _raw_transfer(sandbox.url, "k-live-2")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit"
    assert [r["fault"] for r in admin.stripe_requests()] == [None, "rate_limit_global"]
    assert (
        admin.set_faults({"stripe": {"documented_rate_limits": True}})["stripe"][
            "documented_rate_limits"
        ]
        is True
    )
    with pytest.raises(Exception, match="documented_rate_limits"):
        admin.set_faults({"stripe": {"documented_rate_limits": "prod"}})
