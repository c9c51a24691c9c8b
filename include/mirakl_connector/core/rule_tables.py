"""Decision rule tables as data: one source for a decision ladder's documentation.

A decision ladder (e.g. :func:`mirakl_connector.stripe.transfer_decisions.decide_order_transfer`)
checks its rules in order, first match wins. Its table, the rules in that order with their
outcome and the reason texts they record, used to be written three times (the DAG's ``doc_md``,
the README, the module docstring) and the copies drifted apart. Now each table is a
:class:`RuleTable` next to its ladder, and ``scripts/render_rule_tables.py`` writes it, between
markers, into the README and the DAG file; a test fails when a copy is out of date or when a reason
text of the ladder is missing from its table.

Reason texts use ``…`` where the ladder puts a value (an f-string's ``{...}``), so
``f"Shop {order.shop_id} is ignored"`` is ``Shop … is ignored``.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

#: Where a placeholder stands in a reason text.
PLACEHOLDER = "…"


@dataclass(frozen=True)
class Rule:
    """One row of a ladder: when it applies, what the row becomes, and why it says so.

    :param reasons: the reason texts the rule records, exact (``…`` for a value).
    :param note: where the reason comes from when the ladder does not write it (e.g. "Stripe's
        message"), shown as is.
    """

    condition: str
    outcome: str
    reasons: tuple[str, ...] = ()
    note: str = ""

    def reason_cell(self, *, quoted: bool = False) -> str:
        texts = [f'"{r}"' if quoted else r for r in self.reasons]
        return " / ".join([*texts, *([self.note] if self.note else [])])


@dataclass(frozen=True)
class RuleTable:
    """A decision ladder's rules, in the order it checks them (first match wins).

    :param key: the name of the table's markers in the README and the DAG file.
    :param ladder: the module and the functions whose reason texts the table must show
        (checked by the tests, never imported here: the DAG files render no table at parse time).
    :param dags: the DAG files (under ``dags/``) whose ``doc_md`` carries the table.
    """

    key: str
    ladder: str
    functions: tuple[str, ...]
    rules: tuple[Rule, ...]
    dags: tuple[str, ...] = ()
    headers: tuple[str, str, str] = ("Condition", "Status", "Reason")
    notes: tuple[str, ...] = field(default=())

    def reasons(self) -> frozenset[str]:
        """Every reason text of the table."""
        return frozenset(reason for rule in self.rules for reason in rule.reasons)


def _cell(text: str) -> str:
    # No escaping: the table is also written into Python strings (the DAGs' doc_md).
    if "|" in text or "\n" in text or "\\" in text:
        raise ValueError(f"a rule table cell cannot hold '|', a backslash or a newline: {text!r}")
    return text


def render_markdown(table: RuleTable) -> str:
    """The table as a GitHub-flavoured Markdown table (the README)."""
    lines = [
        "| " + " | ".join(table.headers) + " |",
        "|---|---|---|",
    ]
    for rule in table.rules:
        cells = (rule.condition, rule.outcome, rule.reason_cell())
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def render_list(table: RuleTable, *, width: int = 100) -> str:
    """The table as a numbered Markdown list wrapped to ``width`` columns (the DAGs' doc_md: a
    table's rows cannot wrap, and the DAG files keep the 100-column limit)."""
    items = []
    for number, rule in enumerate(table.rules, start=1):
        reason = rule.reason_cell(quoted=True)
        text = f"{number}. {_cell(rule.condition)} → {_cell(rule.outcome)}"
        if reason:
            text += f": {_cell(reason)}"
        indent = " " * (len(str(number)) + 2)
        items.append(
            textwrap.fill(
                text,
                width=width,
                subsequent_indent=indent,
                break_long_words=False,
                break_on_hyphens=False,
            )
        )
    return "\n".join(items)
