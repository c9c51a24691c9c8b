"""Daily reconciliation: a UTC day's money movements, ledger ↔ provider ↔ Mirakl, per workflow."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param

from mirakl_connector.airflow.notifiers import ConnectorFailureNotifier
from mirakl_connector.airflow.operators.report import BatchReportOperator
from mirakl_connector.airflow.operators.workflow import MiraklWorkflowOperator
from mirakl_connector.airflow.params import dry_run_param
from mirakl_connector.airflow.schedules import schedule_from_variable
from mirakl_connector.reconciliation.specs import RECONCILIATION

DAG_ID = "payments_reconciliation"

# 03:00 UTC: after the nightly money movers (Hyperwallet payments 00:00, settlement 01:00) have
# run for the day before, which is the day reconciled.
DEFAULT_SCHEDULE = "0 3 * * *"

FLOWS = (
    "payment_split",
    "payment_refund",
    "seller_settlement",
    "hyperwallet_invoice_payments",
)

DOC_MD = """
### Payments reconciliation (one UTC day: ledger ↔ Stripe / Hyperwallet ↔ Mirakl)

Every money-moving DAG reconciles its own run (its `reconcile` task). This DAG reconciles a whole
UTC day per workflow: the ledger rows whose money moved that day (or whose call was sent that day
and never answered), compared with **every** object the provider created that day (list calls
by creation window: Stripe `GET /v1/transfers`, `/v1/refunds`, `/v1/balance_transactions?type=
transfer_refund`, each settled seller's `/v1/payouts`; Hyperwallet `GET /payments?createdAfter=`)
and with their Mirakl documents (OR11/SOR11 by id, IV01/SBC11 by date window). So it also finds
what no run recorded: an object of the connector's (by its metadata) that the ledger does not
know, e.g. a second transfer for one order.

Outcomes per item: `MATCHED`, `MISSING_AT_PROVIDER`, `MISSING_IN_MIRAKL`, `MISSING_IN_LEDGER`,
`AMOUNT_MISMATCH`, `CURRENCY_MISMATCH` (amounts compared in each provider's own unit).

**Tasks**: `reconcile_<workflow>` for `payment_split`, `payment_refund`, `seller_settlement`,
`hyperwallet_invoice_payments` (green whenever they could compare; Hyperwallet is skipped when no
`hyperwallet` section is configured, a Stripe workflow when the ledger has no Stripe account), then
`report`: first whether the day reconciles; fails, and e-mails `alerts.email_to`, naming every
mismatch. The results are kept in the ledger and shown in the Payments console (Reconciliation,
per day and per run; CSV `/export/reconciliation.csv`). Reconciling a day again replaces its
result.

**Params**: `day` (YYYY-MM-DD, UTC; empty: yesterday), `dry_run` (read and record nothing).

**Schedule**: Variable `payments_reconciliation__schedule`, default `0 3 * * *`.
"""

default_args = {
    "owner": "payments-data-eng",
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=30),
    "on_failure_callback": ConnectorFailureNotifier(),
}

with DAG(
    dag_id=DAG_ID,
    description="One UTC day's money movements: ledger ↔ provider ↔ Mirakl",
    doc_md=DOC_MD,
    schedule=schedule_from_variable(DAG_ID, default=DEFAULT_SCHEDULE),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=2),
    params={
        "day": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Day (UTC)",
            description="The day to reconcile, YYYY-MM-DD. Empty: yesterday.",
        ),
        "dry_run": dry_run_param(),
    },
    default_args=default_args,
    tags=["mirakl", "stripe", "hyperwallet", "reconciliation"],
) as dag:
    steps = [
        MiraklWorkflowOperator(
            task_id=f"reconcile_{flow}",
            workflow=RECONCILIATION,
            step="reconcile_day",
            step_kwargs={"flow": flow},
        )
        for flow in FLOWS
    ]
    report = BatchReportOperator(
        task_id="report", summary_task_ids=[f"reconcile_{flow}" for flow in FLOWS], retries=0
    )
    steps >> report
