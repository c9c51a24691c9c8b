"""The connector's public web endpoints, as a FastAPI app (mounted by the Airflow plugin).

* ``POST /webhooks/stripe``: verify the ``Stripe-Signature``, store the event once in the
  ledger's inbox, answer 200. No provider call: Stripe waits for the answer (and retries when it
  is slow), and a Mirakl outage must not lose or delay the acknowledgement.
* ``POST /webhooks/hyperwallet/{secret}``: Hyperwallet does not sign; the secret in the path
  (configured by the operator when registering the URL) and an optional IP allow list protect it.
  For a program with payload encryption on, the body is ``application/jose+json`` (a JWE to our
  key holding a JWS by Hyperwallet): decrypted and verified before anything else; a plain JSON
  body is then refused (the PayPal connector's notifications endpoint accepts both; an
  unsigned body is what encryption exists to exclude, so the stricter choice).
* ``GET /hyperwallet/jwks.json``: our public JWK set (public parts only) for Hyperwallet to
  encrypt to us (the PayPal connector's ``GET /jwkset``); 404 when encryption is off.
* ``GET /onboarding/refresh?token=…``: see :mod:`.refresh`.
* ``GET /health``.

Built from callables so the app knows nothing about Airflow: the plugin passes functions that
read Airflow connections, tests pass plain values. Each dependency is resolved per request, so a
rotated secret or connection takes effect without restarting the API server.

Blocking work (signature check, database) runs in a thread: the API server serves the Airflow UI
and API on the same event loop.
"""

from __future__ import annotations

import base64
import html
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from mirakl_connector.core.errors import InvalidItemError, MiraklConnectorError
from mirakl_connector.core.ids import is_ascii_digits
from mirakl_connector.hyperwallet.encryption import JoseError, PayloadEncryption, is_jose
from mirakl_connector.ledger import InboxEvent, Ledger
from mirakl_connector.ledger.inbox_events import hyperwallet_inbox_event, stripe_inbox_event
from mirakl_connector.webhooks.refresh import IncorrectToken, OnboardingRefresh
from mirakl_connector.webhooks.signature import (
    DEFAULT_TOLERANCE,
    WebhookRejected,
    ip_allowed,
    shared_secret_matches,
    verify_stripe_event,
)

log = logging.getLogger(__name__)

#: Largest body accepted (Stripe events are a few KiB; this stops memory abuse).
MAX_BODY_BYTES = 1024 * 1024


@dataclass
class WebhookAppConfig:
    """Where the app gets its secrets and clients (called per request)."""

    ledger: Callable[[], Ledger]
    stripe_secrets: Callable[[], Sequence[str]]
    hyperwallet_secrets: Callable[[], Sequence[str]] = lambda: ()
    hyperwallet_allow_list: Callable[[], Sequence[str]] = lambda: ()
    refresh: Callable[[], OnboardingRefresh] | None = None
    #: Payload encryption of the Hyperwallet program(s), or None when it is off.
    hyperwallet_encryption: Callable[[], PayloadEncryption | None] = lambda: None
    #: Called after a *new* event is stored (e.g. to post an Airflow asset event); optional.
    on_stored: Callable[[InboxEvent], Awaitable[None] | None] | None = None
    tolerance: int = DEFAULT_TOLERANCE


