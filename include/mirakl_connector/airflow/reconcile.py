"""The ``reconcile`` task every money-moving DAG ends with, before its ``report``.

It runs step ``reconcile`` of workflow ``reconciliation`` (see
:mod:`mirakl_connector.reconciliation.workflow`) for the DAG's flow: the ledger rows the run
changed against the provider's objects (listed by creation window) and their Mirakl documents.
The task is green whenever it could compare; each mismatch is a failed item of its summary, so
the ``report`` task lists it and fails the run (and the failure e-mail goes out), and the
report's summary says first whether the run reconciles.
"""

from __future__ import annotations

from typing import Any

from mirakl_connector.airflow.operators.workflow import MiraklWorkflowOperator
from mirakl_connector.core.workflow_spec import WorkflowSpec
from mirakl_connector.reconciliation.specs import RECONCILIATION

RECONCILE_TASK_ID = "reconcile"


def reconcile_task(flow: WorkflowSpec[Any], **kwargs: Any) -> MiraklWorkflowOperator:
    """The reconcile task of ``flow`` (payment split, refunds, settlement, Hyperwallet invoice
    payments: the flows :mod:`mirakl_connector.reconciliation.flows` knows)."""
    return MiraklWorkflowOperator(
        task_id=kwargs.pop("task_id", RECONCILE_TASK_ID),
        workflow=RECONCILIATION,
        step="reconcile",
        step_kwargs={"flow": flow.name},
        **kwargs,
    )
