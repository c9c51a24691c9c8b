"""Bank account extract against the sandbox: every account type, currency selection, the
"country and type never change" rule, token synchronisation, masking, and the seed's log lines."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from mirakl_connector.hyperwallet.bank_account_sync import BankAccountExtract
from mirakl_connector.hyperwallet.currency_selection import CurrencySettings
from mirakl_connector.hyperwallet.programs import HyperwalletSettings
from mirakl_connector.ledger import Ledger

ES_IBAN = "ES3920956580417064096726"
ES_IBAN_2 = "ES9121000418450200051332"
IT_IBAN = "IT60X0542811101000000123456"
IBAN = {"@type": "IBAN", "owner": "Fake", "bank_city": "Barcelona", "bic": "CAIXESBBXXX",
        "iban": ES_IBAN}  # fmt: skip
ABA = {"@type": "ABA", "owner": "Jo", "bank_city": "New York", "bank_zip": "10036",
       "bank_account_number": "000123456789", "routing_number": "021000021"}  # fmt: skip
CANADIAN = {"@type": "CANADIAN", "owner": "Jane", "bank_city": "Toronto",
            "bank_account_number": "1234567", "institution_number": "003",
            "transit_number": "00012"}  # fmt: skip
UK = {"@type": "UK", "owner": "Jo", "bank_city": "London", "bank_account_number": "31926819",
      "bank_sort_code": "601613"}  # fmt: skip
SINCE = datetime(2026, 1, 1, tzinfo=UTC)

BATCH_LOGGER = "mirakl_connector.hyperwallet.batch"


@pytest.fixture
def ledger(tmp_path):
    with Ledger(Ledger.default_sqlite_url(tmp_path)) as ledger:
        yield ledger


@pytest.fixture
def user_token(hyperwallet):
    """Create the Hyperwallet user of a shop (what the seller extract does first)."""

    def create(shop_id: int, professional: bool = False) -> str:
        body = {"clientUserId": str(shop_id), "programToken": "prg-users-eu",
                "profileType": "BUSINESS" if professional else "INDIVIDUAL",
                "businessName": f"Shop {shop_id}", "firstName": "Fake", "lastName": "Seller",
                "email": "s@example.com", "addressLine1": "30 King Street", "city": "Valencia",
                "country": "ES"}  # fmt: skip
        return hyperwallet.create_user(body)["token"]

    return create


def job(mirakl, hyperwallet, ledger, config, currency=None):
    return BankAccountExtract(
        mirakl=mirakl,
        hyperwallet=hyperwallet,
        ledger=ledger,
        settings=HyperwalletSettings.from_config(config),
        currency_settings=currency or CurrencySettings(),
    )


def accounts_of(hw_admin, user):
    return [a for a in hw_admin.bank_accounts() if a["userToken"] == user]


def shop_token(sandbox, shop_fields, shop_id):
    shop = next(s for s in sandbox.shops() if s["shop_id"] == shop_id)
    return shop_fields(shop).get("hw-bankaccount-token")


def test_every_account_type_is_created_with_its_fields_and_the_token_written_back(
    sandbox, hw_admin, mirakl, hyperwallet, ledger, connector_config, shop_factory, shop_fields,
    user_token,
):  # fmt: skip
    users = {i: user_token(i, professional=i == 2) for i in (1, 2, 3, 4)}
    sandbox.put_shops(
        [
            shop_factory(1, payment_info=IBAN, fields={"hw-user-token": users[1]}),
            shop_factory(2, payment_info=ABA, professional=True, currency="USD",
                         fields={"hw-user-token": users[2], "hw-bankaccount-state": "NY"}),
            shop_factory(3, payment_info=CANADIAN, currency="CAD",
                         fields={"hw-user-token": users[3]}),
            shop_factory(4, payment_info=UK, currency="GBP", fields={"hw-user-token": users[4]}),
        ]
    )  # fmt: skip
    summary = job(mirakl, hyperwallet, ledger, connector_config).sync()
    assert summary.counts == {"CREATED": 4}
    [iban] = accounts_of(hw_admin, users[1])
    assert (iban["transferMethodCountry"], iban["transferMethodCurrency"], iban["bankId"]) == (
        "ES", "EUR", "CAIXESBBXXX",
    )  # fmt: skip
    assert iban["bankAccountId"] == "****6726" and iban["firstName"] == "Fake"
    [aba] = accounts_of(hw_admin, users[2])
    assert (aba["transferMethodCountry"], aba["branchId"], aba["bankAccountPurpose"]) == (
        "US", "021000021", "CHECKING",
    )  # fmt: skip
    assert (aba["postalCode"], aba["stateProvince"], aba["businessName"]) == (
        "10036", "NY", "Shop 2",
    )  # fmt: skip
    [canadian] = accounts_of(hw_admin, users[3])
    assert (canadian["transferMethodCountry"], canadian["bankId"], canadian["branchId"]) == (
        "CA", "003", "00012",
    )  # fmt: skip
    [uk] = accounts_of(hw_admin, users[4])
    assert (uk["transferMethodCountry"], uk["transferMethodCurrency"], uk["bankId"]) == (
        "GB", "GBP", "601613",
    )  # fmt: skip
    for shop_id, account in ((1, iban), (2, aba), (3, canadian), (4, uk)):
        assert shop_token(sandbox, shop_fields, shop_id) == account["token"]


def test_currency_selection_on_picks_a_supported_currency_and_off_uses_the_shop_currency(
    sandbox, hw_admin, mirakl, hyperwallet, ledger, connector_config, shop_factory, user_token
):
    user = user_token(1)
    sandbox.put_shops(
        [shop_factory(1, payment_info=ABA, currency="CAD", fields={"hw-user-token": user})]
    )
    off = job(mirakl, hyperwallet, ledger, connector_config,
              CurrencySettings(automatic_currency_selection=False))  # fmt: skip
    summary = off.sync(since=SINCE)
    assert summary.counts == {"FAILED": 1}
    assert "EXTERNAL_ACCOUNT_TYPE_NOT_SUPPORTED" in summary.failed[0]["reason"]
    assert accounts_of(hw_admin, user) == []

    summary = job(mirakl, hyperwallet, ledger, connector_config).sync(since=SINCE)
    assert summary.counts == {"CREATED": 1}
    [account] = accounts_of(hw_admin, user)
    assert account["transferMethodCurrency"] == "USD"  # the shop's CAD is not possible in the US
    assert any("CAD is not supported" in reason for _status, reason in summary.reasons)


@pytest.mark.parametrize(
    ("new_info", "same_account"),
    [
        ({**IBAN, "iban": IT_IBAN}, False),  # seed: Italian → Spanish IBAN is a new account
        (ABA, False),  # seed: ABA → IBAN is a new account
        ({**IBAN, "iban": ES_IBAN_2, "bic": "BBVAESMMXXX"}, True),  # same country: updated
    ],
)
def test_country_or_type_change_creates_a_new_account_else_update_in_place(
    sandbox, hw_admin, mirakl, hyperwallet, ledger, connector_config, shop_factory, shop_fields,
    user_token, new_info, same_account,
):  # fmt: skip
    user = user_token(1)
    fields = {"hw-user-token": user}
    currency = "USD" if new_info["@type"] == "ABA" else "EUR"
    sandbox.put_shops([shop_factory(1, payment_info=new_info, currency=currency, fields=fields)])
    extract = job(mirakl, hyperwallet, ledger, connector_config)
    assert extract.sync(since=SINCE).counts == {"CREATED": 1}
    old_token = shop_token(sandbox, shop_fields, 1)

    # The seller changes the bank details to the Spanish IBAN.
    shop = next(s for s in sandbox.shops() if s["shop_id"] == 1)
    sandbox.put_shops([{**shop, "payment_info": IBAN, "currency_iso_code": "EUR"}])
    summary = extract.sync(since=SINCE)
    new_token = shop_token(sandbox, shop_fields, 1)
    accounts = accounts_of(hw_admin, user)
    if same_account:
        assert summary.counts == {"UPDATED": 1}
        assert new_token == old_token and len(accounts) == 1
        assert accounts[0]["bankAccountId"] == "****6726"
        assert accounts[0]["bankId"] == "CAIXESBBXXX"
    else:
        assert summary.counts == {"CREATED": 1}
        assert new_token != old_token and len(accounts) == 2
        [created] = [a for a in accounts if a["token"] == new_token]
        assert (created["transferMethodCountry"], created["bankAccountId"]) == ("ES", "****6726")
        assert any("is not compatible: cleared" in reason for _s, reason in summary.reasons)
        # Cleared as the incumbent does (S07 with the field and a null value), not {"code"} alone.
        writes = [
            field
            for call in sandbox.mirakl_calls("S07")
            for shop in call["body"]["shops"]
            for field in shop["shop_additional_fields"]
            if field["code"] == "hw-bankaccount-token"
        ]
        assert {"code": "hw-bankaccount-token", "value": None} in writes


def test_lost_token_is_synchronised_and_no_second_account_is_created(
    sandbox, hw_admin, mirakl, hyperwallet, ledger, connector_config, shop_factory, shop_fields,
    user_token, caplog,
):  # fmt: skip
    user = user_token(78766)
    existing = hyperwallet.create_bank_account(
        user,
        {"type": "BANK_ACCOUNT", "transferMethodCountry": "ES", "transferMethodCurrency": "EUR",
         "bankAccountId": ES_IBAN, "bankId": "CAIXESBBXXX", "profileType": "INDIVIDUAL"},
    )  # fmt: skip
    # Mirakl lost the token (a crash between the creation and the S07 write).
    sandbox.put_shops([shop_factory(78766, payment_info=IBAN, fields={"hw-user-token": user})])
    caplog.set_level(logging.INFO, logger=BATCH_LOGGER)
    summary = job(mirakl, hyperwallet, ledger, connector_config).sync(since=SINCE)
    assert summary.counts == {"UPDATED": 1}
    assert shop_token(sandbox, shop_fields, 78766) == existing["token"]
    assert len(accounts_of(hw_admin, user)) == 1
    lines = [r.getMessage() for r in caplog.records if r.name == BATCH_LOGGER]
    assert lines.index("[BATCHJOBITEM] Updating bank account token for shop [78766]") < lines.index(
        "[BATCHJOBITEM] Bank account token updated for shop [78766]"
    )


def test_bad_data_fails_that_shop_only_and_numbers_stay_masked(
    sandbox, hw_admin, mirakl, hyperwallet, ledger, connector_config, shop_factory, user_token,
    caplog,
):  # fmt: skip
    user = user_token(1)
    good = shop_factory(1, payment_info=IBAN, fields={"hw-user-token": user})
    bad_iban = shop_factory(2, payment_info={**IBAN, "iban": "ES3920956580417064096727"},
                            fields={"hw-user-token": "usr-x"})  # fmt: skip
    bad_country = shop_factory(3, payment_info=IBAN, fields={"hw-user-token": "usr-y"})
    bad_country["contact_informations"]["country"] = "ZZZ"
    no_user = shop_factory(4, payment_info=UK, currency="GBP")
    no_account = shop_factory(5, fields={"hw-user-token": "usr-z"})
    sandbox.put_shops([good, bad_iban, bad_country, no_user, no_account])
    caplog.set_level(logging.INFO)
    summary = job(mirakl, hyperwallet, ledger, connector_config).sync(since=SINCE)
    assert summary.counts == {"CREATED": 1, "FAILED": 3, "NO_BANK_ACCOUNT": 1}
    reasons = {f["id"]: f["reason"] for f in summary.failed}
    assert reasons["2"] == "invalid data: IBAN ****6727 has wrong check digits"
    assert reasons["3"] == "invalid data: contact country 'ZZZ' is not a valid ISO country code"
    assert "no hw-user-token yet" in reasons["4"]
    text = caplog.text + repr(summary.to_dict())
    for number in ("3920956580417064096726", "3920956580417064096727", "31926819"):
        assert number not in text
    lines = [r.getMessage() for r in caplog.records if r.name == BATCH_LOGGER]
    assert "[BATCHJOBITEM] No bank account info for shop code: [5]" in lines
    assert (
        "[BATCHJOBITEM] Validation of item of type BankAccount with id: 2 has failed with the "
        "following message: invalid data: IBAN ****6727 has wrong check digits"
    ) in lines


def test_seed_batch_log_lines(
    sandbox, hw_admin, mirakl, hyperwallet, ledger, connector_config, shop_factory, user_token,
    caplog,
):  # fmt: skip
    """Seed 002: two 'Shops retrieved' lines (individuals, then professionals), per-item lines."""
    users = {i: user_token(i, professional=i == 78765) for i in (78764, 78765, 78766)}
    sandbox.put_shops(
        [shop_factory(i, payment_info=IBAN, professional=i == 78765,
                      fields={"hw-user-token": users[i]}) for i in (78764, 78765, 78766)]
    )  # fmt: skip
    caplog.set_level(logging.INFO, logger=BATCH_LOGGER)
    since = datetime(2023, 4, 18, 12, 41, 42, tzinfo=UTC)
    job(mirakl, hyperwallet, ledger, connector_config).sync(since=since)
    lines = [r.getMessage() for r in caplog.records if r.name == BATCH_LOGGER]
    assert lines[:7] == [
        "[BATCHJOB] Starting processing of job",
        "[BATCHJOB] Starting extraction of items to be processed",
        "[BATCHJOB] Retrieving shops since Tue Apr 18 12:41:42 UTC 2023",
        "[BATCHJOB] Shops retrieved [78764,78766]",
        "[BATCHJOB] Shops retrieved [78765]",
        "[BATCHJOB] Retrieved the following number of items to be processed: 3",
        "[BATCHJOBITEM] Processing item of type BankAccount with id: 78764",
    ]
    first = lines[
        lines.index("[BATCHJOBITEM] Processing item of type BankAccount with id: 78764") :
    ]
    assert first[1:6] == [
        "[BATCHJOBITEM] Bank account created or updated for seller with clientId [78764]",
        "[BATCHJOBITEM] Updating bank account token for shop [78764]",
        "[BATCHJOBITEM] Bank account token updated for shop [78764]",
        "[BATCHJOBITEM] Processed successfully item of type BankAccount with id: 78764",
        "[BATCHJOBITEM] 1 items processed successfully. 0 items failed. 2 items remaining",
    ]
    assert lines[-2:] == [
        "[BATCHJOBITEM] 3 items processed successfully. 0 items failed. 0 items remaining",
        "[BATCHJOB] Finished processing of job",
    ]


def test_s20_is_read_as_the_hyperwallet_connector_reads_it(
    sandbox, mirakl, hyperwallet, ledger, connector_config, shop_factory, user_token
):
    """Issue 19 pt 5: ``updated_since=<UTC instant>Z&paginate=false``, never ``domains``."""
    user = user_token(1)
    sandbox.put_shops([shop_factory(1, payment_info=IBAN, fields={"hw-user-token": user})])
    sandbox.clear_mirakl_calls()

    assert job(mirakl, hyperwallet, ledger, connector_config).sync(since=SINCE).counts == {
        "CREATED": 1
    }

    (read,) = sandbox.mirakl_calls("S20")
    assert read["query"] == {"updated_since": "2026-01-01T00:00:00Z", "paginate": "false"}
