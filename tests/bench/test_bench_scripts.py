"""The benchmark scripts still run and still check what they print (tiny sizes, never timed).

The figures themselves are for ``scripts/bench.sh`` on a quiet machine; here only the work is
checked: every object made exactly once, no failed item, a rerun that writes nothing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parents[2] / "bench"


def run_bench(name: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(BENCH / f"{name}.py"), *args],
        capture_output=True, text=True, timeout=240, env=os.environ.copy(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def row(table: str, label: str) -> str:
    """The value column of the row starting with ``label``."""
    match = re.search(rf"^{re.escape(label)}\s+(.+)$", table, re.M)
    assert match, f"no row {label!r} in:\n{table}"
    return re.split(r"\s{2,}", match.group(1).strip())[0]  # value, then the target


def test_payment_split_bench_makes_each_transfer_once_under_stripe_s_limits():
    out = run_bench("payment_split", "--orders", "60", "--shards", "3")
    assert row(out, "transfers in the sandbox") == "60"
    assert row(out, "failed items") == "0"
    assert row(out, "Stripe writes per transfer (sandbox)") == "1.000"
    # Live mode: the 60 transfers are bound by POST /v1/transfers' 25/s, paced to 80 % of it.
    assert row(out, "binding limit") == "execute: POST /v1/transfers (25/s)"
    assert float(row(out, "bound at the documented limits (s)")) >= 60 / 25
    assert float(row(out, "bound at the share paced to, 80% (s)")) >= 60 / 20
    assert float(row(out, "ratio wall / bound at 80%")) > 0


def test_the_split_bench_runs_the_test_mode_limits():
    out = run_bench("payment_split", "--orders", "30", "--stripe-mode", "test", "--share", "1")
    assert row(out, "transfers in the sandbox") == "30"
    assert row(out, "binding limit").startswith("execute: ")
    assert float(row(out, "bound at the documented limits (s)")) >= 30 / 25


def test_refunds_and_settlement_bench_move_each_object_once():
    out = run_bench(
        "refunds_settlement", "--refunds", "20", "--invoices", "20", "--shards", "2",
        "--share", "1",
    )  # fmt: skip
    assert row(out, "refunds / reversals in the sandbox") == "20 / 20"
    assert row(out, "transfers / payouts in the sandbox") == "40 / 20"
    assert row(out, "Stripe POST attempts per write") == "1.000"
    refunds, settlement = out.split("Seller settlement")
    assert row(refunds, "binding limit") == (
        "refund: POST /v1/refunds (25/s); reverse: POST /v1/transfers/{id}/reversals (25/s)"
    )
    assert row(settlement, "binding limit") == (
        "transfer: POST /v1/transfers (25/s); payout: POST /v1/payouts (25/s)"
    )


def test_rerun_bench_writes_nothing():
    out = run_bench("rerun", "--orders", "40", "--rate-limit", "500")
    assert row(out, "rerun: Stripe POSTs (provider writes)") == "0"
    assert row(out, "rerun: Mirakl writes") == "0"
    assert row(out, "transfers after the rerun") == "40"


def test_memory_bench_runs():
    out = run_bench("memory", "--orders", "200", "--shards", "2")
    assert row(out, "transfers CREATED") == "200"


def test_console_bench_times_every_page_query_and_export():
    out = run_bench("console", "--movements", "400", "--backend", "sqlite")
    assert row(out, "movements / status events").startswith("400 / ")
    for label in (
        "moved, last 30 days, s",
        "waiting by reason, s",
        "in doubt, page 1 (50), s",
        "page /, s",
        "item page /items/<entity>/<id>, s",
        "/api/items/<entity>/<id>, s",
        "export items.csv?category=failed, first byte, s",
        "awaiting approval (list + count), s",
    ):
        assert float(row(out, label)) >= 0
    # each export's size is printed with its time
    assert any(line.startswith("export items.csv?category=waiting (") for line in out.splitlines())


@pytest.mark.parametrize(
    ("workflow", "waiting_rows", "idle_rows", "changed_rows"),
    [
        ("split", 200, 1, 3),  # + the order at the creation checkpoint, read again
        ("refunds", 200, 0, 2),
        ("settlement", 800, 4, 12),  # 4 rows an invoice; + the newest invoice's, read again
    ],
)
def test_backlog_bench_decides_and_pays_only_what_changed(
    workflow, waiting_rows, idle_rows, changed_rows
):
    out = run_bench("backlog", "--orders", "200", "--only", workflow, "--rate-limit", "500")
    assert row(out, "idle: rows decided") == f"{waiting_rows} / {idle_rows}"
    assert row(out, "idle: provider (Stripe) calls") == "0 / 0"
    assert row(out, "idle: paid (Stripe objects made)") == "0 / 0"
    assert row(out, "1 % changed: rows decided").endswith(f"/ {changed_rows}")
    assert row(out, "1 % changed: paid (Stripe objects made)") == "2 / 2"  # both columns


def test_reconciliation_bench_reads_in_bulk_and_finds_every_tampered_row():
    out = run_bench("reconciliation", "--orders", "150", "--tamper", "2", "--rate-limit", "500")
    assert row(out, "MATCHED (clean run)") == "150"
    assert row(out, "mismatches (clean run)") == "0"
    assert row(out, "Stripe calls for one object (GET /v1/x/{id})") == "0"
    assert int(row(out, "Stripe calls (transfer list pages)")) <= 3
    assert int(row(out, "Mirakl calls (OR11 by 100 ids)")) <= 3
    assert row(out, "AMOUNT_MISMATCH found (Stripe + Mirakl)") == "6"  # 3 rows, both sides
