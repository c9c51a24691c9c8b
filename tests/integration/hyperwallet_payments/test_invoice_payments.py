"""Invoice payments against the sandbox: IV01/SBC11 → Hyperwallet payments, never twice."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC as _UTC
from datetime import datetime as _dt
from datetime import timedelta

import pytest

from mirakl_connector.hyperwallet.invoice_payments import (
    WINDOW_KEY,
    WORKFLOW,
    HyperwalletInvoicePayments,
    HyperwalletPaymentSettings,
)
from mirakl_connector.hyperwallet.programs import HyperwalletSettings
from mirakl_connector.ledger import HyperwalletPaymentStatus, Ledger
from mirakl_connector.operations.first_run import GoLive

#: Tests move money from any date: an explicit go-live instant far in the past.
TEST_GO_LIVE = GoLive(_dt(2000, 1, 1, tzinfo=_UTC))

S = HyperwalletPaymentStatus
_CONFIG = {
    "hyperwallet": {
        "programs": [
            {
                "name": "EUROPE",
                "user_token": "prg-users",
                "payment_token": "prg-pay",
                "bank_account_token": "trm-operator",
            },
            {"name": "OTHER", "ignored": True},
        ]
    }
}


def _job(mirakl, hyperwallet, ledger, *, mailer=None, clock=None, **settings):

    return HyperwalletInvoicePayments(
        mirakl=mirakl,
        hyperwallet=hyperwallet,
        ledger=ledger,
        go_live=TEST_GO_LIVE,
        settings=HyperwalletSettings.from_config(_CONFIG),
        payments=HyperwalletPaymentSettings.from_mapping(settings),
        mailer=mailer,
        email_to=["payments-ops@example.com"],
        run_id="test-run",
        now=clock,
    )


def _payments(hw_admin):
    return sorted(hw_admin.payments(), key=lambda p: p["clientPaymentId"])


def test_pays_seller_and_operator_commission_then_never_again(
    hw, sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger: Ledger
):
    sandbox.reset(hw.scenario(shops=[hw.shop()], invoices=[hw.invoice(230201)]))
    job = _job(mirakl, hyperwallet, workflow_ledger)

    first = job.pay().to_dict()

    assert first["counts"] == {"PAID": 2}
    assert first["amounts"] == {"PAID": {"EUR": "5500.89"}}
    seller, fee = _payments(hw_admin)
    assert {
        k: seller[k] for k in ("clientPaymentId", "amount", "currency", "destinationToken")
    } == {
        "clientPaymentId": "230201",
        "amount": "4545.20",
        "currency": "EUR",
        "destinationToken": "trm-seller",
    }
    assert (seller["programToken"], seller["purpose"]) == ("prg-pay", "OTHER")
    assert (fee["clientPaymentId"], fee["amount"], fee["destinationToken"]) == (
        "230201-operatorFee",
        "955.69",
        "trm-operator",
    )
    row = workflow_ledger.get_hyperwallet_payment("230201")
    assert (row.status, row.payment_token, row.amount, row.attempts) == (
        S.CREATED,
        seller["token"],
        454520,
        1,
    )
    assert workflow_ledger.get_checkpoint(WINDOW_KEY) is not None

    # The next scheduled run re-reads the invoice (overlapping window), a manual one re-reads
    # everything: nothing is paid again.
    again = job.pay(since=job._now() - timedelta(days=10)).to_dict()
    assert again["counts"] == {"ALREADY_PAID": 2}
    assert len(hw_admin.payments()) == 2


def test_a_lost_ledger_still_never_pays_twice(
    hw, sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger, tmp_path
):
    sandbox.reset(hw.scenario(shops=[hw.shop()], invoices=[hw.invoice(230201)]))
    _job(mirakl, hyperwallet, workflow_ledger).pay()

    with Ledger(Ledger.default_sqlite_url(tmp_path / "fresh")) as fresh:
        summary = _job(mirakl, hyperwallet, fresh).pay().to_dict()
        adopted = fresh.get_hyperwallet_payment("230201")

    assert summary["counts"] == {"ALREADY_PAID": 2}
    assert len(hw_admin.payments()) == 2
    assert adopted.payment_token == _payments(hw_admin)[0]["token"]


def test_lost_answer_is_in_doubt_then_found_by_clientpaymentid(
    hw, sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger
):
    sandbox.reset(hw.scenario(shops=[hw.shop()], invoices=[hw.invoice(230201)]))
    sandbox.set_faults(
        {
            "rules": [
                {
                    "target": "hyperwallet",
                    "method": "POST",
                    "path": "/rest/v4/payments",
                    "times": 1,
                    "action": "lost_response",
                }
            ]
        }
    )
    job = _job(mirakl, hyperwallet, workflow_ledger, operator_commissions=False)

    first = job.pay().to_dict()
    assert first["counts"] == {"IN_DOUBT": 1}
    row = workflow_ledger.get_hyperwallet_payment("230201")
    assert row.in_doubt and row.status == S.PENDING
    assert len(hw_admin.payments()) == 1  # Hyperwallet did create it

    second = job.retry().to_dict()
    assert second["counts"] == {"ALREADY_PAID": 1}
    assert len(hw_admin.payments()) == 1
    row = workflow_ledger.get_hyperwallet_payment("230201")
    assert (row.status, row.in_doubt) == (S.CREATED, False)
    assert workflow_ledger.pending_items(WORKFLOW) == []


def test_zero_commission_skipped_negative_refused_and_seller_still_paid(
    hw, sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger
):
    zero = hw.invoice(1, summary={"amount_transferred": 10, "amount_transferred_to_operator": 0})
    negative = hw.invoice(
        2, summary={"amount_transferred": 20, "amount_transferred_to_operator": -3.5}
    )
    sandbox.reset(hw.scenario(shops=[hw.shop()], invoices=[zero, negative]))

    summary = _job(mirakl, hyperwallet, workflow_ledger).pay().to_dict()

    assert summary["counts"] == {"PAID": 2, "REFUSED": 1}
    assert [p["clientPaymentId"] for p in _payments(hw_admin)] == ["1", "2"]
    refused = workflow_ledger.get_hyperwallet_payment("2-operatorFee")
    assert refused.status == S.ABORTED
    assert "negative (-3.50 EUR)" in refused.status_reason
    assert summary["failed"] == [{"id": "2-operatorFee", "reason": refused.status_reason}]
    assert workflow_ledger.get_hyperwallet_payment("1-operatorFee") is None
    # A permanent refusal is not retried.
    assert workflow_ledger.pending_items(WORKFLOW) == []


def test_missing_bank_token_waits_then_uses_the_token_corrected_in_mirakl(
    hw, sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger, clock
):
    sandbox.reset(hw.scenario(shops=[hw.shop(bank_token=None)], invoices=[hw.invoice(230201)]))
    job = _job(mirakl, hyperwallet, workflow_ledger, clock=clock, operator_commissions=False)

    held = job.pay().to_dict()
    assert held["counts"] == {"ON_HOLD": 1}
    assert "no hw-bankaccount-token yet" in held["failed"][0]["reason"]
    row = workflow_ledger.get_hyperwallet_payment("230201")
    assert row.status == S.ON_HOLD and "hw-bankaccount-token" in row.status_reason
    assert [i.item_id for i in workflow_ledger.pending_items(WORKFLOW)] == ["230201"]

    mirakl.update_shops(
        [
            {
                "shop_id": 2001,
                "shop_additional_fields": [
                    {"code": "hw-bankaccount-token", "value": "trm-seller-new"}
                ],
            }
        ]
    )
    paid = job.retry().to_dict()

    assert paid["counts"] == {"PAID": 1}
    assert [p["destinationToken"] for p in hw_admin.payments()] == ["trm-seller-new"]
    assert workflow_ledger.pending_items(WORKFLOW) == []


def test_ignored_program_and_unpayable_documents_are_skipped(
    hw, sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger
):
    sandbox.reset(
        hw.scenario(
            shops=[hw.shop(), hw.shop(3001, program="OTHER")],
            invoices=[
                hw.invoice(1, shop_id=3001),
                hw.invoice(2, payment_status="PAID"),
                hw.invoice(3, type="MANUAL_CREDIT"),
            ],
        )
    )

    summary = _job(mirakl, hyperwallet, workflow_ledger).pay().to_dict()

    # The paid invoice and the credit note are filtered out by Mirakl (IV01 filters as the
    # Hyperwallet connector sends them); the ignored program's invoice is skipped here.
    assert summary["counts"] == {"SKIPPED": 1}
    assert {r["reason"] for r in summary["reasons"]} == {"program OTHER is ignored"}
    (call,) = sandbox.mirakl_calls("IV01")
    assert {k: call["query"][k] for k in ("payment_status", "states", "type")} == {
        "payment_status": "PENDING",
        "states": "COMPLETE",
        "type": "AUTO_INVOICE",
    }
    assert hw_admin.payments() == []
    assert workflow_ledger.pending_items(WORKFLOW) == []


def test_dry_run_decides_and_writes_nothing(
    hw, sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger
):
    sandbox.reset(hw.scenario(shops=[hw.shop()], invoices=[hw.invoice(230201)]))

    summary = _job(mirakl, hyperwallet, workflow_ledger).pay(dry_run=True).to_dict()

    assert summary["counts"] == {"WOULD_PAY": 2}
    assert summary["items"][0] == {
        "id": "230201",
        "status": "WOULD_PAY",
        "reason": "would pay to trm-seller",
        "amount": "4545.20 EUR",
    }
    assert hw_admin.payments() == []
    assert workflow_ledger.get_hyperwallet_payment("230201") is None
    assert workflow_ledger.get_checkpoint(WINDOW_KEY) is None


def test_five_retries_with_growing_delay_then_one_email(
    hw, sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger, clock, mailer, smtp_server
):
    # Hyperwallet refuses the destination: every attempt fails.
    sandbox.reset(
        hw.scenario(shops=[hw.shop(bank_token="trm-unknown")], invoices=[hw.invoice(230201)])
    )
    job = _job(
        mirakl, hyperwallet, workflow_ledger, clock=clock, mailer=mailer, operator_commissions=False
    )
    _, _, inbox = smtp_server

    first = job.pay().to_dict()
    assert first["counts"] == {"FAILED": 1}
    assert "valid destinationToken" in first["failed"][0]["reason"]

    # The first retry is due at once; the n-th one n × 30 minutes after the previous failure.
    statuses = [next(iter(job.retry().to_dict()["counts"]))]
    for retry in range(2, 6):
        (item,) = workflow_ledger.pending_items(WORKFLOW)
        due = item.last_failed_at + timedelta(minutes=30 * (retry - 1))
        clock.now = due - timedelta(minutes=1)
        assert job.retry().to_dict()["total"] == 0, f"retry {retry} ran too early"
        clock.now = due + timedelta(seconds=1)
        statuses.append(next(iter(job.retry().to_dict()["counts"])))
    assert statuses == ["RETRY_PENDING"] * 4 + ["RETRIES_EXHAUSTED"]
    assert len(inbox.messages) == 1
    assert (
        inbox.messages[0]["Subject"] == "Max retry attempts reached when processing item [230201]"
    )
    assert "valid destinationToken" in inbox.messages[0].get_payload()

    # Exhausted: no longer retried by itself, even much later, and no second e-mail.
    clock.advance(days=2)
    assert job.retry().to_dict()["total"] == 0
    (item,) = workflow_ledger.pending_items(WORKFLOW)
    assert item.attempts == 6  # the first failure and five retries
    assert len(hw_admin.payments()) == 0
    assert len(inbox.messages) == 1


def test_a_payment_reported_failed_is_paid_again_when_the_invoice_is_named(
    hw, sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger
):
    sandbox.reset(hw.scenario(shops=[hw.shop()], invoices=[hw.invoice(230201)]))
    job = _job(mirakl, hyperwallet, workflow_ledger, operator_commissions=False)
    job.pay()
    (first,) = hw_admin.payments()
    hw_admin.set_payment_status(first["token"], "RETURNED")
    row = workflow_ledger.get_hyperwallet_payment("230201")
    workflow_ledger.save_hyperwallet_payments([replace(row, status=S.FAILED, hw_status="RETURNED")])

    summary = job.pay(invoice_ids=["230201"]).to_dict()

    assert summary["counts"] == {"PAID": 1}
    tokens = [p["token"] for p in hw_admin.payments()]
    assert len(tokens) == 2
    row = workflow_ledger.get_hyperwallet_payment("230201")
    assert row.payment_token == tokens[1] != first["token"]
    assert row.status_reason == f"replaces failed {first['token']}"


def test_sbc11_billing_cycles_are_paid_by_their_id(
    hw, sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger
):
    cycle_id = "98665be1-ce69-4ab6-8d93-b8dfd3e67404"
    created = hw.invoice(1)["date_created"]
    cycle = {
        "id": cycle_id,
        "date_created": created,
        "currency_iso_code": "EUR",
        "amount_transferred_to_seller": 100.5,
        "amount_transferred_to_operator": 1.25,
        "pay_out": {"state": "TO_PAY"},
        "shop": {"shop_id": 2001},
    }
    sandbox.reset(hw.scenario(shops=[hw.shop()], billing_cycles=[cycle]))

    summary = _job(mirakl, hyperwallet, workflow_ledger, invoice_source="SBC11").pay().to_dict()

    assert summary["counts"] == {"PAID": 2}
    assert [p["clientPaymentId"] for p in _payments(hw_admin)] == [
        cycle_id,
        f"{cycle_id}-operatorFee",
    ]
    assert workflow_ledger.get_hyperwallet_payment(cycle_id).invoice_source == "SBC11"

    # A run naming the cycle (and a retry) reads SBC11 as the Hyperwallet connector does:
    # start_date and pay_out_state, never an ``id`` filter; the cycle is picked out here.
    sandbox.clear_mirakl_calls()
    again = _job(mirakl, hyperwallet, workflow_ledger, invoice_source="SBC11")
    named = again.pay(invoice_ids=[cycle_id]).to_dict()
    assert named["counts"] == {"ALREADY_PAID": 2}
    calls = sandbox.mirakl_calls("SBC11")
    assert calls and all("id" not in c["query"] for c in calls)
    assert len(hw_admin.payments()) == 2


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"invoice_source": "IV99"}, "invoice_source must be IV01 or SBC11"),
        ({"client_payment_id": "uuid"}, "client_payment_id must be one of invoice_id"),
        ({"operator_commissions": "yes"}, "operator_commissions must be true or false"),
        ({"colour": "blue"}, "unknown hyperwallet_payments setting"),
    ],
)
def test_settings_are_checked(settings, message):
    from mirakl_connector.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=message):
        HyperwalletPaymentSettings.from_mapping(settings)


def test_first_run_needs_go_live_and_a_shop_stripe_pays_is_never_paid_here(
    hw, sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger: Ledger
):
    """No window checkpoint and no go_live: nothing is read or paid. With go_live, an invoice
    older than it is counted, not paid; a shop the operator pinned to Stripe is refused."""
    from datetime import UTC, datetime, timedelta

    from mirakl_connector.core.errors import ConfigurationError
    from mirakl_connector.operations.first_run import GoLive
    from mirakl_connector.operations.payout_provider import PayoutProviderRule

    now = datetime.now(UTC)
    old = hw.invoice(1, date_created=hw.iso(now - timedelta(days=5)))
    sandbox.reset(
        hw.scenario(
            shops=[hw.shop(), hw.shop(2002)],
            invoices=[old, hw.invoice(2), hw.invoice(3, shop_id=2002)],
        )
    )

    def job(go_live=None):
        return HyperwalletInvoicePayments(
            mirakl=mirakl, hyperwallet=hyperwallet, ledger=workflow_ledger,
            settings=HyperwalletSettings.from_config(_CONFIG),
            payments=HyperwalletPaymentSettings(), go_live=GoLive(go_live),
            providers=PayoutProviderRule.from_config(
                {**_CONFIG, "payout_provider": {"shops": {"2002": "stripe"}}}),
        )  # fmt: skip

    with pytest.raises(ConfigurationError, match="no checkpoint 'hyperwallet_invoice_payments"):
        job().pay()
    assert hw_admin.payments() == []

    summary = job(now - timedelta(days=2)).pay().to_dict()

    assert summary["counts"] == {"BEFORE_GO_LIVE": 1, "PAID": 2, "NOT_HYPERWALLET": 1}
    assert sorted(p["clientPaymentId"] for p in hw_admin.payments()) == ["2", "2-operatorFee"]
    assert "Shop 2002 is paid by Stripe, not Hyperwallet (payout_provider.shops.2002)" in str(
        summary["reasons"]
    )
