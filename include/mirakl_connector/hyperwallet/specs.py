"""The Hyperwallet workflows' specs (:class:`~mirakl_connector.core.workflow_spec.WorkflowSpec`).

Light on purpose: the DAG files import this module when they are parsed, so each spec names its
workflow module, imported (the HTTP client, the ledger) only when a task runs
(:func:`lazy_spec`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mirakl_connector.core.workflow_spec import (
    HYPERWALLET_POOL,
    MIRAKL_POOL,
    StepSpec,
    WorkflowSpec,
    lazy_spec,
)

if TYPE_CHECKING:
    from mirakl_connector.hyperwallet.bank_account_sync import BankAccountExtract
    from mirakl_connector.hyperwallet.document_sync import DocumentsExtract
    from mirakl_connector.hyperwallet.invoice_payments import HyperwalletInvoicePayments
    from mirakl_connector.hyperwallet.kyc_resync import HyperwalletKycResync
    from mirakl_connector.hyperwallet.kyc_status import HyperwalletKycStatusJob
    from mirakl_connector.hyperwallet.payment_status import HyperwalletPaymentStatusJob
    from mirakl_connector.hyperwallet.seller_sync import SellerExtract

#: the section of the notification workflows (KYC and payment status), shared by both
NOTIFICATIONS_SECTION = "hyperwallet_notifications"
#: the steps of the extracts (the credentials check, the changed shops, the retry queue)
_EXTRACT_STEPS = (
    StepSpec("check", HYPERWALLET_POOL),
    StepSpec("sync", HYPERWALLET_POOL),
    StepSpec("retry", HYPERWALLET_POOL),
)

#: Mirakl shops → Hyperwallet users (and their business stakeholders)
SELLER_EXTRACT: WorkflowSpec[SellerExtract] = lazy_spec(
    "hyperwallet_seller_extract",
    "mirakl_connector.hyperwallet.seller_sync",
    *_EXTRACT_STEPS,
    settings="SellerExtractSettings",
)

#: Mirakl shops' bank details → Hyperwallet bank accounts
BANK_ACCOUNT_EXTRACT: WorkflowSpec[BankAccountExtract] = lazy_spec(
    "hyperwallet_bank_account_extract",
    "mirakl_connector.hyperwallet.bank_account_sync",
    *_EXTRACT_STEPS,
    settings="CurrencySettings",
)

#: Mirakl shops' KYC documents → Hyperwallet (reads only the shared ``hyperwallet`` section)
DOCUMENTS_EXTRACT: WorkflowSpec[DocumentsExtract] = lazy_spec(
    "hyperwallet_documents_extract",
    "mirakl_connector.hyperwallet.document_sync",
    StepSpec("check", HYPERWALLET_POOL),
    StepSpec("sync", HYPERWALLET_POOL),
    section=None,
)

#: Mirakl invoices → Hyperwallet payments
INVOICE_PAYMENTS: WorkflowSpec[HyperwalletInvoicePayments] = lazy_spec(
    "hyperwallet_invoice_payments",
    "mirakl_connector.hyperwallet.invoice_payments",
    StepSpec("check", HYPERWALLET_POOL),
    StepSpec("pay", HYPERWALLET_POOL),
    StepSpec("retry", HYPERWALLET_POOL),
    section="hyperwallet_payments",
    settings="HyperwalletPaymentSettings",
)

#: Hyperwallet payment notifications → Mirakl billing cycles
PAYMENT_STATUS: WorkflowSpec[HyperwalletPaymentStatusJob] = lazy_spec(
    "hyperwallet_payment_status",
    "mirakl_connector.hyperwallet.payment_status",
    StepSpec("process", MIRAKL_POOL),  # confirms billing cycles in Mirakl
    section=NOTIFICATIONS_SECTION,
    settings="NotificationSettings",
)

#: Hyperwallet KYC notifications → Mirakl shops
KYC_STATUS: WorkflowSpec[HyperwalletKycStatusJob] = lazy_spec(
    "hyperwallet_kyc_status",
    "mirakl_connector.hyperwallet.kyc_status",
    StepSpec("process", HYPERWALLET_POOL),
    section=NOTIFICATIONS_SECTION,
    settings="NotificationSettings",
)

#: Hyperwallet users' KYC, re-read in full → Mirakl shops
KYC_RESYNC: WorkflowSpec[HyperwalletKycResync] = lazy_spec(
    "hyperwallet_kyc_resync",
    "mirakl_connector.hyperwallet.kyc_resync",
    StepSpec("resync", HYPERWALLET_POOL),  # paged user lists, then S07
    settings="KycResyncSettings",
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
