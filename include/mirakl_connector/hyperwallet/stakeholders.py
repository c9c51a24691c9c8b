"""A professional shop's business stakeholders as Hyperwallet bodies (pure rules).

The PayPal connector (github.com/paypal/mirakl-hyperwallet-connector,
``BusinessStakeholdersExtractBatchJob``) reads up to five
stakeholders from the shop's additional fields ``hw-stakeholder-<attr>-<n>`` (n = 1..5) and sends
each non-empty block as ``POST /users/{u}/business-stakeholders`` (no token yet) or
``PUT /users/{u}/business-stakeholders/{stk}`` (token in ``hw-stakeholder-token-<n>``), with
``profileType=INDIVIDUAL``.

Stricter than the incumbent, which silently dropped what it could not read: a field named
``hw-stakeholder-…`` that is not one of the documented attributes, an index outside 1..5, a role
that is not a boolean, a gender or id type outside Hyperwallet's enums, a date that is not a date
or a country that is not an ISO code makes the *shop* fail with that reason before anything is
sent (the batch goes on).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.hyperwallet.countries import to_alpha2

MAX_STAKEHOLDERS = 5
TOKEN_FIELD = "hw-stakeholder-token-{n}"
_FIELD = re.compile(r"^hw-stakeholder-(?P<attr>[a-z0-9-]+?)-(?P<n>\d+)$")

#: ``hw-stakeholder-<attr>-<n>`` → (Hyperwallet body key, kind); the PayPal connector's stakeholder
#: body
#: renames (``government-id-num`` → ``governmentId``, ``nationality`` → ``countryOfNationality``…).
ATTRIBUTES: dict[str, tuple[str, str]] = {
    "business-contact": ("isBusinessContact", "bool"),
    "director": ("isDirector", "bool"),
    "ubo": ("isUltimateBeneficialOwner", "bool"),
    "smo": ("isSeniorManagingOfficial", "bool"),
    "first-name": ("firstName", "text"),
    "middle-name": ("middleName", "text"),
    "last-name": ("lastName", "text"),
    "dob": ("dateOfBirth", "date"),
    "country-of-birth": ("countryOfBirth", "country"),
    "nationality": ("countryOfNationality", "country"),
    "gender": ("gender", "gender"),
    "phone-number": ("phoneNumber", "text"),
    "mobile-number": ("mobileNumber", "text"),
    "email": ("email", "text"),
    "address-line1": ("addressLine1", "text"),
    "address-line2": ("addressLine2", "text"),
    "city": ("city", "text"),
    "state": ("stateProvince", "text"),
    "post-code": ("postalCode", "text"),
    "country": ("country", "country"),
    "government-id-type": ("governmentIdType", "id_type"),
    "government-id-num": ("governmentId", "text"),
    "government-id-count": ("governmentIdCountry", "country"),
    "drivers-license-num": ("driversLicenseId", "text"),
    "drivers-license-cnt": ("driversLicenseCountry", "country"),
}
#: Documented stakeholder fields that are not part of the body (token, document selection).
NOT_IN_BODY = frozenset(
    {"token", "req-proof-identity", "proof-identity-type", "proof-identity-ctry"}
)
#: Hyperwallet's enums as the connector sends them (the PayPal connector's mapping: gender
#: MALE/FEMALE,
#: governmentIdType PASSPORT/NATIONAL_ID_CARD).
GENDERS = frozenset({"MALE", "FEMALE"})
ID_TYPES = frozenset({"PASSPORT", "NATIONAL_ID_CARD"})


@dataclass(frozen=True)
class Stakeholder:
    """Stakeholder ``n`` of a shop: its token in Mirakl (if any) and its Hyperwallet body."""

    n: int
    token: str | None
    body: dict[str, Any]

    @property
    def token_field(self) -> str:
        return TOKEN_FIELD.format(n=self.n)


def stakeholders_of(shop: Mapping[str, Any], *, time_zone: str = "UTC") -> list[Stakeholder]:
    """The shop's non-empty stakeholder blocks, in index order; raises on bad data."""
    blocks: dict[int, dict[str, Any]] = {}
    tokens: dict[int, str] = {}
    for item in shop.get("shop_additional_fields") or []:
        code = item.get("code") if isinstance(item, Mapping) else None
        if not isinstance(code, str) or not code.startswith("hw-stakeholder-"):
            continue
        match = _FIELD.match(code)
        if match is None:
            raise InvalidItemError(f"{code} is not a stakeholder field (hw-stakeholder-<attr>-<n>)")
        attr, n = match["attr"], int(match["n"])
        if not 1 <= n <= MAX_STAKEHOLDERS:
            raise InvalidItemError(f"{code}: stakeholder index {n} is not 1..{MAX_STAKEHOLDERS}")
        if attr not in ATTRIBUTES and attr not in NOT_IN_BODY:
            raise InvalidItemError(f"{code}: unknown stakeholder attribute {attr!r}")
        value = item.get("value")
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if attr == "token":
            tokens[n] = str(value).strip()
            continue
        if attr in NOT_IN_BODY:
            continue
        key, kind = ATTRIBUTES[attr]
        blocks.setdefault(n, {})[key] = _convert(code, kind, value, time_zone)
    result = []
    for n in sorted(set(blocks) | set(tokens)):
        body = blocks.get(n, {})
        if not body:
            continue  # the incumbent ignores an empty block, even with a stale token
        result.append(Stakeholder(n, tokens.get(n), {"profileType": "INDIVIDUAL", **body}))
    return result


def find_existing(
    stakeholder: Stakeholder, existing: Iterable[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """The stakeholder Hyperwallet already has for this block, if any.

    The incumbent matches by e-mail (the PayPal connector's
    ``BusinessStakeholdersExtractBatchJob``). A block without e-mail would then be created
    again after a crash between ``POST`` and the token write-back; here it is matched by first
    name, last name and date of birth instead (all three required to match).
    """
    body = stakeholder.body
    email = str(body.get("email") or "").strip().lower()
    for other in existing:
        if email:
            if str(other.get("email") or "").strip().lower() == email:
                return other
            continue
        keys = ("firstName", "lastName", "dateOfBirth")
        if all(body.get(k) for k in keys[:2]) and all(
            str(other.get(k) or "").strip().lower() == str(body.get(k) or "").strip().lower()
            for k in keys
        ):
            return other
    return None


def _convert(code: str, kind: str, value: Any, time_zone: str) -> Any:
    text = str(value).strip()
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if text.lower() not in ("true", "false"):
            raise InvalidItemError(f"{code} {value!r} is not true or false")
        return text.lower() == "true"
    if kind == "country":
        country = to_alpha2(text)
        if country is None:
            raise InvalidItemError(f"{code} {value!r} is not a valid ISO country code")
        return country
    if kind == "gender":
        if text.upper() not in GENDERS:
            raise InvalidItemError(f"{code} {value!r} is not one of {', '.join(sorted(GENDERS))}")
        return text.upper()
    if kind == "id_type":
        if text.upper() not in ID_TYPES:
            raise InvalidItemError(f"{code} {value!r} is not one of {', '.join(sorted(ID_TYPES))}")
        return text.upper()
    if kind == "date":
        try:
            instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidItemError(f"{code} {value!r} is not a date") from None
        if instant.tzinfo is None:
            return instant.date().isoformat()
        return instant.astimezone(ZoneInfo(time_zone)).date().isoformat()
    return text
