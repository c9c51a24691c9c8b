"""The Hyperwallet simulator (/rest/v4) and the Mirakl IV07/SBC11/SBC07 additions, driven by the
real clients: what the connector relies on when it talks to them."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from mirakl_sandbox.hyperwallet_admin import (
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
    HyperwalletSandboxAdmin,
)

from mirakl_connector.core.errors import MiraklClientError
from mirakl_connector.core.retry import RetryPolicy
from mirakl_connector.hyperwallet.client import HyperwalletClient
from mirakl_connector.hyperwallet.errors import HyperwalletClientError
from mirakl_connector.mirakl.client import MiraklClient

MIRAKL_KEY = "test-mirakl-key"  # conftest.base_scenario
ES_IBAN = "ES3920956580417064096726"


@pytest.fixture
def hw(sandbox, admin) -> HyperwalletClient:
    return HyperwalletClient(
        sandbox.url, DEFAULT_USERNAME, DEFAULT_PASSWORD, retry=RetryPolicy.no_wait(2), page_size=2
    )


@pytest.fixture
def hw_admin(sandbox, admin):
    client = HyperwalletSandboxAdmin(sandbox.url)
    yield client
    client.close()


@pytest.fixture
def receiver():
    """A tiny HTTP endpoint that records the JSON bodies POSTed to it."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server API
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/webhooks/hyperwallet/s3cret", received
    server.shutdown()


def new_user(hw, client_user_id="2001", program="prg-users"):
    return hw.create_user(
        {"clientUserId": client_user_id, "profileType": "INDIVIDUAL", "programToken": program,
         "firstName": "Fake", "lastName": "Name", "email": "f@example.com",
         "addressLine1": "30 King Street", "city": "Valencia", "country": "ES"}
    )  # fmt: skip


def iban_account(hw, user, iban=ES_IBAN, country="ES", currency="EUR"):
    return hw.create_bank_account(
        user["token"],
        {"type": "BANK_ACCOUNT", "transferMethodCountry": country,
         "transferMethodCurrency": currency, "bankAccountId": iban, "bankId": "CAIXESBBXXX"},
    )  # fmt: skip


def test_basic_auth_is_required(sandbox, admin):
    wrong = HyperwalletClient(sandbox.url, DEFAULT_USERNAME, "nope", retry=RetryPolicy.no_wait(1))
    with pytest.raises(HyperwalletClientError, match="HTTP 401"):
        wrong.get_program("prg-1")


def test_users_unique_per_program_and_listed_with_cursor_links(hw):
    tokens = [new_user(hw, str(i))["token"] for i in range(5)]
    assert tokens[0].startswith("usr-")
    with pytest.raises(HyperwalletClientError) as caught:
        new_user(hw, "3")
    assert caught.value.codes == ["DUPLICATE_CLIENT_USER_ID"]
    assert new_user(hw, "3", program="prg-other")["clientUserId"] == "3"  # another program
    assert [u["token"] for u in hw.iter_users(program_token="prg-users")] == tokens  # 3 pages
    assert hw.find_user("4", "prg-users")["token"] == tokens[4]
    assert hw.find_user("404", "prg-users") is None  # 204: empty list


def test_bank_accounts_masked_supported_combinations_and_immutable_country(hw):
    user = new_user(hw)
    account = iban_account(hw, user)
    assert account["bankAccountId"] == "****6726" and account["status"] == "ACTIVATED"
    assert [a["token"] for a in hw.iter_bank_accounts(user["token"])] == [account["token"]]
    with pytest.raises(HyperwalletClientError) as caught:
        iban_account(hw, user)  # the same account twice
    assert caught.value.codes == ["DUPLICATE_EXTERNAL_ACCOUNT_CREATION"]
    with pytest.raises(HyperwalletClientError) as caught:
        hw.create_bank_account(
            user["token"],
            {"type": "BANK_ACCOUNT", "transferMethodCountry": "US", "transferMethodCurrency": "CAD",
             "bankAccountId": "000123456789", "branchId": "021000021"},
        )  # fmt: skip
    assert caught.value.codes == ["EXTERNAL_ACCOUNT_TYPE_NOT_SUPPORTED"]
    with pytest.raises(HyperwalletClientError, match="transferMethodCountry cannot be changed"):
        hw.update_bank_account(user["token"], account["token"], {"transferMethodCountry": "IT"})
    updated = hw.update_bank_account(
        user["token"], account["token"], {"bankAccountId": "ES9121000418450200051332"}
    )
    assert updated["bankAccountId"] == "****1332"


