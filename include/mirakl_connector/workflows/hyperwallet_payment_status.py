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

from mirakl_connector.errors import MiraklApiError, MiraklConnectorError
from mirakl_connector.hyperwallet.programs import HyperwalletSettings
from mirakl_connector.ledger import (
    HyperwalletPayment,
    HyperwalletPaymentKind,
    HyperwalletPaymentStatus,
    InboxEvent,
    InboxStatus,
    Ledger,
)
from mirakl_connector.money import to_minor
from mirakl_connector.workflows.hyperwallet_invoices import (
    SETTINGS_SECTION as PAYMENTS_SECTION,
)
from mirakl_connector.workflows.hyperwallet_invoices import (
    HyperwalletPaymentSettings,
    alert_recipients,
    lazy_mailer,
)
from mirakl_connector.workflows.hyperwallet_notifications import (
    PAYMENT,
    SETTINGS_SECTION,
    TRANSFER_METHOD,
    UNKNOWN,
    NotificationJob,
    NotificationSettings,
)
from mirakl_connector.workflows.hyperwallet_payment_decisions import (
    ACCEPTED,
    FAILURE,
    PaymentNotice,
    classify_status,
    confirmation_endpoint,
    confirmed_document_id,
    invoice_id_of,
    is_operator_fee,
    iv07_document,
    ledger_status,
    parse_payment_notice,
    sbc07_cycle,
)
from mirakl_connector.workflows.registry import Resources

log = logging.getLogger(__name__)

WORKFLOW = "hyperwallet_payment_status"
S = HyperwalletPaymentStatus


class HyperwalletPaymentStatusJob(NotificationJob):
    """Applies payment notifications (see the module docstring)."""

    WORKFLOW = WORKFLOW
    KINDS = frozenset({PAYMENT, TRANSFER_METHOD, UNKNOWN})

    def __init__(
        self,
        *,
        mirakl: Callable[[], Any],
        ledger: Ledger,
        settings: NotificationSettings,
        payments: HyperwalletPaymentSettings,
        programs: HyperwalletSettings | None = None,
        mailer: Any = None,
        email_to: Sequence[str] = (),
        run_id: str | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(
            ledger=ledger,
            settings=settings,
            mailer=mailer,
            email_to=email_to,
            run_id=run_id,
            now=now,
        )
        self._mirakl_factory = mirakl
        self.payments = payments
        self.program_by_token = {
            p.payment_token: p.name
            for p in (programs.programs if programs else ())
            if p.payment_token
        }

    @property
    def mirakl(self) -> Any:
        return self._mirakl_factory()

    def apply(self, event: InboxEvent, kind: str) -> tuple[InboxStatus, str | None]:
        if kind != PAYMENT:
            what = "transfer method" if kind == TRANSFER_METHOD else "unrecognised object"
            return InboxStatus.IGNORED, f"{event.type}: {what} notifications need no action"
        created = event.event_created or event.created_at or self._now()
        notice = parse_payment_notice(event.payload, created)
        row = self.ledger.get_hyperwallet_payment(notice.client_payment_id)
        if (
            row is not None
            and row.payment_token
            and row.payment_token != notice.payment_token
            and row.status != S.FAILED
        ):
            return InboxStatus.IGNORED, (
                f"about {notice.payment_token}, but invoice payment {row.client_payment_id} is "
                f"{row.payment_token} ({row.hw_status or row.status})"
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
        if outcome == FAILURE:
            return self._failed_payment(recorded, notice)
        return InboxStatus.PROCESSED, f"{notice.status}: in progress, nothing to do"

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
        # clientPaymentId convention confirms its own document); an unknown payment is routed
        # by the shape of its clientPaymentId (a UUID is an SBC11 billing cycle).
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

    def _updated(self, row: HyperwalletPayment | None, notice: PaymentNotice) -> HyperwalletPayment:
        """The ledger row as this notification leaves it (a new row for an unknown payment)."""
        status = ledger_status(notice.status)
        if row is None:
            amount = (
                to_minor(notice.amount, notice.currency)
                if notice.amount is not None and notice.currency
                else None
            )
            kind = (
                HyperwalletPaymentKind.OPERATOR_FEE
                if is_operator_fee(notice.client_payment_id)
                else HyperwalletPaymentKind.SELLER
            )
            return HyperwalletPayment(
                client_payment_id=notice.client_payment_id,
                invoice_id=invoice_id_of(notice.client_payment_id),
                kind=kind,
                status=status,
                hw_status=notice.status,
                payment_token=notice.payment_token,
                amount=amount,
                currency=notice.currency,
                program=self.program_by_token.get(notice.program_token or ""),
                destination_token=notice.destination_token,
                hw_created_on=notice.payment_created_on,
                status_reason="known from its notification only",
            )
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
    programs = HyperwalletSettings.from_config(config) if config.get("hyperwallet") else None
    return HyperwalletPaymentStatusJob(
        mirakl=lambda: resources.get("mirakl"),
        ledger=resources.get("ledger"),
        settings=NotificationSettings.from_mapping(config.get(SETTINGS_SECTION)),
        payments=HyperwalletPaymentSettings.from_mapping(config.get(PAYMENTS_SECTION)),
        programs=programs,
        mailer=lazy_mailer(resources),
        email_to=alert_recipients(config),
        run_id=run_id,
    )
