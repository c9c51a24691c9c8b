"""The console's actions over HTTP (no Airflow): forms and JSON, who may act, the same-origin
check of cookie sessions, the mandatory reason, and what the item page and the JSON show after.

Authentication is a stand-in here (``x-test-user``: ``reader`` reads, ``editor`` reads and acts;
a request without ``Authorization: Bearer`` counts as a browser session); Airflow's own is tested
with the plugin (``test_plugin_actions.py``). The DAG trigger is a recorder; the provider checks
(resolve, shop mapping) run against the sandbox in ``tests/integration/test_console_actions.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import HTTPException, Request
from fastapi.testclient import TestClient

from mirakl_connector.console.actions import (
    ActionServices,
    Actor,
    ConsoleActions,
    TriggeredRun,
)
from mirakl_connector.console.app import ConsoleAppConfig, create_app
from mirakl_connector.ledger import Ledger, TransferStatus, TransferType
from mirakl_connector.ledger.manual_actions import ActionRefused
from mirakl_connector.ledger.queries import ConsoleQueries

from .scenario import fill

SAME_SITE = {"Origin": "http://testserver"}


def _read(request: Request) -> None:
    if request.headers.get("x-test-user") not in ("reader", "editor"):
        raise HTTPException(401, "Not authenticated")


def _edit(request: Request) -> None:
    if request.headers.get("x-test-user") != "editor":
        raise HTTPException(403, "Forbidden")


def _actor(request: Request) -> Actor:
    return Actor(name=request.headers.get("x-test-user", "?"))


class Trigger:
    """Records the runs asked for; ``refuse`` makes it answer as Airflow would refuse."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict, str, str]] = []
        self.refuse: ActionRefused | None = None

    def __call__(self, dag_id: str, conf: Any, *, actor: Actor, note: str) -> TriggeredRun:
        if self.refuse is not None:
            raise self.refuse
        self.calls.append((dag_id, dict(conf), actor.name, note))
        return TriggeredRun(dag_id, f"manual__{len(self.calls)}")


@pytest.fixture
def env(tmp_path) -> Iterator[dict[str, Any]]:
    url = Ledger.default_sqlite_url(tmp_path)
    ledger = Ledger(url)
    ids = fill(ledger)
    trigger = Trigger()
    actions = ConsoleActions(ActionServices(ledger=lambda: ledger, trigger=trigger))
    app = create_app(
        ConsoleAppConfig(
            queries=lambda: ConsoleQueries(ledger.engine), auth=_read,
            actions=lambda: actions, edit_auth=_edit, actor=_actor,
        )
    )  # fmt: skip
    editor = TestClient(app, headers={"x-test-user": "editor"}, follow_redirects=False)
    reader = TestClient(app, headers={"x-test-user": "reader"}, follow_redirects=False)
    yield {"ids": ids, "ledger": ledger, "trigger": trigger, "editor": editor, "reader": reader,
           "app": app}  # fmt: skip
    ledger.dispose()


def test_hold_from_the_item_page_then_release(env):
    c, ids, ledger = env["editor"], env["ids"], env["ledger"]
    item = ids["ORD-6-A"]  # PENDING... sent: in doubt, cannot be held
    pending = ids["ORD-3-A"]  # ON_HOLD for KYC: may be held by a person
    page = c.get(f"/items/transfer/{pending}").text
    assert f'action="/items/transfer/{pending}/hold"' in page and 'name="why"' in page
    assert f'action="/items/transfer/{item}/hold"' not in c.get(f"/items/transfer/{item}").text

    r = c.post(f"/items/transfer/{pending}/hold", data={"why": "seller under review"},
               headers=SAME_SITE)  # fmt: skip
    assert r.status_code == 303
    assert r.headers["location"].startswith(f"/items/transfer/{pending}?done=")
    after = c.get(r.headers["location"].split("#")[0]).text
    assert "Done (hold by editor)" in after
    assert "held by editor: seller under review" in after  # status, history and audit
    assert f'action="/items/transfer/{pending}/release"' in after
    assert f'action="/items/transfer/{pending}/hold"' not in after
    assert ledger.get_transfer(TransferType.PRODUCT_ORDER, "ORD-3-A").status_reason == (
        "held by editor: seller under review"
    )

    body = c.post(f"/api/items/transfer/{pending}/release", json={"why": "review done"},
                  headers={"Authorization": "Bearer x"}).json()  # fmt: skip
    assert body["action"]["action"] == "release" and body["action"]["user"] == "editor"
    assert (
        body["item"]["reason"] == "released by editor: review done; decided again by the next run"
    )
    assert [a["action"] for a in body["actions"]] == ["hold", "release"]
    assert body["history"][-1]["reason"].startswith("released by editor")
    assert "hold" in body["allowed_actions"]


