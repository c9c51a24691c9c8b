"""Every task that calls Mirakl or Stripe runs in that provider's pool (mapped tasks included)."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

from mirakl_connector.airflow.pools import MIRAKL_POOL, STRIPE_POOL, pool_for_step
from mirakl_connector.airflow.sensors.mirakl import MiraklApiSensor
from mirakl_connector.airflow.sensors.stripe import StripeNewObjectsSensor

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    bag = DagBag(dag_folder=str(DAGS_DIR))
    assert bag.import_errors == {}
    return bag


def _workflow_step(task) -> tuple[str, str] | None:
    """(workflow, step) of a MiraklWorkflowOperator task, mapped or not."""
    partial = getattr(task, "partial_kwargs", None)
    if partial is not None and "workflow" in partial:
        return partial["workflow"], partial["step"]
    if hasattr(task, "workflow") and hasattr(task, "step"):
        return task.workflow, task.step
    return None


def test_provider_tasks_use_the_provider_pools(dagbag):
    checked = 0
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            where = f"{dag.dag_id}.{task.task_id}"
            found = _workflow_step(task)
            if found is not None:
                assert task.pool == pool_for_step(*found), where
                checked += 1
            elif isinstance(task, MiraklApiSensor):
                assert task.pool == MIRAKL_POOL, where
                checked += 1
            elif isinstance(task, StripeNewObjectsSensor):
                assert task.pool == STRIPE_POOL, where
                checked += 1
    assert checked >= 15  # every workflow DAG's steps and sensors were seen


def test_payment_split_shards_run_in_the_stripe_pool(dagbag):
    create = dagbag.dags["stripe_payment_split"].task_dict["create_transfers"]
    assert create.pool == STRIPE_POOL
    assert dagbag.dags["stripe_payment_split"].task_dict["plan_transfers"].pool == MIRAKL_POOL
