"""Every task that calls Mirakl or Stripe runs in that provider's pool (mapped tasks included)."""

from __future__ import annotations

from pathlib import Path

import pendulum
import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import DAG

from mirakl_connector.airflow.pools import MIRAKL_POOL, STRIPE_MODE_ENV, STRIPE_POOL
from mirakl_connector.airflow.sensors.mirakl import MiraklApiSensor
from mirakl_connector.airflow.sensors.stripe import StripeNewObjectsSensor
from mirakl_connector.airflow.sharding import sharded_step
from mirakl_connector.airflow.workflows import SPECS, spec_named
from mirakl_connector.stripe import limits as stripe_limits
from mirakl_connector.stripe.specs import PAYMENT_SPLIT

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
                workflow, step = found
                assert task.pool == spec_named(workflow).step(step).pool, where
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


def test_each_shard_takes_the_pool_slots_that_pay_for_its_pace(dagbag):
    """The shards of the three sharded steps take ``shard_slots`` of the stripe_api pool (1 in
    test mode, the tests' default), every other task 1."""
    sharded = {(spec.name, step.name) for spec in SPECS.values() for step in spec.sharded_steps}
    seen = set()
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            found = _workflow_step(task)
            if found is None:
                continue
            expected = stripe_limits.shard_slots("test") if found in sharded else 1
            assert task.pool_slots == expected, f"{dag.dag_id}.{task.task_id}"
            if found in sharded:
                seen.add(found)
    assert seen == sharded


def test_a_live_deployment_gives_each_shard_two_slots(monkeypatch):
    monkeypatch.setenv(STRIPE_MODE_ENV, "live")
    with DAG("live_shards", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
        mapped = sharded_step(
            task_id="create_transfers", workflow=PAYMENT_SPLIT, step="execute",
            shards=[{"shard": 0, "shards": 4}],
        )  # fmt: skip
    assert mapped.pool_slots == stripe_limits.shard_slots("live") == 2
    assert mapped.pool == STRIPE_POOL
