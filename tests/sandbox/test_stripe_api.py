"""Stripe side of the sandbox, driven by the official SDK."""

from __future__ import annotations

import pytest
import requests
import stripe
from mirakl_sandbox import SandboxAdmin


def test_wrong_key_raises_authentication_error(sandbox) -> None:
    client = stripe.StripeClient(
        "sk_test_wrong", base_addresses={"api": sandbox.url}, max_network_retries=0
    )
    with pytest.raises(stripe.AuthenticationError) as info:
        client.v1.accounts.retrieve("acct_seller")
    assert "sk_test_wrong" not in str(info.value)


def test_accounts_create_retrieve_update_list(
    stripe_client: stripe.StripeClient, admin: SandboxAdmin
) -> None:
    created = stripe_client.v1.accounts.create(
        params={
            "type": "express",
            "metadata": {"miraklShopId": "7"},
            "settings": {
                "payouts": {"debit_negative_balances": False, "schedule": {"interval": "manual"}}
            },
        }
    )
    assert created.id.startswith("acct_") and created.metadata["miraklShopId"] == "7"
    assert created.settings["payouts"]["schedule"]["interval"] == "manual"
    assert created.settings["payouts"]["debit_negative_balances"] is False
    updated = stripe_client.v1.accounts.update(created.id, params={"metadata": {"x": "1"}})
    assert updated.metadata.to_dict() == {"miraklShopId": "7", "x": "1"}
    page = stripe_client.v1.accounts.list(params={"limit": 2})
    assert [a.id for a in page.data] == [created.id, "acct_blocked"] and page.has_more
    rest = stripe_client.v1.accounts.list(params={"limit": 10, "starting_after": "acct_blocked"})
    assert [a.id for a in rest.data] == ["acct_nopayout", "acct_seller"] and not rest.has_more
    assert stripe_client.v1.accounts.retrieve_current().id == "acct_platform"
    with pytest.raises(stripe.InvalidRequestError) as info:
        stripe_client.v1.accounts.retrieve("acct_x")
    assert info.value.http_status == 404 and info.value.code == "resource_missing"
    link = stripe_client.v1.account_links.create(
        params={
            "account": created.id,
            "type": "account_onboarding",
            "refresh_url": "http://r",
            "return_url": "http://x",
        }
    )
    assert f"/_sandbox/onboarding/{created.id}" in link.url
    assert requests.get(link.url, timeout=5).status_code == 200
    onboarded = stripe_client.v1.accounts.retrieve(created.id)
    assert onboarded.charges_enabled and onboarded.payouts_enabled and onboarded.details_submitted
    types = [e["type"] for e in admin.events()]
    assert types == ["account.created", "account.updated", "account.updated"]


def test_transfer_with_source_transaction_cannot_exceed_charge(
    stripe_client: stripe.StripeClient, admin: SandboxAdmin
) -> None:
    params = {
        "amount": 6000,
        "currency": "eur",
        "destination": "acct_seller",
        "source_transaction": "ch_paid",
        "metadata": {"miraklId": "ORD-1-A"},
    }
    first = stripe_client.v1.transfers.create(params=params)
    assert (first.amount, first.source_transaction, first.metadata["miraklId"]) == (
        6000,
        "ch_paid",
        "ORD-1-A",
    )
    with pytest.raises(stripe.InvalidRequestError) as info:
        stripe_client.v1.transfers.create(params={**params, "amount": 4001})
    assert "exceeds the available amount" in info.value.user_message
    stripe_client.v1.transfers.create(params={**params, "amount": 4000})
    for charge, fragment in (("ch_auth", "succeeded and captured"), ("ch_none", "No such charge")):
        with pytest.raises(stripe.InvalidRequestError) as info:
            stripe_client.v1.transfers.create(
                params={**params, "amount": 1, "source_transaction": charge}
            )
        assert fragment in info.value.user_message
    assert len(admin.transfers()) == 2
    assert admin.balance() == {"eur": 50000}  # funded by the charge, not the balance


