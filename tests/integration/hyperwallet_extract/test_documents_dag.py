"""Issue 16 pt 2: the documents sellers upload in Mirakl reach Hyperwallet, through the DAG.

``hyperwallet_documents_extract`` against the sandbox: shops Hyperwallet asked for documents
(``hw-kyc-req-proof-identity-business``) get the files of their selected types (S30 list, S31
download) uploaded to their user (multipart ``PUT /users/{token}``), the flag cleared (S07); a
rerun uploads nothing; a missing file skips the shop, a bad selection fails it with the reason
(as the PayPal connector's ``DocumentsExtractJob``).
"""

from __future__ import annotations

import base64

import pytest

from tests.integration.hyperwallet_extract.test_extract_dags import (
    airflow_env as airflow_env,  # the fixture: connections and Variable of the DAG runs
)
from tests.integration.hyperwallet_extract.test_extract_dags import run_dag

pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.usefixtures("airflow_env")]

DAG = "hyperwallet_documents_extract"
TASKS = ["extract_documents", "report"]


def doc(doc_id: int, shop_id: int, doc_type: str, content: bytes = b"%PDF-1.4 scan") -> dict:
    return {"id": doc_id, "shop_id": shop_id, "type": doc_type, "file_name": f"{doc_type}.pdf",
            "date_uploaded": "2026-11-20T09:00:00Z", "date_deleted": None,
            "content": base64.b64encode(content).decode()}  # fmt: skip


def individual(shop_factory, shop_id: int, identity: str = "PASSPORT", **fields):
    return shop_factory(shop_id, fields={
        "hw-user-token": f"usr-{shop_id}", "hw-kyc-req-proof-identity-business": "true",
        "hw-ind-proof-identity-type": identity, "hw-ind-proof-identity-country": "ESP",
        "hw-ind-proof-address-type": "UTILITY_BILL", **fields,
    })  # fmt: skip


def test_seller_documents_go_to_hyperwallet_once(sandbox, hw_admin, shop_factory, shop_fields):
    business = shop_factory(2, professional=True, fields={
        "hw-user-token": "usr-2", "hw-kyc-req-proof-identity-business": "true",
        "hw-prof-proof-business-type": "INCORPORATION"})  # fmt: skip
    sandbox.put_shops([
        individual(shop_factory, 1), business, individual(shop_factory, 3),
        individual(shop_factory, 4, identity="SELFIE"),
        individual(shop_factory, 5, **{"hw-kyc-req-proof-identity-business": "false"}),
    ])  # fmt: skip
    hw_admin.load({"users": [
        {"token": f"usr-{i}", "clientUserId": str(i), "programToken": "prg-users-eu",
         "profileType": "BUSINESS" if i == 2 else "INDIVIDUAL"} for i in range(1, 6)
    ]})  # fmt: skip
    sandbox.load({"mirakl": {"shop_documents": [
        doc(101, 1, "hw-ind-proof-identity-front", b"passport scan"),
        doc(100, 1, "hw-ind-proof-address", b"old bill"),
        doc(102, 1, "hw-ind-proof-address", b"utility bill")
        | {"date_uploaded": "2026-11-21T09:00:00Z"},
        doc(201, 2, "hw-prof-proof-business-front", b"incorporation"),
        doc(301, 3, "hw-ind-proof-identity-front"),  # no proof of address yet
        doc(401, 4, "hw-ind-proof-identity-front"), doc(402, 4, "hw-ind-proof-address"),
    ]}})  # fmt: skip

    run, xcoms = run_dag(DAG, TASKS)

    summary = xcoms["extract_documents"]
    assert run.state == "failed"  # shop 4 failed: the report turns the run red
    assert summary["counts"] == {"UPLOADED": 2, "SKIPPED_MISSING_DOCUMENTS": 1, "FAILED": 1,
                                 "SKIPPED_NOT_REQUESTED": 1}  # fmt: skip
    assert summary["failed"] == [{"id": "4", "reason": "invalid data: hw-ind-proof-identity-type "
                                  "'SELFIE' is not one of GOVERNMENT_ID, DRIVERS_LICENSE, "
                                  "PASSPORT"}]  # fmt: skip
    users = {u["token"]: u for u in hw_admin.users()}
    assert [
        (d["category"], d["type"], d.get("country"), d["status"])
        for d in users["usr-1"]["documents"]
    ] == [("IDENTIFICATION", "PASSPORT", "ES", "NEW"), ("ADDRESS", "UTILITY_BILL", None, "NEW")]
    assert [(d["category"], d["type"]) for d in users["usr-2"]["documents"]] == [
        ("BUSINESS", "INCORPORATION")]  # fmt: skip
    assert users["usr-2"]["businessStakeholderVerificationStatus"] == "READY_FOR_REVIEW"
    assert all("documents" not in users[f"usr-{i}"] for i in (3, 4, 5))
    uploads = [c for c in hw_admin.calls(method="PUT") if c.get("files")]
    # the newest proof of address (#102) is the one sent, whole
    assert {c["path"]: c["files"] for c in uploads} == {
        "/rest/v4/users/usr-1": {"passport_front": len(b"passport scan"),
                                 "utility_bill_front": len(b"utility bill")},
        "/rest/v4/users/usr-2": {"incorporation_front": len(b"incorporation")},
    }  # fmt: skip
    flags = {s["shop_id"]: shop_fields(s).get("hw-kyc-req-proof-identity-business")
             for s in sandbox.shops()}  # fmt: skip
    assert flags == {1: "false", 2: "false", 3: "true", 4: "true", 5: "false"}

    # Rerun over the same window: the uploaded shops are no longer asked; nothing is sent again.
    hw_admin.clear_calls()
    run, xcoms = run_dag(DAG, TASKS, shop_ids=["1", "2"])
    assert run.state == "success"
    assert xcoms["extract_documents"]["counts"] == {"SKIPPED_NOT_REQUESTED": 2}
    assert [c for c in hw_admin.calls(method="PUT") if c.get("files")] == []
    users = {u["token"]: u for u in hw_admin.users()}
    assert (len(users["usr-1"]["documents"]), len(users["usr-2"]["documents"])) == (2, 1)


