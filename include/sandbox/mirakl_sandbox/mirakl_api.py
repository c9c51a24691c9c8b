"""The Mirakl operator API as the sandbox answers it (pure: request in, response out).

Shapes follow the incumbent connector's fixtures and the operator OpenAPI: offset pagination with
``total_count`` and a ``Link`` header for the core APIs, seek pagination with ``page_token`` for the
``/api/mms`` service APIs, and ``{"status", "message"}`` error bodies. Transport concerns (auth,
faults, latency, the call log) live in :mod:`mirakl_sandbox.app`.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from mirakl_sandbox.dates import DateParseError, format_iso, parse_iso, to_timestamp
from mirakl_sandbox.state import SandboxState

#: what OR11 subtracts from ``start_update_date`` (the real size is not documented; see OR11)
UPDATE_DATE_DELTA = timedelta(minutes=1)

MAX_PAGE = 100
DEFAULT_PAGE = 10
MAX_IDS = 100
NOT_VALIDATED_STATES = {"STAGING", "WAITING_ACCEPTANCE", "WAITING_DEBIT", "WAITING_DEBIT_PAYMENT"}
ABORTED_LINE_STATES = {"REFUSED", "CANCELED"}
VALIDATED_REFUND_STATES = {"REFUNDED", "REFUSED"}


class MiraklError(Exception):
    """An error answer: ``{"status": status, "message": message}``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass
class MiraklRequest:
    """What a handler needs from the HTTP request."""

    method: str
    path: str
    query: list[tuple[str, str]]
    body: Any = None
    url: str = ""  # scheme://host:port/path, without the query

    def first(self, name: str) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return None

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.query if key == name]


@dataclass
class MiraklResponse:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[SandboxState, MiraklRequest], MiraklResponse]


# -- amounts (as github.com/stripe/stripe-mirakl-connector computes them) ---------------------
def _dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(0)


def _num(value: Decimal) -> float | int:
    """A JSON number for a Decimal amount (shortest repr round-trips for 0-4 decimals)."""
    return int(value) if value == value.to_integral_value() else float(value)


def order_amount_due(order: dict[str, Any]) -> Decimal:
    """``total_price`` plus line taxes (unless TAX_INCLUDED), skipping refused/canceled lines."""
    due = _dec(order.get("total_price"))
    if order.get("order_tax_mode") == "TAX_INCLUDED":
        return due
    for line in order.get("order_lines") or []:
        if line.get("order_line_state") in ABORTED_LINE_STATES:
            continue
        for tax in (line.get("taxes") or []) + (line.get("shipping_taxes") or []):
            due += _dec(tax.get("amount"))
    return due


# -- query helpers ------------------------------------------------------------------------------
def _csv(req: MiraklRequest, name: str, limit: int | None = MAX_IDS) -> list[str]:
    raw = req.first(name)
    if not raw:
        return []
    values = [v.strip() for v in raw.split(",") if v.strip()]
    if limit is not None and len(values) > limit:
        raise MiraklError(400, f"The limit of {limit} is exceeded for the parameter : {name}")
    return values


def _date(req: MiraklRequest, name: str) -> float | None:
    raw = req.first(name)
    if raw is None or raw == "":
        return None
    try:
        return parse_iso(raw).timestamp()
    except DateParseError:
        raise MiraklError(400, f"Invalid date format for parameter {name}: {raw!r}") from None


