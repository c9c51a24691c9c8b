#!/usr/bin/env bash
# The demo: every connector DAG running in a local Airflow against the Mirakl/Stripe sandbox.
#
#   ./scripts/demo.sh        then open the printed URL; Ctrl-C stops everything.
#
# Starts the sandbox (127.0.0.1:8765, demo scenario) and a local SMTP sink (127.0.0.1:8025, every
# e-mail is written as text to demo-logs/mail.log), seeds the connector's ledger with the
# scenario's account/payment mappings, then runs `airflow standalone` on 127.0.0.1:8080 with the
# connections and config (scripts/demo-config.json) pointing at them. Nothing here talks to real Mirakl or
# Stripe, and no e-mail leaves the machine.
#
# Connections, Variables (the connector's config, the schedules) and pools are written into
# Airflow's metadata database before it starts, so they show and can be edited in the UI.
#
# Environment: AIRFLOW_API_PORT, SANDBOX_PORT, SMTP_PORT (ports); SCENARIO (another scenario);
# DEMO_SCHEDULES=production keeps the daily/hourly DAGs on their production schedules (by
# default the demo runs them every 10-15 minutes so that scheduled runs are seen in a session).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/bootstrap.sh
source "$REPO_ROOT/scripts/bootstrap.sh"

SANDBOX_HOST=127.0.0.1
SANDBOX_PORT="${SANDBOX_PORT:-8765}"
SANDBOX_URL="http://$SANDBOX_HOST:$SANDBOX_PORT"
API_PORT="${AIRFLOW_API_PORT:-8080}"
API_URL="http://127.0.0.1:$API_PORT"
SCENARIO="${SCENARIO:-$REPO_ROOT/include/sandbox/mirakl_sandbox/scenarios/demo.json}"
CONFIG_FILE="$REPO_ROOT/scripts/demo-config.json"
SMTP_PORT="${SMTP_PORT:-8025}"
LOG_DIR="$AIRFLOW_HOME/demo-logs"
mkdir -p "$LOG_DIR"

SANDBOX_PID=""
SMTP_PID=""
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
        # standalone leads its own process group (setsid above): stop it gracefully, then every
        # component it started, then whatever still ignores the signal.
        echo "demo: stopping Airflow (process group $AIRFLOW_PID)..."
        kill -INT "$AIRFLOW_PID" 2>/dev/null || true
        for _ in $(seq 1 20); do kill -0 "$AIRFLOW_PID" 2>/dev/null || break; sleep 0.5; done
        kill -TERM -- "-$AIRFLOW_PID" 2>/dev/null || true
        for _ in $(seq 1 10); do kill -0 -- "-$AIRFLOW_PID" 2>/dev/null || break; sleep 0.5; done
        kill -KILL -- "-$AIRFLOW_PID" 2>/dev/null || true
        wait "$AIRFLOW_PID" 2>/dev/null || true
    fi
    if [ -n "$SANDBOX_PID" ] && kill -0 "$SANDBOX_PID" 2>/dev/null; then
        echo "demo: stopping the sandbox (pid $SANDBOX_PID)..."
        kill -TERM "$SANDBOX_PID" 2>/dev/null || true
        wait "$SANDBOX_PID" 2>/dev/null || true
    fi
    if [ -n "$SMTP_PID" ] && kill -0 "$SMTP_PID" 2>/dev/null; then
        echo "demo: stopping the SMTP sink (pid $SMTP_PID)..."
        kill -TERM "$SMTP_PID" 2>/dev/null || true
        wait "$SMTP_PID" 2>/dev/null || true
    fi
    if [ -n "$AIRFLOW_PID" ] && kill -0 -- "-$AIRFLOW_PID" 2>/dev/null; then
        echo "demo: some Airflow processes survived; kill them with: kill -9 -- -$AIRFLOW_PID" >&2
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
python -m mirakl_sandbox --host "$SANDBOX_HOST" --port "$SANDBOX_PORT" \
    --scenario "$SCENARIO" >"$LOG_DIR/sandbox.log" 2>&1 &
SANDBOX_PID=$!
_wait_http "$SANDBOX_URL/_sandbox/state" 30 "the sandbox"
# The Hyperwallet part of the demo (shops 101-108, users, bank accounts, invoices) is merged in,
# and the demo's one fault is set: the answer to order ORD-1016-A's transfer is lost, so the
# payments console has an item in doubt (demo_faults.json).
HW_SCENARIO="$REPO_ROOT/include/sandbox/mirakl_sandbox/scenarios/demo_hyperwallet.json"
python -m mirakl_sandbox.demo_run load-extras "$SANDBOX_URL"

# The KYC monitor and the failed-operations alert send e-mail as part of their job (a KYC run
# whose e-mail cannot be sent fails and is retried), so the demo gives them a mail server that
# keeps everything local: each message is written to mail.log as text (raw copies in mail/).
echo "demo: starting the SMTP sink on 127.0.0.1:$SMTP_PORT (e-mails: $LOG_DIR/mail.log)"
python -u -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" \
    -c mirakl_sandbox.mailsink.ReadableMail "$LOG_DIR/mail" >"$LOG_DIR/mail.log" 2>&1 &
SMTP_PID=$!

export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT="$API_PORT"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="$API_URL/execution/"
export AIRFLOW__CORE__PARALLELISM=4

