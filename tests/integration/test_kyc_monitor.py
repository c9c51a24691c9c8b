"""The KYC monitor end to end: sandbox Stripe accounts, sandbox Mirakl, a real SMTP server.

Checks the statuses stored on the mappings, the ONE e-mail per status change (its content as
received by the SMTP server), the S07 payloads when the Mirakl update is on, and that the
payment split holds, then releases, the transfers of a shop whose account is not verified.
"""

from __future__ import annotations

import smtplib
from collections.abc import Sequence
from datetime import UTC as _UTC
from datetime import datetime as _dt
from email.message import EmailMessage

import pytest

from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.ledger.records import AccountMapping, TransferStatus, TransferType
from mirakl_connector.operations.first_run import GoLive
from mirakl_connector.operations.mail import alert_recipients
from mirakl_connector.stripe.kyc_monitor import (
    EMAIL_SUBJECT,
    WORKFLOW,
    KycMonitor,
    KycMonitorSettings,
)
from mirakl_connector.stripe.onboarding import OnboardingSettings
from mirakl_connector.stripe.payment_split import PaymentSplit, PaymentSplitSettings

#: Tests move money from any date: an explicit go-live instant far in the past.
TEST_GO_LIVE = GoLive(_dt(2000, 1, 1, tzinfo=_UTC))

RECIPIENTS = ["ops@example.com", "kyc@example.com"]


