"""The last task of a batch DAG: one readable summary of the run, red when any item failed.

The batch steps never fail for bad items (a FAILED ledger row is an outcome, not a crash), so
without this task a run with failed transfers would be green and nobody would be told. The
report merges the steps' summaries, logs them as a table, returns the merged summary (visible as
the task's XCom in the UI) and raises when there are failures, which fires the failure notifier.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException

from mirakl_connector.airflow.console_links import ConsoleRunLink, console_run_url
from mirakl_connector.airflow.operators._summary import (
    MAX_LISTED_FAILURES,
    counts_of,
    failed_items,
    format_failures,
    format_table,
)
from mirakl_connector.core.batch import MAX_LISTED_IDS

if TYPE_CHECKING:
    from airflow.sdk import Context


#: XCom key of the merged report when the task fails (it is the return value otherwise).
REPORT_XCOM_KEY = "run_summary"


class BatchFailuresError(AirflowException):
    """Some items of the batch failed; the message lists them (id and reason)."""

    def __init__(self, message: str, failed: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.failed = failed


def combine_mapped(summaries: Sequence[Mapping[str, Any] | None]) -> dict[str, Any] | None:
    """One step summary from the summaries of a mapped step's tasks (e.g. execute shards; pure).

    Counts, totals and amounts add up (amounts are decimal strings in major units, added as
    Decimal); failed items and notes are concatenated; reasons add up per (status, reason).
    ``None`` when no mapped task returned a summary.
    """
    present = [s for s in summaries if s]
    if not present:
        return None
    counts: Counter[str] = Counter()
    amounts: dict[str, dict[str, Decimal]] = {}
    residues: dict[str, dict[str, Decimal]] = {}
    reasons: Counter[tuple[str, str]] = Counter()
    combined: dict[str, Any] = {
        "workflow": present[0].get("workflow"),
        "step": present[0].get("step"),
        "dry_run": any(s.get("dry_run") for s in present),
        "total": 0,
        "failed_total": 0,
        "failed": [],
        "notes": [],
        "mapped_tasks": len(summaries),
    }
    for summary in present:
        combined["total"] += int(summary.get("total") or 0)
        combined["failed_total"] += int(summary.get("failed_total") or 0)
        combined["failed"].extend(summary.get("failed") or [])
        combined["notes"].extend(summary.get("notes") or [])
        counts.update(counts_of(summary))
        _add_amounts(amounts, summary.get("amounts"))
        _add_amounts(residues, summary.get("residues"))
        for entry in summary.get("reasons") or ():
            reasons[(entry["status"], entry["reason"])] += int(entry.get("count") or 0)
        if "items" in summary:
            combined.setdefault("items", []).extend(summary["items"])
        if summary.get("headline"):
            shown = combined.get("headline")
            combined["headline"] = (
                f"{shown}; {summary['headline']}" if shown else summary["headline"]
            )
        for status, ids in (summary.get("ids") or {}).items():
            listed = combined.setdefault("ids", {}).setdefault(status, [])
            listed.extend(ids[: max(MAX_LISTED_IDS - len(listed), 0)])
    combined["counts"] = dict(sorted(counts.items()))
    combined["amounts"] = _decimal_strings(amounts)
    if residues:  # Stripe's currency rounding left something (README "Currencies")
        combined["residues"] = _decimal_strings(residues)
    combined["reasons"] = [
        {"status": status, "reason": reason, "count": n}
        for (status, reason), n in reasons.most_common()
    ]
    return combined


def _add_amounts(
    into: dict[str, dict[str, Decimal]], per_status: Mapping[str, Mapping[str, Any]] | None
) -> None:
    for status, per_currency in (per_status or {}).items():
        for currency, amount in per_currency.items():
            bucket = into.setdefault(status, {})
            bucket[currency] = bucket.get(currency, Decimal(0)) + Decimal(str(amount))


def _decimal_strings(per_status: dict[str, dict[str, Decimal]]) -> dict[str, dict[str, str]]:
    return {
        status: {cur: str(v) for cur, v in sorted(per.items())}
        for status, per in sorted(per_status.items())
    }


def merge_summaries(summaries: Mapping[str, Mapping[str, Any] | None]) -> dict[str, Any]:
    """Merge step summaries (task_id → summary dict) into one run summary (pure).

    Failed items keep the step they failed in, so ``create_transfers: 1001-A: ...`` reads
    unambiguously in the e-mail.
    """
    steps: dict[str, Any] = {}
    amounts: dict[str, Any] = {}
    residues: dict[str, Any] = {}
    failed: list[dict[str, str]] = []
    failed_count = 0
    missing: list[str] = []
    reasons: list[dict[str, Any]] = []
    ids: dict[str, dict[str, list[str]]] = {}
    headlines: dict[str, str] = {}
    dry_run = False
    for task_id, summary in summaries.items():
        if summary is None:
            missing.append(task_id)
            continue
        steps[task_id] = counts_of(summary)
        dry_run = dry_run or bool(summary.get("dry_run"))
        if summary.get("ids"):
            ids[task_id] = {status: list(listed) for status, listed in summary["ids"].items()}
        if summary.get("headline"):
            headlines[task_id] = str(summary["headline"])
        if summary.get("amounts"):
            amounts[task_id] = summary["amounts"]
        if summary.get("residues"):
            residues[task_id] = summary["residues"]
        for entry in summary.get("reasons") or ():
            reasons.append({**entry, "step": task_id})
        items = failed_items(summary)
        failed.extend({**item, "step": task_id} for item in items)
        # Summaries list at most 20 failed items by name; ``failed_total`` is the true count.
        total = summary.get("failed_total")
        failed_count += total if isinstance(total, int) and total >= len(items) else len(items)
    merged = {
        "dry_run": dry_run,
        "steps": steps,
        "ids": ids,
        "amounts": amounts,
        "reasons": reasons,
        "missing_steps": missing,
        "failed_count": failed_count,
        "failed": failed,
        "has_failures": failed_count > 0,
    }
    if residues:
        merged["residues"] = residues
    if headlines:
        merged["headlines"] = headlines
    return merged


def render_report(report: Mapping[str, Any]) -> str:
    """The merged summary as a table: one row per (step, outcome)."""
    rows = [
        (step, outcome, count)
        for step, counts in report["steps"].items()
        for outcome, count in sorted(counts.items())
    ]
    text = format_table(rows, headers=("step", "outcome", "count")) if rows else "(no counts)"
    for step, headline in report.get("headlines", {}).items():
        text += f"\n{step}: {headline}"
    for step, per_status in report.get("amounts", {}).items():
        for status, per_currency in sorted(per_status.items()):
            money = ", ".join(f"{amount} {cur}" for cur, amount in sorted(per_currency.items()))
            text += f"\n{step} {status}: {money}"
    for step, per_status in report.get("residues", {}).items():
        for status, per_currency in sorted(per_status.items()):
            money = ", ".join(f"{amount} {cur}" for cur, amount in sorted(per_currency.items()))
            text += f"\n{step} {status}: residue not moved (Stripe rounding): {money}"
    reasons = report.get("reasons") or []
    if reasons:
        why_rows = [(r["step"], r["status"], r["count"], r["reason"]) for r in reasons]
        text += "\n\nWhy (per step and status):\n" + format_table(
            why_rows, headers=("step", "status", "count", "reason")
        )
    if report["missing_steps"]:
        text += "\nno summary from: " + ", ".join(report["missing_steps"])
    return text


DRY_RUN_BANNER = "DRY RUN — nothing moved"


def render_markdown(report: Mapping[str, Any], *, run_id: str, console_url: str) -> str:
    """The run summary people read (pure): outcomes with their item ids, money, failures.

    Per step and outcome: the count and the first
    :data:`~mirakl_connector.core.batch.MAX_LISTED_IDS`
    ids, then "and N more" with a link to the console filtered on the run, which lists them all.
    A dry run says so first: its counts are what *would* have happened.
    """
    lines = [f"### Run `{run_id}`", ""]
    if report.get("dry_run"):
        lines += [f"**{DRY_RUN_BANNER}** (the outcomes below are what a real run would do)", ""]
    if report.get("has_failures"):
        lines.append(f"**{report['failed_count']} item(s) failed.**")
    else:
        lines.append("No item failed.")
    for step, headline in report.get("headlines", {}).items():
        lines += ["", f"**{step}**: {headline}"]
    lines += ["", f"[Every item of this run in the Payments console]({console_url})", ""]
    for step, counts in report.get("steps", {}).items():
        lines.append(f"#### {step}")
        if not counts:
            lines.append("- nothing to do")
        per_status_ids = report.get("ids", {}).get(step, {})
        money = report.get("amounts", {}).get(step, {})
        for outcome, count in sorted(counts.items()):
            amounts = ", ".join(f"{a} {c}" for c, a in sorted((money.get(outcome) or {}).items()))
            head = f"- **{outcome}**: {count}" + (f" ({amounts})" if amounts else "")
            ids = per_status_ids.get(outcome) or []
            if ids:
                head += " — " + ", ".join(f"`{i}`" for i in ids)
                if count > len(ids):
                    head += f" and {count - len(ids)} more ([all]({console_url}))"
            lines.append(head)
        lines.append("")
    failed = report.get("failed") or []
    if failed:
        lines.append("#### Failed")
        lines += [f"- `{f['step']}`: `{f['id']}`: {f['reason']}" for f in failed]
        more = int(report.get("failed_count") or 0) - len(failed)
        if more > 0:
            lines.append(f"- and {more} more ([all]({console_url}))")
        lines.append("")
    if report.get("missing_steps"):
        lines.append("No summary from: " + ", ".join(report["missing_steps"]))
    return "\n".join(lines).rstrip() + "\n"


class BatchReportOperator(BaseOperator):
    """Merge the summaries returned by ``summary_task_ids`` and fail when items failed.

    :param summary_task_ids: the batch steps whose return values (XCom) to merge, in order. (Not
        ``upstream_task_ids``: BaseOperator uses that name for its own dependency set.)
    """

    #: The readable summary (Markdown), written by ``execute`` and re-sent after it (Airflow
    #: 3.3 lets no task set its DAG run's note: see the README, "Run summaries"), so the task's
    #: "Rendered Templates" tab shows it; also in the log and in the XCom (``summary_md``).
    template_fields: Sequence[str] = ("run_summary",)
    template_fields_renderers = {"run_summary": "md"}
    overwrite_rtif_after_execution = True
    operator_extra_links = (ConsoleRunLink(),)
    ui_color = "#fef7e0"

    def __init__(self, *, summary_task_ids: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not summary_task_ids:
            raise ValueError(f"{self.task_id}: summary_task_ids must not be empty")
        self.summary_task_ids = list(summary_task_ids)
        self.run_summary = ""

    def execute(self, context: Context) -> dict[str, Any]:
        ti = context["ti"]
        summaries = {}
        for tid in self.summary_task_ids:
            value = ti.xcom_pull(task_ids=tid)
            # A mapped step (several tasks) gives a list: one summary per mapped task.
            mapped = isinstance(value, Sequence) and not isinstance(value, str | bytes)
            summaries[tid] = combine_mapped(list(value)) if mapped else value
        report = merge_summaries(summaries)
        run_id = str(context.get("run_id") or getattr(ti, "run_id", "") or "")
        report["console_url"] = console_url = console_run_url(run_id)
        report["summary_md"] = self.run_summary = render_markdown(
            report, run_id=run_id, console_url=console_url
        )
        if report["dry_run"]:
            self.log.info("%s", DRY_RUN_BANNER)
        self.log.info("Run summary:\n%s", render_report(report))
        self.log.info("Run summary (Markdown):\n%s", self.run_summary)
        if report["has_failures"]:
            failures = [
                {"id": f"{item['step']}: {item['id']}", "reason": item["reason"]}
                for item in report["failed"]
            ]
            count = report["failed_count"]
            shown = f" (first {MAX_LISTED_FAILURES} listed)" if count > MAX_LISTED_FAILURES else ""
            message = f"{count} item(s) failed{shown}:\n" + format_failures(failures, total=count)
            self.log.error("%s", message)
            # A raising task has no return value: keep the report readable in the UI anyway.
            ti.xcom_push(key=REPORT_XCOM_KEY, value=report)
            raise BatchFailuresError(message, report["failed"])
        return report
