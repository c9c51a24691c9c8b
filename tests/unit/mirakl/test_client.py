"""Wire-level tests of MiraklClient: exact requests sent, pagination, retries, errors."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from mirakl_connector.core.errors import (
    ConfigurationError,
    MiraklClientError,
    MiraklRateLimitError,
    MiraklServerError,
    MiraklTransportError,
)
from mirakl_connector.core.retry import RetryPolicy
from mirakl_connector.mirakl.client import MiraklClient, dumps

BASE = "https://mirakl.test"  # same as conftest.py
API_KEY = "s3cr3t-operator-key-0123456789"


def query(call) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query, keep_blank_values=True)


def orders(start: int, count: int) -> list[dict]:
    return [{"order_id": f"ORD-{n}-A", "shop_id": n} for n in range(start, count)]


def body(payload: object) -> str:
    return dumps(payload)


def assert_no_float(value: object) -> None:
    assert not isinstance(value, float), value
    if isinstance(value, dict):
        for item in value.values():
            assert_no_float(item)
    elif isinstance(value, list):
        for item in value:
            assert_no_float(item)


# ---------------------------------------------------------------------- headers, secrets


def test_raw_api_key_is_sent_as_authorization(client, mocked):
    mocked.get(f"{BASE}/api/version", json={"version": "3.210"})

    assert client.version() == {"version": "3.210"}

    headers = mocked.calls[0].request.headers
    assert headers["Authorization"] == API_KEY
    assert headers["Accept"] == "application/json"
    assert client.call_counts["V01"] == 1


def test_bearer_token_is_sent_as_is(mocked):
    client = MiraklClient(BASE, "Bearer eyJ.token", retry=RetryPolicy.no_wait())
    mocked.get(f"{BASE}/api/version", json={"version": "3.210"})

    client.version()

    assert mocked.calls[0].request.headers["Authorization"] == "Bearer eyJ.token"


def test_key_never_in_repr_nor_error_text(client, mocked, caplog):
    mocked.get(
        f"{BASE}/api/orders",
        status=401,
        json={"message": f"Invalid key {API_KEY}", "status": 401},
    )

    with pytest.raises(MiraklClientError) as raised:
        list(client.iter_orders())

    assert API_KEY not in repr(client)
    assert API_KEY not in str(raised.value)
    assert API_KEY not in raised.value.message
    assert "Invalid key ***" in str(raised.value)
    assert API_KEY not in caplog.text


def test_key_not_in_retry_logs(client, mocked, caplog):
    mocked.get(f"{BASE}/api/orders", status=503, json={"message": f"down for {API_KEY}"})
    mocked.get(f"{BASE}/api/orders", json={"orders": [], "total_count": 0})

    with caplog.at_level(logging.WARNING, logger="mirakl_connector.mirakl.client"):
        assert list(client.iter_orders()) == []

    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "OR11" in record.getMessage()
    assert "HTTP 503" in record.getMessage()
    assert API_KEY not in caplog.text


# ---------------------------------------------------------------------- offset pagination


def test_first_offset_request_carries_max_offset_and_dates(client, mocked):
    mocked.get(f"{BASE}/api/orders", json={"orders": orders(0, 2), "total_count": 2})
    start = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    end = datetime(2026, 11, 21, 11, 30, tzinfo=timezone(timedelta(hours=1)))

    got = list(client.iter_orders(start_date=start, end_date=end))

    assert [o["order_id"] for o in got] == ["ORD-0-A", "ORD-1-A"]
    assert len(mocked.calls) == 1
    assert query(mocked.calls[0]) == {
        "max": ["100"],
        "offset": ["0"],
        # UTC with Z, as the Mirakl Java SDK sends instants (issue 19 pt 5): no '+' to lose
        "start_date": ["2026-11-20T10:00:00Z"],
        "end_date": ["2026-11-21T10:30:00Z"],
    }
    assert "+" not in mocked.calls[0].request.url and "%2B" not in mocked.calls[0].request.url


def test_string_date_with_offset_is_sent_in_utc_with_z(client, mocked):
    mocked.get(f"{BASE}/api/orders", json={"orders": [], "total_count": 0})

    list(client.iter_orders(start_date="2019-01-02T00:00:00.250+0100"))
    list(client.iter_orders(start_date="2019-01-02"))  # no zone: not ours to guess, verbatim

    assert query(mocked.calls[0])["start_date"] == ["2019-01-01T23:00:00.250Z"]
    assert query(mocked.calls[1])["start_date"] == ["2019-01-02"]


def test_naive_datetime_is_refused(client):
    with pytest.raises(ValueError, match="no timezone"):
        list(client.iter_orders(start_date=datetime(2026, 1, 1)))


def test_link_header_pagination_follows_next_verbatim(client, mocked):
    total = 250
    next_links = {
        0: f"{BASE}/api/orders?start_date=S&max=100&offset=100&token=abc",
        100: f"{BASE}/api/orders?start_date=S&max=100&offset=200&token=def",
    }

    def page(request):
        offset = int(parse_qs(urlsplit(request.url).query)["offset"][0])
        headers = {}
        if offset in next_links:
            previous = f"{BASE}/api/orders?max=100&offset={max(offset - 100, 0)}"
            headers["Link"] = f'<{previous}>; rel="previous", <{next_links[offset]}>; rel="next"'
        payload = {"orders": orders(offset, min(offset + 100, total)), "total_count": total}
        return 200, headers, body(payload)

    mocked.add_callback(responses.GET, f"{BASE}/api/orders", callback=page)

    got = list(client.iter_orders(start_date="S"))

    assert [o["order_id"] for o in got] == [f"ORD-{n}-A" for n in range(total)]
    urls = [c.request.url for c in mocked.calls]
    assert len(urls) == 3
    assert urls[1:] == [next_links[0], next_links[100]]
    assert client.call_counts["OR11"] == 3


def test_offset_fallback_on_total_count_without_link(client, mocked):
    total = 230

    def page(request):
        q = parse_qs(urlsplit(request.url).query)
        offset = int(q["offset"][0])
        assert q["max"] == ["100"]
        assert q["domains"] == ["PRODUCT,SERVICE"]
        shops = [{"shop_id": n} for n in range(offset, min(offset + 100, total))]
        return 200, {}, body({"shops": shops, "total_count": total})

    mocked.add_callback(responses.GET, f"{BASE}/api/shops", callback=page)

    got = list(client.iter_shops())

    assert [s["shop_id"] for s in got] == list(range(total))
    assert [query(c)["offset"] for c in mocked.calls] == [["0"], ["100"], ["200"]]


def test_offset_stops_on_empty_page(client, mocked):
    mocked.get(f"{BASE}/api/invoices", json={"invoices": [{"invoice_id": 1}], "total_count": 500})
    mocked.get(f"{BASE}/api/invoices", json={"invoices": [], "total_count": 500})

    got = list(client.iter_invoices(shop_id=7))

    assert got == [{"invoice_id": 1}]
    assert len(mocked.calls) == 2
    assert query(mocked.calls[0])["shop"] == ["7"]
    assert query(mocked.calls[1])["offset"] == ["1"]


def test_iterators_stream_page_by_page(client, mocked):
    mocked.get(
        f"{BASE}/api/orders",
        json={"orders": orders(0, 100), "total_count": 200},
    )
    mocked.get(f"{BASE}/api/orders", json={"orders": orders(100, 200), "total_count": 200})

    iterator = client.iter_orders()
    next(iterator)

    assert len(mocked.calls) == 1  # the second page is only fetched when needed


# ---------------------------------------------------------------------- seek pagination


def test_seek_pagination_sends_only_page_token_after_first_page(client, mocked):
    mocked.get(
        f"{BASE}/api/mms/orders",
        json={"data": [{"id": "SRV-1-A"}], "next_page_token": "tok-2"},
    )
    mocked.get(
        f"{BASE}/api/mms/orders",
        json={"data": [{"id": "SRV-2-A"}], "next_page_token": "tok-3"},
    )
    mocked.get(f"{BASE}/api/mms/orders", json={"data": [{"id": "SRV-3-A"}]})

    got = list(client.iter_service_orders(date_created_start="2019-01-02T00:00:00.000+01:00"))

    assert [o["id"] for o in got] == ["SRV-1-A", "SRV-2-A", "SRV-3-A"]
    assert query(mocked.calls[0]) == {
        "limit": ["100"],
        "date_created_start": ["2019-01-01T23:00:00Z"],
    }
    assert query(mocked.calls[1]) == {"page_token": ["tok-2"]}
    assert query(mocked.calls[2]) == {"page_token": ["tok-3"]}
    assert client.call_counts["SOR11"] == 3


def test_seek_stops_on_empty_page_even_with_token(client, mocked):
    mocked.get(f"{BASE}/api/mms/refunds", json={"data": [], "next_page_token": "again"})

    assert list(client.iter_service_refunds()) == []
    assert len(mocked.calls) == 1


# ---------------------------------------------------------------------- id filters


def test_order_ids_chunked_by_100_as_csv_deduplicated(client, mocked):
    ids = [f"O{n}" for n in range(250)]
    mocked.get(f"{BASE}/api/orders", json={"orders": [], "total_count": 0})

    list(client.iter_orders(order_ids=ids + ids[:10]))

    sent = [query(c)["order_ids"][0].split(",") for c in mocked.calls]
    assert [len(chunk) for chunk in sent] == [100, 100, 50]
    assert [i for chunk in sent for i in chunk] == ids
    assert all(query(c)["max"] == ["100"] for c in mocked.calls)


def test_commercial_ids_filter(client, mocked):
    mocked.get(f"{BASE}/api/orders", json={"orders": orders(0, 1), "total_count": 1})

    got = list(client.iter_orders(commercial_ids=["C1", "C2"]))

    assert len(got) == 1
    assert query(mocked.calls[0])["commercial_ids"] == ["C1,C2"]


def test_an_id_with_a_comma_never_widens_the_query(client, mocked):
    """Issue 11 point 8: ``order_ids=["A,B"]`` asked Mirakl for orders A and B."""
    mocked.get(f"{BASE}/api/orders", json={"orders": [], "total_count": 0})

    list(client.iter_orders(order_ids=["A,B", "C"]))
    assert [query(c)["order_ids"] for c in mocked.calls] == [["C"]]

    mocked.calls.reset()
    assert list(client.iter_orders(order_ids=["A,B"])) == []
    assert len(mocked.calls) == 0  # not an unfiltered query (= every order) either


def test_empty_id_list_makes_no_call(client, mocked):
    assert list(client.iter_orders(order_ids=[])) == []
    assert list(client.iter_service_debits(order_ids=[])) == []
    assert len(mocked.calls) == 0


def test_two_id_filters_at_once_are_refused(client):
    with pytest.raises(ValueError, match="one of"):
        list(client.iter_orders(order_ids=["A"], commercial_ids=["B"]))


def test_service_filters_are_repeated_keys_chunked_by_100(client, mocked):
    ids = [f"SRV-{n}-A" for n in range(250)]
    mocked.get(f"{BASE}/api/mms/debits", json={"data": []})

    list(client.iter_service_debits(order_ids=ids))

    assert len(mocked.calls) == 3
    first_url = mocked.calls[0].request.url
    assert "order_id=SRV-0-A&order_id=SRV-1-A" in first_url
    assert "order_id%5B%5D" not in first_url and "order_id[]" not in first_url
    assert [len(query(c)["order_id"]) for c in mocked.calls] == [100, 100, 50]
    assert [i for c in mocked.calls for i in query(c)["order_id"]] == ids


def test_service_order_commercial_filter_is_repeated(client, mocked):
    mocked.get(f"{BASE}/api/mms/orders", json={"data": [{"id": "SRV-1-A"}]})

    list(client.iter_service_orders(commercial_order_ids=["SRV-1", "SRV-2", "SRV-1"]))

    assert query(mocked.calls[0]) == {"commercial_order_id": ["SRV-1", "SRV-2"], "limit": ["100"]}


def test_shop_ids_csv(client, mocked):
    mocked.get(f"{BASE}/api/shops", json={"shops": [], "total_count": 0})

    list(client.iter_shops(shop_ids=[1, 2, 3], updated_since="2019-01-01T00:00:00Z"))

    assert query(mocked.calls[0]) == {
        "domains": ["PRODUCT,SERVICE"],
        "updated_since": ["2019-01-01T00:00:00Z"],
        "shop_ids": ["1,2,3"],
        "max": ["100"],
        "offset": ["0"],
    }


# ---------------------------------------------------------------------- retries and errors


def test_429_retry_after_is_honoured(client, mocked, sleeps):
    mocked.get(f"{BASE}/api/orders", status=429, headers={"Retry-After": "7"})
    mocked.get(f"{BASE}/api/orders", status=429, headers={"Retry-After": "3"})
    mocked.get(f"{BASE}/api/orders", json={"orders": orders(0, 1), "total_count": 1})

    got = list(client.iter_orders())

    assert len(got) == 1
    assert sleeps == [7.0, 3.0]
    assert client.call_counts["OR11"] == 3


def test_429_until_budget_spent_raises_rate_limit_error(client, mocked):
    mocked.get(f"{BASE}/api/payment/debit", status=429, headers={"Retry-After": "1"})

    with pytest.raises(MiraklRateLimitError) as raised:
        list(client.iter_pending_debits())

    assert raised.value.endpoint == "PA11"
    assert raised.value.http_status == 429
    assert len(mocked.calls) == 4


def test_5xx_retried_then_success(client, mocked, sleeps):
    mocked.get(f"{BASE}/api/orders", status=502, body="Bad Gateway")
    mocked.get(f"{BASE}/api/orders", status=500, json={"message": "boom"})
    mocked.get(f"{BASE}/api/orders", json={"orders": orders(0, 1), "total_count": 1})

    assert len(list(client.iter_orders())) == 1
    assert len(sleeps) == 2


def test_retries_exhausted_raise_server_error_naming_endpoint(client, mocked):
    mocked.get(
        f"{BASE}/api/orders",
        status=503,
        json={"status": 503, "message": "Service Unavailable"},
    )

    with pytest.raises(MiraklServerError) as raised:
        list(client.iter_orders())

    error = raised.value
    assert error.endpoint == "OR11"
    assert error.http_status == 503
    assert error.message == "Service Unavailable"
    assert "OR11" in str(error) and "503" in str(error)
    assert len(mocked.calls) == 4  # the policy's max_attempts


def test_400_raises_client_error_with_mirakl_message_and_no_retry(client, mocked, sleeps):
    message = (
        "Cannot update the order with id 'Order_00007-A' to status 'SHIPPING'. "
        "The order does not have the expected status 'WAITING_DEBIT_PAYMENT'."
    )
    mocked.put(f"{BASE}/api/payment/debit", status=400, json={"message": message})

    with pytest.raises(MiraklClientError) as raised:
        client.validate_debits([{"order_id": "Order_00007-A", "payment_status": "OK"}])

    assert raised.value.endpoint == "PA01"
    assert raised.value.http_status == 400
    assert raised.value.message == message
    assert len(mocked.calls) == 1
    assert sleeps == []


def test_error_without_json_falls_back_to_truncated_text(client, mocked):
    mocked.get(f"{BASE}/api/shops", status=404, body="<html>" + "x" * 1000 + "</html>")

    with pytest.raises(MiraklClientError) as raised:
        list(client.iter_shops())

    assert raised.value.message.startswith("<html>xxx")
    assert len(raised.value.message) < 400


def test_timeout_raises_transport_error_after_retries(client, mocked, sleeps):
    mocked.get(f"{BASE}/api/mms/refunds", body=requests.exceptions.ReadTimeout("read timed out"))

    with pytest.raises(MiraklTransportError) as raised:
        list(client.iter_service_refunds())

    assert raised.value.endpoint == "SPA12"
    assert raised.value.http_status is None
    assert "timed out" in raised.value.message
    assert len(mocked.calls) == 4
    assert len(sleeps) == 3


def test_connection_error_retried_then_success(client, mocked):
    mocked.get(f"{BASE}/api/version", body=requests.exceptions.ConnectionError("refused"))
    mocked.get(f"{BASE}/api/version", json={"version": "3.210"})

    assert client.version() == {"version": "3.210"}
    assert client.call_counts["V01"] == 2


def test_put_is_retried_on_5xx(client, mocked):
    mocked.put(f"{BASE}/api/payment/refund", status=503)
    mocked.put(f"{BASE}/api/payment/refund", status=204)

    client.validate_refunds([{"refund_id": "1000", "amount": Decimal("12.34")}])

    assert client.call_counts["PA02"] == 2
    assert mocked.calls[0].request.body == mocked.calls[1].request.body


def test_timeout_is_passed_to_requests(mocked):
    client = MiraklClient(BASE, API_KEY, timeout=(1.5, 9.0), retry=RetryPolicy.no_wait())
    seen = {}
    original = client._session.request

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return original(*args, **kwargs)

    client._session.request = spy
    mocked.get(f"{BASE}/api/version", json={"version": "1"})

    client.version()

    assert seen["timeout"] == (1.5, 9.0)


# ---------------------------------------------------------------------- JSON and money


def test_amounts_parse_as_decimal_never_float(client, mocked):
    raw = (
        '{"orders": [{"order_id": "ORD-1-A", "total_price": 69.12, "total_commission": 3.99,'
        ' "order_lines": [{"taxes": [{"amount": 0.1}], "total_price": 12.345}]}],'
        ' "total_count": 1}'
    )
    mocked.get(f"{BASE}/api/orders", body=raw, content_type="application/json")

    [order] = list(client.iter_orders())

    assert order["total_price"] == Decimal("69.12")
    assert isinstance(order["total_price"], Decimal)
    assert order["order_lines"][0]["taxes"][0]["amount"] == Decimal("0.1")
    assert_no_float(order)


def test_decimal_request_bodies_are_json_numbers(client, mocked):
    mocked.put(f"{BASE}/api/payment/debit", status=204)

    client.validate_debits(
        [{"order_id": "ORD-2-A", "amount": Decimal("12.34"), "payment_status": "OK"}]
    )

    sent = mocked.calls[0].request
    assert b'"amount":12.34' in sent.body
    assert sent.headers["Content-Type"].startswith("application/json")
    assert json.loads(sent.body, parse_float=Decimal)["orders"][0]["amount"] == Decimal("12.34")


def test_dumps_refuses_float_and_keeps_decimal_precision():
    assert dumps({"a": Decimal("0.10"), "b": [1, "x", None, True]}) == (
        '{"a":0.10,"b":[1,"x",null,true]}'
    )
    assert dumps(Decimal("1E+2")) == "100"
    with pytest.raises(TypeError, match="float"):
        dumps({"amount": 12.34})


# ---------------------------------------------------------------------- response shapes


def test_pending_debits_unwrap_orders_order_and_bare_list(client, mocked):
    mocked.get(
        f"{BASE}/api/payment/debit",
        json={"orders": {"order": [{"order_id": "A"}]}, "total_count": 2},
    )
    mocked.get(
        f"{BASE}/api/payment/debit",
        json={"orders": [{"order_id": "B"}], "total_count": 2},
    )

    assert [d["order_id"] for d in client.iter_pending_debits()] == ["A", "B"]


def test_pending_refunds_are_flattened(client, mocked):
    order = {
        "currency_iso_code": "EUR",
        "order_commercial_id": "C-1",
        "order_id": "C-1-A",
        "shop_id": "1",
        "amount": Decimal("30.00"),
        "order_lines": {
            "order_line": [
                {
                    "order_line_id": "C-1-A-1",
                    "refunds": {"refund": [{"id": 1000, "amount": Decimal("12.34")}]},
                },
                {
                    "order_line_id": "C-1-A-2",
                    "refunds": {
                        "refund": [
                            {"id": 1001, "amount": Decimal("10.00")},
                            {"id": "1002", "amount": Decimal("7.66")},
                        ]
                    },
                },
            ]
        },
    }
    mocked.get(
        f"{BASE}/api/payment/refund",
        body=body({"orders": {"order": [order]}, "total_count": 1}),
    )

    got = list(client.iter_pending_refunds())

    assert got == [
        {
            "id": "1000",
            "amount": Decimal("12.34"),
            "order_id": "C-1-A",
            "order_commercial_id": "C-1",
            "order_line_id": "C-1-A-1",
            "currency_iso_code": "EUR",
            "shop_id": "1",
        },
        {
            "id": "1001",
            "amount": Decimal("10.00"),
            "order_id": "C-1-A",
            "order_commercial_id": "C-1",
            "order_line_id": "C-1-A-2",
            "currency_iso_code": "EUR",
            "shop_id": "1",
        },
        {
            "id": "1002",
            "amount": Decimal("7.66"),
            "order_id": "C-1-A",
            "order_commercial_id": "C-1",
            "order_line_id": "C-1-A-2",
            "currency_iso_code": "EUR",
            "shop_id": "1",
        },
    ]
    assert_no_float(got)


# ---------------------------------------------------------------------- writes


def test_update_shops_chunked_by_100_and_returns_all(client, mocked):
    def answer(request):
        shops = json.loads(request.body)["shops"]
        return 200, {}, json.dumps({"shop_returns": [{"shop_updated": s} for s in shops]})

    mocked.add_callback(responses.PUT, f"{BASE}/api/shops", callback=answer)
    shops = [{"shop_id": n, "kyc": {"status": "APPROVED"}} for n in range(250)]

    returns = client.update_shops(shops)

    sizes = [len(json.loads(c.request.body)["shops"]) for c in mocked.calls]
    assert sizes == [100, 100, 50]
    assert [r["shop_updated"]["shop_id"] for r in returns] == list(range(250))
    assert client.call_counts["S07"] == 3


def test_validate_debits_chunked_by_100(client, mocked):
    mocked.put(f"{BASE}/api/payment/debit", status=204)
    debits = [{"order_id": f"O-{n}", "amount": Decimal("1.00")} for n in range(150)]

    client.validate_debits(debits)

    sent = [json.loads(c.request.body)["orders"] for c in mocked.calls]
    assert [len(s) for s in sent] == [100, 50]
    assert [d["order_id"] for s in sent for d in s] == [d["order_id"] for d in debits]


def test_validate_with_nothing_makes_no_call(client, mocked):
    client.validate_debits([])
    client.validate_refunds([])
    assert client.update_shops([]) == []
    assert len(mocked.calls) == 0


def test_validate_service_refunds_sends_bare_array_and_returns_body(client, mocked):
    answer = {
        "errors": [
            {
                "refund_id": "2001",
                "refund_errors": [{"code": "X", "field": "id", "message": "already validated"}],
            }
        ],
        "success": {"refunds": [{"id": "2000"}]},
    }
    mocked.put(f"{BASE}/api/mms/refunds", json=answer)
    refunds = [
        {"id": "2000", "order_id": "S-1", "amount": Decimal("12.34"), "state": "OK"},
        {"id": "2001", "order_id": "S-2", "amount": Decimal("1.00"), "state": "OK"},
    ]

    result = client.validate_service_refunds(refunds)

    sent = json.loads(mocked.calls[0].request.body, parse_float=Decimal)
    assert sent == refunds
    assert result == answer
    assert client.call_counts["SPA02"] == 1


@pytest.mark.parametrize(
    "url",
    ["https://x.mirakl.net/api", "https://x.mirakl.net/api/", "https://x.mirakl.net/"],
)
def test_base_url_with_or_without_api_calls_api_version_once(url) -> None:
    """Issue 19 pt 2: the Hyperwallet connector's setting ends with /api; never /api/api/..."""
    with responses.RequestsMock() as mocked:
        mocked.get("https://x.mirakl.net/api/version", json={"version": "3.210"})
        client = MiraklClient(url, "key")
        assert client.base_url == "https://x.mirakl.net"
        assert client.version() == {"version": "3.210"}


