"""Exceptions raised by the connector library.

The tree, so callers can catch exactly what they can handle::

    MiraklConnectorError
    ├── ConfigurationError          a setting or connection is missing or wrong
    ├── InvalidItemError            one item cannot be processed (bad data); the batch goes on
    │   └── UnknownCurrencyError
    ├── MiraklApiError              the Mirakl API answered with an error, or could not be reached
    │   ├── MiraklClientError       4xx other than 429 (not retried)
    │   ├── MiraklRateLimitError    429 still returned after the retry budget
    │   ├── MiraklServerError       5xx still returned after the retry budget
    │   └── MiraklTransportError    connection error or timeout after the retry budget
    └── PaymentProviderError        a Stripe call failed (see ``permanent``)

Every message leads with what failed (the Mirakl endpoint code, the item id) so that a line in the
Airflow task log or the failure e-mail is enough to find the item.
"""

from __future__ import annotations


class MiraklConnectorError(Exception):
    """Base class of every error raised by :mod:`mirakl_connector`."""


class ConfigurationError(MiraklConnectorError):
    """A required setting, connection field or credential is missing or malformed."""


class InvalidItemError(MiraklConnectorError):
    """One item (order, refund, invoice...) carries data we cannot act on.

    Raised by the parsers; the batch runner records it against the item with ``reason`` and moves
    on to the next item.
    """

    def __init__(self, reason: str, *, item_id: str | None = None) -> None:
        self.item_id = item_id
        self.reason = reason
        super().__init__(f"{item_id}: {reason}" if item_id else reason)

    def for_item(self, item_id: str) -> InvalidItemError:
        """Return the same error attached to ``item_id`` (parsers raise before they know it)."""
        if self.item_id:
            return self
        return type(self)(self.reason, item_id=item_id)


class UnknownCurrencyError(InvalidItemError):
    """The currency code is not an ISO 4217 code we know the exponent of."""


class MiraklApiError(MiraklConnectorError):
    """An error answer (or no answer) from the Mirakl API.

    :param endpoint: the Mirakl endpoint code, e.g. ``OR11``.
    :param http_status: the HTTP status, or ``None`` when no response was received.
    :param message: the error text from Mirakl's body (``message``) or the transport error.
    """

    def __init__(
        self,
        endpoint: str,
        message: str,
        *,
        http_status: int | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.http_status = http_status
        self.message = message
        self.method = method
        self.path = path
        status = f"HTTP {http_status}" if http_status is not None else "no response"
        super().__init__(f"Mirakl {endpoint} failed ({status}): {message}")


class MiraklClientError(MiraklApiError):
    """4xx answer other than 429: the request itself is wrong; retrying will not help."""


class MiraklRateLimitError(MiraklApiError):
    """429 answers kept coming after the retry budget was spent."""


class MiraklServerError(MiraklApiError):
    """5xx answers kept coming after the retry budget was spent."""


class MiraklTransportError(MiraklApiError):
    """The connection failed or timed out after the retry budget was spent."""


class PaymentProviderError(MiraklConnectorError):
    """A call to the payment provider failed.

    :param permanent: True when the provider refused the request for good (invalid request,
        already captured, insufficient rights): retrying the same call cannot succeed.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        permanent: bool = False,
    ) -> None:
        self.message = message
        self.code = code
        self.http_status = http_status
        self.permanent = permanent
        super().__init__(message)
