from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from mirakl_connector.airflow.operators.payment_split import PaymentSplitOperator
from mirakl_connector.errors import ConfigurationError


@pytest.fixture
def connections(connection) -> None:
    connection("mirakl_default", conn_type="mirakl", host="http://mirakl", password="mk")
    connection("stripe_default", conn_type="stripe", host="http://stripe", password="sk_test_1")
    connection("mirakl_connector_db", conn_type="sqlite", host="/tmp/ledger.db")


def test_plan_wires_params_config_and_run_id(fake_library, connections, monkeypatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG",
        json.dumps({"payment_split": {"product_enabled": True, "service_enabled": True}}),
    )
    fake_library.summary = {"counts": {"pending": 2}, "failed": [{"id": "9-A", "reason": "x"}]}
    op = PaymentSplitOperator(task_id="plan_transfers", step="plan")
    context = {
        "run_id": "manual__1",
        "params": {"since": "2026-03-01T00:00:00Z", "order_ids": ["1-A"], "dry_run": True},
    }
    result = op.execute(context)
    assert result == fake_library.summary
    assert fake_library.calls == [
        (
            "plan",
            {"since": datetime(2026, 3, 1, tzinfo=UTC), "order_ids": ["1-A"], "dry_run": True},
        )
    ]
    (workflow,) = fake_library.workflows
    assert workflow["run_id"] == "manual__1"
    assert workflow["settings"].service_enabled is True
    assert fake_library.mirakl_clients[0]["base_url"] == "http://mirakl"
    assert fake_library.gateways[0]["base_url"] == "http://stripe"
    assert fake_library.ledgers == ["sqlite:////tmp/ledger.db"]


def test_execute_step_passes_dry_run_and_no_order_filter(fake_library, connections) -> None:
    op = PaymentSplitOperator(task_id="create_transfers", step="execute")
    op.execute({"run_id": "scheduled__1", "params": {"order_ids": [], "dry_run": False}})
    assert fake_library.calls == [("execute", {"order_ids": None, "dry_run": False})]
    assert fake_library.workflows[0]["settings"].service_enabled is False


def test_bad_param_fails_before_any_client_is_built(fake_library, connections) -> None:
    op = PaymentSplitOperator(task_id="plan_transfers", step="plan")
    with pytest.raises(ConfigurationError, match="param 'since'"):
        op.execute({"params": {"since": "last tuesday"}})
    assert fake_library.mirakl_clients == [] and fake_library.calls == []


def test_unknown_step_is_refused() -> None:
    with pytest.raises(ValueError, match="step must be one of"):
        PaymentSplitOperator(task_id="t", step="refund")
