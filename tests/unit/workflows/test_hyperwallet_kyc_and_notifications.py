"""KYC status mapping and the notification retry policy (pure rules)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.hyperwallet.kyc_rules import (
    document_flags,
    kyc_reason,
    letter_of_authorization_wanted,
    mirakl_kyc_status,
    required_stakeholder_flags,
    shop_update,
)
from mirakl_connector.hyperwallet.notifications import (
    NotificationSettings,
    after_failure,
    notification_kind,
    retry_delay,
)
from mirakl_connector.ledger import InboxEvent, InboxStatus

NOW = datetime(2024, 5, 2, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("verification", "expected"),
    [
        ("UNDER_REVIEW", "PENDING_APPROVAL"),
        ("VERIFIED", "APPROVED"),
        ("NOT_REQUIRED", "APPROVED"),
        ("REQUIRED", "REFUSED"),
        ("REQUESTED", None),
        ("EXPIRED", None),
        (None, None),
    ],
)
def test_individual_kyc_status(verification, expected):
    user = {"profileType": "INDIVIDUAL", "verificationStatus": verification}
    assert mirakl_kyc_status(user) == expected


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (("VERIFIED", "VERIFIED", "VERIFIED"), "APPROVED"),
        (("VERIFIED", "UNDER_REVIEW", "NOT_REQUIRED"), "PENDING_APPROVAL"),
        (("UNDER_REVIEW", "REQUIRED", "VERIFIED"), "REFUSED"),
        (("VERIFIED", "VERIFIED", "REQUIRED"), "REFUSED"),
        ((None, None, None), "APPROVED"),
    ],
)
def test_business_kyc_status(statuses, expected):
    verification, stakeholders, letter = statuses
    user = {
        "profileType": "BUSINESS",
        "verificationStatus": verification,
        "businessStakeholderVerificationStatus": stakeholders,
        "letterOfAuthorizationStatus": letter,
    }
    assert mirakl_kyc_status(user) == expected


def test_reason_lists_what_to_provide_and_is_empty_otherwise():
    assert kyc_reason({"profileType": "INDIVIDUAL", "verificationStatus": "VERIFIED"}) == ""
    individual = kyc_reason({"profileType": "INDIVIDUAL", "verificationStatus": "REQUIRED"})
    assert individual.startswith("There is an issue with verifying your details in Hyperwallet")
    assert "<li>Submitted your Proof of Identity and Proof of Address documents</li>" in individual
    business = kyc_reason(
        {
            "profileType": "BUSINESS",
            "verificationStatus": "VERIFIED",
            "businessStakeholderVerificationStatus": "REQUIRED",
            "letterOfAuthorizationStatus": "REQUIRED",
        }
    )
    assert business.count("<li>") == 3
    assert "Letter of Authorization" in business
    assert "Certificate of Incorporation" not in business


def test_document_flags():
    required = {"profileType": "BUSINESS", "verificationStatus": "REQUIRED"}
    assert document_flags(required, automated=False) == {
        "hw-kyc-req-proof-identity-business": "true"
    }
    letter = {"profileType": "BUSINESS", "letterOfAuthorizationStatus": "REQUIRED"}
    assert document_flags(letter, automated=False) == {}
    assert document_flags(letter, automated=True) == {"hw-kyc-req-proof-authorization": "true"}
    assert letter_of_authorization_wanted({"letterOfAuthorizationStatus": "FAILED"}) == "true"
    assert letter_of_authorization_wanted({"letterOfAuthorizationStatus": "VERIFIED"}) == "false"


def test_required_stakeholders_are_matched_by_their_token_field():
    shop = {
        "shop_additional_fields": [
            {"code": "hw-stakeholder-token-1", "value": "stk-a"},
            {"code": "hw-stakeholder-token-3", "value": "stk-c"},
        ]
    }
    stakeholders = [
        {"token": "stk-a", "verificationStatus": "VERIFIED"},
        {"token": "stk-c", "verificationStatus": "REQUIRED"},
        {"token": "stk-unknown", "verificationStatus": "REQUIRED"},
    ]
    assert required_stakeholder_flags(shop, stakeholders) == {
        "hw-stakeholder-req-proof-identity-3": "true"
    }


def test_shop_update_entry():
    assert shop_update(1, None, "", {}) is None
    assert shop_update(1, "APPROVED", "", {}) == {
        "shop_id": 1,
        "kyc": {"status": "APPROVED", "reason": ""},
    }
    assert shop_update(1, None, "", {"b": "true", "a": "false"}) == {
        "shop_id": 1,
        "shop_additional_fields": [
            {"code": "a", "value": "false"},
            {"code": "b", "value": "true"},
        ],
    }


@pytest.mark.parametrize(
    ("token", "kind"),
    [
        ("pmt-1", "PMT"),
        ("usr-1", "USR"),
        ("stk-1", "STK"),
        ("trm-1", "TRM"),
        ("act-1", "UNK"),
        ("nodash", "UNK"),
        (None, "UNK"),
    ],
)
def test_kind_comes_from_the_object_token_prefix(token, kind):
    assert notification_kind({"type": "PAYMENTS.UPDATED.STATUS.X", "object": {"token": token}}) == (
        kind
    )


def test_backoff_is_1_2_4_8_minutes_then_failed_for_good():
    event = InboxEvent("wbh-1", "hyperwallet", "PAYMENTS.UPDATED.STATUS.COMPLETED")
    waits = []
    for _ in range(5):
        event = after_failure(
            event, "boom", now=NOW, max_attempts=5, first_delay=timedelta(minutes=1)
        )
        assert event.status == InboxStatus.FAILED
        waits.append(event.next_attempt_at - NOW if event.next_attempt_at else None)
    assert waits == [timedelta(minutes=m) for m in (1, 2, 4, 8)] + [None]
    assert event.attempts == 5
    assert retry_delay(3, timedelta(minutes=2)) == timedelta(minutes=8)


def test_permanent_failure_gives_up_at_once():
    event = InboxEvent("wbh-1", "hyperwallet", "X")
    failed = after_failure(
        event, "bad", now=NOW, max_attempts=5, first_delay=timedelta(minutes=1), permanent=True
    )
    assert (failed.attempts, failed.next_attempt_at) == (1, None)


def test_settings_are_checked():
    assert NotificationSettings.from_mapping(None).max_attempts == 5
    with pytest.raises(ConfigurationError, match="unknown hyperwallet_notifications"):
        NotificationSettings.from_mapping({"retries": 3})
    with pytest.raises(ConfigurationError, match="max_attempts must be a positive integer"):
        NotificationSettings.from_mapping({"max_attempts": 0})
