"""Payment claims: one provider per Mirakl document, once, on both backends."""

from __future__ import annotations

import pytest

from mirakl_connector.ledger.claims import (
    ClaimKind,
    claim_documents,
    find_claims,
    record_imported_claims,
)

pytestmark = pytest.mark.parametrize("ledger_url", ["sqlite", "postgres"], indirect=True)


def test_the_first_provider_wins_and_the_second_is_refused(open_ledger):
    stripe_side, hw_side = open_ledger(), open_ledger()  # two processes
    won = claim_documents(
        hw_side, "hyperwallet", ClaimKind.INVOICE, {"9101": 101}, workflow="hw", run_id="r1"
    )
    assert won["9101"].provider == "hyperwallet"
    assert won["9101"].refusal("hyperwallet") is None

    lost = claim_documents(
        stripe_side, "stripe", ClaimKind.INVOICE, {"9101": 101, "9001": 1}, workflow="settle"
    )
    assert {i: c.provider for i, c in lost.items()} == {"9101": "hyperwallet", "9001": "stripe"}
    assert lost["9101"].refusal("stripe") == (
        "Invoice 9101 is already claimed for payment by hyperwallet (by hw, run r1): "
        "not paid by stripe"
    )
    # once: the same provider claiming again finds its own claim, unchanged
    again = claim_documents(hw_side, "hyperwallet", ClaimKind.INVOICE, {"9101": 101}, workflow="x")
    assert (again["9101"].workflow, again["9101"].run_id) == ("hw", "r1")
    # kinds are separate: an order 9101 is another document
    order = claim_documents(stripe_side, "stripe", ClaimKind.ORDER, {"9101": 1}, workflow="split")
    assert order["9101"].provider == "stripe"


def test_find_writes_nothing_and_imports_are_respected(open_ledger):
    ledger = open_ledger()
    assert find_claims(ledger, ClaimKind.INVOICE, ["1", "2"]) == {}
    assert find_claims(ledger, ClaimKind.INVOICE, ["1"]) == {}
    imported = record_imported_claims(
        ledger, "stripe", ClaimKind.INVOICE, {"1": 5}, source="stripe-connector",
        notes={"1": "payout 42"},
    )  # fmt: skip
    assert imported["1"].origin == "import"
    refused = claim_documents(ledger, "hyperwallet", ClaimKind.INVOICE, {"1": 5}, workflow="hw")
    assert refused["1"].refusal("hyperwallet") == (
        "Invoice 1 is already claimed for payment by stripe (imported from the previous "
        "connector): not paid by hyperwallet"
    )
    assert (
        record_imported_claims(ledger, "stripe", ClaimKind.INVOICE, {"1": 5}, source="again")[
            "1"
        ].workflow
        == "stripe-connector"
    )  # safe to run twice
