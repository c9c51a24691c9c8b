"""The reconciliation workflow's spec (:class:`~mirakl_connector.core.workflow_spec.WorkflowSpec`).

Light on purpose: the DAG files import this module when they are parsed, so the spec names the
workflow module, imported only when a task runs (:func:`lazy_spec`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mirakl_connector.core.workflow_spec import MIRAKL_POOL, StepSpec, WorkflowSpec, lazy_spec

if TYPE_CHECKING:
    from mirakl_connector.reconciliation.workflow import Reconciliation

#: what a run (or a day) moved, against the provider and Mirakl; reads only the flows' sections
RECONCILIATION: WorkflowSpec[Reconciliation] = lazy_spec(
    "reconciliation",
    "mirakl_connector.reconciliation.workflow",
    # reads only: provider lists by creation window and Mirakl lists, a few calls per run
    StepSpec("reconcile", MIRAKL_POOL),
    StepSpec("reconcile_day", MIRAKL_POOL),
    section=None,
)
