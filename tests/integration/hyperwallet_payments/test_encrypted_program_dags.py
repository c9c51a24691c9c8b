"""The same Hyperwallet DAG run for a plain program and one with payload encryption turned on.

Invoice payments through ``hyperwallet_invoice_payments``, the payment notification delivered by
the simulator to the real webhook app, then ``hyperwallet_payment_status`` marking the invoice
paid in Mirakl. With encryption every API body and the notification travel as
``application/jose+json`` (JWS inside JWE); the simulator refuses plain JSON for such a program,
so the run can only succeed when the connector encrypts and decrypts everywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mirakl_connector.hyperwallet.encryption import (
    encryption_from_extra,
    generate_key_set,
    public_key_set,
)
from mirakl_connector.ledger import HyperwalletPaymentStatus, Ledger

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

DAGS = Path(__file__).resolve().parents[3] / "dags"


@pytest.fixture(scope="module")
def our_keys() -> dict[str, Any]:
    """Our JWK set: one RSA pair published for signing (RS256) and for decrypting."""
    return generate_key_set("connector")


def run_dag(file: str, dag_id: str) -> tuple[Any, dict]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / file))
    assert bag.import_errors == {}
    run = bag.dags[dag_id].test(logical_date=None)
    return run, run.get_task_instance("report").xcom_pull(task_ids="report")


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_invoice_paid_and_confirmed_by_notification(
    encrypted, our_keys, hw, sandbox, hw_admin, sandbox_server, tmp_path, monkeypatch, airflow_db
):
    extra: dict[str, Any] = {}
    if encrypted:
        extra = {
            "encryption": True,
            "private_jwks": our_keys,
            "hyperwallet_jwks_url": f"{sandbox_server.url}/jwkset",
        }
    ledger_url = Ledger.default_sqlite_url(tmp_path)
    hw.dag_connections(monkeypatch, sandbox_server.url, ledger_url, extra)
    scenario = hw.scenario(shops=[hw.shop()], invoices=[hw.invoice(230201)])
    if encrypted:
        scenario["hyperwallet"]["encryption"] = {"client_jwks": public_key_set(our_keys)}
    sandbox.reset(scenario)
    ledger = Ledger(ledger_url)
    encryption = encryption_from_extra(extra, where="test") if encrypted else None
    try:
        with hw.serve_webhooks(ledger, encryption) as url:
            hw_admin.set_webhooks(url)

            run, report = run_dag("hyperwallet_invoice_payments.py", "hyperwallet_invoice_payments")
            assert run.state == "success"
            assert report["steps"]["pay_invoices"]["PAID"] == 2
            payments = hw_admin.payments()
            assert sorted((p["clientPaymentId"], p["amount"]) for p in payments) == [
                ("230201", "4545.20"),
                ("230201-operatorFee", "955.69"),
            ]
            creates = hw_admin.calls(path="/rest/v4/payments", method="POST")
            assert [c["status"] for c in creates] == [201, 201]
            assert all(c["encrypted"] is encrypted for c in hw_admin.calls())
            assert all(c["status"] < 400 for c in hw_admin.calls())

            seller = next(p for p in payments if p["clientPaymentId"] == "230201")
            delivered = hw_admin.set_payment_status(seller["token"], "COMPLETED")["deliveries"]
            assert [d.get("status") for d in delivered] == [200]

            run, report = run_dag("hyperwallet_notifications.py", "hyperwallet_payment_status")
            assert run.state == "success"
            assert report["steps"]["process_notifications"] == {"PROCESSED": 1}
            assert sandbox.state()["mirakl"]["invoices"][0]["payment"]["state"] == "PAID"
            row = ledger.get_hyperwallet_payment("230201")
            assert row.status == HyperwalletPaymentStatus.COMPLETED and row.confirmed_at
            assert len(hw_admin.payments()) == 2
    finally:
        ledger.dispose()
