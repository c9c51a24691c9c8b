"""Mirakl orders, simulated: product orders (OR11), their debits (PA11 / PA01) and refunds
(PA12 / PA02), and the service orders of ``/api/mms`` (SOR11, SPA11, SPA12, SPA02)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from mirakl_sandbox.dates import format_iso, to_timestamp
from mirakl_sandbox.mirakl_common import (
    UPDATE_DATE_DELTA,
    VALIDATED_REFUND_STATES,
    MiraklError,
    MiraklRequest,
    MiraklResponse,
    _csv,
    _date,
    _dec,
    _json_body,
    _num,
    offset_page,
    order_amount_due,
    seek_page,
)
from mirakl_sandbox.mirakl_shops import _ts_or_zero
from mirakl_sandbox.state import SandboxState


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
