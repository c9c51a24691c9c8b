"""The payments console after the demo, in a real browser, as an operator uses it.

The demo scenario has run (``demo_console``: the demo's sandbox, faults and settings, one pass of
every workflow). Log in, open **Payments** in Airflow's navigation, and check what the page says
against what the sandbox's Stripe and Hyperwallet hold: money moved per currency and provider is
the sum of their transfers, reversals, refunds, payouts and Hyperwallet payments, but for the
transfer in doubt (Stripe made it, its answer was lost). Open that item, resolve it as found with
the transfer's id, and check the figures match exactly and that no run sends it again. Then check
that a logged-out browser and an API call without a token get nothing from any console route.

Screenshots go to the test's tmp dir, or to ``$MIRAKL_CONNECTOR_SCREENSHOT_DIR`` (the README's
``docs/payments-console*.png`` are made that way).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from mirakl_sandbox.demo_run import IN_DOUBT_ORDER
from mirakl_sandbox.hyperwallet_admin import HyperwalletSandboxAdmin

from mirakl_connector.console.app import ConsoleAppConfig, create_app
from mirakl_connector.console.approvals import ApprovalsConfig
from mirakl_connector.core.money import to_minor
from mirakl_connector.ledger import Ledger, PayoutStatus, TransferStatus, TransferType

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CONSOLE = "/mirakl-connector-console"
IN_DOUBT_TITLE = "What is in doubt (sent, answer unknown)"
#: The invoice whose payout the demo's approval settings hold (48,000 JPY > 40,000 JPY).
AWAITING_INVOICE = "9003"
#: What the ``payments_reconciliation`` DAG runs, for today (the demo's movements are today's).
DAY_RECONCILIATION = [
    ("reconciliation", "reconcile_day", {"flow": flow, "day": datetime.now(UTC).date()})
    for flow in ("payment_split", "payment_refund", "seller_settlement",
                 "hyperwallet_invoice_payments")
]  # fmt: skip
#: The next runs of the split and the settlement DAGs, after the two decisions.
NEXT_RUNS = [
    ("payment_split", "plan"),
    ("payment_split", "execute"),
    ("seller_settlement", "plan"),
    ("seller_settlement", "transfer"),
    ("seller_settlement", "payout"),
]
Figures = dict[tuple[str, str], tuple[int, int]]  # (currency, provider) -> (movements, minor)


def moved_at_providers(sandbox) -> Figures:
    """What the sandbox's providers hold, per currency and provider: count and minor units."""
    count: Counter = Counter()
    amount: Counter = Counter()
    stripe = [*sandbox.transfers(), *sandbox.reversals(), *sandbox.refunds(), *sandbox.payouts()]
    for obj in stripe:
        key = (obj["currency"].upper(), "stripe")
        count[key] += 1
        amount[key] += obj["amount"]
    hyperwallet = HyperwalletSandboxAdmin(sandbox.url)
    try:
        payments = hyperwallet.payments()
    finally:
        hyperwallet.close()
    for payment in payments:
        key = (payment["currency"], "hyperwallet")
        count[key] += 1
        amount[key] += to_minor(Decimal(payment["amount"]), payment["currency"])
    return {key: (count[key], amount[key]) for key in count}


def shown_figures(frame) -> tuple[Figures, dict[str, int], int]:
    """The money moved table as the page shows it, summed per currency and provider, and the
    line above it (total movements, amount per currency)."""
    # The line first: reading it waits for the page (the table rows are read as they are).
    line = frame.get_by_text(re.compile(r"^\d+ movements: ")).inner_text()
    total, per_currency = re.match(r"(\d+) movements: (.*)\. Export CSV", line).groups()
    totals = {}
    for part in per_currency.split(", "):
        value, currency = part.split()
        totals[currency] = to_minor(Decimal(value), currency)
    figures: Counter = Counter()
    counts: Counter = Counter()
    table = frame.locator("table").filter(has=frame.get_by_role("columnheader", name="Movements"))
    for row in table.first.get_by_role("row").all()[1:]:
        day, currency, provider, workflow, movements, shown = row.get_by_role(
            "cell"
        ).all_inner_texts()
        value, unit = shown.split()
        assert unit == currency, (day, workflow)
        counts[(currency, provider)] += int(movements)
        figures[(currency, provider)] += to_minor(Decimal(value), currency)
    return {k: (counts[k], figures[k]) for k in counts}, totals, int(total)


