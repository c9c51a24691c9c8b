"""Payment refund: refund customers what Mirakl asks for, and reverse the sellers' share."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from mirakl_connector.airflow.notifiers import ConnectorFailureNotifier
from mirakl_connector.airflow.operators.report import BatchReportOperator
from mirakl_connector.airflow.operators.workflow import MiraklWorkflowOperator
from mirakl_connector.airflow.params import dry_run_param, ids_param
from mirakl_connector.airflow.reconcile import reconcile_task
from mirakl_connector.airflow.schedules import schedule_from_variable
from mirakl_connector.airflow.sensors.mirakl import MiraklApiSensor
from mirakl_connector.airflow.sharding import shard_plan_task, sharded_step

DAG_ID = "stripe_payment_refund"

# Every 5 minutes at minute 2, 7, 12...: the incumbent's cadence, one minute after the payment
# split (1-59/5) whose transfers the reversals need.
DEFAULT_SCHEDULE = "2-59/5 * * * *"

DOC_MD = """
### Payment refund (Mirakl refunds → Stripe refunds → PA02/SPA02, seller transfer reversals)

Mirakl lists the refunds waiting for payment (PA12 products, SPA12 services). This DAG refunds
the customer in Stripe, confirms the refund in Mirakl, and takes the seller's share back from the
order's transfer. Settings: the `mirakl_connector_config` Variable's `payment_refund` section
(`product_enabled`, default true; `service_enabled`, default false; `execute_shards`, mapped tasks
per write step, default 4; `backlog_full_sweep_hours`, default 24). The tax split comes from the
`payment_split` section, so the reversal always mirrors the split that was made.

**Tasks**
1. `wait_for_mirakl`: waits (reschedule mode) until the Mirakl API answers.
2. `plan_refunds`: the ledger backlog (ON_HOLD/FAILED refunds, even those Mirakl no longer lists)
   and PA12/SPA12 are decided. Between two full sweeps (`payment_refund.backlog_full_sweep_hours`,
   default 24) only the waiting refunds whose order transfer or payment mapping changed, and the
   FAILED ones; PA12 has no filter, so it is still read in full for new refunds. The decision
   rules are below; the first run needs `go_live`.
3. `plan_shards`: splits the rows into `payment_refund.execute_shards` shards (default 4) by
   ledger row id; the next two steps are mapped over them (one task per shard, `stripe_api` pool).
4. `create_refunds`: Stripe refund of every PENDING row (idempotency key from the Mirakl refund
   id; the `re_` id is stored before Mirakl is told), then PA02 / SPA02. A failed validation is
   retried alone on the next run: the customer is never refunded twice.
5. `reverse_transfers`: once the refund is done and the order transfer exists, reverses refund −
   refunded commission (− refunded tax with the tax split; the tax comes back from the `_TAX`
   transfer in its own `_TAX` row). Zero or less → ABORTED with the amount. Between sweeps only
   the reversals whose refund or order transfer changed; the order is read (OR11) only for a
   reversal that can move.
6. `reconcile`: the refunds and reversals this run recorded against Stripe's lists over the
   run's window (`GET /v1/refunds`; reversals as the platform's `transfer_refund` balance
   transactions) and the refunds in their Mirakl orders (OR11/SOR11 by id, 100 a call).
   Green whenever it could compare; results in the Payments console (Reconciliation).
7. `report`: one summary of the run, first whether it reconciles; fails, and e-mails
   `alerts.email_to`, when any item failed or the run does not reconcile.

**Decision rules** of `plan_refunds` (first match wins):

