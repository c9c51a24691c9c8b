"""Hyperwallet bank account extract: every shop's Mirakl bank details as a Hyperwallet account."""

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
from mirakl_connector.hyperwallet.specs import BANK_ACCOUNT_EXTRACT

DAG_ID = "hyperwallet_bank_account_extract"

# Daily at 00:30 (the incumbent's PAYPAL_HYPERWALLET_BANK_ACCOUNT_EXTRACT_CRON_EXPRESSION), after
# the seller extract (00:00) has created the users the accounts belong to.
DEFAULT_SCHEDULE = "30 0 * * *"

DOC_MD = """
### Hyperwallet bank account extract (Mirakl bank details → Hyperwallet bank accounts)

Creates or updates the Hyperwallet bank account of every Mirakl shop from its bank details
(`payment_info`), and keeps the shop field `hw-bankaccount-token` pointing at it.

**Reads** Mirakl shops (S20) updated since the start of the last run that read at least one
shop (at most 30 days back), plus the due shops of the retry queue; the user's Hyperwallet bank
accounts. **Writes** Hyperwallet bank accounts (`POST`/`PUT /users/{user}/bank-accounts`); the
shop field `hw-bankaccount-token` (S07); the ledger's retry queue and window start.

**Account types**: IBAN (country = the IBAN's first two letters; BIC → `bankId`), US ABA
(`US`; routing number → `branchId`, `CHECKING`, bank zip and `hw-bankaccount-state`),
Canadian (`CA`; institution → `bankId`, transit → `branchId`), UK (`GB`; sort code →
`bankId`). A malformed IBAN, an unknown country or a missing bank code fails that shop only.

**Currency**: with `automatic_currency_selection` (default) the account is opened in the shop's
currency when Hyperwallet supports it for that country and type, else in a supported one
(US ABA + CAD shop → USD); off, always the shop's currency. Payments stay in the marketplace
currency.

**Tasks**
1. `wait_for_mirakl`, 2. `check_hyperwallet` (configuration and program tokens),
3. `extract_bank_accounts`: per shop: token synchronisation (the user's accounts are matched:
   Mirakl's token if compatible, else the same account, else any compatible one; Hyperwallet
   never changes a country or type, so US ABA → IBAN or an Italian → Spanish IBAN creates a new
   account and clears the old token), then update in place or create + S07 of the new token.
4. `report`: fails, and e-mails `alerts.email_to`, when a shop failed.

**Outcomes**: `CREATED`, `UPDATED`, `NO_BANK_ACCOUNT`, `SKIPPED_*`, `FAILED`, `RETRY_PENDING`,
`RETRIES_EXHAUSTED` (as in the seller extract). The task log keeps the incumbent's `[BATCHJOB]`
/ `[BATCHJOBITEM]` lines; account numbers are masked (`****6726`) everywhere.

**Settings**: section `hyperwallet` (programs, retries, window) and section
`hyperwallet_bank_account_extract`: `automatic_currency_selection` (true),
`allow_wire_accounts` (false), `prioritize_bank_account_type` (true),
`override_currency_priority` (false), `currency_priority` (`USD,GBP,EUR`; per country
`EUR,USD;US:USD,CAD`).

**Params**: `since`, `shop_ids`, `dry_run` (as in the seller extract).

**Schedule**: Variable `hyperwallet_bank_account_extract__schedule`, default `30 0 * * *`.
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
    description="Mirakl bank details → Hyperwallet bank accounts",
    doc_md=DOC_MD,
    schedule=schedule_from_variable(DAG_ID, default=DEFAULT_SCHEDULE),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # Two overlapping runs could both create the account of a new shop.
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
        task_id="check_hyperwallet", workflow=BANK_ACCOUNT_EXTRACT, step="check", retries=0
    )
    extract_bank_accounts = MiraklWorkflowOperator(
        task_id="extract_bank_accounts", workflow=BANK_ACCOUNT_EXTRACT, step="sync"
    )
    report = BatchReportOperator(
        task_id="report", summary_task_ids=["extract_bank_accounts"], retries=0
    )

    wait_for_mirakl >> check_hyperwallet >> extract_bank_accounts >> report
