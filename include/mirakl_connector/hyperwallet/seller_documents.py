"""Which KYC documents of a seller go to Hyperwallet, and how (pure rules).

As the PayPal connector's ``DocumentsExtractJob`` does
(github.com/paypal/mirakl-hyperwallet-connector):
a shop is a candidate when ``hw-kyc-req-proof-identity-business`` is true (Hyperwallet asked for
documents) and it has a ``hw-user-token``. The seller chooses the document types in shop fields
and uploads the files as Mirakl shop documents of fixed types:

* individual: ``hw-ind-proof-identity-type`` (GOVERNMENT_ID, DRIVERS_LICENSE, PASSPORT) with
  ``hw-ind-proof-identity-country``, files ``hw-ind-proof-identity-front`` (+ ``-back`` unless
  PASSPORT); ``hw-ind-proof-address-type`` with the file ``hw-ind-proof-address``;
* professional: ``hw-prof-proof-business-type`` (INCORPORATION, BUSINESS_REGISTRATION,
  OPERATING_AGREEMENT) with the file ``hw-prof-proof-business-front``.

Business stakeholders (the incumbent's ``BusinessStakeholdersDocumentsExtract``): stakeholder n
whose ``hw-stakeholder-req-proof-identity-<n>`` is true sends ``hw-stakeholder-proof-identity-
type-<n>`` (one of the identity types) with ``-ctry-<n>``, files ``hw-bsh<n>-proof-identity-front``
(+ ``-back`` unless PASSPORT), to its ``hw-stakeholder-token-<n>``; the shop waits while any
flagged stakeholder has no type chosen (the incumbent's rule).

Each becomes a Hyperwallet verification document ``{category, type, country}`` whose files are
the parts ``<type>_front`` / ``<type>_back``. A selection outside these values fails the shop
with the reason (the incumbent skipped it silently); a selection not made yet, or a file not
uploaded yet, skips it (the incumbent's rule: the seller is not done).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.hyperwallet.countries import to_alpha2
from mirakl_connector.hyperwallet.sellers import bool_field, is_professional, text_field

REQUEST_FLAG = "hw-kyc-req-proof-identity-business"
IDENTITY_TYPES = ("GOVERNMENT_ID", "DRIVERS_LICENSE", "PASSPORT")
ADDRESS_TYPES = ("PASSPORT", "BANK_STATEMENT", "CREDIT_CARD_STATEMENT",
                 "OFFICIAL_GOVERNMENT_LETTER", "PROPERTY_TAX_ASSESSMENT", "TAX_RETURN",
                 "UTILITY_BILL")  # fmt: skip
BUSINESS_TYPES = ("INCORPORATION", "BUSINESS_REGISTRATION", "OPERATING_AGREEMENT")


@dataclass(frozen=True)
class PlannedDocument:
    """One Hyperwallet verification document and the Mirakl files of its sides."""

    category: str
    type: str
    country: str | None
    #: Hyperwallet file part name → Mirakl document type
    files: dict[str, str]

    @property
    def body(self) -> dict[str, Any]:
        body = {"category": self.category, "type": self.type, "country": self.country}
        return {k: v for k, v in body.items() if v is not None}


def document_plan(shop: Mapping[str, Any]) -> list[PlannedDocument] | str:
    """The documents to send, or why the seller is not ready (a selection missing)."""
    if is_professional(shop):
        kind = _choice(shop, "hw-prof-proof-business-type", BUSINESS_TYPES)
        if kind is None:
            return "no proof of business type chosen (hw-prof-proof-business-type)"
        return [_doc("BUSINESS", kind, None, front="hw-prof-proof-business-front")]
    identity = _choice(shop, "hw-ind-proof-identity-type", IDENTITY_TYPES)
    address = _choice(shop, "hw-ind-proof-address-type", ADDRESS_TYPES)
    if identity is None or address is None:
        return "no proof of identity or address type chosen (hw-ind-proof-*-type)"
    raw_country = text_field(shop, "hw-ind-proof-identity-country")
    country = to_alpha2(raw_country) if raw_country else None
    if country is None:
        raise InvalidItemError(
            f"hw-ind-proof-identity-country {raw_country!r} is not a valid ISO country code"
        )
    back = None if identity == "PASSPORT" else "hw-ind-proof-identity-back"
    return [
        _doc("IDENTIFICATION", identity, country, front="hw-ind-proof-identity-front", back=back),
        _doc("ADDRESS", address, None, front="hw-ind-proof-address"),
    ]


STAKEHOLDER_FLAG = "hw-stakeholder-req-proof-identity-{n}"


@dataclass(frozen=True)
class StakeholderDocument:
    """The identity document of business stakeholder ``n`` (token ``token``)."""

    n: int
    token: str
    document: PlannedDocument

    @property
    def flag(self) -> str:
        return STAKEHOLDER_FLAG.format(n=self.n)


def stakeholder_plan(
    shop: Mapping[str, Any], max_stakeholders: int = 5
) -> list[StakeholderDocument] | str:
    """The flagged stakeholders' documents, or why the shop must wait (a type not chosen)."""
    plans = []
    for n in range(1, max_stakeholders + 1):
        if not bool_field(shop, STAKEHOLDER_FLAG.format(n=n)):
            continue
        token = text_field(shop, f"hw-stakeholder-token-{n}")
        kind = _choice(shop, f"hw-stakeholder-proof-identity-type-{n}", IDENTITY_TYPES)
        if kind is None or token is None:
            what = "no proof of identity type chosen" if kind is None else "no token yet"
            return f"stakeholder {n}: {what}"
        raw_country = text_field(shop, f"hw-stakeholder-proof-identity-ctry-{n}")
        country = to_alpha2(raw_country) if raw_country else None
        if country is None:
            raise InvalidItemError(
                f"hw-stakeholder-proof-identity-ctry-{n} {raw_country!r} is not a valid ISO "
                "country code"
            )
        back = None if kind == "PASSPORT" else f"hw-bsh{n}-proof-identity-back"
        document = _doc(
            "IDENTIFICATION", kind, country, front=f"hw-bsh{n}-proof-identity-front", back=back
        )
        plans.append(StakeholderDocument(n, token, document))
    return plans


def latest_by_type(documents: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The newest Mirakl shop document (S30) of each type (a re-upload replaces the old one)."""
    latest: dict[str, Mapping[str, Any]] = {}
    for document in documents:
        kind = document.get("type")
        if not isinstance(kind, str) or document.get("date_deleted"):
            continue
        known = latest.get(kind)
        if known is None or str(document.get("date_uploaded") or "") >= str(
            known.get("date_uploaded") or ""
        ):
            latest[kind] = document
    return latest


def _doc(
    category: str, kind: str, country: str | None, *, front: str, back: str | None = None
) -> PlannedDocument:
    files = {f"{kind.lower()}_front": front}
    if back:
        files[f"{kind.lower()}_back"] = back
    return PlannedDocument(category, kind, country, files)


def _choice(shop: Mapping[str, Any], code: str, allowed: tuple[str, ...]) -> str | None:
    value = text_field(shop, code)
    if value is None:
        return None
    if value.upper() not in allowed:
        raise InvalidItemError(f"{code} {value!r} is not one of {', '.join(allowed)}")
    return value.upper()
