"""The settlement job end to end against the sandbox: what moved, on which account, exactly once."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC as _UTC
from datetime import datetime as _dt
from datetime import timedelta

import pytest

from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.ledger.records import (
    AccountMapping,
    PayoutStatus,
    TransferStatus,
    TransferType,
)
from mirakl_connector.operations.first_run import GoLive
from mirakl_connector.stripe.settlement import (
    BACKLOG_NAME,
    CHECKPOINT_KEY,
    SellerSettlement,
    SettlementSettings,
)
from mirakl_connector.stripe.settlement_decisions import SELLER_TO_PLATFORM

#: Tests move money from any date: an explicit go-live instant far in the past.
TEST_GO_LIVE = GoLive(_dt(2000, 1, 1, tzinfo=_UTC))


def inv(invoice_id, *, shop=1, day=1, currency="EUR", paid="12.34", sub="-9.99",
        credits="56.78", debits="-98.76"):  # fmt: skip
    return {
        "id": 700 + invoice_id,
        "invoice_id": invoice_id,
        "shop_id": shop,
        "currency_iso_code": currency,
        "date_created": f"2026-11-{day:02d}T00:00:00+0100",
        "summary": {
            "amount_transferred": float(paid) if "." in paid else int(paid),
            "total_subscription_incl_tax": float(sub) if "." in sub else int(sub),
            "total_other_credits_incl_tax": float(credits) if "." in credits else int(credits),
            "total_other_invoices_incl_tax": float(debits) if "." in debits else int(debits),
        },
    }


def scenario(invoices):
    return {
        "mirakl": {"api_key": "sandbox-mirakl-key", "invoices": list(invoices)},
        "stripe": {
            "api_key": "sk_test_sandbox",
            "platform_account": {"id": "acct_platform"},
            "accounts": [
                {"id": "acct_s1", "charges_enabled": True, "payouts_enabled": True},
                {"id": "acct_s2", "charges_enabled": True, "payouts_enabled": True},
                {"id": "acct_s3", "charges_enabled": True, "payouts_enabled": False},
            ],
            "platform_balance": {"eur": 10_000_000, "jpy": 10_000_000},
            # the sellers' available funds (fee transfers and payouts take from them)
            "balances": {
                a: {"eur": 10_000_000, "jpy": 10_000_000} for a in ("acct_s1", "acct_s2", "acct_s3")
            },
        },
    }


@pytest.fixture
def ledger(workflow_ledger):
    workflow_ledger.upsert_account_mapping(
        AccountMapping(1, "acct_s1", True, True, kyc_status="APPROVED")
    )
    workflow_ledger.upsert_account_mapping(
        AccountMapping(2, "acct_s2", True, True, kyc_status="APPROVED")
    )
    workflow_ledger.upsert_account_mapping(
        AccountMapping(3, "acct_s3", False, True, kyc_status="APPROVED")
    )
    return workflow_ledger


@pytest.fixture
def job(mirakl, stripe_gateway, ledger):
    return SellerSettlement(
        mirakl=mirakl,
        stripe=stripe_gateway,
        ledger=ledger,
        go_live=TEST_GO_LIVE,
        settings=SettlementSettings(),
        run_id="run-1",
    )


def run(job, **params):
    dry_run = params.get("dry_run", False)
    shop_id = params.get("shop_id")
    return (
        job.plan(**params),
        job.transfer(dry_run=dry_run, shop_id=shop_id),
        job.payout(dry_run=dry_run, shop_id=shop_id),
    )


def moved(sandbox):
    """Every transfer and payout, keyed by (invoice id, kind), with the account it lives on."""
    found = {}
    for t in sandbox.transfers():
        key = (t["metadata"]["miraklId"], t["metadata"]["miraklTransferType"])
        assert key not in found, f"{key} moved twice"
        found[key] = (t["amount"], t["currency"], t["sandbox_account"], t["destination"])
    for p in sandbox.payouts():
        key = (p["metadata"]["invoiceId"], "PAYOUT")
        assert key not in found, f"{key} paid out twice"
        found[key] = (p["amount"], p["currency"], p["sandbox_account"], None)
    return found


def test_invoice_settles_in_both_directions_then_pays_out(sandbox, job, ledger):
    sandbox.reset(scenario([inv(1)]))
    planned, transferred, paid = run(job)

    assert planned.counts == {"TRANSFER_PENDING": 3, "PAYOUT_PENDING": 1}
    assert transferred.counts == {"TRANSFER_CREATED": 3}
    assert paid.counts == {"PAYOUT_CREATED": 1}
    assert moved(sandbox) == {
        ("1", "TRANSFER_SUBSCRIPTION"): (999, "eur", "acct_s1", "acct_platform"),
        ("1", "TRANSFER_EXTRA_INVOICES"): (9876, "eur", "acct_s1", "acct_platform"),
        ("1", "TRANSFER_EXTRA_CREDITS"): (5678, "eur", None, "acct_s1"),
        ("1", "PAYOUT"): (1234, "eur", "acct_s1", None),
    }
    # Seller → platform transfers and the payout carried the seller's Stripe-Account header.
    posts = sandbox.stripe_requests(path="/v1/transfers", method="POST")
    headers = sorted((r["stripe_account"] or "platform", r["idempotency_key"]) for r in posts)
    assert headers == [
        ("acct_s1", "mirakl-connector:transfer:TRANSFER_EXTRA_INVOICES:1"),
        ("acct_s1", "mirakl-connector:transfer:TRANSFER_SUBSCRIPTION:1"),
        ("platform", "mirakl-connector:transfer:TRANSFER_EXTRA_CREDITS:1"),
    ]
    (payout_post,) = sandbox.stripe_requests(path="/v1/payouts", method="POST")
    assert payout_post["stripe_account"] == "acct_s1"
    assert payout_post["idempotency_key"] == "mirakl-connector:payout:1"
    assert ledger.get_checkpoint(CHECKPOINT_KEY) == "2026-11-01T00:00:00+0100"


def test_rerun_moves_nothing_more(sandbox, job, ledger):
    sandbox.reset(scenario([inv(1), inv(2, shop=2, day=2)]))
    run(job)
    first = moved(sandbox)
    planned, transferred, paid = run(job)
    assert moved(sandbox) == first
    assert transferred.total == paid.total == 0
    assert len(first) == 8


def test_checkpoint_is_the_newest_date_not_the_last_in_the_response(sandbox, job, ledger):
    # Same instant order as Mirakl's sort, but the newest instant has the earlier-looking string.
    sandbox.reset(scenario([inv(1, day=3), inv(2, day=1)]))
    ledger.set_checkpoint(CHECKPOINT_KEY, "2026-10-01T00:00:00+0100")
    run(job)
    assert ledger.get_checkpoint(CHECKPOINT_KEY) == "2026-11-03T00:00:00+0100"
    sandbox.load({"mirakl": {"invoices": [inv(3, day=4)]}})
    sandbox.clear_mirakl_calls()
    run(job)
    (call,) = sandbox.mirakl_calls("IV01")
    # the same instant, sent in UTC with Z (as the Mirakl SDK sends dates)
    assert call["query"]["start_date"] in ("2026-11-02T23:00:00Z", ["2026-11-02T23:00:00Z"])
    assert ("3", "PAYOUT") in moved(sandbox)


def test_jpy_amounts_reach_stripe_in_yen(sandbox, job):
    sandbox.reset(scenario([inv(1, currency="JPY", paid="1500", sub="-300", credits="0",
                                debits="0")]))  # fmt: skip
    planned, _, _ = run(job)
    assert planned.counts == {"TRANSFER_PENDING": 1, "TRANSFER_ABORTED": 2, "PAYOUT_PENDING": 1}
    assert moved(sandbox) == {
        ("1", "TRANSFER_SUBSCRIPTION"): (300, "jpy", "acct_s1", "acct_platform"),
        ("1", "PAYOUT"): (1500, "jpy", "acct_s1", None),
    }


def test_payouts_disabled_is_on_hold_until_enabled(sandbox, job, ledger):
    sandbox.reset(scenario([inv(1, shop=3)]))
    planned, _, paid = run(job)
    row = ledger.get_payouts(["1"])["1"]
    assert (row.status, row.status_reason) == (
        PayoutStatus.ON_HOLD,
        "Payouts are disabled for shop ID 3",
    )
    assert ("1", "PAYOUT") not in moved(sandbox)
    assert planned.counts["TRANSFER_PENDING"] == 3  # the fees are still collected

    ledger.upsert_account_mapping(AccountMapping(3, "acct_s3", True, True, kyc_status="APPROVED"))
    sandbox.patch_account("acct_s3", payouts_enabled=True)
    run(job)
    assert ledger.get_payouts(["1"])["1"].status is PayoutStatus.CREATED
    assert moved(sandbox)[("1", "PAYOUT")] == (1234, "eur", "acct_s3", None)


def test_stripe_refusal_fails_the_payout_then_a_new_key_succeeds(sandbox, job, ledger):
    sandbox.reset(scenario([inv(1, shop=3)]))
    # The ledger believes payouts are on; Stripe says they are not.
    ledger.upsert_account_mapping(AccountMapping(3, "acct_s3", True, True, kyc_status="APPROVED"))
    _, _, paid = run(job)
    row = ledger.get_payouts(["1"])["1"]
    assert (row.status, row.status_reason) == (PayoutStatus.FAILED, "Payouts disabled")
    assert row.attempted_at is None
    assert paid.failed_total == 1

    sandbox.patch_account("acct_s3", payouts_enabled=True)
    run(job)
    row = ledger.get_payouts(["1"])["1"]
    assert row.status is PayoutStatus.CREATED
    assert row.idempotency_key == "mirakl-connector:payout:1:retry1"
    assert moved(sandbox)[("1", "PAYOUT")][0] == 1234


def test_payout_waits_for_a_failed_invoice_transfer(sandbox, job, ledger):
    sandbox.reset(scenario([inv(1)]))
    sandbox.set_faults({"rules": [{"target": "stripe", "method": "POST", "path": "/v1/transfers",
                                   "times": 1, "action": "error"}]})  # fmt: skip
    job.stripe._retry = replace(job.stripe._retry, max_attempts=1)
    planned, transferred, paid = run(job)
    assert transferred.counts.get("IN_DOUBT") == 1
    assert paid.counts == {"PAYOUT_ON_HOLD": 1}
    assert ("1", "PAYOUT") not in moved(sandbox)

    sandbox.clear_faults()
    run(job)
    assert len(moved(sandbox)) == 4
    assert ledger.get_payouts(["1"])["1"].status is PayoutStatus.CREATED


def test_crash_after_stripe_answered_moves_nothing_twice(sandbox, job, ledger, monkeypatch):
    sandbox.reset(scenario([inv(1)]))
    job.plan()

    def crash(self, row, status, reason):
        raise SystemExit("worker killed after Stripe answered")

    monkeypatch.setattr(SellerSettlement, "_record_transfer", crash)
    monkeypatch.setattr(SellerSettlement, "_record_payout", crash)
    with pytest.raises(SystemExit):
        job.transfer()
    monkeypatch.undo()
    run(job)  # the task is cleared and runs again
    assert len(moved(sandbox)) == 4
    rows = ledger.get_transfers(TransferType.SUBSCRIPTION, ["1"])
    assert rows["1"].status is TransferStatus.CREATED


def test_lost_payout_response_is_replayed_with_the_same_key(sandbox, job, ledger):
    sandbox.reset(scenario([inv(1)]))
    sandbox.set_faults({"rules": [{"target": "stripe", "method": "POST", "path": "/v1/payouts",
                                   "times": 1, "action": "lost_response"}]})  # fmt: skip
    job.stripe._retry = replace(job.stripe._retry, max_attempts=1)
    _, _, paid = run(job)
    assert paid.counts == {"IN_DOUBT": 1}
    _, _, paid = run(job)
    assert paid.counts == {"PAYOUT_CREATED": 1}
    assert len([p for p in sandbox.payouts()]) == 1


def test_a_recovered_payout_that_failed_meanwhile_is_paid_again_not_marked_paid(
    sandbox, job, ledger
):
    """The answer was lost, the payout then failed at the bank (its payout.failed found no
    payout id to apply to): the replay's "pending" must not mark the invoice paid."""
    sandbox.reset(scenario([inv(1)]))
    sandbox.set_faults({"rules": [{"target": "stripe", "method": "POST", "path": "/v1/payouts",
                                   "times": 1, "action": "lost_response"}]})  # fmt: skip
    job.stripe._retry = replace(job.stripe._retry, max_attempts=1)
    assert run(job)[2].counts == {"IN_DOUBT": 1}
    [dead] = sandbox.payouts()
    sandbox.set_payout_status(dead["id"], "failed", failure_code="account_closed",
                              failure_message="The bank account has been closed")  # fmt: skip

    _, _, replayed = run(job)  # the replay finds the dead payout
    row = ledger.get_payouts(["1"])["1"]
    assert replayed.counts == {"PAYOUT_FAILED": 1}
    assert (row.status, row.payout_id) == (PayoutStatus.FAILED, dead["id"])
    assert row.status_reason == "account_closed: The bank account has been closed"

    _, _, again = run(job)  # decided again like after payout.failed: a new payout, a new key
    assert again.counts == {"PAYOUT_CREATED": 1}
    payouts = sorted(sandbox.payouts(), key=lambda p: p["created"])
    assert [p["status"] for p in payouts] == ["failed", "pending"]
    assert ledger.get_payouts(["1"])["1"].payout_id == payouts[1]["id"]


