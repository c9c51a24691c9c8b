"""What a Stripe connected account's verification state means for Mirakl and for transfers.

Pure functions over the account as Stripe returns it (a plain dict), shared by the KYC monitor
(which reports the status to Mirakl and by e-mail) and the payment split (which holds transfers
to accounts that are not verified). Keeping the rules here, apart from the job that lists
accounts, lets a table test pin every rule without a network.

The status names are Mirakl's KYC statuses. The rules follow the Stripe connector's order (first
match wins); an account that is neither blocked nor fully enabled has no status (``None``): we
do not know enough to tell Mirakl anything, and it does not hold transfers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PENDING_SUBMISSION = "PENDING_SUBMISSION"
PENDING_APPROVAL = "PENDING_APPROVAL"
REFUSED = "REFUSED"
APPROVED = "APPROVED"

#: Statuses that need the seller (or Stripe) to act before money can reach the account: the KYC
#: monitor reports them, and the payment split holds transfers while a shop is in one of them.
PROBLEM_STATUSES = frozenset({PENDING_SUBMISSION, PENDING_APPROVAL, REFUSED})

_MAX_LISTED_REQUIREMENTS = 5


def kyc_status(account: Mapping[str, Any]) -> str | None:
    """The Mirakl KYC status of a Stripe account, or ``None`` when no rule applies.

    1. information still due → PENDING_SUBMISSION;
    2. information being verified → PENDING_APPROVAL;
    3. disabled with a ``rejected.*`` reason → REFUSED;
    4. disabled for any other reason → PENDING_APPROVAL;
    5. payouts enabled and the ``transfers`` capability ``active`` → APPROVED.

    Rule 5 used to ask for ``charges_enabled`` (as the incumbent did), which a transfers-only
    seller (``capabilities[transfers]`` alone, the recipient service agreement of a marketplace
    where the platform charges) never gets: such sellers stayed unapproved forever. What the
    marketplace needs from a seller account is to receive transfers and pay out
    (docs.stripe.com/connect/account-capabilities#transfers). An account object without any
    capabilities (the pre-capabilities shape, or a test double) falls back to ``charges_enabled``.
    """
    requirements = account.get("requirements") or {}
    if requirements.get("currently_due"):
        return PENDING_SUBMISSION
    if requirements.get("pending_verification"):
        return PENDING_APPROVAL
    disabled_reason = requirements.get("disabled_reason")
    if disabled_reason:
        return REFUSED if str(disabled_reason).startswith("rejected") else PENDING_APPROVAL
    if account.get("payouts_enabled") and can_receive_transfers(account):
        return APPROVED
    return None


def can_receive_transfers(account: Mapping[str, Any]) -> bool:
    """The ``transfers`` capability is ``active`` (``Account.capabilities.transfers``)."""
    capabilities = account.get("capabilities") or {}
    if not capabilities:
        return bool(account.get("charges_enabled"))
    return capabilities.get("transfers") == "active"


def kyc_reason(account: Mapping[str, Any], status: str) -> str:
    """A short explanation of ``status`` for the seller (Mirakl shows it with the KYC status).

    More useful than the incumbent's fixed "STRIPE CONNECT ACCOUNT DISABLEMENT": it says what
    Stripe is waiting for, without any personal data (requirement names only).
    """
    requirements = account.get("requirements") or {}
    if status == PENDING_SUBMISSION:
        due = [str(r) for r in requirements.get("currently_due") or []]
        listed = ", ".join(due[:_MAX_LISTED_REQUIREMENTS])
        more = (
            f" and {len(due) - _MAX_LISTED_REQUIREMENTS} more"
            if len(due) > _MAX_LISTED_REQUIREMENTS
            else ""
        )
        return f"Stripe needs more information: {listed}{more}"
    if status == REFUSED:
        return f"Stripe refused the account ({requirements.get('disabled_reason')})"
    if status == PENDING_APPROVAL:
        reason = requirements.get("disabled_reason")
        if reason and not requirements.get("pending_verification"):
            return f"Stripe has disabled the account for now ({reason})"
        return "Stripe is verifying the information provided"
    if status == APPROVED:
        return "Stripe account verified"
    return f"Stripe account status {status}"


def unknown_status_reason(account_id: str) -> str:
    """The hold reason of a transfer or payout to an account whose KYC status is not known yet
    (``kyc_status`` empty: onboarding, the KYC monitor or ``account.updated`` will set it)."""
    return (
        f"Stripe account {account_id} verification status is not known yet "
        "(waiting for the KYC monitor or an account.updated event)"
    )


def holds_transfers(status: str | None) -> bool:
    """True when transfers to an account in ``status`` must wait (a hold, never terminal)."""
    return status in PROBLEM_STATUSES
