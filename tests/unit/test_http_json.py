"""The shared JSON HTTP base of the Mirakl and Hyperwallet clients
(mirakl_connector.core.http_json).

The clients' own tests (tests/unit/mirakl, tests/unit/hyperwallet) cover it through each
provider's errors; these pin what both rely on: money never as float, secrets never in a message,
which failures are retried and which are not.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import requests
import responses

from mirakl_connector.core.http_json import (
    CLIENT_ERROR,
    RATE_LIMITED,
    SERVER_ERROR,
    JsonHttpClient,
    TransientFailure,
    dumps,
    loads,
    raise_for_status,
)
from mirakl_connector.core.retry import RetryPolicy

BASE = "https://api.test"


def iso(value: datetime) -> str:
    return value.isoformat()


def test_decimals_as_number_or_string_and_float_refused():
    body = {"amount": Decimal("12.30"), "at": datetime(2026, 1, 2, tzinfo=UTC), "n": [1, None]}
    assert dumps(body, decimal_as_string=False, format_datetime=iso) == (
        '{"amount":12.30,"at":"2026-01-02T00:00:00+00:00","n":[1,null]}'
    )
    assert dumps(body, decimal_as_string=True, format_datetime=iso).startswith('{"amount":"12.30",')
    with pytest.raises(TypeError, match="float"):
        dumps({"amount": 1.5}, decimal_as_string=True, format_datetime=iso)
    with pytest.raises(ValueError, match="non-finite"):
        dumps(Decimal("NaN"), decimal_as_string=False, format_datetime=iso)
    assert loads('{"a": 0.1}') == {"a": Decimal("0.1")}


class _Client(JsonHttpClient):
    def __init__(self, **kwargs):
        super().__init__(retry=RetryPolicy.no_wait(3), secrets=["top-secret", ""], **kwargs)
        self.base_url = BASE

    def get(self, path: str, *, retry_server_errors: bool = True) -> int:
        def check(response: requests.Response) -> int:
            if response.status_code < 400:
                return response.status_code
            raise_for_status(
                response,
                lambda kind: RuntimeError(f"{kind} {self._redact(response.text)}"),
                retry_server_errors=retry_server_errors,
            )

        return self._roundtrip(
            "GET " + path,
            "test GET " + path,
            "GET",
            self._url(path),
            check=check,
            transport_error=lambda message: RuntimeError("transport " + message),
        )


@responses.activate
def test_retries_429_and_5xx_counts_every_attempt_and_redacts():
    responses.get(f"{BASE}/x", status=429, headers={"Retry-After": "0"}, body="slow down")
    responses.get(f"{BASE}/x", status=503, body="down")
    responses.get(f"{BASE}/x", status=200, body="{}")
    client = _Client()
    assert client.get("/x") == 200
    assert client.call_counts["GET /x"] == 3

    responses.get(f"{BASE}/y", status=400, body="bad top-secret")
    with pytest.raises(RuntimeError) as raised:
        client.get("/y")
    assert str(raised.value) == f"{CLIENT_ERROR} bad ***"
    assert client.call_counts["GET /y"] == 1  # a 4xx is final


@responses.activate
def test_server_error_not_retried_when_the_client_says_so():
    responses.get(f"{BASE}/z", status=500, body="boom")
    client = _Client()
    with pytest.raises(RuntimeError, match=SERVER_ERROR):
        client.get("/z", retry_server_errors=False)
    assert client.call_counts["GET /z"] == 1


def test_rate_limit_carries_retry_after():
    response = requests.Response()
    response.status_code = 429
    response.headers["Retry-After"] = "7"
    with pytest.raises(TransientFailure) as raised:
        raise_for_status(response, lambda kind: RuntimeError(kind))
    assert raised.value.retry_after == 7.0
    assert str(raised.value.error) == RATE_LIMITED
