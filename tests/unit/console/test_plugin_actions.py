"""The console's actions as Airflow serves them: the real API server app with the repository's
plugins, SimpleAuthManager's users and JWTs, and a real DAG run created by a retry.

Who may act: nobody without credentials (401), not a viewer (403: reading DAG runs is not
changing them), a ``user`` (Airflow's role that may change and trigger DAG runs) with a Bearer
token, or with the UI's session cookie *and* a same-site ``Origin``; a cookie request from
another site (or with no ``Origin``/``Referer``) is refused before anything is done.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mirakl_connector.ledger import Ledger, TransferType

from .scenario import fill

pytestmark = pytest.mark.slow

PREFIX = "/mirakl-connector-console"
DAGS = Path(__file__).resolve().parents[3] / "dags"
SAME_SITE = {"Origin": "http://testserver"}


def _plugin_modules() -> list[Any]:
    return [
        m
        for m in list(sys.modules.values())
        if getattr(m, "__file__", None) and m.__file__.endswith("mirakl_connector_console.py")
    ]


def _sync_dag(dag_file: str) -> None:
    """Put one DAG file's DAGs in the metadata DB, as the DAG processor would."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db

    manager = DagBundlesManager()
    manager.sync_bundles_to_db()
    bundle = next(b for b in manager.get_all_dag_bundles() if Path(b.path) == DAGS)
    bag = BundleDagBag(
        dag_folder=str(DAGS / dag_file), bundle_path=bundle.path, bundle_name=bundle.name
    )
    assert bag.import_errors == {}
    sync_bag_to_db(bag, bundle.name, bundle.version)


@pytest.fixture(scope="module")
def api(airflow_db, tmp_path_factory) -> Iterator[tuple[TestClient, Any, Ledger, dict]]:
    url = Ledger.default_sqlite_url(tmp_path_factory.mktemp("console-actions-ledger"))
    ledger = Ledger(url)
    ids = fill(ledger)
    os.environ["AIRFLOW_CONN_MIRAKL_CONNECTOR_DB"] = json.dumps(
        {"conn_type": "sqlite", "extra": {"sqlalchemy_url": url}}
    )
    from airflow.api_fastapi.app import create_app, get_auth_manager

    for module in _plugin_modules():
        module.reader.dispose()
    _sync_dag("stripe_payment_split.py")
    app = create_app(apps="core")
    try:
        with TestClient(app, follow_redirects=False) as client:
            yield client, get_auth_manager(), ledger, ids
    finally:
        for module in _plugin_modules():
            module.reader.dispose()
        os.environ.pop("AIRFLOW_CONN_MIRAKL_CONNECTOR_DB", None)
        ledger.dispose()


def _token(auth_manager: Any, role: str | None) -> str:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return auth_manager.generate_jwt(SimpleAuthManagerUser(username=f"u-{role}", role=role))


def _reason(ledger: Ledger, mirakl_id: str) -> str | None:
    return ledger.get_transfer(TransferType.PRODUCT_ORDER, mirakl_id).status_reason


def test_anonymous_viewer_and_roleless_users_cannot_act(api):
    client, auth_manager, ledger, ids = api
    client.cookies.clear()
    url = f"{PREFIX}/api/items/transfer/{ids['ORD-4-A']}/hold"
    assert client.post(url, json={"why": "x"}, headers=SAME_SITE).status_code == 401
    for role in ("viewer", None):
        bearer = {"Authorization": f"Bearer {_token(auth_manager, role)}"}
        r = client.post(url, json={"why": "x"}, headers=bearer)
        assert r.status_code == 403, role
        form = client.post(f"{PREFIX}/mappings", data={"shop_id": "5", "why": "x",
                                                       "stripe_account_id": "acct_x"},
                           headers=bearer)  # fmt: skip
        assert form.status_code == 403, role
    client.cookies.set("_token", _token(auth_manager, "viewer"))
    try:
        r = client.post(f"{PREFIX}/items/transfer/{ids['ORD-4-A']}/hold", data={"why": "x"},
                        headers=SAME_SITE)  # fmt: skip
        assert r.status_code == 403
        assert client.get(f"{PREFIX}/items/transfer/{ids['ORD-4-A']}").status_code == 200
    finally:
        client.cookies.clear()
    assert _reason(ledger, "ORD-4-A") == "KYC pending"


