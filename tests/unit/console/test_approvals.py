"""The console's approvals (no Airflow): the held items on the page with their forms, the JSON
list, and the decision POST with its checks (edit permission, same origin, bound values).

Authentication here is a stand-in (header ``x-test-user``: ``reader`` may read, ``editor`` may
also decide); Airflow's own is tested in ``test_approvals_auth.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import HTTPException, Request
from fastapi.testclient import TestClient

from mirakl_connector.console.actions import Actor
from mirakl_connector.console.app import ConsoleAppConfig, create_app
from mirakl_connector.console.approvals import ApprovalsConfig
from mirakl_connector.ledger import (
    Ledger,
    PayoutRecord,
    PayoutStatus,
    TransferRecord,
    TransferStatus,
    TransferType,
)
from mirakl_connector.ledger.engine import create_ledger_engine
from mirakl_connector.ledger.queries import ConsoleQueries
from mirakl_connector.operations.approvals import decisions_of

ORIGIN = "http://testserver"
HELD = "awaiting approval: 200.00 EUR is above approval.transfer_above 100.00 EUR"


def _read(request: Request) -> None:
    if request.headers.get("x-test-user") not in ("reader", "editor"):
        raise HTTPException(401, "Not authenticated")


def _edit(request: Request) -> None:
    if request.headers.get("x-test-user") != "editor":
        raise HTTPException(403, "Forbidden")


def _actor(request: Request) -> Actor:
    return Actor(name=request.headers.get("x-test-user", ""))


@pytest.fixture
def console(tmp_path) -> Iterator[tuple[TestClient, Ledger, dict[str, int]]]:
    url = Ledger.default_sqlite_url(tmp_path)
    ledger = Ledger(url)
    (held, kyc) = ledger.save_transfers([
        TransferRecord(TransferType.PRODUCT_ORDER, "ORD-1-A", TransferStatus.ON_HOLD, HELD, 1,
                       "acct_seller", amount=20_000, currency="EUR"),
        TransferRecord(TransferType.PRODUCT_ORDER, "ORD-2-A", TransferStatus.ON_HOLD,
                       "KYC pending", 2, "acct_two", amount=50_000, currency="EUR"),
    ])  # fmt: skip
    (payout,) = ledger.save_payouts([
        PayoutRecord("9001", PayoutStatus.ON_HOLD, "awaiting approval: first payout to acct_new",
                     mirakl_shop_id=7, stripe_account_id="acct_new", amount=12_345,
                     currency="EUR"),
    ])  # fmt: skip
    engine = create_ledger_engine(url)
    app = create_app(
        ConsoleAppConfig(
            queries=lambda: ConsoleQueries(engine),
            auth=_read,
            edit_auth=_edit,
            actor=_actor,
            approvals=ApprovalsConfig(ledger=lambda: ledger),
        )
    )
    with TestClient(app, headers={"x-test-user": "editor"}) as client:
        yield client, ledger, {"held": held.id, "kyc": kyc.id, "payout": payout.id}
    engine.dispose()
    ledger.dispose()


FORM = {"amount": "20000", "currency": "EUR", "destination": "acct_seller", "source": ""}


def test_the_page_lists_what_waits_for_a_decision_with_approve_and_reject(console):
    client, _, ids = console
    page = client.get("/").text
    assert "<h2>Awaiting approval: 2</h2>" in page
    section = page[page.index("Awaiting approval") : page.index("</table>", page.index("Awaiting"))]
    assert f'action="/approvals/transfer/{ids["held"]}"' in section
    assert f'action="/approvals/payout/{ids["payout"]}"' in section
    assert "ORD-2-A" not in section  # held for KYC: nobody can approve that away
    assert (
        "200.00 EUR" in section
        and "123.45 EUR" in section
        and "first payout to acct_new" in section
    )
    form = re.search(rf'action="/approvals/transfer/{ids["held"]}">(.*?)</form>', section).group(1)
    assert '<input type="hidden" name="amount" value="20000">' in form
    assert '<input type="hidden" name="destination" value="acct_seller">' in form
    assert 'name="why" required' in form
    assert 'value="approve">Approve</button>' in form and 'value="reject">Reject</button>' in form
    assert "<script" not in page

    listed = client.get("/api/approvals").json()
    assert listed["total"] == 2
    assert [(i["entity"], i["amount"], i["destination"]) for i in listed["items"]] == [
        ("transfer", "200.00", "acct_seller"),
        ("payout", "123.45", "acct_new"),
    ]


def test_a_form_approval_redirects_to_the_items_history_which_shows_it(console):
    client, ledger, ids = console
    r = client.post(
        f"/approvals/transfer/{ids['held']}",
        data={**FORM, "decision": "approve", "why": "seller called, big order is real"},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == f"/items/transfer/{ids['held']}"
    (recorded,) = decisions_of(ledger.engine, "transfer", "TRANSFER_PRODUCT_ORDER:ORD-1-A")
    assert (recorded.decision.value, recorded.decided_by, recorded.amount) == (
        "APPROVED",
        "editor",
        20_000,
    )
    history = client.get(r.headers["location"]).text
    assert "approved by editor: seller called, big order is real (200.00 EUR to acct_seller)" in (
        history
    )
    page = client.get("/").text
    assert "approved by editor" in page  # the list shows the latest decision


def test_json_decisions_with_a_bearer_token_need_no_origin(console):
    client, ledger, ids = console
    r = client.post(
        f"/approvals/payout/{ids['payout']}",
        json={"decision": "reject", "why": "unknown bank account", "amount": 12_345,
              "currency": "EUR", "destination": "acct_new"},
        headers={"Authorization": "Bearer token-of-a-script"},
    )  # fmt: skip
    assert r.status_code == 201
    body = r.json()["decision"]
    assert (body["decision"], body["amount"], body["item"], body["why"]) == (
        "REJECTED",
        "123.45",
        "9001",
        "unknown bank account",
    )


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 403),  # a cookie POST without Origin or Referer
        ({"Origin": "https://evil.example"}, 403),
        ({"Origin": "null"}, 403),
        ({"Referer": "https://evil.example/page"}, 403),
        ({"Origin": "http://testserver.evil.example"}, 403),
        ({"Referer": f"{ORIGIN}/?category=waiting"}, 303),
        ({"Origin": "http://other-name", "X-Forwarded-Host": "other-name"}, 303),
    ],
)
def test_cookie_posts_must_come_from_this_site(console, headers, status):
    client, ledger, ids = console
    r = client.post(
        f"/approvals/transfer/{ids['held']}",
        data={**FORM, "decision": "approve", "why": "ok"},
        headers=headers,
        follow_redirects=False,
    )
    assert r.status_code == status
    recorded = decisions_of(ledger.engine, "transfer", "TRANSFER_PRODUCT_ORDER:ORD-1-A")
    assert len(recorded) == (1 if status == 303 else 0)


def test_readers_and_anonymous_cannot_decide(console):
    client, ledger, ids = console
    data = {**FORM, "decision": "approve", "why": "ok"}
    path = f"/approvals/transfer/{ids['held']}"
    reader = client.post(path, data=data, headers={"Origin": ORIGIN, "x-test-user": "reader"})
    assert reader.status_code == 403
    anonymous = client.post(path, data=data, headers={"Origin": ORIGIN, "x-test-user": ""})
    assert anonymous.status_code == 401
    assert decisions_of(ledger.engine, "transfer", "TRANSFER_PRODUCT_ORDER:ORD-1-A") == []


@pytest.mark.parametrize(
    ("which", "changes", "status", "detail"),
    [
        ("held", {"why": ""}, 422, "a reason (why) is required"),
        ("held", {"decision": "maybe"}, 422, "decision must be approve or reject"),
        ("held", {"amount": "20001"}, 409, "changed since it was shown"),
        ("kyc", {"amount": "50000", "destination": "acct_two"}, 409, "not waiting for an approval"),
        ("missing", {}, 404, "no transfer 0"),
    ],
)
def test_bad_decisions_are_refused_with_the_reason(console, which, changes, status, detail):
    client, ledger, ids = console
    row_id = ids.get(which, 0)
    r = client.post(
        f"/approvals/transfer/{row_id}",
        data={**FORM, "decision": "approve", "why": "ok", **changes},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert r.status_code == status and detail in r.json()["detail"]
    assert decisions_of(ledger.engine, "transfer", "TRANSFER_PRODUCT_ORDER:ORD-1-A") == []


def test_a_console_without_approvals_stays_read_only(tmp_path):
    url = Ledger.default_sqlite_url(tmp_path)
    Ledger(url).dispose()
    engine = create_ledger_engine(url)
    app = create_app(ConsoleAppConfig(queries=lambda: ConsoleQueries(engine), auth=_read))
    with TestClient(app, headers={"x-test-user": "editor"}) as client:
        assert "Awaiting approval" not in client.get("/").text
        r = client.post("/approvals/transfer/1", data={}, headers={"Origin": ORIGIN})
        assert r.status_code in (404, 405)
    engine.dispose()
