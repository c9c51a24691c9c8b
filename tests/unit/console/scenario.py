"""A small ledger with every kind of movement and state, shared by the console tests.

Rows are written through the ledger's own API (so ``ledger_events`` holds what the workflows
would write); only the events' times are moved afterwards, to put movements on chosen days.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import update

from mirakl_connector.ledger import Ledger, moved_daily, schema
from mirakl_connector.ledger.records import (
    HyperwalletPayment,
    HyperwalletPaymentKind,
    HyperwalletPaymentStatus,
    PayoutRecord,
    PayoutStatus,
    RefundRecord,
    RefundStatus,
    TransferRecord,
    TransferStatus,
    TransferType,
)

TODAY = datetime.now(UTC).date()
OLD_DAY = TODAY - timedelta(days=40)  # outside the default 30-day range
YESTERDAY = TODAY - timedelta(days=1)

P, S = TransferType.PRODUCT_ORDER, TransferStatus


def _at(day: date) -> datetime:
    return datetime.combine(day, time(12, 0), UTC)


def fill(ledger: Ledger) -> dict[str, int]:
    """Write the scenario; return the row ids by a short name."""
    ids: dict[str, int] = {}
    transfers = [
        TransferRecord(P, "ORD-1-A", S.PENDING, None, 1, "acct_one", amount=1000, currency="EUR"),
        TransferRecord(P, "ORD-2-A", S.PENDING, None, 2, "acct_two", amount=1500, currency="JPY"),
        TransferRecord(
            TransferType.REFUND, "R-1", S.PENDING, None, 1, None, "acct_one", amount=300,
            currency="EUR",
        ),
        TransferRecord(P, "ORD-3-A", S.ON_HOLD, "KYC pending", 3, "acct_three", amount=700,
                       currency="EUR"),
        TransferRecord(P, "ORD-4-A", S.ON_HOLD, "KYC pending", 3, "acct_three", amount=800,
                       currency="EUR"),
        TransferRecord(P, "ORD-5-A", S.FAILED, "insufficient funds", 5, "acct_five", amount=900,
                       currency="EUR"),
        TransferRecord(P, "ORD-6-A", S.PENDING, None, 6, "acct_six", amount=600, currency="EUR"),
    ]  # fmt: skip
    saved = ledger.save_transfers(transfers, run_id="run_decide")
    for row in saved:
        ids[row.mirakl_id] = row.id
    by_id = {r.mirakl_id: r for r in saved}
    # created at the provider: ORD-1-A, ORD-2-A, R-1
    ledger.save_transfers(
        [
            _created(by_id["ORD-1-A"], "tr_1"),
            _created(by_id["ORD-2-A"], "tr_2"),
            _created(by_id["R-1"], "trr_1"),
        ],
        run_id="run_split",
    )
    # ORD-6-A: sent, answer lost (in doubt)
    ledger.mark_transfer_attempt(by_id["ORD-6-A"], "key-ord-6", run_id="run_split")

    refunds = ledger.save_refunds(
        [RefundRecord("RF-1", status=RefundStatus.PENDING, amount=500, currency="EUR",
                      transaction_id="ch_1")],
        run_id="run_refund",
    )  # fmt: skip
    ids["RF-1"] = refunds[0].id
    refunds[0].status, refunds[0].stripe_refund_id = RefundStatus.CREATED, "re_1"
    ledger.save_refunds(refunds, run_id="run_refund")

    payouts = ledger.save_payouts(
        [
            PayoutRecord("9001", PayoutStatus.ON_HOLD, "payouts disabled", 7, "acct_seven",
                         amount=4000, currency="EUR"),
            PayoutRecord("9002", PayoutStatus.PENDING, None, 1, "acct_one", amount=5000,
                         currency="EUR"),
        ],
        run_id="run_settle",
    )  # fmt: skip
    ids.update({p.mirakl_invoice_id: p.id for p in payouts})
    payouts[1].status, payouts[1].payout_id = PayoutStatus.CREATED, "po_1"
    ledger.save_payouts([payouts[1]], run_id="run_settle")

    K, H = HyperwalletPaymentKind, HyperwalletPaymentStatus
    hw = ledger.save_hyperwallet_payments(
        [
            HyperwalletPayment("9101", "9101", K.SELLER, H.PENDING, amount=2000, currency="EUR",
                               shop_id=101, destination_token="trm-1"),
            HyperwalletPayment("9103-operatorFee", "9103", K.OPERATOR_FEE, H.FAILED,
                               "negative operator commission", amount=50, currency="EUR"),
            HyperwalletPayment("9104", "9104", K.SELLER, H.PENDING, amount=3000, currency="USD",
                               shop_id=104, destination_token="trm-4"),
        ],
        run_id="run_hw",
    )  # fmt: skip
    ids.update({h.client_payment_id: h.id for h in hw})
    hw[0].status, hw[0].payment_token = H.CREATED, "pmt-1"
    ledger.save_hyperwallet_payments([hw[0]], run_id="run_hw")
    hw[0].status = H.COMPLETED
    ledger.save_hyperwallet_payments([hw[0]], run_id="run_hw_status")  # moved once, not twice
    ledger.mark_hyperwallet_payment_attempt(hw[2], run_id="run_hw")
    return ids


def _created(row: TransferRecord, transfer_id: str) -> TransferRecord:
    row.status, row.transfer_id = TransferStatus.CREATED, transfer_id
    return row


def move_events(ledger_engine, entity: str, entity_id: int, day: date) -> None:
    """Put every event of one row on ``day`` (noon UTC).

    Rewriting events by hand bypasses the store, which keeps ``moved_daily`` with them: the
    per-day sums are recomputed as schema step 9 does.
    """
    events = schema.ledger_events
    with ledger_engine.begin() as conn:
        conn.execute(
            update(events)
            .where(events.c.entity == entity, events.c.entity_id == entity_id)
            .values(at=_at(day))
        )
        moved_daily.rebuild(conn)