def test_transfer_from_balance_destination_rules(
    stripe_client: stripe.StripeClient, admin: SandboxAdmin
) -> None:
    base = {"currency": "eur", "destination": "acct_seller"}
    stripe_client.v1.transfers.create(params={**base, "amount": 30000})
    assert admin.balance()["eur"] == 20000
    with pytest.raises(stripe.InvalidRequestError) as info:
        stripe_client.v1.transfers.create(params={**base, "amount": 20001})
    assert info.value.code == "balance_insufficient"
    with pytest.raises(stripe.InvalidRequestError, match="No such destination: 'acct_x'"):
        stripe_client.v1.transfers.create(params={**base, "amount": 1, "destination": "acct_x"})
    with pytest.raises(stripe.InvalidRequestError, match="Transfers disabled."):
        stripe_client.v1.transfers.create(
            params={**base, "amount": 1, "destination": "acct_blocked"}
        )


def test_transfer_on_connected_account_and_payouts(
    stripe_client: stripe.StripeClient, admin: SandboxAdmin
) -> None:
    seller = {"stripe_account": "acct_seller"}
    back = stripe_client.v1.transfers.create(
        params={"amount": 999, "currency": "eur", "destination": "acct_platform"}, options=seller
    )
    assert admin.transfers()[0]["sandbox_account"] == "acct_seller"
    assert admin.balance()["eur"] == 50999
    # scoped: the platform does not see the seller's transfer
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.transfers.retrieve(back.id)
    assert stripe_client.v1.transfers.retrieve(back.id, options=seller).amount == 999
    payout = stripe_client.v1.payouts.create(
        params={"amount": 1234, "currency": "eur", "metadata": {"invoiceId": "7"}}, options=seller
    )
    assert (payout.status, payout.amount, payout.metadata["invoiceId"]) == ("pending", 1234, "7")
    with pytest.raises(stripe.InvalidRequestError, match="Payouts disabled"):
        stripe_client.v1.payouts.create(
            params={"amount": 1, "currency": "eur"}, options={"stripe_account": "acct_nopayout"}
        )
    listed = stripe_client.v1.payouts.list(options=seller)
    assert [p.id for p in listed.data] == [payout.id]
    event = [e for e in admin.events() if e["type"] == "payout.created"][0]
    assert event["account"] == "acct_seller"
    paid = admin.set_payout_status(payout.id, "paid")
    assert paid["status"] == "paid" and admin.events()[-1]["type"] == "payout.paid"


def test_reversals_cannot_exceed_transfer(
    stripe_client: stripe.StripeClient, admin: SandboxAdmin
) -> None:
    transfer = stripe_client.v1.transfers.create(
        params={
            "amount": 5000,
            "currency": "eur",
            "destination": "acct_seller",
            "source_transaction": "ch_paid",
        }
    )
    reversal = stripe_client.v1.transfers.reversals.create(
        transfer.id, params={"amount": 3000, "metadata": {"miraklId": "1000"}}
    )
    assert reversal.id.startswith("trr_") and reversal.amount == 3000
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.transfers.reversals.create(transfer.id, params={"amount": 2001})
    rest = stripe_client.v1.transfers.reversals.create(transfer.id)
    assert rest.amount == 2000
    with pytest.raises(stripe.InvalidRequestError, match="Transfer already reversed."):
        stripe_client.v1.transfers.reversals.create(transfer.id, params={"amount": 1})
    again = stripe_client.v1.transfers.retrieve(transfer.id)
    assert (again.amount_reversed, again.reversed, len(again.reversals.data)) == (5000, True, 2)
    listed = stripe_client.v1.transfers.reversals.list(transfer.id)
    assert [r.id for r in listed.data] == [rest.id, reversal.id]


def test_refunds_update_the_charge(stripe_client: stripe.StripeClient, admin: SandboxAdmin) -> None:
    partial = stripe_client.v1.refunds.create(
        params={"charge": "ch_paid", "amount": 4000, "metadata": {"miraklRefundId": "1000"}}
    )
    assert (partial.amount, partial.status) == (4000, "succeeded")
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.refunds.create(params={"charge": "ch_paid", "amount": 6001})
    rest = stripe_client.v1.refunds.create(params={"payment_intent": "pi_done"})
    assert (rest.amount, rest.charge) == (6000, "ch_paid")
    charge = stripe_client.v1.charges.retrieve("ch_paid")
    assert (charge.amount_refunded, charge.refunded) == (10000, True)
    with pytest.raises(stripe.InvalidRequestError, match="ch_paid has already been refunded"):
        stripe_client.v1.refunds.create(params={"charge": "ch_paid"})
    # a fully refunded charge no longer funds transfers (a partial refund does not reduce it)
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.transfers.create(
            params={
                "amount": 1,
                "currency": "eur",
                "destination": "acct_seller",
                "source_transaction": "ch_paid",
            }
        )
    assert len(admin.refunds()) == 2


