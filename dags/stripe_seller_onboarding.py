"""Seller onboarding: a Stripe Express account and an onboarding link for every Mirakl shop."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from mirakl_connector.airflow.notifiers import ConnectorFailureNotifier
from mirakl_connector.airflow.operators.report import BatchReportOperator
from mirakl_connector.airflow.operators.workflow import MiraklWorkflowOperator
from mirakl_connector.airflow.params import dry_run_param, ids_param, since_param
from mirakl_connector.airflow.schedules import schedule_from_variable
from mirakl_connector.airflow.sensors.mirakl import MiraklApiSensor
from mirakl_connector.stripe.specs import SELLER_ONBOARDING

DAG_ID = "stripe_seller_onboarding"

# Every minute, as the incumbent connector and Stripe's Mirakl guide recommend: a seller who has
# just signed up is waiting for the link. A run with nothing new costs one S20 call.
DEFAULT_SCHEDULE = "* * * * *"

DOC_MD = """
### Seller onboarding (Mirakl shops → Stripe Express accounts)

Gives every Mirakl shop a Stripe Express connected account and puts the link to finish its
onboarding in the shop's Mirakl link field, so the seller can start selling.

**Reads** Mirakl shops (S20) updated since the checkpoint `seller_onboarding_checkpoint`, plus
the shops of the ledger's retry queue. **Writes** Stripe Express accounts (metadata
`miraklShopId`, manual payouts, no automatic debit of negative balances) and account links;
the shops' link field with S07 (100 shops a call); the ledger's account mappings (payouts and
charges enabled, disabled reason, ignored flag, onboarding token), the retry queue and the
checkpoint.

**Tasks**
1. `wait_for_mirakl`: waits (reschedule mode) until the Mirakl API answers.
2. `onboard_sellers`: per shop: get or create the Express account (idempotency key from the
   shop id: a crash between Stripe and the ledger never creates a second account); copy the
   `stripe-ignored` field ("true" = ignored: its order transfers become IGNORED) to the mapping;
   when the link field (`stripe-url`) is empty or holds a legacy `express/oauth/authorize` link,
   create an account link (refresh URL `<refresh_base_url>/onboarding/refresh?token=<token>`)
   and write it with S07. An existing link is kept.
3. `report`: one summary of the run; fails, and e-mails `alerts.email_to`, when a shop failed.

**Outcomes** per shop: `ACCOUNT_CREATED`, `LINK_SENT`, `UPDATED` (ignored flag changed),
`UNCHANGED`; `RETRY_QUEUED` when a Stripe or Mirakl call failed (the shop enters the retry
queue with the reason; this is the only outcome that turns the run red), `RETRY_PENDING` when
a shop already queued failed again (counted, not e-mailed every minute). Queued shops are
retried every run and leave the queue when they succeed. The checkpoint (the newest
`last_updated_date`) moves only after the whole batch is recorded.

**Settings** (Variable `mirakl_connector_config`, section `seller_onboarding`): `enabled`
(true), `prefill` (false: prefill business type and profile from the shop), `ignored_field`
(`stripe-ignored`), `link_field` (`stripe-url`), `refresh_base_url`
(`http://127.0.0.1:8080/mirakl-connector`, the connector's public web endpoint), `return_url`
(default `<Mirakl URL>/mmp/shop/account/shop`).

**Params** (manual runs): `since` (re-read shops updated since this RFC 3339 instant; the
checkpoint does not move),
`shop_ids` (only these shops; the checkpoint does not move), `dry_run` (decide and report,
create and write nothing).

**Schedule**: Variable `stripe_seller_onboarding__schedule` (cron, preset or `none`), default
`* * * * *`. Read when the file is parsed; the env var
`AIRFLOW_VAR_STRIPE_SELLER_ONBOARDING__SCHEDULE` wins everywhere.
"""

default_args = {
    "owner": "payments-data-eng",
    "retries": 2,
    "retry_delay": timedelta(seconds=20),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=2),
    "on_failure_callback": ConnectorFailureNotifier(),
}

with DAG(
    dag_id=DAG_ID,
    description="Mirakl shops → Stripe Express accounts and onboarding links",
    doc_md=DOC_MD,
    schedule=schedule_from_variable(DAG_ID, default=DEFAULT_SCHEDULE),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # Two overlapping runs would both create links for the same new shops.
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=30),
    params={
        "since": since_param("Shops updated since"),
        "shop_ids": ids_param(
            "Only these shops", "Mirakl shop ids to (re)onboard, one per line. Empty: all."
        ),
        "dry_run": dry_run_param(),
    },
    default_args=default_args,
    tags=["mirakl", "stripe", "onboarding"],
) as dag:
    wait_for_mirakl = MiraklApiSensor(
        task_id="wait_for_mirakl",
        mode="reschedule",
        poke_interval=30,
        timeout=timedelta(minutes=5).total_seconds(),
        retries=0,
    )
    onboard_sellers = MiraklWorkflowOperator(
        task_id="onboard_sellers", workflow=SELLER_ONBOARDING, step="sync"
    )
    report = BatchReportOperator(task_id="report", summary_task_ids=["onboard_sellers"], retries=0)

    wait_for_mirakl >> onboard_sellers >> report
