"""DAG building blocks for a step that runs as one mapped task per shard of its PENDING rows.

Three DAGs write to Stripe in volume (payment split, refunds, settlement). Each of their write
steps is expanded over ``[{"shard": 0, "shards": n}, ...]``, where ``n`` is the workflow's
``execute_shards`` setting read when the run starts (:func:`shard_plan_task`), never at parse
time. Which steps are sharded, and their pool, is declared in the workflow's spec
(:class:`~mirakl_connector.core.workflow_spec.StepSpec`). On CeleryExecutor the shards run on
several workers at once; the pool of the step still caps how many run together, and
each shard takes the pool slots that pay for its pace
(:func:`~mirakl_connector.airflow.pools.pool_slots_for_step`, sized for
``$MIRAKL_CONNECTOR_STRIPE_MODE`` like the pool itself).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from mirakl_connector.airflow.operators.workflow import MiraklWorkflowOperator
from mirakl_connector.airflow.pools import DEFAULT_POOL, pool_slots_for_step, stripe_mode_from_env
from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.core.shards import shards_from_config
from mirakl_connector.core.workflow_spec import WorkflowSpec

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


def _section(spec: WorkflowSpec[Any]) -> str:
    if not spec.sharded_steps or spec.section is None:
        raise ConfigurationError(f"workflow {spec.name!r} has no sharded step")
    return spec.section


def shard_plan_task(workflow: WorkflowSpec[Any], *, task_id: str = "plan_shards") -> Any:
    """The :class:`ShardPlanOperator` of ``workflow``'s settings section, as the XComArg that
    ``expand`` takes."""
    return ShardPlanOperator(task_id=task_id, section=_section(workflow)).output


def sharded_step(*, task_id: str, workflow: WorkflowSpec[Any], step: str, shards: Any) -> Any:
    """``MiraklWorkflowOperator`` for ``workflow.step``, one mapped task per shard.

    Only a step the spec declares sharded can be mapped (the DAG fails to parse otherwise). A
    mapped task takes its pool from ``partial()``, not from the operator's default, so it is
    passed here, with the slots each shard takes; the map index reads "shard i" in the UI. The
    workflow goes by name: ``partial()``'s arguments are serialised with the DAG.
    """
    declared = workflow.step(step)
    if not declared.sharded:
        raise ConfigurationError(f"{workflow.name}.{step} is not declared sharded")
    return MiraklWorkflowOperator.partial(
        task_id=task_id,
        workflow=workflow.name,
        step=step,
        pool=declared.pool,
        pool_slots=pool_slots_for_step(declared, stripe_mode_from_env()),
        map_index_template="shard {{ task.step_kwargs['shard'] }}",
    ).expand(step_kwargs=shards)
