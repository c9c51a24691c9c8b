"""Payment split: pay Mirakl sellers their share of each paid order, as Stripe Connect transfers."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from mirakl_connector.airflow.notifiers import ConnectorFailureNotifier
from mirakl_connector.airflow.operators.report import BatchReportOperator
from mirakl_connector.airflow.operators.workflow import MiraklWorkflowOperator
from mirakl_connector.airflow.params import run_params
from mirakl_connector.airflow.reconcile import reconcile_task
from mirakl_connector.airflow.schedules import schedule_from_variable
from mirakl_connector.airflow.sensors.mirakl import MiraklApiSensor
from mirakl_connector.airflow.sharding import shard_plan_task, sharded_step
from mirakl_connector.stripe.specs import PAYMENT_SPLIT

DAG_ID = "stripe_payment_split"

# Every 5 minutes, at minute 1, 6, 11...: the incumbent connector's cadence. The offset keeps this
# DAG from starting in the same minute as payment validation (0-59/5) and refunds (2-59/5), which
# share Mirakl's per-operator rate limit.
DEFAULT_SCHEDULE = "1-59/5 * * * *"

DOC_MD = """
### Payment split (Mirakl orders → Stripe transfers to sellers)

For every Mirakl order that the customer has paid, transfer the seller's share from the platform's
Stripe balance to the seller's connected account. Product orders (OR11) and, when enabled, service
orders (SOR11) are split; the `mirakl_connector_config` Variable's `payment_split` section switches
each on (`product_enabled`, `service_enabled`, `tax_split_enabled`, `tax_account`).

**Tasks**
1. `wait_for_mirakl`: waits (reschedule mode) until the Mirakl API answers; a wrong API key fails
   at once.
2. `plan_transfers`: reads new orders and the ON_HOLD/FAILED rows whose cause changed (their
   Mirakl order by update date, their shop's account or KYC, their payment mapping), decides
   each transfer and records it in the connector's ledger. Every
   `payment_split.backlog_full_sweep_hours` (default 24) it re-reads the whole backlog instead.
3. `shard_transfers`: splits the PENDING rows into `payment_split.execute_shards` shards
   (default 4) by ledger row id.
4. `create_transfers` (mapped, one task per shard, in the `stripe_api` pool): creates the Stripe
   transfers of its shard's PENDING rows, each with an idempotency key from its ledger row, so a
   retry never pays twice and two shards never send the same row. On CeleryExecutor the shards
   run on several workers at once.
5. `reconcile`: the transfers this run recorded against Stripe's transfer list (one
   `GET /v1/transfers` page per 100 transfers of the run's window) and their Mirakl orders (OR11
   by id, 100 a call): matched, missing at Stripe, missing in Mirakl, missing in the ledger,
   amount or currency mismatch. Green whenever it could compare; results in the Payments
   console (Reconciliation).
6. `report`: one summary of the run (its return value; the shards' summaries added up); first
   whether the run reconciles; fails, and e-mails `alerts.email_to`, when any order failed or
   the run does not reconcile (the mismatches are listed).

**First run**: with no checkpoint, the run needs the `go_live` setting (an RFC 3339 instant at
the top of `mirakl_connector_config`); without it `plan_transfers` fails at once and moves
nothing, saying what to set. Orders created before `go_live` are counted `BEFORE_GO_LIVE`, never
moved.

**Decision rules** (first match wins): created before `go_live` → BEFORE_GO_LIVE (counted only);
the shop is paid by another provider at the order's date (`payout_provider` rule: `shops`,
`hw-program`, `default`) → ABORTED; no Stripe account for the shop → ON_HOLD; shop ignored →
IGNORED; the account's KYC status not known yet → ON_HOLD (unknown is not verified); KYC
PENDING_SUBMISSION/PENDING_APPROVAL/REFUSED → ON_HOLD; order refused/cancelled → ABORTED; order
not validated or not yet debited → ON_HOLD; payment cancelled/failed → ABORTED, not captured →
ON_HOLD; amount (amount due − operator commission, in the currency's minor units) ≤ 0 →
ABORTED; the order already claimed by the other provider in the ledger → ABORTED; above
`approval.transfer_above` and not approved on the payments console → ON_HOLD "awaiting
approval" (off by default; the next scheduled run after the decision sends it, once); otherwise
PENDING, then CREATED once Stripe accepts it.

**Params** (manual runs): `since` (re-read orders created since this RFC 3339 instant; the
checkpoint does not move), `order_ids` (only these orders), `dry_run` (decide and report, change
nothing).

**Schedule**: Variable `stripe_payment_split__schedule` (cron, preset or `none`), default
`1-59/5 * * * *`. Read when the file is parsed; the env var
`AIRFLOW_VAR_STRIPE_PAYMENT_SPLIT__SCHEDULE` wins everywhere.

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
    description="Mirakl orders → Stripe Connect transfers to sellers",
    doc_md=DOC_MD,
    schedule=schedule_from_variable(DAG_ID, default=DEFAULT_SCHEDULE),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # Two overlapping runs would both plan the same new orders.
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=1),
    params=run_params(),
    default_args=default_args,
    tags=["mirakl", "stripe", "payments"],
) as dag:
    wait_for_mirakl = MiraklApiSensor(
        task_id="wait_for_mirakl",
        mode="reschedule",
        poke_interval=30,
        timeout=timedelta(minutes=10).total_seconds(),
        # Waiting is the sensor's job; a retry would only restart the 10 minutes.
        retries=0,
    )
    plan_transfers = MiraklWorkflowOperator(
        task_id="plan_transfers", workflow=PAYMENT_SPLIT, step="plan"
    )

    shards = shard_plan_task(PAYMENT_SPLIT, task_id="shard_transfers")
    create_transfers = sharded_step(
        task_id="create_transfers", workflow=PAYMENT_SPLIT, step="execute", shards=shards
    )
    # all_success (the default): if a step crashed, that step's own failure e-mail already says
    # why and there is no complete batch to summarise; a report of half a run would mislead.
    reconcile = reconcile_task(PAYMENT_SPLIT)
    report = BatchReportOperator(
        task_id="report",
        summary_task_ids=["plan_transfers", "create_transfers", "reconcile"],
        retries=0,
    )

    wait_for_mirakl >> plan_transfers >> shards >> create_transfers >> reconcile >> report
