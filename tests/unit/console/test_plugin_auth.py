"""The console as Airflow serves it: the real API server app (``airflow.api_fastapi.app``) with
the repository's plugins, Airflow's configured auth manager (SimpleAuthManager here) and its JWTs.

Who may see what: nobody without credentials (401/403 and no ledger figure in the answer); a
user whose role may read DAG runs, with a Bearer token or the UI's ``_token`` cookie; not a user
the auth manager does not allow (403).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mirakl_connector.ledger import Ledger

from .scenario import fill

pytestmark = pytest.mark.slow

PREFIX = "/mirakl-connector-console"
#: Plugin apps that are public by design, with what protects them instead (tested elsewhere).
#: Any other plugin app must refuse every request without Airflow credentials.
PUBLIC_PLUGIN_APPS = {
    # provider webhooks (signatures, secret URL, allow-list; tests/webhooks), our public JWK
    # set, the account link refresh (a one-time token)
    "/mirakl-connector": "signed provider webhooks",
}
#: Sample values for the path parameters of the enumerated routes (anything else gets "1"):
#: the caller is refused before the value is even looked at.
PATH_SAMPLES = {"entity": "transfer", "row_id": "1", "category": "waiting"}
ROUTES = (
    "/",
    "/api/moved",
    "/api/items?category=failed",
    "/api/summary/waiting",
    "/api/items/transfer/1",
    "/items/transfer/1",
    "/export/moved.csv",
    "/export/items.csv",
)
#: What the scenario's ledger would show to a reader: none of it may leak to a refused request.
LEDGER_FIGURES = ("EUR", "ORD-", "KYC pending", "insufficient funds", "acct_", "88.00", "9001")


def _plugin_modules() -> list[Any]:
    return [
        m
        for m in list(sys.modules.values())
        if getattr(m, "__file__", None) and m.__file__.endswith("mirakl_connector_console.py")
    ]


@pytest.fixture(scope="module")
def api(airflow_db, tmp_path_factory) -> Iterator[tuple[TestClient, Any]]:
    """Airflow's API server app over in-process HTTP, its console reading a filled ledger."""
    url = Ledger.default_sqlite_url(tmp_path_factory.mktemp("console-ledger"))
    with Ledger(url) as ledger:
        fill(ledger)
    conn = json.dumps({"conn_type": "sqlite", "extra": {"sqlalchemy_url": url}})
    os.environ["AIRFLOW_CONN_MIRAKL_CONNECTOR_DB"] = conn
    from airflow.api_fastapi.app import create_app, get_auth_manager

    for module in _plugin_modules():
        module.reader.dispose()  # a reader opened by another test reads another ledger
    app = create_app(apps="core")
    try:
        with TestClient(app) as client:
            yield client, get_auth_manager()
    finally:
        for module in _plugin_modules():
            module.reader.dispose()
        os.environ.pop("AIRFLOW_CONN_MIRAKL_CONNECTOR_DB", None)


def _token(auth_manager: Any, role: str | None, **kwargs: Any) -> str:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return auth_manager.generate_jwt(
        SimpleAuthManagerUser(username=f"u-{role}", role=role), **kwargs
    )


def _assert_refused(response: Any, path: str) -> None:
    assert response.status_code in (401, 403), (path, response.status_code)
    for figure in LEDGER_FIGURES:
        assert figure not in response.text, (path, figure)


def test_the_plugin_is_mounted_with_a_payments_nav_entry(api):
    client, auth_manager = api
    token = _token(auth_manager, "viewer")
    plugins = client.get("/api/v2/plugins", headers={"Authorization": f"Bearer {token}"}).json()
    console = next(p for p in plugins["plugins"] if p["name"] == "mirakl_connector_console")
    assert console["external_views"] == [
        {
            "name": "Payments",
            "icon": None,
            "icon_dark_mode": None,
            "url_route": "payments",
            "category": None,
            "nav_top_level": False,
            "href": f"{PREFIX}/",
            "destination": "nav",
        }
    ]


@pytest.mark.parametrize("path", ROUTES)
def test_anonymous_requests_get_nothing(api, path):
    client, _ = api
    client.cookies.clear()
    _assert_refused(client.get(PREFIX + path), path)


