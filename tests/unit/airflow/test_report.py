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


def test_summary_lists_ids_per_outcome_capped_with_a_link_to_the_run() -> None:
    """Item ids per outcome (first 20, "and N more"), a console link filtered on the run."""
    from mirakl_connector.core.batch import BatchSummary, ItemOutcome

    summary = BatchSummary("payment_split", "create_transfers")
    for i in range(25):
        summary.add(ItemOutcome(f"ORD-{i}-A", "TRANSFER_CREATED", amount=100, currency="EUR"))
    summary.add(ItemOutcome("ORD-99-A", "TRANSFER_ON_HOLD", "KYC pending"))
    op = BatchReportOperator(task_id="report", summary_task_ids=["create_transfers"])
    result = op.execute({"ti": FakeTI({"create_transfers": summary.to_dict()}),
                         "run_id": "manual__2026-12-04T00:00:00+00:00"})  # fmt: skip
    md = result["summary_md"]
    assert op.run_summary == md
    assert "DRY RUN" not in md and result["dry_run"] is False
    created = next(line for line in md.splitlines() if "**TRANSFER_CREATED**: 25" in line)
    assert "(25.00 EUR)" in created
    assert "`ORD-0-A`" in created and "`ORD-19-A`" in created and "ORD-20-A" not in created
    assert "and 5 more ([all](" in created
    assert "**TRANSFER_ON_HOLD**: 1 — `ORD-99-A`" in md
    url = "/mirakl-connector-console/?run=manual__2026-12-04T00%3A00%3A00%2B00%3A00"
    assert result["console_url"].endswith(url) and url in md
    assert result["ids"]["create_transfers"]["TRANSFER_CREATED"][-1] == "ORD-19-A"


def test_a_dry_run_says_so_first() -> None:
    summary = {"dry_run": True, "counts": {"PAYOUT_CREATED": 1}, "failed": [],
               "ids": {"PAYOUT_CREATED": ["1001"]}}  # fmt: skip
    op, ti = _report({"plan": PLAN, "execute": summary})
    result = op.execute({"ti": ti, "run_id": "r1"})
    assert result["dry_run"] is True
    lines = result["summary_md"].splitlines()
    assert lines[2].startswith("**DRY RUN — nothing moved**")
    assert "**PAYOUT_CREATED**: 1 — `1001`" in result["summary_md"]