def create_app(config: WebhookAppConfig) -> FastAPI:
    """The FastAPI app; no docs/OpenAPI pages (plugin apps get no Airflow auth at all)."""
    app = FastAPI(
        title="Mirakl connector webhooks", docs_url=None, redoc_url=None, openapi_url=None
    )

    @app.get("/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/webhooks/stripe")
    async def stripe_webhook(request: Request) -> Response:
        payload = await _body(request)
        if isinstance(payload, Response):
            return payload
        header = request.headers.get("stripe-signature")
        try:
            event = await run_in_threadpool(
                lambda: verify_stripe_event(
                    payload, header, list(config.stripe_secrets()), tolerance=config.tolerance
                )
            )
        except WebhookRejected as exc:
            log.info("Stripe webhook rejected: %s", exc.reason)
            return _error(exc.status, exc.reason)
        row = stripe_inbox_event(event)
        return await _store(config, row)

    @app.post("/webhooks/hyperwallet")
    async def hyperwallet_webhook_basic_auth(request: Request) -> Response:
        """The same endpoint with the secret as the HTTP Basic password (any user name): the
        preferred form, because a secret in the path ends up in access logs."""
        return await hyperwallet_webhook(_basic_auth_password(request), request)

    @app.post("/webhooks/hyperwallet/{secret}")
    async def hyperwallet_webhook(secret: str | None, request: Request) -> Response:
        client_ip = request.client.host if request.client else None
        allowed = await run_in_threadpool(lambda: list(config.hyperwallet_allow_list()))
        if not ip_allowed(client_ip, allowed):
            log.info("Hyperwallet notification refused from %s (not allowed)", client_ip)
            return _error(403, "source address not allowed")
        expected = await run_in_threadpool(lambda: list(config.hyperwallet_secrets()))
        if not expected:
            return _error(503, "no Hyperwallet notification secret is configured")
        if not shared_secret_matches(secret, expected):
            return _error(401, "unknown notification secret")
        payload = await _body(request)
        if isinstance(payload, Response):
            return payload
        try:
            encryption = await run_in_threadpool(config.hyperwallet_encryption)
        except MiraklConnectorError as exc:
            log.error("Hyperwallet encryption is misconfigured: %s", exc)
            return _error(503, "payload encryption is misconfigured")
        if encryption is not None or is_jose(request.headers.get("content-type")):
            if encryption is None:
                return _error(400, "encrypted notification but payload encryption is off")
            if not is_jose(request.headers.get("content-type")):
                return _error(400, "payload encryption is on: application/jose+json expected")
            try:
                payload = await run_in_threadpool(encryption.decrypt, payload)
            except JoseError as exc:
                log.info("Hyperwallet notification refused: %s", exc)
                return _error(400, str(exc))
        try:
            body = json.loads(payload)
            if not isinstance(body, dict):
                raise ValueError
            row = hyperwallet_inbox_event(body)
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            return _error(400, "payload is not a JSON object")
        except InvalidItemError as exc:
            return _error(400, exc.reason)
        return await _store(config, row)

    @app.get("/hyperwallet/jwks.json")
    async def hyperwallet_jwks() -> Response:
        try:
            encryption = await run_in_threadpool(config.hyperwallet_encryption)
        except MiraklConnectorError:
            return _error(503, "payload encryption is misconfigured")
        if encryption is None:
            return _error(404, "payload encryption is off")
        return JSONResponse(
            encryption.public_jwks(), headers={"Cache-Control": "public, max-age=300"}
        )

    @app.get("/onboarding/refresh")
    async def onboarding_refresh(token: str | None = None) -> Response:
        # A seller's browser lands here (the link in their shop's back office): every answer is
        # a page they can read, never JSON.
        if not token:
            return _seller_page(400, *_LINK_NOT_VALID)
        if config.refresh is None:
            return _seller_page(503, *_LINK_UNAVAILABLE)
        refresh = config.refresh
        try:
            url = await run_in_threadpool(lambda: refresh().new_link(token))
        except IncorrectToken:
            return _seller_page(400, *_LINK_NOT_VALID)
        except MiraklConnectorError as exc:
            log.warning("Onboarding refresh failed: %s", exc)
            return _seller_page(502, *_LINK_UNAVAILABLE)
        return RedirectResponse(url, status_code=302)

    return app


async def _body(request: Request) -> bytes | Response:
    """The exact bytes (the signature covers them), read at most :data:`MAX_BODY_BYTES` far.

    These routes are open to anyone: a body is refused by its ``Content-Length`` before a byte
    of it is read, and a chunked one (no length) is streamed and dropped as soon as it passes
    the cap, so a 400 MB request never costs the API server (which also serves the Airflow UI
    and the task API) more than the cap.
    """
    declared = (request.headers.get("content-length") or "").strip()
    if declared:
        if not is_ascii_digits(declared):
            return _error(400, "invalid Content-Length")
        # (a length of thousands of digits is too large, and int() would refuse to read it)
        if len(declared) > 12 or int(declared) > MAX_BODY_BYTES:
            return _error(413, "payload too large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return _error(413, "payload too large")
        chunks.append(chunk)
    return b"".join(chunks)


async def _store(config: WebhookAppConfig, row: InboxEvent) -> Response:
    try:
        new = await run_in_threadpool(lambda: config.ledger().store_webhook_event(row))
    except InvalidItemError as exc:
        return _error(400, exc.reason)
    except MiraklConnectorError as exc:
        # Not stored: a 5xx makes the provider retry later, which is what we want.
        log.error("Could not store %s event %s: %s", row.source, row.event_id, exc)
        return _error(503, "could not store the event; retry later")
    if new and config.on_stored is not None:
        try:
            result = config.on_stored(row)
            if result is not None:
                await result
        except Exception:  # the event is stored: waking the DAG early is only an optimisation
            log.warning("on_stored hook failed for %s", row.event_id, exc_info=True)
    log.info(
        "%s event %s (%s) %s", row.source, row.event_id, row.type, "stored" if new else "duplicate"
    )
    return JSONResponse({"received": True, "event_id": row.event_id, "duplicate": not new})


_LINK_NOT_VALID = (
    "This link is no longer valid",
    "This payment set-up link has expired or was not recognised. Open your shop's settings in the "
    "marketplace back office and follow the payment account link there again; if it still does "
    "not work, contact the marketplace's seller support.",
)
_LINK_UNAVAILABLE = (
    "Please try again in a few minutes",
    "We could not open your payment set-up page right now. Nothing is lost: try the same link "
    "again in a few minutes.",
)


def _seller_page(status: int, title: str, message: str) -> HTMLResponse:
    """A minimal page for a seller who followed an onboarding link (no internals shown)."""
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
        '<body style="font-family: sans-serif; max-width: 36em; margin: 4em auto; padding: 0 1em">'
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>"
    )
    return HTMLResponse(body, status_code=status)


def _error(status: int, message: str) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    return JSONResponse(body, status_code=status)


def _basic_auth_password(request: Request) -> str | None:
    """The password of an ``Authorization: Basic`` header, or None."""
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2] or None
