"""Failed operations alert: one daily e-mail listing the FAILED transfers, refunds and payouts."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from mirakl_connector.airflow.notifiers import ConnectorFailureNotifier
from mirakl_connector.airflow.operators.workflow import MiraklWorkflowOperator
from mirakl_connector.airflow.params import dry_run_param
from mirakl_connector.airflow.schedules import schedule_from_variable

DAG_ID = "stripe_failed_operations_alert"

# Daily at 08:00 UTC: at the start of the operations team's day, after the night's settlement.
DEFAULT_SCHEDULE = "0 8 * * *"

DOC_MD = """
### Failed operations alert

Reads the connector's ledger and, when any transfer, refund or payout is `*_FAILED`, sends ONE
e-mail `[Mirakl connector] Failed operations` to `alerts.email_to` with a table per kind: internal
id, Mirakl ids (order / refund / invoice), amount in major units with its currency, status and
reason. ON_HOLD (waiting for something expected) and ABORTED (final) rows are not listed. Nothing
failed → no e-mail. Writes nothing.

**Task**: `send_failed_operations_email`; its XCom is the summary (counts per status, notes).
Failures but no recipient configured → the task fails.

**Params**: `dry_run` (build the e-mail, do not send it).

**Schedule**: Variable `stripe_failed_operations_alert__schedule`, default `0 8 * * *`.
"""

with DAG(
    dag_id=DAG_ID,
    description="Daily e-mail of FAILED transfers, refunds and payouts",
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
        task_id="send_failed_operations_email", workflow="failed_operations", step="alert"
    )
