"""Payment status notifications against the sandbox: IV07/SBC07, e-mails, order, duplicates."""

from __future__ import annotations

from datetime import UTC as _UTC
from datetime import datetime as _dt
from datetime import timedelta
from decimal import Decimal

from mirakl_connector.hyperwallet.client import HyperwalletClient
from mirakl_connector.hyperwallet.invoice_payments import (
    HyperwalletInvoicePayments,
    HyperwalletPaymentSettings,
)
from mirakl_connector.hyperwallet.notifications import NotificationSettings
from mirakl_connector.hyperwallet.payment_status import HyperwalletPaymentStatusJob
from mirakl_connector.hyperwallet.programs import HyperwalletSettings
from mirakl_connector.ledger import HyperwalletPaymentStatus, InboxStatus
from mirakl_connector.ledger.inbox_events import HYPERWALLET
from mirakl_connector.operations.first_run import GoLive

#: Tests move money from any date: an explicit go-live instant far in the past.
TEST_GO_LIVE = GoLive(_dt(2000, 1, 1, tzinfo=_UTC))

S = HyperwalletPaymentStatus


def _pay(hw, mirakl, hyperwallet, ledger, **settings):
    HyperwalletInvoicePayments(
        mirakl=mirakl,
        hyperwallet=hyperwallet,
        ledger=ledger,
        go_live=TEST_GO_LIVE,
        settings=HyperwalletSettings.from_config(hw.config),
        payments=HyperwalletPaymentSettings.from_mapping(settings),
    ).pay()


def _job(hw, mirakl, ledger, *, mailer=None, clock=None, **payments):
    # The sandbox serves Hyperwallet next to Mirakl: every notification is re-read there.
    hyperwallet = HyperwalletClient(mirakl.base_url, "sandbox-hw-user", "sandbox-hw-password")
    return HyperwalletPaymentStatusJob(
        mirakl=lambda: mirakl,
        hyperwallet=lambda: hyperwallet,
        ledger=ledger,
        settings=NotificationSettings.from_mapping({}),
        payments=HyperwalletPaymentSettings.from_mapping(payments),
        mailer=mailer,
        email_to=["payments-ops@example.com"],
        now=clock,
    )


def _token(hw_admin, client_payment_id):
    return next(
        p["token"] for p in hw_admin.payments() if p["clientPaymentId"] == client_payment_id
    )


def _notify(hw, hw_admin, ledger, client_payment_id, status, created_on=None):
    sent = hw_admin.set_payment_status(
        _token(hw_admin, client_payment_id), status, created_on=created_on
    )
    hw.store(ledger, sent["notification"])
    return sent["notification"]


def test_completed_confirms_the_invoice_with_the_seed_mapping_once(
    hw, sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger
):
    sandbox.reset(hw.scenario(shops=[hw.shop()], invoices=[hw.invoice(230201)]))
    _pay(hw, mirakl, hyperwallet, workflow_ledger)
    payment = next(p for p in hw_admin.payments() if p["clientPaymentId"] == "230201")
    _notify(hw, hw_admin, workflow_ledger, "230201", "COMPLETED")
    _notify(hw, hw_admin, workflow_ledger, "230201-operatorFee", "COMPLETED")
    job = _job(hw, mirakl, workflow_ledger)

    summary = job.process().to_dict()

    assert summary["counts"] == {"PROCESSED": 2}
    (call,) = sandbox.mirakl_calls("IV07")
    assert call["body"] == {
        "accounting_documents": [
            {
                "invoice_id": 230201,
                "amount": 4545.20,
                "currency_iso_code": "EUR",
                "transaction_date": payment["createdOn"] + "Z",
                "confirm_all_linked_manual_documents": True,
            }
        ]
    }
    (invoice,) = sandbox.state()["mirakl"]["invoices"]
    assert invoice["payment"]["state"] == "PAID"
    row = workflow_ledger.get_hyperwallet_payment("230201")
    assert (row.status, row.hw_status) == (S.COMPLETED, "COMPLETED")
    assert row.confirmed_at is not None
    fee = workflow_ledger.get_hyperwallet_payment("230201-operatorFee")
    assert fee.status == S.COMPLETED and fee.confirmed_at is None
    notes = {r["reason"] for r in summary["reasons"]}
    assert notes == {
        "invoice 230201 confirmed paid (IV07)",
        "operator commission completed (nothing to confirm)",
    }

    # Hyperwallet sends COMPLETED again (another notification token): confirmed only once.
    _notify(hw, hw_admin, workflow_ledger, "230201", "COMPLETED")
    again = job.process().to_dict()
    assert again["counts"] == {"PROCESSED": 1}
    assert "already confirmed" in again["reasons"][0]["reason"]
    assert len(sandbox.mirakl_calls("IV07")) == 1


