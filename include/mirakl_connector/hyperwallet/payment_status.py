"""Hyperwallet payment status: ``PAYMENTS.UPDATED.STATUS.*`` notifications → Mirakl and e-mail.

Step ``process`` (``dags/hyperwallet_payment_status.py``), for each due ``pmt-`` notification of
the inbox (see :mod:`.hyperwallet_notifications` for picking and retries):

* **COMPLETED** (accepted): the invoice is confirmed paid in Mirakl — IV07 with the seed's
  mapping (``amount``, ``currency`` → ``currency_iso_code``, ``clientPaymentId`` →
  ``invoice_id``, the payment's ``createdOn`` → ``transaction_date``,
  ``confirm_all_linked_manual_documents``), or SBC07 ``PAID`` for an SBC11 billing cycle. Never
  for the operator-fee payment (``-operatorFee``): Mirakl has no document for it. Confirmed once:
  the ledger row keeps ``confirmed_at``.
* **failure** (``FAILED``, ``RECALLED``, ``RETURNED``, ``EXPIRED``, ``UNCLAIMED``,
  ``CANCELLED``): one e-mail naming the payment, the invoice and the shop (the ledger knows the
  shop; the incumbent looked the shop up with the bank account token and usually failed). The
  ledger row goes to ``HW_PAYMENT_FAILED``; a later invoice run naming the invoice pays it anew.
* **in progress** (anything else: ``CREATED``, ``SCHEDULED``, ``PENDING_*``...): the status is
  recorded, nothing else happens.

Trust (issue 19 point 3, issue 11 point 4): nothing is acted on as posted. The notification is
re-read from Hyperwallet by its token (``GET /webhook-notifications/{token}``), then the payment
itself (``GET /payments/{token}``): its *current* status, amount and ``clientPaymentId`` are what
is applied, and only to a payment this connector made (its ledger row, same amount, currency and
destination). Anything else — a token Hyperwallet does not know, a body that differs from
Hyperwallet's copy, a payment that does not exist or that we did not make — is REJECTED: no
Mirakl write, no ledger row marked paid (so a later invoice run still pays the invoice), the run
fails naming it and an e-mail says so (:mod:`.hyperwallet_notification_checks`).

Order: the ledger row keeps the ``createdOn`` of the newest notification applied; an older one
arriving late is IGNORED and never overrides it (a late ``IN_PROGRESS`` cannot hide a
``COMPLETED``). A Mirakl error is retried (1, 2, 4, 8 minutes) and given up with an e-mail.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from mirakl_connector.core.errors import MiraklApiError, MiraklConnectorError
from mirakl_connector.core.registry import Resources
from mirakl_connector.hyperwallet.errors import HyperwalletNotFoundError
from mirakl_connector.hyperwallet.invoice_payments import SETTINGS_SECTION as PAYMENTS_SECTION
from mirakl_connector.hyperwallet.invoice_payments import HyperwalletPaymentSettings, lazy_mailer
from mirakl_connector.hyperwallet.notification_checks import (
    NotificationRejected,
    payment_mismatch,
    verified_payload,
)
from mirakl_connector.hyperwallet.notifications import (
    PAYMENT,
    SETTINGS_SECTION,
    TRANSFER_METHOD,
    UNKNOWN,
    NotificationJob,
    NotificationSettings,
)
from mirakl_connector.hyperwallet.payment_decisions import (
    ACCEPTED,
    FAILURE,
    classify_status,
    is_operator_fee,
    ledger_status,
)
from mirakl_connector.hyperwallet.payment_notices import (
    PaymentNotice,
    confirmation_endpoint,
    confirmed_document_id,
    iv07_document,
    parse_payment_notice,
    sbc07_cycle,
)
from mirakl_connector.hyperwallet.specs import PAYMENT_STATUS
from mirakl_connector.ledger import (
    HyperwalletPayment,
    HyperwalletPaymentStatus,
    InboxEvent,
    InboxStatus,
    Ledger,
)
from mirakl_connector.operations.mail import alert_recipients

log = logging.getLogger(__name__)

WORKFLOW = PAYMENT_STATUS.name
S = HyperwalletPaymentStatus


class HyperwalletPaymentStatusJob(NotificationJob):
    """Applies payment notifications (see the module docstring)."""

    WORKFLOW = WORKFLOW
    KINDS = frozenset({PAYMENT, TRANSFER_METHOD, UNKNOWN})
    VERIFIED_KINDS = frozenset({PAYMENT})

    def __init__(
        self,
        *,
        mirakl: Callable[[], Any],
        hyperwallet: Callable[[], Any],
        ledger: Ledger,
        settings: NotificationSettings,
        payments: HyperwalletPaymentSettings,
        mailer: Any = None,
        email_to: Sequence[str] = (),
        run_id: str | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(
            ledger=ledger,
            settings=settings,
            hyperwallet=hyperwallet,
            mirakl=mirakl,
            mailer=mailer,
            email_to=email_to,
            run_id=run_id,
            now=now,
        )
        self.payments = payments

    def apply(self, event: InboxEvent, kind: str) -> tuple[InboxStatus, str | None]:
        if kind != PAYMENT:
            what = "transfer method" if kind == TRANSFER_METHOD else "unrecognised object"
            return InboxStatus.IGNORED, f"{event.type}: {what} notifications need no action"
        created = event.event_created or event.created_at or self._now()
        payment = self._payment_now(event)
        row = self.ledger.get_hyperwallet_payment(str(payment.get("clientPaymentId") or ""))
        mismatch = payment_mismatch(row, payment)
        if mismatch is not None:
            raise NotificationRejected(mismatch)
        assert row is not None
        notice = parse_payment_notice(verified_payload(event.payload, payment), created)
        if (
            row.payment_token
            and row.payment_token != notice.payment_token
            and row.status != S.FAILED
        ):
            return InboxStatus.IGNORED, (
                f"about {notice.payment_token}, but invoice payment {row.client_payment_id} is "
                f"{row.payment_token} ({row.hw_status or row.status})"
            )
        # The payment's current status is applied, so an earlier notification (a COMPLETED
        # processed after the payment was RETURNED) may already have reported this failure.
        reported = (
            row.status == S.FAILED
            and row.hw_status == notice.status
            and row.payment_token == notice.payment_token
            and row.last_notification_token not in (None, notice.token)
        )
        recorded = self.ledger.record_hyperwallet_notification(
            self._updated(row, notice),
            notification_token=notice.token,
            notified_at=notice.created_at,
            run_id=self.run_id,
        )
        if recorded is None:
            return InboxStatus.IGNORED, (
                f"superseded: a newer notification was already applied to "
                f"{notice.client_payment_id}"
            )
        outcome = classify_status(notice.status)
        if outcome == ACCEPTED:
            return self._completed(recorded, notice)
        if outcome == FAILURE and reported:
            return InboxStatus.PROCESSED, f"payment {notice.status}: already reported"
        if outcome == FAILURE:
            return self._failed_payment(recorded, notice)
        return InboxStatus.PROCESSED, f"{notice.status}: in progress, nothing to do"

    def _payment_now(self, event: InboxEvent) -> Mapping[str, Any]:
        """The payment as Hyperwallet has it now (``GET /payments/{token}``).

        :raises NotificationRejected: Hyperwallet has no such payment.
        """
        obj = event.payload.get("object")
        token = obj.get("token") if isinstance(obj, Mapping) else None
        try:
            payment = self.hyperwallet.get_payment(str(token))
        except HyperwalletNotFoundError:
            raise NotificationRejected(
                f"Hyperwallet has no payment {token} (GET /payments/{{token}} answered 404)"
            ) from None
        if not isinstance(payment, Mapping) or payment.get("token") != token:
            raise NotificationRejected(f"Hyperwallet did not return payment {token}")
        return payment

    # -- effects ----------------------------------------------------------------------------

    def _completed(
        self, row: HyperwalletPayment, notice: PaymentNotice
    ) -> tuple[InboxStatus, str | None]:
        if is_operator_fee(notice.client_payment_id):
            return InboxStatus.PROCESSED, "operator commission completed (nothing to confirm)"
        if row.confirmed_at is not None:
            return InboxStatus.PROCESSED, (
                f"invoice {row.invoice_id} already confirmed at {row.confirmed_at.isoformat()}"
            )
        # The ledger's source and invoice id decide (a payment made under the other
        # clientPaymentId convention confirms its own document); a row without a source is
        # routed by the shape of its clientPaymentId (a UUID is an SBC11 billing cycle).
        endpoint = confirmation_endpoint(
            notice.client_payment_id, row.invoice_source, self.payments.invoice_source
        )
        document_id = confirmed_document_id(notice.client_payment_id, row.invoice_id)
        try:
            if endpoint == "SBC07":
                self.mirakl.confirm_billing_cycles([sbc07_cycle(notice, document_id)])
            else:
                document = iv07_document(
                    notice,
                    confirm_linked_manual_documents=self.payments.confirm_linked_manual_documents,
                    invoice_id=document_id,
                )
                self.mirakl.confirm_invoice_payments([document])
        except MiraklApiError as exc:
            raise MiraklConnectorError(
                f"Mirakl refused to confirm invoice {row.invoice_id} paid: {exc}"
            ) from exc
        log.info(
            "Invoice %s confirmed paid in Mirakl (%s, %s %s)",
            row.invoice_id,
            endpoint,
            notice.amount,
            notice.currency,
        )
        self.ledger.record_hyperwallet_notification(
            replace(row, confirmed_at=self._now()),
            notification_token=notice.token,
            notified_at=notice.created_at,
            run_id=self.run_id,
        )
        return InboxStatus.PROCESSED, f"invoice {row.invoice_id} confirmed paid ({endpoint})"

    def _failed_payment(
        self, row: HyperwalletPayment, notice: PaymentNotice
    ) -> tuple[InboxStatus, str | None]:
        subject, body = failure_email(notice, row, self._shop_name(row.shop_id))
        sent = self.send_email(subject, body)
        note = f"payment {notice.status}: " + ("e-mailed" if sent else "no recipient to e-mail")
        return InboxStatus.PROCESSED, note

    def _shop_name(self, shop_id: int | None) -> str | None:
        """The shop's name for the e-mail, best effort (the e-mail goes without it)."""
        if shop_id is None:
            return None
        try:
            for shop in self.mirakl.iter_shops(shop_ids=[shop_id]):
                return str(shop.get("shop_name") or "") or None
        except MiraklConnectorError as exc:
            log.warning("Shop %s not read for the payment failure e-mail: %s", shop_id, exc)
        return None

    def _updated(self, row: HyperwalletPayment, notice: PaymentNotice) -> HyperwalletPayment:
        """The ledger row as the verified payment leaves it."""
        status = ledger_status(notice.status)
        reason = None if status != S.FAILED else f"Hyperwallet status {notice.status}"
        return replace(
            row,
            status=status,
            status_reason=reason,
            hw_status=notice.status,
            payment_token=notice.payment_token,
            hw_created_on=notice.payment_created_on or row.hw_created_on,
            attempted_at=None,  # the payment exists: nothing is in doubt any more
        )


