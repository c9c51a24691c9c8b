"""Seller settlement: Mirakl invoices → invoice transfers and payouts on Stripe Connect."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param

from mirakl_connector.airflow.notifiers import ConnectorFailureNotifier
from mirakl_connector.airflow.operators.report import BatchReportOperator
from mirakl_connector.airflow.operators.workflow import MiraklWorkflowOperator
from mirakl_connector.airflow.params import dry_run_param, since_param
from mirakl_connector.airflow.reconcile import reconcile_task
from mirakl_connector.airflow.schedules import schedule_from_variable
from mirakl_connector.airflow.sensors.mirakl import MiraklApiSensor
from mirakl_connector.airflow.sharding import shard_plan_task, sharded_step
from mirakl_connector.stripe.specs import SELLER_SETTLEMENT

DAG_ID = "stripe_seller_settlement"

# Daily at 01:00 UTC, after Mirakl's billing cycle has produced the day's invoices. The incumbent
# used 01:03 only to keep its per-minute crontab jobs apart; nothing else of ours starts at 01:00
# (the 5-minute DAGs run at minutes 0-2 mod 5 but max_active_runs and the Mirakl client's
# rate-limit handling absorb that), so the round hour is easier to reason about.
DEFAULT_SCHEDULE = "0 1 * * *"

DOC_MD = """
### Seller settlement (Mirakl invoices → Stripe invoice transfers and payouts)

Reads the Mirakl accounting documents (IV01) created since the last run and settles each one on
Stripe Connect: the subscription and extra invoices (fees the seller owes) move from the seller's
connected account to the platform, the extra credits move from the platform to the seller, then
the invoice's `amount_transferred` is paid out from the seller's balance to their bank.

**Reads**: IV01 (from the `seller_settlement_checkpoint`, the newest invoice date seen), the
ledger's account mappings and its ON_HOLD/FAILED settlement rows. **Writes**: Stripe transfers
(seller → platform ones with the seller's `Stripe-Account`) and payouts, each with an idempotency
key from the invoice id and type; the ledger rows and the checkpoint. Mirakl is not written to.

**Tasks**
1. `wait_for_mirakl`: waits until the Mirakl API answers.
2. `plan_settlement`: re-evaluates the backlog, then the new invoices; records 3 invoice
   transfers and 1 payout per invoice. Between two full sweeps
   (`seller_settlement.backlog_full_sweep_hours`, default 24: with the daily schedule, every
   run) only the waiting rows whose cause changed: the shop's account mapping, the invoice's
   transfers, funds (their expected date passed, a transfer credited the account); FAILED rows
   always. Those invoices are read by id (IV01 `invoice_id`); no Stripe call for the others.
3. `plan_shards`: splits the PENDING rows into `seller_settlement.execute_shards` shards
   (default 4) by ledger row id.
4. `create_invoice_transfers` (mapped, one task per shard, in the `stripe_api` pool): creates
   the PENDING invoice transfers of its shard.
5. `create_payouts` (mapped the same way, after every transfer shard): creates the PENDING payouts
   whose invoice transfers are settled (fees are collected before the rest is paid out).
6. `reconcile`: the transfers and payouts this run recorded against Stripe's lists over the
   run's window (the platform's transfers; each seller account's transfers and payouts, for the
   accounts of the run only) and their IV01 invoices (one date window): green whenever it could
   compare; results in the Payments console (Reconciliation).
7. `report`: one summary, first whether the run reconciles; fails (and e-mails
   `alerts.email_to`) when an item failed or the run does not reconcile.

**First run**: with no checkpoint, `go_live` (top of `mirakl_connector_config`) is required;
invoices created before it are counted `BEFORE_GO_LIVE`, never paid.

**Statuses** (transfers `TRANSFER_*`, payouts `PAYOUT_*`): the shop paid by another provider at
the invoice's date (`payout_provider` rule), the invoice already claimed by Hyperwallet, amount 0
or missing shop → ABORTED; no Stripe account for the shop, shop ignored, payouts disabled, the
account's KYC status not known yet (payout, extra credits), or (payout) an invoice transfer
of the same invoice not settled yet, funds not there yet, or (off by default) held by the
`approval` settings (`transfer_above`, `payout_above`, `first_payout_to_new_account`) until
approved on the payments console → ON_HOLD (re-evaluated when that changes, and by the full
sweep); otherwise PENDING, then
CREATED, or FAILED with Stripe's reason (retried next run with a new key). A backlog row whose
invoice Mirakl no longer returns keeps its status; the report names it.

**Params** (manual runs): `shop_id` (one shop: no backlog, checkpoint unchanged), `since` and
`until` (invoice creation window; checkpoint unchanged), `dry_run`.

**Settings**: `seller_settlement.invoice_transfers`, `seller_settlement.payouts` (both true by
default; turn payouts off when sellers use Stripe's automatic payouts),
`seller_settlement.execute_shards` (mapped tasks per write step, 1-64, default 4),
`seller_settlement.backlog_full_sweep_hours` (hours between two full sweeps, default 24); the
`approval` section (README "Approval gate").

**Schedule**: Variable `stripe_seller_settlement__schedule`, default `0 1 * * *`.
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
    description="Mirakl invoices → Stripe invoice transfers and seller payouts",
    doc_md=DOC_MD,
    schedule=schedule_from_variable(DAG_ID, default=DEFAULT_SCHEDULE),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # Two overlapping runs would both plan the same invoices.
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=3),
    params={
        "shop_id": Param(
            None,
            type=["null", "integer"],
            title="Only this shop",
            description="Mirakl shop id: settle its invoices only (no backlog, no checkpoint).",
        ),
        "since": since_param("Invoices created since"),
        "until": since_param("Invoices created before"),
        "dry_run": dry_run_param(),
    },
    default_args=default_args,
    tags=["mirakl", "stripe", "payouts"],
) as dag:
    wait_for_mirakl = MiraklApiSensor(
        task_id="wait_for_mirakl",
        mode="reschedule",
        poke_interval=60,
        timeout=timedelta(minutes=30).total_seconds(),
        retries=0,
    )
    plan = MiraklWorkflowOperator(
        task_id="plan_settlement", workflow=SELLER_SETTLEMENT, step="plan"
    )
    shards = shard_plan_task(SELLER_SETTLEMENT)
    transfers = sharded_step(
        task_id="create_invoice_transfers",
        workflow=SELLER_SETTLEMENT,
        step="transfer",
        shards=shards,
    )
    payouts = sharded_step(
        task_id="create_payouts", workflow=SELLER_SETTLEMENT, step="payout", shards=shards
    )
    report = BatchReportOperator(
        task_id="report",
        summary_task_ids=[
            "plan_settlement",
            "create_invoice_transfers",
            "create_payouts",
            "reconcile",
        ],
        retries=0,
    )
    reconcile = reconcile_task(SELLER_SETTLEMENT)

    wait_for_mirakl >> plan >> shards >> transfers >> payouts >> reconcile >> report
