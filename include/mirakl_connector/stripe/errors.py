"""What an error from a Stripe call says about the request: refused, retry, or unknown.

Errors are mapped once (:func:`classify`), to
:class:`~mirakl_connector.core.errors.PaymentProviderError` by the gateway, with
``permanent=True`` only when *Stripe itself* refused the request: a status Stripe documents as a
refusal (400, 402, 403, 404) carrying Stripe's JSON error object with one of its documented error
types. Anything else is an unknown outcome (``permanent=False``): network errors, 5xx, 409, 429
after the retry budget, and every answer that did not come from Stripe's API, such as a 408, an
HTML error page, a 200 whose body is not JSON or is cut short, or JSON that is not a Stripe
object. Such answers come from something between us and Stripe (a proxy, a load balancer) and
say nothing about whether Stripe did the work, so they are resolved by replaying the same key or
looking the object up, never by a new key. Stripe's ``Stripe-Should-Retry`` header is followed
when present; a 5xx that Stripe saved for the key (``Stripe-Should-Retry: false`` or
``Idempotent-Replayed: true``) is not retried, since a replay answers the same, and is reported
with the code :data:`KEY_SPENT` so the caller looks the object up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import stripe

#: Stripe's error types (docs: https://docs.stripe.com/api/errors, attribute ``type``).
STRIPE_ERROR_TYPES = frozenset(
    {"api_error", "card_error", "idempotency_error", "invalid_request_error"}
)
#: Statuses Stripe documents as "the request failed given the information provided" (docs:
#: https://docs.stripe.com/api/errors, HTTP status code summary; 401 is a wrong key, handled
#: apart). Only these, with Stripe's error object, mean that nothing was done.
REFUSAL_STATUSES = frozenset({400, 401, 402, 403, 404})
#: Code of the error raised when Stripe saved a server error for the key: replaying the key gets
#: the same answer, so the object is looked up (:mod:`mirakl_connector.stripe.exactly_once`).
KEY_SPENT = "idempotency_key_spent"
#: Code of the error raised for an answer that did not come from Stripe's API (unknown outcome).
UNCLEAR_ANSWER = "unclear_answer"

#: What an error says about the request (:func:`classify`).
REFUSED = "refused"  # Stripe refused it: nothing was done
RETRY = "retry"  # outcome unknown; sending it again with the same key is safe and useful
UNKNOWN = "unknown"  # outcome unknown; sending it again with the same key is useless


def classify(exc: BaseException) -> str:
    """What an error from a Stripe call says: :data:`REFUSED`, :data:`RETRY` or :data:`UNKNOWN`.

    * ``Stripe-Should-Retry`` comes first when Stripe sent it (as stripe-python's own retry
      logic does, ``_http_client._should_retry``): ``true`` retries whatever the status;
      ``false`` stops retrying, and only a refusal (below) is then a refusal.
    * A 5xx that Stripe saved for the idempotency key (``Stripe-Should-Retry: false``, or
      ``Idempotent-Replayed: true`` on the error) cannot change by replaying the key: UNKNOWN.
      Docs (https://docs.stripe.com/idempotency): results are saved "regardless of whether it
      succeeds or fails"; "subsequent requests with the same key return the same result,
      including 500 errors".
    * A refusal is a status Stripe documents as one (:data:`REFUSAL_STATUSES`) with Stripe's
      JSON error object and one of its error types (``api_error`` excepted). stripe-python
      raises a plain ``APIError`` with no such body when the answer could not be parsed (an
      HTML page, a truncated or non-JSON body, whatever the status) or had no ``error``
      object: that answer did not come from Stripe's API and proves nothing.
    * Everything else is RETRY: network errors, 408, 409 (a request with the same key is in
      progress), 429, 5xx and every unclear answer. A write is retried with the same key, so
      a retry can never do the work twice.
    """
    if not isinstance(exc, stripe.StripeError):
        return UNKNOWN  # not an answer at all: let it propagate, nothing is retried
    advice = _should_retry(exc)
    if advice is True:
        return RETRY
    if _is_refusal(exc):
        return REFUSED
    if advice is False or key_spent(exc):
        return UNKNOWN
    return RETRY


def is_transient(exc: BaseException) -> bool:
    """Whether the retry policy sends the request again (with the same key)."""
    return classify(exc) == RETRY


def key_spent(exc: BaseException) -> bool:
    """Stripe saved a server error for this idempotency key: a replay gets the same answer."""
    if not isinstance(exc, stripe.StripeError) or (exc.http_status or 0) < 500:
        return False
    if _stripe_error(exc) is None:
        return False
    replayed = str(_header(exc, "Idempotent-Replayed") or "").lower() == "true"
    return replayed or _should_retry(exc) is False


def error_code(exc: stripe.StripeError) -> str | None:
    """The code the gateway's error carries: Stripe's, or :data:`KEY_SPENT` /
    :data:`UNCLEAR_ANSWER` when the answer says nothing more."""
    if isinstance(exc, stripe.IdempotencyError):
        return "idempotency_error"
    if key_spent(exc):
        return KEY_SPENT
    if _stripe_error(exc) is None:
        return UNCLEAR_ANSWER
    return exc.code


def unclear(what: str, body: Any = None, status: int | None = None) -> stripe.APIError:
    """The error for an answer that did not come from Stripe's API (classified RETRY)."""
    message = f"Unclear answer from Stripe: {what}"
    return stripe.APIError(message, http_body=str(body)[:200], http_status=status)


def describe(exc: BaseException) -> str:
    """A short line for logs: the error's class, status and Stripe's message (never the key)."""
    if isinstance(exc, stripe.StripeError):
        status = exc.http_status if exc.http_status is not None else "no response"
        return f"{type(exc).__name__} {status}: {exc.user_message or ''}".strip()
    return repr(exc)


def _is_refusal(exc: stripe.StripeError) -> bool:
    if exc.http_status not in REFUSAL_STATUSES:
        return False
    error = _stripe_error(exc)
    return error is not None and error.get("type") != "api_error"


def _stripe_error(exc: stripe.StripeError) -> Mapping[str, Any] | None:
    """Stripe's error object of the answer, or ``None`` when the body is not Stripe's."""
    body = exc.json_body
    error = body.get("error") if isinstance(body, Mapping) else None
    if isinstance(error, Mapping) and error.get("type") in STRIPE_ERROR_TYPES:
        return error
    return None


def _should_retry(exc: stripe.StripeError) -> bool | None:
    value = str(_header(exc, "Stripe-Should-Retry") or "").strip().lower()
    return {"true": True, "false": False}.get(value)


def _header(exc: stripe.StripeError, name: str) -> str | None:
    headers = exc.headers
    if not isinstance(headers, Mapping):
        return None
    wanted = name.lower()
    for key, value in headers.items():
        if str(key).lower() == wanted:
            return value if isinstance(value, str) else None
    return None
