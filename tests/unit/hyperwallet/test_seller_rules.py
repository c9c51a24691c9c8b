"""Which shops go to Hyperwallet, and the user body of a shop."""

from __future__ import annotations

import pytest

from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.hyperwallet.programs import HyperwalletSettings
from mirakl_connector.hyperwallet.sellers import eligibility, item_type, user_body

SETTINGS = HyperwalletSettings.from_config(
    {
        "hyperwallet": {
            "programs": [
                {"name": "DEFAULT", "user_token": "prg-users", "payment_token": "prg-pay"},
                {"name": "OTHER", "ignored": True},
            ]
        }
    }
)


def shop(*fields, **top):
    base = {
        "shop_id": 2001,
        "shop_name": "My shop",
        "shop_state": "OPEN",
        "is_professional": False,
        "contact_informations": {
            "firstname": "Fake", "lastname": "Name", "email": "fake@example.com",
            "street1": "30 King Street", "city": "Valencia", "zip_code": "46001",
            "country": "ESP", "phone": "+34 600", "phone_secondary": None,
        },
        "default_billing_information": {
            "corporate_information": {"company_registration_name": "My Shop SL",
                                      "company_registration_number": "B123"},
            "default_language": "es",
        },
        "shop_additional_fields": [{"code": c, "value": v} for c, v in fields],
    }  # fmt: skip
    base.update(top)
    return base


CONSENT = ("hw-terms-consent", "true")
PROGRAM = ("hw-program", "DEFAULT")


@pytest.mark.parametrize(
    ("candidate", "status"),
    [
        (shop(PROGRAM, CONSENT, shop_state="TERMINATED"), "SKIPPED_TERMINATED"),
        (shop(CONSENT), "SKIPPED_NO_PROGRAM"),
        (shop(("hw-program", "OTHER"), CONSENT), "SKIPPED_IGNORED_PROGRAM"),
        (shop(PROGRAM), "SKIPPED_NO_CONSENT"),
        (shop(PROGRAM, ("hw-terms-consent", "false")), "SKIPPED_NO_CONSENT"),
    ],
)
def test_filters_skip_with_a_reason(candidate, status):
    decision = eligibility(candidate, SETTINGS)
    assert not decision.eligible and decision.status == status and decision.reason


def test_consent_or_an_existing_user_makes_a_shop_eligible():
    assert eligibility(shop(PROGRAM, CONSENT), SETTINGS).program.name == "DEFAULT"
    assert eligibility(shop(PROGRAM, ("hw-user-token", "usr-1")), SETTINGS).eligible


def test_unknown_program_is_a_failure_naming_it():
    with pytest.raises(InvalidItemError, match="'ASIA' is not a configured Hyperwallet program"):
        eligibility(shop(("hw-program", "ASIA"), CONSENT), SETTINGS)


def test_individual_user_body():
    candidate = shop(PROGRAM, CONSENT, ("hw-date-of-birth", "1990-10-10T23:30:00Z"))
    body = user_body(candidate, SETTINGS.program("DEFAULT"), time_zone="Europe/Madrid")
    assert body["clientUserId"] == "2001" and body["profileType"] == "INDIVIDUAL"
    assert body["programToken"] == "prg-users"
    assert (body["firstName"], body["lastName"], body["businessName"]) == (
        "Fake", "Name", "My shop",
    )  # fmt: skip
    assert (body["country"], body["language"], body["postalCode"]) == ("ES", "es", "46001")
    assert body["dateOfBirth"] == "1990-10-11"  # 23:30 UTC is the 11th in Madrid
    assert "mobileNumber" not in body  # None values are left out
    assert item_type(candidate) == "IndividualSeller"


def test_business_user_body_with_both_name_mappings():
    candidate = shop(PROGRAM, CONSENT, ("hw-business-type", "CORPORATION"), is_professional=True)
    legacy = user_body(candidate, SETTINGS.program("DEFAULT"), token="usr-9")
    assert (legacy["businessName"], legacy["businessOperatingName"]) == ("My shop", "My Shop SL")
    assert legacy["profileType"] == "BUSINESS" and legacy["businessType"] == "CORPORATION"
    assert legacy["businessRegistrationId"] == "B123" and legacy["token"] == "usr-9"
    assert "firstName" not in legacy
    new = user_body(candidate, SETTINGS.program("DEFAULT"), new_user_mapping=True)
    assert (new["businessName"], new["businessOperatingName"]) == ("My Shop SL", "My shop")
    assert item_type(candidate) == "ProfessionalSeller"


def test_bad_contact_country_is_invalid():
    candidate = shop(PROGRAM, CONSENT)
    candidate["contact_informations"]["country"] = ""
    with pytest.raises(InvalidItemError, match="contact country"):
        user_body(candidate, SETTINGS.program("DEFAULT"))
