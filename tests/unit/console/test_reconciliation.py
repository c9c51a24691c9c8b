"""The console's Reconciliation section (no Airflow): page, JSON and CSV, per run and per day.

Authentication is a stand-in dependency here, as in ``test_app.py``; Airflow's own is tested
with the plugin (``test_plugin_auth.py``, whose routes include these).
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

from .reconciliation_scenario import RUN, TODAY, YESTERDAY, fill_reconciliation

ROUTES = ("/reconciliation", "/api/reconciliation", "/export/reconciliation.csv")


def _stand_in_auth(request: Request) -> None:
    if request.headers.get("x-test-user") != "reader":
        raise HTTPException(401, "Not authenticated")


@pytest.fixture
def client(tmp_path) -> Iterator[TestClient]:
    url = Ledger.default_sqlite_url(tmp_path)
    with Ledger(url) as ledger:
        fill_reconciliation(ledger)
    engine = create_ledger_engine(url)
    app = create_app(ConsoleAppConfig(queries=lambda: ConsoleQueries(engine), auth=_stand_in_auth))
    with TestClient(app, headers={"x-test-user": "reader"}) as c:
        yield c
    engine.dispose()


def test_the_page_of_a_run_says_it_does_not_reconcile_and_lists_the_mismatch(client):
    r = client.get("/reconciliation", params={"run": RUN})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert f"Reconciliation of run {RUN}" in page
    assert "Does not reconcile: 1 mismatch(es) in 1 of 1 reconciliation(s)." in page
    assert "AMOUNT_MISMATCH" in page and "ORD-2-A" in page
    assert "10.00 EUR" in page and "9.99 EUR" in page  # ledger and Stripe, in EUR
    assert "ORD-1-A" not in page  # matched items only with kind=all
    assert "https://dashboard.stripe.com/transfers/tr_2" in page
    assert 'href="/items/transfer/2"' in page  # the ledger row's history
    assert "<script" not in page and "&lt;" not in page.split("<body>")[0]
    every = client.get("/reconciliation", params={"run": RUN, "kind": "all"}).text
    assert "ORD-1-A" in every and "12.34 EUR" in every


def test_the_page_of_a_day_and_the_overview(client):
    page = client.get("/reconciliation", params={"day": YESTERDAY.isoformat()}).text
    assert "Reconciles: 1 reconciliation(s), every item matched." in page
    assert "No item matches." in page  # no mismatch that day
    assert (
        "1500 JPY"
        in client.get(
            "/reconciliation", params={"day": YESTERDAY.isoformat(), "kind": "MATCHED"}
        ).text
    )
    today = client.get("/reconciliation").text  # no filter: today
    assert f"Reconciliation of {TODAY.isoformat()}" in today and "ORD-2-A" in today
    assert f'?day={YESTERDAY.isoformat()}"' in today  # the last days, each a link
    payments = client.get("/", params={"run": RUN}).text
    assert f'href="/reconciliation?run={RUN}"' in payments  # linked from the run's page


def test_json_per_run_and_per_day(client):
    body = client.get("/api/reconciliation", params={"run": RUN, "kind": "all"}).json()
    assert body["reconciles"] is False
    [run] = body["reconciliations"]
    assert (run["flow"], run["scope"], run["matched"], run["mismatched"]) == (
        "payment_split", "run", 1, 1,
    )  # fmt: skip
    assert run["headline"].startswith("Does not reconcile")
    assert body["total"] == 2 and body["items"][0]["kind"] == "AMOUNT_MISMATCH"  # first
    mismatch = body["items"][0]
    assert (mismatch["ledger_amount_minor"], mismatch["provider_amount_minor"]) == (1000, 999)
    assert (mismatch["ledger_amount"], mismatch["provider_amount"]) == ("10.00", "9.99")
    day = client.get("/api/reconciliation", params={"day": YESTERDAY.isoformat()}).json()
    assert day["reconciles"] is True and day["items"] == []
    assert [r["scope"] for r in day["reconciliations"]] == ["day"]
    flows = client.get(
        "/api/reconciliation", params={"day": TODAY.isoformat(), "flow": "payment_refund"}
    ).json()
    assert flows["reconciliations"] == [] and flows["total"] == 0


def test_csv_export_of_a_run_every_item_with_formulas_neutralised(client):
    r = client.get("/export/reconciliation.csv", params={"run": RUN})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    assert f"reconciliation_run_{RUN}.csv" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert sorted((row["kind"], row["mirakl_id"]) for row in rows) == [
        ("AMOUNT_MISMATCH", "ORD-2-A"),
        ("MATCHED", "ORD-1-A"),
    ]
    mismatch = next(row for row in rows if row["kind"] == "AMOUNT_MISMATCH")
    assert (mismatch["ledger_amount_minor"], mismatch["ledger_amount"]) == ("1000", "10.00")
    assert (mismatch["provider_amount_raw"], mismatch["provider_amount"]) == ("999", "9.99")
    assert mismatch["reason"].startswith("'=HYPERLINK")  # a spreadsheet must not run it
    assert (mismatch["run_id"], mismatch["scope"], mismatch["day"]) == (
        RUN, "run", TODAY.isoformat(),
    )  # fmt: skip
    only = client.get("/export/reconciliation.csv", params={"run": RUN, "kind": "mismatches"})
    assert len(list(csv.DictReader(io.StringIO(only.text)))) == 1


def test_bad_filters_are_refused_with_the_reason(client):
    assert client.get("/reconciliation", params={"day": "yesterday"}).status_code == 400
    assert client.get("/api/reconciliation", params={"flow": "payouts"}).status_code == 400
    assert client.get("/api/reconciliation", params={"kind": "ODD"}).status_code == 400
    assert client.get("/api/reconciliation", params={"scope": "week"}).status_code == 400
    assert client.get("/api/reconciliation", params={"size": 100_000}).status_code == 422


def test_no_data_without_credentials(client):
    anonymous = TestClient(client.app)
    for path in ROUTES:
        r = anonymous.get(path, params={"run": RUN})
        assert r.status_code == 401, path
        assert "EUR" not in r.text and "ORD-" not in r.text and RUN not in r.text
