"""The failed-operations DAG covers both providers, the retry queues and what waits too long.

The scenario of issue 14: the e-mail said "no failed transfer, refund or payout" while a
Hyperwallet payment had been returned by the bank, a shop's bank account was being retried, an
operator commission had been refused, and payouts and transfers had been on hold for days.
Run through the DAG (``dag.test``) with the SMTP connection on the test's loopback server.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from mirakl_connector.ledger import Ledger, schema
from mirakl_connector.ledger.records import (
    HyperwalletPayment,
    HyperwalletPaymentKind,
    HyperwalletPaymentStatus,
    PayoutRecord,
    PayoutStatus,
    TransferRecord,
    TransferStatus,
    TransferType,
)

from .test_settlement_alert_notification_dags import env, run_dag  # noqa: F401 - fixture

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

K, H = HyperwalletPaymentKind, HyperwalletPaymentStatus


def _age(ledger: Ledger, table, column, key, days: int) -> None:
    """Make a row ``days`` old (the ledger stamps creation with the present)."""
    with ledger.engine.begin() as conn:
        conn.execute(
            update(table)
            .where(column == key)
            .values(created_at=datetime.now(UTC) - timedelta(days=days))
        )


def test_the_email_lists_returned_payments_retries_refused_fees_and_long_holds(
    env,  # noqa: F811 - the fixture (alerts to ops@example.com; on_hold_max_age_days default 3)
    smtp_server,
):
    env.save_hyperwallet_payments([
        HyperwalletPayment("5001", "5001", K.SELLER, H.FAILED, "Hyperwallet status RETURNED",
                           hw_status="RETURNED", payment_token="pmt-5001", amount=12345,
                           currency="EUR", shop_id=2001, destination_token="trm-2001"),
        HyperwalletPayment("5002-operatorFee", "5002", K.OPERATOR_FEE, H.ABORTED,
                           "negative operator commission", amount=-250, currency="EUR"),
        HyperwalletPayment("5003", "5003", K.SELLER, H.COMPLETED, amount=100, currency="EUR",
                           payment_token="pmt-5003", shop_id=2003),
    ], run_id="hw_run")  # fmt: skip
    env.record_pending_item("hyperwallet_bank_account_extract", 2002, "IBAN refused by bank")
    env.save_payouts([
        PayoutRecord("7001", PayoutStatus.ON_HOLD, "payouts disabled", 3001, "acct_old",
                     amount=4000, currency="EUR"),
        PayoutRecord("7002", PayoutStatus.ON_HOLD, "payouts disabled", 3002, "acct_new",
                     amount=5000, currency="EUR"),
    ])  # fmt: skip
    env.save_transfers([
        TransferRecord(TransferType.PRODUCT_ORDER, "ORD-OLD-A", TransferStatus.ON_HOLD,
                       "KYC pending", 3001, "acct_old", amount=700, currency="USD"),
    ])  # fmt: skip
    _age(env, schema.payouts, schema.payouts.c.mirakl_invoice_id, "7001", days=4)
    _age(env, schema.transfers, schema.transfers.c.mirakl_id, "ORD-OLD-A", days=5)

    run = run_dag("stripe_failed_operations_alert")

    assert run.state == "success"
    (message,) = smtp_server[2].messages
    assert message["Subject"] == "[Mirakl connector] Failed operations"
    body = message.get_body().get_content()
    assert "No Stripe transfer, refund or payout failed." in body
    returned = body[body.index("Hyperwallet payments failed or returned (1)") :]
    for text in ("5001", "123.45 EUR", "HW_PAYMENT_FAILED", "Hyperwallet status RETURNED"):
        assert text in returned.split("</table>")[0], text
    refused = body[body.index("Operator commissions refused (last 24 hours) (1)") :]
    assert "5002-operatorFee" in refused and "negative operator commission" in refused
    retries = body[body.index("Retry queues") :].split("</table>")[0]
    assert "hyperwallet_bank_account_extract" in retries and "2002" in retries
    assert "IBAN refused by bank" in retries
    held = body[body.index("On hold for more than 3 day(s) (2)") :].split("</table>")[0]
    assert "7001" in held and "40.00 EUR" in held and "ORD-OLD-A" in held
    assert "7002" not in body  # on hold since today: expected, not too long
    assert "5003" not in body  # completed
    report = run.get_task_instance("send_failed_operations_email").xcom_pull(
        task_ids="send_failed_operations_email"
    )
    assert report["counts"] == {"HW_PAYMENT_FAILED": 1, "OPERATOR_FEE_REFUSED": 1,
                                "RETRY_QUEUED": 1, "ON_HOLD_TOO_LONG": 2}  # fmt: skip