def _int(req: MiraklRequest, name: str, default: int, *, low: int = 0) -> int:
    raw = req.first(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise MiraklError(400, f"Invalid value for parameter {name}: {raw!r}") from None
    if value < low:
        raise MiraklError(400, f"Invalid value for parameter {name}: {raw!r}")
    return value


def _json_body(req: MiraklRequest, key: str | None) -> list[dict[str, Any]]:
    body = req.body
    if key is not None:
        if not isinstance(body, dict) or not isinstance(body.get(key), list):
            raise MiraklError(400, f"The request body must be an object with a '{key}' list")
        body = body[key]
    elif not isinstance(body, list):
        raise MiraklError(400, "The request body must be a JSON array")
    for index, item in enumerate(body):
        if not isinstance(item, dict):
            raise MiraklError(400, f"Item {index} of the request body must be an object")
    return body


# -- offset pagination --------------------------------------------------------------------------
def _offset_window(req: MiraklRequest) -> tuple[int, int, bool]:
    if (req.first("paginate") or "").lower() == "false":
        return 0, 0, False
    size = min(_int(req, "max", DEFAULT_PAGE, low=1), MAX_PAGE)
    return _int(req, "offset", 0), size, True


def _link_header(req: MiraklRequest, offset: int, size: int, total: int) -> dict[str, str]:
    links = []

    def url_for(new_offset: int) -> str:
        pairs = [(k, v) for k, v in req.query if k not in ("max", "offset")]
        pairs += [("max", str(size)), ("offset", str(new_offset))]
        return f"{req.url}?{urlencode(pairs)}"

    if offset > 0:
        links.append(f'<{url_for(max(0, offset - size))}>; rel="previous"')
    if offset + size < total:
        links.append(f'<{url_for(offset + size)}>; rel="next"')
    return {"Link": ", ".join(links)} if links else {}


def offset_page(
    req: MiraklRequest, items: list[Any], lo: int = 0, hi: int | None = None
) -> tuple[list[Any], int, dict[str, str]]:
    """Slice ``items[lo:hi]`` by ``offset``/``max``: (page, total_count, headers)."""
    hi = len(items) if hi is None else hi
    total = hi - lo
    offset, size, paginate = _offset_window(req)
    if not paginate:
        return items[lo:hi], total, {}
    start = lo + offset
    page = items[start : min(start + size, hi)] if offset < total else []
    return page, total, _link_header(req, offset, size, total)


# -- seek pagination ----------------------------------------------------------------------------
def _encode_token(filters: list[tuple[str, str]], position: int, limit: int) -> str:
    raw = json.dumps({"q": filters, "p": position, "l": limit}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_token(token: str) -> tuple[list[tuple[str, str]], int, int]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return [tuple(p) for p in data["q"]], int(data["p"]), int(data["l"])
    except (ValueError, KeyError, TypeError):
        raise MiraklError(400, f"Invalid page_token: {token!r}") from None


def seek_page(
    req: MiraklRequest,
    select: Callable[[MiraklRequest], list[Any]],
    *,
    max_limit: int = MAX_PAGE,
) -> MiraklResponse:
    """Run ``select`` with the original filters (decoded from ``page_token`` when present);
    ``limit`` is capped at ``max_limit`` (100, SBC11's documented 1000)."""
    token = req.first("page_token")
    if token:
        filters, position, limit = _decode_token(token)
        effective = MiraklRequest(req.method, req.path, filters, req.body, req.url)
    else:
        filters = [(k, v) for k, v in req.query if k not in ("limit", "page_token")]
        position, limit = 0, min(_int(req, "limit", DEFAULT_PAGE, low=1), max_limit)
        effective = req
    items = select(effective)
    page = items[position : position + limit]
    body: dict[str, Any] = {"data": page}
    if position + limit < len(items):
        body["next_page_token"] = _encode_token(filters, position + limit, limit)
    if position > 0:
        body["previous_page_token"] = _encode_token(filters, max(0, position - limit), limit)
    return MiraklResponse(200, body)


# -- product orders -----------------------------------------------------------------------------
def list_orders(state: SandboxState, req: MiraklRequest) -> MiraklResponse:
    """OR11."""
    start, end = _date(req, "start_date"), _date(req, "end_date")
    order_ids = _csv(req, "order_ids")
    commercial_ids = set(_csv(req, "commercial_ids"))
    states = set(_csv(req, "order_state_codes", limit=None))
    shop_ids = set(_csv(req, "shop_ids"))
    # OR11 `start_update_date`/`end_update_date` (AE: OR11 parameters): "Mirakl will subtract a
    # time delta to ensure no orders are missed due to network and/or software latency". The
    # size of the delta is not documented; the simulator subtracts UPDATE_DATE_DELTA so that a
    # client that does not de-duplicate sees the same order twice across runs.
    updated_from, updated_to = _date(req, "start_update_date"), _date(req, "end_update_date")
    if updated_from is not None:
        updated_from -= UPDATE_DATE_DELTA.total_seconds()
    with state.lock:
        if order_ids:
            found = [state.mirakl.get_order(i) for i in dict.fromkeys(order_ids)]
            items = sorted(
                (o for o in found if o is not None),
                key=lambda o: (to_timestamp(o["created_date"]), str(o["order_id"])),
            )
            items = [o for o in items if _in_range(to_timestamp(o["created_date"]), start, end)]
            lo, hi = 0, len(items)
        else:
            items, lo, hi = state.mirakl.orders_between(start, end)
        by_update = updated_from is not None or updated_to is not None
        if commercial_ids or states or shop_ids or by_update:
            items = [
                o
                for o in items[lo:hi]
                if (not commercial_ids or str(o.get("commercial_id")) in commercial_ids)
                and (not states or o.get("order_state") in states)
                and (not shop_ids or str(o.get("shop_id")) in shop_ids)
                and (
                    not by_update
                    or _in_range(_ts_or_zero(o.get("last_updated_date")), updated_from, updated_to)
                )
            ]
            lo, hi = 0, len(items)
        page, total, headers = offset_page(req, items, lo, hi)
        return MiraklResponse(200, {"orders": page, "total_count": total}, headers)


def _in_range(ts: float, start: float | None, end: float | None) -> bool:
    return (start is None or ts >= start) and (end is None or ts <= end)


def _pending_debit(order: dict[str, Any]) -> dict[str, Any]:
    return {
        "order_id": order["order_id"],
        "order_commercial_id": order.get("commercial_id"),
        "shop_id": order.get("shop_id"),
        "customer_id": (order.get("customer") or {}).get("customer_id"),
        "amount": _num(order_amount_due(order)),
        "currency_iso_code": order.get("currency_iso_code"),
        "payment_workflow": order.get("payment_workflow"),
    }


def list_pending_debits(state: SandboxState, req: MiraklRequest) -> MiraklResponse:
    """PA11: product orders waiting for the customer debit."""
    with state.lock:
        waiting = [
            _pending_debit(o)
            for o in state.mirakl.iter_orders()
            if o.get("order_state") == "WAITING_DEBIT_PAYMENT"
        ]
    page, total, headers = offset_page(req, waiting)
    return MiraklResponse(200, {"orders": {"order": page}, "total_count": total}, headers)


def validate_debits(state: SandboxState, req: MiraklRequest) -> MiraklResponse:
    """PA01: confirm (OK) or refuse debits; all-or-nothing like Mirakl's 400."""
    items = _json_body(req, "orders")
    with state.lock:
        targets = []
        for item in items:
            order_id = str(item.get("order_id") or "")
            status = item.get("payment_status")
            if status not in ("OK", "REFUSED"):
                raise MiraklError(400, f"Invalid payment_status {status!r} for order {order_id!r}")
            order = state.mirakl.get_order(order_id)
            if order is None:
                raise MiraklError(404, f"The order with id '{order_id}' does not exist")
            if order.get("order_state") != "WAITING_DEBIT_PAYMENT":
                raise MiraklError(
                    400,
                    f"Cannot update the order with id '{order_id}' to status 'SHIPPING'. "
                    "The order does not have the expected status 'WAITING_DEBIT_PAYMENT'.",
                )
            targets.append((order, item))
        now = format_iso(state.clock.now())
        for order, item in targets:
            new_state = "SHIPPING" if item["payment_status"] == "OK" else "CANCELED"
            if item["payment_status"] == "OK":
                order["customer_debited_date"] = now
                order["transaction_number"] = item.get("transaction_number")
                order["transaction_date"] = item.get("transaction_date") or now
            order["order_state"] = new_state
            order["last_updated_date"] = now
            for line in order.get("order_lines") or []:
                if line.get("order_line_state") == "WAITING_DEBIT_PAYMENT":
                    line["order_line_state"] = new_state
    return MiraklResponse(204, None)


def _waiting_refunds(line: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        r
        for r in line.get("refunds") or []
        if (r.get("refund_state") or "WAITING_REFUND_PAYMENT") == "WAITING_REFUND_PAYMENT"
    ]


def list_pending_refunds(state: SandboxState, req: MiraklRequest) -> MiraklResponse:
    """PA12: one entry per order with refunds waiting for payment (triple nesting).

    The orders with a waiting refund are found first and only the page's are built: a full
    read is one call per 100 such orders, and building every entry on every call made it
    quadratic in the backlog.
    """
    with state.lock:
        waiting = [order for order in state.mirakl.iter_orders() if _has_waiting_refund(order)]
        page, total_count, headers = offset_page(req, waiting)
        entries = [_pa12_entry(order) for order in page]
    return MiraklResponse(200, {"orders": {"order": entries}, "total_count": total_count}, headers)


def _has_waiting_refund(order: dict[str, Any]) -> bool:
    for line in order.get("order_lines") or ():
        for refund in line.get("refunds") or ():
            if (refund.get("refund_state") or "WAITING_REFUND_PAYMENT") == "WAITING_REFUND_PAYMENT":
                return True
    return False


def _pa12_entry(order: dict[str, Any]) -> dict[str, Any]:
    """One PA12 order entry: its lines with refunds waiting for payment."""
    lines = []
    total = Decimal(0)
    for line in order.get("order_lines") or []:
        refunds = _waiting_refunds(line)
        if not refunds:
            continue
        total += sum((_dec(r.get("amount")) for r in refunds), Decimal(0))
        lines.append(
            {
                "order_line_id": line.get("order_line_id"),
                "order_line_amount": line.get("total_price"),
                "refunds": {
                    "refund": [{"id": r.get("id"), "amount": r.get("amount")} for r in refunds]
                },
            }
        )
    return {
        "order_id": order["order_id"],
        "order_commercial_id": order.get("commercial_id"),
        "shop_id": order.get("shop_id"),
        "customer_id": (order.get("customer") or {}).get("customer_id"),
        "amount": _num(total),
        "currency_iso_code": order.get("currency_iso_code"),
        "payment_workflow": order.get("payment_workflow"),
        "order_lines": {"order_line": lines},
    }


def _product_refund_index(state: SandboxState) -> dict[str, dict[str, Any]]:
    index = {}
    for order in state.mirakl.iter_orders():
        for line in order.get("order_lines") or []:
            for refund in line.get("refunds") or []:
                index[str(refund.get("id"))] = refund
    return index


def validate_refunds(state: SandboxState, req: MiraklRequest) -> MiraklResponse:
    """PA02: mark product refunds as paid (OK) or refused."""
    items = _json_body(req, "refunds")
    with state.lock:
        index = _product_refund_index(state)
        targets = []
        for item in items:
            refund_id = str(item.get("refund_id") or "")
            refund = index.get(refund_id)
            if refund is None:
                raise MiraklError(404, f"The refund with id '{refund_id}' does not exist")
            if refund.get("refund_state") in VALIDATED_REFUND_STATES:
                raise MiraklError(400, f"{refund_id} already validated")
            if item.get("payment_status") not in ("OK", "REFUSED"):
                raise MiraklError(400, f"Invalid payment_status for refund {refund_id!r}")
            targets.append((refund, item))
        now = format_iso(state.clock.now())
        for refund, item in targets:
            ok = item["payment_status"] == "OK"
            refund["refund_state"] = "REFUNDED" if ok else "REFUSED"
            refund["transaction_number"] = item.get("transaction_number")
            refund["transaction_date"] = item.get("transaction_date") or now
    return MiraklResponse(204, None)


# -- shops --------------------------------------------------------------------------------------
def list_shops(state: SandboxState, req: MiraklRequest) -> MiraklResponse:
    """S20: ``updated_since``, ``shop_ids``, offset pages or ``paginate=false`` (everything).

    References: Mirakl's ``S20_Response_200`` (``shops``, ``total_count``); the Stripe connector
    sends ``domains=PRODUCT,SERVICE`` with ``max``/``offset``, the Hyperwallet connector
    ``updated_since=<instant>&paginate=false`` (its ``MiraklShopsEndpointMock``). ``domains``
    is accepted and not filtered on: the demo's shops all sell in both domains, and no reference
    says which domain a shop without the parameter is listed in.
    """
    since = _date(req, "updated_since")
    shop_ids = set(_csv(req, "shop_ids"))
    with state.lock:
        shops = sorted(state.mirakl.shops.values(), key=lambda s: _sort_id(s["shop_id"]))
        shops = [
            s
            for s in shops
            if (not shop_ids or str(s["shop_id"]) in shop_ids)
            and (since is None or _ts_or_zero(s.get("last_updated_date")) >= since)
        ]
    page, total, headers = offset_page(req, shops)
    return MiraklResponse(200, {"shops": page, "total_count": total}, headers)


def _sort_id(value: Any) -> tuple[int, Any]:
    try:
        return (0, int(value))
    except (TypeError, ValueError):
        return (1, str(value))


def _ts_or_zero(value: Any) -> float:
    try:
        return to_timestamp(value)
    except DateParseError:
        return 0.0


def _find_shop(state: SandboxState, shop_id: Any) -> dict[str, Any] | None:
    for key in (shop_id, str(shop_id)):
        if key in state.mirakl.shops:
            return state.mirakl.shops[key]
    try:
        return state.mirakl.shops.get(int(shop_id))
    except (TypeError, ValueError):
        return None


def update_shops(state: SandboxState, req: MiraklRequest) -> MiraklResponse:
    """S07: patch shops; unknown shops get a ``shop_error`` entry, the rest are updated."""
    items = _json_body(req, "shops")
    if len(items) > MAX_IDS:
        raise MiraklError(400, f"The maximum number of shops to update is {MAX_IDS}")
    returns = []
    with state.lock:
        now = format_iso(state.clock.now())
        for item in items:
            shop = _find_shop(state, item.get("shop_id"))
            if shop is None:
                error = {
                    "code": "SHOP_NOT_FOUND",
                    "field": "shop_id",
                    "message": f"Shop with id '{item.get('shop_id')}' not found",
                }
                returns.append({"shop_error": {"errors": [error], "input": item}})
                continue
            if shop.get("sandbox_s07_error"):  # a shop Mirakl refuses to update (tests)
                error = {"code": "SHOP_UPDATE_ERROR", "message": str(shop["sandbox_s07_error"])}
                returns.append({"shop_error": {"errors": [error], "input": item}})
                continue
            _patch_shop(shop, item)
            shop["last_updated_date"] = now
            returns.append({"shop_updated": shop})
    return MiraklResponse(200, {"shop_returns": returns})


def _patch_shop(shop: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if key == "shop_id":
            continue
        if key == "shop_additional_fields":
            fields = {f["code"]: f for f in shop.get("shop_additional_fields") or []}
            for incoming in value or []:
                # Mirakl's S07_Request_Shops_ShopAdditionalFields: "if the 'value' field ... is
                # absent, the corresponding additional field value will be removed"; the
                # Hyperwallet connector clears with an explicit null. Both remove it here.
                if incoming.get("value") is None:
                    fields.pop(incoming.get("code"), None)
                else:
                    fields[incoming["code"]] = {**fields.get(incoming["code"], {}), **incoming}
            shop["shop_additional_fields"] = list(fields.values())
        elif isinstance(value, dict) and isinstance(shop.get(key), dict) and key != "kyc":
            shop[key] = {**shop[key], **value}
        else:
            shop[key] = value


# -- invoices -----------------------------------------------------------------------------------
# IV01 as the published operator OpenAPI describes it (api-evangelist/mirakl
# ``openapi/_original/mirakl-mmp-operator-openapi.json``, operation IV01, schemas
# ``IV01_Response_200_Invoices*``): the payment state is ``payment.state`` (PENDING, PAID,
# FAILED), filtered by ``payment_status``; ``states`` defaults to GENERATED,COMPLETE and ``type``
# to AUTO_INVOICE (ALL: every type). The schema gives enums for all three: a value outside them
# is refused with 400 (the spec is silent on the answer: the stricter choice).
IV01_PAYMENT_STATES = ("PENDING", "PAID", "FAILED")
IV01_DOCUMENT_STATES = ("DRAFT", "GENERATED", "COMPLETE")
IV01_DEFAULT_STATES = ("GENERATED", "COMPLETE")
IV01_TYPES = ("ALL", "AUTO_INVOICE", "MANUAL_INVOICE", "MANUAL_CREDIT")
#: What the simulator keeps on a document for its own checks (IV07's amount with manual
#: documents rolled into the invoice): not a field of the published schema, never answered.
IV01_INTERNAL_KEYS = frozenset({"linked_manual_documents"})


def invoice_payment_state(invoice: dict[str, Any]) -> str:
    """``payment.state`` of a stored document (PENDING when it has none yet)."""
    payment = invoice.get("payment")
    return str((payment or {}).get("state") or "PENDING")


def _enum(req: MiraklRequest, name: str, allowed: tuple[str, ...]) -> list[str]:
    values = _csv(req, name, limit=None)
    bad = [v for v in values if v not in allowed]
    if bad:
        raise MiraklError(400, f"Invalid value for parameter {name}: {', '.join(bad)}")
    return values


def list_invoices(state: SandboxState, req: MiraklRequest) -> MiraklResponse:
    """IV01: ``start_date``, ``end_date``, ``shop``, ``payment_status``, ``states``, ``type``,
    ``invoice_id`` and ``seller_billing_cycle_id`` (comma lists of at most 100)."""
    start, end = _date(req, "start_date"), _date(req, "end_date")
    shop = req.first("shop")
    payment = _enum(req, "payment_status", IV01_PAYMENT_STATES)
    if len(payment) > 1:
        raise MiraklError(400, "Invalid value for parameter payment_status: one value only")
    states = set(_enum(req, "states", IV01_DOCUMENT_STATES) or IV01_DEFAULT_STATES)
    types = _enum(req, "type", IV01_TYPES) or ["AUTO_INVOICE"]
    if len(types) > 1:
        raise MiraklError(400, "Invalid value for parameter type: one value only")
    ids = set(_csv(req, "invoice_id"))
    cycles = set(_csv(req, "seller_billing_cycle_id"))
    with state.lock:
        invoices = [
            i
            for i in state.mirakl.invoices
            if _in_range(to_timestamp(i["date_created"]), start, end)
            and (not shop or str(i.get("shop_id")) == shop)
            and (not payment or invoice_payment_state(i) == payment[0])
            and i.get("state", "COMPLETE") in states
            and (types[0] == "ALL" or i.get("type", "AUTO_INVOICE") == types[0])
            and (not ids or str(i.get("invoice_id")) in ids)
            and (not cycles or str(i.get("seller_billing_cycle_id")) in cycles)
        ]
    page, total, headers = offset_page(req, invoices)
    page = [{k: v for k, v in i.items() if k not in IV01_INTERNAL_KEYS} for i in page]
    return MiraklResponse(200, {"invoices": page, "total_count": total}, headers)


def confirm_invoice_payments(state: SandboxState, req: MiraklRequest) -> MiraklResponse:
    """IV07: confirm the payment of accounting documents; all-or-nothing, 204.

    The expected amount is ``summary.amount_transferred``. An invoice carrying
    ``linked_manual_documents`` (manual credits rolled into it) only accepts that amount with
    ``confirm_all_linked_manual_documents`` (or the API's ``confirm_linked_manual_documents``);
    without it Mirakl expects the auto-invoice part alone, which is the incumbent's issue #102.
    Confirming a paid invoice again with the same amount changes nothing (no error).
    """
    items = _json_body(req, "accounting_documents")
    if len(items) > MAX_IDS:
        raise MiraklError(400, f"The maximum number of accounting documents is {MAX_IDS}")
    with state.lock:
        index = {str(i.get("invoice_id")): i for i in state.mirakl.invoices}
        targets = []
        for item in items:
            raw = item.get("invoice_id")
            if isinstance(raw, bool) or not isinstance(raw, int):
                raise MiraklError(
                    400,
                    "Error with field accounting_documents.invoice_id. "
                    "Please check the field datatype",
                )
            invoice = index.get(str(raw))
            if invoice is None:
                raise MiraklError(400, f"The accounting document with id '{raw}' does not exist")
            linked = invoice.get("linked_manual_documents") or []
            all_linked = bool(
                item.get("confirm_all_linked_manual_documents")
                or item.get("confirm_linked_manual_documents")
            )
            expected = _dec((invoice.get("summary") or {}).get("amount_transferred"))
            if invoice.get("type") == "MANUAL_CREDIT":
                # A manual credit note is paid and confirmed for its total_charged_amount (the
                # Hyperwallet connector ≤ 5.2 pays creditAmount = total_charged_amount and
                # confirms it with IV07 for the payment's amount, as the PayPal connector ≤ 5.2
                # does; the
                # operator OpenAPI is silent on IV07's check for manual documents: the stricter
                # choice, an exact amount, is kept).
                expected = _dec(invoice.get("total_charged_amount"))
            if linked and not all_linked:
                expected -= sum((_dec(d.get("amount")) for d in linked), Decimal(0))
            actual = _dec(item.get("amount"))
            if actual != expected:
                raise MiraklError(
                    400,
                    f"The amount is incorrect for the accounting document {raw}, "
                    f"actual: {actual}, expected: {expected}",
                )
            currency = item.get("currency_iso_code")
            if currency and currency != invoice.get("currency_iso_code"):
                raise MiraklError(400, f"The currency is incorrect for accounting document {raw}")
            if not item.get("failure_reason") and not item.get("transaction_date"):
                raise MiraklError(400, f"transaction_date is required for document {raw}")
            targets.append((invoice, item, linked if all_linked else []))
        for invoice, item, linked in targets:
            failed = bool(item.get("failure_reason"))
            if invoice_payment_state(invoice) == "PAID" and not failed:
                continue
            invoice["payment"] = _iv07_payment(item, failed)
            for document in linked:
                document["payment"] = _iv07_payment(item, False)
    return MiraklResponse(204, None)


def _iv07_payment(item: dict[str, Any], failed: bool) -> dict[str, Any]:
    """The document's ``payment`` after IV07 (``IV01_Response_200_Invoices_Payment``: state,
    reference, transaction_date, failure_reason)."""
    payment: dict[str, Any] = {"state": "FAILED" if failed else "PAID"}
    for key in ("reference", "transaction_date", "failure_reason"):
        if item.get(key):
            payment[key] = item[key]
    return payment


# -- seller billing cycles (SBC11 / SBC07, seek pagination) -------------------------------------
# As the published operator OpenAPI describes them (api-evangelist/mirakl
# ``openapi/_original/mirakl-mmp-operator-openapi.json``, operation SBC11 and schemas
# ``SBC11_Response_200*``, ``SBC07_Request*``). SBC11: seek pagination, ``limit`` up to 1000;
# ``pay_out_state`` (TO_PAY, PAID, FAILED; repeatable; default all three), ``id`` (repeatable,
# 36 characters, 100 at most), ``shop_id`` and ``currency`` (repeatable), ``start_date`` and
# ``end_date`` (inclusive). SBC07: at most 100 cycles, ``id`` (a UUID), ``state`` (PAID or
# FAILED) and ``amount_transferred_to_seller`` required, ``transaction_date`` required when PAID,
# ``failure_reason`` (INCOMPLETE_KYC, AWAITING_INVOICE_CHECK) only when FAILED, ``reference`` at
# most 100 characters; the Hyperwallet connector's mock answers 204. Where the schema is silent
# (the error answers, the amount check, a second PAID), the stricter behaviour: 400.
SBC11_MAX_LIMIT = 1000
PAY_OUT_STATES = ("TO_PAY", "PAID", "FAILED")
SBC07_STATES = ("PAID", "FAILED")
SBC07_FAILURE_REASONS = ("INCOMPLETE_KYC", "AWAITING_INVOICE_CHECK")
_CYCLE_ID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")


def _check_sbc11(req: MiraklRequest) -> None:
    bad = [v for v in req.all("pay_out_state") if v not in PAY_OUT_STATES]
    if bad:
        raise MiraklError(400, f"Invalid value for parameter pay_out_state: {', '.join(bad)}")
    ids = req.all("id")
    if len(ids) > MAX_IDS:
        raise MiraklError(400, f"The limit of {MAX_IDS} is exceeded for the parameter : id")
    if any(len(i) != 36 for i in ids):
        raise MiraklError(400, "Invalid value for parameter id: 36 characters expected")


def list_billing_cycles(state: SandboxState, req: MiraklRequest) -> MiraklResponse:
    """SBC11: filters ``start_date``, ``end_date``, ``pay_out_state``, ``shop_id``, ``id``,
    ``currency``."""
    if not req.first("page_token"):
        _check_sbc11(req)

    def select(r: MiraklRequest) -> list[dict[str, Any]]:
        start, end = _date(r, "start_date"), _date(r, "end_date")
        states, ids, shops = set(r.all("pay_out_state")), set(r.all("id")), set(r.all("shop_id"))
        currencies = set(r.all("currency"))
        with state.lock:
            return [
                c
                for c in state.mirakl.billing_cycles
                if _in_range(to_timestamp(c["date_created"]), start, end)
                and (not states or (c.get("pay_out") or {}).get("state", "TO_PAY") in states)
                and (not ids or str(c["id"]) in ids)
                and (not shops or str((c.get("shop") or {}).get("shop_id")) in shops)
                and (not currencies or c.get("currency_iso_code") in currencies)
            ]

    return seek_page(req, select, max_limit=SBC11_MAX_LIMIT)


def _check_sbc07_item(item: dict[str, Any]) -> None:
    for name in ("id", "state", "amount_transferred_to_seller"):
        if item.get(name) in (None, ""):
            raise MiraklError(400, f"seller_billing_cycles.{name} is required")
    cycle_id = item["id"]
    if not isinstance(cycle_id, str) or _CYCLE_ID.fullmatch(cycle_id) is None:
        raise MiraklError(400, f"Invalid seller billing cycle id {cycle_id!r}")
    if item["state"] not in SBC07_STATES:
        raise MiraklError(400, f"Invalid state {item['state']!r} for {cycle_id}")
    if item["state"] == "PAID" and not item.get("transaction_date"):
        raise MiraklError(400, f"transaction_date is required for a PAID cycle {cycle_id}")
    reason = item.get("failure_reason")
    if reason is not None and (item["state"] != "FAILED" or reason not in SBC07_FAILURE_REASONS):
        raise MiraklError(400, f"Invalid failure_reason {reason!r} for {cycle_id}")
    if len(str(item.get("reference") or "")) > 100:
        raise MiraklError(400, f"reference longer than 100 characters for {cycle_id}")


def confirm_billing_cycles(state: SandboxState, req: MiraklRequest) -> MiraklResponse:
    """SBC07: mark billing cycles PAID (or FAILED); the amount must be the seller's; 204."""
    items = _json_body(req, "seller_billing_cycles")
    if len(items) > MAX_IDS:
        raise MiraklError(400, f"The maximum number of seller billing cycles is {MAX_IDS}")
    with state.lock:
        index = {str(c["id"]): c for c in state.mirakl.billing_cycles}
        targets = []
        for item in items:
            _check_sbc07_item(item)
            cycle = index.get(str(item.get("id")))
            if cycle is None:
                raise MiraklError(
                    400, f"The seller billing cycle with id '{item.get('id')}' does not exist"
                )
            expected = _dec(cycle.get("amount_transferred_to_seller"))
            actual = _dec(item.get("amount_transferred_to_seller"))
            if item["state"] == "PAID" and actual != expected:
                raise MiraklError(
                    400,
                    f"The amount is incorrect for the seller billing cycle {item['id']}, "
                    f"actual: {actual}, expected: {expected}",
                )
            currency = item.get("currency_iso_code")
            if currency and currency != cycle.get("currency_iso_code"):
                raise MiraklError(400, f"The currency is incorrect for cycle {item['id']}")
            targets.append((cycle, item))
        for cycle, item in targets:
            pay_out = {"state": item["state"]}
            # SBC11_Response_200_Data_PayOut: reference and transaction_date only when PAID,
            # failure_reason only when FAILED.
            keys = ("reference", "transaction_date") if item["state"] == "PAID" else ()
            keys += ("failure_reason",) if item["state"] == "FAILED" else ()
            pay_out.update({k: item[k] for k in keys if item.get(k)})
            cycle["pay_out"] = pay_out
    return MiraklResponse(204, None)


# -- service orders (MMS, seek pagination) ------------------------------------------------------
def list_service_orders(state: SandboxState, req: MiraklRequest) -> MiraklResponse:
    """SOR11."""

    def select(r: MiraklRequest) -> list[dict[str, Any]]:
        start, end = _date(r, "date_created_start"), _date(r, "date_created_end")
        ids, commercial = set(r.all("order_id")), set(r.all("commercial_order_id"))
        states = set(r.all("state"))
        with state.lock:
            orders = sorted(
                state.mirakl.service_orders.values(),
                key=lambda o: (to_timestamp(o["date_created"]), str(o["id"])),
            )
            return [
                o
                for o in orders
                if _in_range(to_timestamp(o["date_created"]), start, end)
                and (not ids or str(o["id"]) in ids)
                and (not commercial or str(o.get("commercial_order_id")) in commercial)
                and (not states or o.get("state") in states)
            ]

    return seek_page(req, select)


def list_service_debits(state: SandboxState, req: MiraklRequest) -> MiraklResponse:
    """SPA11."""

    def select(r: MiraklRequest) -> list[dict[str, Any]]:
        ids = set(r.all("order_id"))
        with state.lock:
            return [d for d in state.mirakl.service_debits if not ids or str(d["order_id"]) in ids]

    return seek_page(req, select)


def _service_refunds(state: SandboxState) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    orders = sorted(
        state.mirakl.service_orders.values(),
        key=lambda o: (to_timestamp(o["date_created"]), str(o["id"])),
    )
    return [(o, r) for o in orders for r in o.get("refunds") or []]


def list_service_refunds(state: SandboxState, req: MiraklRequest) -> MiraklResponse:
    """SPA12: service refunds not yet validated."""

    def select(_r: MiraklRequest) -> list[dict[str, Any]]:
        with state.lock:
            return [
                {
                    "id": refund.get("id"),
                    "order_id": order["id"],
                    "customer_id": (order.get("customer") or {}).get("id"),
                    "amount": refund.get("amount"),
                    "currency_code": order.get("currency_code"),
                    "state": "WAITING",
                    "date_created": refund.get("date_created") or order.get("date_created"),
                }
                for order, refund in _service_refunds(state)
                if refund.get("state", "WAITING") == "WAITING"
            ]

    return seek_page(req, select)


def validate_service_refunds(state: SandboxState, req: MiraklRequest) -> MiraklResponse:
    """SPA02: per-item result; a validated refund is an entry in ``errors``, not a 400.

    Shape: Mirakl's ``SPA02_Response_200`` (MMS operator OpenAPI): ``errors`` (required) of
    ``{refund_id, refund_errors: [{code, field, message}]}`` and ``success.refunds[{id}]``
    ("Confirmed refunds, either REFUSED or OK"), which is optional and left out here when no
    refund was confirmed (the stricter reading: clients must not expect it). The error codes
    are not published (the references are silent): ``REFUND_NOT_FOUND``,
    ``REFUND_ALREADY_VALIDATED`` (message as PA02's "<id> already validated"),
    ``INVALID_STATE`` and, stricter than any reference says, ``INVALID_AMOUNT`` when the amount
    or currency is not the refund's.
    """
    items = _json_body(req, None)
    errors, success = [], []
    with state.lock:
        index = {str(r.get("id")): (o, r) for o, r in _service_refunds(state)}
        now = format_iso(state.clock.now())
        for item in items:
            refund_id = str(item.get("id") or "")
            order, refund = index.get(refund_id) or ({}, None)
            if refund is None:
                message, code = f"Refund {refund_id} not found", "REFUND_NOT_FOUND"
            elif refund.get("state", "WAITING") != "WAITING":
                message, code = f"{refund_id} already validated", "REFUND_ALREADY_VALIDATED"
            elif item.get("state") not in ("OK", "REFUSED"):
                message, code = f"Invalid state {item.get('state')!r}", "INVALID_STATE"
            elif not _same_refund_amount(refund, order, item):
                message = f"Refund {refund_id}: amount or currency is not the refund's"
                code = "INVALID_AMOUNT"
            else:
                refund["state"] = item["state"]
                refund["transaction_number"] = item.get("transaction_number")
                refund["transaction_date"] = item.get("transaction_date") or now
                success.append({"id": refund_id})
                continue
            errors.append(
                {
                    "refund_id": refund_id,
                    "refund_errors": [{"code": code, "field": "id", "message": message}],
                }
            )
    body: dict[str, Any] = {"errors": errors}
    if success:
        body["success"] = {"refunds": success}
    return MiraklResponse(200, body)


def _same_refund_amount(
    refund: dict[str, Any], order: dict[str, Any], item: dict[str, Any]
) -> bool:
    """The SPA02 item's ``amount``/``currency_code`` are the refund's (SPA02_Request fields)."""
    try:
        same_amount = Decimal(str(item.get("amount"))) == Decimal(str(refund.get("amount")))
    except (InvalidOperation, ValueError):
        return False
    currency = order.get("currency_code") or order.get("currency_iso_code")
    return same_amount and (not currency or item.get("currency_code") == currency)


# -- shop documents (S30, S31, S33) -------------------------------------------------------------
#: Internal keys of a stored document, never answered (the file itself).
_DOCUMENT_INTERNAL = frozenset({"content"})


def _public_document(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k not in _DOCUMENT_INTERNAL}


def list_shop_documents(state: SandboxState, req: MiraklRequest) -> MiraklResponse:
    """S30 ``GET /api/shops/documents``: the documents of ``shop_ids`` (required here).

    Shape as the PayPal connector reads it (github.com/paypal/mirakl-hyperwallet-connector,
    hmc-kyc: ``{"shop_documents": [{"id", "shop_id",
    "type", "file_name", "date_uploaded", "date_deleted"}]}``) and the Mirakl seller OpenAPI
    (S30 "List shop's documents"). Whether an operator call without ``shop_ids`` lists every
    shop is not said in the pages we hold: the simulator refuses it (the stricter choice).
    """
    shop_ids = set(_csv(req, "shop_ids"))
    if not shop_ids:
        raise MiraklError(400, "shop_ids is required")
    with state.lock:
        found = [
            _public_document(d)
            for d in sorted(state.mirakl.shop_documents.values(), key=lambda d: d["id"])
            if str(d.get("shop_id")) in shop_ids
        ]
    return MiraklResponse(200, {"shop_documents": found, "total_count": len(found)})


def download_shop_documents(state: SandboxState, req: MiraklRequest) -> MiraklResponse:
    """S31 ``GET /api/shops/documents/download?document_ids=<one id>``: the file itself.

    developer.mirakl.com S31: "either the shop_ids or the document_ids" is mandatory; several
    ids come back "wrapped in a ZIP archive", one id as the document itself. The connector only
    asks for one document per call, so the simulator answers that case and refuses the others.
    """
    ids = _csv(req, "document_ids")
    if len(ids) != 1:
        raise MiraklError(400, "The simulator serves S31 with exactly one document_ids value")
    with state.lock:
        document = state.mirakl.shop_documents.get(_int_or_404(ids[0]))
    if document is None:
        raise MiraklError(404, f"Document {ids[0]} not found")
    content = base64.b64decode(document.get("content") or "")
    headers = {"Content-Disposition": f'attachment; filename="{document.get("file_name")}"'}
    return MiraklResponse(200, content, headers)


def delete_shop_document(state: SandboxState, req: MiraklRequest) -> MiraklResponse:
    """S33 ``DELETE /api/shops/documents/{document_id}`` (developer.mirakl.com S33 "Delete a
    shop document"): 204; an unknown document is a 404."""
    raw = req.path.rstrip("/").rsplit("/", 1)[1]
    with state.lock:
        document = state.mirakl.shop_documents.pop(_int_or_404(raw), None)
    if document is None:
        raise MiraklError(404, f"Document {raw} not found")
    return MiraklResponse(204, None)


def _int_or_404(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise MiraklError(404, f"Document {raw} not found") from None


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
