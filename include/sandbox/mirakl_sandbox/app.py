"""Build the FastAPI app: Mirakl under ``/api``, Stripe under ``/v1``, admin under ``/_sandbox``.

The per-call pipeline lives here (auth, rate limit, faults, latency, idempotency, request logs);
the API modules only decide answers. Handlers are ``async`` and never block: latency and timeouts
are ``asyncio.sleep`` so one slow call does not stall the others.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from mirakl_sandbox import mirakl_api, stripe_api
from mirakl_sandbox.admin_api import build_admin_router
from mirakl_sandbox.faults import FaultInjector
from mirakl_sandbox.formdecode import decode_form
from mirakl_sandbox.hyperwallet_api import build_hyperwallet_router
from mirakl_sandbox.state import SandboxState

IDEMPOTENCY_TTL_SECONDS = 24 * 3600
SHOULD_RETRY = "Stripe-Should-Retry"
STRIPE_VERSION = "2026-10-28.endive"
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


@dataclass
class Sandbox:
    """What the routes share: the state and the fault injector."""

    state: SandboxState
    faults: FaultInjector


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    """Serialise with ``json.dumps`` (fast enough for 100-item pages; keeps bodies replayable)."""
    if status == 204 or body is None:
        return Response(status_code=status, headers=headers)
    if isinstance(body, bytes):  # a file (Mirakl S31)
        return Response(body, status_code=status, headers=headers,
                        media_type="application/octet-stream")  # fmt: skip
    content = json.dumps(body, separators=(",", ":"), default=str)
    return Response(content, status_code=status, headers=headers, media_type="application/json")


def build_app(
    state: SandboxState | None = None,
    faults: FaultInjector | None = None,
) -> FastAPI:
    """Create the app around ``state`` (a fresh empty one by default)."""
    sandbox = Sandbox(state or SandboxState(), faults or FaultInjector())
    app = FastAPI(title="Mirakl + Stripe sandbox", docs_url="/_sandbox/docs", openapi_url=None)
    app.state.sandbox = sandbox
    app.include_router(build_admin_router(sandbox))
    app.include_router(build_hyperwallet_router(sandbox))  # /rest/v4 + /_sandbox/hyperwallet

    @app.api_route("/api/{path:path}", methods=_METHODS, include_in_schema=False)
    async def mirakl(request: Request, path: str) -> Response:
        return await _mirakl_call(sandbox, request)

    @app.api_route("/v1/{path:path}", methods=_METHODS, include_in_schema=False)
    async def stripe(request: Request, path: str) -> Response:
        return await _stripe_call(sandbox, request)

    return app


# -- Mirakl ---------------------------------------------------------------------------------------
def _mirakl_authorized(state: SandboxState, header: str | None) -> bool:
    if not header:
        return False
    token = header[7:] if header.lower().startswith("bearer ") else header
    return hmac.compare_digest(token.strip().encode(), state.mirakl.api_key.encode())


async def _mirakl_call(sandbox: Sandbox, request: Request) -> Response:
    state, faults = sandbox.state, sandbox.faults
    method, path = request.method, request.url.path
    code, _handler = mirakl_api.route(method, path)
    query = list(request.query_params.multi_items())
    raw = await request.body()
    body: Any = None
    status, payload, headers = 200, None, {}
    fault = None
    settings = faults.settings("mirakl")
    if raw:
        try:
            body = json.loads(raw)
        except ValueError:
            status, payload = 400, {"status": 400, "message": "The request body is not valid JSON"}
    if payload is None and not _mirakl_authorized(state, request.headers.get("authorization")):
        status, payload = 401, {"status": 401, "message": "Unauthorized"}
    elif payload is None and faults.over_rate_limit("mirakl"):
        status, payload = 429, {"status": 429, "message": "Too Many Requests"}
        headers = {"Retry-After": str(settings.retry_after_seconds)}
        fault = "rate_limit_bucket"
    if payload is None:
        if settings.latency_ms:
            await asyncio.sleep(settings.latency_ms / 1000)
        fault = faults.decide("mirakl", method, path)
        if fault == "error":
            status, payload = 500, {"status": 500, "message": "Internal Server Error"}
        elif fault == "rate_limit":
            status, payload = 429, {"status": 429, "message": "Too Many Requests"}
            headers = {"Retry-After": str(settings.retry_after_seconds)}
        elif fault == "timeout":
            await asyncio.sleep(settings.timeout_seconds)
            status, payload = 504, {"status": 504, "message": "Gateway Timeout"}
        else:
            base = f"{request.url.scheme}://{request.url.netloc}{path}"
            req = mirakl_api.MiraklRequest(method, path, query, body, base)
            result = mirakl_api.dispatch(state, req)
            status, payload, headers = result.status, result.body, result.headers
    with state.lock:
        state.mirakl.calls.append(
            {
                "seq": len(state.mirakl.calls) + 1,
                "endpoint": code,
                "method": method,
                "path": path,
                "query": _query_dict(query),
                "body": body,
                "status": status,
                "fault": fault,
                "at": state.clock.now(),
            }
        )
    return json_response(status, payload, headers)


def _query_dict(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            out[key] = [*out[key], value] if isinstance(out[key], list) else [out[key], value]
        else:
            out[key] = value
    return out


# -- Stripe ---------------------------------------------------------------------------------------
def _stripe_error(status: int, type_: str, message: str, code: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": type_, "message": message}
    if code:
        error["code"] = code
    return {"error": error}


def _stripe_api_key(header: str | None) -> str | None:
    if header and header.lower().startswith("bearer "):
        return header[7:].strip()
    return None


async def _stripe_call(sandbox: Sandbox, request: Request) -> Response:
    state, faults = sandbox.state, sandbox.faults
    settings = faults.settings("stripe")
    method, path = request.method, request.url.path
    request_id = state.new_id("req")
    account = request.headers.get("stripe-account") or None
    key = request.headers.get("idempotency-key") if method == "POST" else None
    raw = await request.body() if method != "GET" else request.url.query.encode()
    params = decode_form(raw or b"")
    headers = {"Request-Id": request_id, "Stripe-Version": STRIPE_VERSION}
    if key:
        headers["Idempotency-Key"] = key
    log = {
        "id": request_id,
        "method": method,
        "path": path,
        "params": params,
        "idempotency_key": key,
        "stripe_account": account,
        "replayed": False,
        "fault": None,
        "created": state.now(),
    }

    def finish(status: int, body: Any, content: str | None = None) -> Response:
        log["status"] = status
        with state.lock:
            state.stripe.requests.append(log)
        if content is not None:
            return Response(
                content, status_code=status, headers=headers, media_type="application/json"
            )
        return json_response(status, body, headers)

    api_key = _stripe_api_key(request.headers.get("authorization"))
    if api_key is None:
        return finish(
            401, _stripe_error(401, "invalid_request_error", "You did not provide an API key.")
        )
    if not hmac.compare_digest(api_key.encode(), state.stripe.api_key.encode()):
        return finish(401, _stripe_error(401, "invalid_request_error", "Invalid API Key provided."))
    # Rate limiters run before the idempotency layer, so a 429 is never saved for a key
    # (https://docs.stripe.com/error-low-level, content errors).
    handler, _args = stripe_api.route(method, path)
    endpoint = f"{method} {handler.__name__ if handler else path}"
    limited = faults.over_documented_limit(api_key, method, path, endpoint)
    if limited or faults.over_rate_limit("stripe"):
        log["fault"] = f"rate_limit_{limited}" if limited else "rate_limit_bucket"
        return finish(429, _rate_limit_body())
    fault = faults.decide("stripe", method, path, key)
    log["fault"] = fault
    # These three happen before the endpoint began executing, so nothing is saved for the key
    # (docs.stripe.com/idempotency: results are saved only once execution begins).
    if fault in ("error", "rate_limit", "timeout"):
        if settings.latency_ms:
            await asyncio.sleep(settings.latency_ms / 1000)
        if fault == "error":
            return finish(500, _stripe_error(500, "api_error", "An unknown error occurred."))
        if fault == "rate_limit":
            return finish(429, _rate_limit_body())
        await asyncio.sleep(settings.timeout_seconds)
        return finish(504, _stripe_error(504, "api_error", "The request timed out."))

    # Stripe's parameter contract (see stripe_contract.py), checked before the idempotency layer:
    # "Results are only saved if an API endpoint started executing. If incoming parameters
    # failed validation [...] no idempotent result is saved"
    # (docs.stripe.com/api/idempotent_requests).
    refused = stripe_api.check_contract(method, path, params)
    if refused is not None:
        log["refused"] = refused[1]["error"].get("code") or "invalid"
        return finish(*refused)
    store_key = (api_key, account, key) if key else None
    if store_key is not None:
        with state.lock:
            record = _live_record(state, store_key)
            if record is not None:
                if record["in_flight"]:
                    return finish(
                        409,
                        _stripe_error(
                            409,
                            "idempotency_error",
                            "There is currently another in-progress request using this "
                            f"idempotency key (that is, '{key}'). Please try again later.",
                        ),
                    )
                if (record["method"], record["path"], record["params"]) != (method, path, params):
                    return finish(
                        400,
                        _stripe_error(
                            400,
                            "idempotency_error",
                            _mismatch_message(key),
                        ),
                    )
                # The saved answer, errors included (a saved 500 keeps its Stripe-Should-Retry).
                headers.update(record.get("headers") or {})
                headers["Idempotent-Replayed"] = "true"
                headers["Original-Request"] = record["request_id"]
                log["replayed"] = True
                if settings.latency_ms:
                    await asyncio.sleep(settings.latency_ms / 1000)
                return finish(record["status"], None, record["content"])
            record = {
                "method": method,
                "path": path,
                "params": params,
                "in_flight": True,
                "created": state.clock.now(),
                "request_id": request_id,
            }
            state.stripe.idempotency[store_key] = record
    if settings.latency_ms:
        try:
            await asyncio.sleep(settings.latency_ms / 1000)
        except BaseException:
            # The client went away (a killed task) before the request ran: like Stripe, keep
            # nothing for a request that never started, so the key is not "in progress" for ever.
            if store_key is not None:
                with state.lock:
                    state.stripe.idempotency.pop(store_key, None)
            raise
    base_url = f"{request.url.scheme}://{request.url.netloc}"
    ctx = stripe_api.StripeContext(state, method, path, params, account, key, request_id, base_url)
    if fault == "saved_error":
        status, body = 500, _stripe_error(500, "api_error", "An unknown error occurred.")
    else:
        status, body = stripe_api.dispatch(ctx)
        if fault == "error_after_work":
            status, body = 500, _stripe_error(500, "api_error", "An unknown error occurred.")
    if status >= 500:
        # Stripe saves a 500 for the key and tells the client a retry is pointless
        # (stripe-python, _http_client._should_retry: "we expect the stripe-should-retry header
        # to be false in most cases when a 500 is returned, since our idempotency framework would
        # typically replay it anyway").
        headers[SHOULD_RETRY] = "false"
    content = json.dumps(body, separators=(",", ":"), default=str)
    if store_key is not None:
        with state.lock:
            if _saved(status, body):
                saved = {SHOULD_RETRY: headers[SHOULD_RETRY]} if SHOULD_RETRY in headers else {}
                record.update(in_flight=False, status=status, content=content, headers=saved)
            else:
                state.stripe.idempotency.pop(store_key, None)
    if fault == "lost_response":
        return finish(500, _stripe_error(500, "api_error", "An unknown error occurred."))
    return finish(status, None, content)


def _saved(status: int, body: dict[str, Any]) -> bool:
    """Whether Stripe's idempotency layer keeps this answer for the key.

    Docs (https://docs.stripe.com/idempotency, https://docs.stripe.com/api/idempotent_requests):
    the status code and body of the first request are saved "regardless of whether it succeeds
    or fails", and replayed "including 500 errors"; but results are saved only once an endpoint
    began executing: a request whose parameters failed validation saves nothing. The simulator
    reads Stripe's parameter-validation codes (``parameter_unknown``, ``parameter_invalid_*``,
    ``parameter_missing``) as failing before execution; every other answer is saved.
    """
    if status < 400:
        return True
    code = (body.get("error") or {}).get("code") if isinstance(body, dict) else None
    return not (status == 400 and isinstance(code, str) and code.startswith("parameter_"))


def _live_record(state: SandboxState, store_key: tuple[str, str | None, str]) -> dict | None:
    record = state.stripe.idempotency.get(store_key)
    if record is not None and state.clock.now() - record["created"] >= IDEMPOTENCY_TTL_SECONDS:
        del state.stripe.idempotency[store_key]
        return None
    return record


def _mismatch_message(key: str) -> str:
    return (
        "Keys for idempotent requests can only be used with the same parameters they were first "
        f"used with. Try using a key other than '{key}' if you meant to execute a different "
        "request."
    )


def _rate_limit_body() -> dict[str, Any]:
    """Stripe's 429 (https://docs.stripe.com/rate-limits, error code ``rate_limit``:
    https://docs.stripe.com/error-codes). No ``Retry-After`` and no ``Stripe-Should-Retry``:
    Stripe documents neither for a rate-limited request (stripe-python reads no Retry-After and,
    without the header, does not retry a 429 itself); the client's back-off decides."""
    body = _stripe_error(
        429,
        "invalid_request_error",
        "Too many requests hit the API too quickly. We recommend an exponential backoff of your "
        "requests.",
        code="rate_limit",
    )
    body["error"]["doc_url"] = "https://stripe.com/docs/error-codes/rate-limit"
    return body
