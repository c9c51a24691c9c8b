"""The gateway behind a real HTTP proxy that answers instead of Stripe after Stripe did the work.

The proxy forwards each request to the sandbox (the transfer is made), then sends its own answer.
The gateway must read that as "outcome unknown" and ask again with the same key: Stripe's
idempotency store answers with the transfer it made, and no second transfer exists.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mirakl_sandbox.proxy import FaultyProxy

from mirakl_connector.core.errors import PaymentProviderError
from mirakl_connector.core.retry import RetryPolicy
from mirakl_connector.stripe.gateway import UNCLEAR_ANSWER, StripeGateway

MODES = ("408", "html_502", "html_400", "non_json_200", "truncated_json", "empty_json_200")


@pytest.fixture
def proxy(sandbox_server, sandbox) -> Iterator[FaultyProxy]:
    sandbox.load({
        "stripe": {"platform_balance": {"eur": 10_000_000},
                   "accounts": [{"id": "acct_seller", "payouts_enabled": True}],
                   "balances": {"acct_seller": {"eur": 10_000_000}}},
    })  # fmt: skip
    with FaultyProxy(sandbox_server.url) as proxy:
        yield proxy


def gateway(proxy: FaultyProxy, attempts: int) -> StripeGateway:
    retry = RetryPolicy.no_wait(attempts)
    return StripeGateway("sk_test_sandbox", base_url=proxy.url, retry=retry, timeout=5)


def transfer(gw: StripeGateway, key: str = "k-1"):
    return gw.create_transfer(
        amount=1234, currency="EUR", destination="acct_seller", idempotency_key=key,
        metadata={"miraklId": "ORD-1-A"},
    )  # fmt: skip


@pytest.mark.parametrize("mode", MODES)
def test_the_retry_with_the_same_key_gets_the_transfer_stripe_made(proxy, sandbox, mode):
    proxy.add("POST", "/v1/transfers", mode)

    created = transfer(gateway(proxy, 2))

    assert created.replayed is True  # Stripe's idempotency store answered the retry
    made = sandbox.transfers()
    assert [(t["id"], t["amount"]) for t in made] == [(created.id, 1234)]
    requests = sandbox.stripe_requests(path="/v1/transfers", method="POST")
    assert {r["idempotency_key"] for r in requests} == {"k-1"}


@pytest.mark.parametrize("mode", MODES)
def test_every_try_answered_by_the_proxy_is_an_unknown_outcome_not_a_refusal(proxy, sandbox, mode):
    proxy.add("POST", "/v1/transfers", mode, times=2)

    with pytest.raises(PaymentProviderError) as raised:
        transfer(gateway(proxy, 2))

    assert raised.value.permanent is False and raised.value.code == UNCLEAR_ANSWER
    assert len(sandbox.transfers()) == 1  # Stripe did it; the next run replays the same key
    assert transfer(gateway(proxy, 1)).id == sandbox.transfers()[0]["id"]
    assert len(sandbox.transfers()) == 1


def test_payouts_and_seller_transfers_with_stripe_account_are_recovered_too(proxy, sandbox):
    proxy.add("POST", "/v1/payouts", "truncated_json")
    gw = gateway(proxy, 2)

    payout = gw.create_payout(
        account="acct_seller", amount=500, currency="EUR", idempotency_key="k-po",
        metadata={"invoiceId": "9001"},
    )  # fmt: skip

    assert payout.replayed is True
    assert [p["id"] for p in sandbox.payouts()] == [payout.id]