def test_cookie_session_actions_need_a_same_site_origin(env):
    c, ids, ledger = env["editor"], env["ids"], env["ledger"]
    url = f"/items/transfer/{ids['ORD-4-A']}/hold"
    for headers in ({}, {"Origin": "https://evil.example"}, {"Origin": "null"},
                    {"Referer": "https://evil.example/page"}):  # fmt: skip
        r = c.post(url, data={"why": "x"}, headers=headers)
        assert r.status_code == 403 and "cross-site request refused" in r.text, headers
        r = c.post(f"/api/{url[1:]}", json={"why": "x"}, headers=headers)
        assert r.status_code == 403, headers
    assert ledger.get_transfer(TransferType.PRODUCT_ORDER, "ORD-4-A").status_reason == "KYC pending"
    assert c.get("/api/actions").json()["actions"] == []  # never reached the action
    referer = c.post(url, data={"why": "x"}, headers={"Referer": "http://testserver/items/x"})
    assert referer.status_code == 303
    proxied = c.post(f"/items/transfer/{ids['ORD-3-A']}/hold", data={"why": "x"},
                     headers={"Origin": "https://payments.example",
                              "X-Forwarded-Host": "payments.example"})  # fmt: skip
    assert proxied.status_code == 303


def test_who_may_act(env):
    ids, ledger = env["ids"], env["ledger"]
    url = f"/api/items/transfer/{ids['ORD-4-A']}/hold"
    anonymous = TestClient(env["app"])
    assert anonymous.post(url, json={"why": "x"}, headers=SAME_SITE).status_code == 401
    assert env["reader"].post(url, json={"why": "x"}, headers=SAME_SITE).status_code == 403
    mapping = {"shop_id": 1, "stripe_account_id": "acct_x", "why": "x"}
    assert env["reader"].post("/api/mappings", json=mapping, headers=SAME_SITE).status_code == 403
    assert ledger.get_transfer(TransferType.PRODUCT_ORDER, "ORD-4-A").status_reason == "KYC pending"
    assert env["editor"].get("/api/actions").json()["actions"] == []


def test_every_action_needs_a_reason(env):
    c, ids = env["editor"], env["ids"]
    for why in (None, "", "   "):
        body = {} if why is None else {"why": why}
        r = c.post(f"/api/items/transfer/{ids['ORD-4-A']}/hold", json=body, headers=SAME_SITE)
        assert r.status_code == 422 and "reason" in r.json()["detail"]
    page = c.post(f"/items/transfer/{ids['ORD-4-A']}/hold", data={"why": ""}, headers=SAME_SITE)
    assert page.status_code == 422 and "Refused, nothing changed" in page.text
    assert c.get("/api/actions").json()["actions"] == []  # a malformed request is not audited
    assert c.post(f"/api/items/transfer/{ids['ORD-4-A']}/cancel", json={"why": "x"},
                  headers=SAME_SITE).status_code == 404  # fmt: skip


def test_a_refused_action_changes_nothing_and_is_audited(env):
    c, ids, ledger = env["editor"], env["ids"], env["ledger"]
    done = ids["ORD-1-A"]  # CREATED at Stripe
    page = c.post(f"/items/transfer/{done}/hold", data={"why": "too late"}, headers=SAME_SITE)
    assert page.status_code == 409
    assert "Refused, nothing changed: it is TRANSFER_CREATED: nothing is left to send" in page.text
    assert (
        ledger.get_transfer(TransferType.PRODUCT_ORDER, "ORD-1-A").status is TransferStatus.CREATED
    )
    [audit] = c.get("/api/actions", params={"entity": "transfer", "id": done}).json()["actions"]
    assert (audit["result"], audit["user"], audit["why"]) == ("refused", "editor", "too late")
    assert audit["detail"] == "it is TRANSFER_CREATED: nothing is left to send"
    doubt = ids["ORD-6-A"]
    typo = c.post(f"/items/transfer/{doubt}/resolve-found",
                  data={"why": "seen in the dashboard", "object_id": "tx_123", "attempts": "1"},
                  headers=SAME_SITE)  # fmt: skip
    assert typo.status_code == 422 and "is not the id of a transfer (tr_...)" in typo.text
    assert 'value="tx_123"' in typo.text and 'value="seen in the dashboard"' in typo.text
    assert ledger.get_transfer(TransferType.PRODUCT_ORDER, "ORD-6-A").in_doubt
    missing = c.post("/api/items/payout/999999/hold", json={"why": "x"}, headers=SAME_SITE)
    assert (
        missing.status_code == 404 and missing.json()["detail"] == "no payout 999999 in the ledger"
    )