@pytest.mark.parametrize("path", ROUTES)
def test_a_forged_or_expired_token_gets_nothing(api, path):
    client, auth_manager = api
    client.cookies.clear()
    forged = _token(auth_manager, "admin")[:-4] + "AAAA"
    r = client.get(PREFIX + path, headers={"Authorization": f"Bearer {forged}"})
    _assert_refused(r, path)
    assert r.status_code == 403
    expired = _token(
        auth_manager, "admin", expiration_time_in_seconds=-int(timedelta(hours=1).total_seconds())
    )
    r = client.get(PREFIX + path, headers={"Authorization": f"Bearer {expired}"})
    _assert_refused(r, path)
    client.cookies.set("_token", forged)
    _assert_refused(client.get(PREFIX + path), path)
    client.cookies.clear()


@pytest.mark.parametrize("path", ROUTES)
def test_a_user_the_auth_manager_does_not_allow_gets_403(api, path):
    client, auth_manager = api
    client.cookies.clear()
    no_role = _token(auth_manager, None)
    r = client.get(PREFIX + path, headers={"Authorization": f"Bearer {no_role}"})
    assert r.status_code == 403
    _assert_refused(r, path)


def _plugin_routes(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every route of every plugin app Airflow mounted, but the public ones.

    Read from the running app, not from a list: a route or a plugin app added later is checked
    without anyone having to remember this test.
    """
    from airflow import plugins_manager
    from starlette.routing import Mount, Route

    mounted = {id(d["app"]): d["url_prefix"] for d in plugins_manager.get_fastapi_plugins()[0]}
    found: list[tuple[str, str]] = []
    for mount in app.routes:
        if not isinstance(mount, Mount) or id(mount.app) not in mounted:
            continue
        prefix = mounted[id(mount.app)]
        if prefix in PUBLIC_PLUGIN_APPS:
            continue
        for route in mount.app.routes:
            # plain routes only: a websocket or a mounted sub-app needs a check of its own
            assert isinstance(route, Route), f"{prefix}: {route!r} is not checked by this test"
            path = route.path
            for name in route.param_convertors:
                value = PATH_SAMPLES.get(name, "1")
                path = re.sub(r"\{" + name + r"(:[^}]*)?\}", value, path)
            for method in sorted(route.methods or {"GET"}):
                if method != "HEAD":
                    found.append((method, prefix + path))
    return found


def test_every_route_of_every_private_plugin_app_refuses_strangers(api):
    """Without credentials 401, as a user without the permission 403, and never a ledger
    figure: for each route the apps declare now or later (actions, approvals...), any method."""
    client, auth_manager = api
    routes = _plugin_routes(client.app)
    known = {("GET", PREFIX + path.split("?")[0]) for path in ROUTES}
    assert known <= set(routes), known - set(routes)  # the enumeration sees the console
    no_role = {"Authorization": f"Bearer {_token(auth_manager, None)}"}
    client.cookies.clear()
    for method, path in routes:
        anonymous = client.request(method, path)
        _assert_refused(anonymous, f"{method} {path}")
        assert anonymous.status_code == 401, (method, path, anonymous.status_code)
        refused = client.request(method, path, headers=no_role)
        _assert_refused(refused, f"{method} {path}")
        assert refused.status_code == 403, (method, path, refused.status_code)
        # with the query string of the lists and exports too
        refused = client.request(method, path + "?category=failed&id=ORD-1-A", headers=no_role)
        assert refused.status_code == 403, (method, path, refused.status_code)


def test_a_viewer_reads_with_a_bearer_token(api):
    client, auth_manager = api
    client.cookies.clear()
    headers = {"Authorization": f"Bearer {_token(auth_manager, 'viewer')}"}
    moved = client.get(f"{PREFIX}/api/moved", headers=headers)
    assert moved.status_code == 200
    assert sum(r["amount_minor"] for r in moved.json()["rows"] if r["currency"] == "EUR") == 8800
    failed = client.get(f"{PREFIX}/api/items?category=failed", headers=headers).json()
    assert failed["total"] == 2
    csv_text = client.get(f"{PREFIX}/export/items.csv?category=waiting", headers=headers).text
    assert csv_text.count("\n") == 4  # header and the 3 waiting items


def test_a_logged_in_ui_session_reads_the_page_with_its_cookie(api):
    client, auth_manager = api
    client.cookies.set("_token", _token(auth_manager, "viewer"))
    try:
        page = client.get(f"{PREFIX}/")
        assert page.status_code == 200
        assert "KYC pending" in page.text and "88.00 EUR" in page.text
        # links inside the page keep the mount prefix
        assert f'href="{PREFIX}/items/transfer/' in page.text
    finally:
        client.cookies.clear()
