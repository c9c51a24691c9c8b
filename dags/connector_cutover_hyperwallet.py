"""Cutover from the Mirakl-Hyperwallet connector: job dates, its payments, tokens, a paid check."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param

from mirakl_connector.airflow.notifiers import ConnectorFailureNotifier
from mirakl_connector.airflow.operators.cutover import (
    HyperwalletConnectorImportOperator,
    cutover_dry_run_param,
)
from mirakl_connector.airflow.operators.report import BatchReportOperator
from mirakl_connector.airflow.params import ids_param, since_param
from mirakl_connector.airflow.sensors.mirakl import MiraklApiSensor

DAG_ID = "connector_cutover_hyperwallet"

DOC_MD = """
### Cutover from the Mirakl-Hyperwallet connector (manual)

Takes over from PayPal's Mirakl-Hyperwallet connector without paying anything twice. **Dry run by
default**: untick `dry_run` to write. Safe to run again. The README's "Switching from the
Hyperwallet connector" is the whole runbook.

**What it does**
1. `job_dates` (its last job start times) become our extraction windows:
   `InvoicesExtractBatchJob` → `hyperwallet_invoice_payments_window_start`,
   `IndividualSellersExtractBatchJob`/`ProfessionalSellersExtractBatchJob` (the earlier) →
   `hyperwallet_seller_extract_window_start`, `BankAccountExtractBatchJob` →
   `hyperwallet_bank_account_extract_window_start` (only forward). Paste the JSON its
   `GET /batchjob-audit/?from=…&to=…` returns (the newest FINISHED run per job is taken), or an
   object `{"InvoicesExtractBatchJob": "2026-11-20T00:00:01", …}` (UTC).
2. For every Mirakl invoice (IV01, or SBC11 billing cycle with
   `hyperwallet_payments.invoice_source = "SBC11"`) created since `since` (default: 90 days),
   looks its payments up at Hyperwallet by `clientPaymentId` (the invoice id, and
   `<id>-operatorFee` for the commission: the convention it used and we use) and imports them
   into the ledger's Hyperwallet payments (marked `imported_from = hyperwallet-mirakl-connector`).
3. Checks the shops' `hw-program`, `hw-user-token`, `hw-bankaccount-token` fields it wrote in
   Mirakl: an unknown program fails the check, a missing token is reported.
4. Lists every invoice whose seller payment is **COMPLETED at Hyperwallet while Mirakl still
   shows it unpaid** (`PAID_AT_HYPERWALLET_UNPAID_IN_MIRAKL`, a failure): confirm it in Mirakl
   (IV07 / SBC07); it is never paid again. Payments still in flight are listed as
   `IN_FLIGHT_AT_HYPERWALLET`.

**Reads**: Mirakl IV01 or SBC11, S20; Hyperwallet `GET /payments?clientPaymentId=`. **Writes**
(not in a dry run): the ledger only. Nothing is sent to Hyperwallet or Mirakl.

**Tasks**: `wait_for_mirakl`, `import_history` (the XCom is the report), `report` (fails the run
when something needs a human).

**Params**: `dry_run` (default on), `job_dates`, `since`, `invoice_ids` (only these).
"""

default_args = {
    "owner": "payments-data-eng",
    "retries": 1,
    "retry_delay": timedelta(minutes=2),
    "on_failure_callback": ConnectorFailureNotifier(),
}

with DAG(
    dag_id=DAG_ID,
    description="Take over from the Mirakl-Hyperwallet connector: job dates, its payments, "
    "tokens, invoices paid at Hyperwallet but unpaid in Mirakl",
    doc_md=DOC_MD,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=2),
    params={
        "dry_run": cutover_dry_run_param(),
        "job_dates": Param(
            None,
            type=["null", "object", "array"],
            title="The Hyperwallet connector's last job dates",
            description="Its GET /batchjob-audit/ answer, or {job type: start time (UTC)}.",
        ),
        "since": since_param("Invoices created since (default: 90 days ago)"),
        "invoice_ids": ids_param(
            "Only these invoices", "Mirakl invoice or billing cycle ids. Empty: all."
        ),
    },
    default_args=default_args,
    tags=["mirakl", "hyperwallet", "cutover"],
) as dag:
    wait_for_mirakl = MiraklApiSensor(
        task_id="wait_for_mirakl",
        mode="reschedule",
        poke_interval=60,
        timeout=timedelta(minutes=30).total_seconds(),
        retries=0,
    )
    import_history = HyperwalletConnectorImportOperator(task_id="import_history")
    report = BatchReportOperator(task_id="report", summary_task_ids=["import_history"], retries=0)

    wait_for_mirakl >> import_history >> report
