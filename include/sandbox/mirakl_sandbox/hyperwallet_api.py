"""Hyperwallet REST v4 as the sandbox answers it, under ``/rest/v4``, plus its admin routes.

What is simulated (the calls the connector makes):

* ``/users`` (create, get, update, list by ``clientUserId`` / ``programToken`` / ``email`` /
  ``createdAfter`` / ``createdBefore``); ``clientUserId`` is unique per program.
* ``/users/{u}/bank-accounts``: create, get, update, list. Numbers come back masked
  (``****6726``); a country/currency/type Hyperwallet does not support is refused with
  ``EXTERNAL_ACCOUNT_TYPE_NOT_SUPPORTED``; ``transferMethodCountry`` and ``type`` cannot change
  on update; the same account twice is ``DUPLICATE_EXTERNAL_ACCOUNT_CREATION``.
* ``/users/{u}/business-stakeholders``: create, update, list; unknown fields, non-boolean roles,
  genders / id types outside the enums, malformed dates and countries are refused.
* Verification documents: multipart ``PUT /users/{u}`` and ``PUT /users/{u}/business-
  stakeholders/{stk}`` (form field ``data`` + ``<type>_front``/``_back`` files); stored on the
  user or stakeholder with status ``NEW`` (the admin's user status call sets VALID / INVALID).
* ``/payments``: create (the destination must be a known ``trm-``/``usr-`` token), get, list
  by ``clientPaymentId``. Whether Hyperwallet refuses a reused ``clientPaymentId`` is not
  documented (docs.hyperwallet.com, Payments, is silent on it); by default the simulator refuses
  one among the
  payments that did not fail (the stricter choice), and a scenario's
  ``hyperwallet.refuse_duplicate_client_payment_ids: false`` turns that off, so that tests prove
  the connector itself never sends a payment twice.
* ``/webhook-notifications``: get by token, list; ``/programs/{token}``.
* Lists use v4 cursor paging (``limit``, ``after``; ``links`` with ``rel=next``); an empty list
  is ``204``. Errors are ``{"errors": [{"code", "fieldName", "message"}]}``. Auth is HTTP Basic
  (``hyperwallet.username`` / ``hyperwallet.password`` of the scenario).

Notifications (the webhooks Hyperwallet sends) are made by the admin API: a payment's status
change (``POST /_sandbox/hyperwallet/payments/{token}/status``), a user's or stakeholder's
verification change, or any notification. Each is stored (``GET /webhook-notifications/{t}``)
and POSTed as JSON to the configured URL: at once, twice (``duplicate``), or held until
``/flush`` (``reverse`` delivers newest first: out of order). Deliveries run in a worker
thread of the admin call, so the call returns once they are done.

Payload encryption (a scenario's ``hyperwallet.encryption``: ``{"client_jwks": <our public JWK
set>}`` or ``{"client_jwks_url": <our /hyperwallet/jwks.json>}``), as Hyperwallet does for a
program that has it on (its SDKs' ``HyperwalletEncryption``, github.com/hyperwallet/java-sdk,
and the PayPal connector's ``HYPERWALLET_ENCRYPTION_*`` settings): request bodies must be
``application/jose+json``,
a JWE to the simulator's key (served at ``GET /jwkset`` like ``https://api.paylution.com/jwkset``)
holding a JWS by the client with an unexpired critical ``exp``; a plain JSON body, a body that does
not decrypt or verify is refused with 400 (Hyperwallet's documentation is silent on the code for
a plain body: the stricter choice, never silently accepted). Every answer with a body, errors
included, comes back signed and encrypted to the client's key, and notifications are POSTed the
same way. The call log keeps the decrypted body and ``encrypted: true``.

Fault rules with ``"target": "hyperwallet"`` apply (``lost_response`` does the work, then
answers 500).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from mirakl_connector.hyperwallet.encryption import (
    CONTENT_TYPE as JOSE_CONTENT_TYPE,
)
from mirakl_connector.hyperwallet.encryption import (
    JoseError,
    PayloadEncryption,
    is_jose,
)
from mirakl_sandbox.scenario import ScenarioError

if TYPE_CHECKING:
    from mirakl_sandbox.app import Sandbox

from mirakl_sandbox.hyperwallet_data import PREFIX, HyperwalletData, HyperwalletError
from mirakl_sandbox.hyperwallet_notify import (
    deliver,
    make_notification,
    parse_multipart,
    queue_or_send,
)
from mirakl_sandbox.hyperwallet_rest import _Call, handle


# -- routers ----------------------------------------------------------------------------------
def _authorized(data: HyperwalletData, header: str | None) -> bool:
    if not header or not header.lower().startswith("basic "):
        return False
    try:
        decoded = base64.b64decode(header[6:].strip()).decode()
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, _, password = decoded.partition(":")
    expected = f"{data.username}:{data.password}".encode()
    return hmac.compare_digest(f"{user}:{password}".encode(), expected)


def _json(status: int, body: Any, encryption: PayloadEncryption | None = None) -> Response:
    if status == 204 or body is None:
        return Response(status_code=status)
    text = json.dumps(body, separators=(",", ":"), default=str)
    if encryption is not None:
        return Response(encryption.encrypt(text), status_code=status, media_type=JOSE_CONTENT_TYPE)
    return Response(text, status_code=status, media_type="application/json")


def _open_body(hw: HyperwalletData, raw: bytes, content_type: str | None) -> Any:
    """The request's JSON body, decrypted and verified when the program encrypts."""
    if hw.encryption is not None:
        if not is_jose(content_type):
            raise HyperwalletError(
                400, "INVALID_REQUEST", "payload encryption is on: application/jose+json expected"
            )
        try:
            raw = hw.encryption.decrypt(raw)
        except JoseError as exc:
            raise HyperwalletError(400, "INVALID_REQUEST", str(exc)) from None
    try:
        return json.loads(raw)
    except ValueError:
        raise HyperwalletError(400, "INVALID_REQUEST", "invalid JSON") from None


