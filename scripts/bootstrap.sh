#!/usr/bin/env bash
# Prepare the local environment; sourced by scripts/test.sh and scripts/demo.sh.
#
# - creates .venv (with python3.11, or $PYTHON) when missing;
# - installs requirements-dev.txt (which includes requirements.txt) and the library (`pip install -e include`: Airflow only shows the
#   Mirakl/Stripe connection types when the provider entry point is installed). Skipped when a
#   stamp shows the requirements files and include/pyproject.toml unchanged since the last install;
# - exports the Airflow settings that point at this repository.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$REPO_ROOT/.venv}"

_find_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.11 python3; do
        if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
            echo "$candidate"
            return 0
        fi
    done
    echo "bootstrap: Python 3.11 not found (set PYTHON=/path/to/python3.11)" >&2
    return 1
}

if [ ! -x "$VENV/bin/python" ]; then
    echo "bootstrap: creating $VENV"
    "$(_find_python)" -m venv "$VENV"
fi

STAMP="$VENV/.mirakl-connector-installed"
WANT="$(cat "$REPO_ROOT/requirements.txt" "$REPO_ROOT/requirements-dev.txt" "$REPO_ROOT/include/pyproject.toml" "$REPO_ROOT/include/sandbox/pyproject.toml" \
    | "$VENV/bin/python" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT" ]; then
    echo "bootstrap: installing requirements (first run takes a few minutes)"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    # The same install step as the Docker image (scripts/install.sh), editable here.
    PYTHON="$VENV/bin/python" "$REPO_ROOT/scripts/install.sh" --editable
    echo "$WANT" > "$STAMP"
fi

# `airflow standalone` starts its components as `airflow ...` subprocesses: the venv must be first.
export PATH="$VENV/bin:$PATH"
export VIRTUAL_ENV="$VENV"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$REPO_ROOT/.airflow_home}"
export AIRFLOW__CORE__DAGS_FOLDER="$REPO_ROOT/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$REPO_ROOT/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
mkdir -p "$AIRFLOW_HOME"
