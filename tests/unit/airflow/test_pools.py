"""Pools: sizes derived from the providers' rate limits, and which step runs in which pool."""

from __future__ import annotations

import json

import pendulum
import pytest
from airflow.sdk import DAG

from mirakl_connector.airflow import pools
from mirakl_connector.airflow.operators.workflow import MiraklWorkflowOperator
from mirakl_connector.airflow.sensors.mirakl import MiraklApiSensor
from mirakl_connector.airflow.workflows import SPECS, spec_named
from mirakl_connector.core.batch import BatchSummary
from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.core.workflow_spec import StepSpec, WorkflowSpec
from mirakl_connector.stripe.specs import PAYMENT_SPLIT


def test_stripe_pool_follows_the_mode_s_rate_limit():
    # 100 req/s live and 25 test, 80 % for Airflow, ~5 req/s per sequential task.
    assert pools.stripe_slots("live") == 16
    assert pools.stripe_slots("test") == 4
    with pytest.raises(ValueError, match="'live' or 'test'"):
        pools.stripe_slots("prod")


@pytest.mark.parametrize(("mode", "shard_slots"), [("live", 2), ("test", 1)])
def test_pool_description_says_how_tasks_pace_themselves(mode, shard_slots):
    """docs.stripe.com/rate-limits: 100 (live) or 25 (test) requests/s per account, 25/s per
    endpoint; each slot 5 requests/s overall, each task 5 on one endpoint."""
    description = {s.name: s.description for s in pools.pool_specs(mode)}["stripe_api"]
    assert "each slot paced to 5 req/s, each task to 5 on one endpoint" in description
    assert f"a shard of a sharded step takes {shard_slots} slot(s)" in description

    def slots(workflow: str, step: str) -> int:
        return pools.pool_slots_for_step(spec_named(workflow).step(step), mode)

    assert slots("payment_split", "execute") == shard_slots
    assert slots("seller_settlement", "payout") == shard_slots
    assert slots("payment_refund", "reverse") == shard_slots
    assert slots("payment_refund", "plan") == 1  # not sharded
    assert slots("payment_split", "plan") == 1  # Mirakl pool


def test_the_dag_files_read_the_mode_from_the_environment(monkeypatch):
    monkeypatch.delenv(pools.STRIPE_MODE_ENV, raising=False)
    assert pools.stripe_mode_from_env() == "test"
    monkeypatch.setenv(pools.STRIPE_MODE_ENV, "live")
    assert pools.stripe_mode_from_env() == "live"
    monkeypatch.setenv(pools.STRIPE_MODE_ENV, "prod")
    with pytest.raises(ValueError, match="'live' or 'test'"):
        pools.stripe_mode_from_env()


@pytest.mark.parametrize("mode, stripe_slots", [("test", 4), ("live", 16)])
def test_import_file_has_both_pools(mode, stripe_slots, capsys):
    assert pools.main(["--stripe-mode", mode]) == 0
    parsed = json.loads(capsys.readouterr().out)
    assert parsed["stripe_api"]["slots"] == stripe_slots
    assert parsed["mirakl_api"]["slots"] == 2
    assert parsed["hyperwallet_api"]["slots"] == 2
    assert f"({mode} mode)" in parsed["stripe_api"]["description"]
    assert all(p["include_deferred"] is False for p in parsed.values())


def test_mode_comes_from_the_environment(monkeypatch, capsys):
    monkeypatch.setenv(pools.STRIPE_MODE_ENV, "live")
    pools.main([])
    assert json.loads(capsys.readouterr().out)["stripe_api"]["slots"] == 16


@pytest.mark.parametrize(
    "workflow, step, pool",
    [
        ("payment_split", "plan", "mirakl_api"),
        ("payment_split", "execute", "stripe_api"),
        ("payment_validation", "validate", "mirakl_api"),
        ("payment_validation", "capture", "stripe_api"),
        ("payment_refund", "plan", "stripe_api"),
        ("seller_settlement", "plan", "mirakl_api"),
        ("seller_settlement", "payout", "stripe_api"),
        ("failed_operations", "alert", "default_pool"),
        ("operator_notifications", "deliver", "default_pool"),
        ("hyperwallet_invoice_payments", "pay", "hyperwallet_api"),
        ("hyperwallet_payment_status", "process", "mirakl_api"),
    ],
)
def test_each_step_declares_its_pool(workflow, step, pool):
    assert spec_named(workflow).step(step).pool == pool


def test_a_step_cannot_be_declared_without_a_pool():
    """A new workflow that moves money must not run unthrottled because nobody named a pool."""
    with pytest.raises(TypeError):
        StepSpec("pay")  # type: ignore[call-arg]


def test_every_declared_pool_is_one_the_connector_creates_or_airflow_s_default():
    created = {spec.name for spec in pools.pool_specs("test")} | {pools.DEFAULT_POOL}
    declared = {(w.name, s.name, s.pool) for w in SPECS.values() for s in w.steps}
    assert {pool for _w, _s, pool in declared} <= created, sorted(
        d for d in declared if d[2] not in created
    )


def test_operator_defaults_to_its_step_s_pool_but_an_explicit_pool_wins():
    assert MiraklWorkflowOperator(task_id="a", workflow=PAYMENT_SPLIT, step="plan").pool == (
        "mirakl_api"
    )
    assert MiraklWorkflowOperator(task_id="b", workflow=PAYMENT_SPLIT, step="execute").pool == (
        "stripe_api"
    )
    explicit = MiraklWorkflowOperator(
        task_id="c", workflow=PAYMENT_SPLIT, step="execute", pool="my_pool"
    )
    assert explicit.pool == "my_pool"
    assert MiraklApiSensor(task_id="d").pool == "mirakl_api"


def test_dag_default_args_pool_wins_over_the_operator_default():
    with DAG(
        "pools_default_args",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        default_args={"pool": "shared_pool"},
    ):
        op = MiraklWorkflowOperator(task_id="e", workflow=PAYMENT_SPLIT, step="execute")
    assert op.pool == "shared_pool"


class ShardJob:
    """A stand-in workflow whose execute step records its arguments."""

    calls: list[dict] = []

    def __init__(self, resources, config, run_id):
        pass

    def execute(self, *, dry_run=False, shard=None, shards=None):
        ShardJob.calls.append({"dry_run": dry_run, "shard": shard, "shards": shards})
        return BatchSummary("shard_job", "execute", dry_run=dry_run)


SHARD_JOB = WorkflowSpec(
    name="shard_job",
    section="shard_job",
    settings=None,
    builder=ShardJob,
    steps=(StepSpec("execute", "stripe_api", sharded=True),),
)


def test_step_kwargs_reach_the_step_on_top_of_the_run_params():
    ShardJob.calls = []
    op = MiraklWorkflowOperator(
        task_id="create_transfers",
        workflow=SHARD_JOB,
        step="execute",
        step_kwargs={"shard": 2, "shards": 4, "dry_run": False},
    )
    op.execute({"run_id": "r", "params": {"dry_run": True, "order_ids": ["1-A"]}})
    # step_kwargs win over the params; params the step does not take are dropped
    assert ShardJob.calls == [{"dry_run": False, "shard": 2, "shards": 4}]


def test_an_undeclared_step_or_workflow_fails_when_the_dag_is_parsed():
    with pytest.raises(ConfigurationError, match="has no step 'pay'"):
        MiraklWorkflowOperator(task_id="f", workflow=PAYMENT_SPLIT, step="pay")
    with pytest.raises(ConfigurationError, match="unknown workflow 'nope'"):
        MiraklWorkflowOperator(task_id="g", workflow="nope", step="plan")
