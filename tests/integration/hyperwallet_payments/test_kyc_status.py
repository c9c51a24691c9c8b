"""KYC notifications against the sandbox: users and stakeholders → Mirakl KYC status and flags."""

from __future__ import annotations

from mirakl_connector.hyperwallet.kyc_status import HyperwalletKycStatusJob
from mirakl_connector.hyperwallet.notifications import NotificationSettings
from mirakl_connector.ledger import InboxStatus
from mirakl_connector.ledger.inbox_events import HYPERWALLET

BUSINESS_USER = {
    "token": "usr-biz",
    "clientUserId": "3001",
    "programToken": "prg-users",
    "profileType": "BUSINESS",
    "verificationStatus": "VERIFIED",
    "businessStakeholderVerificationStatus": "VERIFIED",
    "letterOfAuthorizationStatus": "NOT_REQUIRED",
}
STAKEHOLDERS = [
    {"token": "stk-a", "userToken": "usr-biz", "profileType": "INDIVIDUAL",
     "verificationStatus": "VERIFIED", "isBusinessContact": True, "isDirector": True},
    {"token": "stk-b", "userToken": "usr-biz", "profileType": "INDIVIDUAL",
     "verificationStatus": "VERIFIED", "isBusinessContact": False, "isDirector": False},
]  # fmt: skip


def _scenario(hw):
    business_shop = hw.shop(3001, is_professional=True)
    business_shop["shop_additional_fields"] += [
        {"code": "hw-stakeholder-token-1", "value": "stk-a"},
        {"code": "hw-stakeholder-token-2", "value": "stk-b"},
    ]
    return hw.scenario(
        shops=[hw.shop(), business_shop], users=[BUSINESS_USER], stakeholders=STAKEHOLDERS
    )


def _job(mirakl, hyperwallet, ledger, **settings):
    return HyperwalletKycStatusJob(
        mirakl=lambda: mirakl,
        hyperwallet=lambda: hyperwallet,
        ledger=ledger,
        settings=NotificationSettings.from_mapping(settings),
    )


def _shop(sandbox, shop_id):
    shop = next(s for s in sandbox.state()["mirakl"]["shops"] if s["shop_id"] == shop_id)
    fields = {f["code"]: f.get("value") for f in shop.get("shop_additional_fields") or []}
    return shop, fields


def _emit(hw, ledger, sent):
    hw.store(ledger, sent["notification"])
    return sent["notification"]


def test_individual_statuses_map_to_mirakl_kyc(
    hw, sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger
):
    sandbox.reset(_scenario(hw))
    job = _job(mirakl, hyperwallet, workflow_ledger)

    _emit(
        hw, workflow_ledger, hw_admin.set_user_status("usr-seller", verificationStatus="REQUIRED")
    )
    assert job.process().to_dict()["counts"] == {"PROCESSED": 1}
    shop, fields = _shop(sandbox, 2001)
    assert shop["kyc"]["status"] == "REFUSED"
    assert "Proof of Identity and Proof of Address" in shop["kyc"]["reason"]
    assert fields["hw-kyc-req-proof-identity-business"] == "true"

    _emit(
        hw, workflow_ledger, hw_admin.set_user_status("usr-seller", verificationStatus="VERIFIED")
    )
    summary = job.process().to_dict()
    assert summary["reasons"][0]["reason"] == "shop 2001: KYC APPROVED"
    assert _shop(sandbox, 2001)[0]["kyc"] == {"status": "APPROVED", "reason": ""}

    _emit(
        hw, workflow_ledger, hw_admin.set_user_status("usr-seller", verificationStatus="REQUESTED")
    )
    ignored = job.process().to_dict()
    assert ignored["counts"] == {"IGNORED": 1}
    assert _shop(sandbox, 2001)[0]["kyc"]["status"] == "APPROVED"


def test_an_older_user_notification_never_overrides_a_newer_one(
    hw, sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger
):
    sandbox.reset(_scenario(hw))
    newer = hw_admin.set_user_status(
        "usr-seller", verificationStatus="VERIFIED", createdOn="2030-01-01T10:00:05.000"
    )
    older = hw_admin.set_user_status(
        "usr-seller", verificationStatus="UNDER_REVIEW", createdOn="2030-01-01T10:00:01.000"
    )
    job = _job(mirakl, hyperwallet, workflow_ledger)
    _emit(hw, workflow_ledger, newer)
    job.process()
    _emit(hw, workflow_ledger, older)

    summary = job.process().to_dict()

    assert summary["counts"] == {"IGNORED": 1}
    assert summary["reasons"][0]["reason"].startswith("superseded")
    assert _shop(sandbox, 2001)[0]["kyc"]["status"] == "APPROVED"