def test_failure_status_emails_the_shop_and_invoice(
    hw, sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger, mailer, smtp_server
):
    sandbox.reset(hw.scenario(shops=[hw.shop()], invoices=[hw.invoice(230201)]))
    _pay(hw, mirakl, hyperwallet, workflow_ledger, operator_commissions=False)
    _notify(hw, hw_admin, workflow_ledger, "230201", "RETURNED")
    _, _, inbox = smtp_server

    summary = _job(hw, mirakl, workflow_ledger, mailer=mailer).process().to_dict()

    assert summary["counts"] == {"PROCESSED": 1}
    (message,) = inbox.messages
    assert (
        message["Subject"]
        == "Problem while processing payment [230201] of shop Shop 2001 with id [2001]"
    )
    body = message.get_payload()
    assert "RETURNED" in body and "invoice_ids" in body
    row = workflow_ledger.get_hyperwallet_payment("230201")
    assert (row.status, row.hw_status) == (S.FAILED, "RETURNED")
    assert sandbox.mirakl_calls("IV07") == []


def test_in_progress_statuses_are_recorded_and_nothing_else(
    hw, sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger, mailer, smtp_server
):
    sandbox.reset(hw.scenario(shops=[hw.shop()], invoices=[hw.invoice(230201)]))
    _pay(hw, mirakl, hyperwallet, workflow_ledger, operator_commissions=False)
    _notify(hw, hw_admin, workflow_ledger, "230201", "PENDING_TRANSFER_METHOD_ACTION")

    summary = _job(hw, mirakl, workflow_ledger, mailer=mailer).process().to_dict()

    assert summary["reasons"][0]["reason"] == (
        "PENDING_TRANSFER_METHOD_ACTION: in progress, nothing to do"
    )
    assert workflow_ledger.get_hyperwallet_payment("230201").hw_status == (
        "PENDING_TRANSFER_METHOD_ACTION"
    )
    assert sandbox.mirakl_calls("IV07") == []
    assert smtp_server[2].messages == []


def test_duplicates_are_stored_once_and_a_late_older_status_never_overrides(
    hw, sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger, webhook_url
):
    sandbox.reset(hw.scenario(shops=[hw.shop()], invoices=[hw.invoice(230201)]))
    _pay(hw, mirakl, hyperwallet, workflow_ledger, operator_commissions=False)
    token = _token(hw_admin, "230201")
    job = _job(hw, mirakl, workflow_ledger)
    hw_admin.set_webhooks(webhook_url, duplicate=True)

    completed = hw_admin.set_payment_status(
        token, "COMPLETED", created_on="2030-01-01T10:00:05.000"
    )
    assert [d["status"] for d in completed["deliveries"]] == [200, 200]
    first = job.process().to_dict()
    assert first["counts"] == {"PROCESSED": 1}

    # An IN_PROGRESS created before the COMPLETED arrives after it (twice).
    hw_admin.set_payment_status(token, "IN_PROGRESS", created_on="2030-01-01T10:00:01.000")
    late = job.process().to_dict()

    assert late["counts"] == {"IGNORED": 1}
    assert "superseded" in late["reasons"][0]["reason"]
    row = workflow_ledger.get_hyperwallet_payment("230201")
    assert (row.status, row.hw_status) == (S.COMPLETED, "COMPLETED")
    assert len(sandbox.mirakl_calls("IV07")) == 1
    stored = [e for batch in workflow_ledger.iter_inbox(statuses=list(InboxStatus)) for e in batch]
    assert len(stored) == 2  # four deliveries, two notifications


def test_out_of_order_delivery_is_applied_in_creation_order(
    hw, sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger, webhook_url
):
    sandbox.reset(hw.scenario(shops=[hw.shop()], invoices=[hw.invoice(230201)]))
    _pay(hw, mirakl, hyperwallet, workflow_ledger, operator_commissions=False)
    token = _token(hw_admin, "230201")
    hw_admin.set_webhooks(webhook_url, hold=True)
    hw_admin.set_payment_status(token, "SCHEDULED", created_on="2030-01-01T10:00:01.000")
    hw_admin.set_payment_status(token, "COMPLETED", created_on="2030-01-01T10:00:05.000")
    assert hw_admin.flush(reverse=True)["delivered"] == 2  # newest first

    summary = _job(hw, mirakl, workflow_ledger).process().to_dict()

    assert summary["counts"] == {"PROCESSED": 2}
    assert workflow_ledger.get_hyperwallet_payment("230201").status == S.COMPLETED
    assert len(sandbox.mirakl_calls("IV07")) == 1


