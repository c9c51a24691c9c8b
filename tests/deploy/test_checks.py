"""The static checks CI runs (scripts/check.sh, .ci/run) and mypy's configuration, read as files.

Running the checks themselves is CI's job (``.ci/run`` calls ``scripts/check.sh`` first); these
tests keep the wiring from rotting: CI fails when a check fails, every check is in the script,
the strict packages stay strict, and mypy skips no module.
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CHECK = REPO_ROOT / "scripts/check.sh"
MYPY_INI = REPO_ROOT / "mypy.ini"
STRICT_PACKAGES = (
    "core",
    "mirakl",
    "ledger",
    "operations",
    "stripe",
    "hyperwallet",
    "reconciliation",
)
#: ``--strict`` minus its global-only flags (warn_unused_configs, warn_redundant_casts: set in
#: [mypy]); ``strict = True`` in a per-module section would not be scoped to the package.
STRICT_FLAGS = (
    "disallow_any_generics",
    "disallow_subclassing_any",
    "disallow_untyped_calls",
    "disallow_untyped_defs",
    "disallow_incomplete_defs",
    "check_untyped_defs",
    "disallow_untyped_decorators",
    "warn_unused_ignores",
    "warn_return_any",
    "no_implicit_reexport",
    "strict_equality",
    "extra_checks",
)


def _code(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]


def test_ci_runs_the_checks_before_the_tests_and_fails_with_them():
    ci = "\n".join(_code(REPO_ROOT / ".ci/run"))
    check = ci.index('if ! "$REPO_ROOT/scripts/check.sh"; then')
    assert ci.index('"$REPO_ROOT/scripts/test.sh"') > check
    assert re.search(r'scripts/check.sh"; then\n[^\n]*\n\s+exit 1\n\s*fi', ci[check:])


def test_check_script_runs_every_check_and_fails_when_one_fails():
    code = "\n".join(_code(CHECK))
    assert CHECK.stat().st_mode & 0o111, "scripts/check.sh is not executable"
    assert 'run "ruff check" ruff check "${PATHS[@]}"' in code
    assert 'run "ruff format" ruff format --check "${PATHS[@]}"' in code
    assert "PATHS=(include tests dags plugins bench scripts)" in code
    assert "cd include && lint-imports --no-cache ../.importlinter" in code
    assert 'PYTHONPATH="$REPO_ROOT/include:$REPO_ROOT/include/sandbox' in code
    assert 'run "mypy" mypy --config-file mypy.ini' in code
    assert re.search(r'if \[ "\$\{#failed\[@\]\}" -gt 0 \]; then\n[^\n]*\n\s+exit 1', code)


def _mypy_config() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read_string(MYPY_INI.read_text())
    return config


def test_mypy_is_strict_on_the_money_packages():
    config = _mypy_config()
    assert config["mypy"]["files"] == "include/mirakl_connector"
    assert config["mypy"]["warn_unused_configs"] == "True"
    assert config["mypy"]["warn_redundant_casts"] == "True"
    strict = [s for s in config.sections() if s.endswith(".*")]
    assert len(strict) == 1
    patterns = {p.strip() for p in strict[0].removeprefix("mypy-").split(",")}
    assert patterns == {f"mirakl_connector.{name}.*" for name in STRICT_PACKAGES}
    for flag in STRICT_FLAGS:
        assert config[strict[0]].get(flag) == "True", f"{flag} not set on the strict packages"
    assert "strict" not in config[strict[0]]


def test_mypy_skips_no_module():
    """The baseline of modules whose errors were ignored while the packages were made clean is
    empty: every module is checked, and no section weakens a flag or skips errors."""
    config = _mypy_config()
    extra = [s for s in config.sections() if s != "mypy" and not s.endswith(".*")]
    assert extra == [], f"mypy.ini skips or weakens {extra}"
    assert "ignore_errors" not in MYPY_INI.read_text()


def test_checkers_are_pinned_for_development():
    dev = (REPO_ROOT / "requirements-dev.txt").read_text()
    for pin in ("import-linter==2.17", "mypy==2.4.1"):
        assert re.search(rf"^{re.escape(pin)}$", dev, re.M), pin
    assert re.search(r"^ruff==", dev, re.M)
