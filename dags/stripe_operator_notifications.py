"""Operator notifications: deliver the ledger's outbox to the operator's HTTP endpoint."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from mirakl_connector.airflow.notifiers import ConnectorFailureNotifier
from mirakl_connector.airflow.operators.workflow import MiraklWorkflowOperator
from mirakl_connector.airflow.params import dry_run_param
from mirakl_connector.airflow.schedules import schedule_from_variable
from mirakl_connector.operations.specs import OPERATOR_NOTIFICATIONS

DAG_ID = "stripe_operator_notifications"

# Every minute: the incumbent pushed notifications as they happened; a minute is close enough
# and one run finishes well inside it (its retry budget is 40 s).
DEFAULT_SCHEDULE = "* * * * *"

DOC_MD = """
### Operator notifications (server to server)

Reads the ledger's notification outbox (queued automatically when a transfer, refund or payout
becomes `*_FAILED`, and by the account workflows for `account.updated`) and POSTs each PENDING
one as JSON `{"type": ..., "payload": {...}}` (the Stripe connector's shapes) to the endpoint
of connection `mirakl_operator_webhook` (conn type http: host, schema, port, extra `endpoint`,
`headers`, `timeout`).

**Statuses**: 2xx → SENT. Otherwise retried after 1 s, 5 s and 25 s (the schedule is stored in
the ledger; a run retries while the next try is due within 40 s, the next run continues); after
the 4th try → FAILED, and one e-mail `[Mirakl connector] Operator notification endpoint
unreachable` to `alerts.email_to` (endpoint, error, response body, the JSON), at most once per
`operator_notifications.email_cooldown_minutes` (default 10; 0 = every time). No connection →
notifications stay PENDING until one is configured.

**Task**: `deliver_notifications` (summary in its XCom).

**Settings** (`operator_notifications`): `retry_delays_seconds`, `max_run_seconds`,
`email_on_failure`, `email_cooldown_minutes`.

**Schedule**: Variable `stripe_operator_notifications__schedule`, default every minute.
"""

with DAG(
    dag_id=DAG_ID,
    description="Ledger notification outbox → operator HTTP endpoint",
    doc_md=DOC_MD,
    schedule=schedule_from_variable(DAG_ID, default=DEFAULT_SCHEDULE),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # Two runs would post the same notification twice.
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=5),
    params={"dry_run": dry_run_param()},
    default_args={
        "owner": "payments-data-eng",
        # A crash (ledger unreachable) is retried once; delivery retries are the outbox's own.
        "retries": 1,
        "retry_delay": timedelta(seconds=30),
        "on_failure_callback": ConnectorFailureNotifier(),
    },
    tags=["mirakl", "stripe", "notifications"],
) as dag:
    MiraklWorkflowOperator(
        task_id="deliver_notifications", workflow=OPERATOR_NOTIFICATIONS, step="deliver"
    )
