"""Pure rules of issue 16 pts 1-2: stakeholder blocks, INVALID documents, document selection."""

from __future__ import annotations

import pytest

from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.hyperwallet.kyc_documents import documents_to_delete, invalid_documents
from mirakl_connector.hyperwallet.seller_documents import (
    document_plan,
    latest_by_type,
    stakeholder_plan,
)
from mirakl_connector.hyperwallet.stakeholders import Stakeholder, find_existing, stakeholders_of


def shop(professional: bool = True, **fields):
    return {
        "shop_id": 1,
        "is_professional": professional,
        "shop_additional_fields": [{"code": c, "value": v} for c, v in fields.items()],
    }


def test_blocks_in_index_order_with_tokens_and_converted_values():
    result = stakeholders_of(
        shop(
            **{
                "hw-stakeholder-first-name-2": "B",
                "hw-stakeholder-token-2": "stk-2",
                "hw-stakeholder-first-name-1": "A",
                "hw-stakeholder-ubo-1": "TRUE",
                "hw-stakeholder-dob-1": "1990-10-10T23:30:00Z",
                "hw-stakeholder-req-proof-identity-1": "true",
                "hw-stakeholder-token-3": "stk-stale",
            }
        ),  # fmt: skip
        time_zone="Europe/Paris",
    )
    assert [(s.n, s.token) for s in result] == [(1, None), (2, "stk-2")]  # block 3 is empty
    assert result[0].body == {
        "profileType": "INDIVIDUAL",
        "firstName": "A",
        "isUltimateBeneficialOwner": True,
        "dateOfBirth": "1990-10-11",
    }


@pytest.mark.parametrize(
    ("code", "value", "reason"),
    [
        ("hw-stakeholder-first-name-6", "X", "stakeholder index 6 is not 1..5"),
        ("hw-stakeholder-eye-colour-1", "blue", "unknown stakeholder attribute 'eye-colour'"),
        ("hw-stakeholder-director-1", "yes", "'yes' is not true or false"),
        ("hw-stakeholder-country-1", "XXX", "'XXX' is not a valid ISO country code"),
        ("hw-stakeholder-dob-1", "10/10/1990", "'10/10/1990' is not a date"),
        ("hw-stakeholder-first-name", "X", "is not a stakeholder field"),
    ],
)
def test_bad_stakeholder_data_is_refused_with_the_field(code, value, reason):
    with pytest.raises(InvalidItemError, match=reason):
        stakeholders_of(shop(**{code: value}))


def test_lookup_by_email_else_by_name_and_birth_date():
    existing = [
        {"token": "stk-a", "email": "A@x.com"},
        {"token": "stk-b", "firstName": "Bo", "lastName": "Li", "dateOfBirth": "1990-01-01"},
    ]
    by_mail = Stakeholder(1, None, {"email": "a@x.com", "firstName": "Bo", "lastName": "Li"})
    assert find_existing(by_mail, existing)["token"] == "stk-a"
    other_mail = Stakeholder(1, None, {"email": "z@x.com", "firstName": "Bo", "lastName": "Li",
                                       "dateOfBirth": "1990-01-01"})  # fmt: skip
    assert find_existing(other_mail, existing) is None  # an e-mail is authoritative
    by_name = Stakeholder(
        2, None, {"firstName": "bo", "lastName": "LI", "dateOfBirth": "1990-01-01"}
    )
    assert find_existing(by_name, existing)["token"] == "stk-b"
    other_birth = Stakeholder(
        2, None, {"firstName": "Bo", "lastName": "Li", "dateOfBirth": "1991-01-01"}
    )
    assert find_existing(other_birth, existing) is None


def test_invalid_documents_deleted_unless_reuploaded_and_kept_when_dates_unknown():
    user = {"documents": [
        {"category": "IDENTIFICATION", "status": "INVALID", "createdOn": "2026-11-10T10:00:00"},
        {"category": "BUSINESS", "status": "INVALID", "createdOn": None},
        {"category": "ADDRESS", "status": "VALID", "createdOn": "2026-11-10T10:00:00"},
    ]}  # fmt: skip
    mirakl = [
        {"id": 1, "type": "hw-ind-proof-identity-front", "date_uploaded": "2026-11-10T10:00:00Z"},
        {"id": 2, "type": "hw-ind-proof-identity-back", "date_uploaded": "2026-11-10T10:00:01Z"},
        {"id": 3, "type": "hw-prof-proof-business-front", "date_uploaded": "2026-01-01T00:00:00Z"},
        {"id": 4, "type": "hw-ind-proof-address", "date_uploaded": "2026-01-01T00:00:00Z"},
        {"id": 5, "type": "hw-ind-proof-identity-front", "date_uploaded": "not a date"},
    ]
    assert len(invalid_documents(user)) == 2
    assert [d["id"] for d in documents_to_delete(invalid_documents(user), mirakl)] == [1]


def test_document_plan_selection_and_newest_file():
    individual = shop(False, **{"hw-ind-proof-identity-type": "drivers_license",
                                "hw-ind-proof-identity-country": "FRA",
                                "hw-ind-proof-address-type": "TAX_RETURN"})  # fmt: skip
    plan = document_plan(individual)
    assert [(d.body, d.files) for d in plan] == [
        ({"category": "IDENTIFICATION", "type": "DRIVERS_LICENSE", "country": "FR"},
         {"drivers_license_front": "hw-ind-proof-identity-front",
          "drivers_license_back": "hw-ind-proof-identity-back"}),
        ({"category": "ADDRESS", "type": "TAX_RETURN"},
         {"tax_return_front": "hw-ind-proof-address"}),
    ]  # fmt: skip
    assert isinstance(document_plan(shop(False)), str)  # nothing chosen yet: wait
    with pytest.raises(InvalidItemError, match="hw-ind-proof-identity-country None"):
        document_plan(shop(False, **{"hw-ind-proof-identity-type": "PASSPORT",
                                     "hw-ind-proof-address-type": "TAX_RETURN"}))  # fmt: skip
    docs = [
        {"id": 1, "type": "t", "date_uploaded": "2026-01-02T00:00:00Z"},
        {"id": 2, "type": "t", "date_uploaded": "2026-01-03T00:00:00Z"},
        {"id": 3, "type": "t", "date_uploaded": "2026-01-04T00:00:00Z", "date_deleted": "x"},
    ]
    assert latest_by_type(docs)["t"]["id"] == 2
    waiting = shop(**{"hw-stakeholder-req-proof-identity-2": "true",
                      "hw-stakeholder-token-2": "stk-2"})  # fmt: skip
    assert stakeholder_plan(waiting) == "stakeholder 2: no proof of identity type chosen"