def test_payments_unique_client_payment_id_unless_failed(hw, hw_admin):
    account = iban_account(hw, new_user(hw))
    body = {"clientPaymentId": "230201", "amount": "737.41", "currency": "EUR",
            "destinationToken": account["token"], "programToken": "prg-pay",
            "purpose": "OTHER"}  # fmt: skip
    first = hw.create_payment(body)
    assert (first["status"], first["amount"]) == ("CREATED", "737.41")
    with pytest.raises(HyperwalletClientError) as caught:
        hw.create_payment(body)
    assert caught.value.codes == ["DUPLICATE_CLIENT_PAYMENT_ID"]
    hw_admin.set_webhooks(None, hold=True)
    hw_admin.set_payment_status(first["token"], "FAILED")
    second = hw.create_payment(body)  # a failed payment may be made again
    assert [p["status"] for p in hw.find_payments("230201")] == ["FAILED", "CREATED"]
    assert second["token"] != first["token"]
    with pytest.raises(HyperwalletClientError, match="valid destinationToken"):
        hw.create_payment({**body, "clientPaymentId": "x", "destinationToken": "trm-nope"})
    with pytest.raises(HyperwalletClientError, match="valid amount"):
        hw.create_payment({**body, "clientPaymentId": "y", "amount": "-1"})


def test_notifications_delivered_duplicated_held_and_out_of_order(hw, hw_admin, receiver):
    url, received = receiver
    account = iban_account(hw, new_user(hw))
    payment = hw.create_payment(
        {"clientPaymentId": "1", "amount": "10.00", "currency": "EUR",
         "destinationToken": account["token"], "programToken": "prg-pay", "purpose": "OTHER"}
    )  # fmt: skip
    hw_admin.set_webhooks(url, duplicate=True)
    result = hw_admin.set_payment_status(payment["token"], "IN_PROGRESS")
    assert [d["status"] for d in result["deliveries"]] == [200, 200]
    assert [n["type"] for n in received] == ["PAYMENTS.UPDATED.STATUS.IN_PROGRESS"] * 2
    assert received[0]["token"] == received[1]["token"]  # the same notification twice
    assert received[0]["object"]["clientPaymentId"] == "1"
    notification = hw.get_webhook_notification(received[0]["token"])
    assert notification["object"]["status"] == "IN_PROGRESS"

    received.clear()
    hw_admin.set_webhooks(url, hold=True)
    hw_admin.set_payment_status(payment["token"], "COMPLETED", created_on="2026-11-20T10:00:02.000")
    hw_admin.set_user_status(account["userToken"], verificationStatus="REQUIRED")
    assert received == []
    assert hw_admin.flush(reverse=True)["delivered"] == 2
    assert [n["type"] for n in received] == [
        "USERS.UPDATED.VERIFICATION_STATUS.REQUIRED",
        "PAYMENTS.UPDATED.STATUS.COMPLETED",
    ]
    assert received[1]["createdOn"] == "2026-11-20T10:00:02.000"
    hw_admin.redeliver(received[1]["token"])
    assert received[2] == received[1]


def test_hyperwallet_faults_apply(sandbox, admin, hw):
    rule = {"target": "hyperwallet", "method": "GET", "path": "/rest/v4/programs/*",
            "times": 1, "action": "error"}  # fmt: skip
    admin.set_faults({"rules": [rule]})
    assert hw.get_program("prg-1")["token"] == "prg-1"  # the 500 was retried
    assert hw.call_counts["GET /programs/prg-1"] == 2


# -- Mirakl IV07 / SBC11 / SBC07 ---------------------------------------------------------------


@pytest.fixture
def mirakl(sandbox, admin) -> MiraklClient:
    return MiraklClient(sandbox.url, MIRAKL_KEY, retry=RetryPolicy.no_wait(2))


def invoice(invoice_id, amount, **extra):
    return {"invoice_id": invoice_id, "shop_id": 2001, "date_created": "2026-11-01T00:00:00Z",
            "currency_iso_code": "USD", "type": "AUTO_INVOICE", "state": "COMPLETE",
            "payment_status": "PENDING", "summary": {"amount_transferred": amount},
            **extra}  # fmt: skip


def test_iv07_confirms_an_invoice_and_checks_amount_and_linked_documents(admin, mirakl):
    admin.load({"mirakl": {"invoices": [
        invoice(230201, 737.41),
        invoice(230202, 100, linked_manual_documents=[{"invoice_id": 9, "amount": 20}]),
    ]}})  # fmt: skip
    doc = {"invoice_id": 230201, "amount": Decimal("737.41"), "currency_iso_code": "USD",
           "transaction_date": "2026-11-12T09:55:53Z",
           "confirm_all_linked_manual_documents": True}  # fmt: skip
    mirakl.confirm_invoice_payments([doc])
    mirakl.confirm_invoice_payments([doc])  # confirming again changes nothing
    with pytest.raises(MiraklClientError, match="amount is incorrect .* 230201"):
        mirakl.confirm_invoice_payments([{**doc, "amount": Decimal("1")}])
    linked = {**doc, "invoice_id": 230202, "amount": Decimal("100")}
    with pytest.raises(MiraklClientError, match="actual: 100, expected: 80"):
        mirakl.confirm_invoice_payments([{**linked, "confirm_all_linked_manual_documents": False}])
    mirakl.confirm_invoice_payments([linked])
    with pytest.raises(MiraklClientError, match="check the field datatype"):
        mirakl.confirm_invoice_payments([{**doc, "invoice_id": "230201"}])
    statuses = {i["invoice_id"]: i["payment"]["state"] for i in admin.invoices()}
    assert statuses == {230201: "PAID", 230202: "PAID"}
    assert [i["invoice_id"] for i in mirakl.iter_invoices()] == [230201, 230202]