def test_mirakl_refusal_is_retried_1_2_4_8_minutes_then_failed_with_one_email(
    hw, sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger, mailer, smtp_server, clock
):
    # Manual credits rolled into the invoice: without confirm_all_linked_manual_documents
    # Mirakl refuses the amount (incumbent issues #102/#125/#126).
    linked = hw.invoice(230201, linked_manual_documents=[{"id": "M1", "amount": 45.2}])
    sandbox.reset(hw.scenario(shops=[hw.shop()], invoices=[linked]))
    _pay(hw, mirakl, hyperwallet, workflow_ledger, operator_commissions=False)
    notification = _notify(hw, hw_admin, workflow_ledger, "230201", "COMPLETED")
    job = _job(
        hw,
        mirakl,
        workflow_ledger,
        mailer=mailer,
        clock=clock,
        confirm_linked_manual_documents=False,
    )
    _, _, inbox = smtp_server

    waits = []
    for attempt in range(1, 6):
        outcome = job.process().to_dict()
        assert outcome["total"] == 1, f"attempt {attempt} not picked"
        event = workflow_ledger.get_inbox_event(HYPERWALLET, notification["token"])
        assert event.attempts == attempt
        assert "The amount is incorrect" in event.last_error
        if event.next_attempt_at is None:
            break
        waits.append(round((event.next_attempt_at - clock()).total_seconds() / 60))
        clock.now = event.next_attempt_at - timedelta(seconds=1)
        assert job.process().to_dict()["total"] == 0  # not due yet
        clock.now = event.next_attempt_at
    assert waits == [1, 2, 4, 8]
    assert outcome["counts"] == {"GAVE_UP": 1}
    assert event.status == InboxStatus.FAILED
    (message,) = inbox.messages
    assert message["Subject"] == (
        f"Hyperwallet notification {notification['token']} could not be processed"
    )

    clock.advance(days=1)
    assert job.process().to_dict()["total"] == 0  # given up: never picked by itself

    # Once fixed, a manual run naming it applies it.
    fixed = _job(hw, mirakl, workflow_ledger, clock=clock).process([notification["token"]])
    assert fixed.to_dict()["counts"] == {"PROCESSED": 1}
    assert sandbox.state()["mirakl"]["invoices"][0]["payment"]["state"] == "PAID"


def test_sbc11_cycle_is_confirmed_with_sbc07(
    hw, sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger
):
    cycle_id = "98665be1-ce69-4ab6-8d93-b8dfd3e67404"
    cycle = {
        "id": cycle_id,
        "date_created": hw.invoice(1)["date_created"],
        "currency_iso_code": "EUR",
        "amount_transferred_to_seller": 100.5,
        "amount_transferred_to_operator": 0,
        "pay_out": {"state": "TO_PAY"},
        "shop": {"shop_id": 2001},
    }
    sandbox.reset(hw.scenario(shops=[hw.shop()], billing_cycles=[cycle]))
    _pay(hw, mirakl, hyperwallet, workflow_ledger, invoice_source="SBC11")
    _notify(hw, hw_admin, workflow_ledger, cycle_id, "COMPLETED")

    summary = _job(hw, mirakl, workflow_ledger).process().to_dict()

    assert summary["reasons"][0]["reason"] == f"invoice {cycle_id} confirmed paid (SBC07)"
    (call,) = sandbox.mirakl_calls("SBC07")
    (sent,) = call["body"]["seller_billing_cycles"]
    assert (sent["id"], sent["state"], Decimal(str(sent["amount_transferred_to_seller"]))) == (
        cycle_id,
        "PAID",
        Decimal("100.50"),
    )


def test_transfer_method_notifications_are_ignored_and_kyc_ones_left_alone(
    hw, sandbox, hw_admin, mirakl, workflow_ledger
):
    sandbox.reset(hw.scenario())
    trm = hw_admin.emit("BANK_ACCOUNTS.UPDATED.STATUS.VERIFIED", {"token": "trm-seller"})
    usr = hw_admin.emit("USERS.UPDATED.VERIFICATION_STATUS.VERIFIED", {"token": "usr-seller"})
    hw.store(workflow_ledger, trm["notification"])
    hw.store(workflow_ledger, usr["notification"])

    summary = _job(hw, mirakl, workflow_ledger).process().to_dict()

    assert summary["counts"] == {"IGNORED": 1}
    kyc_event = workflow_ledger.get_inbox_event(HYPERWALLET, usr["notification"]["token"])
    assert kyc_event.status == InboxStatus.RECEIVED