def failure_email(
    notice: PaymentNotice, row: HyperwalletPayment, shop_name: str | None
) -> tuple[str, str]:
    """(subject, html) of the e-mail about a payment Hyperwallet reports failed."""
    cpid = notice.client_payment_id
    shop = ""
    if row.shop_id is not None:
        shop = (
            f" of shop {shop_name} with id [{row.shop_id}]"
            if shop_name
            else (f" of shop [{row.shop_id}]")
        )
    subject = f"Problem while processing payment [{cpid}]{shop}"
    what = "operator commission" if is_operator_fee(cpid) else "invoice"
    body = (
        f"<p>A problem has been detected while processing the payment of the {what} "
        f"[{html.escape(row.invoice_id)}]{html.escape(shop)}.</p>"
        f"<p>The status received for the payment {html.escape(notice.payment_token)} is "
        f"<b>{html.escape(notice.status)}</b>.</p>"
        "<p>The invoice stays unpaid in Mirakl. Check the payment in the Hyperwallet dashboard; "
        "to pay it again, trigger <code>hyperwallet_invoice_payments</code> with "
        f'<code>invoice_ids</code> = ["{html.escape(row.invoice_id)}"].</p>'
    )
    return subject, body


def build(
    resources: Resources, config: Mapping[str, Any], run_id: str | None
) -> HyperwalletPaymentStatusJob:
    """Registry entry: the job wired to the ledger, Mirakl (on first use) and the mailer."""
    return HyperwalletPaymentStatusJob(
        mirakl=lambda: resources.get("mirakl"),
        hyperwallet=lambda: resources.get("hyperwallet"),
        ledger=resources.get("ledger"),
        settings=NotificationSettings.from_mapping(config.get(SETTINGS_SECTION)),
        payments=HyperwalletPaymentSettings.from_mapping(config.get(PAYMENTS_SECTION)),
        mailer=lazy_mailer(resources),
        email_to=alert_recipients(config),
        run_id=run_id,
    )
