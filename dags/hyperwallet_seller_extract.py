"""Hyperwallet seller extract: every Mirakl shop (individual or professional) as a user."""

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
from mirakl_connector.hyperwallet.specs import SELLER_EXTRACT

DAG_ID = "hyperwallet_seller_extract"

# Daily at 00:00 (the incumbent's PAYPAL_HYPERWALLET_EXTRACT_SELLERS_CRON_EXPRESSION): the bank
# account extract (00:30) needs the users this creates.
DEFAULT_SCHEDULE = "0 0 * * *"

DOC_MD = """
### Hyperwallet seller extract (Mirakl shops → Hyperwallet users)

Creates or updates one Hyperwallet user per Mirakl shop, individual (`INDIVIDUAL` profile) or
professional (`BUSINESS`), in the *users* program of the shop's `hw-program`, and writes the
user token back to the shop.

**Reads** Mirakl shops (S20) updated since the start of the last run that read at least one shop
(at most `hyperwallet.extraction_max_days` = 30 days back), plus the shops of the retry queue
that are due. **Writes** Hyperwallet users (`POST /users`, `PUT /users/{token}`); the shop field
`hw-user-token` (S07); the ledger's retry queue and window start
(`hyperwallet_seller_extract_window_start`).

**Tasks**
1. `wait_for_mirakl`: waits (reschedule mode) until the Mirakl API answers.
2. `check_hyperwallet`: validates the `hyperwallet` configuration (programs, tokens) and asks
   Hyperwallet for each program: a wrong password or token fails here, with its name.
3. `extract_sellers`: per shop: filters (terminated, no `hw-program`, ignored program, no
   `hw-terms-consent` → skipped with the reason; unknown program → failed); a shop without
   `hw-user-token` is first looked up by `clientUserId` (never a second user); then
   `POST /users` + S07 of the token, or `PUT /users/{token}`.
4. `report`: one summary; fails, and e-mails `alerts.email_to`, when a shop failed.

**Outcomes** per shop: `CREATED`, `UPDATED`, `SKIPPED_*` (with the reason), `FAILED` (first
failure: queued for retry, turns the run red), `RETRY_PENDING` (a queued shop failed again),
`RETRIES_EXHAUSTED` (5 retries failed: one e-mail "Max retry attempts reached when processing
item [id]"; retried again when the shop changes). The task log keeps the incumbent's
`[BATCHJOB]` / `[BATCHJOBITEM]` lines.

**Settings** (Variable `mirakl_connector_config`): section `hyperwallet` (programs, see the
README; `max_item_retries` 5, `item_retry_delay_minutes` 30, `extraction_max_days` 30) and
section `hyperwallet_seller_extract`: `new_user_mapping` (false), `mirakl_time_zone` (`UTC`).

**Params** (manual runs): `since` (re-read shops updated since this RFC 3339 instant; the
window does not move), `shop_ids` (only these shops, even if out of retries), `dry_run` (read
and decide; no Hyperwallet, Mirakl or ledger write).

**Schedule**: Variable `hyperwallet_seller_extract__schedule` (cron, preset or `none`), default
`0 0 * * *`. Connections: `mirakl_default`, `hyperwallet_default`, `mirakl_connector_db`.
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
    description="Mirakl shops → Hyperwallet users",
    doc_md=DOC_MD,
    schedule=schedule_from_variable(DAG_ID, default=DEFAULT_SCHEDULE),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # Two overlapping runs could both create the user of a new shop.
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=2),
    params={
        "since": since_param("Shops updated since"),
        "shop_ids": ids_param(
            "Only these shops", "Mirakl shop ids to (re)process, one per line. Empty: all."
        ),
        "dry_run": dry_run_param(),
    },
    default_args=default_args,
    tags=["mirakl", "hyperwallet", "onboarding"],
) as dag:
    wait_for_mirakl = MiraklApiSensor(
        task_id="wait_for_mirakl",
        mode="reschedule",
        poke_interval=30,
        timeout=timedelta(minutes=10).total_seconds(),
        retries=0,
    )
    check_hyperwallet = MiraklWorkflowOperator(
        task_id="check_hyperwallet", workflow=SELLER_EXTRACT, step="check", retries=0
    )
    extract_sellers = MiraklWorkflowOperator(
        task_id="extract_sellers", workflow=SELLER_EXTRACT, step="sync"
    )
    report = BatchReportOperator(task_id="report", summary_task_ids=["extract_sellers"], retries=0)

    wait_for_mirakl >> check_hyperwallet >> extract_sellers >> report
