"""The Stripe workflows' specs (:class:`~mirakl_connector.core.workflow_spec.WorkflowSpec`).

Light on purpose: the DAG files import this module when they are parsed, so each builder imports
its workflow module (the SDK, the ledger) only when a task runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mirakl_connector.core.workflow_spec import MIRAKL_POOL, STRIPE_POOL, StepSpec, WorkflowSpec

if TYPE_CHECKING:
    from mirakl_connector.core.registry import Resources
    from mirakl_connector.stripe.events import StripeEvents
    from mirakl_connector.stripe.kyc_monitor import KycMonitor
    from mirakl_connector.stripe.onboarding import SellerOnboarding
    from mirakl_connector.stripe.payment_split import PaymentSplit
    from mirakl_connector.stripe.payment_validation import PaymentValidation
    from mirakl_connector.stripe.refunds import PaymentRefund
    from mirakl_connector.stripe.settlement import SellerSettlement

Config = Mapping[str, Any]


def _build_payment_split(resources: Resources, config: Config, run_id: str | None) -> PaymentSplit:
    from mirakl_connector.stripe import payment_split

    return payment_split.build(resources, config, run_id)


def _payment_split_settings() -> type[Any]:
    from mirakl_connector.stripe.payment_split import PaymentSplitSettings

    return PaymentSplitSettings


#: Mirakl orders → Stripe transfers to the sellers
PAYMENT_SPLIT: WorkflowSpec[PaymentSplit] = WorkflowSpec(
    name="payment_split",
    section="payment_split",
    settings=_payment_split_settings,
    builder=_build_payment_split,
    steps=(
        StepSpec("plan", MIRAKL_POOL),
        StepSpec("execute", STRIPE_POOL, sharded=True),
    ),
)


def _build_payment_refund(
    resources: Resources, config: Config, run_id: str | None
) -> PaymentRefund:
    from mirakl_connector.stripe import refunds

    return refunds.build(resources, config, run_id)


def _payment_refund_settings() -> type[Any]:
    from mirakl_connector.stripe.refunds import PaymentRefundSettings

    return PaymentRefundSettings


#: Mirakl refunds → Stripe refunds, PA02/SPA02, seller transfer reversals
PAYMENT_REFUND: WorkflowSpec[PaymentRefund] = WorkflowSpec(
    name="payment_refund",
    section="payment_refund",
    settings=_payment_refund_settings,
    builder=_build_payment_refund,
    steps=(
        StepSpec("plan", STRIPE_POOL),  # cancels uncaptured payments: a Stripe write
        StepSpec("refund", STRIPE_POOL, sharded=True),
        StepSpec("reverse", STRIPE_POOL, sharded=True),
    ),
)


def _build_seller_settlement(
    resources: Resources, config: Config, run_id: str | None
) -> SellerSettlement:
    from mirakl_connector.stripe import settlement

    return settlement.build(resources, config, run_id)


def _seller_settlement_settings() -> type[Any]:
    from mirakl_connector.stripe.settlement import SettlementSettings

    return SettlementSettings


#: Mirakl invoices → Stripe transfers and payouts
SELLER_SETTLEMENT: WorkflowSpec[SellerSettlement] = WorkflowSpec(
    name="seller_settlement",
    section="seller_settlement",
    settings=_seller_settlement_settings,
    builder=_build_seller_settlement,
    steps=(
        StepSpec("plan", MIRAKL_POOL),
        StepSpec("transfer", STRIPE_POOL, sharded=True),
        StepSpec("payout", STRIPE_POOL, sharded=True),
    ),
)


def _build_payment_validation(
    resources: Resources, config: Config, run_id: str | None
) -> PaymentValidation:
    from mirakl_connector.stripe import payment_validation

    return payment_validation.build(resources, config, run_id)


def _payment_validation_settings() -> type[Any]:
    from mirakl_connector.stripe.payment_validation import PaymentValidationSettings

    return PaymentValidationSettings


#: Mirakl debits → PA01 validation, Stripe captures
PAYMENT_VALIDATION: WorkflowSpec[PaymentValidation] = WorkflowSpec(
    name="payment_validation",
    section="payment_validation",
    settings=_payment_validation_settings,
    builder=_build_payment_validation,
    steps=(
        StepSpec("validate", MIRAKL_POOL),
        StepSpec("capture", STRIPE_POOL),
    ),
)


def _build_seller_onboarding(
    resources: Resources, config: Config, run_id: str | None
) -> SellerOnboarding:
    from mirakl_connector.stripe import onboarding

    return onboarding.build(resources, config, run_id)


def _onboarding_settings() -> type[Any]:
    from mirakl_connector.stripe.onboarding import OnboardingSettings

    return OnboardingSettings


#: Mirakl shops → Stripe connected accounts and onboarding links
SELLER_ONBOARDING: WorkflowSpec[SellerOnboarding] = WorkflowSpec(
    name="seller_onboarding",
    section="seller_onboarding",
    settings=_onboarding_settings,
    builder=_build_seller_onboarding,
    steps=(StepSpec("sync", STRIPE_POOL),),
)


def _build_kyc_monitor(resources: Resources, config: Config, run_id: str | None) -> KycMonitor:
    from mirakl_connector.stripe import kyc_monitor

    return kyc_monitor.build(resources, config, run_id)


def _kyc_monitor_settings() -> type[Any]:
    from mirakl_connector.stripe.kyc_monitor import KycMonitorSettings

    return KycMonitorSettings


#: Stripe accounts' KYC → Mirakl shops and e-mails
KYC_MONITOR: WorkflowSpec[KycMonitor] = WorkflowSpec(
    name="kyc_monitor",
    section="kyc_monitor",
    settings=_kyc_monitor_settings,
    builder=_build_kyc_monitor,
    steps=(StepSpec("monitor", STRIPE_POOL),),  # login/account links are Stripe writes
)


def _build_stripe_events(resources: Resources, config: Config, run_id: str | None) -> StripeEvents:
    from mirakl_connector.stripe import events

    return events.build(resources, config, run_id)


def _stripe_events_settings() -> type[Any]:
    from mirakl_connector.stripe.events import StripeEventsSettings

    return StripeEventsSettings


#: Stripe webhook events (the inbox) → the ledger and Mirakl
STRIPE_EVENTS: WorkflowSpec[StripeEvents] = WorkflowSpec(
    name="stripe_events",
    section="stripe_events",
    settings=_stripe_events_settings,
    builder=_build_stripe_events,
    steps=(
        StepSpec("process", STRIPE_POOL),
        StepSpec("heal_connected", STRIPE_POOL),
    ),
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
