"""Issue 11 point 6: the public webhook routes never read more than the body cap.

The app is driven at the ASGI level with a ``receive`` that hands out the body in 64 KiB chunks
and counts them: what matters is how much of a huge body the route *pulls*, not only the status
it answers (the old code read the whole body, then answered 413).
"""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from mirakl_connector.webhooks.app import MAX_BODY_BYTES

from .conftest import HW_SECRET, webhook_app  # noqa: TID252

CHUNK = 64 * 1024
HUGE = 400 * 1024 * 1024  # what took the API server past 1 GB


class _Body:
    """A request body handed out chunk by chunk; ``pulled`` is how much the app asked for."""

    def __init__(self, data_size: int, *, chunk: int = CHUNK, data: bytes | None = None):
        self.data, self.size, self.chunk, self.pulled = data, data_size, chunk, 0

    async def receive(self):
        size = min(self.chunk, self.size - self.pulled)
        start, self.pulled = self.pulled, self.pulled + size
        part = self.data[start : self.pulled] if self.data is not None else b"x" * size
        return {"type": "http.request", "body": part, "more_body": self.pulled < self.size}


def _post(app, path, body: _Body, *, content_length=None, headers=()):
    """POST ``body`` to ``path`` over ASGI; return the response status."""
    answer: dict = {}

    async def send(message):
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]

    raw_headers = [(b"content-type", b"application/json"), *headers]
    if content_length is not None:
        raw_headers.append((b"content-length", str(content_length).encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "headers": raw_headers, "client": ("127.0.0.1", 5000),
             "server": ("127.0.0.1", 8080)}  # fmt: skip
    asyncio.run(app(scope, body.receive, send))
    return answer["status"]


@pytest.fixture
def app(wh_ledger):
    return webhook_app(wh_ledger, ())


BASIC = (b"authorization", b"Basic " + base64.b64encode(f"hyperwallet:{HW_SECRET}".encode()))
ROUTES = {
    "stripe": ("/webhooks/stripe", ()),
    "hyperwallet-basic-auth": ("/webhooks/hyperwallet", (BASIC,)),
    "hyperwallet-secret-path": (f"/webhooks/hyperwallet/{HW_SECRET}", ()),
}


@pytest.mark.parametrize("route", ROUTES)
def test_a_declared_length_over_the_cap_is_refused_before_reading(app, route):
    path, headers = ROUTES[route]
    body = _Body(HUGE)
    assert _post(app, path, body, content_length=HUGE, headers=headers) == 413
    assert body.pulled == 0


@pytest.mark.parametrize("route", ROUTES)
def test_a_chunked_body_is_dropped_as_soon_as_it_passes_the_cap(app, route):
    path, headers = ROUTES[route]
    body = _Body(HUGE)
    assert _post(app, path, body, headers=headers) == 413  # no Content-Length: streamed
    assert body.pulled <= MAX_BODY_BYTES + CHUNK


def test_a_malformed_content_length_is_refused(app):
    body = _Body(10)
    assert _post(app, "/webhooks/stripe", body, content_length="-1") == 400
    assert _post(app, "/webhooks/stripe", body, content_length="9" * 5000) == 413
    assert body.pulled == 0


def test_a_chunked_body_under_the_cap_is_still_read_whole(app, wh_ledger):
    """The cap does not cut a normal notification: it is read and stored."""
    notification = {"token": "wbh-1", "type": "PAYMENTS.UPDATED.STATUS.COMPLETED",
                    "createdOn": "2026-11-20T10:00:00", "object": {"token": "pmt-1"}}  # fmt: skip
    data = json.dumps(notification).encode()
    body = _Body(len(data), chunk=7, data=data)
    assert _post(app, f"/webhooks/hyperwallet/{HW_SECRET}", body) == 200
    assert wh_ledger.inbox_event_ids("hyperwallet", ["wbh-1"]) == {"wbh-1"}