def test_a_session_cookie_acts_only_from_a_page_of_the_site(api):
    client, auth_manager, ledger, ids = api
    client.cookies.set("_token", _token(auth_manager, "user"))
    url = f"{PREFIX}/items/transfer/{ids['ORD-4-A']}/hold"
    try:
        for headers in ({}, {"Origin": "https://attacker.example"}):
            r = client.post(url, data={"why": "forged"}, headers=headers)
            assert r.status_code == 403 and "cross-site request refused" in r.text
        assert _reason(ledger, "ORD-4-A") == "KYC pending"

        r = client.post(url, data={"why": "seller under review"}, headers=SAME_SITE)
        assert r.status_code == 303
        assert r.headers["location"].startswith(f"{PREFIX}/items/transfer/{ids['ORD-4-A']}?done=")
        page = client.get(r.headers["location"].split("#")[0]).text
        assert "held by u-user: seller under review" in page and "Done (hold by u-user)" in page
    finally:
        client.cookies.clear()
    assert _reason(ledger, "ORD-4-A") == "held by u-user: seller under review"


def test_a_bearer_token_acts_without_origin_and_the_audit_names_the_user(api):
    client, auth_manager, ledger, ids = api
    client.cookies.clear()
    bearer = {"Authorization": f"Bearer {_token(auth_manager, 'user')}"}
    item = ids["ORD-3-A"]
    r = client.post(f"{PREFIX}/api/items/transfer/{item}/hold", json={"why": "script"},
                    headers=bearer)  # fmt: skip
    assert r.status_code == 200
    assert r.json()["actions"][-1] | {"at": None, "id": None} == {
        "id": None, "at": None, "user": "u-user", "action": "hold", "entity": "transfer",
        "entity_id": item, "item": "ORD-3-A", "why": "script", "result": "done",
        "detail": "TRANSFER_ON_HOLD → TRANSFER_ON_HOLD (held by u-user: script)",
    }  # fmt: skip
    viewer = {"Authorization": f"Bearer {_token(auth_manager, 'viewer')}"}
    audit = client.get(f"{PREFIX}/api/actions", params={"entity": "transfer", "id": item},
                       headers=viewer).json()["actions"]  # fmt: skip
    assert [(a["user"], a["action"], a["result"]) for a in audit] == [("u-user", "hold", "done")]


def test_retry_creates_a_dag_run_as_the_user_with_the_items_ids(api):
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunTriggeredByType

    client, auth_manager, ledger, ids = api
    client.cookies.clear()
    bearer = {"Authorization": f"Bearer {_token(auth_manager, 'user')}"}
    item = ids["ORD-5-A"]  # FAILED
    r = client.post(f"{PREFIX}/api/items/transfer/{item}/retry",
                    json={"why": "Stripe account unblocked"}, headers=bearer)  # fmt: skip
    assert r.status_code == 200, r.text
    run_id = r.json()["history"][-1]["run_id"]
    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.run_id == run_id).one()
        assert run.dag_id == "stripe_payment_split"
        assert run.conf == {"order_ids": ["ORD-5-A"]}
        assert run.run_type == "manual" and run.state == "queued"
        assert run.triggering_user_name == "u-user"
        assert run.triggered_by == DagRunTriggeredByType.REST_API  # a script (Bearer)
        assert run.note == (
            "Payments console: retry of transfer ORD-5-A requested by u-user: "
            "Stripe account unblocked"
        )
    assert r.json()["action"]["detail"].startswith(f"run {run_id} of stripe_payment_split")
    listed = client.get(f"{PREFIX}/api/items", params={"run": run_id}, headers=bearer).json()
    assert [i["mirakl_id"] for i in listed["items"]] == ["ORD-5-A"]
