"""The Stripe workflows' specs (:class:`~mirakl_connector.core.workflow_spec.WorkflowSpec`).

Light on purpose: the DAG files import this module when they are parsed, so each spec names its
workflow module, imported (the SDK, the ledger) only when a task runs (:func:`lazy_spec`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mirakl_connector.core.workflow_spec import (
    MIRAKL_POOL,
    STRIPE_POOL,
    StepSpec,
    WorkflowSpec,
    lazy_spec,
)

if TYPE_CHECKING:
    from mirakl_connector.stripe.events import StripeEvents
    from mirakl_connector.stripe.kyc_monitor import KycMonitor
    from mirakl_connector.stripe.onboarding import SellerOnboarding
    from mirakl_connector.stripe.payment_split import PaymentSplit
    from mirakl_connector.stripe.payment_validation import PaymentValidation
    from mirakl_connector.stripe.refunds import PaymentRefund
    from mirakl_connector.stripe.settlement import SellerSettlement

#: Mirakl orders → Stripe transfers to the sellers
PAYMENT_SPLIT: WorkflowSpec[PaymentSplit] = lazy_spec(
    "payment_split",
    "mirakl_connector.stripe.payment_split",
    StepSpec("plan", MIRAKL_POOL),
    StepSpec("execute", STRIPE_POOL, sharded=True),
    settings="PaymentSplitSettings",
)

#: Mirakl refunds → Stripe refunds, PA02/SPA02, seller transfer reversals
PAYMENT_REFUND: WorkflowSpec[PaymentRefund] = lazy_spec(
    "payment_refund",
    "mirakl_connector.stripe.refunds",
    StepSpec("plan", STRIPE_POOL),  # cancels uncaptured payments: a Stripe write
    StepSpec("refund", STRIPE_POOL, sharded=True),
    StepSpec("reverse", STRIPE_POOL, sharded=True),
    settings="PaymentRefundSettings",
)

#: Mirakl invoices → Stripe transfers and payouts
SELLER_SETTLEMENT: WorkflowSpec[SellerSettlement] = lazy_spec(
    "seller_settlement",
    "mirakl_connector.stripe.settlement",
    StepSpec("plan", MIRAKL_POOL),
    StepSpec("transfer", STRIPE_POOL, sharded=True),
    StepSpec("payout", STRIPE_POOL, sharded=True),
    settings="SettlementSettings",
)

#: Mirakl debits → PA01 validation, Stripe captures
PAYMENT_VALIDATION: WorkflowSpec[PaymentValidation] = lazy_spec(
    "payment_validation",
    "mirakl_connector.stripe.payment_validation",
    StepSpec("validate", MIRAKL_POOL),
    StepSpec("capture", STRIPE_POOL),
    settings="PaymentValidationSettings",
)

#: Mirakl shops → Stripe connected accounts and onboarding links
SELLER_ONBOARDING: WorkflowSpec[SellerOnboarding] = lazy_spec(
    "seller_onboarding",
    "mirakl_connector.stripe.onboarding",
    StepSpec("sync", STRIPE_POOL),
    settings="OnboardingSettings",
)

#: Stripe accounts' KYC → Mirakl shops and e-mails
KYC_MONITOR: WorkflowSpec[KycMonitor] = lazy_spec(
    "kyc_monitor",
    "mirakl_connector.stripe.kyc_monitor",
    StepSpec("monitor", STRIPE_POOL),  # login/account links are Stripe writes
    settings="KycMonitorSettings",
)

#: Stripe webhook events (the inbox) → the ledger and Mirakl
STRIPE_EVENTS: WorkflowSpec[StripeEvents] = lazy_spec(
    "stripe_events",
    "mirakl_connector.stripe.events",
    StepSpec("process", STRIPE_POOL),
    StepSpec("heal_connected", STRIPE_POOL),
    settings="StripeEventsSettings",
)

SPECS: tuple[WorkflowSpec[Any], ...] = (
    PAYMENT_SPLIT,
    PAYMENT_REFUND,
    SELLER_SETTLEMENT,
    PAYMENT_VALIDATION,
    SELLER_ONBOARDING,
    KYC_MONITOR,
    STRIPE_EVENTS,
)
