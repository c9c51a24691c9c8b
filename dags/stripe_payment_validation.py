"""Payment validation: confirm paid debits in Mirakl, then capture the Stripe authorisations."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from mirakl_connector.airflow.notifiers import ConnectorFailureNotifier
from mirakl_connector.airflow.operators.report import BatchReportOperator
from mirakl_connector.airflow.operators.workflow import MiraklWorkflowOperator
from mirakl_connector.airflow.params import dry_run_param, ids_param
from mirakl_connector.airflow.schedules import schedule_from_variable
from mirakl_connector.airflow.sensors.mirakl import MiraklApiSensor

DAG_ID = "stripe_payment_validation"

# Every 5 minutes at minute 0, 5, 10...: the incumbent's cadence; payment split runs one minute
# later (1-59/5) and refunds two (2-59/5), so the three never share a minute of Mirakl's rate limit.
DEFAULT_SCHEDULE = "0-59/5 * * * *"

DOC_MD = """
### Payment validation and capture (Mirakl debits → PA01, Stripe authorisations → capture)

Customers' payments are authorised in Stripe at checkout and recorded as payment mappings
(commercial order ↔ charge or payment intent). This DAG tells Mirakl those debits are paid, then
captures each authorisation once every seller has accepted or refused their part. Product orders
only (Mirakl has no validation for service orders). Settings: the `mirakl_connector_config`
Variable's `payment_validation` section (`validation_enabled`, `capture_enabled`).

**Tasks**
1. `wait_for_mirakl`: waits (reschedule mode) until the Mirakl API answers.
2. `validate_debits`: pending debits (PA11) whose payment mapping is `to_capture` or `captured`
   are confirmed in **one** PA01 call (amount from PA11, `payment_status` OK, transaction number =
   the Stripe payment); the mapping records `mirakl_validated_at`. Failed or cancelled payments
   are never confirmed.
3. `capture_payments`: for each `to_capture` mapping, reads its logistic orders (OR11). When none
   is waiting (STAGING, WAITING_ACCEPTANCE, WAITING_DEBIT, WAITING_DEBIT_PAYMENT) and every
   accepted one is debited, captures the authorised amount minus refused and cancelled lines (in
   the currency's minor units), or cancels the authorisation when nothing is left. Idempotency
   key per payment and amount, committed before the call.
4. `report`: one summary of the run; fails, and e-mails `alerts.email_to`, when any item failed.

**Statuses** (payment mapping): `to_capture` → `captured` (with `captured_amount`) or
`canceled`. A capture Stripe refuses for good is terminal: `captured` when Stripe says the payment
was already captured (e.g. at checkout; the reason says so), else `failed` with Stripe's reason
(expired or cancelled authorisation, amount too large). Never retried forever.

**Capture rules** of `capture_payments`, for one mapping (first match wins):

[//]: # (rule-table stripe-capture: written by scripts/render_rule_tables.py, do not edit)

1. Mirakl returns no order of the commercial order → wait (`to_capture`): "Commercial order … is not
   returned by Mirakl"
2. An order still STAGING, WAITING_ACCEPTANCE, WAITING_DEBIT or WAITING_DEBIT_PAYMENT → wait
   (`to_capture`): "Order … is not ready yet, status is …"
3. An order accepted but not debited yet → wait (`to_capture`): "Order … is not debited yet, status
   is …"
4. The orders mix currencies → fail (`failed`): "Orders of … mix currencies (…)"
5. No authorised amount recorded on the mapping → fail (`failed`): "Payment … has no recorded
   amount"
6. Nothing left once refused lines (`total_price` + taxes) and cancelled lines (`cancelations`) are
   taken off the authorised amount → release the authorisation (`canceled`): "Every order was
   refused or cancelled…"
7. Otherwise: capture what is left, in Stripe's unit (rounded down) → capture (`captured`, with
   `captured_amount`)
8. Stripe refuses for good, and the payment was already captured (e.g. at checkout) → `captured`:
   "Payment … was already captured in Stripe (…)"
9. Stripe refuses for good, and the authorisation expired or was cancelled → `canceled` (a release)
   / `failed` (a capture): "Payment … was already released" / "Payment … can no longer be captured,
   status is … (…)"
10. Stripe refuses for good, for any other reason (amount too large...) → `failed` (terminal: never
    retried forever): "Stripe refused to …: …"

[//]: # (end rule-table stripe-capture)

**Params** (manual runs): `commercial_ids` (only these commercial orders), `dry_run` (decide and
report, change nothing). There is no `since`: PA11 has no date filter.

**Schedule**: Variable `stripe_payment_validation__schedule` (cron, preset or `none`), default
`0-59/5 * * * *`; the env var `AIRFLOW_VAR_STRIPE_PAYMENT_VALIDATION__SCHEDULE` wins everywhere.

**Where is the summary?** The `report` task's XCom (`return_value`, or `run_summary` when it failed)
and its log.
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
    description="Mirakl pending debits → PA01; Stripe authorisations → capture or cancel",
    doc_md=DOC_MD,
    schedule=schedule_from_variable(DAG_ID, default=DEFAULT_SCHEDULE),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # Two overlapping runs would both try to capture the same payments.
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=1),
    params={
        "commercial_ids": ids_param(
            "Only these commercial orders",
            "Mirakl commercial order ids to validate and capture, one per line. Empty: all.",
        ),
        "dry_run": dry_run_param(),
    },
    default_args=default_args,
    tags=["mirakl", "stripe", "payments"],
) as dag:
    wait_for_mirakl = MiraklApiSensor(
        task_id="wait_for_mirakl",
        mode="reschedule",
        poke_interval=30,
        timeout=timedelta(minutes=10).total_seconds(),
        retries=0,
    )
    validate_debits = MiraklWorkflowOperator(
        task_id="validate_debits", workflow="payment_validation", step="validate"
    )
    capture_payments = MiraklWorkflowOperator(
        task_id="capture_payments", workflow="payment_validation", step="capture"
    )
    report = BatchReportOperator(
        task_id="report",
        summary_task_ids=["validate_debits", "capture_payments"],
        retries=0,
    )

    wait_for_mirakl >> validate_debits >> capture_payments >> report