def build_hyperwallet_router(sandbox: Sandbox) -> APIRouter:  # noqa: C901 - a flat list of routes
    """``/rest/v4/...`` and the ``/_sandbox/hyperwallet/...`` admin routes."""
    router = APIRouter()
    state, faults = sandbox.state, sandbox.faults

    def data() -> HyperwalletData:
        return state.hyperwallet

    @router.api_route(
        PREFIX + "/{path:path}", methods=["GET", "POST", "PUT", "DELETE"], include_in_schema=False
    )
    async def rest(request: Request, path: str) -> Response:
        hw = data()
        raw = await request.body()
        body: Any = None
        files: dict[str, tuple[str, bytes]] | None = None
        status, payload, fault = 200, None, None
        answer_encrypted = hw.encryption is not None
        content_type = request.headers.get("content-type") or ""
        if raw and content_type.startswith("multipart/form-data"):
            try:
                body, files = parse_multipart(content_type, raw)
            except ValueError as exc:
                status = 400
                payload = {"errors": [{"code": "INVALID_REQUEST", "message": str(exc)}]}
        elif raw:
            try:
                body = _open_body(hw, raw, request.headers.get("content-type"))
            except HyperwalletError as exc:
                status, payload = exc.status, exc.body
                # a body we could not open: its sender may hold no keys, the refusal is plain
                # (not documented by Hyperwallet; the readable choice)
                answer_encrypted = False
        if payload is None and not _authorized(hw, request.headers.get("authorization")):
            status = 401
            payload = {"errors": [{"code": "UNAUTHORIZED", "message": "Authentication failed"}]}
        if payload is None:
            settings = faults.settings("hyperwallet")
            if settings.latency_ms:
                await asyncio.sleep(settings.latency_ms / 1000)
            fault = faults.decide("hyperwallet", request.method, request.url.path)
            if fault == "error":
                status = 500
                payload = {"errors": [{"code": "SERVER_ERROR", "message": "Internal error"}]}
            elif fault == "rate_limit":
                status = 429
                payload = {"errors": [{"code": "TOO_MANY_REQUESTS", "message": "Slow down"}]}
            elif fault == "timeout":
                await asyncio.sleep(settings.timeout_seconds)
                status, payload = 504, {"errors": [{"code": "TIMEOUT", "message": "Timeout"}]}
            else:
                call = _Call(
                    request.method,
                    "/" + path,
                    list(request.query_params.multi_items()),
                    body,
                    f"{request.url.scheme}://{request.url.netloc}",
                    files,
                )
                with state.lock:
                    try:
                        status, payload = handle(hw, state.clock.now(), call)
                    except HyperwalletError as exc:
                        status, payload = exc.status, exc.body
                if fault == "lost_response":
                    status = 500
                    payload = {"errors": [{"code": "SERVER_ERROR", "message": "Internal error"}]}
        with state.lock:
            hw.calls.append(
                {
                    "seq": len(hw.calls) + 1,
                    "method": request.method,
                    "path": request.url.path,
                    "query": dict(request.query_params),
                    "body": body,
                    "files": {k: len(v[1]) for k, v in (files or {}).items()} or None,
                    "status": status,
                    "fault": fault,
                    "encrypted": hw.encryption is not None,
                }
            )
        return _json(status, payload, hw.encryption if answer_encrypted else None)

    @router.get("/jwkset", include_in_schema=False)
    async def hw_jwkset() -> dict[str, Any]:
        """Hyperwallet's public JWK set (``https://api.paylution.com/jwkset``, the PayPal
        connector's ``PAYPAL_HYPERWALLET_KEY_SET_LOCATION``)."""
        from mirakl_connector.hyperwallet.encryption import public_key_set

        return public_key_set(data().jose_keys())

    # -- admin ------------------------------------------------------------------------------
    admin = "/_sandbox/hyperwallet"

    def base_of(request: Request) -> str:
        return f"{request.url.scheme}://{request.url.netloc}"

    async def body_of(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if not raw.strip():
            return {}
        value = json.loads(raw)
        if not isinstance(value, dict):
            raise ScenarioError("expected a JSON object")
        return value

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    async def emit(
        request: Request, type_: str, obj: dict[str, Any], created_on: str | None
    ) -> dict[str, Any]:
        hw = data()
        with state.lock:
            notification = make_notification(
                hw, state.clock.now(), base_of(request), type_, obj, created_on
            )
            batch = queue_or_send(hw, notification)
        results = await run_in_threadpool(deliver, hw, batch) if batch else []
        return {"notification": notification, "deliveries": results}

    @router.get(admin + "/state", include_in_schema=False)
    async def hw_state() -> dict[str, Any]:
        with state.lock:
            return data().snapshot()

    @router.post(admin + "/data", include_in_schema=False)
    async def hw_data(request: Request) -> Any:
        try:
            section = await body_of(request)
            with state.lock:
                data().load(section, state.clock.now())
        except (ScenarioError, ValueError) as exc:
            return error(400, str(exc))
        return {"ok": True}

    @router.get(admin + "/calls", include_in_schema=False)
    async def hw_calls(path: str | None = None, method: str | None = None) -> list[Any]:
        with state.lock:
            return [
                c
                for c in data().calls
                if (path is None or c["path"].startswith(path))
                and (method is None or c["method"] == method.upper())
            ]

    @router.delete(admin + "/calls", include_in_schema=False)
    async def hw_clear_calls() -> dict[str, Any]:
        with state.lock:
            data().calls.clear()
        return {"ok": True}

    @router.get(admin + "/webhooks", include_in_schema=False)
    async def hw_webhooks() -> dict[str, Any]:
        hw = data()
        return {"config": hw.webhook, "held": len(hw.held), "deliveries": list(hw.deliveries)}

    @router.put(admin + "/webhooks", include_in_schema=False)
    async def hw_set_webhooks(request: Request) -> Any:
        try:
            config = await body_of(request)
        except (ScenarioError, ValueError) as exc:
            return error(400, str(exc))
        with state.lock:
            data().webhook = config
            data().held = []
        return {"config": config}

    @router.post(admin + "/webhooks/flush", include_in_schema=False)
    async def hw_flush(request: Request) -> Any:
        options = await body_of(request)
        hw = data()
        with state.lock:
            held, hw.held = hw.held, []
        if options.get("reverse"):
            held.reverse()
        results = await run_in_threadpool(deliver, hw, held) if held else []
        return {"delivered": len(held), "deliveries": results}

    @router.post(admin + "/webhooks/redeliver", include_in_schema=False)
    async def hw_redeliver(request: Request) -> Any:
        options = await body_of(request)
        hw = data()
        notification = hw.notifications.get(str(options.get("token")))
        if notification is None:
            return error(404, f"unknown notification {options.get('token')!r}")
        batch = [notification] * int(options.get("times", 1))
        return {"deliveries": await run_in_threadpool(deliver, hw, batch)}

    @router.post(admin + "/payments/{token}/status", include_in_schema=False)
    async def hw_payment_status(token: str, request: Request) -> Any:
        options = await body_of(request)
        status = str(options.get("status") or "").upper()
        if not status:
            return error(400, "status is required")
        with state.lock:
            payment = data().payments.get(token)
            if payment is None:
                return error(404, f"unknown payment {token}")
            payment["status"] = status
            obj = dict(payment)
        kind = f"PAYMENTS.UPDATED.STATUS.{status}"
        return await emit(request, kind, obj, options.get("createdOn"))

    @router.post(admin + "/users/{token}/status", include_in_schema=False)
    async def hw_user_status(token: str, request: Request) -> Any:
        options = await body_of(request)
        keys = ("verificationStatus", "businessStakeholderVerificationStatus",
                "letterOfAuthorizationStatus", "status", "documents")  # fmt: skip
        with state.lock:
            user = data().users.get(token)
            if user is None:
                return error(404, f"unknown user {token}")
            user.update({k: v for k, v in options.items() if k in keys})
            obj = dict(user)
        kind = options.get("type") or (
            f"USERS.UPDATED.VERIFICATION_STATUS.{user.get('verificationStatus')}"
        )
        return await emit(request, kind, obj, options.get("createdOn"))

    @router.post(admin + "/stakeholders/{token}/status", include_in_schema=False)
    async def hw_stakeholder_status(token: str, request: Request) -> Any:
        options = await body_of(request)
        with state.lock:
            stakeholder = data().stakeholders.get(token)
            if stakeholder is None:
                return error(404, f"unknown stakeholder {token}")
            if options.get("verificationStatus"):
                stakeholder["verificationStatus"] = options["verificationStatus"]
            obj = dict(stakeholder)
        kind = options.get("type") or (
            "USERS.BUSINESS_STAKEHOLDERS.UPDATED.VERIFICATION_STATUS."
            f"{stakeholder.get('verificationStatus')}"
        )
        return await emit(request, kind, obj, options.get("createdOn"))

    @router.post(admin + "/notifications", include_in_schema=False)
    async def hw_notification(request: Request) -> Any:
        options = await body_of(request)
        if not options.get("type") or not isinstance(options.get("object"), dict):
            return error(400, "type and object are required")
        return await emit(request, options["type"], options["object"], options.get("createdOn"))

    @router.get("/_sandbox/mirakl/billing_cycles", include_in_schema=False)
    async def billing_cycles() -> list[dict[str, Any]]:
        with state.lock:
            return list(state.mirakl.billing_cycles)

    @router.post("/_sandbox/mirakl/billing_cycles", include_in_schema=False)
    async def put_billing_cycles(request: Request) -> Any:
        try:
            raw = json.loads(await request.body() or b"[]")
            cycles = raw if isinstance(raw, list) else [raw]
            state.merge({"mirakl": {"billing_cycles": cycles}})
        except (ScenarioError, ValueError) as exc:
            return error(400, str(exc))
        return {"ok": True, "count": len(cycles)}

    return router
