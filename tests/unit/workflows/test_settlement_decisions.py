"""The settlement rules, as a table: invoice → three invoice transfers and one payout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.ledger.records import (
    AccountMapping,
    PayoutRecord,
    PayoutStatus,
    TransferRecord,
    TransferStatus,
    TransferType,
)
from mirakl_connector.stripe.settlement_decisions import (
    decide_invoice_transfer,
    decide_payout,
    funds_expected_on,
    funds_hold_reason,
    funds_may_be_there,
    parse_invoice,
    payout_blocker,
)

SUB, CREDITS, DEBITS = (
    TransferType.SUBSCRIPTION,
    TransferType.EXTRA_CREDITS,
    TransferType.EXTRA_INVOICES,
)
SELLER = AccountMapping(
    1, "acct_seller", payouts_enabled=True, charges_enabled=True, kyc_status="APPROVED"
)
UNKNOWN_KYC = AccountMapping(1, "acct_seller", payouts_enabled=True, charges_enabled=True)


def invoice(shop_id=1, currency="EUR", **summary):
    values = {
        "amount_transferred": Decimal("12.34"),
        "total_subscription_incl_tax": Decimal("-9.99"),
        "total_other_credits_incl_tax": Decimal("56.78"),
        "total_other_invoices_incl_tax": Decimal("-98.76"),
        **summary,
    }
    return parse_invoice(
        {"invoice_id": 7, "shop_id": shop_id, "currency_iso_code": currency,
         "date_created": "2026-11-01T00:00:00+0100", "summary": values}
    )  # fmt: skip


def platform() -> str:
    return "acct_platform"


def transfer(transfer_type, inv, mapping=SELLER, **row):
    return decide_invoice_transfer(
        TransferRecord(type=transfer_type, mirakl_id="7", **row),
        inv,
        shop_mapping=mapping,
        platform_account=platform,
    )


@pytest.mark.parametrize(
    ("transfer_type", "amount", "source", "destination"),
    [
        (SUB, 999, "acct_seller", "acct_platform"),
        (DEBITS, 9876, "acct_seller", "acct_platform"),
        (CREDITS, 5678, None, "acct_seller"),
    ],
)
def test_pending_transfers_take_absolute_amounts_and_their_direction(
    transfer_type, amount, source, destination
):
    row = transfer(transfer_type, invoice())
    assert (row.status, row.status_reason) == (TransferStatus.PENDING, None)
    assert (row.amount, row.currency) == (amount, "EUR")
    assert (row.source_account, row.destination_account) == (source, destination)
    assert (row.mirakl_shop_id, row.mirakl_created_date) == (1, "2026-11-01T00:00:00+0100")


ignored = AccountMapping(1, "acct_seller", payouts_enabled=True, ignored=True)
no_payouts = AccountMapping(1, "acct_seller", payouts_enabled=False)


@pytest.mark.parametrize(
    ("inv", "mapping", "row", "status", "reason"),
    [
        (invoice(), SELLER, {"transfer_id": "tr_1"}, TransferStatus.CREATED, None),
        (invoice(shop_id=None), SELLER, {}, TransferStatus.ABORTED, "No shop ID provided"),
        (invoice(total_subscription_incl_tax=0), SELLER, {}, TransferStatus.ABORTED,
         "Amount must be positive, input was: 0.00 EUR"),
        # permanent before temporary: a zero amount is aborted even without a Stripe account
        (invoice(total_subscription_incl_tax=0), None, {}, TransferStatus.ABORTED,
         "Amount must be positive, input was: 0.00 EUR"),
        (invoice(), None, {}, TransferStatus.ON_HOLD, "Cannot find Stripe account for shop ID 1"),
        (invoice(), ignored, {}, TransferStatus.ON_HOLD, "Shop 1 is ignored"),
        # payouts disabled does not stop the fee transfers
        (invoice(), no_payouts, {"status_reason": "old"}, TransferStatus.PENDING, None),
    ],
)  # fmt: skip
def test_invoice_transfer_rules(inv, mapping, row, status, reason):
    decided = transfer(SUB, inv, mapping, **row)
    assert (decided.status, decided.status_reason) == (status, reason)


def payout(inv, mapping=SELLER, **row):
    return decide_payout(PayoutRecord(mirakl_invoice_id="7", **row), inv, shop_mapping=mapping)


@pytest.mark.parametrize(
    ("inv", "mapping", "row", "status", "reason"),
    [
        (invoice(), SELLER, {"status_reason": "old"}, PayoutStatus.PENDING, None),
        (invoice(), SELLER, {"payout_id": "po_1", "status": PayoutStatus.PENDING},
         PayoutStatus.CREATED, None),
        (invoice(shop_id=None), SELLER, {}, PayoutStatus.ABORTED, "No shop ID provided"),
        (invoice(amount_transferred=0), SELLER, {}, PayoutStatus.ABORTED,
         "Amount must be positive, input was: 0.00 EUR"),
        (invoice(amount_transferred=Decimal("-5")), None, {}, PayoutStatus.ABORTED,
         "Amount must be positive, input was: -5.00 EUR"),
        (invoice(), None, {}, PayoutStatus.ON_HOLD, "Cannot find Stripe account for shop ID 1"),
        (invoice(), ignored, {}, PayoutStatus.ON_HOLD, "Shop 1 is ignored"),
        (invoice(), no_payouts, {}, PayoutStatus.ON_HOLD, "Payouts are disabled for shop ID 1"),
    ],
)  # fmt: skip
def test_payout_rules(inv, mapping, row, status, reason):
    decided = payout(inv, mapping, **row)
    assert (decided.status, decided.status_reason) == (status, reason)


def test_pending_payout_carries_account_and_minor_units():
    decided = payout(invoice())
    assert (decided.amount, decided.currency, decided.stripe_account_id) == (
        1234,
        "EUR",
        "acct_seller",
    )


def test_payout_failed_after_creation_is_not_paid_twice():
    decided = payout(
        invoice(),
        payout_id="po_1",
        status=PayoutStatus.FAILED,
        status_reason="account_closed: The bank account has been closed",
    )
    assert decided.status is PayoutStatus.FAILED
    assert decided.payout_id == "po_1"
    assert "po_1 failed after it was created: account_closed" in decided.status_reason


def test_zero_decimal_and_three_decimal_currencies():
    jpy = invoice(currency="JPY", amount_transferred=Decimal("1500"),
                  total_subscription_incl_tax=Decimal("-300"))  # fmt: skip
    assert payout(jpy).amount == 1500
    assert transfer(SUB, jpy).amount == 300
    kwd = invoice(currency="KWD", total_other_credits_incl_tax=Decimal("1.234"))
    # Stripe takes KWD with a last digit of 0 (docs.stripe.com/currencies "Three-decimal"):
    # 1.230 goes, the 0.004 left over is recorded, never sent
    row = transfer(CREDITS, kwd)
    assert (row.amount, row.amount_residue, row.status) == (1230, 4, TransferStatus.PENDING)


def test_huf_payout_goes_in_whole_forints_the_rest_stays_as_residue():
    huf = invoice(currency="HUF", amount_transferred=Decimal("1234.56"))
    row = payout(huf)
    assert (row.amount, row.amount_residue, row.status) == (123400, 56, PayoutStatus.PENDING)
    # a transfer in HUF is not a payout: cents go
    huf = invoice(currency="HUF", total_other_credits_incl_tax=Decimal("12.34"))
    assert (transfer(CREDITS, huf).amount, transfer(CREDITS, huf).amount_residue) == (1234, None)


def test_currency_stripe_does_not_support_fails_the_invoice_with_the_reason():
    irr = invoice(currency="IRR", amount_transferred=Decimal("50.00"))
    row = payout(irr)
    assert row.status is PayoutStatus.FAILED
    assert row.status_reason.startswith("Currency IRR is not supported by Stripe")


def test_platform_account_is_asked_only_for_pending_seller_to_platform_rows():
    calls = []

    def counting() -> str:
        calls.append(1)
        return "acct_platform"

    for transfer_type in (SUB, CREDITS):
        decide_invoice_transfer(
            TransferRecord(type=transfer_type, mirakl_id="7"),
            invoice(),
            shop_mapping=None,
            platform_account=counting,
        )
    assert calls == []


@pytest.mark.parametrize(
    ("raw_change", "reason"),
    [
        ({"currency_iso_code": "XXY"}, "unknown currency"),
        ({"date_created": "2026-11-01"}, "date_created has no timezone offset"),
        ({"summary": None}, "summary is missing"),
        ({"summary": {"amount_transferred": 1.5}}, "summary.amount_transferred must be a decimal"),
        ({"shop_id": "abc"}, "shop_id is not numeric"),
    ],
)
def test_bad_invoices_name_the_item_and_the_field(raw_change, reason):
    raw = {"invoice_id": 9, "shop_id": 1, "currency_iso_code": "EUR",
           "date_created": "2026-11-01T00:00:00Z", "summary": {}, **raw_change}  # fmt: skip
    with pytest.raises(InvalidItemError) as err:
        parse_invoice(raw)
    assert err.value.item_id == "9"
    assert reason in err.value.reason


def test_payout_waits_for_unsettled_invoice_transfers():
    rows = [
        TransferRecord(type=SUB, mirakl_id="7", status=TransferStatus.CREATED),
        TransferRecord(type=CREDITS, mirakl_id="7", status=TransferStatus.FAILED),
        TransferRecord(type=DEBITS, mirakl_id="7", status=TransferStatus.ABORTED),
    ]
    assert payout_blocker("7", rows) == (
        "Waiting for the invoice transfers of invoice 7: TRANSFER_EXTRA_CREDITS (TRANSFER_FAILED)"
    )
    rows[1].status = TransferStatus.CREATED
    assert payout_blocker("7", rows) is None
    assert payout_blocker("7", []) is None


def test_money_to_an_account_whose_kyc_is_unknown_waits():
    """The extra credit and the payout go *to* the seller's account: held until its status is
    known; the fees taken *from* it are not."""
    reason = (
        "Stripe account acct_seller verification status is not known yet "
        "(waiting for the KYC monitor or an account.updated event)"
    )
    credit = transfer(CREDITS, invoice(), mapping=UNKNOWN_KYC)
    assert (credit.status, credit.status_reason) == (TransferStatus.ON_HOLD, reason)
    assert transfer(SUB, invoice(), mapping=UNKNOWN_KYC).status is TransferStatus.PENDING
    payout = decide_payout(PayoutRecord("7"), invoice(), shop_mapping=UNKNOWN_KYC)
    assert (payout.status, payout.status_reason) == (PayoutStatus.ON_HOLD, reason)
    released = decide_payout(payout, invoice(), shop_mapping=SELLER)
    assert released.status is PayoutStatus.PENDING


WHEN = datetime(2026, 12, 11, 0, 20, tzinfo=UTC)


def test_the_date_a_funds_reason_expects_is_read_back_to_the_minute():
    reason = funds_hold_reason("pay out", 1234, "EUR", "acct_x", 0, [(1234, WHEN.timestamp())])
    assert reason.endswith("expected available on 2026-12-11 00:20 UTC")
    assert funds_expected_on(reason) == WHEN
    no_date = funds_hold_reason("transfer", 999, "EUR", "acct_x", 500, [])
    assert funds_expected_on(no_date) is None
    assert funds_expected_on("Cannot find Stripe account for shop ID 4") is None
    assert funds_expected_on(None) is None


def _waiting_payout(reason):
    return PayoutRecord(mirakl_invoice_id="1", status=PayoutStatus.ON_HOLD,
                        status_reason=reason, stripe_account_id="acct_x")  # fmt: skip


def test_a_row_waiting_for_funds_is_tried_again_once_its_date_passed_or_its_account_credited():
    dated = _waiting_payout(
        funds_hold_reason("pay out", 1234, "EUR", "acct_x", 0, [(1234, WHEN.timestamp())])
    )
    # the reason's minute is rounded down: a minute later, never before
    assert not funds_may_be_there(dated, now=WHEN + timedelta(seconds=59), credited=())
    assert funds_may_be_there(dated, now=WHEN + timedelta(minutes=1), credited=())
    undated = _waiting_payout(funds_hold_reason("pay out", 1234, "EUR", "acct_x", 0, []))
    assert not funds_may_be_there(undated, now=WHEN, credited={"acct_other"})
    assert funds_may_be_there(undated, now=WHEN, credited={"acct_x"})
    # a fee transfer takes from its source account; a platform -> seller one from the
    # platform, whose balance the ledger does not see: only its date (or the sweep) retries it
    fee = TransferRecord(type=SUB, mirakl_id="1", status=TransferStatus.ON_HOLD,
                         status_reason=undated.status_reason, source_account="acct_x")  # fmt: skip
    assert funds_may_be_there(fee, now=WHEN, credited={"acct_x"})
    credit = TransferRecord(type=CREDITS, mirakl_id="1", status=TransferStatus.ON_HOLD,
                            status_reason=undated.status_reason,
                            destination_account="acct_x")  # fmt: skip
    assert not funds_may_be_there(credit, now=WHEN, credited={"acct_x"})
