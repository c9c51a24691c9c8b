"""DAG building blocks for a step that runs as one mapped task per shard of its PENDING rows.

Three DAGs write to Stripe in volume (payment split, refunds, settlement). Each of their write
steps is expanded over ``[{"shard": 0, "shards": n}, ...]``, where ``n`` is the workflow's
``execute_shards`` setting read when the run starts (:func:`shard_plan_task`), never at parse
time. On CeleryExecutor the shards run on several workers at once; the pool of the step
(:func:`~mirakl_connector.airflow.pools.pool_for_step`) still caps how many run together, and
each shard takes the pool slots that pay for its pace
(:func:`~mirakl_connector.airflow.pools.pool_slots_for_step`, sized for
``$MIRAKL_CONNECTOR_STRIPE_MODE`` like the pool itself).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from mirakl_connector.airflow.operators.workflow import MiraklWorkflowOperator
from mirakl_connector.airflow.pools import (
    DEFAULT_POOL,
    pool_for_step,
    pool_slots_for_step,
    stripe_mode_from_env,
)
from mirakl_connector.core.shards import shards_from_config

if TYPE_CHECKING:
    from airflow.sdk import Context


class ShardPlanOperator(BaseOperator):
    """Return ``[{"shard": i, "shards": n}, ...]`` for ``section``'s write steps (XCom for
    ``expand``), ``n`` read from the connector configuration when the run starts.

    A plain operator rather than ``@task``: the decorator would import the standard provider's
    Python operators into every parse of the DAG file, for one line of work.
    """

    ui_color = "#f4f4f4"

    def __init__(self, *, section: str, **kwargs: Any) -> None:
        kwargs.setdefault("pool", DEFAULT_POOL)
        super().__init__(**kwargs)
        self.section = section

    def execute(self, context: Context) -> list[dict[str, int]]:
        from mirakl_connector.airflow.config import load_connector_config

        shards = shards_from_config(load_connector_config(), self.section)
        self.log.info("%s: %d shard(s)", self.section, len(shards))
        return shards


def shard_plan_task(section: str, *, task_id: str = "plan_shards") -> Any:
    """The :class:`ShardPlanOperator` of ``section``, as the XComArg that ``expand`` takes."""
    return ShardPlanOperator(task_id=task_id, section=section).output


def sharded_step(*, task_id: str, workflow: str, step: str, shards: Any) -> Any:
    """``MiraklWorkflowOperator`` for ``workflow.step``, one mapped task per shard.

    A mapped task takes its pool from ``partial()``, not from the operator's default, so it is
    passed here, with the slots each shard takes; the map index reads "shard i" in the UI.
    """
    return MiraklWorkflowOperator.partial(
        task_id=task_id,
        workflow=workflow,
        step=step,
        pool=pool_for_step(workflow, step),
        pool_slots=pool_slots_for_step(workflow, step, stripe_mode_from_env()),
        map_index_template="shard {{ task.step_kwargs['shard'] }}",
    ).expand(step_kwargs=shards)
