"""Who may decide on a held item, as Airflow serves the console: the real API server app with the
repository's plugins, SimpleAuthManager and its JWTs. Reading needs "GET DAG runs"; deciding
also needs "PUT DAG runs" (Airflow's ``user`` role and above), and a cookie session must post
from the console's own origin."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mirakl_connector.ledger import Ledger, TransferRecord, TransferStatus, TransferType
from mirakl_connector.operations.approvals import decisions_of

pytestmark = pytest.mark.slow

PREFIX = "/mirakl-connector-console"
HELD = "awaiting approval: 200.00 EUR is above approval.transfer_above 100.00 EUR"
FORM = {"amount": "20000", "currency": "EUR", "destination": "acct_seller", "decision": "approve",
        "why": "checked"}  # fmt: skip
ITEM = "TRANSFER_PRODUCT_ORDER:ORD-1-A"


def _plugin_modules() -> list[Any]:
    return [
        m
        for m in list(sys.modules.values())
        if getattr(m, "__file__", None) and m.__file__.endswith("mirakl_connector_console.py")
    ]


@pytest.fixture
def api(airflow_db, tmp_path) -> Iterator[tuple[TestClient, Any, Ledger, int]]:
    url = Ledger.default_sqlite_url(tmp_path)
    ledger = Ledger(url)
    (held,) = ledger.save_transfers([
        TransferRecord(TransferType.PRODUCT_ORDER, "ORD-1-A", TransferStatus.ON_HOLD, HELD, 1,
                       "acct_seller", amount=20_000, currency="EUR"),
    ])  # fmt: skip
    conn = json.dumps({"conn_type": "sqlite", "extra": {"sqlalchemy_url": url}})
    os.environ["AIRFLOW_CONN_MIRAKL_CONNECTOR_DB"] = conn
    from airflow.api_fastapi.app import create_app, get_auth_manager

    for module in _plugin_modules():
        module.reader.dispose()  # a reader opened by another test reads another ledger
    app = create_app(apps="core")
    try:
        with TestClient(app) as client:
            yield client, get_auth_manager(), ledger, held.id
    finally:
        for module in _plugin_modules():
            module.reader.dispose()
        os.environ.pop("AIRFLOW_CONN_MIRAKL_CONNECTOR_DB", None)
        ledger.dispose()


def _token(auth_manager: Any, role: str | None) -> str:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return auth_manager.generate_jwt(SimpleAuthManagerUser(username=f"u-{role}", role=role))


def _post(client: TestClient, row_id: int, **headers: str) -> Any:
    return client.post(
        f"{PREFIX}/approvals/transfer/{row_id}", data=FORM, headers=headers, follow_redirects=False
    )


def test_anonymous_gets_401_and_nothing_is_recorded(api):
    client, _, ledger, row_id = api
    client.cookies.clear()
    r = _post(client, row_id, Origin="http://testserver")
    assert r.status_code == 401
    assert decisions_of(ledger.engine, "transfer", ITEM) == []


@pytest.mark.parametrize("role", ["viewer", None])
def test_a_read_only_user_gets_403(api, role):
    client, auth_manager, ledger, row_id = api
    client.cookies.clear()
    r = _post(client, row_id, Authorization=f"Bearer {_token(auth_manager, role)}")
    assert r.status_code == 403
    assert decisions_of(ledger.engine, "transfer", ITEM) == []
    if role == "viewer":  # who may read still sees the list
        headers = {"Authorization": f"Bearer {_token(auth_manager, role)}"}
        listed = client.get(f"{PREFIX}/api/approvals", headers=headers).json()
        assert [i["item"] for i in listed["items"]] == [ITEM]


def test_a_user_who_may_change_dag_runs_decides_under_their_name(api):
    client, auth_manager, ledger, row_id = api
    client.cookies.clear()
    headers = {"Authorization": f"Bearer {_token(auth_manager, 'user')}"}
    r = client.post(
        f"{PREFIX}/approvals/transfer/{row_id}",
        json={**FORM, "amount": 20_000},
        headers=headers,
    )
    assert r.status_code == 201
    (recorded,) = decisions_of(ledger.engine, "transfer", ITEM)
    assert (recorded.decided_by, recorded.decision.value) == ("u-user", "APPROVED")
    history = client.get(f"{PREFIX}/api/items/transfer/{row_id}", headers=headers).json()
    assert history["history"][-1]["reason"].startswith("approved by u-user: checked")


def test_the_ui_cookie_works_from_the_console_page_not_from_another_site(api):
    client, auth_manager, ledger, row_id = api
    client.cookies.set("_token", _token(auth_manager, "op"))
    try:
        forged = _post(client, row_id, Origin="https://evil.example")
        assert forged.status_code == 403
        bare = _post(client, row_id)
        assert bare.status_code == 403
        assert decisions_of(ledger.engine, "transfer", ITEM) == []
        ok = _post(client, row_id, Origin="http://testserver")
        assert ok.status_code == 303
        assert ok.headers["location"] == f"{PREFIX}/items/transfer/{row_id}"
        assert [d.decided_by for d in decisions_of(ledger.engine, "transfer", ITEM)] == ["u-op"]
    finally:
        client.cookies.clear()