# Connections, Variables and pools go into Airflow's metadata database *before* Airflow starts:
# they show in Admin -> Connections / Variables / Pools, edits made there take effect, and no
# task is scheduled before its pool exists (mirakl_connector/airflow/demo_settings.py).
echo "demo: preparing Airflow's database (log: $LOG_DIR/airflow-setup.log)"
airflow db migrate >"$LOG_DIR/airflow-setup.log" 2>&1 \
    || { echo "demo: airflow db migrate failed; see $LOG_DIR/airflow-setup.log" >&2; exit 1; }
schedules_flag=()
[ "${DEMO_SCHEDULES:-fast}" = "production" ] && schedules_flag=(--production-schedules)
python -m mirakl_connector.airflow.demo configure-airflow \
    --sandbox-url "$SANDBOX_URL" --api-url "$API_URL" --smtp-port "$SMTP_PORT" \
    --scenario "$SCENARIO" --hyperwallet-scenario "$HW_SCENARIO" --config-file "$CONFIG_FILE" \
    "${schedules_flag[@]}" 2>>"$LOG_DIR/airflow-setup.log"

# The sandbox starts from the scenario every time, so the demo's ledger does too: rows of an
# earlier session would point at Stripe objects this sandbox never made.
rm -f "$AIRFLOW_HOME/mirakl_connector_ledger.db"
echo "demo: seeding the ledger from $SCENARIO"
python -m mirakl_connector.airflow.demo seed-ledger "$SCENARIO"

echo "demo: starting Airflow (log: $LOG_DIR/standalone.log); the UI answers after about 1-2 minutes"
# standalone only stops on KeyboardInterrupt, and a background job of a non-interactive shell
# ignores SIGINT: restore the default handler before exec so `kill -INT` works. setsid gives it a
# process group of its own, so that cleanup can stop every component it started (the triggerer
# ignores SIGINT and SIGTERM for about 30 s otherwise, keeping its ports).
python -c "import os, signal; signal.signal(signal.SIGINT, signal.SIG_DFL); os.setsid(); os.execvp('airflow', ['airflow', 'standalone'])" \
    >"$LOG_DIR/standalone.log" 2>&1 &
AIRFLOW_PID=$!
_wait_http "$API_URL/api/v2/monitor/health" 300 "Airflow"
# Point the sandbox's webhook senders at the plugin routes now that the API server listens.
python - "$SANDBOX_URL" "$API_URL" <<'PY'
import json, sys, urllib.request as u
from mirakl_connector.airflow.demo_settings import HYPERWALLET_WEBHOOK_SECRET, STRIPE_WEBHOOK_SECRET
sandbox, api = sys.argv[1:3]
for path, body in (
    ("/_sandbox/webhooks", {"url": api + "/mirakl-connector/webhooks/stripe", "secret": STRIPE_WEBHOOK_SECRET}),
    ("/_sandbox/hyperwallet/webhooks", {"url": api + "/mirakl-connector/webhooks/hyperwallet/" + HYPERWALLET_WEBHOOK_SECRET}),
):
    req = u.Request(sandbox + path, data=json.dumps(body).encode(), method="PUT",
                    headers={"Content-Type": "application/json"})
    u.urlopen(req, timeout=30).read()
PY

PASSWORD_FILE="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
PASSWORD="$(python -c 'import json, sys; print(json.load(open(sys.argv[1])).get("admin", "?"))' "$PASSWORD_FILE" 2>/dev/null || echo "(see $PASSWORD_FILE)")"

DAG_TABLE="$(python -m mirakl_connector.airflow.demo list-dags --api-url "$API_URL" --user admin --password "$PASSWORD" 2>>"$LOG_DIR/airflow-setup.log" \
    || echo "  DAGs: see the UI (listing them failed; $LOG_DIR/airflow-setup.log)")"

cat <<INFO

  Airflow UI:      $API_URL   (ready after ${SECONDS} s)
  user / password: admin / $PASSWORD

$DAG_TABLE
  Trigger any DAG from the UI, with its form; each run's summary is its report task's XCom.

  Expected red runs: the scenario has deliberate bad items, so some runs fail on purpose, each
  naming the item and the reason in its report task and in the e-mails:
    hyperwallet_bank_account_extract  shop 105's IBAN has wrong check digits
    hyperwallet_invoice_payments      invoice 9103's operator commission is negative
    stripe_payment_split              order ORD-1016-A's transfer is in doubt (Stripe made it,
                                      its answer was lost): resolve it on the Payments page
  (README, "What the demo marketplace shows", lists every scenario item.)

  Settings:        Admin -> Connections (sandbox, SMTP sink), Admin -> Variables
                   (mirakl_connector_config and the demo's schedules), Admin -> Pools.
                   Edits there take effect at the next run; each demo start writes them again.
  Sandbox admin:   $SANDBOX_URL/_sandbox/state
                   Stripe: $SANDBOX_URL/_sandbox/stripe/{accounts,transfers,reversals,refunds,payouts,charges}
                   Mirakl: $SANDBOX_URL/_sandbox/mirakl/{shops,orders,service_orders,invoices,calls}
                   Hyperwallet: $SANDBOX_URL/_sandbox/hyperwallet/state
  E-mails:         $LOG_DIR/mail.log (as text; raw copies in $LOG_DIR/mail/)
  Logs:            $LOG_DIR

  Ctrl-C stops Airflow (every component), the sandbox and the SMTP sink.
INFO

# Stay in the foreground until Airflow exits or we are interrupted.
wait "$AIRFLOW_PID" || true
AIRFLOW_PID=""
echo "demo: Airflow exited; see $LOG_DIR/standalone.log" >&2
exit 1
