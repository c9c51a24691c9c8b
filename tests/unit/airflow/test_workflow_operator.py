"""The generic workflow operator: params, config and run id reach the step; one XCom value back."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from mirakl_connector.airflow import workflows
from mirakl_connector.airflow.operators.workflow import MiraklWorkflowOperator
from mirakl_connector.core import registry
from mirakl_connector.core.batch import BatchSummary, ItemOutcome
from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.core.workflow_spec import StepSpec, WorkflowSpec

CALLS: list[tuple[str, dict]] = []


class RecordingJob:
    """A registered stand-in workflow that records how it was built and called."""

    def __init__(self, resources, config, run_id):
        self.resources, self.config, self.run_id = resources, config, run_id
        CALLS.append(("build", {"config": config, "run_id": run_id}))

    def plan(self, *, since=None, order_ids=None, dry_run=False):
        CALLS.append(("plan", {"since": since, "order_ids": order_ids, "dry_run": dry_run}))
        summary = BatchSummary("recording", "plan", dry_run=dry_run)
        summary.add(ItemOutcome("1-A", "TRANSFER_PENDING", amount=1234, currency="EUR"))
        summary.add(ItemOutcome("2-A", "TRANSFER_FAILED", "bad data", failed=True))
        return summary

    def execute(self, *, dry_run=False):
        CALLS.append(("execute", {"dry_run": dry_run, "mirakl": self.resources.get("mirakl")}))
        return BatchSummary("recording", "execute", dry_run=dry_run)


@pytest.fixture(autouse=True)
def recording_workflow(monkeypatch):
    CALLS.clear()
    spec = WorkflowSpec(
        name="recording",
        section=None,
        settings=None,
        builder=RecordingJob,
        steps=(StepSpec("plan", "mirakl_api"), StepSpec("execute", "stripe_api")),
    )
    monkeypatch.setitem(workflows.SPECS, "recording", spec)


def test_step_gets_parsed_params_config_and_run_id(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG", json.dumps({"payment_split": {"tax_split": 1}})
    )
    op = MiraklWorkflowOperator(task_id="plan_transfers", workflow="recording", step="plan")
    result = op.execute(
        {
            "run_id": "manual__1",
            "params": {"since": "2026-03-01T00:00:00Z", "order_ids": ["1-A"], "dry_run": True},
        }
    )
    assert CALLS == [
        ("build", {"config": {"payment_split": {"tax_split": 1}}, "run_id": "manual__1"}),
        (
            "plan",
            {"since": datetime(2026, 3, 1, tzinfo=UTC), "order_ids": ["1-A"], "dry_run": True},
        ),
    ]
    assert result["counts"] == {"TRANSFER_FAILED": 1, "TRANSFER_PENDING": 1}
    assert result["amounts"] == {"TRANSFER_PENDING": {"EUR": "12.34"}}
    assert result["failed"] == [{"id": "2-A", "reason": "bad data"}]
    json.dumps(result)  # one JSON-safe XCom value


def test_step_receives_only_the_params_it_accepts_and_clients_are_lazy(monkeypatch):
    op = MiraklWorkflowOperator(task_id="create_transfers", workflow="recording", step="execute")
    built = []
    monkeypatch.setattr(
        op, "build_resources", lambda _config: registry.Resources(
            mirakl=lambda: built.append("mirakl") or "mirakl-client",
            stripe=lambda: built.append("stripe"),
            ledger=lambda: built.append("ledger"),
        )
    )  # fmt: skip
    op.execute({"run_id": "r", "params": {"order_ids": [], "dry_run": False}})
    assert CALLS[-1] == ("execute", {"dry_run": False, "mirakl": "mirakl-client"})
    assert built == ["mirakl"]  # Stripe and the ledger were never needed


def test_bad_param_fails_before_anything_is_built():
    op = MiraklWorkflowOperator(task_id="plan_transfers", workflow="recording", step="plan")
    with pytest.raises(ConfigurationError, match="param 'since'"):
        op.execute({"params": {"since": "last tuesday"}})
    assert CALLS == []


def test_unknown_workflow_and_step_are_refused_with_a_clear_message():
    # when the DAG is parsed: the spec declares no such workflow or step
    with pytest.raises(ConfigurationError, match="unknown workflow 'nope'"):
        MiraklWorkflowOperator(task_id="t", workflow="nope", step="plan")
    with pytest.raises(ConfigurationError, match="workflow 'recording' has no step 'refund'"):
        MiraklWorkflowOperator(task_id="t", workflow="recording", step="refund")
    with pytest.raises(ConfigurationError, match="a step is a public method name"):
        StepSpec("_private", "stripe_api")
    # when it runs: a step the spec declares but the job does not have
    spec = WorkflowSpec(
        name="recording",
        section=None,
        settings=None,
        builder=RecordingJob,
        steps=(StepSpec("refund", "stripe_api"),),
    )
    op = MiraklWorkflowOperator(task_id="t", workflow=spec, step="refund")
    with pytest.raises(ConfigurationError, match="RecordingJob has no step 'refund'"):
        op.execute({"params": {}})
