"""Failed operations alert: one daily e-mail of what failed (both providers), what is retried and
what waits too long."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from mirakl_connector.airflow.notifiers import ConnectorFailureNotifier
from mirakl_connector.airflow.operators.workflow import MiraklWorkflowOperator
from mirakl_connector.airflow.params import dry_run_param
from mirakl_connector.airflow.schedules import schedule_from_variable
from mirakl_connector.operations.specs import FAILED_OPERATIONS

DAG_ID = "stripe_failed_operations_alert"

# Daily at 08:00 UTC: at the start of the operations team's day, after the night's settlement.
DEFAULT_SCHEDULE = "0 8 * * *"

DOC_MD = """
### Failed operations alert (Stripe and Hyperwallet)

Reads the connector's ledger and sends ONE e-mail `[Mirakl connector] Failed operations` to
`alerts.email_to` with a table per kind, ids an operator searches by, amount in major units with
its currency, status and reason:

- FAILED Stripe transfers, refunds and payouts;
- FAILED Hyperwallet payments (refused, or returned / recalled by the bank later) and operator
  commissions; operator commissions refused (ABORTED) in the last 24 hours;
- the retry queues (shops, bank accounts, invoices a Hyperwallet workflow retries);
- ON_HOLD rows of every kind older than `failed_operations.on_hold_max_age_days` (default 3).

Nothing in any of them → no e-mail. Writes nothing.

**Task**: `send_failed_operations_email`; its XCom is the summary (counts per status, notes).
Something to report but no recipient configured → the task fails.

**Params**: `dry_run` (build the e-mail, do not send it).

**Schedule**: Variable `stripe_failed_operations_alert__schedule`, default `0 8 * * *`.
"""

with DAG(
    dag_id=DAG_ID,
    description="Daily e-mail: failed operations (Stripe, Hyperwallet), retries, long holds",
    doc_md=DOC_MD,
    schedule=schedule_from_variable(DAG_ID, default=DEFAULT_SCHEDULE),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=30),
    params={"dry_run": dry_run_param()},
    default_args={
        "owner": "payments-data-eng",
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        "on_failure_callback": ConnectorFailureNotifier(),
    },
    tags=["mirakl", "stripe", "alerts"],
) as dag:
    MiraklWorkflowOperator(
        task_id="send_failed_operations_email", workflow=FAILED_OPERATIONS, step="alert"
    )