def test_backlog_invoice_missing_from_mirakl_is_reported_not_a_crash(sandbox, job, ledger):
    sandbox.reset(scenario([inv(1, shop=9)]))  # shop 9: no Stripe account yet
    run(job)
    assert ledger.get_payouts(["1"])["1"].status is PayoutStatus.ON_HOLD
    sandbox.reset(scenario([inv(2, day=5)]))  # Mirakl no longer returns invoice 1
    # the full sweep re-reads every waiting row's invoice (between sweeps, nothing that row
    # waits for changed: it is not read again)
    ledger.set_checkpoint(f"{BACKLOG_NAME}_full_sweep", "2000-01-01T00:00:00+00:00")
    planned, _, _ = run(job)
    row = ledger.get_payouts(["1"])["1"]
    assert row.status is PayoutStatus.ON_HOLD
    assert row.status_reason.startswith("Invoice 1 is not returned by Mirakl (IV01 since 2026-11")
    assert {f["id"] for f in planned.failed} >= {"1/PAYOUT", "1/TRANSFER_SUBSCRIPTION"}
    assert ("2", "PAYOUT") in moved(sandbox)


def test_backlog_row_is_settled_once_the_shop_has_an_account(sandbox, job, ledger):
    sandbox.reset(scenario([inv(1, shop=4)]))
    sandbox.load({"stripe": {"accounts": [{"id": "acct_s4", "payouts_enabled": True}],
                  "balances": {"acct_s4": {"eur": 100_000}}}})  # fmt: skip
    run(job)
    assert moved(sandbox) == {}
    ledger.upsert_account_mapping(AccountMapping(4, "acct_s4", True, True, kyc_status="APPROVED"))
    run(job)
    assert len(moved(sandbox)) == 4