def per_currency(figures: Figures) -> dict[str, int]:
    out: Counter = Counter()
    for (currency, _provider), (_count, amount) in figures.items():
        out[currency] += amount
    return dict(out)


def without(figures: Figures, transfer: dict) -> Figures:
    """The figures less one Stripe object."""
    key = (transfer["currency"].upper(), "stripe")
    count, amount = figures[key]
    return {**figures, key: (count - 1, amount - transfer["amount"])}


def screenshot_dir(tmp_path: Path) -> Path:
    target = Path(os.environ.get("MIRAKL_CONNECTOR_SCREENSHOT_DIR") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


def token(console) -> str:
    answer = requests.post(
        console.base_url + "/auth/token",
        json={"username": "admin", "password": console.password},
        timeout=30,
    )
    answer.raise_for_status()
    return answer.json()["access_token"]


def _log_in(page, console) -> None:
    page.goto(console.base_url + "/")
    page.wait_for_url(re.compile(r"/auth/login"))
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(console.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(console.base_url + "/")


@pytest.mark.timeout(420)
def test_payments_page_after_the_demo_figures_in_doubt_resolved_payout_approved(
    demo_console, browser_context, tmp_path, record_property
):
    from playwright.sync_api import expect, sync_playwright

    sandbox = demo_console.sandbox
    at_providers = moved_at_providers(sandbox)
    [made] = [t for t in sandbox.transfers() if t["metadata"]["miraklId"] == IN_DOUBT_ORDER]
    ledger = Ledger(demo_console.ledger_url)
    row = ledger.get_transfer(TransferType.PRODUCT_ORDER, IN_DOUBT_ORDER)
    assert row.in_doubt and row.transfer_id is None  # what the demo's fault leaves
    assert demo_console.summaries["payment_split.execute"]["ids"]["IN_DOUBT"] == [IN_DOUBT_ORDER]
    held = ledger.get_payouts([AWAITING_INVOICE])[AWAITING_INVOICE]
    assert held.status_reason.startswith("awaiting approval:")  # what the demo's settings hold
    assert not [p for p in sandbox.payouts() if p["metadata"]["invoiceId"] == AWAITING_INVOICE]
    shots = screenshot_dir(tmp_path)
    base = demo_console.base_url
    transfer_posts = len(sandbox.stripe_requests(path="/v1/transfers", method="POST"))
    # The day does not reconcile yet: Stripe holds a transfer the ledger has no id for.
    [split_day] = [
        s for k, s in demo_console.run_steps(DAY_RECONCILIATION).items() if "payment_split" in k
    ]
    assert split_day["headline"].startswith("Does not reconcile")

    with sync_playwright() as pw:
        # Tall enough that the first screenshot shows the charts, the table and the overview.
        context = browser_context(pw, height=1900)
        page = context.pages[0] if context.pages else context.new_page()
        page.set_default_timeout(30_000)
        try:
            _log_in(page, demo_console)

            # -- the Payments entry of Airflow's navigation -----------------------------------
            page.get_by_role("link", name="Payments").click()
            page.wait_for_url(base + "/plugin/payments")
            frame = page.frame_locator(f"iframe[src*='{CONSOLE}/']")
            expect(frame.get_by_role("heading", name="Payments", exact=True)).to_be_visible()
            expect(frame.get_by_text(f"{IN_DOUBT_TITLE}: 1")).to_be_visible()
            expect(frame.get_by_role("heading", name="Awaiting approval: 1")).to_be_visible()
            page.screenshot(path=str(shots / "payments-console.png"))
            # Everything the providers hold, but the transfer whose answer never came back.
            figures, totals, movements = shown_figures(frame)
            assert figures == without(at_providers, made)
            assert totals == per_currency(figures)
            assert movements == sum(n for n, _ in at_providers.values()) - 1
            # The day's reconciliation names it: Stripe has it, the ledger has no id for it.
            frame.get_by_role("link", name="Reconciliation (per run and per day)").click()
            expect(
                frame.get_by_text("Does not reconcile: 1 mismatch(es) in 1 of 4")
            ).to_be_visible()
            mismatch = frame.get_by_role("row").filter(has_text="MISSING_IN_LEDGER")
            expect(mismatch.filter(has_text=IN_DOUBT_ORDER)).to_have_count(1)
            frame.get_by_role("link", name="← Payments").click()

            # -- the item in doubt: found at Stripe --------------------------------------------
            frame.get_by_role("link", name=IN_DOUBT_TITLE, exact=True).click()
            listed = frame.get_by_role("row").filter(has_text=IN_DOUBT_ORDER)
            expect(listed).to_have_count(1)
            expect(listed).to_contain_text("96.12 EUR")
            expect(listed).to_contain_text("Outcome unknown")
            listed.get_by_role("link", name=f"transfer:{row.id}").click()
            expect(frame.get_by_role("heading", name=f"split {IN_DOUBT_ORDER}")).to_be_visible()
            found = frame.locator("form").filter(
                has=frame.get_by_role("button", name="Resolve: found", exact=True)
            )
            found.get_by_label("Object id").fill(made["id"])
            found.get_by_label("Why").fill("found in the Stripe dashboard, made on time")
            page.screenshot(path=str(shots / "payments-console-in-doubt.png"))
            found.get_by_role("button", name="Resolve: found", exact=True).click()
            banner = frame.get_by_role("status")
            expect(banner).to_contain_text("Done (resolve_found by admin)")
            expect(banner).to_contain_text(made["id"])
            item = frame.locator("table").first
            expect(item).to_contain_text("TRANSFER_CREATED")
            expect(item).to_contain_text(made["id"])
            history = frame.get_by_role("row").filter(has_text="found in the Stripe dashboard")
            expect(history.first).to_be_visible()
            page.screenshot(path=str(shots / "payments-console-resolved.png"))

            # -- back on the page: nothing in doubt, the figures are the providers' ------------
            frame.get_by_role("link", name="← Payments").click()
            expect(frame.get_by_text(f"{IN_DOUBT_TITLE}: 0")).to_be_visible()
            assert shown_figures(frame) == (
                at_providers,
                per_currency(at_providers),
                sum(n for n, _ in at_providers.values()),
            )

            # -- the payout held for approval: approved --------------------------------------
            waiting = frame.get_by_role("row").filter(
                has=frame.get_by_role("button", name="Approve")
            )
            expect(waiting).to_have_count(1)
            expect(waiting).to_contain_text(f"payout:{held.id}")
            expect(waiting).to_contain_text("48000 JPY")
            expect(waiting).to_contain_text("acct_demo_tokyo")
            expect(waiting).to_contain_text("above approval.payout_above 40000 JPY")
            waiting.get_by_placeholder("why (recorded)").fill("large payout checked with Tokyo")
            waiting.get_by_role("button", name="Approve").click()
            expect(frame.get_by_role("heading", name=re.compile(AWAITING_INVOICE))).to_be_visible()
            approved = frame.get_by_role("row").filter(
                has_text="approved by admin: large payout checked with Tokyo"
            )
            expect(approved).to_have_count(1)
            expect(approved).to_contain_text("sent by the next run")
            page.screenshot(path=str(shots / "payments-console-approved.png"))

            # -- the next runs (as their DAGs would make them) pay it, once -------------------
            summaries = demo_console.run_steps(NEXT_RUNS + DAY_RECONCILIATION)
            frame.get_by_role("link", name="← Payments").click()
            expect(frame.get_by_role("heading", name="Awaiting approval: 0")).to_be_visible()
            now_at_providers = moved_at_providers(sandbox)
            assert shown_figures(frame) == (
                now_at_providers,
                per_currency(now_at_providers),
                sum(n for n, _ in now_at_providers.values()),
            )
            page.screenshot(path=str(shots / "payments-console-after.png"))
            # ...and the day reconciles: ledger, Stripe, Hyperwallet and Mirakl agree.
            frame.get_by_role("link", name="Reconciliation (per run and per day)").click()
            expect(
                frame.get_by_text("Reconciles: 4 reconciliation(s), every item matched.")
            ).to_be_visible()
        except Exception:
            page.screenshot(path=str(shots / "payments-console-failure.png"), full_page=True)
            print(f"\nscreenshot of the failure: {shots / 'payments-console-failure.png'}")
            raise
        finally:
            context.close()

    record_property("screenshots", str(shots))
    print(f"\nscreenshots: {sorted(str(p) for p in shots.glob('payments-console*.png'))}")

    # The approved payout: made once, by the next settlement run; the JPY figure grew by it.
    [payout] = [p for p in sandbox.payouts() if p["metadata"]["invoiceId"] == AWAITING_INVOICE]
    assert (payout["amount"], payout["currency"], payout["sandbox_account"]) == (
        48000,
        "jpy",
        "acct_demo_tokyo",
    )
    jpy_before, jpy_after = at_providers[("JPY", "stripe")], now_at_providers[("JPY", "stripe")]
    assert jpy_after == (jpy_before[0] + 1, jpy_before[1] + 48000)
    assert summaries["seller_settlement.payout"]["counts"].get("PAYOUT_CREATED") == 1
    paid = ledger.get_payouts([AWAITING_INVOICE])[AWAITING_INVOICE]
    assert (paid.status, paid.payout_id) == (PayoutStatus.CREATED, payout["id"])
    # The transfer found in doubt: recorded, and not sent again by the split's next run.
    saved = ledger.get_transfer(TransferType.PRODUCT_ORDER, IN_DOUBT_ORDER)
    assert (saved.status, saved.transfer_id, saved.in_doubt) == (
        TransferStatus.CREATED,
        made["id"],
        False,
    )
    assert summaries["payment_split.execute"]["failed_total"] == 0
    assert len(sandbox.stripe_requests(path="/v1/transfers", method="POST")) == transfer_posts
    # The audit names the user and the reason of both decisions.
    actions = requests.get(
        f"{base}{CONSOLE}/api/actions",
        headers={"Authorization": f"Bearer {token(demo_console)}"},
        timeout=30,
    ).json()["actions"]
    assert sorted((a["user"], a["action"], a["result"], a["item"], a["why"]) for a in actions) == [
        ("admin", "approve", "done", AWAITING_INVOICE, "large payout checked with Tokyo"),
        ("admin", "resolve_found", "done", IN_DOUBT_ORDER,
         "found in the Stripe dashboard, made on time"),
    ]  # fmt: skip
    ledger.dispose()


def console_routes(entity: str, row_id: int) -> list[tuple[str, str]]:
    """Every route of the console app (method, path with real ids): new routes are covered
    without editing this test."""
    app = create_app(
        ConsoleAppConfig(
            queries=lambda: None,
            auth=lambda: None,
            actions=lambda: None,
            edit_auth=lambda: None,
            actor=lambda: None,
            approvals=ApprovalsConfig(ledger=lambda: None),
        )
    )
    values = {"entity": entity, "row_id": str(row_id), "action": "resolve-found",
              "category": "in_doubt"}  # fmt: skip
    routes = []
    for route in app.routes:
        path = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], route.path)
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                routes.append((method, path))
    return routes


