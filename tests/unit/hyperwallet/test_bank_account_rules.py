"""Bank-account rules: Mirakl payment_info → Hyperwallet body, country, matching, masking."""

from __future__ import annotations

import pytest

from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.hyperwallet.bank_accounts import (
    bank_account_body,
    contact_country,
    is_compatible,
    is_same_account,
    mask,
    match_bank_account,
    parse_bank_account,
    validate_iban,
)
from mirakl_connector.hyperwallet.currency_selection import BankAccountType

ES_IBAN = "ES3920956580417064096726"
ES_IBAN_2 = "ES9121000418450200051332"
IT_IBAN = "IT60X0542811101000000123456"
GB_IBAN = "GB29NWBK60161331926819"


def shop(payment_info, *, professional=False, **extra):
    return {
        "shop_id": 2001,
        "shop_name": "Ben Store",
        "is_professional": professional,
        "currency_iso_code": "EUR",
        "contact_informations": {
            "firstname": "Fake", "lastname": "Name", "street1": "30 King Street",
            "street2": None, "city": "Valencia", "country": "ESP",
        },
        "payment_info": payment_info,
        "shop_additional_fields": [{"code": "hw-bankaccount-state", "value": "NY"}],
        **extra,
    }  # fmt: skip


IBAN_INFO = {"@type": "IBAN", "bank_city": "Barcelona", "bic": "CAIXESBBXXX", "iban": ES_IBAN}
ABA_INFO = {"@type": "ABA", "bank_city": "New York", "bank_zip": "10036",
            "bank_account_number": "000123456789", "routing_number": "021000021"}  # fmt: skip
CA_INFO = {"@type": "CANADIAN", "bank_city": "Toronto", "bank_account_number": "1234567",
           "institution_number": "003", "transit_number": "00012"}  # fmt: skip
UK_INFO = {"@type": "UK", "bank_city": "London", "bank_account_number": "31926819",
           "bank_sort_code": "601613"}  # fmt: skip


def test_iban_account_country_is_the_iban_prefix_and_body_carries_bic():
    account = parse_bank_account(shop(IBAN_INFO))
    assert (account.type, account.country, account.bank_id) == ("IBAN", "ES", "CAIXESBBXXX")
    body = bank_account_body(shop(IBAN_INFO), account, currency="EUR", user_token="usr-1")
    assert body == {
        "type": "BANK_ACCOUNT", "profileType": "INDIVIDUAL", "transferMethodCountry": "ES",
        "transferMethodCurrency": "EUR", "bankAccountId": ES_IBAN, "bankId": "CAIXESBBXXX",
        "firstName": "Fake", "lastName": "Name", "country": "ES",
        "addressLine1": "30 King Street", "addressLine2": "", "city": "Barcelona",
        "userToken": "usr-1",
    }  # fmt: skip


def test_gb_iban_is_an_iban_account_in_gb():
    account = parse_bank_account(shop({**IBAN_INFO, "iban": GB_IBAN.lower()}))
    assert (account.type, account.country, account.bank_account_id) == ("IBAN", "GB", GB_IBAN)


def test_aba_account_is_us_with_routing_purpose_zip_and_state():
    account = parse_bank_account(shop(ABA_INFO, professional=True))
    body = bank_account_body(
        shop(ABA_INFO, professional=True),
        account,
        currency="USD",
        user_token="usr-1",
        token="trm-1",
    )
    assert body["transferMethodCountry"] == "US"
    assert (body["branchId"], body["bankAccountId"]) == ("021000021", "000123456789")
    assert (body["bankAccountPurpose"], body["postalCode"], body["stateProvince"]) == (
        "CHECKING", "10036", "NY",
    )  # fmt: skip
    assert body["profileType"] == "BUSINESS" and body["businessName"] == "Ben Store"
    assert "firstName" not in body and body["token"] == "trm-1"


def test_canadian_account_maps_institution_to_bank_id_and_transit_to_branch_id():
    account = parse_bank_account(shop(CA_INFO))
    body = bank_account_body(shop(CA_INFO), account, currency="CAD", user_token="usr-1")
    assert (body["transferMethodCountry"], body["bankId"], body["branchId"]) == (
        "CA", "003", "00012",
    )  # fmt: skip
    assert "postalCode" not in body and "stateProvince" not in body


def test_uk_account_maps_sort_code_to_bank_id_and_number_to_account_id():
    account = parse_bank_account(shop(UK_INFO))
    body = bank_account_body(shop(UK_INFO), account, currency="GBP", user_token="usr-1")
    assert (body["transferMethodCountry"], body["bankId"], body["bankAccountId"]) == (
        "GB", "601613", "31926819",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("iban", "reason"),
    [
        ("E", "too short"),
        ("XX3920956580417064096726", "unknown country code 'XX'"),
        ("ES39209565804170640967", "wrong check digits"),
        ("ES39-2095-6580", "malformed"),
    ],
)
def test_bad_iban_fails_the_shop_with_a_masked_reason(iban, reason):
    with pytest.raises(InvalidItemError) as caught:
        parse_bank_account(shop({**IBAN_INFO, "iban": iban}))
    assert reason in caught.value.reason
    if len(iban) > 8:
        assert iban not in str(caught.value)


