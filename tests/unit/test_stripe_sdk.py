"""The gateway's names for the SDK operations it calls (``mirakl_connector.stripe.sdk``)."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from mirakl_connector.stripe.sdk import SERVICE_PATHS, operation_name, request_options


def walk(client: stripe.StripeClient, path: str) -> Any:
    found: Any = client.v1
    for part in path.split("."):
        found = getattr(found, part)
    return found


def test_each_service_path_leads_to_its_service() -> None:
    client = stripe.StripeClient("sk_test_walk")  # walked, never called
    for service, path in SERVICE_PATHS.items():
        assert type(walk(client, path)) is service, path
    assert len(set(SERVICE_PATHS.values())) == len(SERVICE_PATHS)


@pytest.mark.parametrize(
    "name",
    [
        "transfers.create",
        "transfers.reversals.create",
        "transfers.reversals.list",
        "accounts.retrieve_current",
        "accounts.login_links.create",
        "balance.retrieve",
        "balance_transactions.list",
    ],
)
def test_the_operation_name_is_the_path_from_v1(name: str) -> None:
    client = stripe.StripeClient("sk_test_walk")
    assert operation_name(walk(client, name)) == name


def test_a_method_of_an_unknown_service_has_no_name() -> None:
    client = stripe.StripeClient("sk_test_walk")
    with pytest.raises(LookupError, match="not a method of a Stripe service"):
        operation_name(client.v1.files.create)
    with pytest.raises(LookupError):
        operation_name(print)


def test_request_options_carry_only_what_is_given() -> None:
    assert request_options() == {}
    assert request_options("k") == {"idempotency_key": "k"}
    assert request_options(account="acct_1") == {"stripe_account": "acct_1"}
    assert request_options("k", "acct_1") == {"idempotency_key": "k", "stripe_account": "acct_1"}
