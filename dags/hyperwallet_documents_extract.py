"""Hyperwallet KYC documents extract: documents sellers upload in Mirakl → Hyperwallet."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from mirakl_connector.airflow.notifiers import ConnectorFailureNotifier
from mirakl_connector.airflow.operators.report import BatchReportOperator
from mirakl_connector.airflow.operators.workflow import MiraklWorkflowOperator
from mirakl_connector.airflow.params import dry_run_param, ids_param, since_param
from mirakl_connector.airflow.schedules import schedule_from_variable
from mirakl_connector.airflow.sensors.mirakl import MiraklApiSensor
from mirakl_connector.hyperwallet.specs import DOCUMENTS_EXTRACT

DAG_ID = "hyperwallet_documents_extract"

# Daily at 00:30 (the incumbent's PAYPAL_HYPERWALLET_EXTRACT_DOCUMENTS_CRON_EXPRESSION, 00:30:01):
# after the seller extract (00:00) created the users the documents belong to.
DEFAULT_SCHEDULE = "30 0 * * *"

DOC_MD = """
### Hyperwallet KYC documents extract (Mirakl shop documents → Hyperwallet)

Sends the KYC documents a seller uploaded in Mirakl to its Hyperwallet user, once Hyperwallet
asked for them (`hw-kyc-req-proof-identity-business` = true, set by the KYC notifications).

**Reads** Mirakl shops (S20) updated since the start of the last run that read a shop (at most
`hyperwallet.extraction_max_days` back), the due retries, the shops' documents (S30) and their
files (S31). **Writes** Hyperwallet documents (multipart `PUT /users/{token}`), for a business
`businessStakeholderVerificationStatus=READY_FOR_REVIEW`; the shop field
`hw-kyc-req-proof-identity-business=false` (S07); the ledger's retry queue and window start.

**Documents**: individual: `hw-ind-proof-identity-type` + `-country`, files
`hw-ind-proof-identity-front` (+ `-back` unless PASSPORT) and `hw-ind-proof-address`
(`hw-ind-proof-address-type`); professional: `hw-prof-proof-business-type`, file
`hw-prof-proof-business-front`.

**Outcomes** per shop: `UPLOADED`, `SKIPPED_NOT_REQUESTED`, `SKIPPED_NO_USER`,
`SKIPPED_NO_SELECTION`, `SKIPPED_MISSING_DOCUMENTS` (with the files still missing), `FAILED`
(an unknown document type, an empty file, a refusal: queued for retry), `RETRY_PENDING`,
`RETRIES_EXHAUSTED`. The documents of business stakeholders are not sent yet.

**Params** (manual runs): `since`, `shop_ids`, `dry_run` (read and decide; nothing written).

**Schedule**: Variable `hyperwallet_documents_extract__schedule`, default `30 0 * * *`.
Connections: `mirakl_default`, `hyperwallet_default`, `mirakl_connector_db`.
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
    description="Mirakl shop documents → Hyperwallet KYC documents",
    doc_md=DOC_MD,
    schedule=schedule_from_variable(DAG_ID, default=DEFAULT_SCHEDULE),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # Two overlapping runs could both upload the documents of a shop.
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=2),
    params={
        "since": since_param("Shops updated since"),
        "shop_ids": ids_param(
            "Only these shops", "Mirakl shop ids to (re)process, one per line. Empty: all."
        ),
        "dry_run": dry_run_param(),
    },
    default_args=default_args,
    tags=["mirakl", "hyperwallet", "kyc"],
) as dag:
    wait_for_mirakl = MiraklApiSensor(
        task_id="wait_for_mirakl",
        mode="reschedule",
        poke_interval=30,
        timeout=timedelta(minutes=10).total_seconds(),
        retries=0,
    )
    check_hyperwallet = MiraklWorkflowOperator(
        task_id="check_hyperwallet", workflow=DOCUMENTS_EXTRACT, step="check", retries=0
    )
    extract_documents = MiraklWorkflowOperator(
        task_id="extract_documents", workflow=DOCUMENTS_EXTRACT, step="sync"
    )
    report = BatchReportOperator(
        task_id="report", summary_task_ids=["extract_documents"], retries=0
    )

    wait_for_mirakl >> check_hyperwallet >> extract_documents >> report
