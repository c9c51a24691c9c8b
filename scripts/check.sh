#!/usr/bin/env bash
# The static checks CI runs before the tests (.ci/run): ./scripts/check.sh
#
#   ruff check / ruff format --check   lint and formatting (ruff.toml)
#   lint-imports                       the import contracts between the connector's packages
#                                      (.importlinter: layers, only `airflow` imports Airflow,
#                                      nothing imports the simulator)
#   mypy                               types (mypy.ini: strict on core, mirakl, ledger, operations,
#                                      stripe, hyperwallet and reconciliation; normal elsewhere)
#
# Runs every check, even after one fails, and exits non-zero if any failed. The tools come from
# the project venv, prepared by scripts/bootstrap.sh (requirements-dev.txt pins them); with VENV
# set, from that venv as it is (nothing is installed into it).
set -uo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -n "${VENV:-}" ]; then
    export PATH="$VENV/bin:$PATH"
else
    # shellcheck source=scripts/bootstrap.sh
    source "$REPO_ROOT/scripts/bootstrap.sh"
    set +e
fi
cd "$REPO_ROOT"
PATHS=(include tests dags plugins bench scripts)
# The connector and the simulator import as packages from include/ (editable installs or not).
export PYTHONPATH="$REPO_ROOT/include:$REPO_ROOT/include/sandbox${PYTHONPATH:+:$PYTHONPATH}"

failed=()
run() {  # run NAME COMMAND...: one check, its outcome on one line
    local name="$1"
    shift
    echo "check.sh: $name"
    if "$@"; then
        echo "check.sh: $name: ok"
    else
        echo "check.sh: $name: FAILED" >&2
        failed+=("$name")
    fi
}

run "ruff check" ruff check "${PATHS[@]}"
run "ruff format" ruff format --check "${PATHS[@]}"
run "import contracts" bash -c 'cd include && lint-imports --no-cache ../.importlinter'
run "mypy" mypy --config-file mypy.ini

if [ "${#failed[@]}" -gt 0 ]; then
    echo "check.sh: failed: ${failed[*]}" >&2
    exit 1
fi
echo "check.sh: all checks passed"
