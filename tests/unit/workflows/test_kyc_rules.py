"""The KYC status rules (first match wins) and the reasons shown to sellers."""

from __future__ import annotations

import pytest

from mirakl_connector.stripe.kyc_monitor import KycReport, mirakl_update_due, render_email
from mirakl_connector.stripe.kyc_rules import holds_transfers, kyc_reason, kyc_status


def account(*, due=(), pending=(), disabled=None, payouts=False, charges=False):
    return {
        "id": "acct_1",
        "payouts_enabled": payouts,
        "charges_enabled": charges,
        "requirements": {
            "currently_due": list(due),
            "pending_verification": list(pending),
            "disabled_reason": disabled,
        },
    }


@pytest.mark.parametrize(
    ("acct", "expected"),
    [
        # rule 1 wins over everything, even an enabled account
        (account(due=["external_account"], payouts=True, charges=True), "PENDING_SUBMISSION"),
        (account(due=["x"], pending=["y"], disabled="rejected.fraud"), "PENDING_SUBMISSION"),
        # rule 2 before the disabled reason
        (account(pending=["individual.id_number"], disabled="rejected.fraud"), "PENDING_APPROVAL"),
        # rule 3: rejected.* → REFUSED
        (account(disabled="rejected.fraud"), "REFUSED"),
        (account(disabled="rejected.terms_of_service"), "REFUSED"),
        # rule 4: any other disabled reason
        (account(disabled="requirements.past_due"), "PENDING_APPROVAL"),
        (account(disabled="Prohibited business"), "PENDING_APPROVAL"),
        # rule 5
        (account(payouts=True, charges=True), "APPROVED"),
        # none applies
        (account(payouts=True, charges=False), None),
        (account(), None),
        ({"id": "acct_bare"}, None),
    ],
)
def test_kyc_status_rules(acct, expected):
    assert kyc_status(acct) == expected


@pytest.mark.parametrize(
    ("capabilities", "charges", "expected"),
    [
        # a transfers-only seller (recipient): never charges_enabled, yet fully usable
        ({"transfers": "active"}, False, "APPROVED"),
        ({"transfers": "active", "card_payments": "inactive"}, False, "APPROVED"),
        # charges alone do not make an account able to receive the marketplace's transfers
        ({"transfers": "inactive", "card_payments": "active"}, True, None),
        ({"transfers": "pending"}, True, None),
    ],
)
def test_approved_follows_the_transfers_capability_not_charges_enabled(
    capabilities, charges, expected
):
    acct = account(payouts=True, charges=charges) | {"capabilities": capabilities}
    assert kyc_status(acct) == expected
    # payouts still matter: a seller whose payouts are disabled is not approved
    assert kyc_status(acct | {"payouts_enabled": False}) is None


def test_holds_only_problem_statuses():
    assert [s for s in ("PENDING_SUBMISSION", "PENDING_APPROVAL", "REFUSED") if holds_transfers(s)]
    assert not holds_transfers("APPROVED")
    assert not holds_transfers(None)


def test_reasons_name_what_stripe_waits_for():
    due = [f"req{i}" for i in range(7)]
    assert kyc_reason(account(due=due), "PENDING_SUBMISSION") == (
        "Stripe needs more information: req0, req1, req2, req3, req4 and 2 more"
    )
    assert kyc_reason(account(disabled="rejected.fraud"), "REFUSED") == (
        "Stripe refused the account (rejected.fraud)"
    )
    assert kyc_reason(account(pending=["a"]), "PENDING_APPROVAL") == (
        "Stripe is verifying the information provided"
    )
    assert kyc_reason(account(disabled="requirements.past_due"), "PENDING_APPROVAL") == (
        "Stripe has disabled the account for now (requirements.past_due)"
    )


@pytest.mark.parametrize(
    ("status", "previous", "retrying", "expected"),
    [
        ("PENDING_SUBMISSION", None, False, "PENDING_SUBMISSION"),
        ("PENDING_SUBMISSION", "PENDING_SUBMISSION", False, None),  # unchanged: written already
        ("PENDING_SUBMISSION", "PENDING_SUBMISSION", True, "PENDING_SUBMISSION"),  # last failed
        ("REFUSED", "PENDING_APPROVAL", False, "REFUSED"),
        ("APPROVED", "PENDING_APPROVAL", False, "APPROVED"),  # the problem cleared
        ("APPROVED", None, False, None),  # always fine: nothing to tell Mirakl
        ("APPROVED", "APPROVED", False, None),
        (None, "REFUSED", False, None),  # unknown: say nothing
    ],
)
def test_mirakl_update_due(status, previous, retrying, expected):
    assert mirakl_update_due(status, previous, retrying=retrying) == expected


def test_email_escapes_stripe_text():
    body = render_email([KycReport(7, "acct_7", "REFUSED", "<b>rejected</b>")])
    assert "<td>7</td><td>acct_7</td><td>REFUSED</td><td>&lt;b&gt;rejected&lt;/b&gt;</td>" in body
