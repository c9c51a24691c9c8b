"""The report adds up the summaries of a mapped step (the payment split's execute shards)."""

from __future__ import annotations

from mirakl_connector.airflow.operators.report import BatchReportOperator, combine_mapped


def shard(n_created, eur, *, failed=(), reason_count=0, note=None):
    summary = {
        "workflow": "payment_split",
        "step": "execute",
        "dry_run": False,
        "total": n_created + len(failed),
        "counts": {
            "TRANSFER_CREATED": n_created,
            **({"TRANSFER_FAILED": len(failed)} if failed else {}),
        },
        "amounts": {"TRANSFER_CREATED": {"EUR": eur}} if n_created else {},
        "failed_total": len(failed),
        "failed": [{"id": i, "reason": "Stripe error: no"} for i in failed],
        "reasons": (
            [{"status": "TRANSFER_FAILED", "reason": "Stripe error: no", "count": reason_count}]
            if reason_count
            else []
        ),
    }
    if note:
        summary["notes"] = [note]
    return summary


def test_counts_amounts_failures_and_reasons_add_up():
    combined = combine_mapped(
        [
            shard(3, "10.05", note="shard 0 of 3"),
            shard(2, "0.95", failed=["7-A"], reason_count=1, note="shard 1 of 3"),
            None,  # a shard with no summary (e.g. skipped) is left out
            shard(0, "0", failed=["9-A"], reason_count=1, note="shard 2 of 3"),
        ]
    )
    assert combined["total"] == 7
    assert combined["counts"] == {"TRANSFER_CREATED": 5, "TRANSFER_FAILED": 2}
    assert combined["amounts"] == {"TRANSFER_CREATED": {"EUR": "11.00"}}
    assert combined["failed_total"] == 2
    assert [f["id"] for f in combined["failed"]] == ["7-A", "9-A"]
    assert combined["reasons"] == [
        {"status": "TRANSFER_FAILED", "reason": "Stripe error: no", "count": 2}
    ]
    assert combined["notes"] == ["shard 0 of 3", "shard 1 of 3", "shard 2 of 3"]
    assert combined["mapped_tasks"] == 4


def test_no_summary_at_all_is_none():
    assert combine_mapped([None, None]) is None
    assert combine_mapped([]) is None


class FakeTI:
    def __init__(self, values):
        self.values = values
        self.pushed = {}

    def xcom_pull(self, task_ids):
        return self.values[task_ids]

    def xcom_push(self, key, value):
        self.pushed[key] = value


def test_report_task_merges_a_mapped_step_as_one_step():
    ti = FakeTI(
        {
            "plan_transfers": {"counts": {"TRANSFER_PENDING": 5}, "failed": []},
            "create_transfers": [shard(3, "10.05"), shard(2, "0.95")],
        }
    )
    op = BatchReportOperator(
        task_id="report", summary_task_ids=["plan_transfers", "create_transfers"]
    )
    report = op.execute({"ti": ti})
    assert report["steps"]["create_transfers"] == {"TRANSFER_CREATED": 5}
    assert report["amounts"]["create_transfers"] == {"TRANSFER_CREATED": {"EUR": "11.00"}}
    assert report["has_failures"] is False


def test_residues_of_the_shards_add_up():
    first = {**shard(1, "91.20"), "residues": {"TRANSFER_CREATED": {"KWD": "0.005"}}}
    second = {**shard(1, "10.00"), "residues": {"TRANSFER_CREATED": {"KWD": "0.003"}}}
    combined = combine_mapped([first, second, shard(1, "1.00")])
    assert combined["residues"] == {"TRANSFER_CREATED": {"KWD": "0.008"}}
    assert "residues" not in combine_mapped([shard(1, "1.00")])
