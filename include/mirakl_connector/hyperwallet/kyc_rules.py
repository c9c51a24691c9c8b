"""Hyperwallet verification statuses → the Mirakl shop's KYC status and document flags (pure).

Hyperwallet verifies the seller (a user, ``usr-``) and, for a business, its stakeholders
(``stk-``) and the letter of authorisation of its business contact. Mirakl has one KYC status per
shop, so the user's statuses are folded into one, the way the incumbent connector does:

* **individual**: ``UNDER_REVIEW`` → ``PENDING_APPROVAL``, ``VERIFIED`` and ``NOT_REQUIRED`` →
  ``APPROVED``, ``REQUIRED`` → ``REFUSED``; anything else (``REQUESTED``, ``EXPIRED``, none) leaves
  Mirakl as it is;
* **business**: any of the three statuses (verification, stakeholders, letter of authorisation)
  ``REQUIRED`` → ``REFUSED``, else any ``UNDER_REVIEW`` → ``PENDING_APPROVAL``, else ``APPROVED``.

The refusal reason is HTML Mirakl shows the seller: one list item per thing to provide. Document
flags (shop additional fields) tell the seller which documents are wanted.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import Any

PENDING_APPROVAL = "PENDING_APPROVAL"
APPROVED = "APPROVED"
REFUSED = "REFUSED"

REQUIRED = "REQUIRED"
UNDER_REVIEW = "UNDER_REVIEW"

PROOF_OF_IDENTITY_FIELD = "hw-kyc-req-proof-identity-business"
PROOF_OF_AUTHORIZATION_FIELD = "hw-kyc-req-proof-authorization"
STAKEHOLDER_TOKEN_FIELD = "hw-stakeholder-token-{n}"
STAKEHOLDER_PROOF_FIELD = "hw-stakeholder-req-proof-identity-{n}"
MAX_STAKEHOLDERS = 5

_INDIVIDUAL = {
    UNDER_REVIEW: PENDING_APPROVAL,
    "VERIFIED": APPROVED,
    "NOT_REQUIRED": APPROVED,
    REQUIRED: REFUSED,
}

_HEADER = (
    "There is an issue with verifying your details in Hyperwallet. "
    "Please make sure that you have:<br /><ul>"
)
_FOOTER = (
    "</ul><br />See Hyperwallet's list of required information: "
    '<a href="https://docs.hyperwallet.com/content/payouts/v1/kyc-information">'
    "KYC information</a>."
)


def _status(user: Mapping[str, Any], name: str) -> str | None:
    value = user.get(name)
    return str(value).strip().upper() if value not in (None, "") else None


def is_business(user: Mapping[str, Any]) -> bool:
    return _status(user, "profileType") == "BUSINESS"


def mirakl_kyc_status(user: Mapping[str, Any]) -> str | None:
    """The Mirakl KYC status for a Hyperwallet user, or ``None`` to leave Mirakl unchanged."""
    verification = _status(user, "verificationStatus")
    if not is_business(user):
        return _INDIVIDUAL.get(verification or "")
    statuses = {
        verification,
        _status(user, "businessStakeholderVerificationStatus"),
        _status(user, "letterOfAuthorizationStatus"),
    }
    if REQUIRED in statuses:
        return REFUSED
    if UNDER_REVIEW in statuses:
        return PENDING_APPROVAL
    return APPROVED


def kyc_reason(user: Mapping[str, Any]) -> str:
    """The HTML reason shown to the seller ('' when nothing is wanted from them)."""
    items: list[str] = []
    business = is_business(user)
    if _status(user, "verificationStatus") == REQUIRED:
        if business:
            items += [
                "Filled in your account details correctly",
                "Submitted a Certificate of Incorporation",
            ]
        else:
            items += [
                "Filled in your account details correctly",
                "Submitted your Proof of Identity and Proof of Address documents",
            ]
    if business and _status(user, "businessStakeholderVerificationStatus") == REQUIRED:
        items += [
            "Filled in the details of every business stakeholder",
            "Submitted the Proof of Identity documents of every business stakeholder",
        ]
    if business and _status(user, "letterOfAuthorizationStatus") == REQUIRED:
        items.append(
            "Provided a Letter of Authorization for the business contact who is not a director"
        )
    if not items:
        return ""
    return _HEADER + "".join(f"<li>{html.escape(item)}</li>" for item in items) + _FOOTER


def document_flags(user: Mapping[str, Any], *, automated: bool) -> dict[str, str]:
    """Shop additional fields telling the seller which documents Hyperwallet wants."""
    flags: dict[str, str] = {}
    if _status(user, "verificationStatus") == REQUIRED:
        flags[PROOF_OF_IDENTITY_FIELD] = "true"
    if automated and is_business(user) and _status(user, "letterOfAuthorizationStatus") == REQUIRED:
        flags[PROOF_OF_AUTHORIZATION_FIELD] = "true"
    return flags


def stakeholders_required(user: Mapping[str, Any]) -> bool:
    """A business whose stakeholders must send documents (their tokens are then looked up)."""
    return is_business(user) and _status(user, "businessStakeholderVerificationStatus") == REQUIRED


def stakeholder_index(shop: Mapping[str, Any], stakeholder_token: str) -> int | None:
    """The ``n`` of the shop's ``hw-stakeholder-token-<n>`` holding ``stakeholder_token``."""
    values = {
        str(f.get("code")): f.get("value")
        for f in shop.get("shop_additional_fields") or []
        if isinstance(f, Mapping)
    }
    for n in range(1, MAX_STAKEHOLDERS + 1):
        if values.get(STAKEHOLDER_TOKEN_FIELD.format(n=n)) == stakeholder_token:
            return n
    return None


def required_stakeholder_flags(
    shop: Mapping[str, Any], stakeholders: Iterable[Mapping[str, Any]]
) -> dict[str, str]:
    """``hw-stakeholder-req-proof-identity-<n> = true`` for each stakeholder still REQUIRED."""
    flags: dict[str, str] = {}
    for stakeholder in stakeholders:
        if _status(stakeholder, "verificationStatus") != REQUIRED:
            continue
        n = stakeholder_index(shop, str(stakeholder.get("token") or ""))
        if n is not None:
            flags[STAKEHOLDER_PROOF_FIELD.format(n=n)] = "true"
    return flags


def letter_of_authorization_wanted(user: Mapping[str, Any]) -> str:
    """``"true"`` when the user's letter of authorisation is REQUIRED or FAILED."""
    return (
        "true" if _status(user, "letterOfAuthorizationStatus") in (REQUIRED, "FAILED") else "false"
    )


def shop_update(
    shop_id: int, status: str | None, reason: str, fields: Mapping[str, str]
) -> dict[str, Any] | None:
    """The S07 entry for one shop, or ``None`` when there is nothing to write."""
    if status is None and not fields:
        return None
    entry: dict[str, Any] = {"shop_id": shop_id}
    if status is not None:
        entry["kyc"] = {"status": status, "reason": reason}
    if fields:
        entry["shop_additional_fields"] = [
            {"code": code, "value": value} for code, value in sorted(fields.items())
        ]
    return entry
