"""HTTP client for the Hyperwallet REST API v4 (users, bank accounts, stakeholders, payments).

Why not the PyPI SDK: it is hard-wired to ``/rest/v3``, drops the v4 cursor links and has no
business-stakeholder calls. This client is one request method plus one description per endpoint:

* HTTP Basic auth with the API user and password (global); the program token is not a
  credential, it travels in bodies (``programToken``) and list filters, so one client serves
  every program of the configuration.
* Lists use v4 cursor paging: follow the ``links`` entry with ``rel=next`` until there is none;
  an empty list is ``204 No Content``.
* An error answer ``{"errors": [{"code", "fieldName", "message"}]}`` becomes a
  :class:`~mirakl_connector.hyperwallet.errors.HyperwalletApiError` whose message names the
  operation, the HTTP status and every error code.
* Retries use the connector's one :class:`~mirakl_connector.core.retry.RetryPolicy`, like the Mirakl
  client: 429, 5xx and transport failures. A ``POST`` creates something and Hyperwallet has no
  idempotency key, so it is retried only when the request certainly never arrived (connection
  refused or connect timeout) or was refused with 429; any other failure is raised and the
  workflow looks the object up (by ``clientUserId``, the account, ``clientPaymentId``) before
  creating it again.
* Bodies are parsed with ``parse_float=Decimal``; Hyperwallet sends amounts as strings anyway.
* With payload encryption (a :class:`~mirakl_connector.hyperwallet.encryption.PayloadEncryption`,
  for programs that have it turned on) every body is sent signed then encrypted as
  ``application/jose+json`` and every answer must come back that way (Hyperwallet SDKs
  ``HyperwalletApiClient``: the request and the expected response content type are both
  ``application/jose+json``); a plain 2xx answer is refused as unverifiable (unknown outcome for
  a create), a plain error answer is read as an error.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests

from mirakl_connector.core.errors import ConfigurationError
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
from mirakl_connector.core.retry import RetryPolicy
from mirakl_connector.hyperwallet.encryption import (
    CONTENT_TYPE as JOSE_CONTENT_TYPE,
)
from mirakl_connector.hyperwallet.encryption import (
    JoseError,
    PayloadEncryption,
    is_jose,
)
from mirakl_connector.hyperwallet.errors import (
    HyperwalletApiError,
    HyperwalletClientError,
    HyperwalletNotFoundError,
    HyperwalletRateLimitError,
    HyperwalletServerError,
    HyperwalletTransportError,
    describe_errors,
)

log = logging.getLogger(__name__)

API_PATH = "/rest/v4"
MAX_PAGE_SIZE = 100

_ERROR_CLASSES: dict[str, type[HyperwalletApiError]] = {
    RATE_LIMITED: HyperwalletRateLimitError,
    SERVER_ERROR: HyperwalletServerError,
    CLIENT_ERROR: HyperwalletClientError,
}


class HyperwalletClient(JsonHttpClient):
    """Talks to one Hyperwallet API server with one API user.

    :param server: API server, e.g. ``https://uat-api.paylution.com`` (``/rest/v4`` is added
        unless the URL already ends with it).
    :param username: the REST API user (``restapiuser@...``).
    :param password: its password; never logged nor shown in ``repr()`` or error messages.
    :param timeout: (connect, read) seconds for every request.
    :param retry: the retry budget for 429, 5xx and transport errors.
    :param page_size: ``limit`` of list calls.
    :param session: a ``requests.Session`` to reuse (connection pooling, tests).
    :param encryption: payload encryption, for a program that has it turned on.
    """

    def __init__(
        self,
        server: str,
        username: str,
        password: str,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        page_size: int = MAX_PAGE_SIZE,
        session: requests.Session | None = None,
        encryption: PayloadEncryption | None = None,
    ) -> None:
        if not server or not server.strip():
            raise ValueError("server is required")
        if not username or not password:
            raise ValueError("username and password are required")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
        super().__init__(
            timeout=timeout,
            retry=retry,
            session=session,
            # a user name of a few letters would be "redacted" all over an error message
            secrets=[secret for secret in (username, password) if len(secret) >= 4],
            logger=log,
        )
        base = server.strip().rstrip("/")
        self.base_url = base if base.endswith(API_PATH) else base + API_PATH
        self.page_size = page_size
        self._auth = (username, password)
        self.encryption = encryption

    def __repr__(self) -> str:
        return f"HyperwalletClient(base_url={self.base_url!r})"

    # ------------------------------------------------------------------ programs

    def get_program(self, program_token: str) -> dict[str, Any]:
        """The program (a cheap credentials and token check)."""
        return self._get(f"/programs/{_seg(program_token)}")

    # ------------------------------------------------------------------ users

    def iter_users(
        self,
        *,
        client_user_id: str | None = None,
        program_token: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield users matching the filters, following the cursor links."""
        params = _filters(
            clientUserId=client_user_id,
            programToken=program_token,
            createdAfter=created_after,
            createdBefore=created_before,
        )
        return self._paginate("/users", params)

    def find_user(
        self, client_user_id: str, program_token: str | None = None
    ) -> dict[str, Any] | None:
        """The user whose ``clientUserId`` is the shop id, or ``None``."""
        for user in self.iter_users(client_user_id=client_user_id, program_token=program_token):
            if str(user.get("clientUserId")) == str(client_user_id):
                return user
        return None

    def get_user(self, user_token: str) -> dict[str, Any]:
        return self._get(f"/users/{_seg(user_token)}")

    def create_user(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._send("POST", "/users", body)

    def update_user(self, user_token: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._send("PUT", f"/users/{_seg(user_token)}", body)

    # ------------------------------------------------------------------ bank accounts

    def iter_bank_accounts(self, user_token: str) -> Iterator[dict[str, Any]]:
        """Yield the user's bank accounts (transfer methods of type bank/wire account)."""
        return self._paginate(f"/users/{_seg(user_token)}/bank-accounts", {})

    def get_bank_account(self, user_token: str, bank_account_token: str) -> dict[str, Any]:
        return self._get(f"/users/{_seg(user_token)}/bank-accounts/{_seg(bank_account_token)}")

    def create_bank_account(self, user_token: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._send("POST", f"/users/{_seg(user_token)}/bank-accounts", body)

    def update_bank_account(
        self, user_token: str, bank_account_token: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        path = f"/users/{_seg(user_token)}/bank-accounts/{_seg(bank_account_token)}"
        return self._send("PUT", path, body)

    def upload_user_documents(
        self,
        user_token: str,
        documents: Sequence[Mapping[str, Any]],
        files: Mapping[str, tuple[str, bytes]],
    ) -> dict[str, Any]:
        """Upload verification documents: multipart ``PUT /users/{token}``.

        As the Hyperwallet Java SDK's ``uploadUserDocuments`` (``MultipartUtility``): a form
        field ``data`` = ``{"documents": [{"type", "country", "category"}]}`` and one file part
        per side, named ``<type in lower case>_front`` / ``_back``. ``files`` maps part names to
        ``(file name, bytes)``.
        """
        payload = {"documents": [dict(d) for d in documents]}
        return (
            self._request("PUT", f"/users/{_seg(user_token)}", json=payload, files=files).body or {}
        )

    def upload_stakeholder_documents(
        self,
        user_token: str,
        stakeholder_token: str,
        documents: Sequence[Mapping[str, Any]],
        files: Mapping[str, tuple[str, bytes]],
    ) -> dict[str, Any]:
        """Multipart ``PUT /users/{u}/business-stakeholders/{stk}`` (as the PayPal connector's
        ``DocumentsExtractJob`` sends it), shaped as
        :meth:`upload_user_documents`."""
        path = f"/users/{_seg(user_token)}/business-stakeholders/{_seg(stakeholder_token)}"
        payload = {"documents": [dict(d) for d in documents]}
        return self._request("PUT", path, json=payload, files=files).body or {}

    # ------------------------------------------------------------------ business stakeholders

    def iter_business_stakeholders(self, user_token: str) -> Iterator[dict[str, Any]]:
        return self._paginate(f"/users/{_seg(user_token)}/business-stakeholders", {})

    def create_business_stakeholder(
        self, user_token: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        return self._send("POST", f"/users/{_seg(user_token)}/business-stakeholders", body)

    def update_business_stakeholder(
        self, user_token: str, stakeholder_token: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        path = f"/users/{_seg(user_token)}/business-stakeholders/{_seg(stakeholder_token)}"
        return self._send("PUT", path, body)

    # ------------------------------------------------------------------ payments

    def iter_payments(
        self,
        *,
        client_payment_id: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> Iterator[dict[str, Any]]:
        params = _filters(
            clientPaymentId=client_payment_id,
            createdAfter=created_after,
            createdBefore=created_before,
        )
        return self._paginate("/payments", params)

    def find_payments(self, client_payment_id: str) -> list[dict[str, Any]]:
        """Every payment carrying ``clientPaymentId`` (the invoice id), whatever its status."""
        return [
            p
            for p in self.iter_payments(client_payment_id=client_payment_id)
            if str(p.get("clientPaymentId")) == str(client_payment_id)
        ]

    def get_payment(self, payment_token: str) -> dict[str, Any]:
        return self._get(f"/payments/{_seg(payment_token)}")

    def create_payment(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create a payment. Not retried once it may have arrived: look it up before a retry."""
        return self._send("POST", "/payments", body)

    # ------------------------------------------------------------------ webhook notifications

    def get_webhook_notification(self, token: str) -> dict[str, Any]:
        return self._get(f"/webhook-notifications/{_seg(token)}")

    def iter_webhook_notifications(
        self,
        *,
        type: str | None = None,
        program_token: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> Iterator[dict[str, Any]]:
        params = _filters(
            type=type,
            programToken=program_token,
            createdAfter=created_after,
            createdBefore=created_before,
        )
        return self._paginate("/webhook-notifications", params)

    # ------------------------------------------------------------------ plumbing

    def _get(self, path: str) -> dict[str, Any]:
        return self._request("GET", path).body or {}

    def _send(self, method: str, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._request(method, path, json=dict(body)).body or {}

    def _paginate(self, path: str, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """Cursor paging: ``limit`` first, then the ``rel=next`` link verbatim until none."""
        url: str = path
        query: dict[str, Any] | None = {**params, "limit": self.page_size}
        seen: set[str] = set()
        while True:
            reply = self._request("GET", url, params=query)
            body = reply.body if isinstance(reply.body, Mapping) else {}
            yield from body.get("data") or []
            next_url = _next_link(body)
            if not next_url or body.get("hasNextPage") is False or next_url in seen:
                return
            seen.add(next_url)
            url, query = next_url, None

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        files: Mapping[str, tuple[str, bytes]] | None = None,
    ) -> _Reply:
        """One logical request with the shared retry policy; map the final failure.

        With ``files``, a multipart body: ``json`` goes in the form field ``data``.
        """
        url = self._url(path)
        operation = f"{method} {_operation_path(url, self.base_url)}"
        creates = method == "POST"
        media = JOSE_CONTENT_TYPE if self.encryption else "application/json"
        headers = {"Accept": media}
        data: Any = None
        if files is not None:
            # Document uploads are multipart (the SDKs' MultipartUtility); their ``data`` part is
            # sent as JSON: payload encryption of multipart uploads is not supported here.
            data = {"data": dumps(json) if json is not None else "{}"}
        elif json is not None:
            data = self._encode(operation, dumps(json))
            headers["Content-Type"] = media

        def transport_error(message: str) -> HyperwalletTransportError:
            return HyperwalletTransportError(operation, message)

        return self._roundtrip(
            operation,
            f"Hyperwallet {operation}",
            method,
            url,
            check=lambda response: self._check(operation, response, creates=creates),
            transport_error=transport_error,
            # a create that may have arrived is looked up by the caller, never sent again
            retry_transport=lambda exc: not creates or _never_sent(exc),
            params=params,
            data=data,
            files=files,
            headers=headers,
            auth=self._auth,
        )

    def _check(self, operation: str, response: requests.Response, *, creates: bool) -> _Reply:
        status = response.status_code
        if status == 204 or (status < 400 and not response.content):
            return _Reply(None)
        body: Any = None
        text = response.text if response.content else ""
        if self.encryption is not None and text:
            text = self._decode(operation, response, status)
        if text:
            try:
                body = loads(text)
            except ValueError:
                body = None
        if status < 400:
            if body is None:
                raise HyperwalletServerError(
                    operation,
                    self._redact(f"invalid JSON in response: {truncate(response.text)}"),
                    http_status=status,
                )
            return _Reply(body)
        errors = _errors_of(body)
        message = self._redact(
            describe_errors(errors) or truncate(response.text) or response.reason or "no body"
        )

        def error(kind: str) -> HyperwalletApiError:
            if kind == CLIENT_ERROR:
                cls = HyperwalletNotFoundError if status == 404 else HyperwalletClientError
                return cls(operation, message, http_status=status, errors=errors, permanent=True)
            return _ERROR_CLASSES[kind](operation, message, http_status=status, errors=errors)

        # a create answered 5xx may have happened: the caller looks it up, never re-sends blindly
        raise_for_status(response, error, retry_server_errors=not creates)

    def _encode(self, operation: str, text: str) -> bytes:
        """The request body: plain JSON, or signed and encrypted for an encrypted program."""
        if self.encryption is None:
            return text.encode("utf-8")
        try:
            return self.encryption.encrypt(text).encode("ascii")
        except JoseError as exc:  # nothing was sent: a configuration problem
            raise ConfigurationError(f"Hyperwallet {operation}: {exc}") from None

    def _decode(self, operation: str, response: requests.Response, status: int) -> str:
        """The JSON text of an encrypted program's answer (decrypted and verified)."""
        assert self.encryption is not None
        if not is_jose(response.headers.get("Content-Type")):
            if status >= 400:
                return response.text  # an error in plain JSON is still an error
            # unverifiable: for a create this is an unknown outcome (the caller looks it up)
            raise HyperwalletServerError(
                operation,
                "the answer is not application/jose+json although encryption is on",
                http_status=status,
            )
        try:
            return self.encryption.decrypt(response.content).decode("utf-8")
        except (JoseError, UnicodeDecodeError) as exc:
            raise HyperwalletServerError(
                operation, f"encrypted answer refused: {exc}", http_status=status
            ) from None


class _Reply:
    __slots__ = ("body",)

    def __init__(self, body: Any) -> None:
        self.body = body


# ---------------------------------------------------------------------- helpers


def format_hw_datetime(value: datetime) -> str:
    """Hyperwallet's date-time: ``yyyy-MM-ddTHH:mm:ss`` in UTC, no zone suffix."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"datetime {value.isoformat()} has no timezone")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def parse_hw_datetime(value: Any) -> datetime | None:
    """Parse ``2021-11-12T09:55:53`` (UTC, optional millis or zone); ``None`` when unusable."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _filters(**values: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        out[name] = format_hw_datetime(value) if isinstance(value, datetime) else str(value)
    return out


def _seg(token: str) -> str:
    """A token as one path segment (a token with a ``/`` must not reach another resource)."""
    if not isinstance(token, str) or not token.strip():
        raise ValueError("a Hyperwallet token is required")
    return quote(token.strip(), safe="")


def _next_link(body: Mapping[str, Any]) -> str | None:
    for link in body.get("links") or []:
        if not isinstance(link, Mapping):
            continue
        rel = (
            (link.get("params") or {}).get("rel")
            if isinstance(link.get("params"), Mapping)
            else None
        )
        href = link.get("href")
        if rel == "next" and isinstance(href, str) and href:
            return href
    return None


def _operation_path(url: str, base_url: str) -> str:
    path = url[len(base_url) :] if url.startswith(base_url) else url
    return path.split("?", 1)[0] or "/"


def _errors_of(body: Any) -> list[Mapping[str, Any]]:
    if isinstance(body, Mapping) and isinstance(body.get("errors"), list):
        return [e for e in body["errors"] if isinstance(e, Mapping)]
    return []


def _never_sent(exc: Exception) -> bool:
    """True when the request certainly did not reach the server (safe to send again)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError):
        from urllib3.exceptions import NewConnectionError

        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return isinstance(reason, NewConnectionError) or isinstance(
            exc.args[0] if exc.args else None, NewConnectionError
        )
    return False


def dumps(value: Any) -> str:
    """JSON for a request body; ``Decimal`` amounts become plain decimal strings (``"12.30"``).

    Hyperwallet takes amounts as strings; ``float`` is refused like everywhere in the connector.
    """
    return _dumps(value, decimal_as_string=True, format_datetime=format_hw_datetime)
