"""Hyperwallet notifications: payment statuses and KYC statuses, from the ledger inbox."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Asset, AssetWatcher, Param

from mirakl_connector.airflow.notifiers import ConnectorFailureNotifier
from mirakl_connector.airflow.operators.report import BatchReportOperator
from mirakl_connector.airflow.operators.workflow import MiraklWorkflowOperator
from mirakl_connector.airflow.params import ids_param
from mirakl_connector.airflow.schedules import schedule_from_variable
from mirakl_connector.airflow.triggers.inbox import InboxTrigger
from mirakl_connector.hyperwallet.specs import KYC_STATUS, PAYMENT_STATUS

PAYMENT_DAG_ID = "hyperwallet_payment_status"
KYC_DAG_ID = "hyperwallet_kyc_status"

_WHY = """
**Schedule**: the API server plugin (`POST /webhooks/hyperwallet/<secret>`, connection
`hyperwallet_webhook`) stores each notification once in the ledger inbox (a duplicate delivery is
not stored again). An asset watcher (`InboxTrigger`, in the triggerer) starts this DAG a few
seconds after a new notification, and again every minute while retries are due: the incumbent
polled its queue every 30 seconds, which Airflow should not. A cron in the Variable
`{dag_id}__schedule` replaces the watcher.

**Retries**: a failed notification is retried after 1, 2, 4 and 8 minutes
(`hyperwallet_notifications.first_retry_minutes`, `.max_attempts` 5); then it stays FAILED and
one e-mail to `alerts.email_to` names it. Inbox statuses: RECEIVED, PROCESSED, IGNORED, FAILED.

**Params**: `event_ids` (`wbh-` tokens to process again, e.g. given-up ones).
"""

PAYMENT_DOC_MD = """
### Hyperwallet payment status (payment notifications → Mirakl invoice confirmation)

Applies the `PAYMENTS.UPDATED.STATUS.*` notifications (`pmt-` objects), oldest first:

* **COMPLETED**: the invoice is confirmed paid in Mirakl. IV07 (`PUT /api/invoices`) with
  `invoice_id` = `clientPaymentId`, `amount`, `currency_iso_code` = `currency`,
  `transaction_date` = the payment's `createdOn`, `confirm_all_linked_manual_documents`
  (`hyperwallet_payments.confirm_linked_manual_documents`, true); SBC07 `PAID` for SBC11 billing
  cycles. Never for the operator commission (`-operatorFee`); once per payment (`confirmed_at`).
* **FAILED, RECALLED, RETURNED, EXPIRED, UNCLAIMED, CANCELLED**: an e-mail names the payment, the
  invoice and the shop; the ledger row goes to `HW_PAYMENT_FAILED` (re-paid by a run of
  `hyperwallet_invoice_payments` naming the invoice).
* **in progress** (`CREATED`, `SCHEDULED`, `PENDING_*`, ...): recorded, nothing else.
* `trm-` and unrecognised objects: IGNORED (nothing to do).

**Order**: each payment's ledger row keeps the `createdOn` of the newest notification applied;
an older one arriving late is IGNORED (a late IN_PROGRESS never hides a COMPLETED).

**Trust**: nothing is applied as posted. Each notification is re-read from Hyperwallet by its
token (`GET /webhook-notifications/{token}`) and the payment with `GET /payments/{token}`; its
current status is applied, and only to a payment of the ledger (same `clientPaymentId`, amount,
currency, destination). A notification Hyperwallet does not know, a posted body that differs
from Hyperwallet's copy, or a payment we did not make is **REJECTED**: nothing written to
Mirakl, no ledger row marked paid, the run fails naming it and an e-mail says so.

**Reads/writes**: the ledger inbox and `hyperwallet_payments`; Hyperwallet (GET notification and
payment); Mirakl IV07/SBC07 (and S20 for the shop name of a failure e-mail).
""" + _WHY.format(dag_id=PAYMENT_DAG_ID)

KYC_DOC_MD = """
### Hyperwallet KYC status (user and stakeholder notifications → Mirakl shop KYC)

Applies the `usr-` and `stk-` notifications (`USERS.UPDATED.VERIFICATION_STATUS.*`,
`USERS.BUSINESS_STAKEHOLDERS.*`), oldest first, to the shop whose id is the user's `clientUserId`
with one S07:

* **KYC status**: individual UNDER_REVIEW → PENDING_APPROVAL, VERIFIED / NOT_REQUIRED → APPROVED,
  REQUIRED → REFUSED (others leave Mirakl unchanged); business: any of verification, stakeholder
  verification, letter of authorisation REQUIRED → REFUSED, else any UNDER_REVIEW →
  PENDING_APPROVAL, else APPROVED. The reason (HTML) lists what the seller must provide.
* **Document flags**: `hw-kyc-req-proof-identity-business` (verification REQUIRED),
  `hw-stakeholder-req-proof-identity-<n>` (stakeholders REQUIRED, matched by
  `hw-stakeholder-token-<n>`), `hw-kyc-req-proof-authorization` (letter of authorisation, on a
  director business contact's creation or with `hyperwallet_notifications.kyc_automated`).

**Order**: a notification older than one already applied to the same user or stakeholder is
IGNORED (stale letter-of-authorisation statuses, incumbent issue #134).

**Trust**: each notification is re-read from Hyperwallet by its token before any S07; one
Hyperwallet does not know (or posted with other content) is REJECTED and reported.

**Reads/writes**: the ledger inbox; Hyperwallet notifications, users and stakeholders (GET);
Mirakl S20/S07.
""" + _WHY.format(dag_id=KYC_DAG_ID)

default_args = {
    "owner": "payments-data-eng",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "on_failure_callback": ConnectorFailureNotifier(),
}

hyperwallet_inbox = Asset(
    "mirakl_connector_hyperwallet_inbox",
    watchers=[
        AssetWatcher(
            name="hyperwallet_inbox_watcher",
            trigger=InboxTrigger(
                ledger_conn_id="mirakl_connector_db", source="hyperwallet", rearm_after=60.0
            ),
        )
    ],
)


def _event_ids_param() -> Param:
    return ids_param(
        "Only these notifications",
        "wbh- tokens to process again (given-up ones too). Empty: the due ones.",
    )


for _dag_id, _workflow, _doc, _tags in (
    (PAYMENT_DAG_ID, PAYMENT_STATUS, PAYMENT_DOC_MD, "payouts"),
    (KYC_DAG_ID, KYC_STATUS, KYC_DOC_MD, "kyc"),
):
    with DAG(
        dag_id=_dag_id,
        description=_doc.strip().splitlines()[0].removeprefix("### "),
        doc_md=_doc,
        schedule=schedule_from_variable(_dag_id, default=None) or [hyperwallet_inbox],
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        dagrun_timeout=timedelta(minutes=30),
        params={"event_ids": _event_ids_param()},
        default_args=default_args,
        tags=["mirakl", "hyperwallet", "webhooks", _tags],
    ) as _dag:
        _process = MiraklWorkflowOperator(
            task_id="process_notifications", workflow=_workflow, step="process"
        )
        _report = BatchReportOperator(
            task_id="report", summary_task_ids=["process_notifications"], retries=0
        )
        _process >> _report
    globals()[f"{_dag_id}_dag"] = _dag
