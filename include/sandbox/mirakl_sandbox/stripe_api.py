"""The Stripe v1 API subset the connector uses, simulated statefully (pure: context in, dict out).

Objects carry the fields the connector reads (and the SDK expects: ``id``, ``object``, ``created``,
``livemode``, ``metadata``). Business rules that matter to the money flow are enforced: transfers
funded by a ``source_transaction`` cannot exceed what the charge can fund, transfers made from a
balance, reversals and payouts need *available* funds on the account they take them from
(balances: :mod:`mirakl_sandbox.balances`), reversals and refunds cannot exceed what
remains, payouts need ``payouts_enabled``. Events of a connected account live on that account:
the platform's Events list never shows them (:func:`list_events`). Idempotency, rate limits
and faults are applied around these handlers by
:mod:`mirakl_sandbox.app`.
"""

from __future__ import annotations

import re
from typing import Any

from mirakl_sandbox import stripe_contract
from mirakl_sandbox.stripe_accounts import (
    create_account,
    create_account_link,
    create_login_link,
    list_accounts,
    retrieve_account,
    retrieve_platform_account,
    update_account,
)
from mirakl_sandbox.stripe_common import Handler, StripeContext, StripeError
from mirakl_sandbox.stripe_events import emit_event, list_events, retrieve_event
from mirakl_sandbox.stripe_payments import (
    cancel_payment_intent,
    capture_charge,
    capture_payment_intent,
    create_charge,
    create_customer,
    create_payment_intent,
    create_product,
    list_charges,
    retrieve_charge,
    retrieve_customer,
    retrieve_payment_intent,
)
from mirakl_sandbox.stripe_payouts import (
    create_payout,
    list_balance_transactions,
    list_payouts,
    retrieve_balance,
    retrieve_payout,
)
from mirakl_sandbox.stripe_refunds import create_refund, list_refunds, retrieve_refund
from mirakl_sandbox.stripe_transfers import (
    create_reversal,
    create_transfer,
    list_reversals,
    list_transfers,
    retrieve_reversal,
    retrieve_transfer,
)

# What the app, the admin API and the tests use from here (the handlers live in one module per
# resource group: stripe_accounts, stripe_payments, stripe_transfers, stripe_payouts,
# stripe_refunds, stripe_events; what they share is stripe_common).
__all__ = [
    "ROUTES",
    "StripeContext",
    "StripeError",
    "check_contract",
    "dispatch",
    "emit_event",
    "route",
]


# -- routing ------------------------------------------------------------------------------------
_ID = r"([A-Za-z0-9_\-]+)"
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    (m, re.compile(f"^{p}$"), h)
    for m, p, h in [
        ("POST", "/v1/accounts", create_account),
        ("GET", "/v1/accounts", list_accounts),
        ("GET", f"/v1/accounts/{_ID}", retrieve_account),
        ("POST", f"/v1/accounts/{_ID}", update_account),
        ("POST", f"/v1/accounts/{_ID}/login_links", create_login_link),
        ("GET", "/v1/account", retrieve_platform_account),
        ("POST", "/v1/account_links", create_account_link),
        ("GET", "/v1/charges", list_charges),
        ("POST", "/v1/charges", create_charge),
        ("POST", "/v1/customers", create_customer),
        ("GET", f"/v1/customers/{_ID}", retrieve_customer),
        ("POST", "/v1/products", create_product),
        ("GET", f"/v1/charges/{_ID}", retrieve_charge),
        ("POST", f"/v1/charges/{_ID}/capture", capture_charge),
        ("POST", "/v1/payment_intents", create_payment_intent),
        ("GET", f"/v1/payment_intents/{_ID}", retrieve_payment_intent),
        ("POST", f"/v1/payment_intents/{_ID}/capture", capture_payment_intent),
        ("POST", f"/v1/payment_intents/{_ID}/cancel", cancel_payment_intent),
        ("POST", "/v1/transfers", create_transfer),
        ("GET", "/v1/transfers", list_transfers),
        ("GET", f"/v1/transfers/{_ID}", retrieve_transfer),
        ("POST", f"/v1/transfers/{_ID}/reversals", create_reversal),
        ("GET", f"/v1/transfers/{_ID}/reversals", list_reversals),
        ("GET", f"/v1/transfers/{_ID}/reversals/{_ID}", retrieve_reversal),
        ("POST", "/v1/payouts", create_payout),
        ("GET", "/v1/payouts", list_payouts),
        ("GET", f"/v1/payouts/{_ID}", retrieve_payout),
        ("POST", "/v1/refunds", create_refund),
        ("GET", "/v1/refunds", list_refunds),
        ("GET", f"/v1/refunds/{_ID}", retrieve_refund),
        ("GET", "/v1/events", list_events),
        ("GET", "/v1/balance", retrieve_balance),
        ("GET", "/v1/balance_transactions", list_balance_transactions),
        ("GET", f"/v1/events/{_ID}", retrieve_event),
    ]
]


def route(method: str, path: str) -> tuple[Handler | None, tuple[str, ...]]:
    """Handler and path arguments for a call (``None`` when the URL is unknown)."""
    for route_method, pattern, handler in ROUTES:
        if route_method == method.upper():
            found = pattern.match(path)
            if found:
                return handler, found.groups()
    return None, ()


def check_contract(method: str, path: str, params: dict[str, Any]) -> tuple[int, dict] | None:
    """Stripe's 400/404 for parameters or a URL outside the SDK's contract, else ``None``.

    The request's entry check (see :mod:`mirakl_sandbox.stripe_contract`): unknown
    parameters, wrong types, values outside an enum, a missing required parameter or an empty
    value that cannot be unset are refused before any handler runs, as Stripe refuses them.
    """
    return stripe_contract.check_request(method, path, params)


def dispatch(ctx: StripeContext) -> tuple[int, dict[str, Any]]:
    """Run the handler under the state lock; errors become Stripe envelopes."""
    handler, args = route(ctx.method, ctx.path)
    if handler is None:
        error = StripeError(404, f"Unrecognized request URL ({ctx.method}: {ctx.path}).")
        return error.status, error.body()
    try:
        with ctx.state.lock:
            body = handler(ctx, *args)
            stripe_contract.check_response(ctx.method, ctx.path, body)
            return 200, body
    except StripeError as exc:
        return exc.status, exc.body()
