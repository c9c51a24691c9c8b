"""Issue 15 for the seller settlement: a run costs what changed, not what waits.

150 invoices of five shops with no Stripe account yet: 150 invoices waiting after the first
run (their transfers and payout ON_HOLD). A scheduled run between two full sweeps re-decides a
waiting row only when what its reason names changed in the ledger (the shop's account mapping,
the invoice's transfers, funds: the date they were expected, a transfer to the account), and
reads only those invoices from Mirakl (IV01 by ``invoice_id``). Calls are counted at the sandbox.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from mirakl_connector.ledger.records import (
    AccountMapping,
    PayoutRecord,
    PayoutStatus,
    TransferRecord,
    TransferStatus,
    TransferType,
)
from mirakl_connector.stripe.settlement import BACKLOG_NAME, SellerSettlement, SettlementSettings
from mirakl_connector.stripe.settlement_decisions import funds_hold_reason

from .test_settlement import TEST_GO_LIVE, inv, moved, run, scenario

SHOPS = (10, 11, 12, 13, 14)
INVOICES = range(1, 151)  # invoice n belongs to shop SHOPS[(n - 1) % 5]; 30 each
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)
BIG = {"eur": 10_000_000}
#: every row waits for its shop's Stripe account, but shop 12's zero extra credits (aborted)
FIRST_COUNTS = {"TRANSFER_ON_HOLD": 3 * 150 - 30, "TRANSFER_ABORTED": 30, "PAYOUT_ON_HOLD": 150}


def _invoice(n: int) -> dict:
    shop = SHOPS[(n - 1) % len(SHOPS)]
    # shop 12 gets no extra credits: its fee transfers wait for its own funds alone
    raw = inv(n, shop=shop, credits="0" if shop == 12 else "56.78")
    raw["date_created"] = f"2026-11-01T{n // 60:02d}:{n % 60:02d}:00+0100"  # one per minute
    return raw


def _invoices_of(shop: int) -> set[str]:
    return {str(n) for n in INVOICES if SHOPS[(n - 1) % len(SHOPS)] == shop}


def _age(ledger) -> None:
    """Say that the ledger rows changed long before the previous run (as in a deployment,
    where a change is seen by the runs of the next 10 minutes only)."""
    with ledger.engine.begin() as conn:
        for table in ("account_mappings", "transfers", "payouts"):
            conn.execute(text(f"UPDATE {table} SET updated_at = :at"), {"at": LONG_AGO})


def _assert_decided(summary, shop: int | None, rows: int) -> None:
    """The plan decided ``rows`` rows, all of ``shop``'s invoices, plus the 4 waiting rows of
    the newest invoice (shop 14, never mapped here): IV01's creation window starts at the
    checkpoint, inclusive, so the newest invoice is read again every run."""
    assert summary.total == rows + 4
    listed = {i.split("/")[0] for group in summary.ids.values() for i in group}
    assert listed <= (_invoices_of(shop) if shop else set()) | {str(max(INVOICES))}


def _map(ledger, shop: int, **changes) -> None:
    values = {"payouts_enabled": True, "charges_enabled": True, "kyc_status": "APPROVED"}
    values.update(changes)
    ledger.upsert_account_mapping(AccountMapping(shop, f"acct_s{shop}", **values))


@pytest.fixture
def ledger(workflow_ledger):
    return workflow_ledger


@pytest.fixture
def job(mirakl, stripe_gateway, ledger):
    return SellerSettlement(
        mirakl=mirakl, stripe=stripe_gateway, ledger=ledger, go_live=TEST_GO_LIVE,
        settings=SettlementSettings(), run_id="run-1",
    )  # fmt: skip


@pytest.fixture
def backlog(sandbox, job, ledger):
    world = scenario([_invoice(n) for n in INVOICES])
    world["stripe"]["accounts"] += [
        {"id": f"acct_s{s}", "charges_enabled": True, "payouts_enabled": True} for s in SHOPS
    ]
    world["stripe"]["balances"].update({f"acct_s{s}": dict(BIG) for s in SHOPS})
    world["stripe"]["balances"]["acct_s12"] = {"eur": 0}  # its fees wait for funds
    sandbox.reset(world)
    planned, _, _ = run(job)
    assert planned.counts == FIRST_COUNTS
    assert ledger.get_checkpoint(f"{BACKLOG_NAME}_full_sweep")  # the first run swept
    _age(ledger)
    sandbox.clear_mirakl_calls()
    sandbox.clear_stripe_requests()
    return ledger


def test_an_idle_run_reads_one_iv01_page_and_no_stripe(backlog, sandbox, job):
    planned, transferred, paid = run(job)

    _assert_decided(planned, None, 0)
    assert transferred.total == 0 and paid.total == 0
    assert sandbox.stripe_requests() == []
    [iv01] = sandbox.mirakl_calls()  # the invoices created since the checkpoint
    assert iv01["endpoint"] == "IV01" and "invoice_id" not in iv01["query"]
    assert any("changes since" in n for n in planned.notes)

    backlog.set_checkpoint(f"{BACKLOG_NAME}_full_sweep", "2000-01-01T00:00:00+00:00")
    swept, _, _ = run(job)  # the daily sweep re-decides every waiting row
    assert swept.counts == {"TRANSFER_ON_HOLD": 3 * 150 - 30, "PAYOUT_ON_HOLD": 150}


def test_a_shop_mapped_by_onboarding_is_paid_on_the_next_run(backlog, sandbox, job):
    _map(backlog, 10)

    planned, transferred, paid = run(job)

    _assert_decided(planned, 10, 4 * 30)
    assert {key[0] for key in moved(sandbox)} == _invoices_of(10)
    assert transferred.counts == {"TRANSFER_CREATED": 3 * 30}
    assert paid.counts == {"PAYOUT_CREATED": 30}
    by_id = [c for c in sandbox.mirakl_calls("IV01") if "invoice_id" in c["query"]]
    assert len(by_id) == 1  # 30 invoices: one call by id
    assert sorted(by_id[0]["query"]["invoice_id"].split(",")) == sorted(_invoices_of(10))
    assert len(sandbox.mirakl_calls()) <= 2 + len(_invoices_of(10)) // 100

    sandbox.clear_stripe_requests()
    run(job)  # the overlap sees the change again: nothing moves twice
    assert sandbox.stripe_requests(method="POST") == []


def test_money_to_a_seller_waits_for_its_kyc_then_goes_once_it_clears(backlog, sandbox, job):
    _map(backlog, 11, kyc_status=None)
    planned, _, _ = run(job)
    _assert_decided(planned, 11, 4 * 30)
    kinds = {key[1] for key in moved(sandbox)}
    assert kinds == {"TRANSFER_SUBSCRIPTION", "TRANSFER_EXTRA_INVOICES"}  # fees only
    _age(backlog)
    sandbox.clear_stripe_requests()
    _, _, idle = run(job)
    assert sandbox.stripe_requests() == [] and idle.total == 0

    _map(backlog, 11)  # the KYC monitor or account.updated records APPROVED
    planned, _, paid = run(job)

    _assert_decided(planned, 11, 2 * 30)  # the extra credits and the payouts left
    assert paid.counts == {"PAYOUT_CREATED": 30}
    assert {key[1] for key in moved(sandbox)} == kinds | {"TRANSFER_EXTRA_CREDITS", "PAYOUT"}


def test_fees_waiting_for_funds_go_when_a_transfer_credits_the_account(
    backlog, sandbox, job, stripe_gateway
):
    _map(backlog, 12)
    run(job)
    held = backlog.get_transfers(TransferType.SUBSCRIPTION, sorted(_invoices_of(12)))
    assert {r.status for r in held.values()} == {TransferStatus.ON_HOLD}
    assert all("no pending funds cover it yet" in r.status_reason for r in held.values())
    _age(backlog)
    sandbox.clear_stripe_requests()
    _, transferred, _ = run(job)
    assert transferred.total == 0 and sandbox.stripe_requests() == []  # no retry, no balance read

    # the split pays the seller an order: money on its balance, recorded in the ledger
    made = stripe_gateway.create_transfer(
        amount=1_000_000, currency="eur", destination="acct_s12",
        idempotency_key="test:order-12", metadata={"miraklId": "ORDER-12"},
    )  # fmt: skip
    backlog.save_transfers([TransferRecord(
        type=TransferType.PRODUCT_ORDER, mirakl_id="ORDER-12", status=TransferStatus.CREATED,
        mirakl_shop_id=12, destination_account="acct_s12", transfer_id=made.id,
        amount=1_000_000, currency="EUR",
    )])  # fmt: skip
    planned, transferred, paid = run(job)

    _assert_decided(planned, 12, 3 * 30)  # the two fees and the payout of each invoice
    assert transferred.counts == {"TRANSFER_CREATED": 2 * 30}
    assert paid.counts == {"PAYOUT_CREATED": 30}  # after its fees, in the same run


def test_a_payout_waiting_for_funds_goes_once_their_date_passed(backlog, sandbox, job):
    _map(backlog, 13)
    _age(backlog)
    past = int((datetime.now(UTC) - timedelta(hours=1)).timestamp())
    future = int((datetime.now(UTC) + timedelta(days=3)).timestamp())
    invoice_due, invoice_later = sorted(_invoices_of(13), key=int)[:2]
    for invoice_id, when in ((invoice_due, past), (invoice_later, future)):
        reason = funds_hold_reason("pay out", 1234, "EUR", "acct_s13", 0, [(1234, when)])
        backlog.save_payouts([PayoutRecord(
            mirakl_invoice_id=invoice_id, status=PayoutStatus.ON_HOLD, status_reason=reason,
            mirakl_shop_id=13, stripe_account_id="acct_s13", amount=1234, currency="EUR",
        )])  # fmt: skip
    sandbox.clear_stripe_requests()

    planned, _, paid = run(job)

    _assert_decided(planned, 13, 4)  # the payout due, and the transfers of its invoice
    assert {i.split("/")[0] for g in planned.ids.values() for i in g} - {"150"} == {invoice_due}
    assert paid.counts == {"PAYOUT_CREATED": 1}
    assert [p["metadata"]["invoiceId"] for p in sandbox.payouts()] == [invoice_due]
    later = backlog.get_payouts([invoice_later])[invoice_later]
    assert later.status is PayoutStatus.ON_HOLD and "expected available on" in later.status_reason


def test_the_full_sweep_catches_funds_the_ledger_did_not_see(backlog, sandbox, job):
    _map(backlog, 12)
    run(job)
    _age(backlog)
    # topped up at Stripe (a charge outside the connector, the dashboard): no ledger trace
    sandbox.load({"stripe": {"balances": {"acct_s12": dict(BIG)}}})
    sandbox.clear_stripe_requests()
    _, missed, _ = run(job)
    assert missed.total == 0 and sandbox.stripe_requests() == []

    backlog.set_checkpoint(f"{BACKLOG_NAME}_full_sweep", "2000-01-01T00:00:00+00:00")
    planned, transferred, paid = run(job)

    assert any("full sweep" in n for n in planned.notes)
    assert transferred.counts == {"TRANSFER_CREATED": 2 * 30}
    assert paid.counts == {"PAYOUT_CREATED": 30}
    assert {key[0] for key in moved(sandbox)} == _invoices_of(12)
