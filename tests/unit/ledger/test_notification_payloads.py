"""Payloads of the operator notifications: the Stripe connector's keys, minor units, lower case."""

from __future__ import annotations

import json

import pytest

from mirakl_connector.ledger import (
    AccountMapping,
    PayoutRecord,
    PayoutStatus,
    RefundRecord,
    RefundStatus,
    RefundType,
    TransferRecord,
    TransferStatus,
    TransferType,
)
from mirakl_connector.ledger.notifications import (
    FAILED_STATUS_TYPES,
    account_updated_payload,
    failed_dedup_key,
    failed_notification,
    payout_failed_payload,
    refund_failed_payload,
    transfer_failed_payload,
)


def test_transfer_payload_matches_the_connector_example():
    record = TransferRecord(
        TransferType.PRODUCT_ORDER,
        "random",
        TransferStatus.FAILED,
        "Transfer with source_transaction and charge has no more funds left.",
        mirakl_shop_id=1,
        destination_account="acct_basic",
        source_account="acct_platform",
        transaction_id="ch_with_transfer",
        amount=1234,
        currency="EUR",
        id=5,
    )

    payload = transfer_failed_payload(record)

    assert payload == {
        "internalId": 5,
        "miraklId": "random",
        "type": "TRANSFER_PRODUCT_ORDER",
        "stripeAccountId": "acct_basic",
        "miraklShopId": 1,
        "transferId": None,
        "transactionId": "ch_with_transfer",
        "amount": 1234,
        "status": "TRANSFER_FAILED",
        "failedReason": "Transfer with source_transaction and charge has no more funds left.",
        "currency": "eur",
    }
    # Plain JSON types only (no enum members): what the endpoint receives.
    assert json.loads(json.dumps(payload)) == payload
    assert type(payload["type"]) is str and type(payload["status"]) is str


def test_refund_payload():
    record = RefundRecord(
        "r-9",
        RefundType.SERVICE_ORDER,
        RefundStatus.FAILED,
        "charge_already_refunded",
        amount=350,
        currency="KWD",
        mirakl_commercial_order_id="CO-1",
        mirakl_order_id="CO-1-A",
        transaction_id="ch_1",
        stripe_refund_id=None,
        id=12,
    )

    assert refund_failed_payload(record) == {
        "internalId": 12,
        "amount": 350,
        "currency": "kwd",
        "miraklOrderId": "CO-1-A",
        "miraklRefundId": "r-9",
        "stripeRefundId": None,
        "transactionId": "ch_1",
        "status": "REFUND_FAILED",
        "failedReason": "charge_already_refunded",
        "type": "REFUND_SERVICE_ORDER",
    }


def test_payout_payload_repeats_the_payout_id_under_the_deprecated_key():
    record = PayoutRecord(
        "inv-7",
        PayoutStatus.FAILED,
        "account_closed: The bank account has been closed",
        mirakl_shop_id=3,
        stripe_account_id="acct_3",
        amount=500,
        currency="JPY",
        payout_id="po_1",
        id=4,
    )

    payload = payout_failed_payload(record)

    assert payload == {
        "internalId": 4,
        "amount": 500,
        "currency": "jpy",
        "miraklInvoiceId": "inv-7",
        "payoutId": "po_1",
        "stripePayoutId": "po_1",
        "status": "PAYOUT_FAILED",
        "failedReason": "account_closed: The bank account has been closed",
    }
    assert "miraklShopId" not in payload and "stripeAccountId" not in payload


def test_missing_currency_stays_none():
    record = TransferRecord(TransferType.SUBSCRIPTION, "inv-1", TransferStatus.FAILED)
    assert transfer_failed_payload(record)["currency"] is None


def test_account_updated_payload():
    mapping = AccountMapping(2000, "acct_42")
    assert account_updated_payload(mapping.mirakl_shop_id, mapping.stripe_account_id) == {
        "miraklShopId": 2000,
        "stripeUserId": "acct_42",
    }


@pytest.mark.parametrize(
    ("record", "expected_type"),
    [
        (
            TransferRecord(TransferType.REFUND, "r-1", TransferStatus.FAILED, id=1),
            "transfer.failed",
        ),
        (RefundRecord("r-1", status=RefundStatus.FAILED, id=1), "refund.failed"),
        (PayoutRecord("inv-1", PayoutStatus.FAILED, id=1), "payout.failed"),
    ],
)
def test_failed_notification_picks_type_and_payload(record, expected_type):
    notification_type, payload = failed_notification(record)

    assert notification_type == expected_type
    assert payload["internalId"] == 1 and payload["status"].endswith("_FAILED")


def test_failed_notification_refuses_other_records():
    with pytest.raises(TypeError, match="AccountMapping"):
        failed_notification(AccountMapping(1, "acct_1"))  # type: ignore[arg-type]


def test_failed_status_per_entity_and_dedup_key():
    assert FAILED_STATUS_TYPES == {
        "transfer": ("TRANSFER_FAILED", "transfer.failed"),
        "refund": ("REFUND_FAILED", "refund.failed"),
        "payout": ("PAYOUT_FAILED", "payout.failed"),
    }
    assert failed_dedup_key("payout.failed", 7, 31) == "payout.failed:7:31"