def test_dry_run_uploads_nothing(sandbox, hw_admin, shop_factory, shop_fields):
    sandbox.put_shops([individual(shop_factory, 1, identity="DRIVERS_LICENSE")])
    hw_admin.load(
        {
            "users": [
                {
                    "token": "usr-1",
                    "clientUserId": "1",
                    "programToken": "prg-users-eu",
                    "profileType": "INDIVIDUAL",
                }
            ]
        }
    )
    sandbox.load({"mirakl": {"shop_documents": [
        doc(1, 1, "hw-ind-proof-identity-front"), doc(2, 1, "hw-ind-proof-identity-back"),
        doc(3, 1, "hw-ind-proof-address")]}})  # fmt: skip

    run, xcoms = run_dag(DAG, TASKS, dry_run=True)

    assert run.state == "success"
    assert xcoms["extract_documents"]["counts"] == {"WOULD_UPLOAD": 1}
    assert [c for c in hw_admin.calls(method="PUT")] == []
    assert shop_fields(sandbox.shops()[0])["hw-kyc-req-proof-identity-business"] == "true"


def test_stakeholder_documents_go_to_their_stakeholder(sandbox, hw_admin, shop_factory,
                                                        shop_fields):  # fmt: skip
    stakeholder = {"hw-stakeholder-token-1": "stk-1", "hw-stakeholder-first-name-1": "Angela",
                   "hw-stakeholder-req-proof-identity-1": "true",
                   "hw-stakeholder-proof-identity-type-1": "GOVERNMENT_ID",
                   "hw-stakeholder-proof-identity-ctry-1": "ESP"}  # fmt: skip
    waiting = {**stakeholder, "hw-stakeholder-proof-identity-type-1": None}
    sandbox.put_shops([
        shop_factory(2, professional=True, fields={"hw-user-token": "usr-2", **stakeholder}),
        shop_factory(3, professional=True, fields={"hw-user-token": "usr-3", **waiting}),
    ])  # fmt: skip
    hw_admin.load({
        "users": [{"token": t, "clientUserId": t[-1], "programToken": "prg-users-eu",
                   "profileType": "BUSINESS"} for t in ("usr-2", "usr-3")],
        "stakeholders": [{"token": "stk-1", "userToken": "usr-2", "firstName": "Angela"}],
    })  # fmt: skip
    sandbox.load({"mirakl": {"shop_documents": [
        doc(21, 2, "hw-bsh1-proof-identity-front", b"id front"),
        doc(22, 2, "hw-bsh1-proof-identity-back", b"id back"),
        doc(31, 3, "hw-bsh1-proof-identity-front"),
    ]}})  # fmt: skip

    run, xcoms = run_dag(DAG, TASKS)

    assert run.state == "success"
    summary = xcoms["extract_documents"]
    assert summary["counts"] == {"UPLOADED": 1, "SKIPPED_NO_SELECTION": 1}
    stk = hw_admin.state()["stakeholders"][0]
    assert [(d["category"], d["type"], d["country"], d["status"]) for d in stk["documents"]] == [
        ("IDENTIFICATION", "GOVERNMENT_ID", "ES", "NEW")]  # fmt: skip
    uploads = [c for c in hw_admin.calls(method="PUT") if c.get("files")]
    assert [(c["path"], c["files"]) for c in uploads] == [(
        "/rest/v4/users/usr-2/business-stakeholders/stk-1",
        {"government_id_front": len(b"id front"), "government_id_back": len(b"id back")},
    )]  # fmt: skip
    users = {u["token"]: u for u in hw_admin.users()}
    assert users["usr-2"]["businessStakeholderVerificationStatus"] == "READY_FOR_REVIEW"
    assert "businessStakeholderVerificationStatus" not in users["usr-3"]
    fields = {s["shop_id"]: shop_fields(s) for s in sandbox.shops()}
    assert fields[2]["hw-stakeholder-req-proof-identity-1"] == "false"
    assert fields[3]["hw-stakeholder-req-proof-identity-1"] == "true"