def _forged(payment_token, client_payment_id, status="COMPLETED", **changes):
    """A notification shaped as Hyperwallet's (Hyperwallet Java SDK
    ``HyperwalletWebhookNotification``) that Hyperwallet never sent."""
    return {
        "token": "wbh-00000000-dead-beef-0000-000000000001",
        "type": f"PAYMENTS.UPDATED.STATUS.{status}",
        "createdOn": "2030-01-01T09:00:00.000",
        "object": {
            "token": payment_token,
            "status": status,
            "createdOn": "2030-01-01T08:59:00",
            "amount": "4545.20",
            "currency": "EUR",
            "clientPaymentId": client_payment_id,
            "purpose": "OTHER",
            "destinationToken": "trm-seller",
            "programToken": "prg-pay",
            **changes,
        },
    }


def test_forged_completed_confirms_nothing_and_is_rejected_and_emailed(
    hw, sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger, mailer, smtp_server
):
    """Issue 19 pt 3: a COMPLETED posted with the endpoint secret but unknown to Hyperwallet."""
    sandbox.reset(hw.scenario(shops=[hw.shop()], invoices=[hw.invoice(230201)]))
    _pay(hw, mirakl, hyperwallet, workflow_ledger, operator_commissions=False)
    token = _token(hw_admin, "230201")  # our real payment, still CREATED at Hyperwallet
    forged = _forged(token, "230201")
    hw.store(workflow_ledger, forged)

    summary = _job(hw, mirakl, workflow_ledger, mailer=mailer).process().to_dict()

    assert summary["counts"] == {"REJECTED": 1}
    assert summary["failed"] == [
        {
            "id": forged["token"],
            "reason": "PAYMENTS.UPDATED.STATUS.COMPLETED: Hyperwallet does not know notification "
            f"{forged['token']} (GET /webhook-notifications/{{token}} answered 404)",
        }
    ]
    assert sandbox.mirakl_calls("IV07") == []
    assert sandbox.state()["mirakl"]["invoices"][0]["payment"]["state"] == "PENDING"
    row = workflow_ledger.get_hyperwallet_payment("230201")
    assert (row.status, row.hw_status, row.confirmed_at) == (S.CREATED, "CREATED", None)
    event = workflow_ledger.get_inbox_event(HYPERWALLET, forged["token"])
    assert (event.status, event.next_attempt_at) == (InboxStatus.FAILED, None)
    (message,) = smtp_server[2].messages
    assert message["Subject"] == (
        f"Hyperwallet notification {forged['token']} rejected: not confirmed by Hyperwallet"
    )
    # Hyperwallet was asked, by token: the notification, never the posted body.
    reads = [c["path"] for c in hw_admin.calls("/rest/v4/webhook-notifications", "GET")]
    assert reads == [f"/rest/v4/webhook-notifications/{forged['token']}"]
    # Not retried by itself.
    assert _job(hw, mirakl, workflow_ledger).process().to_dict()["total"] == 0


def test_real_notification_posted_with_another_status_is_rejected(
    hw, sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger
):
    sandbox.reset(hw.scenario(shops=[hw.shop()], invoices=[hw.invoice(230201)]))
    _pay(hw, mirakl, hyperwallet, workflow_ledger, operator_commissions=False)
    token = _token(hw_admin, "230201")
    genuine = hw_admin.set_payment_status(token, "IN_PROGRESS")["notification"]
    tampered = {
        **genuine,
        "type": "PAYMENTS.UPDATED.STATUS.COMPLETED",
        "object": {**genuine["object"], "status": "COMPLETED"},
    }
    hw.store(workflow_ledger, tampered)

    summary = _job(hw, mirakl, workflow_ledger).process().to_dict()

    assert summary["counts"] == {"REJECTED": 1}
    reason = summary["failed"][0]["reason"]
    assert "differs from Hyperwallet's copy" in reason
    assert "object.status 'COMPLETED' ≠ 'IN_PROGRESS'" in reason
    assert sandbox.mirakl_calls("IV07") == []
    assert workflow_ledger.get_hyperwallet_payment("230201").confirmed_at is None


