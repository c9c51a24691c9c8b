"""The console app (no Airflow): page, JSON API and CSV exports against a real ledger.

Authentication here is a stand-in dependency; the Airflow one is tested with the plugin
(``test_plugin_auth.py``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from fastapi import HTTPException, Request
from fastapi.testclient import TestClient

from mirakl_connector.console.app import ConsoleAppConfig, create_app
from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.engine import create_ledger_engine
from mirakl_connector.ledger.queries import ConsoleQueries

from .scenario import OLD_DAY, TODAY, YESTERDAY, fill, move_events


def _stand_in_auth(request: Request) -> None:
    if request.headers.get("x-test-user") != "reader":
        raise HTTPException(401, "Not authenticated")


@pytest.fixture
def client(tmp_path) -> Iterator[tuple[TestClient, dict[str, int]]]:
    url = Ledger.default_sqlite_url(tmp_path)
    with Ledger(url) as ledger:
        ids = fill(ledger)
    engine = create_ledger_engine(url)
    move_events(engine, "transfer", ids["ORD-2-A"], OLD_DAY)
    move_events(engine, "transfer", ids["R-1"], YESTERDAY)
    app = create_app(ConsoleAppConfig(queries=lambda: ConsoleQueries(engine), auth=_stand_in_auth))
    with TestClient(app, headers={"x-test-user": "reader"}) as c:
        yield c, ids
    engine.dispose()


def test_page_shows_figures_lists_and_links(client):
    c, ids = client
    r = c.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert "88.00 EUR" in page  # moved in the last 30 days: 10 + 3 + 5 + 50 + 20
    assert "15 JPY" not in page  # 40 days ago
    assert "<svg" in page and "http://" not in page.replace("http://www.w3", "")
    assert "KYC pending" in page and "payouts disabled" in page  # waiting, by reason
    assert f"transfer:{ids['ORD-3-A']}" in page  # the default list: what waits
    assert "https://dashboard.stripe.com/connect/accounts/acct_three" in page
    assert "<script" not in page


def test_page_lists_and_range(client):
    c, ids = client
    failed = c.get("/", params={"category": "failed"}).text
    assert "insufficient funds" in failed and "negative operator commission" in failed
    doubt = c.get("/", params={"category": "in_doubt"}).text
    assert f"transfer:{ids['ORD-6-A']}" in doubt and f"hyperwallet_payment:{ids['9104']}" in doubt
    old = c.get("/", params={"start": OLD_DAY.isoformat(), "end": OLD_DAY.isoformat()}).text
    assert "1500 JPY" in old and "88.00 EUR" not in old
    reversed_range = {"start": TODAY.isoformat(), "end": OLD_DAY.isoformat()}
    assert c.get("/", params=reversed_range).status_code == 400
    assert c.get("/", params={"category": "everything"}).status_code == 400


def test_item_page_and_api_show_history_and_dashboard_links(client):
    c, ids = client
    page = c.get(f"/items/payout/{ids['9002']}").text
    assert "https://dashboard.stripe.com/payouts/po_1" in page
    assert "PAYOUT_PENDING" in page and "PAYOUT_CREATED" in page and "run_settle" in page
    body = c.get(f"/api/items/transfer/{ids['ORD-1-A']}").json()
    assert body["item"]["amount_minor"] == 1000 and body["item"]["amount"] == "10.00"
    assert body["item"]["links"]["object"] == "https://dashboard.stripe.com/transfers/tr_1"
    assert [h["new_status"] for h in body["history"]] == ["TRANSFER_PENDING", "TRANSFER_CREATED"]
    assert c.get("/api/items/transfer/999999").status_code == 404


def test_api_moved_and_items(client):
    c, ids = client
    moved = c.get("/api/moved").json()["rows"]
    assert {(r["workflow"], r["amount_minor"], r["amount"]) for r in moved} == {
        ("reversal", 300, "3.00"),
        ("hyperwallet payment", 2000, "20.00"),
        ("payout", 5000, "50.00"),
        ("refund", 500, "5.00"),
        ("split", 1000, "10.00"),
    }
    items = c.get("/api/items", params={"category": "waiting", "size": 2}).json()
    assert items["total"] == 3 and items["pages"] == 2 and len(items["items"]) == 2
    assert c.get("/api/items", params={"size": 100_000}).status_code == 422
    summary = c.get("/api/summary/waiting").json()["groups"]
    assert summary[0]["reason"] == "KYC pending" and summary[0]["count"] == 2


def test_csv_exports(client):
    c, ids = client
    r = c.get("/export/moved.csv", params={"start": OLD_DAY.isoformat()})
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert {(row["currency"], row["workflow"], row["amount_minor"]) for row in rows} >= {
        ("JPY", "split", "1500"),
        ("EUR", "payout", "5000"),
    }
    items = list(csv.DictReader(io.StringIO(c.get("/export/items.csv?category=failed").text)))
    assert sorted(i["mirakl_id"] for i in items) == ["9103-operatorFee", "ORD-5-A"]
    assert all("idempotency" not in k for k in items[0])


def test_every_route_refuses_without_credentials(client):
    c, ids = client
    anonymous = TestClient(c.app)
    for path in ("/", "/api/moved", "/api/items", "/api/summary/waiting",
                 f"/api/items/transfer/{ids['ORD-1-A']}", f"/items/transfer/{ids['ORD-1-A']}",
                 "/export/moved.csv", "/export/items.csv"):  # fmt: skip
        r = anonymous.get(path)
        assert r.status_code == 401, path
        assert "EUR" not in r.text and "ORD-" not in r.text


def test_page_and_exports_filtered_on_one_run(client):
    """The link of a run summary / extra link: ?run=<run id> lists what that run touched."""
    c, ids = client
    page = c.get("/", params={"run": "run_hw"}).text
    assert "Every item of run run_hw" in page
    for key in (f"hyperwallet_payment:{ids['9101']}", f"hyperwallet_payment:{ids['9104']}"):
        assert key in page
    assert f"transfer:{ids['ORD-1-A']}" not in page
    listed = c.get("/api/items", params={"run": "run_split"}).json()
    assert sorted(i["mirakl_id"] for i in listed["items"]) == ["ORD-1-A", "ORD-2-A", "R-1"]
    rows = list(
        csv.DictReader(
            io.StringIO(
                c.get("/export/items.csv", params={"run": "run_refund", "category": "all"}).text
            )
        )
    )
    assert [r["mirakl_id"] for r in rows] == ["RF-1"]  # fmt: skip
