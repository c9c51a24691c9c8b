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

**Decision rules** (transfers `TRANSFER_*`, payouts `PAYOUT_*`; first match wins; a row ON_HOLD
is re-evaluated when what it waits for changes, and by the full sweep):

[//]: # (rule-table stripe-settlement: written by scripts/render_rule_tables.py, do not edit)

1. Already created (a payout that failed at the bank afterwards and was not reopened is
   `PAYOUT_FAILED`) → `*_CREATED` / `PAYOUT_FAILED`: "Payout … failed after it was created…; check
   the seller's bank details, then pay out again from the Stripe dashboard"
2. Invoice created before `go_live` and not in the ledger yet → `BEFORE_GO_LIVE` (counted with its
   payout amount, never recorded or moved): "created …, before go_live …: not moved"
3. Another provider pays the shop at the invoice's date → `*_ABORTED`: "Shop … is paid by
   Hyperwallet, not Stripe (the rule that said so)"
4. No shop id on the invoice → `*_ABORTED`: "No shop ID provided"
5. Amount ≤ 0 → `*_ABORTED`: "Amount must be positive, input was: …"
6. A currency Stripe does not support → `*_FAILED`: "Currency … is not supported by Stripe (see …)"
7. Amount below the smallest transfer or payout Stripe can express in the currency (HUF and TWD pay
   out whole units: the rest stays on the seller's balance) → `*_ABORTED`: "Amount is below the
   smallest … Stripe allows in …"
8. No Stripe account for the shop → `*_ON_HOLD`: "Cannot find Stripe account for shop ID …"
9. Shop flagged ignored (the Stripe connector moved its money regardless) → `*_ON_HOLD`: "Shop … is
   ignored"
10. Payouts disabled on the account (payout) → `PAYOUT_ON_HOLD`: "Payouts are disabled for shop ID
    …"
11. Account's KYC status not known yet (payout, extra credits: money *to* the seller's account) →
    `*_ON_HOLD`: "Stripe account … verification status is not known yet (waiting for the KYC monitor
    or an account.updated event)"
12. Above `approval.transfer_above` / `approval.payout_above`, or the first payout to the account
    (`approval.first_payout_to_new_account`), and not approved for this amount and destination (off
    by default) → `*_ON_HOLD`: "awaiting approval: first payout to acct_…"
13. The invoice is already claimed by the other provider → `*_ABORTED`: "Invoice … is already
    claimed for payment by hyperwallet (…): not paid by stripe"
14. When sent (`create_payouts`): an invoice transfer of the same invoice not settled yet (fees are
    collected first) → `PAYOUT_ON_HOLD`: "Waiting for the invoice transfers of invoice …: …"
15. When sent: not enough available on the Stripe balance (`balance_insufficient`) → `*_ON_HOLD`:
    "Waiting for funds: … to pay out, … available on … (balance_insufficient); expected available on
    … UTC"
16. Otherwise → `*_PENDING`, then `*_CREATED` or `*_FAILED` (retried next run with a new key):
    Stripe's message on failure

[//]: # (end rule-table stripe-settlement)

A backlog row whose
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
        task_id="plan_settlement", workflow="seller_settlement", step="plan"
    )
    shards = shard_plan_task("seller_settlement")
    transfers = sharded_step(
        task_id="create_invoice_transfers",
        workflow="seller_settlement",
        step="transfer",
        shards=shards,
    )
    payouts = sharded_step(
        task_id="create_payouts", workflow="seller_settlement", step="payout", shards=shards
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
    reconcile = reconcile_task("seller_settlement")

    wait_for_mirakl >> plan >> shards >> transfers >> payouts >> reconcile >> report
