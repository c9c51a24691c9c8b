"""``account.updated`` end to end: the sandbox emits the event, the endpoint stores it, the job
applies it (mapping, login link and KYC status to Mirakl with S07, operator notification)."""

from __future__ import annotations

import json

import pytest

from mirakl_connector.core.registry import Resources
from mirakl_connector.core.retry import RetryPolicy
from mirakl_connector.ledger import InboxStatus
from mirakl_connector.ledger.records import AccountMapping
from mirakl_connector.mirakl.client import MiraklClient
from mirakl_connector.stripe.events import StripeEvents, StripeEventsSettings
from mirakl_connector.stripe.onboarding import OnboardingSettings
from mirakl_connector.webhooks.signature import stripe_signature_header

from .conftest import SECRET  # noqa: TID252


@pytest.fixture
def marketplace(admin, wh_ledger):
    """Shop 1 mapped to an Express account still onboarding (token set, nothing enabled)."""
    admin.put_shops(
        [{"shop_id": 1, "shop_name": "One", "last_updated_date": "2026-11-01T00:00:00Z"}]
    )
    admin.put_accounts(
        [
            {"id": "acct_1", "type": "express", "details_submitted": False},
            {"id": "acct_stranger", "type": "express", "details_submitted": True},
        ]
    )
    wh_ledger.upsert_account_mapping(AccountMapping(1, "acct_1", onboarding_token="tok-1"))
    admin.clear_mirakl_calls()
    return admin


@pytest.fixture
def job(server, gateway, wh_ledger):
    mirakl = MiraklClient(server.url, "sandbox-mirakl-key", retry=RetryPolicy.no_wait())
    resources = Resources(mirakl=lambda: mirakl, stripe=lambda: gateway, ledger=lambda: wh_ledger)
    return StripeEvents(
        resources=resources,
        settings=StripeEventsSettings(),
        onboarding=OnboardingSettings(link_field="stripe-url"),
    )


def deliver_latest(admin, client) -> dict:
    """POST the sandbox's newest event to the endpoint, signed like Stripe."""
    event = max(admin.events(), key=lambda e: e["id"])
    body = json.dumps(event).encode()
    response = client.post(
        "/webhooks/stripe",
        content=body,
        headers={"Stripe-Signature": stripe_signature_header(body, SECRET)},
    )
    assert response.status_code == 200, response.text
    return event


def notifications(ledger):
    return [n for batch in ledger.iter_notifications(statuses=["PENDING"]) for n in batch]


def test_submitted_account_updates_mapping_mirakl_and_queues_a_notification(
    marketplace, client, job, wh_ledger
):
    marketplace.patch_account(
        "acct_1",
        details_submitted=True,
        payouts_enabled=False,
        charges_enabled=True,
        requirements={
            "currently_due": ["external_account"],
            "disabled_reason": "requirements.past_due",
        },
    )
    event = deliver_latest(marketplace, client)
    assert event["type"] == "account.updated"

    assert job.process().counts == {"PROCESSED": 1}
    mapping = wh_ledger.account_mapping_by_stripe_account("acct_1")
    assert (mapping.payouts_enabled, mapping.charges_enabled) == (False, True)
    assert mapping.disabled_reason == "requirements.past_due"
    assert mapping.kyc_status == "PENDING_SUBMISSION"
    assert mapping.onboarding_token is None  # the refresh URL no longer applies

    [call] = marketplace.mirakl_calls("S07")
    [shop] = call["body"]["shops"]
    assert shop["shop_id"] == 1
    [link] = shop["shop_additional_fields"]
    assert link["code"] == "stripe-url" and link["value"].endswith("/_sandbox/dashboard/acct_1")
    assert shop["kyc"]["status"] == "PENDING_SUBMISSION"
    assert "external_account" in shop["kyc"]["reason"]

    [note] = notifications(wh_ledger)
    assert note.type == "account.updated"
    assert note.payload == {"miraklShopId": 1, "stripeUserId": "acct_1"}
    stored = wh_ledger.get_inbox_event("stripe", event["id"])
    assert stored.status == InboxStatus.PROCESSED

    # Verified later: the newer event wins, APPROVED reaches Mirakl.
    marketplace.patch_account(
        "acct_1", payouts_enabled=True, requirements={"currently_due": [], "disabled_reason": None}
    )
    deliver_latest(marketplace, client)
    assert job.process().counts == {"PROCESSED": 1}
    mapping = wh_ledger.account_mapping_by_stripe_account("acct_1")
    assert (mapping.payouts_enabled, mapping.disabled_reason, mapping.kyc_status) == (
        True,
        None,
        "APPROVED",
    )
    assert marketplace.mirakl_calls("S07")[-1]["body"]["shops"][0]["kyc"]["status"] == "APPROVED"
    assert len(notifications(wh_ledger)) == 2


def test_details_not_submitted_is_ignored(marketplace, client, job, wh_ledger):
    marketplace.patch_account("acct_1", charges_enabled=True)  # still onboarding
    event = deliver_latest(marketplace, client)
    assert job.process().counts == {"IGNORED": 1}
    stored = wh_ledger.get_inbox_event("stripe", event["id"])
    assert "until details are submitted" in stored.last_error
    mapping = wh_ledger.account_mapping_by_stripe_account("acct_1")
    assert (mapping.charges_enabled, mapping.onboarding_token) == (False, "tok-1")
    assert marketplace.mirakl_calls("S07") == [] and notifications(wh_ledger) == []


def test_unknown_account_is_ignored(marketplace, client, job, wh_ledger):
    marketplace.patch_account("acct_stranger", payouts_enabled=True, charges_enabled=True)
    event = deliver_latest(marketplace, client)
    assert job.process().counts == {"IGNORED": 1}
    assert "non-Mirakl" in wh_ledger.get_inbox_event("stripe", event["id"]).last_error
    assert wh_ledger.account_mapping_by_stripe_account("acct_stranger") is None
    assert marketplace.mirakl_calls("S07") == [] and notifications(wh_ledger) == []


def test_an_update_before_submission_records_the_kyc_status_only(
    marketplace, client, job, wh_ledger
):
    """The first status is known as soon as Stripe sends one: nothing is written to Mirakl (the
    seller still needs the onboarding link), but the transfers know what to wait for."""
    assert wh_ledger.account_mappings_by_shop([1])[1].kyc_status is None
    marketplace.patch_account(
        "acct_1", details_submitted=False, requirements={"currently_due": ["external_account"]}
    )
    event = deliver_latest(marketplace, client)

    summary = job.process()

    mapping = wh_ledger.account_mappings_by_shop([1])[1]
    assert mapping.kyc_status == "PENDING_SUBMISSION"
    assert mapping.onboarding_token == "tok-1"  # the onboarding link stays valid
    assert marketplace.mirakl_calls("S07") == []
    stored = wh_ledger.get_inbox_event("stripe", event["id"])
    assert stored.status is InboxStatus.PROCESSED
    assert "KYC status PENDING_SUBMISSION recorded" in str(summary.to_dict())
