"""Cutover from the Mirakl-Hyperwallet connector against the sandbox.

The incumbent paid invoice 7001 (seller and commission, COMPLETED, but Mirakl was never told),
7002 (seller payment still in flight) and 7004 (COMPLETED and PAID in Mirakl); 7003 it never
paid; a payment of 7005 was RETURNED. After the cutover our invoice payments pay 7003 (and
re-pay 7005, as the incumbent would), and never 7001, 7002 or 7004 again.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mirakl_connector.cutover.hyperwallet_connector import HyperwalletCutover, last_job_starts
from mirakl_connector.hyperwallet.invoice_payments import (
    HyperwalletInvoicePayments,
    HyperwalletPaymentSettings,
)
from mirakl_connector.hyperwallet.programs import HyperwalletSettings
from mirakl_connector.ledger import HyperwalletPaymentStatus, Ledger
from mirakl_connector.ledger.claims import ClaimKind, find_claims
from mirakl_connector.operations.first_run import GoLive

S = HyperwalletPaymentStatus
DAGS = Path(__file__).resolve().parents[3] / "dags"
JOB_AUDIT = [  # as the incumbent's GET /batchjob-audit/ lists its runs
    {"batchJobId": "a1", "batchJobType": "InvoicesExtractBatchJob",
     "startTime": "2026-11-20T00:00:01", "finishTime": "2026-11-20T00:00:09", "status": "FINISHED"},
    {"batchJobId": "a2", "batchJobType": "InvoicesExtractBatchJob",
     "startTime": "2026-11-21T00:00:01", "finishTime": None, "status": "RUNNING"},
    {"batchJobId": "b1", "batchJobType": "IndividualSellersExtractBatchJob",
     "startTime": "2026-11-21T10:00:00", "status": "FINISHED_WITH_FAILURES"},
    {"batchJobId": "b2", "batchJobType": "ProfessionalSellersExtractBatchJob",
     "startTime": "2026-11-21T09:00:00", "status": "FINISHED"},
    {"batchJobId": "c1", "batchJobType": "NotificationProcessJob",
     "startTime": "2026-11-21T09:00:00", "status": "FINISHED"},
]  # fmt: skip


def _incumbent_pays(hyperwallet, hw_admin, client_payment_id, amount, destination, status=None):
    created = hyperwallet.create_payment(
        {
            "clientPaymentId": client_payment_id,
            "amount": amount,
            "currency": "EUR",
            "destinationToken": destination,
            "programToken": "prg-pay",
            "purpose": "OTHER",
        }
    )
    if status:
        hw_admin.set_payment_status(created["token"], status)
    return created["token"]


def test_hyperwallet_cutover_imports_payments_sets_windows_and_lists_paid_but_unpaid(
    hw, sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger: Ledger
):
    ledger = workflow_ledger
    sandbox.reset(
        hw.scenario(
            shops=[
                hw.shop(),
                hw.shop(2002, bank_token=None, shop_name="No bank yet"),
                hw.shop(2003, program="ASIA"),
                {"shop_id": 2004, "shop_name": "Stripe shop", "shop_additional_fields": []},
            ],
            invoices=[
                hw.invoice(7001),
                hw.invoice(7002),
                hw.invoice(7003),
                hw.invoice(7004, payment_status="PAID"),
                hw.invoice(7005),
            ],
        )
    )
    paid = _incumbent_pays(hyperwallet, hw_admin, "7001", "4545.20", "trm-seller", "COMPLETED")
    _incumbent_pays(
        hyperwallet, hw_admin, "7001-operatorFee", "955.69", "trm-operator", "COMPLETED"
    )
    in_flight = _incumbent_pays(hyperwallet, hw_admin, "7002", "4545.20", "trm-seller")
    _incumbent_pays(hyperwallet, hw_admin, "7002-operatorFee", "955.69", "trm-operator")
    _incumbent_pays(hyperwallet, hw_admin, "7004", "4545.20", "trm-seller", "COMPLETED")
    _incumbent_pays(
        hyperwallet, hw_admin, "7004-operatorFee", "955.69", "trm-operator", "COMPLETED"
    )
    _incumbent_pays(hyperwallet, hw_admin, "7005", "4545.20", "trm-seller", "RETURNED")
    _incumbent_pays(
        hyperwallet, hw_admin, "7005-operatorFee", "955.69", "trm-operator", "COMPLETED"
    )
    made_by_incumbent = len(hw_admin.payments())

    cutover = HyperwalletCutover(
        mirakl=mirakl,
        hyperwallet=hyperwallet,
        ledger=ledger,
        settings=HyperwalletSettings.from_config(hw.config),
        payments=HyperwalletPaymentSettings(),
        run_id="cutover",
    )
    since = datetime.now(UTC) - timedelta(days=7)

    dry = cutover.run(job_dates=JOB_AUDIT, since=since).to_dict()
    assert dry["dry_run"] is True
    assert ledger.get_hyperwallet_payment("7001") is None
    assert ledger.get_checkpoint("hyperwallet_invoice_payments_window_start") is None

    first = cutover.run(dry_run=False, job_dates=JOB_AUDIT, since=since).to_dict()
    assert (
        first["counts"]
        == dry["counts"]
        == {
            "CHECKPOINT_IMPORTED": 2,
            "CHECKPOINT_NOT_SET": 1,  # no BankAccountExtractBatchJob run given
            "SHOP_TOKENS_OK": 1,
            "SHOP_TOKENS_MISSING": 1,  # 2002: no hw-bankaccount-token
            "SHOP_PROGRAM_UNKNOWN": 1,  # 2003: program ASIA is not configured
            "PAYMENT_IMPORTED": 8,
            "PAID_AT_HYPERWALLET_UNPAID_IN_MIRAKL": 1,  # 7001
            "IN_FLIGHT_AT_HYPERWALLET": 1,  # 7002
            "DOCUMENT_NOT_PAID_YET": 1,  # 7003
        }
    )
    failed = {f["id"]: f["reason"] for f in first["failed"]}
    assert set(failed) == {"shop 2003", "IV01 7001"}
    assert paid in failed["IV01 7001"] and "IV07" in failed["IV01 7001"]
    assert first["amounts"]["PAYMENT_IMPORTED"] == {"EUR": "22003.56"}  # 4 x 4545.20 + 4 x 955.69

    # The windows: the newest finished run; for sellers the earlier of the two seller jobs.
    assert ledger.get_checkpoint("hyperwallet_invoice_payments_window_start") == (
        "2026-11-20T00:00:01+00:00"
    )
    assert ledger.get_checkpoint("hyperwallet_seller_extract_window_start") == (
        "2026-11-21T09:00:00+00:00"
    )
    row = ledger.get_hyperwallet_payment("7001")
    assert (row.status, row.payment_token, row.amount, row.confirmed_at) == (
        S.COMPLETED,
        paid,
        454520,
        None,
    )
    assert ledger.get_hyperwallet_payment("7002").payment_token == in_flight
    assert ledger.get_hyperwallet_payment("7004").confirmed_at is not None  # PAID in Mirakl
    assert ledger.get_hyperwallet_payment("7005").status is S.FAILED
    assert ledger.imported_ids("hyperwallet_payment", ["7001"]) == {
        "7001": ("hyperwallet-mirakl-connector", paid)
    }

    second = cutover.run(dry_run=False, job_dates=JOB_AUDIT, since=since).to_dict()
    assert second["counts"]["PAYMENT_UNCHANGED"] == 8
    assert "PAYMENT_IMPORTED" not in second["counts"]
    assert second["counts"]["CHECKPOINT_UNCHANGED"] == 2
    # What the incumbent paid (or tried to) is Hyperwallet's for good: no Stripe rule can pay it.
    claims = find_claims(ledger, ClaimKind.INVOICE, ["7001", "7002", "7003", "7004", "7005"])
    assert sorted(claims) == ["7001", "7002", "7004", "7005"]
    assert {(c.provider, c.origin) for c in claims.values()} == {("hyperwallet", "import")}

    # Our invoice payments, first run after the cutover (the window covers every invoice).
    job = HyperwalletInvoicePayments(
        mirakl=mirakl,
        hyperwallet=hyperwallet,
        ledger=ledger,
        settings=HyperwalletSettings.from_config(hw.config),
        payments=HyperwalletPaymentSettings(),
        email_to=["payments-ops@example.com"],
        run_id="after-cutover",
    )
    job.pay(since=since)
    new = hw_admin.payments()[made_by_incumbent:]
    assert sorted(p["clientPaymentId"] for p in new) == ["7003", "7003-operatorFee", "7005"]


def test_job_dates_are_read_from_a_mapping_or_the_audit_list():
    assert last_job_starts({"InvoicesExtractBatchJob": "2026-11-20T01:00:00+01:00"}) == {
        "InvoicesExtractBatchJob": datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
    }
    starts = last_job_starts(JOB_AUDIT)
    assert starts["InvoicesExtractBatchJob"] == datetime(2026, 11, 20, 0, 0, 1, tzinfo=UTC)
    assert "NotificationProcessJob" in starts


@pytest.mark.airflow
@pytest.mark.slow
def test_the_cutover_dag_is_a_dry_run_by_default_then_imports_once(
    hw, sandbox, hw_admin, hyperwallet, sandbox_server, tmp_path, monkeypatch, airflow_db
):
    from airflow.dag_processing.dagbag import DagBag

    ledger_url = Ledger.default_sqlite_url(tmp_path)
    conns = {
        "MIRAKL_DEFAULT": {
            "conn_type": "mirakl",
            "host": sandbox_server.url,
            "password": "sandbox-mirakl-key",
        },
        "HYPERWALLET_DEFAULT": {
            "conn_type": "hyperwallet",
            "host": sandbox_server.url,
            "login": "sandbox-hw-user",
            "password": "sandbox-hw-password",
        },
        "MIRAKL_CONNECTOR_DB": {"conn_type": "sqlite", "extra": {"sqlalchemy_url": ledger_url}},
    }
    for name, conn in conns.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{name}", json.dumps(conn))
    monkeypatch.setenv("AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG", json.dumps(hw.config))
    sandbox.reset(hw.scenario(shops=[hw.shop()], invoices=[hw.invoice(7101), hw.invoice(7102)]))
    token = _incumbent_pays(hyperwallet, hw_admin, "7101", "4545.20", "trm-seller")
    _incumbent_pays(hyperwallet, hw_admin, "7101-operatorFee", "955.69", "trm-operator")

    def run(**conf):
        bag = DagBag(dag_folder=str(DAGS / "connector_cutover_hyperwallet.py"))
        assert bag.import_errors == {}
        dag_run = bag.dags["connector_cutover_hyperwallet"].test(
            run_conf=conf or None, logical_date=None
        )
        return dag_run.state, dag_run.get_task_instance("report").xcom_pull(
            task_ids="import_history"
        )

    state, dry = run(job_dates={"InvoicesExtractBatchJob": "2026-11-20T00:00:01"})
    assert (state, dry["dry_run"]) == ("success", True)
    assert dry["counts"]["PAYMENT_IMPORTED"] == 2
    with Ledger(ledger_url) as ledger:
        assert ledger.get_hyperwallet_payment("7101") is None

    jobs = {"InvoicesExtractBatchJob": "2026-11-20T00:00:01"}
    state, first = run(dry_run=False, job_dates=jobs)
    assert state == "success"
    assert first["counts"]["PAYMENT_IMPORTED"] == 2
    assert first["counts"]["IN_FLIGHT_AT_HYPERWALLET"] == 1
    assert first["counts"]["DOCUMENT_NOT_PAID_YET"] == 1  # 7102
    state, second = run(dry_run=False, job_dates=jobs)
    assert second["counts"]["PAYMENT_UNCHANGED"] == 2
    with Ledger(ledger_url) as ledger:
        assert ledger.get_hyperwallet_payment("7101").payment_token == token
        assert ledger.get_checkpoint("hyperwallet_invoice_payments_window_start") == (
            "2026-11-20T00:00:01+00:00"
        )


def test_sbc11_billing_cycles_paid_by_the_incumbent_are_found_by_their_id(
    hw, sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger: Ledger
):
    created = hw.invoice(1)["date_created"]

    def cycle(cycle_id: str, state: str) -> dict:
        return {
            "id": cycle_id,
            "date_created": created,
            "currency_iso_code": "EUR",
            "amount_transferred_to_seller": 100.5,
            "amount_transferred_to_operator": 1.25,
            "pay_out": {"state": state},
            "shop": {"shop_id": 2001},
        }

    paid_unconfirmed = "98665be1-ce69-4ab6-8d93-b8dfd3e67404"
    confirmed = "0b7e6c1a-2f52-4c1e-9a53-5d1b1f1e2a10"
    never_paid = "5f3c2d1e-0a9b-4c8d-9e7f-6a5b4c3d2e1f"
    sandbox.reset(
        hw.scenario(
            shops=[hw.shop()],
            billing_cycles=[
                cycle(paid_unconfirmed, "TO_PAY"),
                cycle(confirmed, "PAID"),
                cycle(never_paid, "TO_PAY"),
            ],
        )
    )
    token = _incumbent_pays(
        hyperwallet, hw_admin, paid_unconfirmed, "100.50", "trm-seller", "COMPLETED"
    )
    _incumbent_pays(hyperwallet, hw_admin, confirmed, "100.50", "trm-seller", "COMPLETED")
    made_by_incumbent = len(hw_admin.payments())
    settings = HyperwalletPaymentSettings(invoice_source="SBC11", operator_commissions=False)
    cutover = HyperwalletCutover(
        mirakl=mirakl,
        hyperwallet=hyperwallet,
        ledger=workflow_ledger,
        settings=HyperwalletSettings.from_config(hw.config),
        payments=settings,
    )

    summary = cutover.run(dry_run=False, since=datetime.now(UTC) - timedelta(days=7)).to_dict()

    assert summary["counts"]["PAYMENT_IMPORTED"] == 2
    assert summary["counts"]["DOCUMENT_NOT_PAID_YET"] == 1
    [failure] = summary["failed"]
    assert failure["id"] == f"SBC11 {paid_unconfirmed}"
    assert token in failure["reason"] and "SBC07" in failure["reason"]
    row = workflow_ledger.get_hyperwallet_payment(paid_unconfirmed)
    assert (row.invoice_source, row.status, row.payment_token) == ("SBC11", S.COMPLETED, token)

    HyperwalletInvoicePayments(
        mirakl=mirakl,
        hyperwallet=hyperwallet,
        ledger=workflow_ledger,
        settings=HyperwalletSettings.from_config(hw.config),
        payments=settings,
        email_to=["payments-ops@example.com"],
        run_id="after-cutover",
        # a first run (the import above had a since: no window checkpoint): every cycle is read,
        # what the incumbent paid is found by its id
        go_live=GoLive(datetime(2000, 1, 1, tzinfo=UTC)),
    ).pay(since=datetime.now(UTC) - timedelta(days=7))
    new = hw_admin.payments()[made_by_incumbent:]
    assert [p["clientPaymentId"] for p in new] == [never_paid]
