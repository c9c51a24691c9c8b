"""KYC monitor: find sellers whose Stripe account cannot receive money, hold and report them."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from mirakl_connector.airflow.notifiers import ConnectorFailureNotifier
from mirakl_connector.airflow.operators.report import BatchReportOperator
from mirakl_connector.airflow.operators.workflow import MiraklWorkflowOperator
from mirakl_connector.airflow.params import dry_run_param
from mirakl_connector.airflow.schedules import schedule_from_variable
from mirakl_connector.stripe.specs import KYC_MONITOR

DAG_ID = "stripe_kyc_monitor"

# Hourly at minute 15. The incumbent ships no default. Stripe's `account.updated` webhook brings
# status changes in real time; this job is the safety net and the e-mail, and it lists EVERY
# connected account (one Stripe call per 100), so every few minutes would be wasteful. Minute 15
# keeps it away from the 5-minute payment jobs' Stripe bursts (minutes 0-2, 5-7, ...).
DEFAULT_SCHEDULE = "15 * * * *"

DOC_MD = """
### KYC status monitor (Stripe connected accounts → Mirakl KYC status, transfer holds, e-mail)

Finds sellers whose Stripe account is not verified, before their transfers fail.

**Reads** every Stripe connected account (`GET /v1/accounts`) and the ledger's account
mappings. **Writes** the mapping's `kyc_status` and `kyc_reported_status`; optionally the shop's
KYC status and link field in Mirakl (S07); one e-mail.

**KYC status** (first match wins): requirements currently due → `PENDING_SUBMISSION`; pending
verification → `PENDING_APPROVAL`; disabled with a `rejected.*` reason → `REFUSED`; disabled for
another reason → `PENDING_APPROVAL`; payouts and charges enabled → `APPROVED`; otherwise no
status (`NO_STATUS` in the summary).

**Effect on transfers**: while a shop's status is `PENDING_SUBMISSION`, `PENDING_APPROVAL` or
`REFUSED`, the payment split keeps its order transfers `TRANSFER_ON_HOLD` ("Stripe account …
is not verified yet (KYC …)"); they go out on the first split run after the status clears.
Unlike the Stripe connector, this job never sets the shop's `ignored` flag (that belongs to the
Mirakl `stripe-ignored` field), so a KYC problem never makes a transfer IGNORED for good.

**Mirakl update** (setting `kyc_monitor.update_mirakl`, default false): when a problem status
appears, a fresh account link and the status with its reason are written to the shop (S07);
when it clears, APPROVED and an Express dashboard login link. Shops whose update failed are
retried every run (retry queue).

**E-mail** `[Mirakl connector] KYC required` to `alerts.email_to`: one per run, listing only
the accounts whose problem status is new since they were last reported (shop id, account id,
status, reason). Nothing new, no e-mail.

**Tasks**: `monitor_kyc` (the job), `report` (fails, and e-mails, when a Mirakl update failed
for the first time).

**Params**: `dry_run` (compute and report only).

**Settings**: section `kyc_monitor` (`enabled`, `update_mirakl`); the link field and refresh
URL are those of `seller_onboarding` (`link_field`, `refresh_base_url`, `return_url`).

**Schedule**: Variable `stripe_kyc_monitor__schedule` (cron, preset or `none`), default
`15 * * * *` (hourly: account changes also arrive by webhook; this run lists every account).
"""

default_args = {
    "owner": "payments-data-eng",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=10),
    "on_failure_callback": ConnectorFailureNotifier(),
}

with DAG(
    dag_id=DAG_ID,
    description="Stripe account verification → Mirakl KYC status, transfer holds, e-mail",
    doc_md=DOC_MD,
    schedule=schedule_from_variable(DAG_ID, default=DEFAULT_SCHEDULE),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=1),
    params={"dry_run": dry_run_param()},
    default_args=default_args,
    tags=["mirakl", "stripe", "onboarding", "kyc"],
) as dag:
    monitor_kyc = MiraklWorkflowOperator(
        task_id="monitor_kyc", workflow=KYC_MONITOR, step="monitor"
    )
    report = BatchReportOperator(task_id="report", summary_task_ids=["monitor_kyc"], retries=0)

    monitor_kyc >> report
