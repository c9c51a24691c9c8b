"""The operations workflows' specs (:class:`~mirakl_connector.core.workflow_spec.WorkflowSpec`).

Light on purpose: the DAG files import this module when they are parsed, so each spec names its
workflow module, imported (the ledger) only when a task runs (:func:`lazy_spec`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mirakl_connector.core.workflow_spec import DEFAULT_POOL, StepSpec, WorkflowSpec, lazy_spec

if TYPE_CHECKING:
    from mirakl_connector.operations.failed_operations import FailedOperationsAlert
    from mirakl_connector.operations.operator_notifications import OperatorNotifications

#: the ledger's failed and stuck rows → one e-mail
FAILED_OPERATIONS: WorkflowSpec[FailedOperationsAlert] = lazy_spec(
    "failed_operations",
    "mirakl_connector.operations.failed_operations",
    StepSpec("alert", DEFAULT_POOL),  # ledger + e-mail only
    settings="FailedOperationsSettings",
)

#: the ledger's notifications → the operator's own endpoint, and e-mail
OPERATOR_NOTIFICATIONS: WorkflowSpec[OperatorNotifications] = lazy_spec(
    "operator_notifications",
    "mirakl_connector.operations.operator_notifications",
    StepSpec("deliver", DEFAULT_POOL),  # the operator's own endpoint + e-mail
    settings="NotificationSettings",
)

SPECS: tuple[WorkflowSpec[Any], ...] = (FAILED_OPERATIONS, OPERATOR_NOTIFICATIONS)
