"""Seller onboarding end to end: real Mirakl and Stripe clients against the sandbox.

Each test checks what Stripe holds (accounts, links asked for), what Mirakl received (S07),
and what the ledger says (mappings, retry queue, checkpoint), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import pytest

from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.core.retry import RetryPolicy
from mirakl_connector.ledger.records import AccountMapping
from mirakl_connector.stripe.gateway import StripeGateway
from mirakl_connector.stripe.onboarding import (
    CHECKPOINT_KEY,
    WORKFLOW,
    OnboardingSettings,
    SellerOnboarding,
    is_ignored,
    needs_onboarding_link,
    newest_date,
    prefill_params,
)

LEGACY = "https://connect.stripe.com/express/oauth/authorize?client_id=ca_x"
EXISTING = "https://connect.stripe.com/setup/s/kept"


def shop(shop_id, updated="2026-11-20T10:00:00Z", *, link=None, ignored=None, **extra):
    fields = []
    if link is not None:
        fields.append({"code": "stripe-url", "value": link})
    if ignored is not None:
        fields.append({"code": "stripe-ignored", "value": ignored})
    return {
        "shop_id": shop_id,
        "shop_name": f"Shop {shop_id}",
        "last_updated_date": updated,
        "is_professional": True,
        "contact_informations": {"email": f"shop{shop_id}@example.com", "web_site": None},
        "shop_additional_fields": fields,
        **extra,
    }


@pytest.fixture
def job(mirakl, stripe_gateway, workflow_ledger):
    def make(**settings) -> SellerOnboarding:
        return SellerOnboarding(
            mirakl=mirakl,
            stripe=stripe_gateway,
            ledger=workflow_ledger,
            settings=OnboardingSettings(**settings),
            run_id="test",
        )

    return make


def accounts_by_shop(sandbox):
    found = {}
    for account in sandbox.accounts():
        shop_id = (account.get("metadata") or {}).get("miraklShopId")
        assert shop_id not in found, f"two Stripe accounts for shop {shop_id}"
        found[shop_id] = account
    return found


def s07_links(sandbox):
    """shop id → link value of every S07 shop entry received (in call order)."""
    sent = []
    for call in sandbox.mirakl_calls("S07"):
        for entry in call["body"]["shops"]:
            values = [f["value"] for f in entry.get("shop_additional_fields", [])]
            sent.append((entry["shop_id"], values[0] if values else None))
    return sent


def field(sandbox, shop_id, code):
    [found] = [s for s in sandbox.shops() if s["shop_id"] == shop_id]
    return next((f["value"] for f in found["shop_additional_fields"] if f["code"] == code), None)


def test_new_shops_get_an_account_a_mapping_and_a_link(sandbox, mirakl, job, workflow_ledger):
    sandbox.put_shops(
        [
            shop(1, "2026-11-20T10:00:00+0100"),
            shop(2, "2026-11-21T08:00:00Z", link=EXISTING),
            shop(3, "2026-11-19T00:00:00Z", link=LEGACY),
            shop(4, "2026-11-21T08:30:00+02:00", ignored="true"),  # = 06:30Z, not the newest
        ]
    )
    summary = job().sync()

    accounts = accounts_by_shop(sandbox)
    assert set(accounts) == {"1", "2", "3", "4"}
    assert accounts["1"]["type"] == "express"
    assert accounts["1"]["settings"]["payouts"]["schedule"]["interval"] == "manual"
    # created with controller properties, not the deprecated type=express, and only the
    # transfers capability (the platform charges; the seller receives and pays out)
    [create] = [r for r in sandbox.stripe_requests(path="/v1/accounts", method="POST")
                if r["params"]["metadata"]["miraklShopId"] == "1"]  # fmt: skip
    assert "type" not in create["params"]
    assert create["params"]["controller"] == {
        "stripe_dashboard": {"type": "express"}, "fees": {"payer": "application"},
        "losses": {"payments": "application"}, "requirement_collection": "stripe",
    }  # fmt: skip
    assert create["params"]["capabilities"] == {"transfers": {"requested": "true"}}
    assert accounts["1"]["controller"]["stripe_dashboard"] == {"type": "express"}
    assert "business_profile" not in accounts["1"]  # prefill is off by default
    mappings = workflow_ledger.account_mappings_by_shop([1, 2, 3, 4])
    assert {i: m.stripe_account_id for i, m in mappings.items()} == {
        int(s): a["id"] for s, a in accounts.items()
    }
    assert [m.ignored for m in (mappings[1], mappings[2], mappings[3], mappings[4])] == [
        False, False, False, True,
    ]  # fmt: skip

    # The link went to the shops without one and to the legacy OAuth one, in ONE S07 call.
    assert len(sandbox.mirakl_calls("S07")) == 1
    sent = dict(s07_links(sandbox))
    assert set(sent) == {1, 3, 4}
    assert field(sandbox, 2, "stripe-url") == EXISTING
    for shop_id in (1, 3, 4):
        token = mappings[shop_id].onboarding_token
        assert re.fullmatch(r"[0-9a-f]{32}\.[0-9]{10}", token)  # random part, issue time
        assert field(sandbox, shop_id, "stripe-url") == sent[shop_id]
        assert f"/_sandbox/onboarding/{mappings[shop_id].stripe_account_id}" in sent[shop_id]
        assert (
            f"refresh_url=http://127.0.0.1:8080/mirakl-connector/onboarding/refresh?token={token}"
            in sent[shop_id]
        )
    assert mappings[2].onboarding_token is None
    link_requests = sandbox.stripe_requests(path="/v1/account_links", method="POST")
    assert {r["params"]["return_url"] for r in link_requests} == {
        f"{mirakl.base_url}/mmp/shop/account/shop"
    }

    assert summary.counts == {"ACCOUNT_CREATED": 4}
    assert summary.failed_total == 0
    # The newest last_updated_date as an instant (shop 2), kept as Mirakl wrote it.
    assert workflow_ledger.get_checkpoint(CHECKPOINT_KEY) == "2026-11-21T08:00:00Z"
    assert workflow_ledger.pending_items(WORKFLOW) == []


def test_rerun_creates_nothing_twice(sandbox, job, workflow_ledger):
    sandbox.put_shops([shop(1), shop(2, link=EXISTING)])
    job().sync()
    before = sandbox.accounts()
    sandbox.clear_mirakl_calls()

    # Both are seen again: shop 2 sits at the checkpoint (S20 filters with >=), and S07 bumped
    # shop 1's last_updated_date when its link was written.
    summary = job().sync()
    assert sandbox.accounts() == before
    assert sandbox.mirakl_calls("S07") == []
    assert summary.counts == {"UNCHANGED": 2}
    assert len(sandbox.stripe_requests(path="/v1/accounts", method="POST")) == 2


def test_ignored_flag_follows_the_mirakl_field(sandbox, job, workflow_ledger):
    sandbox.put_shops([shop(5, "2026-11-20T00:00:00Z", link=EXISTING, ignored="true")])
    job().sync()
    assert workflow_ledger.account_mappings_by_shop([5])[5].ignored is True

    sandbox.put_shops([shop(5, "2026-11-23T00:00:00Z", link=EXISTING, ignored="false")])
    summary = job().sync()
    assert workflow_ledger.account_mappings_by_shop([5])[5].ignored is False
    assert summary.counts == {"UPDATED": 1}
    assert len(sandbox.accounts()) == 1


def test_crash_after_stripe_answered_is_replayed_with_the_same_key(
    sandbox, job, workflow_ledger, monkeypatch
):
    sandbox.put_shops([shop(7)])
    real_upsert = workflow_ledger.upsert_account_mapping

    def crash(mapping):
        raise RuntimeError("worker killed")

    monkeypatch.setattr(workflow_ledger, "upsert_account_mapping", crash)
    with pytest.raises(RuntimeError):
        job().sync()
    assert len(sandbox.accounts()) == 1  # Stripe created it; the ledger never heard
    assert workflow_ledger.account_mappings_by_shop([7]) == {}
    assert [p.item_id for p in workflow_ledger.pending_items(WORKFLOW)] == ["7"]
    assert workflow_ledger.get_checkpoint(CHECKPOINT_KEY) is None

    monkeypatch.setattr(workflow_ledger, "upsert_account_mapping", real_upsert)
    job().sync()
    [account] = sandbox.accounts()
    assert workflow_ledger.account_mappings_by_shop([7])[7].stripe_account_id == account["id"]
    creates = sandbox.stripe_requests(path="/v1/accounts", method="POST")
    assert len(creates) == 2
    assert creates[0]["idempotency_key"] == creates[1]["idempotency_key"]
    assert creates[1]["replayed"] is True
    assert workflow_ledger.pending_items(WORKFLOW) == []


def test_crash_older_than_the_replay_window_finds_the_account_by_metadata(
    sandbox, mirakl, stripe_gateway, workflow_ledger, monkeypatch
):
    sandbox.put_shops([shop(8)])
    real_upsert = workflow_ledger.upsert_account_mapping
    monkeypatch.setattr(
        workflow_ledger, "upsert_account_mapping", lambda m: (_ for _ in ()).throw(OSError("kill"))
    )
    with pytest.raises(OSError):
        SellerOnboarding(
            mirakl=mirakl, stripe=stripe_gateway, ledger=workflow_ledger,
            settings=OnboardingSettings(),
        ).sync()  # fmt: skip
    monkeypatch.setattr(workflow_ledger, "upsert_account_mapping", real_upsert)
    sandbox.advance_clock(25 * 3600)  # Stripe has forgotten the idempotency key

    later = datetime.now(UTC) + timedelta(hours=24)
    SellerOnboarding(
        mirakl=mirakl, stripe=stripe_gateway, ledger=workflow_ledger,
        settings=OnboardingSettings(), now=lambda: later,
    ).sync()  # fmt: skip
    [account] = sandbox.accounts()
    assert len(sandbox.stripe_requests(path="/v1/accounts", method="POST")) == 1
    assert workflow_ledger.account_mappings_by_shop([8])[8].stripe_account_id == account["id"]
    assert workflow_ledger.pending_items(WORKFLOW) == []


def test_failed_shops_are_queued_retried_and_cleared(
    sandbox, sandbox_server, mirakl, workflow_ledger
):
    # Shop 10: Stripe fails (500 on every attempt); shop 11: Mirakl refuses its S07 update.
    stripe = StripeGateway(
        "sk_test_sandbox", base_url=sandbox_server.url, retry=RetryPolicy.no_wait(2), timeout=5
    )
    sandbox.put_shops(
        [
            shop(10, "2026-11-20T00:00:00Z"),
            shop(11, "2026-11-20T01:00:00Z", sandbox_s07_error="Shop 11 is suspended"),
            shop(12, "2026-11-20T02:00:00Z"),
        ]
    )
    sandbox.set_faults(
        {"rules": [{"target": "stripe", "method": "POST", "path": "/v1/accounts", "times": 2,
                    "action": "error"}]}
    )  # fmt: skip
    job = SellerOnboarding(
        mirakl=mirakl, stripe=stripe, ledger=workflow_ledger, settings=OnboardingSettings()
    )
    summary = job.sync()

    assert summary.counts == {"RETRY_QUEUED": 2, "ACCOUNT_CREATED": 1}
    assert summary.failed_total == 2
    reasons = {p.item_id: p.reason for p in workflow_ledger.pending_items(WORKFLOW)}
    assert set(reasons) == {"10", "11"}
    assert reasons["10"].startswith("Stripe error:")
    assert reasons["11"] == "Mirakl refused the S07 update: Shop 11 is suspended"
    assert set(accounts_by_shop(sandbox)) == {"11", "12"}
    assert field(sandbox, 12, "stripe-url")
    # Shop 11's account exists; only its link is missing (no token stored: S07 failed).
    assert workflow_ledger.account_mappings_by_shop([11])[11].onboarding_token is None
    checkpoint = workflow_ledger.get_checkpoint(CHECKPOINT_KEY)
    assert checkpoint == "2026-11-20T02:00:00Z"  # moved: the failures are in the queue

    # Still failing: counted, not alerted again.
    again = job.sync()
    assert again.counts.get("RETRY_PENDING") == 1 and again.failed_total == 0
    assert {p.item_id for p in workflow_ledger.pending_items(WORKFLOW)} == {"11"}
    [attempts] = [p.attempts for p in workflow_ledger.pending_items(WORKFLOW)]
    assert attempts == 2

    # Mirakl accepts shop 11 again, without the shop being updated: the queue brings it back.
    fixed = shop(11, "2026-11-20T01:00:00Z")
    sandbox.put_shops([fixed])
    sandbox.clear_mirakl_calls()
    final = job.sync()
    assert final.counts.get("LINK_SENT") == 1
    assert workflow_ledger.pending_items(WORKFLOW) == []
    assert field(sandbox, 11, "stripe-url")
    assert set(accounts_by_shop(sandbox)) == {"10", "11", "12"}
    assert workflow_ledger.account_mappings_by_shop([11])[11].onboarding_token


def test_since_override_and_shop_ids(sandbox, job, workflow_ledger):
    sandbox.put_shops(
        [shop(20, "2026-10-01T00:00:00Z", link=EXISTING), shop(21, "2026-11-01T00:00:00Z")]
    )
    workflow_ledger.set_checkpoint(CHECKPOINT_KEY, "2026-10-15T00:00:00Z")

    job().sync()
    assert set(accounts_by_shop(sandbox)) == {"21"}

    summary = job().sync(since=datetime(2026, 9, 1, tzinfo=UTC))
    assert set(accounts_by_shop(sandbox)) == {"20", "21"}
    assert summary.counts["ACCOUNT_CREATED"] == 1
    # The checkpoint never goes back (S07 bumped shop 21, so it is now later still).
    assert workflow_ledger.get_checkpoint(CHECKPOINT_KEY) > "2026-11-01"

    sandbox.put_shops([shop(22, "2027-01-01T00:00:00Z"), shop(23, "2027-01-01T00:00:00Z")])
    before = workflow_ledger.get_checkpoint(CHECKPOINT_KEY)
    job().sync(shop_ids=["23"])
    assert set(accounts_by_shop(sandbox)) == {"20", "21", "23"}
    assert workflow_ledger.get_checkpoint(CHECKPOINT_KEY) == before


def test_dry_run_creates_and_writes_nothing(sandbox, job, workflow_ledger):
    sandbox.put_shops([shop(30), shop(31, link=LEGACY)])
    workflow_ledger.upsert_account_mapping(AccountMapping(31, "acct_existing31"))
    sandbox.put_accounts([{"id": "acct_existing31"}])
    summary = job().sync(dry_run=True)

    assert summary.counts == {"WOULD_CREATE_ACCOUNT": 1, "WOULD_SEND_LINK": 1}
    assert {i["id"]: i["status"] for i in summary.items} == {
        "30": "WOULD_CREATE_ACCOUNT",
        "31": "WOULD_SEND_LINK",
    }
    assert [a["id"] for a in sandbox.accounts()] == ["acct_existing31"]
    assert sandbox.stripe_requests(method="POST") == []
    assert sandbox.mirakl_calls("S07") == []
    assert workflow_ledger.get_checkpoint(CHECKPOINT_KEY) is None
    assert workflow_ledger.account_mappings_by_shop([30]) == {}
    assert workflow_ledger.account_mappings_by_shop([31])[31].onboarding_token is None


def test_prefill_and_disabled(sandbox, job):
    sandbox.put_shops([shop(40, link=EXISTING)])
    assert job(enabled=False).sync().total == 0
    assert sandbox.accounts() == []

    job(prefill=True).sync()
    [account] = sandbox.accounts()
    assert account["business_type"] == "company"
    assert account["business_profile"] == {"name": "Shop 40", "support_email": "shop40@example.com"}


# -- pure rules (no sandbox) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, True), ("", True), ("  ", True), (LEGACY, True), (EXISTING, False)],
)
def test_needs_onboarding_link(value, expected):
    assert needs_onboarding_link(shop(1, link=value), "stripe-url") is expected


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("TRUE", True), ("false", False),
                                                 (None, False), ("yes", False)])  # fmt: skip
def test_is_ignored(value, expected):
    assert is_ignored(shop(1, ignored=value), "stripe-ignored") is expected


def test_newest_date_compares_instants_and_skips_bad_dates():
    dates = ["2026-11-20T10:00:00+0100", "2026-11-20T09:30:00Z", "garbage", None]
    assert newest_date(dates) == "2026-11-20T09:30:00Z"
    assert newest_date([None]) is None


def test_prefill_params_individual_without_empty_values():
    raw = shop(1, is_professional=False, shop_name="", contact_informations={"phone": "+33 1"})
    assert prefill_params(raw) == {
        "business_type": "individual",
        "business_profile": {"support_phone": "+33 1"},
    }


def test_settings_refuse_unknown_keys_and_derive_urls():
    with pytest.raises(ConfigurationError, match="unknown seller_onboarding setting.*linkfield"):
        OnboardingSettings.from_mapping({"linkfield": "x"})
    with pytest.raises(ConfigurationError, match="prefill must be true or false"):
        OnboardingSettings.from_mapping({"prefill": "yes"})
    settings = OnboardingSettings.from_mapping({"refresh_base_url": "https://c.example.com/"})
    assert settings.refresh_url("ab") == "https://c.example.com/onboarding/refresh?token=ab"
    assert settings.return_url_for("https://m.example.com/") == (
        "https://m.example.com/mmp/shop/account/shop"
    )


def test_only_stripe_shops_get_an_account_and_the_new_status_is_known_at_once(
    sandbox, mirakl, stripe_gateway, workflow_ledger
):
    """The demo's double payment started here: Hyperwallet shops got Stripe accounts and links.

    And ORD-1012-A: a new account's KYC status is recorded at creation, never left unknown.
    """
    from mirakl_connector.operations.payout_provider import PayoutProviderRule

    hw_field = [{"code": "hw-program", "value": "EUROPE"}]
    sandbox.put_shops(
        [
            shop(1),
            shop(101, shop_additional_fields=hw_field),
            shop(107, shop_additional_fields=hw_field, shop_state="TERMINATED"),
            shop(2),  # pinned to Hyperwallet by the operator, no field needed
        ]
    )
    rule = PayoutProviderRule.from_config(
        {
            "hyperwallet": {"programs": [{"name": "EUROPE", "user_token": "prg-u"}]},
            "payout_provider": {"shops": {"2": "hyperwallet"}},
        }
    )
    summary = SellerOnboarding(
        mirakl=mirakl,
        stripe=stripe_gateway,
        ledger=workflow_ledger,
        settings=OnboardingSettings(),
        providers=rule,
    ).sync()

    assert set(accounts_by_shop(sandbox)) == {"1"}
    assert {shop_id for shop_id, _ in s07_links(sandbox)} == {1}
    assert summary.counts == {"ACCOUNT_CREATED": 1, "NOT_STRIPE_SHOP": 3}
    assert "Shop 101 is paid by Hyperwallet, not Stripe (shop field hw-program is set)" in str(
        summary.to_dict()["reasons"]
    )
    mappings = workflow_ledger.account_mappings_by_shop([1, 2, 101, 107])
    assert set(mappings) == {1}
    assert mappings[1].kyc_status == "PENDING_SUBMISSION"  # known from the creation on


def test_an_expired_or_untimed_refresh_token_is_replaced_with_the_new_link(
    sandbox, job, workflow_ledger
):
    """Issue 11 point 8: refresh tokens expire (REFRESH_TOKEN_TTL); a run that writes a link
    gives the shop a fresh token instead of reusing one that no longer works (or never ends)."""
    from mirakl_connector.stripe.onboarding import REFRESH_TOKEN_TTL, new_token, usable_token

    expired = new_token(datetime.now(UTC) - REFRESH_TOKEN_TTL - timedelta(hours=1))
    for shop_id, token in ((41, expired), (42, "a" * 32)):
        workflow_ledger.upsert_account_mapping(
            AccountMapping(shop_id, f"acct_{shop_id}", onboarding_token=token)
        )
    sandbox.put_accounts([{"id": "acct_41"}, {"id": "acct_42"}])
    sandbox.put_shops([shop(41, link=LEGACY), shop(42, link=LEGACY)])

    summary = job(refresh_base_url="https://c.example.com").sync()

    assert summary.counts["LINK_SENT"] == 2
    mappings = workflow_ledger.account_mappings_by_shop([41, 42])
    for shop_id, old in ((41, expired), (42, "a" * 32)):
        token = mappings[shop_id].onboarding_token
        assert token != old and usable_token(token, accept_legacy=False) == token
        assert f"refresh?token={token}" in unquote(field(sandbox, shop_id, "stripe-url"))
