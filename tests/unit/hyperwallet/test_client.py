"""Wire-level tests of HyperwalletClient: auth, paths, cursor paging, errors, retries."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import pytest
import requests
import responses

from mirakl_connector.core.retry import RetryPolicy
from mirakl_connector.hyperwallet.client import HyperwalletClient, dumps
from mirakl_connector.hyperwallet.errors import (
    HyperwalletClientError,
    HyperwalletNotFoundError,
    HyperwalletServerError,
    HyperwalletTransportError,
)

SERVER = "https://hw.test"
API = SERVER + "/rest/v4"
USER, PASSWORD = "restapiuser@4917301618", "Pa55word-very-secret"


@pytest.fixture
def client() -> HyperwalletClient:
    return HyperwalletClient(SERVER, USER, PASSWORD, retry=RetryPolicy.no_wait(4), page_size=2)


def link(rel, href):
    return {"params": {"rel": rel}, "href": href}


@responses.activate
def test_basic_auth_v4_base_and_json_body(client):
    responses.post(API + "/users", json={"token": "usr-1"}, status=201)
    assert client.create_user({"clientUserId": "2001", "programToken": "prg-1"})["token"] == "usr-1"
    call = responses.calls[0]
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert call.request.headers["Authorization"] == expected
    assert json.loads(call.request.body) == {"clientUserId": "2001", "programToken": "prg-1"}
    assert HyperwalletClient(API + "/", USER, PASSWORD).base_url == API  # no double /rest/v4


@responses.activate
def test_cursor_paging_follows_rel_next_until_none(client):
    second = API + "/users?clientUserId=7&after=usr-2&limit=2"
    responses.get(
        API + "/users",
        match=[responses.matchers.query_param_matcher({"clientUserId": "7", "limit": "2"})],
        json={"hasNextPage": True, "data": [{"token": "usr-1"}, {"token": "usr-2"}],
              "links": [link("self", API + "/users"), link("next", second)]},
    )  # fmt: skip
    responses.get(
        second,
        json={"hasNextPage": False, "data": [{"token": "usr-3"}], "links": [link("self", second)]},
    )
    assert [u["token"] for u in client.iter_users(client_user_id="7")] == [
        "usr-1",
        "usr-2",
        "usr-3",
    ]
    assert len(responses.calls) == 2


@responses.activate
def test_204_is_an_empty_list(client):
    responses.get(API + "/users/usr-1/bank-accounts", status=204)
    assert list(client.iter_bank_accounts("usr-1")) == []


@responses.activate
def test_find_payments_and_user_filter_on_the_exact_id(client):
    responses.get(
        API + "/payments",
        json={"data": [{"clientPaymentId": "230201", "status": "FAILED"},
                       {"clientPaymentId": "2302011", "status": "COMPLETED"}], "links": []},
    )  # fmt: skip
    assert client.find_payments("230201") == [{"clientPaymentId": "230201", "status": "FAILED"}]
    assert responses.calls[0].request.params["clientPaymentId"] == "230201"


@responses.activate
def test_errors_envelope_becomes_a_clear_exception(client):
    responses.post(
        API + "/payments",
        status=400,
        json={"errors": [{"code": "CONSTRAINT_VIOLATIONS", "fieldName": "destinationToken",
                          "message": "Please enter a valid destinationToken"}]},
    )  # fmt: skip
    with pytest.raises(HyperwalletClientError) as caught:
        client.create_payment({"clientPaymentId": "1", "amount": Decimal("12.30")})
    error = caught.value
    assert str(error) == (
        "Hyperwallet POST /payments failed (HTTP 400): CONSTRAINT_VIOLATIONS destinationToken: "
        "Please enter a valid destinationToken"
    )
    assert error.codes == ["CONSTRAINT_VIOLATIONS"] and error.permanent and error.http_status == 400
    assert json.loads(responses.calls[0].request.body)["amount"] == "12.30"
    assert len(responses.calls) == 1


@responses.activate
def test_404_is_not_found(client):
    responses.get(API + "/users/usr-x", status=404, json={"errors": [{"code": "NOT_FOUND"}]})
    with pytest.raises(HyperwalletNotFoundError, match="GET /users/usr-x failed"):
        client.get_user("usr-x")


@responses.activate
def test_reads_and_updates_are_retried_on_5xx_and_429(client):
    responses.get(API + "/users/usr-1", status=503, json={"errors": [{"code": "DOWN"}]})
    responses.get(API + "/users/usr-1", status=429, headers={"Retry-After": "0"})
    responses.get(API + "/users/usr-1", json={"token": "usr-1"})
    assert client.get_user("usr-1") == {"token": "usr-1"}
    assert client.call_counts["GET /users/usr-1"] == 3


@responses.activate
def test_a_create_is_not_resent_after_a_5xx_it_may_have_succeeded(client):
    responses.post(API + "/payments", status=500, json={"errors": [{"code": "SERVER_ERROR"}]})
    with pytest.raises(HyperwalletServerError):
        client.create_payment({"clientPaymentId": "1"})
    assert len(responses.calls) == 1


@responses.activate
def test_a_create_is_retried_after_429(client):
    responses.post(API + "/payments", status=429)
    responses.post(API + "/payments", json={"token": "pmt-1"}, status=201)
    assert client.create_payment({"clientPaymentId": "1"})["token"] == "pmt-1"
    assert len(responses.calls) == 2


def test_a_create_is_retried_when_the_connection_was_refused():
    # nothing listens on port 9 of loopback: the request never left
    client = HyperwalletClient("http://127.0.0.1:9", USER, PASSWORD, retry=RetryPolicy.no_wait(3))
    with pytest.raises(HyperwalletTransportError) as caught:
        client.create_payment({"clientPaymentId": "1"})
    assert client.call_counts["POST /payments"] == 3
    assert PASSWORD not in str(caught.value)


@responses.activate
def test_a_create_is_not_resent_after_a_read_timeout(client):
    responses.post(API + "/users", body=requests.ReadTimeout("read timed out"))
    with pytest.raises(HyperwalletTransportError, match="ReadTimeout"):
        client.create_user({"clientUserId": "1"})
    assert len(responses.calls) == 1


@responses.activate
def test_the_password_never_reaches_an_error_message(client):
    responses.get(API + "/users/usr-1", status=400, body=f"bad credentials {PASSWORD}")
    with pytest.raises(HyperwalletClientError) as caught:
        client.get_user("usr-1")
    assert PASSWORD not in str(caught.value) and "***" in str(caught.value)
    assert PASSWORD not in repr(client)


def test_tokens_are_one_path_segment_and_floats_are_refused():
    client = HyperwalletClient(SERVER, USER, PASSWORD)
    with pytest.raises(ValueError):
        client.get_user("  ")
    with pytest.raises(TypeError, match="float"):
        dumps({"amount": 12.3})
    assert dumps({"amount": Decimal("0.10")}) == '{"amount":"0.10"}'
