"""Which SDK operation a bound method of ``StripeClient.v1`` is, and its request options.

The gateway calls the SDK by bound method (``client.v1.transfers.create``), so the SDK's typed
parameters and go-to-definition reach the call. The operation's dotted name
(``transfers.create``, ``transfers.reversals.list``: the path from ``client.v1`` to the method)
labels ``call_counts``, the per-endpoint throttles (:mod:`mirakl_connector.stripe.limits`) and the
logs; it is read here from the bound method's service, through :data:`SERVICE_PATHS`, the one
table of the services the gateway uses (a test walks ``client.v1`` to check each path).
"""

from __future__ import annotations

from collections.abc import Callable

import stripe

#: Each SDK service the gateway calls, and its path from ``StripeClient.v1``.
SERVICE_PATHS: dict[type[object], str] = {
    stripe.AccountService: "accounts",
    stripe.AccountLoginLinkService: "accounts.login_links",
    stripe.AccountLinkService: "account_links",
    stripe.BalanceService: "balance",
    stripe.BalanceTransactionService: "balance_transactions",
    stripe.ChargeService: "charges",
    stripe.CustomerService: "customers",
    stripe.EventService: "events",
    stripe.PaymentIntentService: "payment_intents",
    stripe.PayoutService: "payouts",
    stripe.ProductService: "products",
    stripe.RefundService: "refunds",
    stripe.TransferService: "transfers",
    stripe.TransferReversalService: "transfers.reversals",
}


def operation_name(method: Callable[..., object]) -> str:
    """The dotted name of a bound SDK method: ``client.v1.transfers.reversals.create`` ->
    ``transfers.reversals.create``.

    :raises LookupError: for a method of a service missing from :data:`SERVICE_PATHS` (add it
        there), or for anything that is not a bound method of a service.
    """
    service = getattr(method, "__self__", None)
    path = SERVICE_PATHS.get(type(service))
    if path is None:
        raise LookupError(f"not a method of a Stripe service the gateway knows: {method!r}")
    return f"{path}.{method.__name__}"


def request_options(key: str | None = None, account: str | None = None) -> stripe.RequestOptions:
    """The SDK's request options: ``Idempotency-Key`` and ``Stripe-Account`` when given."""
    options: stripe.RequestOptions = {}
    if key:
        options["idempotency_key"] = key
    if account:
        options["stripe_account"] = account
    return options