def test_shop_id_param_settles_one_shop_without_backlog_or_checkpoint(sandbox, job, ledger):
    sandbox.reset(scenario([inv(1, shop=1), inv(2, shop=2)]))
    planned, transferred, paid = run(job, shop_id="2")
    assert {k[0] for k in moved(sandbox)} == {"2"}
    assert ledger.get_checkpoint(CHECKPOINT_KEY) is None
    (call,) = sandbox.mirakl_calls("IV01")
    assert call["query"]["shop"] in ("2", ["2"])
    with pytest.raises(ConfigurationError, match="shop_id"):
        job.plan(shop_id="two")


def test_dry_run_moves_and_writes_nothing(sandbox, job, ledger):
    sandbox.reset(scenario([inv(1)]))
    planned, _, _ = run(job, dry_run=True)
    assert planned.counts == {"TRANSFER_PENDING": 3, "PAYOUT_PENDING": 1}
    assert moved(sandbox) == {}
    assert ledger.get_payouts(["1"]) == {}
    assert ledger.get_checkpoint(CHECKPOINT_KEY) is None


def test_bad_invoice_fails_with_a_reason_and_the_batch_goes_on(sandbox, job, ledger):
    bad = inv(1)
    bad["currency_iso_code"] = "XXY"
    sandbox.reset(scenario([bad, inv(2, day=2)]))
    planned, _, _ = run(job)
    assert planned.counts["PAYOUT_FAILED"] == 1
    assert ledger.get_payouts(["1"])["1"].status_reason.startswith("invalid data: unknown currency")
    assert ("2", "PAYOUT") in moved(sandbox)


