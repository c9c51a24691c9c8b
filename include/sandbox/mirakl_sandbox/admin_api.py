"""The admin API under ``/_sandbox``: load data, read what the connector did, inject faults.

No auth (the server binds to loopback). Tests and the demo drive it through
:class:`mirakl_sandbox.client.SandboxAdmin`.
"""

from __future__ import annotations

import html
import json
import time
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from mirakl_sandbox import balances, stripe_api
from mirakl_sandbox.dates import format_iso
from mirakl_sandbox.faults import FaultConfigError
from mirakl_sandbox.generate import generate_scenario
from mirakl_sandbox.scenario import ScenarioError

if TYPE_CHECKING:
    from mirakl_sandbox.app import Sandbox

PAYOUT_STATUS_EVENTS = {
    "paid": "payout.paid",
    "failed": "payout.failed",
    "canceled": "payout.canceled",
    "in_transit": "payout.updated",
}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise ScenarioError("the request body is not valid JSON") from None


def _items(body: Any, key: str) -> list[dict[str, Any]]:
    """Accept a bare list, ``{key: [...]}`` or a single object."""
    if isinstance(body, dict) and isinstance(body.get(key), list):
        body = body[key]
    if isinstance(body, dict):
        body = [body]
    if not isinstance(body, list) or not all(isinstance(i, dict) for i in body):
        raise ScenarioError(f"expected a list of {key} objects")
    return body