def _no_ledger_data(body: str, secrets: list[str]) -> None:
    leaked = [s for s in secrets if s in body]
    assert not leaked, f"ledger data in an unauthenticated answer: {leaked}: {body[:300]}"


@pytest.mark.timeout(240)
def test_logged_out_browser_and_tokenless_calls_get_nothing(
    demo_console, browser_context, tmp_path
):
    from playwright.sync_api import sync_playwright

    base = demo_console.base_url
    ledger = Ledger(demo_console.ledger_url)
    row = ledger.get_transfer(TransferType.PRODUCT_ORDER, IN_DOUBT_ORDER)
    ledger.dispose()
    routes = console_routes("transfer", row.id)
    assert {
        ("GET", "/"),
        ("GET", "/api/moved"),
        ("GET", "/export/items.csv"),
        ("GET", "/api/approvals"),
        ("POST", f"/approvals/transfer/{row.id}"),
    } <= set(routes)
    # What the console would show a logged-in user: ids, accounts, amounts of the demo.
    authorised = requests.get(
        f"{base}{CONSOLE}/api/items/transfer/{row.id}",
        headers={"Authorization": f"Bearer {token(demo_console)}"},
        timeout=30,
    )
    assert authorised.status_code == 200
    secrets = [IN_DOUBT_ORDER, "acct_demo_bois", "96.12", "9612", "ORD-10", "acct_demo"]
    assert all(s in authorised.text for s in secrets[:3])
    audit_before = requests.get(
        f"{base}{CONSOLE}/api/actions",
        headers={"Authorization": f"Bearer {token(demo_console)}"},
        timeout=30,
    ).json()["actions"]

    # -- an API call without a token, or with a forged one ----------------------------------
    for method, path in routes:
        for headers, expected in (
            ({}, 401),
            ({"Authorization": "Bearer not-a-token"}, 403),
        ):
            answer = requests.request(
                method,
                base + CONSOLE + path,
                headers=headers,
                json={"why": "x", "object_id": "tr_x"} if method == "POST" else None,
                timeout=30,
            )
            assert answer.status_code in (401, 403), (method, path, headers, answer.status_code)
            if not headers:
                assert answer.status_code == expected, (method, path)
            assert answer.headers["content-type"].startswith("application/json"), (method, path)
            assert set(answer.json()) == {"detail"}, (method, path)
            _no_ledger_data(answer.text, secrets)

    # -- a browser that never logged in -------------------------------------------------------
    with sync_playwright() as pw:
        context = browser_context(pw)
        page = context.pages[0] if context.pages else context.new_page()
        page.set_default_timeout(30_000)
        console_answers = []
        page.on(
            "response",
            lambda r: console_answers.append((r.url, r.status)) if CONSOLE in r.url else None,
        )
        try:
            # Airflow's own page of the plugin sends it to the login form.
            page.goto(base + "/plugin/payments")
            page.wait_for_url(re.compile(r"/auth/login"))
            page.get_by_label("Username").wait_for()
            _no_ledger_data(page.content(), secrets)
            # Every console page, item page, JSON and CSV opened directly.
            for method, path in routes:
                if method != "GET":
                    continue
                answer = page.goto(base + CONSOLE + path)
                assert answer.status == 401, (path, answer.status)
                _no_ledger_data(page.content(), secrets)
            page.screenshot(path=str(screenshot_dir(tmp_path) / "payments-console-logged-out.png"))
        finally:
            context.close()
    assert console_answers and all(status == 401 for _, status in console_answers), console_answers

    # Nothing was done by the refused actions.
    audit_after = requests.get(
        f"{base}{CONSOLE}/api/actions",
        headers={"Authorization": f"Bearer {token(demo_console)}"},
        timeout=30,
    ).json()["actions"]
    assert audit_after == audit_before
