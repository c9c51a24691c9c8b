"""Hyperwallet retries: the failed shops, bank accounts and invoices whose retry is due."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from mirakl_connector.airflow.notifiers import ConnectorFailureNotifier
from mirakl_connector.airflow.operators.report import BatchReportOperator
from mirakl_connector.airflow.operators.workflow import MiraklWorkflowOperator
from mirakl_connector.airflow.params import dry_run_param
from mirakl_connector.airflow.schedules import schedule_from_variable
from mirakl_connector.hyperwallet.specs import (
    BANK_ACCOUNT_EXTRACT,
    INVOICE_PAYMENTS,
    SELLER_EXTRACT,
)

DAG_ID = "hyperwallet_retries"

# The incumbent's retry jobs run every 15 minutes (Quartz `0 0/15 * ? * * *`).
DEFAULT_SCHEDULE = "*/15 * * * *"

DOC_MD = """
### Hyperwallet retries (failed items of the Hyperwallet extracts and payments)

Every item that failed in `hyperwallet_seller_extract`, `hyperwallet_bank_account_extract` or
`hyperwallet_invoice_payments` (a Hyperwallet refusal, a missing bank account token, an invoice
held...) is in the ledger's retry queue (`pending_items`) with its reason. This DAG processes the
ones that are due, in the order the data depends on: sellers, then bank accounts, then invoices.

**Rule** (as the incumbent): the first retry is due at once, the n-th one n × 30 minutes
(`hyperwallet.item_retry_delay_minutes`) after the previous failure; after five failed retries
(`hyperwallet.max_item_retries`) the item is given up and ONE e-mail to `alerts.email_to` names
it. Success removes it from the queue. An item is tried again with a fresh budget when it
changes in Mirakl or when a manual run of its DAG names it (`shop_ids`, `invoice_ids`). An
invoice held for its shop (no bank account token yet...) is not retried on that clock but when
S20 `updated_since` says its shop changed, and by the daily full sweep: an idle run makes one
S20 call and no Hyperwallet call.

`retry_invoice_payments` also pays the invoices whose payment the approval gate held and someone
has approved on the payments console (or that the `approval` settings no longer hold).

**Reads/writes**: as the three DAGs (S20, Hyperwallet users, bank accounts and payments, S07, the
ledger); each retry of a payment first looks it up by `clientPaymentId`: never paid twice.

**Tasks**: `retry_sellers`, `retry_bank_accounts`, `retry_invoice_payments` (each runs even when
the previous one failed), `report` (fails and e-mails when an item failed or ran out of retries).
Outcomes: `RETRY_PENDING` (failed again, retried later), `RETRIES_EXHAUSTED`, and the DAGs' own.

**Params**: `dry_run`. **Schedule**: Variable `hyperwallet_retries__schedule`, default
`*/15 * * * *`.
"""

default_args = {
    "owner": "payments-data-eng",
    "retries": 1,
    "retry_delay": timedelta(minutes=2),
    "on_failure_callback": ConnectorFailureNotifier(),
}

with DAG(
    dag_id=DAG_ID,
    description="Retry the failed Hyperwallet shops, bank accounts and invoice payments",
    doc_md=DOC_MD,
    schedule=schedule_from_variable(DAG_ID, default=DEFAULT_SCHEDULE),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=14),
    params={"dry_run": dry_run_param()},
    default_args=default_args,
    tags=["mirakl", "hyperwallet", "retries"],
) as dag:
    sellers = MiraklWorkflowOperator(task_id="retry_sellers", workflow=SELLER_EXTRACT, step="retry")
    bank_accounts = MiraklWorkflowOperator(
        task_id="retry_bank_accounts",
        workflow=BANK_ACCOUNT_EXTRACT,
        step="retry",
        trigger_rule="all_done",
    )
    invoices = MiraklWorkflowOperator(
        task_id="retry_invoice_payments",
        workflow=INVOICE_PAYMENTS,
        step="retry",
        trigger_rule="all_done",
    )
    report = BatchReportOperator(
        task_id="report",
        summary_task_ids=["retry_sellers", "retry_bank_accounts", "retry_invoice_payments"],
        retries=0,
        trigger_rule="all_done",
    )

    sellers >> bank_accounts >> invoices >> report
