"""The one JSON-over-HTTP base of the provider clients that speak plain REST (Mirakl, Hyperwallet).

Both clients need the same plumbing, and a fix made in one must reach the other: a reused
``requests.Session``, a (connect, read) timeout on every request, the connector's one
:class:`~mirakl_connector.core.retry.RetryPolicy` (429 with ``Retry-After``, 5xx, transport
failures), credentials removed from every text that can reach a log or an exception, a count of
calls per endpoint (the run summaries and benches read ``call_counts``) and JSON with money kept
as ``Decimal`` both ways (``parse_float=Decimal`` in, ``float`` refused out).

What stays with each client is what differs between the providers: the authentication, the error
classes and how an error body reads, pagination, and whether a failed create may be sent again
(Hyperwallet has no idempotency key, so its client says so through ``retry_transport`` and
``retry_server_errors``). Stripe goes through its SDK and does not use this module.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, NoReturn, TypeVar

import requests

from mirakl_connector.core.retry import RetryPolicy, parse_retry_after

R = TypeVar("R")

DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 30.0)
MESSAGE_LIMIT = 300  # characters of a non-JSON error body kept in an exception

# What ``raise_for_status`` asks the client to build for a failed answer.
RATE_LIMITED = "rate_limited"
SERVER_ERROR = "server_error"
CLIENT_ERROR = "client_error"


class TransientFailure(Exception):
    """One failed attempt worth retrying; carries the error to raise when the budget ends."""

    def __init__(self, error: Exception, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


class JsonHttpClient:
    """Session, timeout, retries, redaction and call counts shared by the REST clients.

    :param timeout: (connect, read) seconds for every request.
    :param retry: the retry budget for 429, 5xx and transport errors.
    :param session: a ``requests.Session`` to reuse (connection pooling, tests).
    :param secrets: the credentials to remove from error texts and logs.
    :param logger: where retries are logged (the client's own module logger).
    """

    base_url: str  # each client sets it from its own configuration

    def __init__(
        self,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        session: requests.Session | None = None,
        secrets: Iterable[str] = (),
        logger: logging.Logger | None = None,
    ) -> None:
        self.timeout = timeout
        self.call_counts: Counter[str] = Counter()
        self._retry = retry or RetryPolicy()
        self._session = session or requests.Session()
        self._secrets = tuple(s for s in secrets if s)
        self._log = logger or logging.getLogger(__name__)

    def _url(self, path: str) -> str:
        """``path`` relative to ``base_url``, or an absolute URL (a next-page link) verbatim."""
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    def _redact(self, text: str) -> str:
        """Remove the credentials from text that may reach a log or an exception."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _roundtrip(
        self,
        count_key: str,
        label: str,
        method: str,
        url: str,
        *,
        check: Callable[[requests.Response], R],
        transport_error: Callable[[str], Exception],
        retry_transport: Callable[[requests.RequestException], bool] = lambda _exc: True,
        **request: Any,
    ) -> R:
        """Send one logical request under the retry policy and return ``check(response)``.

        ``check`` turns the answer into the client's reply or raises; it raises
        :class:`TransientFailure` for what may be retried (see :func:`raise_for_status`).
        ``transport_error`` builds the client's error from a redacted message when no answer
        came; ``retry_transport`` says whether that request may be sent again (a create that may
        have arrived must not be). ``label`` names the call in retry logs.
        """

        def attempt() -> R:
            self.call_counts[count_key] += 1
            try:
                response = self._session.request(method, url, timeout=self.timeout, **request)
            except (requests.ConnectionError, requests.Timeout) as exc:
                error = transport_error(self._redact(f"{type(exc).__name__}: {exc}"))
                if not retry_transport(exc):
                    raise error from None
                raise TransientFailure(error) from None
            except requests.RequestException as exc:
                raise transport_error(self._redact(str(exc))) from None
            return check(response)

        def on_retry(exc: BaseException, attempt_number: int, wait: float) -> None:
            error = exc.error if isinstance(exc, TransientFailure) else exc
            status = getattr(error, "http_status", None)
            self._log.warning(
                "%s failed (%s), retry %d in %.2fs",
                label,
                f"HTTP {status}" if status is not None else "no response",
                attempt_number,
                wait,
            )

        try:
            return self._retry.call(
                attempt,
                is_retryable=lambda exc: isinstance(exc, TransientFailure),
                retry_after=lambda exc: getattr(exc, "retry_after", None),
                on_retry=on_retry,
            )
        except TransientFailure as failure:
            raise failure.error from None


def raise_for_status(
    response: requests.Response,
    make_error: Callable[[str], Exception],
    *,
    retry_server_errors: bool = True,
) -> NoReturn:
    """Raise the error a failed answer (status >= 400) stands for, transient or not.

    ``make_error(kind)`` builds the client's error for ``RATE_LIMITED`` (429, retried after its
    ``Retry-After``), ``SERVER_ERROR`` (5xx, retried unless ``retry_server_errors`` is off) or
    ``CLIENT_ERROR`` (any other: final).
    """
    status = response.status_code
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        raise TransientFailure(make_error(RATE_LIMITED), retry_after)
    if status >= 500:
        error = make_error(SERVER_ERROR)
        if not retry_server_errors:
            raise error
        raise TransientFailure(error)
    raise make_error(CLIENT_ERROR)


# ---------------------------------------------------------------------- JSON


def loads(text: str) -> Any:
    """Parse a body; numbers with a fraction become ``Decimal``, never ``float``."""
    return json.loads(text, parse_float=Decimal)


def dumps(
    value: Any,
    *,
    decimal_as_string: bool,
    format_datetime: Callable[[datetime], str],
) -> str:
    """Serialise a request body compactly; ``float`` is refused, ``Decimal`` kept exact.

    ``decimal_as_string``: ``Decimal("12.30")`` is written ``"12.30"`` (Hyperwallet takes amounts
    as strings) rather than the JSON number ``12.30`` (Mirakl). An amount that went through
    binary floating point is already suspect, so ``float`` raises ``TypeError``. Datetimes are
    written with the provider's ``format_datetime``.
    """
    return "".join(_encode(value, decimal_as_string, format_datetime))


def _encode(
    value: Any, decimal_as_string: bool, format_datetime: Callable[[datetime], str]
) -> Iterator[str]:
    if value is None or isinstance(value, bool | int | str):
        yield json.dumps(value)
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot send a non-finite amount: {value}")
        text = format(value, "f")
        yield json.dumps(text) if decimal_as_string else text
    elif isinstance(value, float):
        raise TypeError(f"refusing to send float {value!r}: use Decimal for amounts")
    elif isinstance(value, datetime):
        yield json.dumps(format_datetime(value))
    elif isinstance(value, Mapping):
        yield "{"
        for index, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be str, got {type(key).__name__}")
            yield ("," if index else "") + json.dumps(key) + ":"
            yield from _encode(item, decimal_as_string, format_datetime)
        yield "}"
    elif isinstance(value, list | tuple):
        yield "["
        for index, item in enumerate(value):
            if index:
                yield ","
            yield from _encode(item, decimal_as_string, format_datetime)
        yield "]"
    else:
        raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def truncate(text: str) -> str:
    """The start of a raw body, short enough for an exception message."""
    text = (text or "").strip()
    return text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT] + "…"
