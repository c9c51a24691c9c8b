"""Mirakl accounting documents (IV01, IV07) and seller billing cycles (SBC11, SBC07),
simulated as the published operator OpenAPI describes them."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from mirakl_sandbox.dates import to_timestamp
from mirakl_sandbox.mirakl_common import (
    MAX_IDS,
    MiraklError,
    MiraklRequest,
    MiraklResponse,
    _csv,
    _date,
    _dec,
    _json_body,
    offset_page,
    seek_page,
)
from mirakl_sandbox.mirakl_orders import _in_range
from mirakl_sandbox.state import SandboxState

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
