"""The operations workflows' specs (:class:`~mirakl_connector.core.workflow_spec.WorkflowSpec`).

Light on purpose: the DAG files import this module when they are parsed, so each builder imports
its workflow module (the ledger) only when a task runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mirakl_connector.core.workflow_spec import DEFAULT_POOL, StepSpec, WorkflowSpec

if TYPE_CHECKING:
    from mirakl_connector.core.registry import Resources
    from mirakl_connector.operations.failed_operations import FailedOperationsAlert
    from mirakl_connector.operations.operator_notifications import OperatorNotifications

Config = Mapping[str, Any]


def _build_failed_operations(
    resources: Resources, config: Config, run_id: str | None
) -> FailedOperationsAlert:
    from mirakl_connector.operations import failed_operations

    return failed_operations.build(resources, config, run_id)


def _failed_operations_settings() -> type[Any]:
    from mirakl_connector.operations.failed_operations import FailedOperationsSettings

    return FailedOperationsSettings


#: the ledger's failed and stuck rows → one e-mail
FAILED_OPERATIONS: WorkflowSpec[FailedOperationsAlert] = WorkflowSpec(
    name="failed_operations",
    section="failed_operations",
    settings=_failed_operations_settings,
    builder=_build_failed_operations,
    steps=(StepSpec("alert", DEFAULT_POOL),),  # ledger + e-mail only
)


def _build_operator_notifications(
    resources: Resources, config: Config, run_id: str | None
) -> OperatorNotifications:
    from mirakl_connector.operations import operator_notifications

    return operator_notifications.build(resources, config, run_id)


def _operator_notification_settings() -> type[Any]:
    from mirakl_connector.operations.operator_notifications import NotificationSettings

    return NotificationSettings


#: the ledger's notifications → the operator's own endpoint, and e-mail
OPERATOR_NOTIFICATIONS: WorkflowSpec[OperatorNotifications] = WorkflowSpec(
    name="operator_notifications",
    section="operator_notifications",
    settings=_operator_notification_settings,
    builder=_build_operator_notifications,
    steps=(StepSpec("deliver", DEFAULT_POOL),),  # the operator's own endpoint + e-mail
)

SPECS: tuple[WorkflowSpec[Any], ...] = (FAILED_OPERATIONS, OPERATOR_NOTIFICATIONS)
