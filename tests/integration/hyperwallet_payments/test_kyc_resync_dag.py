"""Issue 16 point 5 through the DAG (``dag.test``) against the simulator: the KYC resync.

A verification notification that never reached us leaves Mirakl's KYC status stale; the
``hyperwallet_kyc_resync`` DAG re-reads the users from Hyperwallet (one paged ``GET /users``
by program and creation date, as the PayPal connector's ``KYCUserStatusResyncBatchJob``) and writes
what the KYC
notification handler would have, only where Mirakl differs.
"""

from __future__ import annotations

import pytest

from . import test_hyperwallet_payment_dags as _dags
from .test_credit_notes_dags import run_without_task_retries

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

RESYNC = ("hyperwallet_kyc_resync.py", "hyperwallet_kyc_resync")

dag_env = _dags.dag_env


def run_dag(file: str, dag_id: str, **conf):
    """The DAG run with Airflow's task retries off, and its report XCom."""
    run = run_without_task_retries(file, dag_id, **conf)
    return run, run.get_task_instance("report").xcom_pull(task_ids="report")


def _kyc(sandbox, shop_id: int = 2001) -> dict:
    shop = next(s for s in sandbox.state()["mirakl"]["shops"] if s["shop_id"] == shop_id)
    return shop.get("kyc") or {}


def test_a_lost_kyc_notification_is_corrected_by_the_resync(hw, sandbox, hw_admin, dag_env):
    pending = {"status": "PENDING_APPROVAL", "reason": ""}
    sandbox.reset(hw.scenario(shops=[hw.shop(kyc=pending)]))
    # Hyperwallet verifies the seller; its notification is lost (never stored in the inbox).
    hw_admin.set_user_status("usr-seller", verificationStatus="VERIFIED")
    hw_admin.clear_calls()

    run, report = run_dag(*RESYNC, dry_run=True)

    assert run.state == "success"
    assert report["steps"]["resync_kyc"] == {"WOULD_UPDATE": 1, "SKIPPED": 1}
    assert sandbox.mirakl_calls("S07") == []
    assert _kyc(sandbox)["status"] == "PENDING_APPROVAL"

    run, report = run_dag(*RESYNC)

    assert run.state == "success"
    assert report["steps"]["resync_kyc"] == {"UPDATED": 1, "SKIPPED": 1}  # operator: no shop
    (s07,) = sandbox.mirakl_calls("S07")
    assert [s["shop_id"] for s in s07["body"]["shops"]] == [2001]
    assert _kyc(sandbox) == {"status": "APPROVED", "reason": ""}
    # One paged list of the program's users created in the window, not one call per seller.
    lists = hw_admin.calls(path="/rest/v4/users", method="GET")
    assert lists and all(c["query"].get("programToken") == "prg-users" for c in lists)
    assert all("createdAfter" in c["query"] for c in lists)
    assert len(lists) == 2  # the dry run's and this run's

    # Nothing left to correct: nothing written.
    run, report = run_dag(*RESYNC)
    assert report["steps"]["resync_kyc"] == {"UNCHANGED": 1, "SKIPPED": 1}
    assert len(sandbox.mirakl_calls("S07")) == 1


def test_since_narrows_the_users_read(hw, sandbox, hw_admin, dag_env):
    sandbox.reset(hw.scenario(shops=[hw.shop(kyc={"status": "PENDING_APPROVAL", "reason": ""})]))
    hw_admin.set_user_status("usr-seller", verificationStatus="VERIFIED")

    run, report = run_dag(*RESYNC, since="2999-01-01T00:00:00+00:00")

    assert run.state == "success"
    assert report["steps"].get("resync_kyc", {}) == {}
    assert _kyc(sandbox)["status"] == "PENDING_APPROVAL"
    (call,) = hw_admin.calls(path="/rest/v4/users", method="GET")
    assert call["query"]["createdAfter"].startswith("2999-01-01")
