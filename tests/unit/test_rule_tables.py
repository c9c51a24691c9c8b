"""The decision rule tables: one source (``mirakl_connector/*/rule_tables.py``), copies in the
README and the DAGs' doc_md that must match it, and every reason text a ladder records listed in
its table. When a test here fails: edit the table's data, then run
``python scripts/render_rule_tables.py``.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path

import pytest

from mirakl_connector.core.rule_tables import (
    PLACEHOLDER,
    Rule,
    RuleTable,
    render_list,
    render_markdown,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
INCLUDE = REPO_ROOT / "include"


def _load_script():
    spec = importlib.util.spec_from_file_location(
        "render_rule_tables", REPO_ROOT / "scripts/render_rule_tables.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCRIPT = _load_script()
TABLES = {table.key: table for table in SCRIPT.TABLES}

#: The names a ladder assigns a reason text to.
REASON_NAMES = {"reason", "hold", "skip", "status_reason"}

#: The reason fields a helper fills in its answer (``Sendable(amount, too_small=f"...")``).
REASON_KEYWORDS = {"unsupported", "too_small"}

#: Helpers whose text a ladder records as the reason (the call, not a literal, is in the ladder).
REASON_HELPERS = {
    "stripe-transfer": (
        ("mirakl_connector.stripe.kyc_rules", "unknown_status_reason"),
        ("mirakl_connector.stripe.currency", "unsupported_reason"),
        ("mirakl_connector.stripe.currency", "sendable"),
    ),
    "stripe-refund": (
        ("mirakl_connector.stripe.currency", "unsupported_reason"),
        ("mirakl_connector.stripe.currency", "sendable"),
    ),
    "stripe-reversal": (
        ("mirakl_connector.stripe.currency", "unsupported_reason"),
        ("mirakl_connector.stripe.currency", "sendable"),
        ("mirakl_connector.stripe.currency", "positive_sendable"),
    ),
    "stripe-settlement": (
        ("mirakl_connector.stripe.kyc_rules", "unknown_status_reason"),
        ("mirakl_connector.stripe.currency", "unsupported_reason"),
        ("mirakl_connector.stripe.currency", "sendable"),
        ("mirakl_connector.stripe.settlement_decisions", "_shop_blocker"),
        ("mirakl_connector.stripe.settlement_decisions", "payout_blocker"),
    ),
}


def test_every_copy_is_up_to_date():
    stale = [
        str(path.relative_to(REPO_ROOT))
        for path, (before, after) in SCRIPT.rendered().items()
        if before != after
    ]
    assert stale == [], f"run scripts/render_rule_tables.py: {stale} out of date"


def test_every_table_is_in_the_readme_and_its_dags():
    assert set(TABLES) >= {
        "stripe-transfer",
        "stripe-capture",
        "stripe-refund",
        "stripe-reversal",
        "stripe-settlement",
        "hyperwallet-invoice-payment",
    }
    for table in TABLES.values():
        assert table.dags, f"{table.key}: no DAG carries it"
        for path in SCRIPT.targets(table):
            text = path.read_text(encoding="utf-8")
            assert text.count(SCRIPT.begin_marker(table.key)) == 1, (table.key, path.name)
            assert text.count(SCRIPT.end_marker(table.key)) == 1, (table.key, path.name)


def test_no_marker_names_an_unknown_table():
    files = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "dags").glob("*.py"))]
    for path in files:
        for key in re.findall(r"\[//\]: # \((?:end )?rule-table ([\w-]+)", path.read_text()):
            assert key in TABLES, f"{path.name}: marker for unknown rule table {key!r}"


def test_the_dags_render_the_table_as_text_not_at_parse_time():
    """The doc_md carries the rendered text: a DAG file imports no rule table (nor the ladder)."""
    for table in TABLES.values():
        for name in table.dags:
            source = (REPO_ROOT / "dags" / name).read_text()
            imported = {
                node.module
                for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.ImportFrom)
            }
            assert not {m for m in imported if "rule_tables" in m or m == table.ladder}, name
            assert render_list(table) in source, name


def _module_tree(module: str) -> ast.Module:
    path = INCLUDE / (module.replace(".", "/") + ".py")
    if not path.exists():  # a package
        path = INCLUDE / module.replace(".", "/") / "__init__.py"
    return ast.parse(path.read_text())


def _function(tree: ast.Module, name: str) -> ast.FunctionDef:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    raise AssertionError(f"no function {name}: update the rule table's `functions`")


def _template(node: ast.AST, constants: dict[str, str] | None = None) -> str | None:
    """A string literal as a reason template (``…`` for each ``{...}``, but a module constant's
    value for ``{CONSTANT}``), else None."""
    constants = constants or {}
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for part in node.values:
            if isinstance(part, ast.Constant):
                parts.append(part.value)
            elif isinstance(part.value, ast.Name) and part.value.id in constants:
                parts.append(constants[part.value.id])
            else:
                parts.append(PLACEHOLDER)
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        # "Every order was refused or cancelled" + (f" (aborted {...})" if aborted else "")
        left = _template(node.left, constants)
        if left is not None:
            right = _template(node.right, constants)
            return left + (PLACEHOLDER if right is None else right)
    return None


def _constants(tree: ast.Module) -> dict[str, str]:
    """The module's top-level ``NAME = "text"`` constants, and those it imports by name from
    another connector module (``from mirakl_connector.x import NAME``)."""
    found = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name) and target.id.isupper()
    }
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mirakl_connector"):
            names = [alias for alias in node.names if alias.name.isupper()]
            if names:
                source = _constants(_module_tree(node.module))
                for alias in names:
                    if alias.name in source:
                        found[alias.asname or alias.name] = source[alias.name]
    return found


def _status_reasons(function: ast.FunctionDef, constants: dict[str, str] | None = None) -> set[str]:
    """Each literal that follows a ``<Something>Status.<NAME>`` (or ``…Action.<NAME>``) in a call or
    a tuple (``_set(row, Status.X, "reason")``, ``return Status.X, "reason"``), and each literal
    assigned to a reason (``reason``, ``.hold``, ``.skip``, ``.status_reason``) or appended to
    ``.notes``."""
    found = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            # reason = "..."; plan.hold / plan.skip / row.status_reason = "..."
            target = node.targets[0]
            name = target.id if isinstance(target, ast.Name) else getattr(target, "attr", None)
            if name in REASON_NAMES and (text := _template(node.value, constants)) is not None:
                found.add(text)
            continue
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "append"
            and getattr(node.func.value, "attr", None) == "notes"
            and node.args
            and (text := _template(node.args[0], constants)) is not None
        ):
            found.add(text)  # plan.notes.append("...")
            continue
        items = node.args if isinstance(node, ast.Call) else getattr(node, "elts", None) or []
        for before, after in zip(items, items[1:], strict=False):
            if (
                isinstance(before, ast.Attribute)
                and isinstance(before.value, ast.Name)
                and before.value.id.endswith(("Status", "Action"))
                and (text := _template(after, constants)) is not None
            ):
                found.add(text)
    return found


def _returned_texts(function: ast.FunctionDef, constants: dict[str, str] | None = None) -> set[str]:
    """The literals a helper returns or assigns whole, or passes as a reason field of its answer
    (``too_small=f"..."``): its reason texts."""
    found = set()
    for node in ast.walk(function):
        value = None
        if isinstance(node, (ast.Return, ast.Assign)):
            value = node.value
        elif isinstance(node, ast.keyword) and node.arg in REASON_KEYWORDS:
            value = node.value
        if value is not None and (text := _template(value, constants)) is not None:
            found.add(text)
    return found


def _ladder_reasons(table: RuleTable) -> set[str]:
    tree = _module_tree(table.ladder)
    reasons = set()
    for name in table.functions:
        reasons |= _status_reasons(_function(tree, name), _constants(tree))
    for module, name in REASON_HELPERS.get(table.key, ()):
        helper = _module_tree(module)
        reasons |= _returned_texts(_function(helper, name), _constants(helper))
    return reasons


@pytest.mark.parametrize("key", sorted(TABLES))
def test_every_reason_text_of_the_ladder_is_in_its_table(key):
    table = TABLES[key]
    reasons = _ladder_reasons(table)
    assert reasons, f"{key}: no reason text found in {table.ladder} (wrong `functions`?)"
    missing = sorted(reasons - table.reasons())
    assert missing == [], f"{key}: reason texts of the ladder missing from its table: {missing}"


def test_the_reason_extraction_sees_each_form_of_reason():
    tree = ast.parse(
        "def ladder(row, p):\n"
        "    if a:\n"
        "        return _set(row, TransferStatus.ON_HOLD, 'No shop ID provided')\n"
        "    if b:\n"
        "        return TransferStatus.ABORTED, f'Payment {p.id} failed'\n"
        "    reason = f'Payment {p.id} is not ready yet, status is {p.status}'\n"
        "    if c:\n"
        "        plan.hold = f'shop {p.shop} is TERMINATED' + ''\n"
        "    plan.notes.append('seller amount is 0')\n"
        "    return _set(row, TransferStatus.ON_HOLD, reason)\n"
    )
    assert _status_reasons(_function(tree, "ladder")) == {
        "No shop ID provided",
        "Payment … failed",
        "Payment … is not ready yet, status is …",
        "shop … is TERMINATED",
        "seller amount is 0",
    }


def test_rendering():
    table = RuleTable(
        key="t",
        ladder="m",
        functions=(),
        rules=(
            Rule("No shop id", "`ON_HOLD`", ("No shop ID provided",)),
            Rule("Unknown", "`ABORTED`", ("A …", "B …"), note="Stripe's message"),
            Rule("Otherwise", "`PENDING`"),
        ),
    )
    assert render_markdown(table).splitlines() == [
        "| Condition | Status | Reason |",
        "|---|---|---|",
        "| No shop id | `ON_HOLD` | No shop ID provided |",
        "| Unknown | `ABORTED` | A … / B … / Stripe's message |",
        "| Otherwise | `PENDING` |  |",
    ]
    assert render_list(table).splitlines() == [
        '1. No shop id → `ON_HOLD`: "No shop ID provided"',
        '2. Unknown → `ABORTED`: "A …" / "B …" / Stripe\'s message',
        "3. Otherwise → `PENDING`",
    ]
    long = RuleTable("t", "m", (), (Rule("x " * 80, "`ON_HOLD`"),))
    assert all(len(line) <= 100 for line in render_list(long).splitlines())
    with pytest.raises(ValueError, match="cannot hold"):
        render_markdown(RuleTable("t", "m", (), (Rule("a | b", "`X`"),)))


def test_the_script_checks_without_writing(tmp_path, monkeypatch, capsys):
    assert SCRIPT.main(["--check"]) == 0
    stale = tmp_path / "README.md"
    text = (REPO_ROOT / "README.md").read_text()
    key = "stripe-transfer"
    start = text.index(SCRIPT.begin_marker(key))
    stale.write_text(text[: start + 200] + "edited by hand\n" + text[start + 200 :])
    monkeypatch.setattr(SCRIPT, "README", stale)
    monkeypatch.setattr(SCRIPT, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(SCRIPT, "DAGS", REPO_ROOT / "dags")
    monkeypatch.setattr(SCRIPT, "targets", lambda table: [stale])
    before = stale.read_text()
    assert SCRIPT.main(["--check"]) == 1
    assert "README.md" in capsys.readouterr().out
    assert stale.read_text() == before  # --check writes nothing
    assert SCRIPT.main([]) == 0
    assert "edited by hand" not in stale.read_text()
    assert SCRIPT.main(["--check"]) == 0


def test_rule_tables_are_light():
    """The tables import nothing but the core's rule types (no ledger, SDK or ladder)."""
    for module in (
        "mirakl_connector.stripe.rule_tables",
        "mirakl_connector.hyperwallet.rule_tables",
    ):
        tree = _module_tree(module)
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)} | {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        assert imported <= {"__future__", "mirakl_connector.core.rule_tables"}, imported
    assert "mirakl_connector.core.rule_tables" in sys.modules


def test_the_helper_extraction_sees_each_form_of_reason():
    tree = ast.parse(
        "def helper(amount, currency):\n"
        "    if amount <= 0:\n"
        "        return Sendable(amount, too_small=f'Amount must be positive: {amount}')\n"
        "    reason = f'Currency {currency} is not supported'\n"
        "    return f'Shop {amount} is ignored'\n"
    )
    assert _returned_texts(_function(tree, "helper")) == {
        "Amount must be positive: …",
        "Currency … is not supported",
        "Shop … is ignored",
    }