class SmtpLibMailer:
    """The core's Mailer protocol over plain smtplib (what a non-Airflow deployment would do)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    def send(self, *, to: Sequence[str], subject: str, html: str) -> None:
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = "connector@example.com"
        message["To"] = ", ".join(to)
        message.set_content(html, subtype="html")
        with smtplib.SMTP(self.host, self.port, timeout=5) as smtp:
            smtp.send_message(message)


def account(acct_id, *, due=(), pending=(), disabled=None, enabled=False):
    return {
        "id": acct_id,
        "type": "express",
        "payouts_enabled": enabled,
        "charges_enabled": enabled,
        "details_submitted": True,
        "requirements": {
            "currently_due": list(due),
            "pending_verification": list(pending),
            "disabled_reason": disabled,
        },
    }


@pytest.fixture
def marketplace(sandbox, workflow_ledger):
    """Shops 1-3 mapped to accounts in three states, and an account mapped to no shop."""
    sandbox.put_accounts(
        [
            account("acct_due", due=["external_account"]),
            account("acct_ok", enabled=True),
            account("acct_rejected", disabled="rejected.fraud"),
            account("acct_stranger", due=["tos_acceptance.date"]),
        ]
    )
    sandbox.put_shops(
        [
            {"shop_id": i, "shop_name": f"Shop {i}", "last_updated_date": "2026-11-01T00:00:00Z"}
            for i in (1, 2, 3)
        ]
    )
    for shop_id, acct in ((1, "acct_due"), (2, "acct_ok"), (3, "acct_rejected")):
        workflow_ledger.upsert_account_mapping(AccountMapping(shop_id, acct))
    return sandbox


@pytest.fixture
def monitor(mirakl, stripe_gateway, workflow_ledger, smtp_server):
    host, port, _inbox = smtp_server

    def make(*, update_mirakl=False, recipients=RECIPIENTS) -> KycMonitor:
        return KycMonitor(
            mirakl=lambda: mirakl,
            stripe=stripe_gateway,
            ledger=workflow_ledger,
            mailer=lambda: SmtpLibMailer(host, port),
            settings=KycMonitorSettings(update_mirakl=update_mirakl),
            links=OnboardingSettings(),
            recipients=recipients,
        )

    return make


def mapping(ledger, shop_id):
    return ledger.account_mappings_by_shop([shop_id])[shop_id]


def table_rows(message):
    body = message.get_content()
    return [line for line in body.splitlines() if line.startswith("<tr><td>")]


def test_statuses_stored_and_one_email_per_change(
    marketplace, monitor, workflow_ledger, smtp_server
):
    inbox = smtp_server[2]
    summary = monitor().monitor()

    assert summary.counts == {"PENDING_SUBMISSION": 1, "APPROVED": 1, "REFUSED": 1}
    assert "1 Stripe account(s) are not mapped to a shop" in summary.notes
    assert [mapping(workflow_ledger, i).kyc_status for i in (1, 2, 3)] == [
        "PENDING_SUBMISSION", "APPROVED", "REFUSED",
    ]  # fmt: skip
    assert all(not mapping(workflow_ledger, i).ignored for i in (1, 2, 3))  # never written

    [message] = inbox.messages
    assert message["Subject"] == EMAIL_SUBJECT
    assert message["X-Rcpt-To"] == ", ".join(RECIPIENTS)
    assert table_rows(message) == [
        "<tr><td>1</td><td>acct_due</td><td>PENDING_SUBMISSION</td>"
        "<td>Stripe needs more information: external_account</td></tr>",
        "<tr><td>3</td><td>acct_rejected</td><td>REFUSED</td>"
        "<td>Stripe refused the account (rejected.fraud)</td></tr>",
    ]
    assert mapping(workflow_ledger, 1).kyc_reported_status == "PENDING_SUBMISSION"
    # Without the Mirakl update, no link is created and Mirakl is not written.
    assert marketplace.mirakl_calls("S07") == []
    assert marketplace.stripe_requests(method="POST") == []

    # Nothing new: no second e-mail.
    monitor().monitor()
    assert len(inbox.messages) == 1

    # Shop 1 moves on to verification: e-mailed once, alone.
    marketplace.patch_account(
        "acct_due", requirements={"currently_due": [], "pending_verification": ["individual.id"]}
    )
    monitor().monitor()
    assert len(inbox.messages) == 2
    assert [r.split("</td>")[:3] for r in table_rows(inbox.messages[1])] == [
        ["<tr><td>1", "<td>acct_due", "<td>PENDING_APPROVAL"]
    ]

    # It clears (no e-mail), then the same problem comes back: it is new again.
    marketplace.patch_account(
        "acct_due",
        payouts_enabled=True,
        charges_enabled=True,
        requirements={"currently_due": [], "pending_verification": []},
    )
    monitor().monitor()
    assert len(inbox.messages) == 2
    assert mapping(workflow_ledger, 1).kyc_status == "APPROVED"
    marketplace.patch_account("acct_due", requirements={"currently_due": ["external_account"]})
    monitor().monitor()
    assert len(inbox.messages) == 3
    assert (
        "<td>1</td><td>acct_due</td><td>PENDING_SUBMISSION</td>" in table_rows(inbox.messages[2])[0]
    )


def test_no_recipient_means_no_email_and_nothing_marked_reported(
    marketplace, monitor, workflow_ledger, smtp_server
):
    summary = monitor(recipients=[]).monitor()
    assert smtp_server[2].messages == []
    assert any("alerts.email_to is empty" in note for note in summary.notes)
    assert mapping(workflow_ledger, 1).kyc_reported_status is None
    monitor().monitor()  # once configured, the backlog is reported
    assert len(smtp_server[2].messages) == 1


def test_mirakl_update_writes_status_reason_and_link(marketplace, monitor, workflow_ledger):
    monitor(update_mirakl=True).monitor()

    [call] = marketplace.mirakl_calls("S07")
    entries = {e["shop_id"]: e for e in call["body"]["shops"]}
    assert set(entries) == {1, 3}  # shop 2 was always fine: nothing to tell Mirakl
    assert entries[1]["kyc"] == {
        "status": "PENDING_SUBMISSION",
        "reason": "Stripe needs more information: external_account",
    }
    assert entries[3]["kyc"]["status"] == "REFUSED"
    [link_field] = entries[1]["shop_additional_fields"]
    assert link_field["code"] == "stripe-url"
    assert "/_sandbox/onboarding/acct_due" in link_field["value"]
    token = mapping(workflow_ledger, 1).onboarding_token
    assert token and f"onboarding/refresh?token={token}" in link_field["value"]
    shop_1 = next(s for s in marketplace.shops() if s["shop_id"] == 1)
    assert shop_1["kyc"]["status"] == "PENDING_SUBMISSION"

    # Rerun: nothing changed, nothing written.
    marketplace.clear_mirakl_calls()
    monitor(update_mirakl=True).monitor()
    assert marketplace.mirakl_calls("S07") == []

    # Shop 1 is approved: APPROVED and a dashboard login link.
    marketplace.patch_account(
        "acct_due", payouts_enabled=True, charges_enabled=True, requirements={"currently_due": []}
    )
    monitor(update_mirakl=True).monitor()
    [call] = marketplace.mirakl_calls("S07")
    [entry] = call["body"]["shops"]
    assert entry["shop_id"] == 1
    assert entry["kyc"] == {"status": "APPROVED", "reason": "Stripe account verified"}
    assert "/_sandbox/dashboard/acct_due" in entry["shop_additional_fields"][0]["value"]
    assert len(marketplace.stripe_requests(path="/v1/accounts/acct_due/login_links")) == 1


def test_failed_mirakl_update_is_retried_until_written(marketplace, monitor, workflow_ledger):
    marketplace.put_shops(
        [{"shop_id": 3, "last_updated_date": "2026-11-01T00:00:00Z", "sandbox_s07_error": "locked"}]
    )
    summary = monitor(update_mirakl=True).monitor()
    assert summary.counts["MIRAKL_UPDATE_FAILED"] == 1
    assert summary.failed == [{"id": "shop 3", "reason": "Mirakl refused the S07 update: locked"}]
    assert [p.item_id for p in workflow_ledger.pending_items(WORKFLOW)] == ["3"]

    marketplace.put_shops([{"shop_id": 3, "last_updated_date": "2026-11-01T00:00:00Z"}])
    marketplace.clear_mirakl_calls()
    summary = monitor(update_mirakl=True).monitor()
    [call] = marketplace.mirakl_calls("S07")
    assert [e["shop_id"] for e in call["body"]["shops"]] == [3]  # status unchanged, but queued
    assert summary.failed_total == 0
    assert workflow_ledger.pending_items(WORKFLOW) == []


def test_dry_run_changes_nothing(marketplace, monitor, workflow_ledger, smtp_server):
    summary = monitor(update_mirakl=True).monitor(dry_run=True)
    assert summary.counts == {"PENDING_SUBMISSION": 1, "APPROVED": 1, "REFUSED": 1}
    assert "the KYC e-mail would list 2 account(s)" in summary.notes
    assert smtp_server[2].messages == []
    assert marketplace.mirakl_calls("S07") == []
    assert marketplace.stripe_requests(method="POST") == []
    assert mapping(workflow_ledger, 1).kyc_status is None


def test_kyc_hold_in_the_payment_split(
    marketplace, mirakl, stripe_gateway, workflow_ledger, monitor
):
    marketplace.put_charges(
        [{"id": "ch_paid", "amount": 100_000, "currency": "eur", "status": "succeeded"}]
    )
    marketplace.put_orders(
        [
            {
                "order_id": "O-1-A",
                "commercial_id": "O-1",
                "created_date": "2026-11-20T10:00:00Z",
                "customer_debited_date": "2026-11-20T11:00:00Z",
                "currency_iso_code": "EUR",
                "order_state": "SHIPPING",
                "order_tax_mode": "TAX_EXCLUDED",
                "shop_id": 1,
                "total_commission": "10.00",
                "total_price": "100.00",
                "transaction_number": "ch_paid",
                "order_lines": [
                    {"order_line_id": "O-1-A-1", "order_line_state": "SHIPPING",
                     "total_price": "100.00", "shipping_taxes": [], "taxes": []}
                ],
            }
        ]
    )  # fmt: skip
    split = PaymentSplit(
        mirakl=mirakl, stripe=stripe_gateway, ledger=workflow_ledger, go_live=TEST_GO_LIVE,
        settings=PaymentSplitSettings(),
    )  # fmt: skip
    monitor().monitor()  # shop 1: PENDING_SUBMISSION

    split.plan()
    split.execute()
    row = workflow_ledger.get_transfer(TransferType.PRODUCT_ORDER, "O-1-A")
    assert row.status is TransferStatus.ON_HOLD
    assert (
        row.status_reason == "Stripe account acct_due is not verified yet (KYC PENDING_SUBMISSION)"
    )
    assert marketplace.transfers() == []

    marketplace.patch_account(
        "acct_due", payouts_enabled=True, charges_enabled=True, requirements={"currently_due": []}
    )
    monitor().monitor()
    split.plan()
    split.execute()
    row = workflow_ledger.get_transfer(TransferType.PRODUCT_ORDER, "O-1-A")
    assert row.status is TransferStatus.CREATED
    [transfer] = marketplace.transfers()
    assert (transfer["destination"], transfer["amount"]) == ("acct_due", 9000)


def test_settings_and_recipients():
    with pytest.raises(ConfigurationError, match="unknown kyc_monitor setting"):
        KycMonitorSettings.from_mapping({"update_miraki": True})
    with pytest.raises(ConfigurationError, match="update_mirakl must be true or false"):
        KycMonitorSettings.from_mapping({"update_mirakl": "true"})
    assert alert_recipients({"alerts": {"email_to": "a@x.com, b@x.com"}}) == ("a@x.com", "b@x.com")
    assert alert_recipients({}) == ()


def test_run_dying_before_s07_still_writes_mirakl_next_time(
    marketplace, monitor, workflow_ledger, monkeypatch
):
    job = monitor(update_mirakl=True)
    monkeypatch.setattr(job, "_update_mirakl", lambda *a: (_ for _ in ()).throw(OSError("kill")))
    with pytest.raises(OSError):
        job.monitor()
    assert mapping(workflow_ledger, 1).kyc_status == "PENDING_SUBMISSION"  # saved already
    assert marketplace.mirakl_calls("S07") == []

    summary = monitor(update_mirakl=True).monitor()
    [call] = marketplace.mirakl_calls("S07")
    assert sorted(e["shop_id"] for e in call["body"]["shops"]) == [1, 3]
    assert summary.counts["MIRAKL_UPDATED"] == 2
    assert workflow_ledger.pending_items(WORKFLOW) == []