[//]: # (rule-table stripe-refund: written by scripts/render_rule_tables.py, do not edit)

1. Refunded in Stripe already: validated in Mirakl, or not yet → `REFUND_CREATED`, or
   `REFUND_PENDING` (only the Mirakl validation left)
2. New refund of an order created before `go_live` (the order's date: its transfer row, else
   OR11/SOR11 by id) → `BEFORE_GO_LIVE` (counted, never recorded or moved): "created …, before
   go_live …: not moved"
3. Another provider pays the order's shop at the order's date → `REFUND_ABORTED`: "Shop … is paid by
   Hyperwallet, not Stripe (the rule that said so)"
4. Amount ≤ 0 → `REFUND_ABORTED`: "Amount must be positive, input was: …"
5. A currency Stripe does not support → `REFUND_FAILED`: "Currency … is not supported by Stripe (see
   …)"
6. Amount below the smallest refund Stripe can express in the currency → `REFUND_ABORTED`: "Amount
   is below the smallest … Stripe allows in …"
7. No payment (the order transfer's charge, else the payment mapping) → `REFUND_ON_HOLD`: "Cannot
   find the ID of the payment to be refunded"
8. Payment unknown to Stripe → `REFUND_ABORTED`: Stripe's message
9. Payment cancelled, failed or already refunded → `REFUND_ABORTED`: "Payment … has been canceled" /
   "Payment … failed"
10. Payment not captured yet (an intent still in `requires_*` is cancelled, as the Stripe connector
    does), or an intent without a charge → `REFUND_ON_HOLD`: "Payment … is not ready yet, status is
    …" / "Payment … is not ready yet, status is succeeded (not captured)" / "Payment … has no charge
    yet"
11. The refund is already claimed by the other provider → `REFUND_ABORTED`: "Refund … is already
    claimed for payment by hyperwallet (…): not paid by stripe"
12. Otherwise → `REFUND_PENDING`, then `REFUND_CREATED` or `REFUND_FAILED`: Stripe's or Mirakl's
    message on failure

[//]: # (end rule-table stripe-refund)

**Statuses**: refunds `REFUND_ON_HOLD` → `REFUND_PENDING` → `REFUND_CREATED` (refunded and
validated) or `REFUND_FAILED` (retried), `REFUND_ABORTED` (terminal); reversals
(`TRANSFER_REFUND`) `ON_HOLD` → `PENDING` → `CREATED`, `FAILED` (retried) or `ABORTED`.

**Params** (manual runs): `order_ids` (only refunds of these Mirakl orders), `dry_run` (decide and
report, change nothing). There is no `since`: PA12/SPA12 have no date filter.

**Schedule**: Variable `stripe_payment_refund__schedule` (cron, preset or `none`), default
`2-59/5 * * * *`; the env var `AIRFLOW_VAR_STRIPE_PAYMENT_REFUND__SCHEDULE` wins everywhere.

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
    description="Mirakl refunds → Stripe refunds, PA02/SPA02, seller transfer reversals",
    doc_md=DOC_MD,
    schedule=schedule_from_variable(DAG_ID, default=DEFAULT_SCHEDULE),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # Two overlapping runs would both plan the same refunds.
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=1),
    params={
        "order_ids": ids_param(
            "Only refunds of these orders",
            "Mirakl order ids whose refunds to (re)process, one per line. Empty: all.",
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
    plan_refunds = MiraklWorkflowOperator(
        task_id="plan_refunds", workflow="payment_refund", step="plan"
    )
    shards = shard_plan_task("payment_refund")
    create_refunds = sharded_step(
        task_id="create_refunds", workflow="payment_refund", step="refund", shards=shards
    )
    reverse_transfers = sharded_step(
        task_id="reverse_transfers", workflow="payment_refund", step="reverse", shards=shards
    )
    report = BatchReportOperator(
        task_id="report",
        summary_task_ids=["plan_refunds", "create_refunds", "reverse_transfers", "reconcile"],
        retries=0,
    )
    reconcile = reconcile_task("payment_refund")

    (
        wait_for_mirakl
        >> plan_refunds
        >> shards
        >> create_refunds
        >> reverse_transfers
        >> reconcile
        >> report
    )