def build_admin_router(sandbox: Sandbox) -> APIRouter:  # noqa: C901 - a flat list of routes
    """All ``/_sandbox`` routes bound to one sandbox."""
    router = APIRouter(prefix="/_sandbox", tags=["sandbox"])
    state, faults = sandbox.state, sandbox.faults

    async def guarded(coro_fn, *args: Any) -> Any:
        try:
            return await coro_fn(*args)
        except (ScenarioError, FaultConfigError) as exc:
            return _error(400, str(exc))

    async def merge_mirakl(request: Request, key: str) -> dict[str, Any]:
        """Merge the posted Mirakl objects into ``state.mirakl.<key>``; answer how many."""
        items = _items(await _body(request), key)
        state.merge({"mirakl": {key: items}})
        return {"ok": True, "count": len(items)}

    async def merge_stripe(request: Request, key: str) -> list[dict[str, Any]]:
        """Merge the posted Stripe objects into ``state.stripe.<key>``; answer them as stored."""
        items = _items(await _body(request), key)
        state.merge({"stripe": {key: items}})
        stored = getattr(state.stripe, key)
        return [stored.get(i["id"]) for i in items]

    # -- lifecycle ------------------------------------------------------------------------
    @router.get("/health")
    async def health() -> dict[str, Any]:
        return {"ok": True}

    @router.post("/reset")
    async def reset(request: Request) -> Any:
        async def run() -> dict[str, Any]:
            state.reset(await _body(request))
            return {"ok": True}

        return await guarded(run)

    @router.post("/scenario")
    async def merge(request: Request) -> Any:
        async def run() -> dict[str, Any]:
            body = await _body(request)
            if body:
                state.merge(body)
            return {"ok": True}

        return await guarded(run)

    @router.get("/state")
    async def snapshot() -> dict[str, Any]:
        return state.snapshot()

    @router.post("/generate")
    async def generate(request: Request) -> Any:
        async def run() -> dict[str, Any]:
            body = await _body(request) or {}
            replace = body.pop("replace", True)
            started = time.perf_counter()
            try:
                scenario = generate_scenario(**body)
            except TypeError as exc:
                raise ScenarioError(f"bad generate parameters: {exc}") from None
            if replace:
                state.reset(scenario, copy_data=False)
            else:
                state.merge(scenario, copy_data=False)
            return {
                "orders": len(scenario["mirakl"]["orders"]),
                "shops": len(scenario["mirakl"]["shops"]),
                "service_orders": len(scenario["mirakl"]["service_orders"]),
                "charges": len(scenario["stripe"]["charges"]),
                "seconds": round(time.perf_counter() - started, 3),
            }

        return await guarded(run)

    @router.get("/clock")
    async def get_clock() -> dict[str, Any]:
        return {"now": state.clock.now(), "offset": state.clock.offset}

    @router.post("/clock")
    async def set_clock(request: Request) -> Any:
        async def run() -> dict[str, Any]:
            body = await _body(request) or {}
            with state.lock:
                if "now" in body:
                    state.clock.set(float(body["now"]))
                if "advance_seconds" in body:
                    state.clock.advance(float(body["advance_seconds"]))
            return {"now": state.clock.now(), "offset": state.clock.offset}

        return await guarded(run)

    # -- faults ---------------------------------------------------------------------------
    @router.get("/faults")
    async def get_faults() -> dict[str, Any]:
        return faults.describe()

    @router.put("/faults")
    async def put_faults(request: Request) -> Any:
        async def run() -> dict[str, Any]:
            return faults.configure(await _body(request) or {})

        return await guarded(run)

    @router.delete("/faults")
    async def delete_faults() -> dict[str, Any]:
        faults.clear()
        return faults.describe()

    # -- Mirakl reads and mutators --------------------------------------------------------
    @router.get("/mirakl/calls")
    async def mirakl_calls(endpoint: str | None = None) -> list[dict[str, Any]]:
        with state.lock:
            return [c for c in state.mirakl.calls if endpoint is None or c["endpoint"] == endpoint]

    @router.delete("/mirakl/calls")
    async def clear_mirakl_calls() -> dict[str, Any]:
        with state.lock:
            state.mirakl.calls.clear()
        return {"ok": True}

    @router.get("/mirakl/orders")
    async def mirakl_orders() -> list[dict[str, Any]]:
        with state.lock:
            return list(state.mirakl.iter_orders())

    @router.get("/mirakl/orders/{order_id}")
    async def mirakl_order(order_id: str) -> Any:
        order = state.mirakl.get_order(order_id)
        return order if order is not None else _error(404, f"no order {order_id!r}")

    @router.post("/mirakl/orders")
    async def put_orders(request: Request) -> Any:
        return await guarded(merge_mirakl, request, "orders")

    @router.patch("/mirakl/orders/{order_id}")
    async def patch_order(order_id: str, request: Request) -> Any:
        async def run() -> Any:
            fields = await _body(request) or {}
            with state.lock:
                order = state.mirakl.get_order(order_id)
                if order is None:
                    return _error(404, f"no order {order_id!r}")
                order.update(fields)
                if "last_updated_date" not in fields:
                    order["last_updated_date"] = format_iso(state.clock.now())
                state.mirakl.mark_orders_changed()
                return order

        return await guarded(run)

    @router.get("/mirakl/shops")
    async def mirakl_shops() -> list[dict[str, Any]]:
        with state.lock:
            return list(state.mirakl.shops.values())

    @router.post("/mirakl/shops")
    async def put_shops(request: Request) -> Any:
        return await guarded(merge_mirakl, request, "shops")

    @router.get("/mirakl/service_orders")
    async def mirakl_service_orders() -> list[dict[str, Any]]:
        with state.lock:
            return list(state.mirakl.service_orders.values())

    @router.get("/mirakl/invoices")
    async def mirakl_invoices() -> list[dict[str, Any]]:
        with state.lock:
            return list(state.mirakl.invoices)

    # -- Stripe reads and mutators --------------------------------------------------------
    def _collection(name: str, with_owner: bool = False):
        async def read() -> list[dict[str, Any]]:
            with state.lock:
                objects = getattr(state.stripe, name).values()
                return state.with_owner(objects) if with_owner else objects

        return read

    for name, with_owner in (
        ("transfers", True),
        ("reversals", True),
        ("payouts", True),
        ("refunds", False),
        ("accounts", False),
        ("events", False),
        ("charges", False),
        ("payment_intents", False),
    ):
        router.add_api_route(f"/stripe/{name}", _collection(name, with_owner), methods=["GET"])

    @router.get("/stripe/requests")
    async def stripe_requests(path: str | None = None, method: str | None = None) -> list[Any]:
        with state.lock:
            return [
                r
                for r in state.stripe.requests
                if (path is None or r["path"] == path) and (method is None or r["method"] == method)
            ]

    @router.delete("/stripe/requests")
    async def clear_stripe_requests() -> dict[str, Any]:
        with state.lock:
            state.stripe.requests.clear()
        return {"ok": True}

    @router.get("/stripe/balance")
    async def stripe_balance() -> dict[str, int]:
        return state.platform_available()

    @router.post("/stripe/charges")
    async def put_charges(request: Request) -> Any:
        return await guarded(merge_stripe, request, "charges")

    @router.post("/stripe/payment_intents")
    async def put_payment_intents(request: Request) -> Any:
        return await guarded(merge_stripe, request, "payment_intents")

    @router.post("/stripe/accounts")
    async def put_accounts(request: Request) -> Any:
        return await guarded(merge_stripe, request, "accounts")

    @router.patch("/stripe/accounts/{account_id}")
    async def patch_account(account_id: str, request: Request) -> Any:
        async def run() -> Any:
            fields = await _body(request) or {}
            with state.lock:
                account = state.stripe.accounts.get(account_id)
                if account is None:
                    return _error(404, f"no account {account_id!r}")
                previous = {k: account.get(k) for k in fields}
                account.update(fields)
                stripe_api.emit_event(
                    None,
                    state,
                    "account.updated",
                    account,
                    account=account_id,
                    previous_attributes=previous,
                )
                return account

        return await guarded(run)

    @router.post("/stripe/payouts/{payout_id}")
    async def set_payout_status(payout_id: str, request: Request) -> Any:
        async def run() -> Any:
            fields = await _body(request) or {}
            status = fields.get("status")
            if status not in PAYOUT_STATUS_EVENTS:
                return _error(400, f"status must be one of {', '.join(PAYOUT_STATUS_EVENTS)}")
            with state.lock:
                payout = state.stripe.payouts.get(payout_id)
                if payout is None:
                    return _error(404, f"no payout {payout_id!r}")
                was = payout.get("status")
                payout.update(fields)
                if status in ("failed", "canceled") and was not in ("failed", "canceled"):
                    # A failed or cancelled payout returns its funds to the balance
                    # (docs.stripe.com/api/payouts/object, failure_code).
                    balances.credit(
                        state,
                        state.stripe.owners.get(payout_id),
                        payout["currency"],
                        payout["amount"],
                        type_="payout_failure",
                        source=payout_id,
                    )
                stripe_api.emit_event(
                    None,
                    state,
                    PAYOUT_STATUS_EVENTS[status],
                    payout,
                    account=state.stripe.owners.get(payout_id),
                )
                return payout

        return await guarded(run)

    @router.post("/stripe/events")
    async def emit(request: Request) -> Any:
        async def run() -> Any:
            body = await _body(request) or {}
            if not body.get("type") or not isinstance(body.get("object", {}), dict):
                return _error(400, "an event needs a 'type' and an 'object'")
            with state.lock:
                return stripe_api.emit_event(
                    None,
                    state,
                    body["type"],
                    body.get("object") or {},
                    account=body.get("account"),
                    previous_attributes=body.get("previous_attributes"),
                )

        return await guarded(run)

    # -- webhook emission (see sandbox/webhooks.py) -----------------------------------------
    @router.get("/webhooks")
    async def get_webhooks() -> dict[str, Any]:
        return state.webhooks.config()

    @router.put("/webhooks")
    async def put_webhooks(request: Request) -> Any:
        return {"config": state.webhooks.configure(await _body(request) or {})}

    @router.post("/webhooks/flush")
    async def flush_webhooks(request: Request) -> Any:
        body = await _body(request) or {}
        return {"flushed": state.webhooks.flush(reverse=bool(body.get("reverse")))}

    # -- pages the onboarding / dashboard links point to ----------------------------------
    @router.get("/onboarding/{account_id}", response_class=HTMLResponse)
    async def onboarding(account_id: str, return_url: str | None = None) -> Response:
        with state.lock:
            account = state.stripe.accounts.get(account_id)
            if account is None:
                return HTMLResponse("<h1>Unknown account</h1>", status_code=404)
            previous = {
                k: account.get(k)
                for k in ("details_submitted", "charges_enabled", "payouts_enabled", "capabilities")
            }
            # Requirements met: every requested capability becomes active
            # (docs.stripe.com/connect/account-capabilities). ``charges_enabled`` follows
            # card_payments: a transfers-only seller never gets it; an account without any
            # capability (older scenarios) keeps the old behaviour.
            capabilities = {name: "active" for name in account.get("capabilities") or {}}
            charges = "card_payments" in capabilities or not capabilities
            account.update(
                details_submitted=True,
                charges_enabled=charges,
                payouts_enabled=True,
                capabilities=capabilities,
            )
            account["requirements"] = {
                **account["requirements"],
                "currently_due": [],
                "disabled_reason": None,
            }
            stripe_api.emit_event(
                None,
                state,
                "account.updated",
                account,
                account=account_id,
                previous_attributes=previous,
            )
        link = f'<p><a href="{html.escape(return_url)}">Return</a></p>' if return_url else ""
        return HTMLResponse(
            f"<h1>Sandbox onboarding</h1><p>Account {html.escape(account_id)} is now fully "
            f"onboarded (capabilities active, payouts enabled).</p>{link}"
        )

    @router.get("/dashboard/{account_id}", response_class=HTMLResponse)
    async def dashboard(account_id: str) -> Response:
        account = state.stripe.accounts.get(account_id)
        if account is None:
            return HTMLResponse("<h1>Unknown account</h1>", status_code=404)
        return HTMLResponse(
            f"<h1>Sandbox dashboard</h1><pre>{html.escape(json.dumps(account, indent=2))}</pre>"
        )

    return router
