"""Errors of the Hyperwallet API, with its ``{"errors": [...]}`` details kept.

They subclass :class:`~mirakl_connector.core.errors.PaymentProviderError`, so the batch runner
records
them against the item like a Stripe error. ``permanent`` is True for 4xx answers other than 429:
the request itself was refused and sending it again cannot succeed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mirakl_connector.core.errors import PaymentProviderError


class HyperwalletApiError(PaymentProviderError):
    """An error answer (or no answer) from Hyperwallet.

    :param operation: what was attempted, e.g. ``POST /users``.
    :param errors: the ``errors`` entries of the body (``code``, ``fieldName``, ``message``,
        ``relatedResources``), empty when the body had none.
    """

    def __init__(
        self,
        operation: str,
        message: str,
        *,
        http_status: int | None = None,
        errors: Sequence[Mapping[str, Any]] = (),
        permanent: bool = False,
    ) -> None:
        self.operation = operation
        self.errors = [dict(e) for e in errors]
        status = f"HTTP {http_status}" if http_status is not None else "no response"
        code = self.errors[0].get("code") if self.errors else None
        super().__init__(
            f"Hyperwallet {operation} failed ({status}): {message}",
            code=str(code) if code else None,
            http_status=http_status,
            permanent=permanent,
        )

    @property
    def codes(self) -> list[str]:
        """Every error code of the answer, e.g. ``["CONSTRAINT_VIOLATIONS"]``."""
        return [str(e["code"]) for e in self.errors if e.get("code")]


class HyperwalletClientError(HyperwalletApiError):
    """4xx other than 429: the request was refused (bad data, duplicate, unknown token...)."""


class HyperwalletNotFoundError(HyperwalletClientError):
    """404: the user, transfer method, payment or notification does not exist."""


class HyperwalletRateLimitError(HyperwalletApiError):
    """429 answers kept coming after the retry budget was spent."""


class HyperwalletServerError(HyperwalletApiError):
    """5xx answers (or an unreadable body) kept coming after the retry budget was spent."""


class HyperwalletTransportError(HyperwalletApiError):
    """The connection failed or timed out (after the retry budget, when retries were allowed)."""


def describe_errors(errors: Sequence[Mapping[str, Any]]) -> str:
    """``CODE fieldName: message; ...`` — one readable line from an ``errors`` list."""
    parts = []
    for entry in errors:
        code = entry.get("code") or "ERROR"
        field = entry.get("fieldName")
        message = entry.get("message") or ""
        head = f"{code} {field}" if field else str(code)
        parts.append(f"{head}: {message}" if message else head)
    return "; ".join(parts)