def _cycle_id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def test_sbc11_lists_cycles_to_pay_with_seek_paging_and_sbc07_marks_them_paid(sandbox, admin):
    mirakl = MiraklClient(sandbox.url, MIRAKL_KEY, retry=RetryPolicy.no_wait(2), page_size=2)
    cycles = [
        {"id": _cycle_id(n), "date_created": f"2026-11-0{n}T00:00:00Z", "currency_iso_code": "EUR",
         "amount_transferred_to_seller": 10 + n, "amount_transferred_to_operator": 1,
         "pay_out": {"state": "PAID" if n == 5 else "TO_PAY"}, "shop": {"shop_id": 2000 + n}}
        for n in range(1, 6)
    ]  # fmt: skip
    HyperwalletSandboxAdmin(sandbox.url).put_billing_cycles(cycles)
    assert [c["id"] for c in mirakl.iter_billing_cycles()] == [_cycle_id(n) for n in range(1, 5)]
    since = [c["id"] for c in mirakl.iter_billing_cycles(start_date="2026-11-03T00:00:00Z")]
    assert since == [_cycle_id(3), _cycle_id(4)]
    assert len(list(mirakl.iter_billing_cycles(pay_out_states=None))) == 5
    paid = {"id": _cycle_id(1), "amount_transferred_to_seller": Decimal("11"),
            "currency_iso_code": "EUR", "transaction_date": "2026-11-12T00:00:00Z",
            "state": "PAID"}  # fmt: skip
    mirakl.confirm_billing_cycles([paid])
    with pytest.raises(MiraklClientError, match="amount is incorrect"):
        mirakl.confirm_billing_cycles(
            [{**paid, "id": _cycle_id(2), "amount_transferred_to_seller": Decimal("1")}]
        )
    assert [c["id"] for c in mirakl.iter_billing_cycles()] == [_cycle_id(n) for n in (2, 3, 4)]
    (first,) = [c for c in admin.state()["mirakl"]["billing_cycles"] if c["id"] == _cycle_id(1)]
    assert first["pay_out"] == {"state": "PAID", "transaction_date": "2026-11-12T00:00:00Z"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": "cycle-1"}, "Invalid seller billing cycle id"),
        ({"state": "TO_PAY"}, "Invalid state"),
        ({"transaction_date": None}, "transaction_date is required"),
        ({"amount_transferred_to_seller": None}, "amount_transferred_to_seller is required"),
        ({"failure_reason": "INCOMPLETE_KYC"}, "Invalid failure_reason"),
        ({"reference": "r" * 101}, "reference longer than 100"),
    ],
)
def test_sbc07_refuses_what_its_published_schema_does_not_allow(sandbox, admin, change, message):
    """SBC07_Request_SellerBillingCycles: required fields, the UUID id, state enum,
    transaction_date when PAID, failure_reason only when FAILED, reference ≤ 100."""
    mirakl = MiraklClient(sandbox.url, MIRAKL_KEY, retry=RetryPolicy.no_wait(2))
    HyperwalletSandboxAdmin(sandbox.url).put_billing_cycles(
        [{"id": _cycle_id(1), "date_created": "2026-11-01T00:00:00Z", "currency_iso_code": "EUR",
          "amount_transferred_to_seller": 11, "pay_out": {"state": "TO_PAY"},
          "shop": {"shop_id": 2001}}]
    )  # fmt: skip
    good = {"id": _cycle_id(1), "amount_transferred_to_seller": Decimal("11"), "state": "PAID",
            "transaction_date": "2026-11-12T00:00:00Z"}  # fmt: skip
    bad = {k: v for k, v in {**good, **change}.items() if v is not None}
    with pytest.raises(MiraklClientError, match=message):
        mirakl.confirm_billing_cycles([bad])


def test_sbc11_refuses_unknown_pay_out_states_and_bad_ids(sandbox, admin):
    mirakl = MiraklClient(sandbox.url, MIRAKL_KEY, retry=RetryPolicy.no_wait(2))
    with pytest.raises(MiraklClientError, match="pay_out_state"):
        list(mirakl.iter_billing_cycles(pay_out_states=["UNPAID"]))
    with pytest.raises(MiraklClientError, match="36 characters"):
        list(mirakl.iter_billing_cycles(ids=["cycle-1"]))
