"""The payment split as an operator runs it by hand: in the Airflow UI, in a real browser.

Log in, open the DAG, switch it on, trigger it from the trigger form with a ``since`` override
and ``dry_run`` off, wait until the run is green, and read the run's summary (the report task's
XCom) on the page. Then check the summary against what reached Stripe and what Mirakl was asked.

Selectors are those of the Airflow 3.3 UI (Chakra/Zag): the date-time param is a popover, the
boolean param a switch, the XCom value a folded Monaco editor.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DAG_ID = "stripe_payment_split"
SINCE = datetime(2026, 11, 8, 8, 30, tzinfo=UTC)  # inside the generated 30 days of orders


def _orders_since(sandbox, since: datetime) -> set[str]:
    return {
        o["order_id"]
        for o in sandbox.orders()
        if datetime.fromisoformat(o["created_date"].replace("Z", "+00:00")) >= since
    }


@pytest.mark.timeout(240)
def test_trigger_with_since_override_and_read_the_summary(
    airflow_ui, browser_context, tmp_path, record_property
):
    from playwright.sync_api import expect, sync_playwright

    expected_orders = _orders_since(airflow_ui.sandbox, SINCE)
    assert 0 < len(expected_orders) < len(airflow_ui.sandbox.orders())  # the override matters
    base = airflow_ui.base_url
    screenshot = tmp_path / "payment_split_run.png"
    timings: dict[str, float] = {}
    started = time.monotonic()

    with sync_playwright() as pw:
        # The date picker reads what is typed in the browser's time zone (UTC).
        context = browser_context(pw)
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
        page = context.pages[0] if context.pages else context.new_page()
        page.set_default_timeout(30_000)
        try:
            # -- log in -----------------------------------------------------------------------
            page.goto(base + "/")
            page.wait_for_url(re.compile(r"/auth/login"))
            page.get_by_label("Username").fill("admin")
            page.get_by_label("Password").fill(airflow_ui.password)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(base + "/")
            timings["logged_in"] = time.monotonic() - started

            # -- the DAG page; switch it on -----------------------------------------------------
            page.goto(f"{base}/dags/{DAG_ID}")
            expect(page.get_by_role("heading", name=DAG_ID, exact=True)).to_be_visible()
            toggle = page.get_by_test_id("toggle-pause")
            if toggle.get_attribute("data-state") != "checked":
                toggle.click()
            expect(toggle).to_have_attribute("data-state", "checked")

            # -- the trigger form: since override, dry run off ------------------------------------
            page.get_by_test_id("trigger-dag-button").click()
            heading = page.get_by_role("heading", name=f"Trigger Dag - {DAG_ID}")
            dialog = page.get_by_role("dialog").filter(has=heading)
            expect(dialog).to_be_visible()
            since_field = (
                dialog.get_by_role("group")
                .filter(has_text="Orders created since")
                .get_by_test_id("datetime-input")
            )
            since_field.click()
            picker = page.get_by_role("dialog").filter(has=page.get_by_placeholder("YYYY/MM/DD"))
            picker.get_by_placeholder("YYYY/MM/DD").fill(SINCE.strftime("%Y/%m/%d"))
            picker.get_by_placeholder("HH:mm").fill(SINCE.strftime("%H:%M"))
            heading.click()  # closes the picker (Escape could close the whole dialog)
            expect(since_field).to_have_text(SINCE.strftime("%b %d, %Y %H:%M"))
            dry_run = dialog.get_by_role("checkbox", name="Dry run")
            if dry_run.is_checked():
                dialog.get_by_role("group").filter(has_text="Dry run").locator(
                    "[data-part=control]"
                ).click()
            expect(dry_run).not_to_be_checked()

            with page.expect_response(
                lambda r: (
                    r.url.endswith(f"/api/v2/dags/{DAG_ID}/dagRuns") and r.request.method == "POST"
                )
            ) as posted:
                dialog.get_by_test_id("trigger-dag-submit").click()
            created = posted.value.json()
            assert posted.value.status in (200, 201), created
            assert created["conf"]["since"] == SINCE.strftime("%Y-%m-%dT%H:%M:00.000Z")
            assert created["conf"]["dry_run"] is False
            run_id = created["dag_run_id"]
            timings["triggered"] = time.monotonic() - started

            # -- the run goes green ----------------------------------------------------------------
            page.wait_for_url(re.compile(f"/dags/{DAG_ID}/runs/"))
            state = page.get_by_test_id("header-card").get_by_test_id("state-badge")
            expect(state).to_have_text("Success", timeout=150_000)
            timings["run_succeeded"] = time.monotonic() - started

            # -- the summary: the report task's XCom -----------------------------------------------
            page.get_by_test_id("table-list").get_by_role("link", name="report", exact=True).click()
            page.get_by_role("link", name="Storage").click()
            page.get_by_role("link", name="XCom").click()
            page.wait_for_url(re.compile(r"/tasks/report/xcom"))
            row = page.get_by_role("row").filter(
                has=page.get_by_role("cell", name="return_value", exact=True)
            )
            summary = _read_json_cell(page, row, expect)
            page.screenshot(path=str(screenshot), full_page=True)
            timings["summary_read"] = time.monotonic() - started
        except Exception:
            page.screenshot(path=str(screenshot), full_page=True)
            print(f"\nscreenshot of the failure: {screenshot}")
            raise
        finally:
            context.close()

    record_property("screenshot", str(screenshot))
    print(f"\nscreenshot: {screenshot}\nrun: {run_id}\ntimings (s): "
          + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))  # fmt: skip

    # What the page showed is what happened: one transfer per order created since the override.
    assert summary["failed_count"] == 0 and summary["has_failures"] is False
    assert summary["steps"]["plan_transfers"] == {"TRANSFER_PENDING": len(expected_orders)}
    assert summary["steps"]["create_transfers"] == {"TRANSFER_CREATED": len(expected_orders)}
    transfers = airflow_ui.sandbox.transfers()
    assert {t["metadata"]["miraklId"] for t in transfers} == expected_orders
    assert len(transfers) == len(expected_orders)
    or11 = airflow_ui.sandbox.mirakl_calls("OR11")
    plan_reads = [c for c in or11 if "order_ids" not in c["query"]]
    assert {c["query"].get("start_date") for c in plan_reads} == {"2026-11-08T08:30:00Z"}  # Z
    # the reconcile task's read: the paid orders, by id, in one call; each transfer matched
    [by_id] = [c for c in or11 if "order_ids" in c["query"]]
    assert set(by_id["query"]["order_ids"].split(",")) == expected_orders
    assert summary["steps"]["reconcile"] == {"MATCHED": len(expected_orders)}
    assert screenshot.stat().st_size > 10_000


def _read_json_cell(page, row, expect) -> dict:
    """The JSON in an XCom row: check the unfolded editor shows it, take it whole with "Copy".

    The value is a folded Monaco editor that renders only the lines in view, so the visible text
    proves the page shows the summary and the row's "Copy to clipboard" button gives all of it.
    """
    cell = row.get_by_test_id("xcom-value")
    page.get_by_test_id("expand-all-button").click()
    expect(cell).to_contain_text('"TRANSFER_CREATED"', timeout=20_000)
    row.get_by_role("button", name="Copy to clipboard").click()
    text = ""
    for _ in range(20):  # the clipboard is written asynchronously
        text = page.evaluate("navigator.clipboard.readText()")
        if text.strip().endswith("}"):
            break
        page.wait_for_timeout(250)
    visible = " ".join(cell.inner_text().replace("\xa0", " ").split())
    summary = json.loads(text)
    shown = json.dumps(summary["steps"]["plan_transfers"], separators=(", ", ": "))
    assert " ".join(shown.split()).strip("{}").strip() in visible
    return summary
