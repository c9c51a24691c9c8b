"""What the simulated Mirakl operator calls share: the request and response, the error body
(``{"status", "message"}``), amounts as the incumbent connector computes them, query
parameters, and the two paginations (offset with ``total_count`` and ``Link``; seek with
``page_token``)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from mirakl_sandbox.dates import DateParseError, parse_iso
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
