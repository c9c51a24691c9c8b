"""The reconciliation workflow's spec (:class:`~mirakl_connector.core.workflow_spec.WorkflowSpec`).

Light on purpose: the DAG files import this module when they are parsed, so the builder imports
the workflow module only when a task runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mirakl_connector.core.workflow_spec import MIRAKL_POOL, StepSpec, WorkflowSpec

if TYPE_CHECKING:
    from mirakl_connector.core.registry import Resources
    from mirakl_connector.reconciliation.workflow import Reconciliation


def _build_reconciliation(
    resources: Resources, config: Mapping[str, Any], run_id: str | None
) -> Reconciliation:
    from mirakl_connector.reconciliation import workflow

    return workflow.build(resources, config, run_id)


#: what a run (or a day) moved, against the provider and Mirakl; reads only the flows' sections
RECONCILIATION: WorkflowSpec[Reconciliation] = WorkflowSpec(
    name="reconciliation",
    section=None,
    settings=None,
    builder=_build_reconciliation,
    # reads only: provider lists by creation window and Mirakl lists, a few calls per run
    steps=(
        StepSpec("reconcile", MIRAKL_POOL),
        StepSpec("reconcile_day", MIRAKL_POOL),
    ),
)
