"""Which answers to a Stripe call are refusals, and which leave the outcome unknown.

Only Stripe itself can refuse: a status Stripe documents as a refusal with Stripe's JSON error
object. The answers are served over real HTTP and read by the real SDK, because what the gateway
sees of a proxy's HTML page or a cut-short body is whatever stripe-python makes of it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import stripe

from mirakl_connector.core.errors import ConfigurationError, PaymentProviderError
from mirakl_connector.core.retry import RetryPolicy
from mirakl_connector.stripe.gateway import (
    KEY_SPENT,
    REFUSED,
    RETRY,
    UNCLEAR_ANSWER,
    UNKNOWN,
    StripeGateway,
    classify,
)

HTML_502 = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
TRANSFER = {"id": "tr_1", "object": "transfer", "amount": 100, "currency": "eur", "metadata": {}}


def stripe_error(type_: str, message: str = "no", code: str | None = None) -> bytes:
    error = {"type": type_, "message": message, **({"code": code} if code else {})}
    return json.dumps({"error": error}).encode()


class Canned:
    """An HTTP server that gives every request the same answer, and counts them."""

    def __init__(self) -> None:
        self.answer: tuple[int, dict[str, str], bytes] = (200, {}, b"{}")
        self.requests = 0
        canned = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                return

            def do_POST(self) -> None:  # noqa: N802 - stdlib name
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                canned.requests += 1
                status, headers, body = canned.answer
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture(scope="module")
def canned() -> Iterator[Canned]:
    server = Canned()
    yield server
    server.server.shutdown()


def transfer(canned: Canned, status: int, body: bytes, headers: dict | None = None):
    canned.answer = (status, headers or {}, body)
    canned.requests = 0
    gateway = StripeGateway("sk_test_x", base_url=canned.url, retry=RetryPolicy.no_wait(3))
    return gateway.create_transfer(
        amount=100, currency="EUR", destination="acct_1", idempotency_key="k", metadata={}
    )


@pytest.mark.parametrize(
    ("status", "headers", "body"),
    [
        (408, {"Content-Type": "text/html"}, b"<html><h1>408 Request Time-out</h1></html>"),
        (502, {"Content-Type": "text/html"}, HTML_502),
        (504, {"Content-Type": "text/html"}, b"<html>Gateway Time-out</html>"),
        # a proxy's own 400/404 is not Stripe refusing: no Stripe error object
        (400, {"Content-Type": "text/html"}, b"<html><h1>400 Bad Request</h1></html>"),
        (404, {}, b'{"message": "no route"}'),
        (400, {}, b'{"error": "Bad Request"}'),
        # the work may have been done and the answer mangled on the way back
        (200, {"Content-Type": "text/plain"}, b"OK"),
        (200, {}, json.dumps(TRANSFER).encode()[:30]),
        (200, {}, b"{}"),
        (200, {}, b"[]"),
        # Stripe's own errors that are not refusals
        (500, {}, stripe_error("api_error")),
        (409, {}, stripe_error("idempotency_error", "another request in progress")),
        (429, {}, stripe_error("invalid_request_error", "slow down", "rate_limit")),
        (400, {}, stripe_error("api_error")),
        (400, {"Stripe-Should-Retry": "true"}, stripe_error("invalid_request_error", code="lock")),
    ],
    ids=[
        "408-html", "502-html", "504-html", "400-html", "404-json-not-stripe",
        "400-error-string", "200-not-json", "200-truncated-json", "200-empty-object",
        "200-array", "500-stripe", "409-in-progress", "429", "400-api_error",
        "400-should-retry-true",
    ],
)  # fmt: skip
def test_an_answer_that_is_not_a_stripe_refusal_is_an_unknown_outcome_retried_with_the_key(
    canned, status, headers, body
):
    with pytest.raises(PaymentProviderError) as raised:
        transfer(canned, status, body, headers)

    assert raised.value.permanent is False
    assert canned.requests == 3  # retried with the same key until the budget ran out


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (400, stripe_error("invalid_request_error", "Transfers disabled", "transfers_not_allowed"),
         "transfers_not_allowed"),
        (400, stripe_error("invalid_request_error", "Insufficient funds", "balance_insufficient"),
         "balance_insufficient"),
        (402, stripe_error("card_error", "Your card was declined", "card_declined"),
         "card_declined"),
        (403, stripe_error("invalid_request_error", "No access", "account_invalid"), None),
        (404, stripe_error("invalid_request_error", "No such charge", "resource_missing"),
         "resource_missing"),
    ],
)  # fmt: skip
def test_a_stripe_refusal_is_permanent_and_not_retried(canned, status, body, code):
    with pytest.raises(PaymentProviderError) as raised:
        transfer(canned, status, body)

    assert raised.value.permanent is True
    assert raised.value.code == code
    assert canned.requests == 1


@pytest.mark.parametrize(
    ("status", "body", "headers", "code"),
    [
        (500, stripe_error("api_error"), {"Stripe-Should-Retry": "false"}, KEY_SPENT),
        (500, stripe_error("api_error"), {"Idempotent-Replayed": "true"}, KEY_SPENT),
        (429, stripe_error("invalid_request_error", "slow down", "rate_limit"),
         {"Stripe-Should-Retry": "false"}, None),  # the SDK keeps no code for a 429
    ],
    ids=["500-should-retry-false", "500-replayed", "429-should-retry-false"],
)  # fmt: skip
def test_an_answer_stripe_says_not_to_retry_is_sent_once_and_stays_unknown(
    canned, status, body, headers, code
):
    with pytest.raises(PaymentProviderError) as raised:
        transfer(canned, status, body, headers)

    assert raised.value.permanent is False  # unknown outcome: the caller looks it up
    assert raised.value.code == code  # KEY_SPENT: a replay of the key would answer the same
    assert canned.requests == 1


def test_an_unclear_answer_is_labelled_so(canned):
    with pytest.raises(PaymentProviderError) as raised:
        transfer(canned, 502, HTML_502, {"Content-Type": "text/html"})

    assert raised.value.code == UNCLEAR_ANSWER
    assert raised.value.http_status == 502


def test_stripe_refusing_the_key_is_a_configuration_error(canned):
    with pytest.raises(ConfigurationError):
        transfer(canned, 401, stripe_error("invalid_request_error", "Invalid API Key provided"))
    assert canned.requests == 1


def test_a_proxy_401_page_is_not_a_wrong_key(canned):
    with pytest.raises(PaymentProviderError) as raised:
        transfer(canned, 401, b"<html>401 Authorization Required</html>")
    assert raised.value.permanent is False


def test_a_good_answer_goes_through(canned):
    created = transfer(canned, 200, json.dumps(TRANSFER).encode())
    assert (created.id, created.amount, canned.requests) == ("tr_1", 100, 1)


def body(error: dict) -> dict:
    return {"error": error}


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (stripe.APIError("in progress", http_status=409), RETRY),
        (stripe.APIError("no answer"), RETRY),
        (stripe.APIConnectionError("reset"), RETRY),
        (stripe.RateLimitError("slow down", http_status=429), RETRY),
        # SDK errors without Stripe's error body (what a parse failure gives): not a refusal
        (stripe.InvalidRequestError("x", None, http_status=400), RETRY),
        (
            stripe.InvalidRequestError(
                "Transfers disabled.", None, http_status=400,
                json_body=body({"type": "invalid_request_error", "message": "x"}),
            ),
            REFUSED,
        ),
        (
            stripe.APIError(
                "boom", http_status=500, json_body=body({"type": "api_error"}),
                headers={"stripe-should-retry": "false"},
            ),
            UNKNOWN,
        ),
        (ValueError("not an answer"), UNKNOWN),
    ],
)  # fmt: skip
def test_classify(error, expected):
    assert classify(error) == expected
