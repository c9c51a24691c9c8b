"""Issue 16 pt 2: documents Hyperwallet marks INVALID are deleted from Mirakl, through the DAG.

The ``hyperwallet_kyc_status`` DAG applies a user verification notification whose
``documents[]`` lists an INVALID proof of identity: the Mirakl copy (S30) uploaded before the
Hyperwallet document is deleted (S33) so the seller is asked again; a copy uploaded after it (a
re-upload), a VALID document and another shop's document stay (as the PayPal
connector does).
"""

from __future__ import annotations

import pytest

from tests.integration.hyperwallet_payments.test_hyperwallet_payment_dags import (
    dag_env as dag_env,  # the fixture: connections, Variable and ledger of the DAG runs
)
from tests.integration.hyperwallet_payments.test_hyperwallet_payment_dags import run_dag

pytestmark = [pytest.mark.airflow, pytest.mark.slow]


def document(doc_id: int, shop_id: int, doc_type: str, uploaded: str) -> dict:
    return {"id": doc_id, "shop_id": shop_id, "type": doc_type, "file_name": f"{doc_type}.jpg",
            "date_uploaded": uploaded, "date_deleted": None}  # fmt: skip


def notify_and_run(hw, sandbox, hw_admin, ledger, documents):
    """Hyperwallet notifies verification REQUIRED with ``documents``; the KYC DAG runs."""
    sent = hw_admin.set_user_status(
        "usr-seller", verificationStatus="REQUIRED", documents=documents
    )
    hw.store(ledger, sent["notification"])
    sandbox.clear_mirakl_calls()
    return run_dag("hyperwallet_notifications.py", "hyperwallet_kyc_status")


def test_invalid_document_is_removed_from_mirakl_once(hw, sandbox, hw_admin, dag_env):
    scenario = hw.scenario(shops=[hw.shop(), hw.shop(2002)])
    scenario["mirakl"]["shop_documents"] = [
        document(11, 2001, "hw-ind-proof-identity-front", "2026-11-01T09:00:00Z"),
        document(12, 2001, "hw-ind-proof-identity-back", "2026-11-10T12:00:00Z"),  # re-uploaded
        document(13, 2001, "hw-ind-proof-address", "2026-11-01T09:00:00Z"),
        document(14, 2002, "hw-ind-proof-identity-front", "2026-11-01T09:00:00Z"),
    ]
    sandbox.reset(scenario)
    documents = [
        {"category": "IDENTIFICATION", "type": "PASSPORT", "status": "INVALID",
         "createdOn": "2026-11-10T10:00:00",
         "reasons": [{"name": "DOCUMENT_CORRECTION_REQUIRED", "description": "Blurred"}]},
        {"category": "ADDRESS", "type": "UTILITY_BILL", "status": "VALID",
         "createdOn": "2026-11-10T10:00:00"},
    ]  # fmt: skip
    run, report = notify_and_run(hw, sandbox, hw_admin, dag_env, documents)

    assert run.state == "success"
    assert report["steps"]["process_notifications"] == {"PROCESSED": 1}
    left = {d["id"] for d in sandbox.state()["mirakl"]["shop_documents"]}
    assert left == {12, 13, 14}
    deletes = [c for c in sandbox.mirakl_calls() if c["endpoint"] == "S33"]
    assert [c["path"] for c in deletes] == ["/api/shops/documents/11"]
    shop = next(s for s in sandbox.state()["mirakl"]["shops"] if s["shop_id"] == 2001)
    assert shop["kyc"]["status"] == "REFUSED"

    # The same notification sent again (a newer one, same documents): nothing left to delete.
    run, report = notify_and_run(hw, sandbox, hw_admin, dag_env, documents)
    assert run.state == "success"
    assert [c for c in sandbox.mirakl_calls() if c["endpoint"] == "S33"] == []
    assert {d["id"] for d in sandbox.state()["mirakl"]["shop_documents"]} == {12, 13, 14}
