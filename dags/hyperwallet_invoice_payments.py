"""Hyperwallet invoice payments: Mirakl invoices → Hyperwallet payments (seller and commission)."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param

from mirakl_connector.airflow.notifiers import ConnectorFailureNotifier
from mirakl_connector.airflow.operators.report import BatchReportOperator
from mirakl_connector.airflow.operators.workflow import MiraklWorkflowOperator
from mirakl_connector.airflow.params import dry_run_param, ids_param, since_param
from mirakl_connector.airflow.reconcile import reconcile_task
from mirakl_connector.airflow.schedules import schedule_from_variable
from mirakl_connector.airflow.sensors.mirakl import MiraklApiSensor
from mirakl_connector.hyperwallet.specs import INVOICE_PAYMENTS

DAG_ID = "hyperwallet_invoice_payments"

# The incumbent's InvoicesExtractJob runs daily at 00:00:01 (Quartz `1 0 0 1/1 * ? *`); cron has
# no seconds, so midnight. Invoices of shops whose bank account is created by the 00:30 bank
# account extract wait ON_HOLD and are paid by the 15-minute `hyperwallet_retries` DAG.
DEFAULT_SCHEDULE = "0 0 * * *"

DOC_MD = """
### Hyperwallet invoice payments (Mirakl invoices → Hyperwallet payments)

Pays each Mirakl invoice through Hyperwallet: the seller's amount to the shop's bank account
(`hw-bankaccount-token`) and, when enabled, the operator's commission to the operator's bank
account of the shop's program (`hyperwallet.programs[].bank_account_token`).

**Reads**: IV01 accounting documents (default; `payment_status=PENDING&states=COMPLETE&
type=AUTO_INVOICE`) or SBC11 seller billing cycles (`hyperwallet_payments.invoice_source =
"SBC11"`, `pay_out_state=TO_PAY`) created
since the start of the last run that read one (at most `hyperwallet.extraction_max_days`, 30,
back); S20 for each invoice's shop (program, bank account token, read fresh every time); the
ledger's Hyperwallet payments and retry queue. **Writes**: Hyperwallet `POST /payments` with
`clientPaymentId` = invoice id or billing cycle id (`hyperwallet_payments.client_payment_id`;
`<id>-operatorFee` for the commission), amount as a decimal
string, `purpose` OTHER; the ledger (`hyperwallet_payments`, retry queue, window checkpoint).
Mirakl is not written to: the invoice is confirmed paid by `hyperwallet_payment_status` when
Hyperwallet reports the payment COMPLETED.

**Never twice**: each payment is claimed in the ledger (one sender at a time), then looked up at
Hyperwallet by `clientPaymentId` (and the document's other id); one found in any status but a
failure one is recorded, not created again. A document Mirakl marks paid (`payment.state`,
`payment_status`, `pay_out.state`) is never paid. Rerunning, clearing a task, copies running at
once or re-reading old invoices with `since` is safe.

**Tasks**: `wait_for_mirakl`, `check_hyperwallet` (credentials and every program token; a wrong
configuration fails here with the key named), `pay_invoices`, `reconcile` (the payments this
run recorded against Hyperwallet's `GET /payments` over the run's window and their IV01 invoices
or SBC11 billing cycles by date window; green whenever it could compare; results in the Payments
console), `report` (first whether the run reconciles; fails and e-mails `alerts.email_to` when an
item failed or the run does not reconcile).

**Outcomes** (one per payment): `PAID`, `ALREADY_PAID`, `ON_HOLD` (no bank account token, unknown
`hw-program`, shop terminated: retried), `FAILED` (Hyperwallet refused: retried), `IN_DOUBT` (no
answer: the retry looks it up first), `REFUSED` (negative commission: never sent), `SKIPPED`
(no or ignored program, invoice not payable), `NOT_HYPERWALLET` (Stripe pays the shop at the
invoice's date per the `payout_provider` rule, or the invoice is claimed by Stripe),
`BEFORE_GO_LIVE` (created before `go_live`, which a first run without checkpoint requires),
`RETRY_PENDING` / `RETRIES_EXHAUSTED`, `AWAITING_APPROVAL` (held by the `approval` settings,
off by default: `payout_above`, `first_payout_to_new_account`; not a failure; approved on the
payments console, it is paid by the next run of this DAG or `hyperwallet_retries`). A zero
commission is skipped. Ledger statuses: `HW_PAYMENT_` + PENDING, CREATED, COMPLETED, FAILED,
ON_HOLD, ABORTED.

**Retries**: a failed invoice is retried on later runs (and every 15 minutes by
`hyperwallet_retries`) after 30, 60, 90, 120, 150 minutes; after five failed retries one e-mail
names it. An invoice held for its shop is processed again when its shop changes in Mirakl (S20
`updated_since`, one call per run; a fresh budget) and by the full sweep
(`hyperwallet_payments.backlog_full_sweep_hours`, default 24); retried documents are read by id.
A run naming it in `invoice_ids` tries again with a fresh budget.

**Params**: `since` (re-read invoices created since; the window does not move), `invoice_ids`
(only these; also re-pays a payment Hyperwallet reported failed), `include_paid`, `dry_run`.

**Settings**: `hyperwallet` (programs, retries, window), `hyperwallet_payments.invoice_source`
(`IV01`), `.operator_commissions` (true), `.invoice_search_days` (15),
`.backlog_full_sweep_hours` (24), `.credit_notes` (false:
also pay IV01 `MANUAL_CREDIT` credit notes, each under its own invoice id, confirmed with IV07;
off as in the Hyperwallet connector, since Mirakl may roll them into the next invoice, #72).

**Schedule**: Variable `hyperwallet_invoice_payments__schedule`, default `0 0 * * *`.
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
    description="Mirakl invoices → Hyperwallet payments to sellers and the operator",
    doc_md=DOC_MD,
    schedule=schedule_from_variable(DAG_ID, default=DEFAULT_SCHEDULE),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # Two overlapping runs would look up and create the same payments at the same time.
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=3),
    params={
        "since": since_param("Invoices created since"),
        "invoice_ids": ids_param(
            "Only these invoices",
            "Mirakl invoice ids (or billing cycle ids) to pay, one per line. Empty: the window.",
        ),
        "include_paid": Param(
            False,
            type=["null", "boolean"],
            title="Include paid invoices",
            description="Also invoices Mirakl marks PAID (a payment found at Hyperwallet is "
            "still never made twice).",
        ),
        "dry_run": dry_run_param(),
    },
    default_args=default_args,
    tags=["mirakl", "hyperwallet", "payouts"],
) as dag:
    wait_for_mirakl = MiraklApiSensor(
        task_id="wait_for_mirakl",
        mode="reschedule",
        poke_interval=60,
        timeout=timedelta(minutes=30).total_seconds(),
        retries=0,
    )
    check = MiraklWorkflowOperator(
        task_id="check_hyperwallet", workflow=INVOICE_PAYMENTS, step="check"
    )
    pay = MiraklWorkflowOperator(task_id="pay_invoices", workflow=INVOICE_PAYMENTS, step="pay")
    reconcile = reconcile_task(INVOICE_PAYMENTS)
    report = BatchReportOperator(
        task_id="report", summary_task_ids=["pay_invoices", "reconcile"], retries=0
    )

    wait_for_mirakl >> check >> pay >> reconcile >> report
