#!/usr/bin/env bash
# The payment split on CeleryExecutor with two workers, natively (no Docker); see
# scripts/distributed_run.py for what it starts and checks. Needs PostgreSQL (127.0.0.1:5432,
# a user that may create databases; DIST_PG_URL) and Redis (127.0.0.1:6379; DIST_REDIS_URL).
#
#   scripts/distributed_run.sh [--orders 3000] [--shards 8] [--keep-running] ...
#
# Uses $PYTHON when set (e.g. a venv's python), else the project venv from bootstrap.sh.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${PYTHON:-}" ]; then
    # shellcheck source=scripts/bootstrap.sh
    source "$REPO_ROOT/scripts/bootstrap.sh"
    PYTHON="$VENV/bin/python"
fi

# The Celery executor lives in its provider; install the pinned versions when missing (celery
# itself must stay on the pin: provider 3.26.0 does not start with celery 5.7).
if ! "$PYTHON" -c 'import airflow.providers.celery, asyncpg, celery, redis' 2>/dev/null; then
    echo "distributed_run: installing the Celery provider into $("$PYTHON" -c 'import sys; print(sys.prefix)')"
    grep -E '^(apache-airflow-providers-celery|celery\[redis\]|asyncpg)==' "$REPO_ROOT/requirements.txt" \
        | xargs "$PYTHON" -m pip install --quiet
fi

export PYTHONPATH="$REPO_ROOT/include${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" "$REPO_ROOT/scripts/distributed_run.py" "$@"