def test_notification_of_a_payment_that_does_not_exist_marks_nothing_and_the_invoice_is_paid(
    hw, sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger
):
    """Issue 11 pt 4: Hyperwallet knows the notification, not the payment; nothing in the ledger
    says paid, and the next invoice run pays the invoice (not ALREADY_PAID)."""
    sandbox.reset(hw.scenario(shops=[hw.shop()], invoices=[hw.invoice(777)]))
    sent = hw_admin.emit(
        "PAYMENTS.UPDATED.STATUS.COMPLETED", _forged("pmt-elsewhere", "777")["object"]
    )
    hw.store(workflow_ledger, sent["notification"])

    summary = _job(hw, mirakl, workflow_ledger).process().to_dict()

    assert summary["counts"] == {"REJECTED": 1}
    assert "Hyperwallet has no payment pmt-elsewhere" in summary["failed"][0]["reason"]
    assert workflow_ledger.get_hyperwallet_payment("777") is None
    assert sandbox.mirakl_calls("IV07") == []

    _pay(hw, mirakl, hyperwallet, workflow_ledger, operator_commissions=False)
    (payment,) = hw_admin.payments()
    assert (payment["clientPaymentId"], payment["amount"]) == ("777", "4545.20")
    assert workflow_ledger.get_hyperwallet_payment("777").payment_token == payment["token"]


def test_payment_we_did_not_make_or_of_another_amount_is_rejected(
    hw, sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger
):
    """A real, COMPLETED Hyperwallet payment that is not ours: unknown clientPaymentId, or our
    invoice id but not our amount (our own payment of it was RETURNED)."""
    sandbox.reset(hw.scenario(shops=[hw.shop()], invoices=[hw.invoice(230201)]))
    _pay(hw, mirakl, hyperwallet, workflow_ledger, operator_commissions=False)
    ours = _token(hw_admin, "230201")
    _notify(hw, hw_admin, workflow_ledger, "230201", "RETURNED")
    assert _job(hw, mirakl, workflow_ledger).process().to_dict()["counts"] == {"PROCESSED": 1}
    for cpid, amount in (("555", "10.00"), ("230201", "1.00")):
        other = hyperwallet.create_payment(
            {"clientPaymentId": cpid, "amount": amount, "currency": "EUR",
             "destinationToken": "trm-seller", "programToken": "prg-pay", "purpose": "OTHER"}
        )  # fmt: skip
        hw.store(
            workflow_ledger,
            hw_admin.set_payment_status(other["token"], "COMPLETED")["notification"],
        )

    summary = _job(hw, mirakl, workflow_ledger).process().to_dict()

    assert summary["counts"] == {"REJECTED": 2}
    reasons = " | ".join(f["reason"] for f in summary["failed"])
    assert "clientPaymentId '555') was not made by this connector" in reasons
    assert "is of 1.00 EUR, the ledger sent 454520 minor units" in reasons
    assert workflow_ledger.get_hyperwallet_payment("555") is None
    row = workflow_ledger.get_hyperwallet_payment("230201")
    assert (row.status, row.payment_token, row.confirmed_at) == (S.FAILED, ours, None)
    assert sandbox.mirakl_calls("IV07") == []


def test_current_status_is_applied_and_a_failure_is_emailed_once(
    hw, sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger, mailer, smtp_server
):
    """A genuine COMPLETED processed after the payment was RETURNED: Hyperwallet's current status
    wins (no IV07 for a returned payment), and the RETURNED notification does not e-mail again."""
    sandbox.reset(hw.scenario(shops=[hw.shop()], invoices=[hw.invoice(230201)]))
    _pay(hw, mirakl, hyperwallet, workflow_ledger, operator_commissions=False)
    _notify(hw, hw_admin, workflow_ledger, "230201", "COMPLETED", "2030-01-01T10:00:00.000")
    _notify(hw, hw_admin, workflow_ledger, "230201", "RETURNED", "2030-01-01T11:00:00.000")

    summary = _job(hw, mirakl, workflow_ledger, mailer=mailer).process().to_dict()

    assert summary["counts"] == {"PROCESSED": 2}
    assert {r["reason"] for r in summary["reasons"]} == {
        "payment RETURNED: e-mailed",
        "payment RETURNED: already reported",
    }
    assert sandbox.mirakl_calls("IV07") == []
    assert len(smtp_server[2].messages) == 1
    row = workflow_ledger.get_hyperwallet_payment("230201")
    assert (row.status, row.hw_status, row.confirmed_at) == (S.FAILED, "RETURNED", None)
