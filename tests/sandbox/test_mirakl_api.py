"""Mirakl side of the sandbox, exercised with plain ``requests`` like the real client."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from mirakl_sandbox import SandboxAdmin


def _order(n: int, state: str = "SHIPPING", **extra: Any) -> dict[str, Any]:
    order = {
        "order_id": f"ORD-{n:04d}-A",
        "commercial_id": f"ORD-{n:04d}",
        "created_date": f"2026-11-{1 + n // 100:02d}T{(n // 60) % 24:02d}:{n % 60:02d}:00Z",
        "last_updated_date": "2026-11-20T00:00:00Z",
        "customer_debited_date": None,
        "currency_iso_code": "EUR",
        "order_state": state,
        "order_tax_mode": "TAX_EXCLUDED",
        "payment_workflow": "PAY_ON_ACCEPTANCE",
        "shop_id": 1,
        "total_price": 69.12,
        "total_commission": 3.99,
        "customer": {"customer_id": "cust-1"},
        "order_lines": [
            {
                "order_line_id": f"ORD-{n:04d}-A-1",
                "order_line_state": state,
                "total_price": 69.12,
                "shipping_taxes": [{"amount": 1.12, "code": "ECO"}],
                "taxes": [{"amount": 1.56, "code": "VAT"}],
            },
        ],
    }
    order.update(extra)
    return order


def _get(session: requests.Session, path: str, **params: Any) -> requests.Response:
    return session.get(session.base + path, params=params, timeout=10)  # type: ignore[attr-defined]


def _put(session: requests.Session, path: str, body: Any) -> requests.Response:
    return session.put(session.base + path, json=body, timeout=10)  # type: ignore[attr-defined]


def test_auth_accepts_raw_and_bearer_key_and_rejects_others(mirakl, sandbox) -> None:
    assert _get(mirakl, "/api/version").json() == {"version": "3.210"}
    bearer = requests.get(
        sandbox.url + "/api/version", headers={"Authorization": "Bearer test-mirakl-key"}
    )
    assert bearer.status_code == 200
    wrong = requests.get(sandbox.url + "/api/orders", headers={"Authorization": "nope"})
    missing = requests.get(sandbox.url + "/api/orders")
    assert (wrong.status_code, missing.status_code) == (401, 401)
    assert wrong.json() == {"status": 401, "message": "Unauthorized"}


def test_or11_offset_pagination_with_link_header(mirakl, admin: SandboxAdmin) -> None:
    admin.put_orders([_order(n) for n in range(150, 0, -1)])  # inserted out of order
    first = _get(mirakl, "/api/orders", max=100)
    body = first.json()
    assert body["total_count"] == 150
    assert [o["order_id"] for o in body["orders"][:2]] == ["ORD-0001-A", "ORD-0002-A"]
    assert len(body["orders"]) == 100
    assert 'rel="next"' in first.headers["Link"] and 'rel="previous"' not in first.headers["Link"]
    next_url = first.links["next"]["url"]
    second = mirakl.get(next_url, timeout=10)
    assert [o["order_id"] for o in second.json()["orders"]][-1] == "ORD-0150-A"
    assert len(second.json()["orders"]) == 50
    assert "next" not in second.links and "previous" in second.links
    assert _get(mirakl, "/api/orders").json()["orders"].__len__() == 10  # default page size


def test_or11_filters(mirakl, admin: SandboxAdmin) -> None:
    admin.put_orders([_order(n) for n in range(1, 31)] + [_order(31, "WAITING_DEBIT_PAYMENT")])
    since = _get(mirakl, "/api/orders", start_date="2026-11-01T00:20:00+0000", max=100).json()
    assert since["total_count"] == 12
    # a '+' that was not URL-encoded arrives as a space and must still parse
    raw = mirakl.get(mirakl.base + "/api/orders?start_date=2026-11-01T01:20:00+0100", timeout=10)
    assert raw.json()["total_count"] == 12
    by_id = _get(mirakl, "/api/orders", order_ids="ORD-0003-A,ORD-0002-A,ORD-9999-A").json()
    assert [o["order_id"] for o in by_id["orders"]] == ["ORD-0002-A", "ORD-0003-A"]
    by_state = _get(mirakl, "/api/orders", order_state_codes="WAITING_DEBIT_PAYMENT").json()
    assert [o["order_id"] for o in by_state["orders"]] == ["ORD-0031-A"]
    by_commercial = _get(mirakl, "/api/orders", commercial_ids="ORD-0005").json()
    assert by_commercial["total_count"] == 1
    too_many = _get(mirakl, "/api/orders", order_ids=",".join(f"X{i}" for i in range(101)))
    assert too_many.status_code == 400
    assert too_many.json()["message"] == (
        "The limit of 100 is exceeded for the parameter : order_ids"
    )
    assert _get(mirakl, "/api/orders", start_date="yesterday").status_code == 400


def test_pa11_lists_waiting_orders_and_pa01_moves_them(mirakl, admin: SandboxAdmin) -> None:
    admin.put_orders(
        [
            _order(1, "WAITING_DEBIT_PAYMENT"),
            _order(2, "WAITING_DEBIT_PAYMENT"),
            _order(3, "SHIPPING"),
        ]
    )
    pending = _get(mirakl, "/api/payment/debit").json()
    assert pending["total_count"] == 2
    item = pending["orders"]["order"][0]
    assert item == {
        "order_id": "ORD-0001-A",
        "order_commercial_id": "ORD-0001",
        "shop_id": 1,
        "customer_id": "cust-1",
        "amount": 71.8,
        "currency_iso_code": "EUR",
        "payment_workflow": "PAY_ON_ACCEPTANCE",
    }
    body = {
        "orders": [
            {
                "order_id": "ORD-0001-A",
                "customer_id": "cust-1",
                "amount": 71.8,
                "payment_status": "OK",
                "transaction_number": "ch_paid",
            },
            {
                "order_id": "ORD-0002-A",
                "customer_id": "cust-1",
                "amount": 71.8,
                "payment_status": "REFUSED",
            },
        ]
    }
    assert _put(mirakl, "/api/payment/debit", body).status_code == 204
    paid, refused = admin.order("ORD-0001-A"), admin.order("ORD-0002-A")
    assert paid["order_state"] == "SHIPPING" and paid["customer_debited_date"]
    assert paid["transaction_number"] == "ch_paid"
    assert refused["order_state"] == "CANCELED" and refused["customer_debited_date"] is None
    assert _get(mirakl, "/api/payment/debit").json()["total_count"] == 0
    again = _put(mirakl, "/api/payment/debit", {"orders": body["orders"][:1]})
    assert again.status_code == 400
    assert "does not have the expected status 'WAITING_DEBIT_PAYMENT'" in again.json()["message"]
    pa01 = admin.mirakl_calls("PA01")
    assert [c["status"] for c in pa01] == [204, 400]
    assert pa01[0]["body"]["orders"][0]["transaction_number"] == "ch_paid"


def test_pa12_nesting_and_pa02_validation(mirakl, admin: SandboxAdmin) -> None:
    order = _order(1)
    order["order_lines"][0]["refunds"] = [
        {"id": "1000", "amount": 12.34, "commission_total_amount": 1.23},
        {"id": "1001", "amount": 5.0, "refund_state": "REFUNDED"},
    ]
    admin.put_orders([order, _order(2)])
    pending = _get(mirakl, "/api/payment/refund").json()
    assert pending["total_count"] == 1
    entry = pending["orders"]["order"][0]
    assert entry["order_id"] == "ORD-0001-A" and entry["amount"] == 12.34
    refunds = entry["order_lines"]["order_line"][0]["refunds"]["refund"]
    assert refunds == [{"id": "1000", "amount": 12.34}]
    body = {
        "refunds": [
            {
                "refund_id": "1000",
                "amount": 12.34,
                "currency_iso_code": "EUR",
                "payment_status": "OK",
                "transaction_number": "re_1",
            }
        ]
    }
    assert _put(mirakl, "/api/payment/refund", body).status_code == 204
    assert _get(mirakl, "/api/payment/refund").json()["total_count"] == 0
    stored = admin.order("ORD-0001-A")["order_lines"][0]["refunds"][0]
    assert (stored["refund_state"], stored["transaction_number"]) == ("REFUNDED", "re_1")
    again = _put(mirakl, "/api/payment/refund", body)
    assert (again.status_code, again.json()["message"]) == (400, "1000 already validated")


def test_s20_filters_and_s07_patch(mirakl, admin: SandboxAdmin) -> None:
    shops = _get(mirakl, "/api/shops", domains="PRODUCT,SERVICE").json()
    assert [s["shop_id"] for s in shops["shops"]] == [1, 2] and shops["total_count"] == 2
    since = _get(mirakl, "/api/shops", updated_since="2026-11-05T00:00:00Z").json()
    assert [s["shop_id"] for s in since["shops"]] == [2]
    assert [s["shop_id"] for s in _get(mirakl, "/api/shops", shop_ids="1").json()["shops"]] == [1]
    body = {
        "shops": [
            {
                "shop_id": 1,
                "shop_additional_fields": [
                    {"code": "stripe-url", "value": "https://new"},
                    {"code": "stripe-ignored", "value": "true"},
                ],
                "kyc": {"status": "APPROVED"},
            },
            {"shop_id": 404, "kyc": {"status": "APPROVED"}},
        ]
    }
    response = _put(mirakl, "/api/shops", body)
    assert response.status_code == 200
    returns = response.json()["shop_returns"]
    updated = returns[0]["shop_updated"]
    assert {f["code"]: f["value"] for f in updated["shop_additional_fields"]} == {
        "stripe-url": "https://new",
        "stripe-ignored": "true",
    }
    assert updated["kyc"] == {"status": "APPROVED"}
    assert updated["last_updated_date"] > "2026-11-01T00:00:00Z"
    assert returns[1]["shop_error"]["input"]["shop_id"] == 404
    assert _put(mirakl, "/api/shops", {"shops": [{"shop_id": 1}] * 101}).status_code == 400


def test_iv01_filters(mirakl, admin: SandboxAdmin) -> None:
    admin.load(
        {
            "mirakl": {
                "invoices": [
                    {
                        "invoice_id": 2,
                        "shop_id": 1,
                        "date_created": "2026-11-03T00:00:00Z",
                        "summary": {},
                    },
                    {
                        "invoice_id": 1,
                        "shop_id": 2,
                        "date_created": "2026-11-02T00:00:00Z",
                        "summary": {},
                    },
                ]
            }
        }
    )
    everything = _get(mirakl, "/api/invoices").json()
    assert [i["invoice_id"] for i in everything["invoices"]] == [1, 2]
    assert _get(mirakl, "/api/invoices", shop="1").json()["invoices"][0]["invoice_id"] == 2
    later = _get(mirakl, "/api/invoices", start_date="2026-11-02T12:00:00Z").json()
    assert later["total_count"] == 1


def _service_order(n: int, **extra: Any) -> dict[str, Any]:
    order = {
        "id": f"SRV-{n:03d}-A",
        "commercial_order_id": f"SRV-{n:03d}",
        "date_created": f"2026-11-02T10:{n:02d}:00.000+01:00",
        "currency_code": "EUR",
        "state": "ORDER_ACCEPTED",
        "shop": {"id": 1},
        "customer": {"id": "cust"},
        "price": {"amount": 10.0, "options": [], "taxes": []},
    }
    order.update(extra)
    return order


def test_sor11_seek_pagination_keeps_filters_in_token(mirakl, admin: SandboxAdmin) -> None:
    orders = [_service_order(n) for n in range(1, 26)]
    orders.append(_service_order(26, state="ORDER_PENDING"))
    admin.load({"mirakl": {"service_orders": orders}})
    seen: list[str] = []
    page = _get(mirakl, "/api/mms/orders", limit=10, state="ORDER_ACCEPTED").json()
    calls = 1
    while True:
        seen += [o["id"] for o in page["data"]]
        token = page.get("next_page_token")
        if not token:
            break
        page = _get(mirakl, "/api/mms/orders", page_token=token).json()
        calls += 1
    assert calls == 3
    assert seen == [f"SRV-{n:03d}-A" for n in range(1, 26)]
    chosen = mirakl.get(
        mirakl.base + "/api/mms/orders?order_id=SRV-002-A&order_id=SRV-005-A", timeout=10
    ).json()
    assert [o["id"] for o in chosen["data"]] == ["SRV-002-A", "SRV-005-A"]
    assert "next_page_token" not in chosen
    assert _get(mirakl, "/api/mms/orders", page_token="garbage!").status_code == 400


def test_spa11_and_spa12_spa02(mirakl, admin: SandboxAdmin) -> None:
    refunds = [{"id": "2000", "amount": 5.0}, {"id": "2001", "amount": 1.0, "state": "OK"}]
    admin.load(
        {
            "mirakl": {
                "service_orders": [_service_order(1, refunds=refunds)],
                "service_debits": [
                    {
                        "order_id": "SRV-001-A",
                        "customer_id": "cust",
                        "state": "OK",
                        "amount": 10.0,
                        "currency_code": "EUR",
                        "transaction_number": "ch_x",
                    }
                ],
            }
        }
    )
    debits = _get(mirakl, "/api/mms/debits", order_id="SRV-001-A").json()["data"]
    assert debits[0]["transaction_number"] == "ch_x"
    assert _get(mirakl, "/api/mms/debits", order_id="nope").json()["data"] == []
    pending = _get(mirakl, "/api/mms/refunds").json()["data"]
    assert [(r["id"], r["state"], r["currency_code"]) for r in pending] == [
        ("2000", "WAITING", "EUR")
    ]
    body = [
        {
            "id": "2000",
            "order_id": "SRV-001-A",
            "amount": 5.0,
            "currency_code": "EUR",
            "state": "OK",
            "transaction_number": "re_2",
        },
        {
            "id": "2001",
            "order_id": "SRV-001-A",
            "amount": 1.0,
            "currency_code": "EUR",
            "state": "OK",
            "transaction_number": "re_3",
        },
    ]
    result = _put(mirakl, "/api/mms/refunds", body).json()
    assert result["success"] == {"refunds": [{"id": "2000"}]}
    assert result["errors"][0]["refund_id"] == "2001"
    assert result["errors"][0]["refund_errors"][0]["message"] == "2001 already validated"
    assert _get(mirakl, "/api/mms/refunds").json()["data"] == []


@pytest.mark.parametrize("path", ["/api/nothing", "/api/orders/extra"])
def test_unknown_mirakl_path_is_404_and_logged(mirakl, admin: SandboxAdmin, path: str) -> None:
    assert _get(mirakl, path).status_code == 404
    assert admin.mirakl_calls()[-1]["endpoint"] == "UNKNOWN"