def test_settings_refuse_unknown_keys():
    with pytest.raises(ConfigurationError, match="unknown seller_settlement setting"):
        SettlementSettings.from_mapping({"payout": True})


# -- payout.failed: the payout is created again by the next run (reference 4.1.1) ---------------

WEBHOOK_SECRET = "whsec_settlement_test"


def _deliver_payout_failed(sandbox, ledger, stripe_gateway, payout_id):
    """The bank returns the payout: Stripe's webhook reaches the endpoint and is applied."""
    import json

    from fastapi.testclient import TestClient

    from mirakl_connector.core.registry import Resources
    from mirakl_connector.stripe.events import StripeEvents, StripeEventsSettings
    from mirakl_connector.stripe.onboarding import OnboardingSettings
    from mirakl_connector.webhooks.app import WebhookAppConfig, create_app
    from mirakl_connector.webhooks.signature import stripe_signature_header

    sandbox.set_payout_status(
        payout_id,
        "failed",
        failure_code="account_closed",
        failure_message="The bank account has been closed",
    )
    (event,) = [e for e in sandbox.events() if e["type"] == "payout.failed"]
    app = create_app(
        WebhookAppConfig(ledger=lambda: ledger, stripe_secrets=lambda: [WEBHOOK_SECRET])
    )
    body = json.dumps(event).encode()
    signature = stripe_signature_header(body, WEBHOOK_SECRET)
    reply = TestClient(app).post(
        "/webhooks/stripe", content=body, headers={"Stripe-Signature": signature}
    )
    assert reply.status_code == 200, reply.text
    events = StripeEvents(
        resources=Resources(
            mirakl=lambda: None, stripe=lambda: stripe_gateway, ledger=lambda: ledger
        ),
        settings=StripeEventsSettings(),
        onboarding=OnboardingSettings(),
    )
    assert events.process().counts == {"PROCESSED": 1}