def test_no_payment_info_or_number_means_no_account():
    assert parse_bank_account(shop(None)) is None
    assert parse_bank_account(shop({**IBAN_INFO, "iban": "  "})) is None


def test_unsupported_type_and_missing_codes_are_invalid():
    with pytest.raises(InvalidItemError, match="'CHECK' is not supported"):
        parse_bank_account(shop({"@type": "CHECK", "bank_account_number": "1"}))
    with pytest.raises(InvalidItemError, match="without transit_number"):
        parse_bank_account(shop({**CA_INFO, "transit_number": ""}))


def test_contact_country_iso3_to_iso2_and_unknown_refused():
    assert contact_country(shop(IBAN_INFO)) == "ES"
    bad = shop(IBAN_INFO)
    bad["contact_informations"]["country"] = "XYZ"
    with pytest.raises(InvalidItemError, match="'XYZ' is not a valid ISO country"):
        contact_country(bad)


def test_mask_keeps_the_last_four_characters_only():
    assert mask(ES_IBAN) == "****6726"
    assert "20956580" not in repr(parse_bank_account(shop(IBAN_INFO)))  # repr masks the number
    assert validate_iban("es39 2095 6580 4170 6409 6726") == ES_IBAN


def hw_account(token, country, currency, number, type_="BANK_ACCOUNT", **fields):
    return {"token": token, "type": type_, "transferMethodCountry": country,
            "transferMethodCurrency": currency, "bankAccountId": mask(number),
            "status": "ACTIVATED", **fields}  # fmt: skip


def test_compatible_means_same_type_and_country():
    es = parse_bank_account(shop(IBAN_INFO))
    assert is_compatible(hw_account("trm-1", "ES", "EUR", ES_IBAN_2, bankId="X"), es)
    assert not is_compatible(hw_account("trm-1", "IT", "EUR", IT_IBAN), es)
    assert not is_compatible(hw_account("trm-1", "US", "USD", "000123456789"), es)
    uk = parse_bank_account(shop(UK_INFO))
    # GB GBP is a UK account, GB EUR an IBAN account: same country, different type
    assert is_compatible(hw_account("trm-2", "GB", "GBP", "31926819", bankId="601613"), uk)
    assert not is_compatible(hw_account("trm-2", "GB", "EUR", GB_IBAN), uk)


def test_same_account_compares_last_four_digits_and_bank_codes():
    es = parse_bank_account(shop(IBAN_INFO))
    same = hw_account("trm-1", "ES", "EUR", ES_IBAN, bankId="CAIXESBBXXX")
    assert is_same_account(same, es, "EUR")
    assert not is_same_account(same, es, "USD")
    assert not is_same_account({**same, "bankId": "OTHERBIC"}, es, "EUR")
    aba = parse_bank_account(shop(ABA_INFO))
    hw_aba = hw_account("trm-3", "US", "USD", "000123456789", branchId="021000021",
                        bankAccountPurpose="CHECKING")  # fmt: skip
    assert is_same_account(hw_aba, aba, "USD")
    assert not is_same_account({**hw_aba, "bankAccountPurpose": "SAVINGS"}, aba, "USD")


def test_match_prefers_mirakl_token_then_same_account_then_compatible():
    es = parse_bank_account(shop(IBAN_INFO))
    other_es = hw_account("trm-other", "ES", "EUR", ES_IBAN_2, bankId="X")
    same = hw_account("trm-same", "ES", "EUR", ES_IBAN, bankId="CAIXESBBXXX")
    accounts = [other_es, same]
    assert match_bank_account(accounts, es, currency="EUR", mirakl_token="trm-other") is other_es
    assert match_bank_account(accounts, es, currency="EUR", mirakl_token=None) is same
    assert match_bank_account([other_es], es, currency="EUR", mirakl_token=None) is other_es
    deactivated = {**same, "status": "DE_ACTIVATED"}
    assert match_bank_account([deactivated], es, currency="EUR", mirakl_token="trm-same") is None


def test_seed_examples_aba_to_iban_and_italian_to_spanish_iban_are_new_accounts():
    """Hyperwallet cannot change an account's country or type: no match → a new account."""
    es = parse_bank_account(shop(IBAN_INFO))
    us_aba = hw_account("trm-aba", "US", "USD", "000123456789", branchId="021000021")
    italian = hw_account("trm-it", "IT", "EUR", IT_IBAN, bankId="BPMOIT22")
    assert match_bank_account([us_aba], es, currency="EUR", mirakl_token="trm-aba") is None
    assert match_bank_account([italian], es, currency="EUR", mirakl_token="trm-it") is None
    # a new IBAN in the same country updates the existing account in place
    old_es = hw_account("trm-es", "ES", "EUR", ES_IBAN_2, bankId="BBVAESMMXXX")
    assert match_bank_account([old_es], es, currency="EUR", mirakl_token="trm-es") is old_es


def test_type_enum_values_are_mirakl_names():
    assert [t.value for t in BankAccountType] == ["IBAN", "ABA", "CANADIAN", "UK"]
