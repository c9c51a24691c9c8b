"""The Mirakl operator API as the sandbox answers it (pure: request in, response out).

Shapes follow the incumbent connector's fixtures and the operator OpenAPI: offset pagination with
``total_count`` and a ``Link`` header for the core APIs, seek pagination with ``page_token`` for the
``/api/mms`` service APIs, and ``{"status", "message"}`` error bodies. Transport concerns (auth,
faults, latency, the call log) live in :mod:`mirakl_sandbox.app`.
"""

from __future__ import annotations

import re

from mirakl_sandbox.mirakl_common import Handler, MiraklError, MiraklRequest, MiraklResponse
from mirakl_sandbox.mirakl_invoices import (
    confirm_billing_cycles,
    confirm_invoice_payments,
    list_billing_cycles,
    list_invoices,
)
from mirakl_sandbox.mirakl_orders import (
    list_orders,
    list_pending_debits,
    list_pending_refunds,
    list_service_debits,
    list_service_orders,
    list_service_refunds,
    validate_debits,
    validate_refunds,
    validate_service_refunds,
)
from mirakl_sandbox.mirakl_shops import (
    delete_shop_document,
    download_shop_documents,
    list_shop_documents,
    list_shops,
    update_shops,
)
from mirakl_sandbox.state import SandboxState


def version(state: SandboxState, req: MiraklRequest) -> MiraklResponse:
    """V01 health check."""
    return MiraklResponse(200, {"version": "3.210"})


# -- routing ------------------------------------------------------------------------------------
ROUTES: list[tuple[str, str, str, Handler]] = [
    ("GET", "/api/version", "V01", version),
    ("GET", "/api/orders", "OR11", list_orders),
    ("GET", "/api/payment/debit", "PA11", list_pending_debits),
    ("PUT", "/api/payment/debit", "PA01", validate_debits),
    ("GET", "/api/payment/refund", "PA12", list_pending_refunds),
    ("PUT", "/api/payment/refund", "PA02", validate_refunds),
    ("GET", "/api/shops", "S20", list_shops),
    ("PUT", "/api/shops", "S07", update_shops),
    ("GET", "/api/shops/documents", "S30", list_shop_documents),
    ("GET", "/api/shops/documents/download", "S31", download_shop_documents),
    ("GET", "/api/invoices", "IV01", list_invoices),
    ("PUT", "/api/invoices", "IV07", confirm_invoice_payments),
    ("GET", "/api/seller-billing-cycles", "SBC11", list_billing_cycles),
    ("PUT", "/api/seller-billing-cycles", "SBC07", confirm_billing_cycles),
    ("GET", "/api/mms/orders", "SOR11", list_service_orders),
    ("GET", "/api/mms/debits", "SPA11", list_service_debits),
    ("GET", "/api/mms/refunds", "SPA12", list_service_refunds),
    ("PUT", "/api/mms/refunds", "SPA02", validate_service_refunds),
]
_BY_KEY = {(m, p.rstrip("/")): (code, h) for m, p, code, h in ROUTES}
_PATHS = {p.rstrip("/") for _m, p, _c, _h in ROUTES}
_TRAILING = re.compile(r"/+$")
_DOCUMENT_PATH = re.compile(r"^/api/shops/documents/[^/]+$")


def route(method: str, path: str) -> tuple[str, Handler | None]:
    """The endpoint code and handler for a call (handler ``None``: 404 or 405)."""
    key = _TRAILING.sub("", path)
    found = _BY_KEY.get((method.upper(), key))
    if found:
        return found
    if method.upper() == "DELETE" and _DOCUMENT_PATH.match(key):
        return ("S33", delete_shop_document)
    return ("UNKNOWN", None)


def dispatch(state: SandboxState, req: MiraklRequest) -> MiraklResponse:
    """Run the handler, turning :class:`MiraklError` into an error response."""
    _code, handler = route(req.method, req.path)
    if handler is None:
        key = _TRAILING.sub("", req.path)
        if key in _PATHS:
            return MiraklResponse(
                405, {"status": 405, "message": f"Method {req.method} not allowed"}
            )
        return MiraklResponse(404, {"status": 404, "message": f"No endpoint {req.path}"})
    try:
        return handler(state, req)
    except MiraklError as exc:
        return MiraklResponse(
            exc.status, {"status": exc.status, "message": exc.message}, exc.headers
        )