@pytest.mark.parametrize(
    "url", ["https://x.mirakl.net/api/api", "https://x.mirakl.net/shop", "https://x.mirakl.net?a=1"]
)
def test_base_url_other_paths_are_refused_at_construction(url) -> None:
    with pytest.raises(ConfigurationError, match="expected https://<instance>.mirakl.net or"):
        MiraklClient(url, "key")


def test_hyperwallet_shop_read_sends_paginate_false_and_updated_since_not_domains(client, mocked):
    """Issue 19 pt 5: S20 as the Hyperwallet connector calls it (``updated_since=<instant>&
    paginate=false``; by ids ``shop_ids=…&paginate=false``): one answer, no domains/max/offset."""
    mocked.get(f"{BASE}/api/shops", json={"shops": [{"shop_id": 1}, {"shop_id": 2}],
                                          "total_count": 2})  # fmt: skip
    since = datetime(2023, 4, 18, 14, 41, 42, tzinfo=timezone(timedelta(hours=2)))

    got = list(client.iter_shops(updated_since=since, paginate=False))
    list(client.iter_shops(shop_ids=[7, 8], paginate=False))

    assert [s["shop_id"] for s in got] == [1, 2]
    assert query(mocked.calls[0]) == {
        "updated_since": ["2023-04-18T12:41:42Z"],
        "paginate": ["false"],
    }
    assert query(mocked.calls[1]) == {"shop_ids": ["7,8"], "paginate": ["false"]}