def test_payout_failed_at_the_bank_is_created_again_by_the_next_run(
    sandbox, job, ledger, stripe_gateway
):
    sandbox.reset(scenario([inv(1)]))
    run(job)
    first = ledger.get_payouts(["1"])["1"]
    assert first.status is PayoutStatus.CREATED

    _deliver_payout_failed(sandbox, ledger, stripe_gateway, first.payout_id)
    failed = ledger.get_payouts(["1"])["1"]
    assert (failed.status, failed.payout_id) == (PayoutStatus.FAILED, first.payout_id)
    assert failed.status_reason == "account_closed: The bank account has been closed"

    # A dry run says what would happen and changes nothing.
    planned, _, paid = run(job, dry_run=True)
    assert planned.counts == {"PAYOUT_PENDING": 1}
    assert ledger.get_payouts(["1"])["1"] == failed
    assert len(sandbox.payouts()) == 1

    planned, transferred, paid = run(job)
    assert planned.counts == {"PAYOUT_PENDING": 1}  # only the payout: transfers are done
    assert transferred.total == 0
    assert paid.counts == {"PAYOUT_CREATED": 1}
    payouts = sandbox.payouts()
    assert len(payouts) == 2  # exactly one new payout
    (new,) = [p for p in payouts if p["id"] != first.payout_id]
    assert (new["amount"], new["currency"], new["sandbox_account"]) == (1234, "eur", "acct_s1")
    row = ledger.get_payouts(["1"])["1"]
    assert (row.status, row.payout_id) == (PayoutStatus.CREATED, new["id"])
    assert row.idempotency_key == "mirakl-connector:payout:1:retry1"
    posts = sandbox.stripe_requests(path="/v1/payouts", method="POST")
    assert [p["idempotency_key"] for p in posts] == [
        "mirakl-connector:payout:1",
        "mirakl-connector:payout:1:retry1",
    ]
    reasons = [e.reason or "" for e in ledger.events_for("payout", row.id)]
    assert any(
        r.startswith(f"payout {first.payout_id} failed at the bank: account_closed")
        for r in reasons
    )

    run(job)  # and a rerun creates nothing more
    assert len(sandbox.payouts()) == 2


