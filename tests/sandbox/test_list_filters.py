"""The list filters the reconciliation reads with, as the references define them.

Stripe: through the pinned SDK (its generated ``TransferListParams``, ``RefundListParams``,
``PayoutListParams`` and ``BalanceTransactionListParams``: ``created`` as an exact time or a
``gt``/``gte``/``lt``/``lte`` range, ``type``, ``destination``, ``arrival_date``...). Hyperwallet:
``createdAfter`` / ``createdBefore`` (the Java SDK's ``HyperwalletPaginationOptions``); the
sandbox keeps objects created strictly after / before (the references say no more; strict is
the narrower reading). The clock is moved between objects so that windows can tell them apart.
"""

from __future__ import annotations

import pytest
import stripe
from mirakl_sandbox.hyperwallet_admin import DEFAULT_PASSWORD, DEFAULT_USERNAME

from mirakl_connector.core.retry import RetryPolicy
from mirakl_connector.hyperwallet.client import HyperwalletClient

HOUR = 3600


def _ids(page) -> list[str]:
    return [o.id for o in page.data]


def test_transfers_refunds_and_reversals_by_creation_window(stripe_client, admin):
    made = []
    for amount in (100, 200, 300):  # one an hour
        made.append(
            stripe_client.v1.transfers.create(
                params={"amount": amount, "currency": "eur", "destination": "acct_seller"}
            )
        )
        admin.advance_clock(HOUR)
    first, second, third = made
    window = {"gte": second.created, "lte": third.created}
    listed = stripe_client.v1.transfers.list(params={"created": window, "limit": 100})
    assert _ids(listed) == [third.id, second.id]  # newest first, both ends included
    strict = {"gt": first.created, "lt": third.created}
    assert _ids(stripe_client.v1.transfers.list(params={"created": strict})) == [second.id]
    assert _ids(stripe_client.v1.transfers.list(params={"created": first.created})) == [first.id]
    assert _ids(
        stripe_client.v1.transfers.list(params={"destination": "acct_nopayout"})
    ) == []  # fmt: skip

    reversal = stripe_client.v1.transfers.reversals.create(second.id, params={"amount": 50})
    refund = stripe_client.v1.refunds.create(params={"charge": "ch_paid", "amount": 10})
    now = {"gte": reversal.created}
    assert _ids(stripe_client.v1.refunds.list(params={"created": now})) == [refund.id]
    before = {"lt": reversal.created}
    assert _ids(stripe_client.v1.refunds.list(params={"created": before})) == []
    txns = stripe_client.v1.balance_transactions.list(
        params={"created": now, "type": "transfer_refund", "limit": 100}
    )
    assert [(t.source, t.amount, t.currency) for t in txns.data] == [(reversal.id, 50, "eur")]
    # automatic payouts only (docs): the sandbox makes none, so nothing belongs to one
    assert stripe_client.v1.balance_transactions.list(params={"payout": "po_x"}).data == []


def test_payouts_of_a_connected_account_by_creation_and_arrival(stripe_client, admin):
    options = {"stripe_account": "acct_seller"}
    early = stripe_client.v1.payouts.create(params={"amount": 100, "currency": "eur"},
                                            options=options)  # fmt: skip
    admin.advance_clock(3 * 86400)
    late = stripe_client.v1.payouts.create(params={"amount": 200, "currency": "eur"},
                                           options=options)  # fmt: skip
    by_created = stripe_client.v1.payouts.list(
        params={"created": {"gte": late.created}}, options=options
    )
    assert _ids(by_created) == [late.id]
    by_arrival = stripe_client.v1.payouts.list(
        params={"arrival_date": {"lte": early.arrival_date}}, options=options
    )
    assert _ids(by_arrival) == [early.id]
    other = stripe_client.v1.payouts.list(params={"destination": "ba_other"}, options=options)
    assert other.data == []
    # a connected account's payouts are listed only with its Stripe-Account
    assert stripe_client.v1.payouts.list(params={"created": {"gte": early.created}}).data == []


@pytest.mark.stripe_contract_refusals
def test_an_unknown_range_operator_is_refused(stripe_client):
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.transfers.list(params={"created": {"after": 1}})  # type: ignore[dict-item]


def test_hyperwallet_payments_by_creation_window(sandbox, admin):
    hw = HyperwalletClient(sandbox.url, DEFAULT_USERNAME, DEFAULT_PASSWORD,
                           retry=RetryPolicy.no_wait(2), page_size=1)  # fmt: skip
    user = hw.create_user(
        {"clientUserId": "2001", "profileType": "INDIVIDUAL", "programToken": "prg-users",
         "firstName": "Fake", "lastName": "Name", "email": "f@example.com",
         "addressLine1": "30 King Street", "city": "Valencia", "country": "ES"}
    )  # fmt: skip
    account = hw.create_bank_account(
        user["token"],
        {"type": "BANK_ACCOUNT", "transferMethodCountry": "ES", "transferMethodCurrency": "EUR",
         "bankAccountId": "ES3920956580417064096726", "bankId": "CAIXESBBXXX"},
    )  # fmt: skip
    made = []
    for n in range(3):
        made.append(
            hw.create_payment(
                {
                    "clientPaymentId": f"90{n}",
                    "amount": "10.00",
                    "currency": "EUR",
                    "destinationToken": account["token"],
                    "programToken": "prg-pay",
                    "purpose": "OTHER",
                }
            )  # fmt: skip
        )
        admin.advance_clock(HOUR)
    from mirakl_connector.hyperwallet.client import parse_hw_datetime

    first, second, third = (parse_hw_datetime(p["createdOn"]) for p in made)
    window = list(hw.iter_payments(created_after=first, created_before=third))  # page_size 1
    assert [p["clientPaymentId"] for p in window] == ["901"]
    everything = list(hw.iter_payments(created_after=first.replace(year=first.year - 1)))
    assert [p["clientPaymentId"] for p in everything] == ["900", "901", "902"]
