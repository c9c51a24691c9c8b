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

**Decision rules** (first match wins; `PENDING`, then `CREATED` once Stripe accepts it):

[//]: # (rule-table stripe-transfer: written by scripts/render_rule_tables.py, do not edit)

1. Transfer already created → `TRANSFER_CREATED`
2. Order created before `go_live` and not in the ledger yet → `BEFORE_GO_LIVE` (counted, never
   recorded or moved): "created …, before go_live …: not moved"
3. Another provider pays the shop at the order's date (`payout_provider` rule: `shops`,
   `hw-program`, `default`) → `TRANSFER_ABORTED`: "Shop … is paid by Hyperwallet, not Stripe (the
   rule that said so)"
4. A currency Stripe does not support → `TRANSFER_FAILED`: "Currency … is not supported by Stripe
   (see …)"
5. No shop id on the order → `TRANSFER_ON_HOLD`: "No shop ID provided"
6. No Stripe account mapped to the shop → `TRANSFER_ON_HOLD`: "Cannot find Stripe account for shop
   ID …"
7. Tax transfer (`<order id>_TAX`) while the tax split is disabled → `TRANSFER_ON_HOLD`: "Tax split
   is disabled; enable it to transfer the tax"
8. Tax transfer without `payment_split.tax_account` → `TRANSFER_ON_HOLD`: "No stripe account ID
   provided"
9. Shop flagged ignored → `TRANSFER_IGNORED`: "Shop … is ignored"
10. Seller's account verification status not known yet (no KYC status: not seen by onboarding, the
    KYC monitor or `account.updated`; unknown is not verified) → `TRANSFER_ON_HOLD`: "Stripe account
    … verification status is not known yet (waiting for the KYC monitor or an account.updated
    event)"
11. Seller's account not verified (KYC PENDING_SUBMISSION, PENDING_APPROVAL, REFUSED); not for the
    tax transfer → `TRANSFER_ON_HOLD`: "Stripe account … is not verified yet (KYC …)"
12. Order refused / cancelled (service: refused, expired, cancelled) → `TRANSFER_ABORTED`: "Order
    cannot be processed, status is …"
13. Order not accepted yet, or not debited (service: no OK debit) → `TRANSFER_ON_HOLD`: "Order is
    not ready yet, status is …"
14. Payment intent cancelled, charge failed or refunded → `TRANSFER_ABORTED`: "Payment … has been
    canceled" / "Payment … failed"
15. Payment not succeeded or not captured yet, or an intent without a charge → `TRANSFER_ON_HOLD`:
    "Payment … is not ready yet, status is …" / "Payment … is not ready yet, status is succeeded
    (not captured)" / "Payment … has no charge yet"
16. Payment unknown to Stripe → `TRANSFER_ABORTED`: Stripe's message
17. Amount (amount due − operator commission [− tax], in minor units) ≤ 0 → `TRANSFER_ABORTED`:
    "Amount must be positive, input was: …"
18. Amount below the smallest transfer Stripe can express in the currency → `TRANSFER_ABORTED`:
    "Amount is below the smallest … Stripe allows in …"
19. Above `approval.transfer_above` and not approved for this amount and destination on the payments
    console (off by default; the next scheduled run after the approval sends it, once) →
    `TRANSFER_ON_HOLD`: "awaiting approval: … is above approval.transfer_above …"
20. The order is already claimed by the other provider (payment claims) → `TRANSFER_ABORTED`: "Order
    … is already claimed for payment by hyperwallet (…): not paid by stripe"
21. Otherwise → `TRANSFER_PENDING`, then `TRANSFER_CREATED` or `TRANSFER_FAILED`: Stripe's message
    on failure

[//]: # (end rule-table stripe-transfer)

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
        task_id="plan_transfers", workflow="payment_split", step="plan"
    )

    shards = shard_plan_task("payment_split", task_id="shard_transfers")
    create_transfers = sharded_step(
        task_id="create_transfers", workflow="payment_split", step="execute", shards=shards
    )
    # all_success (the default): if a step crashed, that step's own failure e-mail already says
    # why and there is no complete batch to summarise; a report of half a run would mislead.
    reconcile = reconcile_task("payment_split")
    report = BatchReportOperator(
        task_id="report",
        summary_task_ids=["plan_transfers", "create_transfers", "reconcile"],
        retries=0,
    )

    wait_for_mirakl >> plan_transfers >> shards >> create_transfers >> reconcile >> report