def test_sharded_steps_move_every_transfer_and_payout_exactly_once(sandbox, job, ledger):
    """Three mapped tasks per step: disjoint rows, together every row, a cleared shard no more."""
    sandbox.reset(scenario([inv(n, shop=1 + n % 2, day=1 + n % 5) for n in range(1, 13)]))
    planned = job.plan()
    assert planned.counts == {"TRANSFER_PENDING": 36, "PAYOUT_PENDING": 12}

    transfers = [job.transfer(shard=i, shards=3) for i in range(3)]
    assert [s.notes for s in transfers] == [[f"shard {i} of 3"] for i in range(3)]
    assert sum(s.counts["TRANSFER_CREATED"] for s in transfers) == 36
    assert all(s.counts["TRANSFER_CREATED"] > 0 and s.failed_total == 0 for s in transfers)
    payouts = [job.payout(shard=i, shards=3) for i in range(3)]
    assert sum(s.counts["PAYOUT_CREATED"] for s in payouts) == 12
    assert all(s.counts["PAYOUT_CREATED"] > 0 for s in payouts)

    found = moved(sandbox)  # fails on any object moved twice
    assert len(found) == 48
    assert found[("7", "PAYOUT")] == (1234, "eur", "acct_s2", None)
    # A cleared shard task, or the unsharded step, finds nothing left to send.
    assert job.transfer(shard=1, shards=3).total == 0
    assert job.payout(shard=2, shards=3).total == 0 and job.payout().total == 0
    assert len(sandbox.transfers()) == 36 and len(sandbox.payouts()) == 12


def test_bad_shard_setting_is_refused_by_name():
    for bad in (0, 65, "4", True):
        with pytest.raises(ConfigurationError, match="seller_settlement.execute_shards"):
            SettlementSettings.from_mapping({"execute_shards": bad})
    assert SettlementSettings.from_mapping({"execute_shards": 8}).execute_shards == 8


def test_a_payout_lookup_never_takes_a_failed_payout_for_the_invoices(sandbox, job, ledger):
    """In doubt past the replay window, the payout is looked up by invoice id: a payout of the
    same invoice that failed at the bank is not "the payout already made"; a new one is."""
    sandbox.reset(scenario([inv(1)]))
    job.plan()
    job.transfer()
    row = ledger.get_payouts(["1"])["1"]
    dead = job.stripe.create_payout(
        account="acct_s1", amount=row.amount, currency=row.currency,
        idempotency_key="old-generation", metadata={"invoiceId": "1", "miraklShopId": "1"},
    )  # fmt: skip
    sandbox.set_payout_status(dead.id, "failed")
    marked = ledger.mark_payout_attempt(row, "mirakl-connector:payout:1")
    ledger.save_payouts([replace(marked, attempted_at=marked.attempted_at - timedelta(days=2))])

    paid = job.payout()

    assert paid.counts == {"PAYOUT_CREATED": 1}
    saved = ledger.get_payouts(["1"])["1"]
    assert saved.payout_id not in (None, dead.id)
    assert sorted(p["status"] for p in sandbox.payouts()) == ["failed", "pending"]


def test_first_run_needs_a_go_live_instant_and_counts_what_lies_before_it(
    sandbox, mirakl, stripe_gateway, ledger
):
    """No checkpoint: without go_live nothing is read or paid; with it, older invoices are
    counted BEFORE_GO_LIVE (with their amount) and never recorded or paid."""
    from mirakl_connector.core.errors import ConfigurationError

    sandbox.reset(scenario([inv(1, day=1), inv(2, day=10)]))

    def job(go_live=None):
        return SellerSettlement(
            mirakl=mirakl, stripe=stripe_gateway, ledger=ledger,
            settings=SettlementSettings(), go_live=GoLive(go_live),
        )  # fmt: skip

    with pytest.raises(ConfigurationError, match="no checkpoint 'seller_settlement_checkpoint'"):
        job().plan()
    assert sandbox.mirakl_calls("IV01") == []
    assert ledger.get_payouts(["1", "2"]) == {}

    live = job(_dt(2026, 11, 5, tzinfo=_UTC))
    plan = live.plan()
    assert plan.counts["BEFORE_GO_LIVE"] == 1
    assert plan.to_dict()["amounts"]["BEFORE_GO_LIVE"] == {"EUR": "12.34"}
    live.transfer()
    live.payout()
    assert set(ledger.get_payouts(["1", "2"])) == {"2"}
    assert [p["metadata"]["invoiceId"] for p in sandbox.payouts()] == ["2"]


