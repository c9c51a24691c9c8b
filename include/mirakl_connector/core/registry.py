"""Which workflows exist, how to build one, and how to run one of its steps.

The Airflow operator knows nothing about payment splits or refunds: it builds the clients a
workflow may need (lazily, so a step that never calls Stripe never needs its key), looks the
workflow up here by name, and calls one step with the run's parameters. Adding a workflow is one
entry in :data:`WORKFLOWS` and a ``build(resources, config, run_id)`` function in its module.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mirakl_connector.core.batch import BatchSummary
from mirakl_connector.core.errors import ConfigurationError

#: workflow name → "module:function" building it (imported only when the step runs), or the
#: builder itself.
WORKFLOWS: dict[str, str | Callable[..., Any]] = {
    "payment_split": "mirakl_connector.stripe.payment_split:build",
    "seller_onboarding": "mirakl_connector.stripe.onboarding:build",
    "kyc_monitor": "mirakl_connector.stripe.kyc_monitor:build",
    "payment_validation": "mirakl_connector.stripe.payment_validation:build",
    "payment_refund": "mirakl_connector.stripe.refunds:build",
    "seller_settlement": "mirakl_connector.stripe.settlement:build",
    "failed_operations": "mirakl_connector.operations.failed_operations:build",
    "operator_notifications": "mirakl_connector.operations.operator_notifications:build",
    "stripe_events": "mirakl_connector.stripe.events:build",
    "hyperwallet_seller_extract": "mirakl_connector.hyperwallet.seller_sync:build",
    "hyperwallet_bank_account_extract": ("mirakl_connector.hyperwallet.bank_account_sync:build"),
    "hyperwallet_documents_extract": "mirakl_connector.hyperwallet.document_sync:build",
    "hyperwallet_invoice_payments": "mirakl_connector.hyperwallet.invoice_payments:build",
    "hyperwallet_payment_status": "mirakl_connector.hyperwallet.payment_status:build",
    "hyperwallet_kyc_status": "mirakl_connector.hyperwallet.kyc_status:build",
    "hyperwallet_kyc_resync": "mirakl_connector.hyperwallet.kyc_resync:build",
    "reconciliation": "mirakl_connector.reconciliation.workflow:build",
}


@dataclass
class Resources:
    """Factories of the clients a workflow may use; each is called at most once."""

    mirakl: Callable[[], Any]
    stripe: Callable[[], Any]
    ledger: Callable[[], Any]
    mailer: Callable[[], Any] | None = None  # a mirakl_connector.operations.mail.Mailer
    # the operator's notification endpoint (operator_notifications.NotificationSender); the
    # factory may return None when no endpoint is configured
    http: Callable[[], Any] | None = None
    # a mirakl_connector.hyperwallet.client.HyperwalletClient (Hyperwallet workflows only)
    hyperwallet: Callable[[], Any] | None = None
    _built: dict[str, Any] = field(default_factory=dict, repr=False)

    def get(self, name: str) -> Any:
        if name not in self._built:
            factory = getattr(self, name)
            if factory is None:
                raise ConfigurationError(f"this deployment provides no {name}")
            self._built[name] = factory()
        return self._built[name]


def build_workflow(
    name: str, resources: Resources, config: Mapping[str, Any], run_id: str | None
) -> Any:
    """Build the job of workflow ``name`` from the connector configuration."""
    try:
        target = WORKFLOWS[name]
    except KeyError:
        known = ", ".join(sorted(WORKFLOWS))
        raise ConfigurationError(f"unknown workflow {name!r} (known: {known})") from None
    if isinstance(target, str):
        module_name, function = target.split(":")
        target = getattr(importlib.import_module(module_name), function)
    return target(resources, config, run_id)


def run_step(job: Any, step: str, params: Mapping[str, Any]) -> BatchSummary:
    """Call ``job.<step>`` with the run parameters it accepts (others are for other steps)."""
    method = getattr(job, step, None)
    if method is None or step.startswith("_"):
        raise ConfigurationError(f"{type(job).__name__} has no step {step!r}")
    accepted = inspect.signature(method).parameters
    if ("shard" in params or "shards" in params) and "shard" not in accepted:
        # Dropped silently, every mapped task of the step would send every row at once.
        raise ConfigurationError(f"{type(job).__name__}.{step} cannot run sharded")
    return method(**{k: v for k, v in params.items() if k in accepted})
