#!/usr/bin/env bash
# The demo: the payment split DAG running in a local Airflow against the Mirakl/Stripe sandbox.
#
#   ./scripts/demo.sh        then open the printed URL; Ctrl-C stops everything.
#
# Starts the sandbox (127.0.0.1:8765, demo scenario), seeds the connector's ledger with the
# scenario's account/payment mappings, then runs `airflow standalone` on 127.0.0.1:8080 with the
# connections and config pointing at the sandbox. Nothing here talks to real Mirakl or Stripe.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/bootstrap.sh
source "$REPO_ROOT/scripts/bootstrap.sh"

SANDBOX_HOST=127.0.0.1
SANDBOX_PORT="${SANDBOX_PORT:-8765}"
SANDBOX_URL="http://$SANDBOX_HOST:$SANDBOX_PORT"
API_PORT="${AIRFLOW_API_PORT:-8080}"
API_URL="http://127.0.0.1:$API_PORT"
SCENARIO="${SCENARIO:-$REPO_ROOT/include/mirakl_connector/sandbox/scenarios/demo.json}"
LOG_DIR="$AIRFLOW_HOME/demo-logs"
mkdir -p "$LOG_DIR"

SANDBOX_PID=""
AIRFLOW_PID=""

_wait_http() {  # url, seconds, what: poll until HTTP 200
    local url="$1" seconds="$2" what="$3" i
    for ((i = 0; i < seconds * 2; i++)); do
        # Python, not curl: a fresh machine may have nothing but Python.
        if python -c 'import sys, urllib.request as u; sys.exit(u.urlopen(sys.argv[1], timeout=2).status != 200)' "$url" 2>/dev/null; then
            return 0
        fi
        sleep 0.5
    done
    echo "demo: $what did not answer at $url within ${seconds}s" >&2
    return 1
}

cleanup() {
    trap - EXIT INT TERM
    echo
    if [ -n "$AIRFLOW_PID" ] && kill -0 "$AIRFLOW_PID" 2>/dev/null; then
        echo "demo: stopping Airflow (pid $AIRFLOW_PID)..."
        kill -INT "$AIRFLOW_PID" 2>/dev/null || true
        for _ in $(seq 1 60); do kill -0 "$AIRFLOW_PID" 2>/dev/null || break; sleep 0.5; done
        kill -TERM "$AIRFLOW_PID" 2>/dev/null || true
        wait "$AIRFLOW_PID" 2>/dev/null || true
    fi
    if [ -n "$SANDBOX_PID" ] && kill -0 "$SANDBOX_PID" 2>/dev/null; then
        echo "demo: stopping the sandbox (pid $SANDBOX_PID)..."
        kill -TERM "$SANDBOX_PID" 2>/dev/null || true
        wait "$SANDBOX_PID" 2>/dev/null || true
    fi
    echo "demo: stopped."
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ ! -f "$SCENARIO" ]; then
    echo "demo: scenario not found: $SCENARIO" >&2
    exit 1
fi

echo "demo: starting the sandbox on $SANDBOX_URL (log: $LOG_DIR/sandbox.log)"
python -m mirakl_connector.sandbox --host "$SANDBOX_HOST" --port "$SANDBOX_PORT" \
    --scenario "$SCENARIO" >"$LOG_DIR/sandbox.log" 2>&1 &
SANDBOX_PID=$!
_wait_http "$SANDBOX_URL/_sandbox/state" 30 "the sandbox"

# Read the sandbox's demo keys from the scenario (they are fake keys for the local simulator).
read -r MIRAKL_KEY STRIPE_KEY < <(python - "$SCENARIO" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(s.get("mirakl", {}).get("api_key", "sandbox-mirakl-key"),
      s.get("stripe", {}).get("api_key", "sk_test_sandbox"))
PY
)

export AIRFLOW_CONN_MIRAKL_DEFAULT="{\"conn_type\": \"mirakl\", \"host\": \"$SANDBOX_URL\", \"password\": \"$MIRAKL_KEY\", \"extra\": {\"max_retries\": 2}}"
export AIRFLOW_CONN_STRIPE_DEFAULT="{\"conn_type\": \"stripe\", \"host\": \"$SANDBOX_URL\", \"password\": \"$STRIPE_KEY\", \"extra\": {\"max_retries\": 2}}"
export AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG='{"payment_split": {"product_enabled": true, "service_enabled": true}, "alerts": {"email_to": []}}'
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT="$API_PORT"
export AIRFLOW__CORE__PARALLELISM=4

echo "demo: seeding the ledger from $SCENARIO"
python -m mirakl_connector.airflow.demo seed-ledger "$SCENARIO"

echo "demo: starting Airflow (log: $LOG_DIR/standalone.log); this takes about 20 s"
# standalone only stops on KeyboardInterrupt, and a background job of a non-interactive shell
# ignores SIGINT: restore the default handler before exec so `kill -INT` works.
python -c "import os, signal; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp('airflow', ['airflow', 'standalone'])" \
    >"$LOG_DIR/standalone.log" 2>&1 &
AIRFLOW_PID=$!
_wait_http "$API_URL/api/v2/monitor/health" 180 "Airflow"

PASSWORD_FILE="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
PASSWORD="$(python -c 'import json, sys; print(json.load(open(sys.argv[1])).get("admin", "?"))' "$PASSWORD_FILE" 2>/dev/null || echo "(see $PASSWORD_FILE)")"

cat <<INFO

  Airflow UI:      $API_URL
  user / password: admin / $PASSWORD
  DAG:             stripe_payment_split (every 5 minutes; or trigger it from the UI)
  Sandbox admin:   $SANDBOX_URL/_sandbox/state  (transfers: $SANDBOX_URL/_sandbox/stripe/transfers)
  Logs:            $LOG_DIR

  Ctrl-C stops Airflow and the sandbox.
INFO

# Stay in the foreground until Airflow exits or we are interrupted.
wait "$AIRFLOW_PID" || true
AIRFLOW_PID=""
echo "demo: Airflow exited; see $LOG_DIR/standalone.log" >&2
exit 1