def test_bad_invoices_fail_alone_and_the_others_settle(sandbox, job, ledger):
    """Issue 11 point 3, on the invoice parser the settlement shares: each bad invoice fails
    with its reason, the good ones move, and the checkpoint is not thrown to year 2999."""
    bad = {
        11: ({"shop_id": "１"}, "shop_id is not numeric: '１'"),
        12: ({"shop_id": 2**63}, "shop_id is out of range"),
        13: ({"summary": {"amount_transferred": 10**17}}, "summary.amount_transferred is out of"),
        14: ({"date_created": "2999-01-01T00:00:00Z"}, "date_created is in the future"),
        15: ({"date_created": "9999-12-31T23:59:59-05:00"}, "date_created is out of range"),
    }
    invoices = [inv(1, day=2), *({**inv(i, day=3), **f} for i, (f, _) in bad.items())]
    invoices.append(inv(2, day=4))
    sandbox.reset(scenario(invoices))

    planned, transferred, paid = run(job)

    assert {key[0] for key in moved(sandbox)} == {"1", "2"}
    assert paid.counts == {"PAYOUT_CREATED": 2}
    failed = {f["id"]: f["reason"] for f in planned.to_dict()["failed"]}
    kinds = ("TRANSFER_SUBSCRIPTION", "TRANSFER_EXTRA_CREDITS", "TRANSFER_EXTRA_INVOICES", "PAYOUT")
    assert set(failed) == {f"{i}/{kind}" for i in bad for kind in kinds}
    for invoice_id, (_, reason) in bad.items():
        assert reason in failed[f"{invoice_id}/PAYOUT"], invoice_id
    assert ledger.get_checkpoint(CHECKPOINT_KEY) == "2026-11-04T00:00:00+0100"


def test_fee_transfers_the_seller_cannot_cover_wait_for_funds_then_go_once(sandbox, job, ledger):
    """Seller → platform fees need the seller's *available* funds (Stripe: 400
    balance_insufficient): held with the reason, not FAILED, and sent once funds arrive."""
    short = scenario([inv(1, credits="0")])
    short["stripe"]["balances"] = {"acct_s1": {"eur": 500}}
    sandbox.reset(short)
    planned, transferred, paid = run(job)
    assert transferred.counts == {"TRANSFER_ON_HOLD": 2} and transferred.failed == []
    rows = {t: ledger.get_transfers(t, ["1"])["1"] for t in SELLER_TO_PLATFORM}
    assert rows[TransferType.SUBSCRIPTION].status_reason == (
        "Waiting for funds: 9.99 EUR to transfer, 5.00 EUR available on acct_s1 "
        "(balance_insufficient); no pending funds cover it yet"
    )
    assert paid.counts == {"PAYOUT_ON_HOLD": 1}
    assert moved(sandbox) == {}

    sandbox.load({"stripe": {"balances": {"acct_s1": {"eur": 20_000}}}})
    for _ in range(2):  # paid once; the rerun moves nothing more
        run(job)
    assert moved(sandbox) == {
        ("1", "TRANSFER_SUBSCRIPTION"): (999, "eur", "acct_s1", "acct_platform"),
        ("1", "TRANSFER_EXTRA_INVOICES"): (9876, "eur", "acct_s1", "acct_platform"),
        ("1", "PAYOUT"): (1234, "eur", "acct_s1", None),
    }
    keys = sorted(r["idempotency_key"] for r in sandbox.stripe_requests("/v1/transfers", "POST"))
    assert keys == [
        "mirakl-connector:transfer:TRANSFER_EXTRA_INVOICES:1",
        "mirakl-connector:transfer:TRANSFER_EXTRA_INVOICES:1:retry1",
        "mirakl-connector:transfer:TRANSFER_SUBSCRIPTION:1",
        "mirakl-connector:transfer:TRANSFER_SUBSCRIPTION:1:retry1",
    ]
