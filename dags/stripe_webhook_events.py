"""Stripe events: apply the webhooks stored by the API server plugin, and heal lost ones."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher

from mirakl_connector.airflow.notifiers import ConnectorFailureNotifier
from mirakl_connector.airflow.operators.workflow import MiraklWorkflowOperator
from mirakl_connector.airflow.schedules import schedule_from_variable
from mirakl_connector.airflow.sensors.stripe import StripeEventsHealingSensor
from mirakl_connector.airflow.triggers.inbox import InboxTrigger
from mirakl_connector.stripe.specs import STRIPE_EVENTS

DAG_ID = "stripe_webhook_events"
HEALING_DAG_ID = "stripe_event_healing"
DEFAULT_HEALING_SCHEDULE = "*/30 * * * *"

DOC_MD = """
### Stripe events (webhooks → ledger inbox → effects)

The API server plugin (`/mirakl-connector/webhooks/stripe`) verifies each Stripe webhook and
stores it once in the ledger's inbox; it calls nobody. This DAG applies the stored events.

**Why an asset watcher**: the asset has an edge-triggered `InboxTrigger` (in the triggerer, every
5 s) that fires only when a newer event is waiting, and again after 5 minutes if events still wait
(a failed run, a retry whose back-off is due). A short schedule would run all day for nothing;
posting an asset event from the route needs an API credential in the plugin and misses events
stored while the DAG was paused. A run starts a few seconds after the webhook.

**Task** `process_events`: each RECEIVED event, and each FAILED one whose retry is due:
`account.updated` → account mapping, login link + KYC status to Mirakl (S07), `account.updated`
operator notification; `charge.succeeded`/`charge.updated` → payment mapping (commercial order id
from charge or payment intent metadata, key `stripe_events.commercial_order_metadata_key`);
`payout.failed` → payout PAYOUT_FAILED with "code: message". Unknown types are acknowledged by the
endpoint and IGNORED here. An event older than one already applied to the same object is IGNORED
(out-of-order guard). Failures retry after 1, 2, 4 … minutes (at most 1 h), 8 attempts.

**Statuses** (inbox): RECEIVED, PROCESSED, IGNORED, FAILED.
**Params**: `event_ids` (retry exactly these, e.g. given-up ones).
"""

HEALING_DOC_MD = """
### Stripe event healing

A deferrable sensor lists Stripe's Events API (`created` cursor, `starting_after` pages, at most
30 days) for the handled types and stores every event the inbox lacks, exactly as if its webhook
had arrived; `stripe_webhook_events` then applies it. First a full catch-up, then it waits in the
triggerer for newer events until the next run. Cursor: ledger checkpoint
`stripe_events_healing_cursor`. Schedule: Variable `stripe_event_healing__schedule` (default every
30 minutes).

That list holds the platform's own events only: `account.updated` and `payout.failed` of the
connected accounts live on those accounts (Stripe's "Connect webhooks"). So the first task,
`heal_connected_accounts`, re-reads the accounts list (100 a page) and, at most every 6 hours, the
failed payouts of each account paid in the last 10 days, and stores an event for every state the
ledger missed; `stripe_webhook_events` applies it like the webhook. Cost per run:
`ceil(accounts / 100) + accounts paid in the window` list calls (10,000 sellers: 100, or 10,100
on a payout re-read right after a billing cycle paid every seller).
"""

default_args = {
    "owner": "payments-data-eng",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "on_failure_callback": ConnectorFailureNotifier(),
}

stripe_inbox = Asset(
    "mirakl_connector_stripe_inbox",
    watchers=[
        AssetWatcher(
            name="stripe_inbox_watcher",
            trigger=InboxTrigger(ledger_conn_id="mirakl_connector_db", source="stripe"),
        )
    ],
)

with DAG(
    dag_id=DAG_ID,
    description="Apply Stripe webhook events stored in the ledger inbox",
    doc_md=DOC_MD,
    schedule=[stripe_inbox],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=30),
    params={"event_ids": None},
    default_args=default_args,
    tags=["mirakl", "stripe", "webhooks"],
) as dag:
    MiraklWorkflowOperator(task_id="process_events", workflow=STRIPE_EVENTS, step="process")

with DAG(
    dag_id=HEALING_DAG_ID,
    description="Store Stripe events whose webhook never arrived (Events API)",
    doc_md=HEALING_DOC_MD,
    schedule=schedule_from_variable(HEALING_DAG_ID, default=DEFAULT_HEALING_SCHEDULE),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    tags=["mirakl", "stripe", "webhooks"],
) as healing_dag:
    heal_connected = MiraklWorkflowOperator(
        task_id="heal_connected_accounts", workflow=STRIPE_EVENTS, step="heal_connected"
    )
    heal_connected >> StripeEventsHealingSensor(
        task_id="heal_events",
        poll_interval=60,
        timeout=timedelta(minutes=29).total_seconds(),
        soft_fail=True,  # nothing new before the next run: skipped, not failed
        retries=0,
        # the platform's events are healed even when re-reading the connected accounts failed
        trigger_rule="all_done",
    )
