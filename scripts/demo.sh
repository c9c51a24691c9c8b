#!/usr/bin/env bash
# The demo: every connector DAG running in a local Airflow against the Mirakl/Stripe sandbox.
#
#   ./scripts/demo.sh        then open the printed URL; Ctrl-C stops everything.
#
# Starts the sandbox (127.0.0.1:8765, demo scenario) and a local SMTP sink (127.0.0.1:8025, every
# e-mail is written to demo-logs/mail.log), seeds the connector's ledger with the scenario's
# account/payment mappings, then runs `airflow standalone` on 127.0.0.1:8080 with the connections
# and config (scripts/demo-config.json) pointing at them. Nothing here talks to real Mirakl or
# Stripe, and no e-mail leaves the machine.
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
SCENARIO="${SCENARIO:-$REPO_ROOT/include/mirakl_connector/sandbox/scenarios/demo.json}"
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
    if [ -n "$SMTP_PID" ] && kill -0 "$SMTP_PID" 2>/dev/null; then
        echo "demo: stopping the SMTP sink (pid $SMTP_PID)..."
        kill -TERM "$SMTP_PID" 2>/dev/null || true
        wait "$SMTP_PID" 2>/dev/null || true
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
# The Hyperwallet part of the demo (shops 101-108, users, bank accounts, invoices) is merged in.
HW_SCENARIO="$REPO_ROOT/include/mirakl_connector/sandbox/scenarios/demo_hyperwallet.json"
python - "$SANDBOX_URL" "$HW_SCENARIO" <<'PY'
import json, sys, urllib.request as u
body = open(sys.argv[2], "rb").read()
req = u.Request(sys.argv[1] + "/_sandbox/scenario", data=body, method="POST",
                headers={"Content-Type": "application/json"})
u.urlopen(req, timeout=30).read()
PY

# The KYC monitor and the failed-operations alert send e-mail as part of their job (a KYC run
# whose e-mail cannot be sent fails and is retried), so the demo gives them a mail server that
# keeps everything local: aiosmtpd's debugging handler prints each message to mail.log.
echo "demo: starting the SMTP sink on 127.0.0.1:$SMTP_PORT (e-mails: $LOG_DIR/mail.log)"
python -u -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" -c aiosmtpd.handlers.Debugging \
    >"$LOG_DIR/mail.log" 2>&1 &
SMTP_PID=$!

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
# Hyperwallet REST v4 is served by the sandbox too; its demo credentials are in the scenario.
read -r HW_USER HW_PASSWORD < <(python -c 'import json, sys; h = json.load(open(sys.argv[1]))["hyperwallet"]; print(h["username"], h["password"])' "$HW_SCENARIO")
export AIRFLOW_CONN_HYPERWALLET_DEFAULT="{\"conn_type\": \"hyperwallet\", \"host\": \"$SANDBOX_URL\", \"login\": \"$HW_USER\", \"password\": \"$HW_PASSWORD\", \"extra\": {\"max_retries\": 2}}"
# Webhooks: the sandbox signs Stripe events with this secret and posts them (and Hyperwallet
# notifications) to the plugin routes on the API server; demo-only secrets.
STRIPE_WEBHOOK_SECRET="whsec_demo_sandbox"
HW_WEBHOOK_SECRET="demo-hyperwallet-secret"
export AIRFLOW_CONN_STRIPE_WEBHOOK="{\"conn_type\": \"generic\", \"password\": \"$STRIPE_WEBHOOK_SECRET\"}"
export AIRFLOW_CONN_HYPERWALLET_WEBHOOK="{\"conn_type\": \"generic\", \"password\": \"$HW_WEBHOOK_SECRET\"}"
export AIRFLOW_CONN_SMTP_DEFAULT="{\"conn_type\": \"smtp\", \"host\": \"127.0.0.1\", \"port\": $SMTP_PORT, \"extra\": {\"disable_tls\": true, \"disable_ssl\": true, \"from_email\": \"mirakl-connector@demo.test\"}}"
# Every workflow on (scripts/demo-config.json); the onboarding refresh URL follows the API port.
# No operator notification endpoint (connection mirakl_operator_webhook) is set: notifications
# stay PENDING in the ledger's outbox until one is configured.
AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG="$(python - "$CONFIG_FILE" "$API_URL" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config["seller_onboarding"]["refresh_base_url"] = sys.argv[2] + "/mirakl-connector"
print(json.dumps(config))
PY
)"
export AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG
# The daily and hourly DAGs run every 10-15 minutes in the demo (env vars win over the DAG
# defaults and over Airflow Variables), so their scheduled runs show up within a session.
if [ "${DEMO_SCHEDULES:-fast}" != "production" ]; then
    export AIRFLOW_VAR_STRIPE_KYC_MONITOR__SCHEDULE="${AIRFLOW_VAR_STRIPE_KYC_MONITOR__SCHEDULE:-5-59/10 * * * *}"
    export AIRFLOW_VAR_STRIPE_SELLER_SETTLEMENT__SCHEDULE="${AIRFLOW_VAR_STRIPE_SELLER_SETTLEMENT__SCHEDULE:-3-59/15 * * * *}"
    export AIRFLOW_VAR_STRIPE_FAILED_OPERATIONS_ALERT__SCHEDULE="${AIRFLOW_VAR_STRIPE_FAILED_OPERATIONS_ALERT__SCHEDULE:-9-59/15 * * * *}"
    export AIRFLOW_VAR_HYPERWALLET_SELLER_EXTRACT__SCHEDULE="${AIRFLOW_VAR_HYPERWALLET_SELLER_EXTRACT__SCHEDULE:-*/10 * * * *}"
    export AIRFLOW_VAR_HYPERWALLET_BANK_ACCOUNT_EXTRACT__SCHEDULE="${AIRFLOW_VAR_HYPERWALLET_BANK_ACCOUNT_EXTRACT__SCHEDULE:-2-59/10 * * * *}"
    export AIRFLOW_VAR_HYPERWALLET_INVOICE_PAYMENTS__SCHEDULE="${AIRFLOW_VAR_HYPERWALLET_INVOICE_PAYMENTS__SCHEDULE:-4-59/10 * * * *}"
