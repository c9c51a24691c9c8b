"""Mirakl shops, simulated: the list (S20), updates (S07) and shop documents (S30, S31, S33)."""

from __future__ import annotations

import base64
from typing import Any

from mirakl_sandbox.dates import DateParseError, format_iso, to_timestamp
from mirakl_sandbox.mirakl_common import (
    MAX_IDS,
    MiraklError,
    MiraklRequest,
    MiraklResponse,
    _csv,
    _date,
    _json_body,
    offset_page,
)
from mirakl_sandbox.state import SandboxState


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
