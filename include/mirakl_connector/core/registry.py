"""The clients a workflow may use, and how to run one step of a built job.

The Airflow operator knows nothing about payment splits or refunds: it builds the clients a
workflow may need (lazily, so a step that never calls Stripe never needs its key), builds the job
with the workflow's :class:`~mirakl_connector.core.workflow_spec.WorkflowSpec`, and calls one of
its declared steps with the run's parameters. Adding a workflow is one spec in its provider's
``specs`` module, listed in :mod:`mirakl_connector.airflow.workflows`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mirakl_connector.core.batch import BatchSummary
from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.core.workflow_spec import StepSpec


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


def run_step(job: Any, step: StepSpec, params: Mapping[str, Any]) -> BatchSummary:
    """Call ``job.<step>`` with the run parameters it accepts (others are for other steps)."""
    method = getattr(job, step.name, None)
    if method is None:
        raise ConfigurationError(f"{type(job).__name__} has no step {step.name!r}")
    accepted = inspect.signature(method).parameters
    if ("shard" in params or "shards" in params) and not (step.sharded and "shard" in accepted):
        # Dropped silently, every mapped task of the step would send every row at once.
        raise ConfigurationError(f"{type(job).__name__}.{step.name} cannot run sharded")
    summary: BatchSummary = method(**{k: v for k, v in params.items() if k in accepted})
    return summary
