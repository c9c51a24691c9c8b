"""Run summaries through a real DAG run (``dag.test``): ids per outcome, the dry-run banner,
where Airflow 3.3 shows them, and the extra link to the console filtered on the run."""

from __future__ import annotations

import pytest

from mirakl_connector.airflow.console_links import console_run_url
from mirakl_connector.ledger.records import AccountMapping

from .test_settlement_alert_notification_dags import env, run_dag  # noqa: F401 - fixture

pytestmark = [pytest.mark.airflow, pytest.mark.slow]


def _invoices(n: int) -> list[dict]:
    return [
        {"invoice_id": 100 + i, "shop_id": 1, "currency_iso_code": "EUR",
         "date_created": "2026-11-01T00:00:00Z",
         "summary": {"amount_transferred": 10.00, "total_subscription_incl_tax": 0,
                     "total_other_credits_incl_tax": 0, "total_other_invoices_incl_tax": 0}}
        for i in range(n)
    ]  # fmt: skip


def test_a_dry_run_summary_says_so_lists_ids_and_links_the_console(env, sandbox):  # noqa: F811
    sandbox.reset({
        "mirakl": {"api_key": "sandbox-mirakl-key", "invoices": _invoices(23)},
        "stripe": {"api_key": "sk_test_sandbox", "platform_account": {"id": "acct_platform"},
                   "accounts": [{"id": "acct_s1", "payouts_enabled": True}]},
    })  # fmt: skip
    env.upsert_account_mapping(AccountMapping(1, "acct_s1", True, True, kyc_status="APPROVED"))

    run = run_dag("stripe_seller_settlement", dry_run=True)

    assert run.state == "success"
    assert sandbox.payouts() == [] and sandbox.transfers() == []  # nothing moved
    report_ti = run.get_task_instance("report")
    report = report_ti.xcom_pull(task_ids="report")
    url = console_run_url(run.run_id)
    assert report["dry_run"] is True and report["console_url"] == url
    md = report["summary_md"]
    assert md.splitlines()[2].startswith("**DRY RUN — nothing moved**")
    line = next(x for x in md.splitlines() if x.startswith("- **PAYOUT_") and ": 23" in x)
    assert "`100/PAYOUT`" in line and "`119/PAYOUT`" in line and "120/PAYOUT" not in line
    assert f"and 3 more ([all]({url}))" in line

    # Where Airflow 3.3 shows it: the report task's rendered "run_summary" field (Markdown
    # renderer), re-sent after execute; the log and the XCom above.
    from airflow.models.renderedtifields import RenderedTaskInstanceFields

    assert RenderedTaskInstanceFields.get_templated_fields(report_ti) == {"run_summary": md}

    # The extra link: computed by the worker when the task ends, kept as an XCom the API
    # server reads back (Task SDK); present on the money-moving step and on the report.
    for task_id, map_index in (("plan_settlement", -1), ("create_payouts", 0), ("report", -1)):
        ti = run.get_task_instance(task_id, map_index=map_index)
        link = ti.xcom_pull(task_ids=task_id, key="_link_ConsoleRunLink", map_indexes=map_index)
        assert link == url, task_id
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:  # the run's note stays the user's: no task writes it
        assert session.get(DagRun, run.id).note is None
    assert "/mirakl-connector-console/?run=" in url


def test_a_task_cannot_set_its_dag_runs_note_in_airflow_3_3():
    """Why the summary is not the DAG run's note: a task reaches Airflow only through the
    execution API (Task SDK), whose DAG-run routes read, trigger (a *new* run may carry a note),
    clear and count runs; none writes the note of an existing run. The public REST API's
    ``PATCH /api/v2/dags/{dag_id}/dagRuns/{run_id}`` can, but needs a user's credentials, which
    a task does not have and which we will not store for it."""
    from airflow.api_fastapi.execution_api.routes.dag_runs import router
    from airflow.sdk.api.client import DagRunOperations

    assert not [m for m in vars(DagRunOperations) if "note" in m.lower()]
    writes = {
        (method, route.path)
        for route in router.routes
        for method in getattr(route, "methods", ())
        if method in {"POST", "PUT", "PATCH"}
    }
    assert writes == {("POST", "/{dag_id}/{run_id}"), ("POST", "/{dag_id}/{run_id}/clear")}