def test_capture_and_cancel(stripe_client: stripe.StripeClient, admin: SandboxAdmin) -> None:
    captured = stripe_client.v1.payment_intents.capture(
        "pi_capture", params={"amount_to_capture": 2500}
    )
    assert (captured.status, captured.amount_received) == ("succeeded", 2500)
    charge = stripe_client.v1.charges.retrieve(captured.latest_charge)
    assert charge.captured and charge.amount_captured == 2500
    with pytest.raises(stripe.InvalidRequestError) as info:
        stripe_client.v1.payment_intents.capture("pi_capture")
    assert info.value.code == "payment_intent_unexpected_state"
    assert "status of succeeded" in info.value.user_message
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.payment_intents.cancel("pi_done")
    ch = stripe_client.v1.charges.capture("ch_auth", params={"amount": 4000})
    assert ch.captured and ch.amount_captured == 4000
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.charges.capture("ch_failed")
    admin.put_payment_intents(
        [{"id": "pi_new", "amount": 100, "currency": "eur", "status": "requires_payment_method"}]
    )
    assert stripe_client.v1.payment_intents.cancel("pi_new").status == "canceled"
    types = [e["type"] for e in admin.events()]
    assert types.count("charge.captured") == 2 and "payment_intent.canceled" in types


def test_events_listing_filters_and_cursors(
    stripe_client: stripe.StripeClient, admin: SandboxAdmin
) -> None:
    for n in range(3):
        stripe_client.v1.transfers.create(
            params={"amount": 10 + n, "currency": "eur", "destination": "acct_seller"},
            options={"idempotency_key": f"evt-{n}"},
        )
    stripe_client.v1.refunds.create(params={"charge": "ch_paid", "amount": 5})
    everything = stripe_client.v1.events.list(params={"limit": 100})
    assert [e.type for e in everything.data] == [
        "charge.refunded",
        "refund.created",
        "transfer.created",
        "transfer.created",
        "transfer.created",
    ]
    transfers = stripe_client.v1.events.list(params={"type": "transfer.*", "limit": 2})
    assert len(transfers.data) == 2 and transfers.has_more
    assert transfers.data[0].data.object.amount == 12
    assert transfers.data[0].request.idempotency_key == "evt-2"
    older = stripe_client.v1.events.list(
        params={"type": "transfer.created", "starting_after": transfers.data[1].id}
    )
    assert [e.data.object.amount for e in older.data] == [10]
    newer = stripe_client.v1.events.list(params={"ending_before": transfers.data[0].id})
    assert [e.type for e in newer.data] == ["charge.refunded", "refund.created"]
    several = stripe_client.v1.events.list(params={"types": ["refund.created", "charge.refunded"]})
    assert len(several.data) == 2
    created = everything.data[0].created
    assert len(stripe_client.v1.events.list(params={"created": {"gt": created}}).data) == 0
    assert len(stripe_client.v1.events.list(params={"created": {"lte": created}}).data) == 5


def test_transfer_list_filters(stripe_client: stripe.StripeClient, admin: SandboxAdmin) -> None:
    admin.put_accounts([{"id": "acct_other", "payouts_enabled": True}])
    for dest, group in (("acct_seller", "G1"), ("acct_other", "G1"), ("acct_seller", "G2")):
        stripe_client.v1.transfers.create(
            params={"amount": 1, "currency": "eur", "destination": dest, "transfer_group": group}
        )
    by_dest = stripe_client.v1.transfers.list(params={"destination": "acct_seller"})
    assert [t.transfer_group for t in by_dest.data] == ["G2", "G1"]
    by_group = stripe_client.v1.transfers.list(params={"transfer_group": "G1"})
    assert [t.destination for t in by_group.data] == ["acct_other", "acct_seller"]
