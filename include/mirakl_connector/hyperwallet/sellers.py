"""Which Mirakl shops go to Hyperwallet, and a shop as a Hyperwallet user (pure rules).

Every shop read from Mirakl passes the same filters before anything is sent (first match wins):

1. ``shop_state`` TERMINATED → skipped;
2. no ``hw-program`` → skipped (the operator has not assigned the shop yet);
3. a ``hw-program`` that is not configured → a *failure* naming the program (the incumbent
   crashed the whole run on it; here only that shop fails, and it is retried once the
   configuration is fixed);
4. an ignored program → skipped;
5. no Hyperwallet terms consent (``hw-terms-consent`` true) and no user yet → skipped.

The user body follows the incumbent's mapping: ``clientUserId`` is the shop id, names and address
come from the shop's contact, the program's *users* token goes in ``programToken``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.hyperwallet.countries import to_alpha2
from mirakl_connector.hyperwallet.programs import HyperwalletSettings, Program

PROGRAM_FIELD = "hw-program"
TERMS_FIELD = "hw-terms-consent"
USER_TOKEN_FIELD = "hw-user-token"
BANK_ACCOUNT_TOKEN_FIELD = "hw-bankaccount-token"

SKIPPED_TERMINATED = "SKIPPED_TERMINATED"
SKIPPED_NO_PROGRAM = "SKIPPED_NO_PROGRAM"
SKIPPED_IGNORED_PROGRAM = "SKIPPED_IGNORED_PROGRAM"
SKIPPED_NO_CONSENT = "SKIPPED_NO_CONSENT"

#: Languages Hyperwallet accepts for a user; anything else becomes ``en``.
LANGUAGES = frozenset(
    "en bg zh hr cs nl fr de el hu is id in it ja ko lv mk ms mn pl pt ro ru sk sl es sv th tr "
    "uk vi".split()
)


def shop_id_of(shop: object) -> str:
    """The shop id as a string; :class:`InvalidItemError` when it has none we can use."""
    raw = shop.get("shop_id") if isinstance(shop, Mapping) else None
    if isinstance(raw, bool) or raw is None or not str(raw).strip():
        raise InvalidItemError(f"shop_id is missing: {raw!r}")
    return str(raw).strip()


def additional_field(shop: Mapping[str, Any], code: str) -> Any:
    """The value of the shop's additional field ``code`` (``None`` when absent)."""
    for item in shop.get("shop_additional_fields") or []:
        if isinstance(item, Mapping) and item.get("code") == code:
            return item.get("value")
    return None


def text_field(shop: Mapping[str, Any], code: str) -> str | None:
    value = additional_field(shop, code)
    text = str(value).strip() if value is not None else ""
    return text or None


def bool_field(shop: Mapping[str, Any], code: str) -> bool:
    value = additional_field(shop, code)
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() == "true" if value is not None else False


def is_professional(shop: Mapping[str, Any]) -> bool:
    value = shop.get("is_professional")
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def item_type(shop: Mapping[str, Any]) -> str:
    """The incumbent's item type name, kept in the batch log lines."""
    return "ProfessionalSeller" if is_professional(shop) else "IndividualSeller"


@dataclass(frozen=True)
class Eligibility:
    """Whether a shop goes to Hyperwallet: its program, or the status and reason to skip it."""

    program: Program | None
    status: str | None = None
    reason: str | None = None
    failed: bool = False

    @property
    def eligible(self) -> bool:
        return self.program is not None and self.status is None


def eligibility(
    shop: Mapping[str, Any], settings: HyperwalletSettings, *, require_consent: bool = True
) -> Eligibility:
    """Apply the filters of the module docstring to one shop."""
    if str(shop.get("shop_state") or "").upper() == "TERMINATED":
        return Eligibility(None, SKIPPED_TERMINATED, "shop is terminated")
    name = text_field(shop, PROGRAM_FIELD)
    if name is None:
        return Eligibility(None, SKIPPED_NO_PROGRAM, f"no {PROGRAM_FIELD} set")
    program = settings.program(name)
    if program is None:
        known = ", ".join(settings.names)
        raise InvalidItemError(
            f"{PROGRAM_FIELD} {name!r} is not a configured Hyperwallet program (known: {known})"
        )
    if program.ignored:
        return Eligibility(None, SKIPPED_IGNORED_PROGRAM, f"program {name} is ignored")
    if (
        require_consent
        and not bool_field(shop, TERMS_FIELD)
        and not text_field(shop, USER_TOKEN_FIELD)
    ):
        return Eligibility(
            None,
            SKIPPED_NO_CONSENT,
            f"seller has not accepted the Hyperwallet terms ({TERMS_FIELD})",
        )
    return Eligibility(program)


