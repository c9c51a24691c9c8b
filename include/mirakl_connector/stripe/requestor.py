"""The one path of every Stripe call: pacing, counting, retrying and mapping errors.

:class:`StripeRequestor` is the base of :class:`~mirakl_connector.stripe.gateway.StripeGateway`
(which documents its parameters). It owns the SDK's ``StripeClient`` (v16, its own network
retries switched off: ``max_network_retries=0``, so that
:class:`~mirakl_connector.core.retry.RetryPolicy` is the only retry loop) and runs every call,
a bound method of ``client.v1`` with its SDK-typed arguments, through :meth:`StripeRequestor._call`:
the global and per-endpoint throttles, ``call_counts``, the retry policy with the same request
(same idempotency key) on each attempt, and the mapping of errors
(:mod:`mirakl_connector.stripe.errors`). A wrong API key is a
:class:`~mirakl_connector.core.errors.ConfigurationError`: it stops the step instead of failing
every item one by one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ParamSpec

import stripe

from mirakl_connector.core.errors import ConfigurationError, PaymentProviderError
from mirakl_connector.core.retry import RetryPolicy
from mirakl_connector.core.throttle import Throttle
from mirakl_connector.stripe.currency import Operation
from mirakl_connector.stripe.errors import (
    REFUSED,
    classify,
    describe,
    error_code,
    is_transient,
    unclear,
)
from mirakl_connector.stripe.objects import CreatedObject, created, plain
from mirakl_connector.stripe.sdk import operation_name, request_options

log = logging.getLogger("mirakl_connector.stripe.gateway")  # the name the logs always had

P = ParamSpec("P")
#: A bound ``list`` method of an SDK service (``client.v1.transfers.list``).
Lister = Callable[..., stripe.ListObject[Any]]

#: seconds of budget a paced gateway may send at once, to catch up after a slow answer. Kept to
#: half a second: Stripe documents its limits per second but not how large a burst it accepts
#: (a rate and a concurrency limiter exist), and the tasks of a step burst together.
BURST = 0.5


class StripeRequestor:
    """The SDK client and the single path of its calls (see the module docstring)."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        max_requests_per_second: float | None = None,
        max_requests_per_endpoint: float | None = None,
    ) -> None:
        if not api_key:
            raise ConfigurationError("Stripe API key is missing")
        options: dict[str, Any] = {
            "max_network_retries": 0,
            "http_client": stripe.RequestsClient(timeout=timeout),
        }
        if base_url:
            options["base_addresses"] = {"api": base_url.rstrip("/")}
        self._client = stripe.StripeClient(api_key, **options)
        self._v1 = self._client.v1
        self._retry = retry or RetryPolicy()
        self._throttle = _paced(max_requests_per_second)
        self._endpoint_rate = max_requests_per_endpoint
        self._endpoint_throttles: dict[str, Throttle] = {}
        self._endpoint_lock = threading.Lock()
        self.call_counts: dict[str, int] = {}

    def __repr__(self) -> str:  # never show the key
        return f"{type(self).__name__}()"

    def _lister(self, resource: str) -> Lister:
        """The SDK's list method of ``resource`` (the generic operators' and the
        reconciliation's resource names)."""
        v1 = self._v1
        listers: dict[str, Lister] = {
            "accounts": v1.accounts.list,
            "balance_transactions": v1.balance_transactions.list,
            "charges": v1.charges.list,
            "events": v1.events.list,
            "payouts": v1.payouts.list,
            "refunds": v1.refunds.list,
            "transfers": v1.transfers.list,
        }
        lister = listers.get(resource)
        if lister is None:
            raise ValueError(f"the gateway lists no Stripe {resource!r}")
        return lister

    def _find(
        self,
        lister: Lister,
        params: Mapping[str, Any],
        metadata: Mapping[str, str],
        operation: Operation,
        *,
        on_account: str | None = None,
        args: tuple[str, ...] = (),
        accept: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> CreatedObject | None:
        """First object of a list whose metadata contains ``metadata`` (and that ``accept``s);
        ``operation`` says which unit its amount is in (UGX payouts differ)."""
        for obj in self._list(lister, params, on_account=on_account, args=args):
            found = obj.get("metadata") or {}
            if all(found.get(k) == v for k, v in metadata.items()) and (
                accept is None or accept(obj)
            ):
                return created(obj, operation)
        return None

    def _list(
        self,
        lister: Lister,
        params: Mapping[str, Any],
        *,
        on_account: str | None = None,
        args: tuple[str, ...] = (),
    ) -> Iterator[Mapping[str, Any]]:
        """Walk a Stripe list (newest first) page by page with ``starting_after``."""
        page_params = dict(params)
        while True:
            options = request_options(account=on_account)
            page = self._call(lister, *args, params=page_params, options=options)
            data = page.get("data") or []
            yield from data
            if not page.get("has_more") or not data:
                return
            page_params["starting_after"] = data[-1]["id"]

    def _endpoint_throttle(self, operation: str) -> Throttle | None:
        if not self._endpoint_rate:
            return None
        with self._endpoint_lock:
            throttle = self._endpoint_throttles.get(operation)
            if throttle is None:
                throttle = self._endpoint_throttles[operation] = _pacer(self._endpoint_rate)
            return throttle

    def _call(
        self, method: Callable[P, object], /, *args: P.args, **kwargs: P.kwargs
    ) -> dict[str, Any]:
        """Run one SDK call (a bound method of ``client.v1``, with its arguments as the SDK
        types them) under the throttles and the retry policy, count it, and map its errors.

        Every call to Stripe goes through here; the operation's name (``transfers.create``)
        is read from the bound method (:func:`~mirakl_connector.stripe.sdk.operation_name`).
        """
        operation = operation_name(method)
        endpoint = self._endpoint_throttle(operation)

        def once() -> object:
            if self._throttle is not None:
                self._throttle.acquire()
            if endpoint is not None:
                endpoint.acquire()
            self.call_counts[operation] = self.call_counts.get(operation, 0) + 1
            try:
                result = method(*args, **kwargs)
            except stripe.StripeError:
                raise
            except (AttributeError, KeyError, TypeError, ValueError) as exc:
                # The SDK could not read the answer (e.g. {"error": "..."} from a proxy): whatever
                # sent it, it is not Stripe's answer, and the request may have been done.
                raise unclear(f"unreadable answer ({exc!r})") from exc
            if not isinstance(result, stripe.StripeObject) or "object" not in result:
                # Every Stripe API answer is an object with an ``object`` field (lists too).
                raise unclear("a 2xx answer that is not a Stripe object", result, status=200)
            return result

        def log_retry(exc: BaseException, attempt: int, wait: float) -> None:
            log.warning(
                "Stripe %s attempt %d failed (%s); retrying in %.1fs",
                operation, attempt, describe(exc), wait,
            )  # fmt: skip

        try:
            result = self._retry.call(once, is_retryable=is_transient, on_retry=log_retry)
        except stripe.AuthenticationError as exc:
            detail = exc.user_message or "authentication failed"
            message = f"Stripe rejected the API key ({operation}): {detail}"
            raise ConfigurationError(message) from None
        except stripe.StripeError as exc:
            refused = classify(exc) == REFUSED
            raise PaymentProviderError(
                exc.user_message or describe(exc),
                code=error_code(exc),
                http_status=exc.http_status,
                permanent=refused,
            ) from exc
        answer: dict[str, Any] = plain(result)
        return answer


def _paced(rate: float | None) -> Throttle | None:
    return _pacer(rate) if rate else None


def _pacer(rate: float) -> Throttle:
    return Throttle(rate, burst=max(1.0, rate * BURST))