def test_business_with_stakeholders_to_verify(
    hw, sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger
):
    sandbox.reset(_scenario(hw))
    hw_admin.set_stakeholder_status("stk-b", verificationStatus="REQUIRED")  # no delivery url
    _emit(
        hw,
        workflow_ledger,
        hw_admin.set_user_status(
            "usr-biz",
            businessStakeholderVerificationStatus="REQUIRED",
            letterOfAuthorizationStatus="REQUIRED",
        ),
    )

    summary = _job(mirakl, hyperwallet, workflow_ledger, kyc_automated=True).process().to_dict()

    assert summary["counts"] == {"PROCESSED": 1}
    shop, fields = _shop(sandbox, 3001)
    assert shop["kyc"]["status"] == "REFUSED"
    assert "business stakeholder" in shop["kyc"]["reason"]
    assert fields["hw-stakeholder-req-proof-identity-2"] == "true"
    assert "hw-stakeholder-req-proof-identity-1" not in fields
    assert fields["hw-kyc-req-proof-authorization"] == "true"


def test_stakeholder_notifications_set_their_flags(
    hw, sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger
):
    sandbox.reset(_scenario(hw))
    job = _job(mirakl, hyperwallet, workflow_ledger)

    _emit(
        hw, workflow_ledger, hw_admin.set_stakeholder_status("stk-b", verificationStatus="REQUIRED")
    )
    assert job.process().to_dict()["reasons"][0]["reason"] == (
        "shop 3001: hw-stakeholder-req-proof-identity-2=true"
    )
    _emit(
        hw, workflow_ledger, hw_admin.set_stakeholder_status("stk-b", verificationStatus="VERIFIED")
    )
    job.process()
    assert _shop(sandbox, 3001)[1]["hw-stakeholder-req-proof-identity-2"] == "false"

    hw_admin.set_user_status("usr-biz", letterOfAuthorizationStatus="REQUIRED")  # not delivered
    stakeholder = dict(STAKEHOLDERS[0])
    _emit(hw, workflow_ledger, hw_admin.emit("USERS.BUSINESS_STAKEHOLDERS.CREATED", stakeholder))
    created = job.process().to_dict()
    assert created["reasons"][0]["reason"] == "shop 3001: hw-kyc-req-proof-authorization=true"


def test_mirakl_refusal_is_retried(hw, sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger):
    sandbox.reset(hw.scenario(users=[{**BUSINESS_USER, "token": "usr-x", "clientUserId": "999"}]))
    sent = _emit(
        hw, workflow_ledger, hw_admin.set_user_status("usr-x", verificationStatus="VERIFIED")
    )

    summary = _job(mirakl, hyperwallet, workflow_ledger).process().to_dict()

    assert summary["counts"] == {"RETRY_SCHEDULED": 1}
    event = workflow_ledger.get_inbox_event(HYPERWALLET, sent["token"])
    assert event.status == InboxStatus.FAILED and event.next_attempt_at is not None
    assert "999" in event.last_error


def test_forged_kyc_notification_writes_nothing_to_mirakl(
    hw, sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger
):
    """Issue 19 pt 3 for KYC: a VERIFIED user posted with the secret, unknown to Hyperwallet."""
    sandbox.reset(_scenario(hw))
    user = next(u for u in hw_admin.users() if u["token"] == "usr-seller")
    forged = {
        "token": "wbh-forged-kyc",
        "type": "USERS.UPDATED.VERIFICATION_STATUS.VERIFIED",
        "createdOn": "2030-01-01T09:00:00.000",
        "object": {**user, "verificationStatus": "VERIFIED"},
    }
    hw.store(workflow_ledger, forged)
    sandbox.clear_mirakl_calls()

    summary = _job(mirakl, hyperwallet, workflow_ledger).process().to_dict()

    assert summary["counts"] == {"REJECTED": 1}
    assert "Hyperwallet does not know notification wbh-forged-kyc" in summary["failed"][0]["reason"]
    assert sandbox.mirakl_calls("S07") == []
    event = workflow_ledger.get_inbox_event(HYPERWALLET, "wbh-forged-kyc")
    assert (event.status, event.next_attempt_at) == (InboxStatus.FAILED, None)
