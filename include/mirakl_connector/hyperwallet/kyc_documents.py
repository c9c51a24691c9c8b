"""Which Mirakl shop documents to delete when Hyperwallet marks a KYC document INVALID (pure).

The PayPal connector (github.com/paypal/mirakl-hyperwallet-connector, hmc-kyc), after applying a
user
verification notification, deletes from Mirakl the documents the notification lists as
``INVALID`` so that the seller is asked for them again — unless the Mirakl copy was uploaded
after the Hyperwallet document's ``createdOn`` (the seller already sent a new one).

A Hyperwallet document names a ``category``; the Mirakl document types (the PayPal connector's
``DocumentsExtractJob``) of each
category are below. ``AUTHORIZATION`` (the letter of authorisation) → ``hw-bsh-letter-
authorization`` is our reading: the reference lists that Mirakl type but not the category name.
A document whose dates cannot be compared is kept (deleting a fresh re-upload would lose the
seller's work; keeping a stale one only delays the review).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

INVALID = "INVALID"

MIRAKL_TYPES: dict[str, tuple[str, ...]] = {
    "IDENTIFICATION": ("hw-ind-proof-identity-front", "hw-ind-proof-identity-back"),
    "ADDRESS": ("hw-ind-proof-address",),
    "BUSINESS": ("hw-prof-proof-business-front",),
    "AUTHORIZATION": ("hw-bsh-letter-authorization",),
}


def invalid_documents(user: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The ``documents[]`` of a Hyperwallet user notification whose status is INVALID."""
    docs = user.get("documents") or []
    return [
        d for d in docs if isinstance(d, Mapping) and str(d.get("status") or "").upper() == INVALID
    ]


def documents_to_delete(
    invalid: Iterable[Mapping[str, Any]], mirakl_documents: Iterable[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """The Mirakl documents standing for an INVALID Hyperwallet document, not re-uploaded since."""
    mirakl_documents = list(mirakl_documents)
    chosen: dict[Any, Mapping[str, Any]] = {}
    for document in invalid:
        types = MIRAKL_TYPES.get(str(document.get("category") or "").upper(), ())
        rejected_at = _instant(document.get("createdOn"))
        if not types or rejected_at is None:
            continue
        for candidate in mirakl_documents:
            if candidate.get("type") not in types or candidate.get("date_deleted"):
                continue
            uploaded = _instant(candidate.get("date_uploaded"))
            if uploaded is not None and uploaded <= rejected_at:
                chosen[candidate.get("id")] = candidate
    return list(chosen.values())


def _instant(value: Any) -> datetime | None:
    """An ISO date-time; Hyperwallet's carry no zone and are UTC (Hyperwallet Java SDK's date
    format ``yyyy-MM-dd'T'HH:mm:ss``)."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
