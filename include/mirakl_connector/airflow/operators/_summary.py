"""Readable text for batch summaries (task logs, the report task, failure e-mails).

Summaries arrive as the JSON-safe dicts of ``BatchSummary.to_dict()``; these helpers only assume
the keys documented there and tolerate missing ones, so a new field never breaks a report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

MAX_LISTED_FAILURES = 20


def failed_items(summary: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """The ``failed`` list of a summary as ``[{"id", "reason"}]`` (plus ``step`` when merged)."""
    if not summary:
        return []
    result = []
    for item in summary.get("failed") or []:
        if not isinstance(item, Mapping):
            continue
        row = {"id": str(item.get("id", "?")), "reason": str(item.get("reason", ""))}
        if item.get("step"):
            row["step"] = str(item["step"])
        result.append(row)
    return result


def counts_of(summary: Mapping[str, Any]) -> dict[str, int]:
    """The integer counters of a summary (``planned``, ``created``, ``on_hold`` ...)."""
    counts = summary.get("counts")
    source = counts if isinstance(counts, Mapping) else summary
    return {
        str(key): value
        for key, value in source.items()
        if isinstance(value, int) and not isinstance(value, bool)
    }


def format_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A plain monospace table, for logs."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def format_failures(
    items: Sequence[Mapping[str, str]],
    limit: int = MAX_LISTED_FAILURES,
    *,
    total: int | None = None,
) -> str:
    """One line per failed item, the first ``limit`` of them, then how many were left out.

    :param total: the true number of failures when ``items`` is already truncated upstream.
    """
    lines = [f"- {item['id']}: {item['reason']}" for item in items[:limit]]
    left_out = max(total if total is not None else len(items), len(items)) - len(lines)
    if left_out > 0:
        lines.append(f"... and {left_out} more")
    return "\n".join(lines)
