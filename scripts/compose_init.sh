#!/usr/bin/env bash
# The docker-compose `airflow-init` service (one shot, as root, before every other service):
# the ledger database, Airflow's metadata migration and admin user, and the connector's pools.
#
# Every `docker compose up` runs it again. Its work only changes when the image's Airflow, the
# pool definitions, the Stripe mode or the admin user change, so it records what it did (a
# fingerprint of those, in the ledger database's `compose_init_state` table) and, when nothing
# changed, stops after a second instead of spending a minute on `airflow db migrate` and the
# pools import. FORCE_INIT=1 runs everything anyway.
set -euo pipefail

mkdir -p /opt/airflow/{logs,dags,plugins,config}
chown -R "${AIRFLOW_UID:-50000}:0" /opt/airflow/{logs,dags,plugins,config}

state() {  # state read|write FINGERPRINT: the ledger database, created here if missing
    python - "$@" <<'PY'
import sys
import psycopg2

conn = psycopg2.connect("host=postgres user=airflow password=airflow dbname=airflow")
conn.autocommit = True
with conn.cursor() as cur:
    cur.execute("SELECT 1 FROM pg_database WHERE datname = 'mirakl_connector'")
    if cur.fetchone() is None:
        cur.execute("CREATE DATABASE mirakl_connector")
conn.close()
conn = psycopg2.connect("host=postgres user=airflow password=airflow dbname=mirakl_connector")
conn.autocommit = True
with conn.cursor() as cur:
    cur.execute("CREATE TABLE IF NOT EXISTS compose_init_state (fingerprint TEXT NOT NULL)")
    if sys.argv[1] == "read":
        cur.execute("SELECT fingerprint FROM compose_init_state")
        row = cur.fetchone()
        print(row[0] if row else "")
    else:
        cur.execute("DELETE FROM compose_init_state")
        cur.execute("INSERT INTO compose_init_state VALUES (%s)", (sys.argv[2],))
PY
}

fingerprint="$(python - <<'PY'
import hashlib, importlib.metadata, os
from mirakl_connector.airflow.pools import pools_import_json

parts = [
    importlib.metadata.version("apache-airflow"),
    pools_import_json(os.environ.get("MIRAKL_CONNECTOR_STRIPE_MODE", "test")),
    os.environ.get("_AIRFLOW_WWW_USER_USERNAME", ""),
    os.environ.get("_AIRFLOW_WWW_USER_PASSWORD", ""),
]
print(hashlib.sha256("\n".join(parts).encode()).hexdigest())
PY
)"

if [ "${FORCE_INIT:-0}" != "1" ] && [ "$(state read)" = "$fingerprint" ]; then
    echo "airflow-init: nothing changed since the last init (FORCE_INIT=1 to rerun it)"
    exit 0
fi
# /entrypoint migrates the metadata DB and creates the user (the _AIRFLOW_* settings), then the
# pools sized for MIRAKL_CONNECTOR_STRIPE_MODE (tasks of a missing pool never run).
/entrypoint airflow version
/opt/airflow/scripts/create_pools.sh
airflow pools list
state write "$fingerprint"
