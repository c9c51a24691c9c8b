"""HTTP client for the Mirakl operator API (product "MMP" and services "MMS" endpoints).

One class, one request method, one pagination helper per pagination style. Every public method is
a thin description of an endpoint (code, path, filters, where the items live in the body); the
transport, the retries, the error mapping and the call accounting are shared.

Conventions follow the Mirakl operator API and the incumbent Stripe connector:

* ``Authorization`` carries the raw API key, or ``Bearer <token>`` for OAuth access tokens.
* Money stays ``Decimal``: bodies are parsed with ``parse_float=Decimal`` and Decimals in request
  bodies are written as JSON numbers.
* Product lists use offset pagination (``max``/``offset`` + ``Link: <…>; rel="next"``); service
  lists (``/api/mms``) use seek pagination (``limit`` then ``page_token`` alone).
* Id filters are sent in chunks of 100, the most Mirakl accepts in one request.
* Iterators stream page by page so a backlog of 100 000 orders never sits in memory at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import requests

from mirakl_connector.core.batch import chunked
from mirakl_connector.core.errors import (
    MiraklApiError,
    MiraklClientError,
    MiraklRateLimitError,
    MiraklServerError,
    MiraklTransportError,
)
from mirakl_connector.core.http_json import (
    CLIENT_ERROR,
    DEFAULT_TIMEOUT,
    RATE_LIMITED,
    SERVER_ERROR,
    JsonHttpClient,
    loads,
    raise_for_status,
    truncate,
)
from mirakl_connector.core.http_json import dumps as _dumps
from mirakl_connector.core.instance_url import mirakl_instance_url
from mirakl_connector.core.retry import RetryPolicy
from mirakl_connector.mirakl.params import (
    DateFilter,
    csv_id_filters,
    date_params,
    format_date,
    repeated_id_filters,
    unique,
)

log = logging.getLogger(__name__)

# Endpoint codes, as Mirakl names them; they label errors, retry logs and ``call_counts``.
V01 = "V01"
OR11 = "OR11"
PA01 = "PA01"
PA02 = "PA02"
PA11 = "PA11"
PA12 = "PA12"
SOR11 = "SOR11"
SPA02 = "SPA02"
SPA11 = "SPA11"
SPA12 = "SPA12"
S07 = "S07"
S20 = "S20"
S30 = "S30"
S31 = "S31"
S33 = "S33"
IV01 = "IV01"
IV07 = "IV07"
SBC07 = "SBC07"
SBC11 = "SBC11"

WRITE_CHUNK_SIZE = 100  # S07, PA01, PA02 and SPA02 take at most 100 items per call

_ERROR_CLASSES: dict[str, type[MiraklApiError]] = {
    RATE_LIMITED: MiraklRateLimitError,
    SERVER_ERROR: MiraklServerError,
    CLIENT_ERROR: MiraklClientError,
}


class MiraklClient(JsonHttpClient):
    """Talks to one Mirakl instance with an operator API key or access token.

    :param base_url: the instance, ``https://marketplace.mirakl.net`` or, as the Hyperwallet
        connector is configured, ``https://marketplace.mirakl.net/api`` (paths add ``/api``;
        anything else raises :class:`~mirakl_connector.core.errors.ConfigurationError`).
    :param api_key: raw operator key, or ``"Bearer <token>"`` for an OAuth access token. Never
        logged nor shown in ``repr()`` or error messages.
    :param timeout: (connect, read) seconds for every request.
    :param retry: the retry budget for 429, 5xx and transport errors.
    :param page_size: ``max`` / ``limit`` of list calls (Mirakl caps it at 100).
    :param session: a ``requests.Session`` to reuse (connection pooling, tests).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        page_size: int = 100,
        session: requests.Session | None = None,
    ) -> None:
        if not base_url or not base_url.strip():
            raise ValueError("base_url is required")
        if not api_key or not api_key.strip():
            raise ValueError("api_key is required")
        if not 1 <= page_size <= 100:
            raise ValueError(f"page_size must be between 1 and 100, got {page_size}")
        # The raw key is the documented (legacy) scheme; an OAuth token already has its prefix.
        secret = api_key.strip()
        super().__init__(
            timeout=timeout,
            retry=retry,
            session=session,
            secrets=[secret.removeprefix("Bearer ").strip()],
            logger=log,
        )
        self.base_url = mirakl_instance_url(base_url)
        self.page_size = page_size
        self._headers = {"Authorization": secret, "Accept": "application/json"}

    def __repr__(self) -> str:
        return f"MiraklClient(base_url={self.base_url!r})"

    # ------------------------------------------------------------------ endpoints

    def version(self) -> dict[str, Any]:
        """Return the instance version (``{"version": "3.210"}``); a cheap credentials check."""
        return self._request(V01, "GET", "/api/version").json_body or {}

    def iter_orders(
        self,
        *,
        start_date: DateFilter = None,
        end_date: DateFilter = None,
        order_ids: Iterable[str] | None = None,
        commercial_ids: Iterable[str] | None = None,
        start_update_date: DateFilter = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield product orders (OR11), filtered by creation date, update date and/or ids.

        ``start_update_date``: orders changed since then. Mirakl subtracts a time delta from it
        (reference, OR11), so an order may come again in the next read: callers de-duplicate.
        An empty id list yields nothing (it never widens to "all orders").
        """
        params = date_params(
            start_date=start_date, end_date=end_date, start_update_date=start_update_date
        )
        for id_params in csv_id_filters(order_ids=order_ids, commercial_ids=commercial_ids):
            yield from self._paginate_offset(
                OR11, "/api/orders", {**params, **id_params}, _items_at("orders")
            )

    def iter_service_orders(
        self,
        *,
        date_created_start: DateFilter = None,
        order_ids: Iterable[str] | None = None,
        commercial_order_ids: Iterable[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield service orders (SOR11); id filters are repeated query keys."""
        params = date_params(date_created_start=date_created_start)
        for id_params in repeated_id_filters(
            order_id=order_ids, commercial_order_id=commercial_order_ids
        ):
            yield from self._paginate_seek(SOR11, "/api/mms/orders", {**params, **id_params})

    def iter_service_debits(
        self, *, order_ids: Iterable[str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Yield service debits (SPA11), the payment state of service orders."""
        for id_params in repeated_id_filters(order_id=order_ids):
            yield from self._paginate_seek(SPA11, "/api/mms/debits", id_params)

    def iter_pending_debits(self) -> Iterator[dict[str, Any]]:
        """Yield product orders waiting for the operator to confirm the debit (PA11)."""
        return self._paginate_offset(PA11, "/api/payment/debit", {}, _nested_orders)

    def validate_debits(self, orders: Sequence[Mapping[str, Any]]) -> None:
        """Confirm or refuse product debits (PA01), 100 orders per call."""
        for chunk in chunked(list(orders), WRITE_CHUNK_SIZE):
            # PA01 is a PUT that sets a payment status: replaying it leaves the same state, so
            # the shared policy may retry it like a read.
            self._request(PA01, "PUT", "/api/payment/debit", json={"orders": chunk})

    def iter_pending_refunds(self) -> Iterator[dict[str, Any]]:
        """Yield product refunds waiting for payment (PA12), one flat dict per refund.

        Mirakl nests refunds as ``orders.order[].order_lines.order_line[].refunds.refund[]``;
        each yielded dict carries ``id`` (as ``str``) and ``amount`` of the refund plus
        ``order_id``, ``order_commercial_id``, ``order_line_id``, ``currency_iso_code`` and
        ``shop_id`` copied from its order and line.
        """
        for order in self._paginate_offset(PA12, "/api/payment/refund", {}, _nested_orders):
            yield from _flatten_refunds(order)

    def validate_refunds(self, refunds: Sequence[Mapping[str, Any]]) -> None:
        """Confirm or refuse product refunds (PA02), 100 refunds per call."""
        for chunk in chunked(list(refunds), WRITE_CHUNK_SIZE):
            # Idempotent on Mirakl's side (validating a refund twice is refused, not doubled).
            self._request(PA02, "PUT", "/api/payment/refund", json={"refunds": chunk})

    def iter_service_refunds(self) -> Iterator[dict[str, Any]]:
        """Yield service refunds waiting for payment (SPA12)."""
        return self._paginate_seek(SPA12, "/api/mms/refunds", {})

    def validate_service_refunds(self, refunds: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Confirm or refuse service refunds (SPA02); returns ``{"errors": [...], "success": ...}``.

        The body is a bare JSON array. Calls of more than 100 refunds are split and their
        answers merged, so per-refund errors are never lost.
        """
        merged: dict[str, Any] = {"errors": [], "success": {"refunds": []}}
        for chunk in chunked(list(refunds), WRITE_CHUNK_SIZE):
            # Idempotent on Mirakl's side, like PA02: safe for the shared retry policy.
            body = self._request(SPA02, "PUT", "/api/mms/refunds", json=chunk).json_body or {}
            merged["errors"].extend(body.get("errors") or [])
            merged["success"]["refunds"].extend((body.get("success") or {}).get("refunds") or [])
        return merged

    def iter_shops(
        self,
        *,
        updated_since: DateFilter = None,
        shop_ids: Iterable[int | str] | None = None,
        paginate: bool = True,
    ) -> Iterator[dict[str, Any]]:
        """Yield shops (S20), optionally updated since a date or by id.

        ``paginate=True`` (the Stripe connector's call): ``domains=PRODUCT,SERVICE``, offset
        pages. ``paginate=False`` (the Hyperwallet connector's call, ``updated_since=<instant>&
        paginate=false`` or ``shop_ids=<≤100>&paginate=false``, as the PayPal
        connector's ``IndividualSellersExtractBatchJob`` and its ``MiraklShopsEndpointMock`` do):
        every
        shop in one answer per id chunk, no ``domains``, ``max`` or ``offset``.
        """
        if paginate:
            params: dict[str, Any] = {"domains": "PRODUCT,SERVICE"}
            params.update(date_params(updated_since=updated_since))
            for id_params in csv_id_filters(shop_ids=shop_ids):
                yield from self._paginate_offset(
                    S20, "/api/shops", {**params, **id_params}, _items_at("shops")
                )
            return
        params = {**date_params(updated_since=updated_since), "paginate": "false"}
        for id_params in csv_id_filters(shop_ids=shop_ids):
            reply = self._request(S20, "GET", "/api/shops", params={**params, **id_params})
            yield from _items_at("shops")(reply.json_body)

    def update_shops(self, shops: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Patch shops (S07), 100 per call; returns every ``shop_returns`` entry in order.

        Each entry is ``{"shop_updated": {...}}`` or ``{"shop_error": {...}}``: per-shop
        failures come back in a 200 answer and are the caller's to inspect.
        """
        returns: list[dict[str, Any]] = []
        for chunk in chunked(list(shops), WRITE_CHUNK_SIZE):
            # S07 patches fields to given values: replaying it converges, so retries are safe.
            body = self._request(S07, "PUT", "/api/shops", json={"shops": chunk}).json_body
            returns.extend((body or {}).get("shop_returns") or [])
        return returns

    def iter_shop_documents(self, shop_ids: Iterable[int | str]) -> Iterator[dict[str, Any]]:
        """The documents sellers uploaded (S30 ``GET /api/shops/documents?shop_ids=``).

        Each: ``id``, ``shop_id``, ``type`` (the document type code, e.g.
        ``hw-ind-proof-identity-front``), ``file_name``, ``date_uploaded`` (as the
        PayPal connector's ``DocumentsExtractJob`` reads them).
        """
        for id_params in csv_id_filters(shop_ids=shop_ids):
            reply = self._request(S30, "GET", "/api/shops/documents", params=id_params)
            yield from _items_at("shop_documents")(reply.json_body)

    def download_shop_document(self, document_id: int | str) -> bytes:
        """The file of one shop document (S31 ``GET /api/shops/documents/download``).

        One id per call: Mirakl answers one document as the file itself and several as a ZIP
        archive (developer.mirakl.com S31).
        """
        params = {"document_ids": str(document_id)}
        reply = self._request(S31, "GET", "/api/shops/documents/download", params=params, raw=True)
        return reply.json_body or b""

    def delete_shop_document(self, document_id: int | str) -> None:
        """Delete one shop document (S33 ``DELETE /api/shops/documents/{document_id}``).

        Not idempotent at Mirakl (a second call is a 404): callers list the documents first.
        """
        path = f"/api/shops/documents/{quote(str(document_id), safe='')}"
        self._request(S33, "DELETE", path)

    def iter_invoices(
        self,
        *,
        start_date: DateFilter = None,
        end_date: DateFilter = None,
        shop_id: int | str | None = None,
        payment_status: str | None = None,
        states: Iterable[str] | None = None,
        doc_type: str | None = None,
        seller_billing_cycle_ids: Iterable[str] | None = None,
        invoice_ids: Iterable[str | int] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield accounting documents (IV01) created in a window and/or of one shop.

        The optional filters are IV01's own (published operator OpenAPI, operation IV01):
        ``payment_status`` (PENDING, PAID, FAILED), ``states`` (comma-separated; Mirakl's default
        is GENERATED,COMPLETE), ``type`` (ALL, AUTO_INVOICE, MANUAL_INVOICE, MANUAL_CREDIT; Mirakl's
        default is AUTO_INVOICE), ``seller_billing_cycle_id`` and ``invoice_id`` (comma-separated,
        100 at most a call; one of the two at a time). Left out, Mirakl applies its defaults: the
        Stripe settlement relies on them. An empty id list yields nothing.
        """
        params = date_params(start_date=start_date, end_date=end_date)
        if shop_id is not None:
            params["shop"] = str(shop_id)
        if payment_status is not None:
            params["payment_status"] = payment_status
        if states is not None:
            params["states"] = ",".join(unique(states))
        if doc_type is not None:
            params["type"] = doc_type
        ids = None if invoice_ids is None else [str(i) for i in invoice_ids]
        for id_params in csv_id_filters(
            seller_billing_cycle_id=seller_billing_cycle_ids, invoice_id=ids
        ):
            yield from self._paginate_offset(
                IV01, "/api/invoices", {**params, **id_params}, _items_at("invoices")
            )

    def confirm_invoice_payments(self, documents: Sequence[Mapping[str, Any]]) -> None:
        """Confirm the payment of accounting documents (IV07), 100 documents per call.

        Each document: ``invoice_id`` (int), ``amount`` (Decimal), ``currency_iso_code``,
        ``transaction_date`` and, for Hyperwallet payouts, ``confirm_all_linked_manual_documents``.
        """
        for chunk in chunked(list(documents), WRITE_CHUNK_SIZE):
            # Confirming sets a payment state: replaying it converges, so retries are safe.
            self._request(IV07, "PUT", "/api/invoices", json={"accounting_documents": chunk})

    def iter_billing_cycles(
        self,
        *,
        start_date: DateFilter = None,
        end_date: DateFilter = None,
        pay_out_states: Iterable[str] | None = ("TO_PAY",),
        ids: Iterable[str] | None = None,
        shop_ids: Iterable[int | str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield seller billing cycles (SBC11), by default those still to pay.

        :param pay_out_states: ``TO_PAY``, ``PAID``, ``FAILED`` (repeated key); ``None`` = all.
        """
        params: dict[str, Any] = date_params(start_date=start_date, end_date=end_date)
        if pay_out_states is not None:
            params["pay_out_state"] = list(pay_out_states)
        if shop_ids is not None:
            params["shop_id"] = unique(shop_ids)
        for id_params in repeated_id_filters(id=ids):
            yield from self._paginate_seek(
                SBC11, "/api/seller-billing-cycles", {**params, **id_params}
            )

    def confirm_billing_cycles(self, cycles: Sequence[Mapping[str, Any]]) -> None:
        """Mark seller billing cycles paid (SBC07), 100 per call.

        Each cycle: ``id``, ``amount_transferred_to_seller``, ``currency_iso_code``,
        ``transaction_date``, ``state`` (``PAID``).
        """
        for chunk in chunked(list(cycles), WRITE_CHUNK_SIZE):
            # Sets a pay-out state: replaying converges, like IV07.
            body = {"seller_billing_cycles": chunk}
            self._request(SBC07, "PUT", "/api/seller-billing-cycles", json=body)

    # ------------------------------------------------------------------ pagination

    def _paginate_offset(
        self,
        code: str,
        path: str,
        params: Mapping[str, Any],
        items_of: Callable[[Any], list[Any]],
    ) -> Iterator[dict[str, Any]]:
        """Offset pagination: follow ``Link rel="next"``, else ``offset`` up to ``total_count``."""
        base = {**params, "max": self.page_size}
        seen = 0
        url: str = path
        query: dict[str, Any] | None = {**base, "offset": 0}
        while True:
            reply = self._request(code, "GET", url, params=query)
            page = items_of(reply.json_body)
            if not page:
                return
            yield from page
            seen += len(page)
            next_url = reply.next_link
            if next_url:
                if next_url == reply.url:  # a server bug must not become an endless loop
                    return
                url, query = next_url, None  # absolute, used verbatim
                continue
            total = _int_or_none((reply.json_body or {}).get("total_count"))
            if total is None or seen >= total:
                return
            url, query = path, {**base, "offset": seen}

    def _paginate_seek(
        self, code: str, path: str, params: Mapping[str, Any]
    ) -> Iterator[dict[str, Any]]:
        """Seek pagination: ``limit`` first, then only ``page_token`` (Mirakl ignores the rest)."""
        query: dict[str, Any] = {**params, "limit": self.page_size}
        previous_token = None
        while True:
            body = self._request(code, "GET", path, params=query).json_body or {}
            page = body.get("data") or []
            if not page:
                return
            yield from page
            token = body.get("next_page_token")
            if not token or token == previous_token:
                return
            previous_token = token
            query = {"page_token": token}

    # ------------------------------------------------------------------ transport

    def _request(
        self,
        endpoint_code: str,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        *,
        raw: bool = False,
    ) -> _Reply:
        """Send one logical request with the shared retry policy; map the final failure.

        ``raw``: the answer is a file; its bytes are the reply's body (no JSON parsing).

        ``path`` is relative to ``base_url`` or an absolute URL (a ``Link`` next page).
        """
        url = self._url(path)
        headers = dict(self._headers)
        data = None
        if json is not None:
            data = dumps(json).encode("utf-8")
            headers["Content-Type"] = "application/json; charset=utf-8"

        def check(response: requests.Response) -> _Reply:
            if raw and response.status_code < 400:
                return _Reply(response.content, None, response.url)
            return self._check(endpoint_code, method, path, response)

        def transport_error(message: str) -> MiraklTransportError:
            return MiraklTransportError(endpoint_code, message, method=method, path=path)

        return self._roundtrip(
            endpoint_code,
            f"Mirakl {endpoint_code} {method} {path}",
            method,
            url,
            check=check,
            transport_error=transport_error,
            params=params,
            data=data,
            headers=headers,
        )

    def _check(self, code: str, method: str, path: str, response: requests.Response) -> _Reply:
        """Turn a response into a reply, or raise the error it stands for."""
        status = response.status_code
        if status < 400:
            try:
                body = loads(response.text) if response.content else None
            except ValueError:
                raise MiraklServerError(
                    code,
                    self._redact(f"invalid JSON in response: {truncate(response.text)}"),
                    http_status=status,
                    method=method,
                    path=path,
                ) from None
            next_link = (response.links.get("next") or {}).get("url")
            return _Reply(body, next_link, response.url)
        message = self._redact(_error_message(response))

        def error(kind: str) -> MiraklApiError:
            cls = _ERROR_CLASSES[kind]
            return cls(code, message, http_status=status, method=method, path=path)

        raise_for_status(response, error)


class _Reply:
    """The parts of a successful response the client uses."""

    __slots__ = ("json_body", "next_link", "url")

    def __init__(self, json_body: Any, next_link: str | None, url: str) -> None:
        self.json_body = json_body
        self.next_link = next_link
        self.url = url


# ---------------------------------------------------------------------- JSON


def dumps(value: Any) -> str:
    """Serialise a request body; ``Decimal`` becomes a JSON number (``12.34``), not a string.

    ``float`` is refused: an amount that went through binary floating point is already suspect.
    Aware datetimes become Mirakl dates (:func:`format_date`).
    """
    return _dumps(value, decimal_as_string=False, format_datetime=format_date)


# ------------------------------------------------------------ response shapes


def _items_at(key: str) -> Callable[[Any], list[Any]]:
    def items(body: Any) -> list[Any]:
        return list((body or {}).get(key) or [])

    return items


def _unwrap(container: Any, key: str) -> list[Any]:
    """``{"order": [...]}`` or an already bare list (Mirakl uses both for PA11/PA12)."""
    if isinstance(container, Mapping):
        container = container.get(key)
    if isinstance(container, Mapping):  # a single item serialised without its list
        return [container]
    return list(container or [])


def _nested_orders(body: Any) -> list[Any]:
    return _unwrap((body or {}).get("orders"), "order")


def _flatten_refunds(order: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for line in _unwrap(order.get("order_lines"), "order_line"):
        for refund in _unwrap(line.get("refunds"), "refund"):
            yield {
                "id": None if refund.get("id") is None else str(refund["id"]),
                "amount": refund.get("amount"),
                "order_id": order.get("order_id"),
                "order_commercial_id": order.get("order_commercial_id"),
                "order_line_id": line.get("order_line_id"),
                "currency_iso_code": order.get("currency_iso_code"),
                "shop_id": order.get("shop_id"),
            }


def _error_message(response: requests.Response) -> str:
    """Mirakl's ``message`` from an error body, else the start of the raw text."""
    try:
        body = loads(response.text)
    except ValueError:
        body = None
    if isinstance(body, Mapping) and body.get("message"):
        return str(body["message"])
    return truncate(response.text) or response.reason or "no body"


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
