"""The Hyperwallet workflows' specs (:class:`~mirakl_connector.core.workflow_spec.WorkflowSpec`).

Light on purpose: the DAG files import this module when they are parsed, so each builder imports
its workflow module (the HTTP client, the ledger) only when a task runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mirakl_connector.core.workflow_spec import (
    HYPERWALLET_POOL,
    MIRAKL_POOL,
    StepSpec,
    WorkflowSpec,
)

if TYPE_CHECKING:
    from mirakl_connector.core.registry import Resources
    from mirakl_connector.hyperwallet.bank_account_sync import BankAccountExtract
    from mirakl_connector.hyperwallet.document_sync import DocumentsExtract
    from mirakl_connector.hyperwallet.invoice_payments import HyperwalletInvoicePayments
    from mirakl_connector.hyperwallet.kyc_resync import HyperwalletKycResync
    from mirakl_connector.hyperwallet.kyc_status import HyperwalletKycStatusJob
    from mirakl_connector.hyperwallet.payment_status import HyperwalletPaymentStatusJob
    from mirakl_connector.hyperwallet.seller_sync import SellerExtract

Config = Mapping[str, Any]

#: the section of the notification workflows (KYC and payment status), shared by both
NOTIFICATIONS_SECTION = "hyperwallet_notifications"


def _build_seller_extract(
    resources: Resources, config: Config, run_id: str | None
) -> SellerExtract:
    from mirakl_connector.hyperwallet import seller_sync

    return seller_sync.build(resources, config, run_id)


def _seller_extract_settings() -> type[Any]:
    from mirakl_connector.hyperwallet.seller_sync import SellerExtractSettings

    return SellerExtractSettings


#: Mirakl shops → Hyperwallet users (and their business stakeholders)
SELLER_EXTRACT: WorkflowSpec[SellerExtract] = WorkflowSpec(
    name="hyperwallet_seller_extract",
    section="hyperwallet_seller_extract",
    settings=_seller_extract_settings,
    builder=_build_seller_extract,
    steps=(
        StepSpec("check", HYPERWALLET_POOL),
        StepSpec("sync", HYPERWALLET_POOL),
        StepSpec("retry", HYPERWALLET_POOL),
    ),
)


def _build_bank_account_extract(
    resources: Resources, config: Config, run_id: str | None
) -> BankAccountExtract:
    from mirakl_connector.hyperwallet import bank_account_sync

    return bank_account_sync.build(resources, config, run_id)


def _currency_settings() -> type[Any]:
    from mirakl_connector.hyperwallet.currency_selection import CurrencySettings

    return CurrencySettings


#: Mirakl shops' bank details → Hyperwallet bank accounts
BANK_ACCOUNT_EXTRACT: WorkflowSpec[BankAccountExtract] = WorkflowSpec(
    name="hyperwallet_bank_account_extract",
    section="hyperwallet_bank_account_extract",
    settings=_currency_settings,
    builder=_build_bank_account_extract,
    steps=(
        StepSpec("check", HYPERWALLET_POOL),
        StepSpec("sync", HYPERWALLET_POOL),
        StepSpec("retry", HYPERWALLET_POOL),
    ),
)


def _build_documents_extract(
    resources: Resources, config: Config, run_id: str | None
) -> DocumentsExtract:
    from mirakl_connector.hyperwallet import document_sync

    return document_sync.build(resources, config, run_id)


#: Mirakl shops' KYC documents → Hyperwallet (reads only the shared ``hyperwallet`` section)
DOCUMENTS_EXTRACT: WorkflowSpec[DocumentsExtract] = WorkflowSpec(
    name="hyperwallet_documents_extract",
    section=None,
    settings=None,
    builder=_build_documents_extract,
    steps=(
        StepSpec("check", HYPERWALLET_POOL),
        StepSpec("sync", HYPERWALLET_POOL),
    ),
)


def _build_invoice_payments(
    resources: Resources, config: Config, run_id: str | None
) -> HyperwalletInvoicePayments:
    from mirakl_connector.hyperwallet import invoice_payments

    return invoice_payments.build(resources, config, run_id)


def _payment_settings() -> type[Any]:
    from mirakl_connector.hyperwallet.invoice_payments import HyperwalletPaymentSettings

    return HyperwalletPaymentSettings


#: Mirakl invoices → Hyperwallet payments
INVOICE_PAYMENTS: WorkflowSpec[HyperwalletInvoicePayments] = WorkflowSpec(
    name="hyperwallet_invoice_payments",
    section="hyperwallet_payments",
    settings=_payment_settings,
    builder=_build_invoice_payments,
    steps=(
        StepSpec("check", HYPERWALLET_POOL),
        StepSpec("pay", HYPERWALLET_POOL),
        StepSpec("retry", HYPERWALLET_POOL),
    ),
)


def _build_payment_status(
    resources: Resources, config: Config, run_id: str | None
) -> HyperwalletPaymentStatusJob:
    from mirakl_connector.hyperwallet import payment_status

    return payment_status.build(resources, config, run_id)


def _notification_settings() -> type[Any]:
    from mirakl_connector.hyperwallet.notifications import NotificationSettings

    return NotificationSettings


#: Hyperwallet payment notifications → Mirakl billing cycles
PAYMENT_STATUS: WorkflowSpec[HyperwalletPaymentStatusJob] = WorkflowSpec(
    name="hyperwallet_payment_status",
    section=NOTIFICATIONS_SECTION,
    settings=_notification_settings,
    builder=_build_payment_status,
    steps=(StepSpec("process", MIRAKL_POOL),),  # confirms billing cycles in Mirakl
)


def _build_kyc_status(
    resources: Resources, config: Config, run_id: str | None
) -> HyperwalletKycStatusJob:
    from mirakl_connector.hyperwallet import kyc_status

    return kyc_status.build(resources, config, run_id)


#: Hyperwallet KYC notifications → Mirakl shops
KYC_STATUS: WorkflowSpec[HyperwalletKycStatusJob] = WorkflowSpec(
    name="hyperwallet_kyc_status",
    section=NOTIFICATIONS_SECTION,
    settings=_notification_settings,
    builder=_build_kyc_status,
    steps=(StepSpec("process", HYPERWALLET_POOL),),
)


def _build_kyc_resync(
    resources: Resources, config: Config, run_id: str | None
) -> HyperwalletKycResync:
    from mirakl_connector.hyperwallet import kyc_resync

    return kyc_resync.build(resources, config, run_id)


def _kyc_resync_settings() -> type[Any]:
    from mirakl_connector.hyperwallet.kyc_resync import KycResyncSettings

    return KycResyncSettings


#: Hyperwallet users' KYC, re-read in full → Mirakl shops
KYC_RESYNC: WorkflowSpec[HyperwalletKycResync] = WorkflowSpec(
    name="hyperwallet_kyc_resync",
    section="hyperwallet_kyc_resync",
    settings=_kyc_resync_settings,
    builder=_build_kyc_resync,
    steps=(StepSpec("resync", HYPERWALLET_POOL),),  # paged user lists, then S07
)

SPECS: tuple[WorkflowSpec[Any], ...] = (
    SELLER_EXTRACT,
    BANK_ACCOUNT_EXTRACT,
    DOCUMENTS_EXTRACT,
    INVOICE_PAYMENTS,
    PAYMENT_STATUS,
    KYC_STATUS,
    KYC_RESYNC,
)
