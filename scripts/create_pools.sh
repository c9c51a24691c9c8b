#!/usr/bin/env bash
# Create (or resize) the connector's Airflow pools: stripe_api and mirakl_api.
#
#   scripts/create_pools.sh            sized for Stripe test mode (25 req/s)
#   MIRAKL_CONNECTOR_STRIPE_MODE=live scripts/create_pools.sh      (100 req/s)
#
# Needs `airflow` and `mirakl_connector` importable and a migrated metadata DB (the same
# AIRFLOW_HOME / AIRFLOW__DATABASE__SQL_ALCHEMY_CONN as the scheduler). Idempotent: `pools import`
# updates pools that exist. Called by scripts/demo.sh, scripts/distributed_run.sh and the
# docker-compose airflow-init service. The sizing is explained in mirakl_connector/airflow/pools.py,
# from Stripe's documented limits (mirakl_connector/stripe/limits.py: 100/25 req/s per account,
# 25 req/s per endpoint); each pool description also says how each task paces itself.
set -euo pipefail

PYTHON="${PYTHON:-python}"
pools_file="$(mktemp "${TMPDIR:-/tmp}/mirakl-connector-pools.XXXXXX.json")"
trap 'rm -f "$pools_file"' EXIT

"$PYTHON" -m mirakl_connector.airflow.pools >"$pools_file"
if ! output="$(airflow pools import "$pools_file" 2>&1)"; then
    echo "create_pools: airflow pools import failed:" >&2
    echo "$output" >&2
    exit 1
fi
"$PYTHON" -c 'import json, sys
pools = json.load(open(sys.argv[1]))
print("create_pools:", ", ".join(name + "=" + str(p["slots"]) for name, p in pools.items()))' "$pools_file"
