"""Cutover from the Stripe Connector for Mirakl: import what it already moved into the ledger."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param

from mirakl_connector.airflow.notifiers import ConnectorFailureNotifier
from mirakl_connector.airflow.operators.cutover import (
    StripeConnectorImportOperator,
    cutover_dry_run_param,
)
from mirakl_connector.airflow.operators.report import BatchReportOperator

DAG_ID = "connector_cutover_stripe"

DOC_MD = """
### Cutover from the Stripe Connector for Mirakl (manual)

Reads the incumbent connector's database (connection `stripe_connector_db`: PostgreSQL or MySQL,
read only) and fills the ledger with what it already did, so that the first run of every Stripe
DAG moves nothing it moved. **Dry run by default**: untick `dry_run` to write. Safe to run again:
a second run over the same data changes nothing. See the README, "Switching from the Stripe
connector", for the whole runbook (stop its crons, drain its workers, import, switch on).

**Reads**: its tables `account_mapping`, `payment_mapping`, `stripe_transfer`, `stripe_refund`,
`stripe_payout` and `config` (older installs: their older names, e.g. `mirakl_stripe_mapping`,
`failed_reason`; what is missing is named in the report's notes). **Writes** (not in a dry run):
the ledger's account and payment mappings, transfers, refunds and payouts, each marked
`imported_from = stripe-mirakl-connector` with its old id, and the checkpoints
`product_payment_split_checkpoint`, `service_payment_split_checkpoint`,
`seller_settlement_checkpoint`, `seller_onboarding_checkpoint` (only forward). Nothing is sent
to Stripe or Mirakl.

**Statuses**: kept (the ledger uses the incumbent's names). A row with a Stripe id (`tr_`,
`trr_`, `re_`, `po_`) is imported as moved. A row PENDING without one was handed to the
incumbent's worker and may have reached Stripe: it is imported **held** (ABORTED, reason "Held at
import…"), never sent from here, and reported; once the incumbent settles it, import again.

**Tasks**
1. `import_history`: the import; its XCom is the report: per table and outcome
   (`TRANSFER_IMPORTED`, `…_UPDATED`, `…_UNCHANGED`, `…_HELD`, `…_NOT_MAPPED`, `…_CONFLICT`,
   `CHECKPOINT_…`), amounts per currency, the rows it could not map with the reason.
2. `report`: fails the run (and e-mails `alerts.email_to`) when a row was held, not mapped, or
   conflicts with the ledger.

**Params**: `dry_run` (default on), `old_timezone` (zone of the incumbent's timestamps, `UTC`
unless its PHP default zone was changed), `mode`: `import` (the default), or `rollback_sql` to roll
back: the task returns (XCom key `sql`) and logs the statements, in its database's dialect, that
record in the incumbent's tables every transfer, reversal, refund and payout with a Stripe id, the
account mappings and our checkpoints, so that it pays none of it again when restarted. They are
idempotent; review them and run them there. Nothing is written by this mode.
"""

default_args = {
    "owner": "payments-data-eng",
    "retries": 1,
    "retry_delay": timedelta(minutes=2),
    "on_failure_callback": ConnectorFailureNotifier(),
}

with DAG(
    dag_id=DAG_ID,
    description="Import the Stripe Connector for Mirakl's history (mappings, transfers, refunds, "
    "payouts, checkpoints) into the ledger",
    doc_md=DOC_MD,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=2),
    params={
        "dry_run": cutover_dry_run_param(),
        "mode": Param(
            "import",
            type=["null", "string"],
            enum=[None, "import", "rollback_sql"],
            title="Mode",
            description="import: fill the ledger. rollback_sql: the SQL that tells the Stripe "
            "connector what moved since the cutover (in the XCom and the log; run it there).",
        ),
        "old_timezone": Param(
            "UTC",
            type=["null", "string"],
            title="Time zone of the old database",
            description="Zone of its TIMESTAMP columns (PHP's default zone on its servers).",
        ),
    },
    default_args=default_args,
    tags=["mirakl", "stripe", "cutover"],
) as dag:
    import_history = StripeConnectorImportOperator(task_id="import_history")
    report = BatchReportOperator(task_id="report", summary_task_ids=["import_history"], retries=0)

    import_history >> report