fi
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT="$API_PORT"
export AIRFLOW__CORE__PARALLELISM=4

# The sandbox starts from the scenario every time, so the demo's ledger does too: rows of an
# earlier session would point at Stripe objects this sandbox never made.
rm -f "$AIRFLOW_HOME/mirakl_connector_ledger.db"
echo "demo: seeding the ledger from $SCENARIO"
python -m mirakl_connector.airflow.demo seed-ledger "$SCENARIO"

echo "demo: starting Airflow (log: $LOG_DIR/standalone.log); this takes about 20 s"
# standalone only stops on KeyboardInterrupt, and a background job of a non-interactive shell
# ignores SIGINT: restore the default handler before exec so `kill -INT` works.
python -c "import os, signal; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp('airflow', ['airflow', 'standalone'])" \
    >"$LOG_DIR/standalone.log" 2>&1 &
AIRFLOW_PID=$!
_wait_http "$API_URL/api/v2/monitor/health" 180 "Airflow"
# Tasks that call Mirakl or Stripe run in these pools (tasks of a missing pool never start).
"$REPO_ROOT/scripts/create_pools.sh"
# Point the sandbox's webhook senders at the plugin routes now that the API server listens.
python - "$SANDBOX_URL" "$API_URL" "$STRIPE_WEBHOOK_SECRET" "$HW_WEBHOOK_SECRET" <<'PY'
import json, sys, urllib.request as u
sandbox, api, stripe_secret, hw_secret = sys.argv[1:5]
for path, body in (
    ("/_sandbox/webhooks", {"url": api + "/mirakl-connector/webhooks/stripe", "secret": stripe_secret}),
    ("/_sandbox/hyperwallet/webhooks", {"url": api + "/mirakl-connector/webhooks/hyperwallet/" + hw_secret}),
):
    req = u.Request(sandbox + path, data=json.dumps(body).encode(), method="PUT",
                    headers={"Content-Type": "application/json"})
    u.urlopen(req, timeout=30).read()
PY

PASSWORD_FILE="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
PASSWORD="$(python -c 'import json, sys; print(json.load(open(sys.argv[1])).get("admin", "?"))' "$PASSWORD_FILE" 2>/dev/null || echo "(see $PASSWORD_FILE)")"

_schedule() {  # dag_id, default: the schedule in effect (env override, else the default)
    local var="AIRFLOW_VAR_$(echo "$1" | tr '[:lower:]' '[:upper:]')__SCHEDULE"
    echo "${!var:-$2}"
}

cat <<INFO

  Airflow UI:      $API_URL
  user / password: admin / $PASSWORD

  DAGs (schedule in effect; trigger any of them from the UI, with params):
    stripe_seller_onboarding         $(_schedule stripe_seller_onboarding '* * * * *')
    stripe_kyc_monitor               $(_schedule stripe_kyc_monitor '15 * * * *')
    stripe_payment_validation        $(_schedule stripe_payment_validation '0-59/5 * * * *')
    stripe_payment_split             $(_schedule stripe_payment_split '1-59/5 * * * *')
    stripe_payment_refund            $(_schedule stripe_payment_refund '2-59/5 * * * *')
    stripe_seller_settlement         $(_schedule stripe_seller_settlement '0 1 * * *')
    stripe_failed_operations_alert   $(_schedule stripe_failed_operations_alert '0 8 * * *')
    stripe_operator_notifications    $(_schedule stripe_operator_notifications '* * * * *')  (no endpoint set: notifications wait in the outbox)
    stripe_webhook_events            on each stored Stripe webhook (asset watcher)
    stripe_event_healing             $(_schedule stripe_event_healing '*/30 * * * *')
    hyperwallet_seller_extract       $(_schedule hyperwallet_seller_extract '0 0 * * *')
    hyperwallet_bank_account_extract $(_schedule hyperwallet_bank_account_extract '30 0 * * *')
    hyperwallet_invoice_payments     $(_schedule hyperwallet_invoice_payments '0 0 * * *')
    hyperwallet_payment_status       on each stored Hyperwallet notification (asset watcher)
    hyperwallet_kyc_status           on each stored Hyperwallet notification (asset watcher)
    hyperwallet_retries              $(_schedule hyperwallet_retries '*/15 * * * *')

  Sandbox admin:   $SANDBOX_URL/_sandbox/state
                   Stripe: $SANDBOX_URL/_sandbox/stripe/{accounts,transfers,reversals,refunds,payouts,charges}
                   Mirakl: $SANDBOX_URL/_sandbox/mirakl/{shops,orders,service_orders,invoices}, calls: $SANDBOX_URL/_sandbox/mirakl/calls
  E-mails:         $LOG_DIR/mail.log (SMTP sink on 127.0.0.1:$SMTP_PORT)
  Logs:            $LOG_DIR

  Ctrl-C stops Airflow, the sandbox and the SMTP sink.
INFO

# Stay in the foreground until Airflow exits or we are interrupted.
wait "$AIRFLOW_PID" || true
AIRFLOW_PID=""
echo "demo: Airflow exited; see $LOG_DIR/standalone.log" >&2
exit 1