def test_retry_triggers_the_items_dag_as_the_user_and_is_in_the_runs_list(env):
    c, ids, trigger = env["editor"], env["ids"], env["trigger"]
    failed = ids["ORD-5-A"]
    r = c.post(f"/api/items/transfer/{failed}/retry", json={"why": "Stripe account fixed"},
               headers=SAME_SITE)  # fmt: skip
    assert r.status_code == 200
    assert trigger.calls == [(
        "stripe_payment_split", {"order_ids": ["ORD-5-A"]}, "editor",
        "Payments console: retry of transfer ORD-5-A requested by editor: Stripe account fixed",
    )]  # fmt: skip
    body = r.json()
    assert body["action"]["detail"] == "run manual__1 of stripe_payment_split triggered"
    assert body["item"]["status"] == "TRANSFER_FAILED"  # the run decides; the console does not
    event = body["history"][-1]
    assert (event["run_id"], event["new_status"]) == ("manual__1", "TRANSFER_FAILED")
    assert event["reason"] == (
        "retry requested by editor: Stripe account fixed; run manual__1 of stripe_payment_split"
    )
    listed = c.get("/api/items", params={"run": "manual__1"}).json()["items"]
    assert [i["mirakl_id"] for i in listed] == ["ORD-5-A"]

    payout = ids["9001"]  # ON_HOLD payout of shop 7
    c.post(f"/api/items/payout/{payout}/retry", json={"why": "x"}, headers=SAME_SITE)
    assert trigger.calls[-1][:2] == ("stripe_seller_settlement", {"shop_id": 7})
    hw = ids["9103-operatorFee"]
    c.post(f"/api/items/hyperwallet_payment/{hw}/retry", json={"why": "x"}, headers=SAME_SITE)
    assert trigger.calls[-1][:2] == ("hyperwallet_invoice_payments", {"invoice_ids": ["9103"]})

    trigger.refuse = ActionRefused("editor may not trigger DAG stripe_payment_split", status=403)
    refused = c.post(f"/api/items/transfer/{failed}/retry", json={"why": "again"},
                     headers=SAME_SITE)  # fmt: skip
    assert refused.status_code == 403 and "may not trigger" in refused.json()["detail"]
    last = c.get("/api/actions").json()["actions"][0]
    assert (last["action"], last["result"]) == ("retry", "refused")
    created = c.post(f"/api/items/transfer/{ids['ORD-1-A']}/retry", json={"why": "x"},
                     headers=SAME_SITE)  # fmt: skip
    assert created.status_code == 409 and "nothing is left to retry" in created.json()["detail"]


def test_main_page_lists_recent_actions_and_offers_the_mapping_form(env):
    c, ids = env["editor"], env["ids"]
    c.post(f"/api/items/transfer/{ids['ORD-4-A']}/hold", json={"why": "dispute #42"},
           headers=SAME_SITE)  # fmt: skip
    page = c.get("/").text
    assert 'action="/mappings"' in page and 'name="stripe_account_id"' in page
    assert "dispute #42" in page and "transfer ORD-4-A" in page
    mapping = c.post("/mappings", data={"shop_id": "abc", "stripe_account_id": "acct_1",
                                        "why": "x"}, headers=SAME_SITE)  # fmt: skip
    assert mapping.status_code == 422 and "is not a Mirakl shop id" in mapping.text
    bad = c.post("/api/mappings", json={"shop_id": 5, "stripe_account_id": "nope", "why": "x"},
                 headers=SAME_SITE)  # fmt: skip
    assert bad.status_code == 422 and "is not a Stripe account id" in bad.json()["detail"]
    taken = c.post("/api/mappings", json={"shop_id": 5, "stripe_account_id": "acct_five",
                                          "why": "x"}, headers=SAME_SITE)  # fmt: skip
    # shop 5 has no mapping, but no provider is configured here: refused before any write
    assert taken.status_code == 503 and "no Mirakl connection" in taken.json()["detail"]


def test_a_read_only_console_has_no_action(tmp_path):
    ledger = Ledger(Ledger.default_sqlite_url(tmp_path))
    ids = fill(ledger)
    app = create_app(ConsoleAppConfig(queries=lambda: ConsoleQueries(ledger.engine), auth=_read))
    c = TestClient(app, headers={"x-test-user": "editor"})
    assert 'method="post"' not in c.get(f"/items/transfer/{ids['ORD-4-A']}").text
    assert 'method="post"' not in c.get("/").text
    r = c.post(f"/api/items/transfer/{ids['ORD-4-A']}/hold", json={"why": "x"}, headers=SAME_SITE)
    assert r.status_code in (404, 405)
    ledger.dispose()


def test_the_public_base_url_is_a_trusted_origin(tmp_path):
    """Behind a proxy that rewrites ``Host``, ``[api] base_url`` names the page's origin."""
    ledger = Ledger(Ledger.default_sqlite_url(tmp_path))
    ids = fill(ledger)
    actions = ConsoleActions(ActionServices(ledger=lambda: ledger, trigger=Trigger()))
    app = create_app(
        ConsoleAppConfig(
            queries=lambda: ConsoleQueries(ledger.engine), auth=_read, actions=lambda: actions,
            edit_auth=_edit, actor=_actor, trusted_origins=("https://airflow.example.com/",),
        )
    )  # fmt: skip
    c = TestClient(app, headers={"x-test-user": "editor"}, follow_redirects=False)
    url = f"/items/transfer/{ids['ORD-4-A']}/hold"
    assert c.post(url, data={"why": "x"}, headers={"Origin": "https://other.example.com"}
                  ).status_code == 403  # fmt: skip
    assert c.post(url, data={"why": "x"}, headers={"Origin": "https://airflow.example.com"}
                  ).status_code == 303  # fmt: skip
    ledger.dispose()
