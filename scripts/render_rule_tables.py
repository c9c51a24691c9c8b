#!/usr/bin/env python3
"""Write the decision rule tables into the README and the DAGs' doc_md, from their one source.

    python scripts/render_rule_tables.py           rewrite every marked section that is stale
    python scripts/render_rule_tables.py --check   change nothing; exit 1 naming the stale files

The tables are data beside their decision ladders (``mirakl_connector/*/rule_tables.py``, see
:mod:`mirakl_connector.core.rule_tables`). Each copy sits between two markers, Markdown link
definitions that neither GitHub nor Airflow's doc_md display::

    [//]: # (rule-table stripe-transfer: written by scripts/render_rule_tables.py, do not edit)

    | Condition | Status | Reason |        (the README; a DAG's doc_md has a numbered list)
    ...

    [//]: # (end rule-table stripe-transfer)

Edit the table's data, never a copy; then run this script (tests/unit/test_rule_tables.py fails
while a copy is out of date).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "include"))

from mirakl_connector.core.rule_tables import (  # noqa: E402
    RuleTable,
    render_list,
    render_markdown,
)
from mirakl_connector.hyperwallet.rule_tables import TABLES as HYPERWALLET_TABLES  # noqa: E402
from mirakl_connector.stripe.rule_tables import TABLES as STRIPE_TABLES  # noqa: E402

README = REPO_ROOT / "README.md"
DAGS = REPO_ROOT / "dags"
TABLES: tuple[RuleTable, ...] = (*STRIPE_TABLES, *HYPERWALLET_TABLES)


def begin_marker(key: str) -> str:
    return f"[//]: # (rule-table {key}: written by scripts/render_rule_tables.py, do not edit)"


def end_marker(key: str) -> str:
    return f"[//]: # (end rule-table {key})"


def targets(table: RuleTable) -> list[Path]:
    """The files that carry ``table``: the README and its DAGs."""
    return [README, *(DAGS / name for name in table.dags)]


def render_into(text: str, table: RuleTable, *, where: str) -> str:
    """``text`` with the section between ``table``'s markers replaced by the rendered table: a
    Markdown table in the README, a numbered list in a DAG's doc_md (wrapped to 100 columns)."""
    pattern = re.compile(
        re.escape(begin_marker(table.key)) + r"\n.*?\n" + re.escape(end_marker(table.key)),
        re.S,
    )
    found = pattern.findall(text)
    if len(found) != 1:
        raise SystemExit(f"{where}: {len(found)} sections for rule table {table.key!r}, want 1")
    body = render_markdown(table) if where == "README.md" else render_list(table)
    section = f"{begin_marker(table.key)}\n\n{body}\n\n{end_marker(table.key)}"
    return pattern.sub(lambda _: section, text)


def rendered() -> dict[Path, tuple[str, str]]:
    """Every target file: (its text now, its text with every table up to date)."""
    files: dict[Path, tuple[str, str]] = {}
    for table in TABLES:
        for path in targets(table):
            before, current = files.get(path, (path.read_text(encoding="utf-8"),) * 2)
            rel = str(path.relative_to(REPO_ROOT))
            files[path] = (before, render_into(current, table, where=rel))
    return files


def main(argv: list[str]) -> int:
    check = argv == ["--check"]
    if argv and not check:
        print(__doc__, file=sys.stderr)
        return 2
    stale = []
    for path, (before, after) in rendered().items():
        if before != after:
            stale.append(str(path.relative_to(REPO_ROOT)))
            if not check:
                path.write_text(after, encoding="utf-8")
    if check and stale:
        print("rule tables out of date (run scripts/render_rule_tables.py): " + ", ".join(stale))
        return 1
    for name in stale:
        print(f"rewrote {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
