from __future__ import annotations

from typing import Any

import pytest

from mirakl_connector.airflow.operators.report import (
    REPORT_XCOM_KEY,
    BatchFailuresError,
    BatchReportOperator,
    merge_summaries,
)


class FakeTI:
    def __init__(self, xcoms: dict[str, Any]) -> None:
        self.xcoms = xcoms
        self.pushed: dict[str, Any] = {}

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        return self.xcoms.get(task_ids)

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


PLAN = {"counts": {"pending": 3, "on_hold": 1}, "failed": []}
EXECUTE_OK = {"counts": {"created": 3}, "failed": []}


def _report(xcoms: dict[str, Any]) -> tuple[BatchReportOperator, FakeTI]:
    op = BatchReportOperator(task_id="report", summary_task_ids=["plan", "execute"])
    return op, FakeTI(xcoms)


def test_merge_keeps_counts_per_step_and_tags_failures_with_their_step() -> None:
    merged = merge_summaries(
        {
            "plan": {"counts": {"pending": 2}, "failed": [{"id": "1-A", "reason": "bad amount"}]},
            "execute": {"created": 1, "failed": [{"id": "2-A", "reason": "Transfers disabled."}]},
            "later": None,
        }
    )
    assert merged["steps"] == {"plan": {"pending": 2}, "execute": {"created": 1}}
    assert merged["missing_steps"] == ["later"]
    assert merged["failed"] == [
        {"step": "plan", "id": "1-A", "reason": "bad amount"},
        {"step": "execute", "id": "2-A", "reason": "Transfers disabled."},
    ]
    assert merged["failed_count"] == 2 and merged["has_failures"] is True


def test_clean_run_returns_the_merged_summary() -> None:
    op, ti = _report({"plan": PLAN, "execute": EXECUTE_OK})
    result = op.execute({"ti": ti})
    assert result["steps"] == {"plan": {"on_hold": 1, "pending": 3}, "execute": {"created": 3}}
    assert result["has_failures"] is False
    assert ti.pushed == {}


def test_failures_raise_listing_the_first_twenty_items() -> None:
    failed = [{"id": f"order-{i}", "reason": "Transfers disabled."} for i in range(25)]
    op, ti = _report({"plan": PLAN, "execute": {"counts": {"failed": 25}, "failed": failed}})
    with pytest.raises(BatchFailuresError) as excinfo:
        op.execute({"ti": ti})
    message = str(excinfo.value)
    assert message.startswith("25 item(s) failed (first 20 listed)")
    assert "execute: order-19: Transfers disabled." in message
    assert "order-20" not in message
    assert "... and 5 more" in message
    assert len(excinfo.value.failed) == 25
    assert ti.pushed[REPORT_XCOM_KEY]["failed_count"] == 25


def test_failed_total_counts_items_the_step_did_not_list() -> None:
    listed = [{"id": f"order-{i}", "reason": "x"} for i in range(20)]
    summary = {"counts": {"TRANSFER_FAILED": 30}, "failed_total": 30, "failed": listed}
    op, ti = _report({"plan": PLAN, "execute": summary})
    with pytest.raises(BatchFailuresError) as excinfo:
        op.execute({"ti": ti})
    assert str(excinfo.value).startswith("30 item(s) failed (first 20 listed)")
    assert str(excinfo.value).endswith("... and 10 more")


def test_report_needs_steps() -> None:
    with pytest.raises(ValueError, match="summary_task_ids"):
        BatchReportOperator(task_id="report", summary_task_ids=[])
