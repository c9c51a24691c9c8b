"""The payout provider rule (which provider pays a shop) and the go-live setting, as pure rules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.operations.first_run import BEFORE_GO_LIVE, GoLive, go_live_from_config
from mirakl_connector.operations.payout_provider import (
    HYPERWALLET,
    NONE,
    STRIPE,
    PayoutProviderRule,
    ShopProviders,
)

HW_CONFIG = {"hyperwallet": {"programs": [{"name": "EUROPE", "user_token": "prg-u"}]}}
MOVE = datetime(2026, 11, 15, tzinfo=UTC)


def shop(shop_id, program=None):
    fields = [{"code": "hw-program", "value": program}] if program else []
    return {"shop_id": shop_id, "shop_additional_fields": fields}


def rule(**section):
    return PayoutProviderRule.from_config({**HW_CONFIG, "payout_provider": section})


def test_hw_program_makes_a_hyperwallet_shop_and_the_rest_is_the_default():
    r = rule()
    assert r.provider(101, shop=shop(101, "EUROPE")).provider == HYPERWALLET
    assert r.provider(1, shop=shop(1)).provider == STRIPE
    verdict = r.provider(101, shop=shop(101, "EUROPE"))
    assert verdict.refusal(101, STRIPE) == (
        "Shop 101 is paid by Hyperwallet, not Stripe (shop field hw-program is set)"
    )
    assert verdict.refusal(101, HYPERWALLET) is None
    assert rule(default="none").provider(1, shop=shop(1)).provider == NONE


def test_a_stripe_only_deployment_never_reads_shops():
    r = PayoutProviderRule.from_config({})
    assert not r.reads_shop_fields
    assert r.provider(101).provider == STRIPE  # no shop needed, none read
    providers = ShopProviders(r, lambda ids: pytest.fail("read shops"))
    providers.prefetch([1, 2])
    assert providers.verdict(1, None).provider == STRIPE


def test_a_shop_the_rule_cannot_place_is_paid_by_nobody():
    r = rule()
    verdict = r.provider(7, shop=None)
    assert verdict.provider == NONE
    assert verdict.refusal(7, STRIPE) == (
        "Shop 7 is paid by no provider, not Stripe "
        "(shop 7 not returned by Mirakl (S20): provider unknown)"
    )


def test_a_configured_move_splits_documents_by_their_creation_date():
    r = rule(shops={"201": {"provider": "hyperwallet", "from": "2026-11-15T00:00:00Z"}})
    before = datetime(2026, 11, 14, 23, 59, tzinfo=UTC)
    assert r.provider(201, at=before).provider == STRIPE
    assert r.provider(201, at=MOVE).provider == HYPERWALLET  # from the instant itself
    assert r.provider(201, shop=shop(201, "EUROPE"), at=before).provider == STRIPE  # wins
    # accounts: Stripe still pays it now, Hyperwallet will: both keep an account ready
    now = datetime(2026, 11, 10, tzinfo=UTC)
    assert r.serves(STRIPE, 201, now=now).provider == STRIPE
    assert r.serves(HYPERWALLET, 201, now=now).provider == HYPERWALLET
    after = datetime(2026, 12, 1, tzinfo=UTC)
    assert r.serves(STRIPE, 201, now=after).provider == HYPERWALLET  # no new Stripe account
    assert "stripe before 2026-11-15T00:00:00+00:00, hyperwallet from then on" in (
        r.provider(201, at=before).rule
    )


def test_a_pinned_shop_ignores_its_field():
    r = rule(shops={"102": "stripe"})
    assert r.provider(102, shop=shop(102, "EUROPE")).provider == STRIPE
    assert not r.needs_shop(102)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"default": "paypal"}, "payout_provider.default must be one of stripe, hyperwallet, none"),
        ({"shops": {"abc": "stripe"}}, "payout_provider.shops: key 'abc' is not a Mirakl shop"),
        ({"shops": {"5": "paypal"}}, "payout_provider.shops.5.provider must be stripe or"),
        ({"shops": {"5": {"provider": "stripe", "from": "2026-11-15"}}},
         "payout_provider.shops.5.from has no time zone"),
        ({"shops": {"5": {"provider": "stripe", "from": "soon"}}},
         "payout_provider.shops.5.from must be an RFC 3339 date-time"),
        ({"shops": {"5": {"provider": "stripe", "on": "x"}}},
         "unknown payout_provider.shops.5 setting(s): on"),
        ({"hyperwallet_field": ""}, "payout_provider.hyperwallet_field must be"),
        ({"colour": 1}, "unknown payout_provider setting(s): colour"),
        ([], "payout_provider must be an object"),
    ],
)  # fmt: skip
def test_bad_settings_name_the_key(section, message):
    with pytest.raises(ConfigurationError) as err:
        PayoutProviderRule.from_config({"payout_provider": section})
    assert message in str(err.value)


def test_shop_providers_read_the_shops_they_need_once():
    calls = []

    def read(ids):
        calls.append(list(ids))
        return [shop(i, "EUROPE" if i > 100 else None) for i in ids]

    providers = ShopProviders(rule(shops={"3": "hyperwallet"}), read)
    providers.prefetch([1, 101, 3, None, 1])
    assert calls == [[1, 101]]  # the pinned shop is not read
    assert providers.refusal(101, None, STRIPE) is not None
    assert providers.refusal(1, None, STRIPE) is None
    assert providers.refusal(3, None, STRIPE) is not None
    providers.prefetch([101])
    assert calls == [[1, 101]]


def test_go_live_setting():
    assert go_live_from_config({}) is None
    assert go_live_from_config({"go_live": "2026-11-01T00:00:00Z"}) == datetime(
        2026, 11, 1, tzinfo=UTC
    )
    with pytest.raises(ConfigurationError, match="mirakl_connector_config.go_live has no time"):
        go_live_from_config({"go_live": "2026-11-01T00:00:00"})


def test_a_first_run_without_go_live_refuses_and_says_what_to_set():
    with pytest.raises(ConfigurationError) as err:
        GoLive().require("payment_split", "product_payment_split_checkpoint", None, "order")
    message = str(err.value)
    assert "no checkpoint 'product_payment_split_checkpoint'" in message
    assert 'Set "go_live" in the Airflow Variable mirakl_connector_config' in message
    assert "pay them again" in message
    GoLive().require("payment_split", "k", "2026-11-01T00:00:00Z", "order")  # checkpoint: fine
    live = GoLive(datetime(2026, 11, 1, tzinfo=UTC))
    live.require("payment_split", "k", None, "order")  # go-live: fine
    assert live.before(datetime(2026, 10, 31, tzinfo=UTC))
    assert not live.before(datetime(2026, 11, 1, tzinfo=UTC))
    outcome = live.outcome("ORD-1", "2026-10-31T00:00:00Z", amount=100, currency="EUR")
    assert (outcome.status, outcome.failed) == (BEFORE_GO_LIVE, False)
