#!/usr/bin/env bash
# The test command: ./scripts/test.sh [pytest args...]
# Runs pytest in the project venv with a freshly emptied Airflow home (.pytest_airflow_home), so a
# stale metadata DB or a developer's Variables can never change a result.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/bootstrap.sh
source "$REPO_ROOT/scripts/bootstrap.sh"

TEST_HOME="$REPO_ROOT/.pytest_airflow_home"
rm -rf "$TEST_HOME"
mkdir -p "$TEST_HOME"
export MIRAKL_CONNECTOR_TEST_AIRFLOW_HOME="$TEST_HOME"
export AIRFLOW_HOME="$TEST_HOME"

cd "$REPO_ROOT"
exec python -m pytest "$@"
