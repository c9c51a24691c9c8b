"""The daily failed-operations e-mail, delivered to a real SMTP server on loopback."""

from __future__ import annotations

import smtplib
from email.mime.text import MIMEText

import pytest

from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.ledger.records import (
    PayoutRecord,
    PayoutStatus,
    RefundRecord,
    RefundStatus,
    TransferRecord,
    TransferStatus,
    TransferType,
)
from mirakl_connector.operations.failed_operations import SUBJECT, FailedOperationsAlert


class SmtplibMailer:
    """A core Mailer: plain smtplib to the test server."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    def send(self, *, to, subject, html):
        message = MIMEText(html, "html", "utf-8")
        message["Subject"], message["From"], message["To"] = (
            subject,
            "alerts@example.com",
            ", ".join(to),
        )
        with smtplib.SMTP(self.host, self.port, timeout=5) as smtp:
            smtp.sendmail("alerts@example.com", list(to), message.as_string())


@pytest.fixture
def alert(ledger, smtp_server):
    host, port, _ = smtp_server
    return FailedOperationsAlert(
        ledger=ledger, mailer=SmtplibMailer(host, port), recipients=["ops@example.com"]
    )


def seed(ledger):
    ledger.save_transfers([
        TransferRecord(TransferType.PRODUCT_ORDER, "ORD-1", TransferStatus.FAILED,
                       "Insufficient funds <in> the platform", mirakl_shop_id=1, amount=1234,
                       currency="EUR"),
        TransferRecord(TransferType.SUBSCRIPTION, "77", TransferStatus.FAILED,
                       "Transfers disabled.", mirakl_shop_id=2, amount=1500, currency="JPY"),
        TransferRecord(TransferType.PRODUCT_ORDER, "ORD-2", TransferStatus.ON_HOLD, "not paid",
                       amount=1, currency="EUR"),
    ])  # fmt: skip
    ledger.save_refunds([
        RefundRecord("RF-9", status=RefundStatus.FAILED, status_reason="Charge already refunded",
                     amount=1234, currency="KWD", mirakl_order_id="ORD-9"),
    ])  # fmt: skip
    ledger.save_payouts([
        PayoutRecord("88", PayoutStatus.FAILED, "Payouts disabled", mirakl_shop_id=3, amount=999,
                     currency="EUR"),
        PayoutRecord("89", PayoutStatus.ABORTED, "Amount must be positive", amount=0,
                     currency="EUR"),
    ])  # fmt: skip


def test_one_email_lists_every_failed_row_with_ids_amounts_and_reasons(ledger, alert, smtp_server):
    seed(ledger)
    summary = alert.alert()

    (message,) = smtp_server[2].messages
    assert message["Subject"] == SUBJECT
    assert message["X-Rcpt-To"] == "ops@example.com"
    body = message.get_content()
    for text in ("ORD-1", "12.34 EUR", "Insufficient funds &lt;in&gt; the platform",
                 "TRANSFER_SUBSCRIPTION", "1500 JPY", "RF-9", "ORD-9", "1.234 KWD",
                 "Charge already refunded", "88", "9.99 EUR", "Payouts disabled",
                 "TRANSFER_FAILED", "REFUND_FAILED", "PAYOUT_FAILED"):  # fmt: skip
        assert text in body, text
    assert "ORD-2" not in body and "Amount must be positive" not in body  # ON_HOLD / ABORTED
    assert summary.counts == {"TRANSFER_FAILED": 2, "REFUND_FAILED": 1, "PAYOUT_FAILED": 1}
    assert summary.to_dict()["notes"] == ["e-mail sent to 1 recipient(s)"]


def test_no_email_when_nothing_failed(ledger, alert, smtp_server):
    ledger.save_payouts([PayoutRecord("89", PayoutStatus.ABORTED, "Amount must be positive")])
    summary = alert.alert()
    assert smtp_server[2].messages == []
    assert summary.total == 0
    assert summary.notes == [
        "nothing failed, nothing to retry, nothing on hold too long: no e-mail sent"
    ]


def test_failures_without_recipients_fail_the_step(ledger, smtp_server):
    seed(ledger)
    host, port, inbox = smtp_server
    job = FailedOperationsAlert(ledger=ledger, mailer=SmtplibMailer(host, port), recipients=[])
    with pytest.raises(ConfigurationError, match="alerts.email_to"):
        job.alert()
    assert inbox.messages == []


def test_dry_run_sends_nothing(ledger, alert, smtp_server):
    seed(ledger)
    summary = alert.alert(dry_run=True)
    assert smtp_server[2].messages == []
    assert summary.total == 4


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"on_hold_max_age_days": "3"}, "must be an integer"),
        ({"on_hold_max_age_days": 0}, "at least 1"),
        ({"on_hold_max_age": 3}, "unknown failed_operations setting"),
    ],
)
def test_the_on_hold_age_setting_is_typed_and_checked(values, message):
    from mirakl_connector.operations.failed_operations import FailedOperationsSettings

    assert FailedOperationsSettings.from_mapping(None).on_hold_max_age_days == 3
    assert (
        FailedOperationsSettings.from_mapping({"on_hold_max_age_days": 7}).on_hold_max_age_days == 7
    )
    with pytest.raises(ConfigurationError, match=message):
        FailedOperationsSettings.from_mapping(values)
