"""Hyperwallet KYC resync: verification statuses re-read from Hyperwallet, Mirakl corrected."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from mirakl_connector.airflow.notifiers import ConnectorFailureNotifier
from mirakl_connector.airflow.operators.report import BatchReportOperator
from mirakl_connector.airflow.operators.workflow import MiraklWorkflowOperator
from mirakl_connector.airflow.params import dry_run_param, since_param
from mirakl_connector.airflow.schedules import schedule_from_variable
from mirakl_connector.hyperwallet.specs import KYC_RESYNC

DAG_ID = "hyperwallet_kyc_resync"

# The incumbent's KYCUserStatusInfoJob runs every second day at 00:00 (Quartz `0 0 0 */2 * ? *`).
DEFAULT_SCHEDULE = "0 0 */2 * *"

DOC_MD = """
### Hyperwallet KYC resync (Hyperwallet users → Mirakl KYC status, for lost notifications)

A KYC notification Hyperwallet never delivered (or that was lost) leaves the shop's KYC status
wrong in Mirakl. This DAG re-reads the users from Hyperwallet and writes what the KYC
notification handler (`hyperwallet_kyc_status`) would have written, where Mirakl differs.

**Reads**: Hyperwallet `GET /users?programToken=&createdAfter=` (cursor pages) of each
configured program, users created in the last `hyperwallet_kyc_resync.max_days` (90) days or
since `since` (Hyperwallet filters users by creation date only); S20 for their shops, 100 at a
time; a business's stakeholders when Hyperwallet wants their documents. **Writes**: S07 per
shop that differs (KYC status and reason, `hw-kyc-req-proof-identity-business`,
`hw-stakeholder-req-proof-identity-<n>`, and with `kyc_automated`
`hw-kyc-req-proof-authorization`); the ledger's out-of-order guard (a notification older than
the resync is then ignored).

**Outcomes**: `UPDATED`, `UNCHANGED`, `WOULD_UPDATE` (dry run), `SUPERSEDED` (a newer
notification was applied meanwhile), `SKIPPED` (the user is not a shop of this Mirakl).

**Params**: `since`, `dry_run`. **Schedule**: Variable `hyperwallet_kyc_resync__schedule`,
default `0 0 */2 * *`.
"""

default_args = {
    "owner": "payments-data-eng",
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
    "on_failure_callback": ConnectorFailureNotifier(),
}

with DAG(
    dag_id=DAG_ID,
    description="Hyperwallet verification statuses → Mirakl KYC (lost notifications)",
    doc_md=DOC_MD,
    schedule=schedule_from_variable(DAG_ID, default=DEFAULT_SCHEDULE),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=3),
    params={"since": since_param("Users created since"), "dry_run": dry_run_param()},
    default_args=default_args,
    tags=["mirakl", "hyperwallet", "kyc"],
) as dag:
    resync = MiraklWorkflowOperator(task_id="resync_kyc", workflow=KYC_RESYNC, step="resync")
    report = BatchReportOperator(task_id="report", summary_task_ids=["resync_kyc"], retries=0)

    resync >> report