def user_body(
    shop: Mapping[str, Any],
    program: Program,
    *,
    new_user_mapping: bool = False,
    time_zone: str = "UTC",
    token: str | None = None,
) -> dict[str, Any]:
    """The Hyperwallet ``POST /users`` / ``PUT /users/{token}`` body of a shop.

    :param new_user_mapping: for businesses, ``businessName`` is the registered company name
        and ``businessOperatingName`` the shop name (the incumbent's recommended mapping for new
        installations); off, the other way round. Changing it re-names onboarded businesses.
    :param time_zone: the Mirakl operator time zone, to read DATE fields (date of birth).
    :raises InvalidItemError: blank or unknown contact country.
    """
    contact = shop.get("contact_informations") or {}
    billing = shop.get("default_billing_information") or {}
    corporate = billing.get("corporate_information") or {}
    professional = is_professional(shop)
    raw_country = contact.get("country")
    country = to_alpha2(raw_country)
    if country is None:
        raise InvalidItemError(f"contact country {raw_country!r} is not a valid ISO country code")
    language = str(billing.get("default_language") or "en").strip().lower()[:2]
    body: dict[str, Any] = {
        "clientUserId": shop_id_of(shop),
        "profileType": "BUSINESS" if professional else "INDIVIDUAL",
        "businessType": text_field(shop, "hw-business-type"),
        "email": _text(contact.get("email")),
        "addressLine1": _text(contact.get("street1")),
        "addressLine2": _text(contact.get("street2")),
        "city": _text(contact.get("city")),
        "stateProvince": _text(contact.get("state")),
        "postalCode": _text(contact.get("zip_code")),
        "country": country,
        "language": language if language in LANGUAGES else "en",
        "programToken": program.user_token,
    }
    shop_name = _text(shop.get("shop_name"))
    if professional:
        company = _text(corporate.get("company_registration_name"))
        legal, operating = (company, shop_name) if new_user_mapping else (shop_name, company)
        body.update(
            businessName=legal,
            businessOperatingName=operating,
            businessRegistrationId=_text(corporate.get("company_registration_number")),
            businessRegistrationCountry=text_field(shop, "hw-business-reg-country"),
            businessRegistrationStateProvince=text_field(shop, "hw-business-reg-state-province"),
        )
    else:
        body.update(
            businessName=shop_name,
            firstName=_text(contact.get("firstname")),
            lastName=_text(contact.get("lastname")),
            dateOfBirth=_date(additional_field(shop, "hw-date-of-birth"), time_zone),
            countryOfBirth=text_field(shop, "hw-country-of-birth"),
            countryOfNationality=text_field(shop, "hw-country-of-nationality"),
            phoneNumber=_text(contact.get("phone")),
            mobileNumber=_text(contact.get("phone_secondary")),
            governmentId=text_field(shop, "hw-government-id"),
            governmentIdType=text_field(shop, "hw-government-id-type"),
            passportId=text_field(shop, "hw-passport-id"),
            driversLicenseId=text_field(shop, "hw-drivers-license-id"),
        )
    if token:
        body["token"] = token
    return {k: v for k, v in body.items() if v is not None}


def _date(value: Any, time_zone: str) -> str | None:
    """A Mirakl DATE field (an instant) as ``yyyy-MM-dd`` in the operator's time zone."""
    if value in (None, ""):
        return None
    try:
        instant = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidItemError(f"hw-date-of-birth {value!r} is not a date") from None
    if instant.tzinfo is None:
        return instant.date().isoformat()
    return instant.astimezone(ZoneInfo(time_zone)).date().isoformat()


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None
