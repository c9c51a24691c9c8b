"""Stripe, as the workflows need it: typed results, idempotent writes, one retry policy.

Built on the official SDK's ``StripeClient`` (v16). The SDK's own network retries are switched off
(``max_network_retries=0``) so that :class:`~mirakl_connector.core.retry.RetryPolicy` is the only
retry
loop; every write carries an idempotency key derived from Mirakl ids and reused on every retry, so a
retried or replayed call can never move money twice. Stripe keeps a key's result for at least 24 h;
after that, :meth:`StripeGateway.find_transfer` looks for the object by its metadata before anything
is re-created.

Errors are mapped once (:func:`classify`), to
:class:`~mirakl_connector.core.errors.PaymentProviderError`
with ``permanent=True`` only when *Stripe itself* refused the request: a status Stripe documents as
a refusal (400, 402, 403, 404) carrying Stripe's JSON error object with one of its documented
error types. Anything else is an unknown outcome (``permanent=False``): network errors, 5xx, 409,
429 after the retry budget, and every answer that did not come from Stripe's API, such as a 408,
an HTML error page, a 200 whose body is not JSON or is cut short, or JSON that is not a Stripe
object. Such answers come from something between us and Stripe (a proxy, a load balancer) and
say nothing about whether Stripe did the work, so they are resolved by replaying the same key or
looking the object up, never by a new key. Stripe's ``Stripe-Should-Retry`` header is followed
when present; a 5xx that Stripe saved for the key (``Stripe-Should-Retry: false`` or
``Idempotent-Replayed: true``) is not retried, since a replay answers the same, and is reported
with the code :data:`KEY_SPENT` so the caller looks the object up. A wrong API key is a
:class:`~mirakl_connector.core.errors.ConfigurationError`: it stops the step instead of failing
every
item one by one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import stripe

from mirakl_connector.core.errors import ConfigurationError, InvalidItemError, PaymentProviderError
from mirakl_connector.core.retry import RetryPolicy
from mirakl_connector.core.throttle import Throttle
from mirakl_connector.stripe.currency import Operation, from_api, to_api

log = logging.getLogger(__name__)

PLUGIN_NAME = "MiraklPaymentsForAirflow"

#: Stripe keeps an idempotency key's result at least 24 h; every workflow replays a request whose
#: outcome is unknown with the same key only inside this window, and looks the object up after it.
REPLAY_WINDOW = timedelta(hours=23)
PLUGIN_VERSION = "0.1.0"
#: seconds of budget a paced gateway may send at once, to catch up after a slow answer. Kept to
#: half a second: Stripe documents its limits per second but not how large a burst it accepts
#: (a rate and a concurrency limiter exist), and the tasks of a step burst together.
BURST = 0.5

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


#: An Express account in ``controller`` properties (``type=express`` is deprecated).
EXPRESS_CONTROLLER: dict[str, Any] = {
    "stripe_dashboard": {"type": "express"},
    "fees": {"payer": "application"},
    "losses": {"payments": "application"},
    "requirement_collection": "stripe",
}


@dataclass(frozen=True)
class PaymentState:
    """What the split needs to know about a payment (charge ``ch_``/``py_`` or intent ``pi_``)."""

    id: str
    kind: str  # "charge" | "payment_intent"
    status: str
    captured: bool = False
    refunded: bool = False
    amount: int | None = None
    currency: str | None = None
    amount_captured: int | None = None  # charge: amount_captured; intent: amount_received
    charge: PaymentState | None = None  # for an intent: its latest charge, when there is one
    payment_intent: str | None = None  # for a charge: the intent it belongs to
    metadata: Mapping[str, str] | None = None


@dataclass(frozen=True)
class CreatedObject:
    """A Stripe object we created (transfer, reversal, payout, refund)."""

    id: str
    amount: int
    currency: str
    replayed: bool = False  # Stripe answered from its idempotency store
    metadata: Mapping[str, str] | None = None


def idempotency_key(*parts: object) -> str:
    """Build a deterministic idempotency key from Mirakl ids (≤ 255 chars, as Stripe allows)."""
    key = "mirakl-connector:" + ":".join(str(p) for p in parts)
    if len(key) > 255:
        raise ValueError(f"idempotency key too long ({len(key)} chars): {key[:60]}...")
    return key


class StripeGateway:
    """The connector's view of Stripe.

    :param api_key: secret (``sk_``) or restricted (``rk_``) key; never logged.
    :param base_url: API base address override (the sandbox), e.g. ``http://127.0.0.1:8765``.
    :param retry: the retry policy for transient failures.
    :param max_requests_per_second: pace every call (retries included) to this budget; ``None``
        sends as fast as Stripe answers. See :mod:`mirakl_connector.core.throttle` for why.
    :param max_requests_per_endpoint: pace the calls of each endpoint (named API operation,
        e.g. ``transfers.create``) to this budget as well: Stripe limits each endpoint below the
        account's global limit (see :mod:`mirakl_connector.stripe.limits`); ``None``: no limit.
    """

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
        self._retry = retry or RetryPolicy()
        self._throttle = _paced(max_requests_per_second)
        self._endpoint_rate = max_requests_per_endpoint
        self._endpoint_throttles: dict[str, Throttle] = {}
        self._endpoint_lock = threading.Lock()
        self.call_counts: dict[str, int] = {}
        self._platform_account: str | None = None

    def __repr__(self) -> str:  # never show the key
        return f"{type(self).__name__}()"

    # -- reads ------------------------------------------------------------------------------

    def retrieve_payment(
        self, payment_id: str, *, seller_account: str | None = None
    ) -> PaymentState:
        """Retrieve a charge (``ch_``/``py_``) or payment intent (``pi_``) with its charge.

        A ``py_`` payment is usually the seller-side payment a destination charge or transfer
        creates on the connected account (``Transfer.destination_payment``): it lives on that
        account and the platform gets ``resource_missing`` for it without ``Stripe-Account``
        (docs.stripe.com/connect/authentication). With ``seller_account`` known it is read there
        first; a ``py_`` that is not there (a platform's own non-card payment also has that
        prefix) is then read on the platform.
        """
        if payment_id.startswith("py_") and seller_account:
            try:
                charge = self._call("charges.retrieve", payment_id, on_account=seller_account)
                return self._charge_state(charge)
            except PaymentProviderError as exc:
                if exc.code != "resource_missing":
                    raise
        if payment_id.startswith("pi_"):
            intent = self._call("payment_intents.retrieve", payment_id)
            charge = None
            latest = intent.get("latest_charge")
            if isinstance(latest, str) and latest:
                charge = self._charge_state(self._call("charges.retrieve", latest))
            elif isinstance(latest, Mapping):
                charge = self._charge_state(latest)
            return PaymentState(
                id=intent["id"],
                kind="payment_intent",
                status=intent.get("status") or "unknown",
                amount=from_api(intent.get("amount"), intent.get("currency")),
                currency=intent.get("currency"),
                amount_captured=from_api(intent.get("amount_received"), intent.get("currency")),
                charge=charge,
                metadata=dict(intent.get("metadata") or {}),
            )
        if payment_id.startswith(("ch_", "py_")):
            return self._charge_state(self._call("charges.retrieve", payment_id))
        raise PaymentProviderError(f"Unexpected payment type: {payment_id}", permanent=True)

    def list_charges(
        self, *, created_since: datetime, created_until: datetime, max_pages: int
    ) -> tuple[list[PaymentState], bool]:
        """Charges created in ``[created_since, created_until]``, at most ``max_pages`` pages.

        One list page (100 charges) costs what one retrieve costs against the rate limit, so
        checking a chunk of orders' payments this way takes a page or two instead of a call per
        order. Returns the charges and whether the window was read to its end (``False`` when
        ``max_pages`` stopped it: the caller retrieves what it did not find, one by one).
        """
        params: dict[str, Any] = {
            "created": {
                "gte": int(created_since.timestamp()),
                "lte": int(created_until.timestamp()) + 1,
            },
            "limit": 100,
        }
        found: list[PaymentState] = []
        for page in range(max_pages):
            data = self._call("charges.list", params=params)
            items = data.get("data") or []
            found.extend(self._charge_state(c) for c in items)
            if not data.get("has_more") or not items:
                return found, True
            if page + 1 < max_pages:
                params["starting_after"] = items[-1]["id"]
        return found, False

    def platform_account_id(self) -> str:
        """The platform's own ``acct_`` id (destination of seller → platform transfers)."""
        if self._platform_account is None:
            self._platform_account = self._call("accounts.retrieve_current")["id"]
        return self._platform_account

    def find_transfer(
        self,
        *,
        mirakl_id: str,
        transfer_type: str,
        destination: str | None,
        created_since: datetime,
        on_account: str | None = None,
    ) -> CreatedObject | None:
        """Look for a transfer we may have created, by its metadata (after a crash > 24 h ago).

        Lists transfers created since ``created_since`` (to the destination when known) and
        matches ``metadata.miraklId`` and ``metadata.miraklTransferType``.
        """
        params: dict[str, Any] = {"created": {"gte": int(created_since.timestamp())}, "limit": 100}
        if destination:
            params["destination"] = destination
        return self._find(
            "transfers",
            params,
            {"miraklId": mirakl_id, "miraklTransferType": transfer_type},
            on_account=on_account,
        )

    def find_reversal(self, transfer_id: str, *, mirakl_id: str) -> CreatedObject | None:
        """Look for a reversal of ``transfer_id`` we may have created (``metadata.miraklId``)."""
        return self._find(
            "transfers.reversals", {"limit": 100}, {"miraklId": mirakl_id}, args=(transfer_id,)
        )

    def find_payout(
        self, *, account: str, invoice_id: str, created_since: datetime
    ) -> CreatedObject | None:
        """Look for a live payout on ``account`` for a Mirakl invoice (``metadata.invoiceId``).

        A payout that failed at the bank or was cancelled is skipped: the settlement re-creates
        such a payout with a new key, and finding the dead one would mark the invoice paid.
        """
        params = {"created": {"gte": int(created_since.timestamp())}, "limit": 100}
        return self._find(
            "payouts",
            params,
            {"invoiceId": invoice_id},
            on_account=account,
            accept=lambda payout: payout.get("status") not in ("failed", "canceled"),
        )

    def find_refund(self, *, payment_id: str, mirakl_refund_id: str) -> CreatedObject | None:
        """Look for a refund of ``payment_id`` for a Mirakl refund (``metadata.miraklRefundId``)."""
        key = "payment_intent" if payment_id.startswith("pi_") else "charge"
        return self._find(
            "refunds", {key: payment_id, "limit": 100}, {"miraklRefundId": mirakl_refund_id}
        )

    def retrieve_transfer(
        self, transfer_id: str, *, on_account: str | None = None
    ) -> dict[str, Any]:
        """A transfer as Stripe has it; ``on_account`` for one made on a connected account
        (seller → platform)."""
        return self._call("transfers.retrieve", transfer_id, on_account=on_account)

    def retrieve_reversal(self, transfer_id: str, reversal_id: str) -> dict[str, Any]:
        """A reversal of ``transfer_id`` as Stripe has it."""
        return self._call("transfers.reversals.retrieve", transfer_id, reversal_id)

    def retrieve_refund(self, refund_id: str) -> dict[str, Any]:
        """A refund as Stripe has it."""
        return self._call("refunds.retrieve", refund_id)

    def retrieve_account(self, account_id: str) -> dict[str, Any]:
        """A connected account as a plain dict (KYC fields: ``requirements``, ``*_enabled``)."""
        return self._call("accounts.retrieve", account_id)

    def iter_accounts(self) -> Iterator[Mapping[str, Any]]:
        """Every connected account, page by page (100 a page)."""
        return self._list("accounts", {"limit": 100})

    def iter_events(
        self, *, types: list[str], created_since: datetime
    ) -> Iterator[Mapping[str, Any]]:
        """Events of ``types`` since ``created_since`` (Stripe keeps 30 days), newest first."""
        params = {"types": types, "created": {"gte": int(created_since.timestamp())}, "limit": 100}
        return self._list("events", params)

    def iter_payouts(
        self, *, account: str, created_since: datetime, status: str | None = None
    ) -> Iterator[Mapping[str, Any]]:
        """The payouts of connected account ``account`` created since ``created_since`` (newest
        first; ``status`` filters, docs.stripe.com/api/payouts/list)."""
        params: dict[str, Any] = {"created": {"gte": int(created_since.timestamp())}, "limit": 100}
        if status:
            params["status"] = status
        return self._list("payouts", params, on_account=account)

    def retrieve_balance(self, account: str | None = None) -> dict[str, Any]:
        """The balance (``available`` and ``pending`` per currency) of ``account``, or of the
        platform (docs.stripe.com/api/balance/balance_retrieve)."""
        return self._call("balance.retrieve", on_account=account)

    def iter_balance_transactions(
        self, *, account: str | None, currency: str, created_since: datetime
    ) -> Iterator[Mapping[str, Any]]:
        """The balance transactions of ``account`` in ``currency`` since ``created_since``,
        newest first (``available_on`` says when pending funds become available)."""
        params = {
            "currency": currency.lower(),
            "created": {"gte": int(created_since.timestamp())},
            "limit": 100,
        }
        return self._list("balance_transactions", params, on_account=account)

    # -- writes (all idempotent) ---------------------------------------------------------

    def create_transfer(
        self,
        *,
        amount: int,
        currency: str,
        destination: str,
        idempotency_key: str,
        metadata: Mapping[str, str],
        source_transaction: str | None = None,
        on_account: str | None = None,
    ) -> CreatedObject:
        """Create a transfer to ``destination``; ``on_account`` creates it on a connected account
        (seller → platform transfers). ``amount`` is in ISO minor units, already rounded to what
        Stripe takes (:func:`~mirakl_connector.stripe.currency.for_stripe`)."""
        params: dict[str, Any] = {
            "amount": to_api(amount, currency, Operation.TRANSFER),
            "currency": currency.lower(),
            "destination": destination,
            "metadata": _metadata(metadata),
        }
        if source_transaction:
            params["source_transaction"] = source_transaction
        obj = self._call(
            "transfers.create", params=params, key=idempotency_key, on_account=on_account
        )
        return _created(obj, Operation.TRANSFER)

    def create_reversal(
        self,
        transfer_id: str,
        *,
        amount: int,
        currency: str,
        idempotency_key: str,
        metadata: Mapping[str, str],
    ) -> CreatedObject:
        """Reverse ``amount`` (ISO minor units of the transfer's ``currency``) of a transfer."""
        params = {
            "amount": to_api(amount, currency, Operation.REVERSAL),
            "metadata": _metadata(metadata),
        }
        obj = self._call(
            "transfers.reversals.create", transfer_id, params=params, key=idempotency_key
        )
        return _created(obj, Operation.REVERSAL)

    def create_payout(
        self,
        *,
        account: str,
        amount: int,
        currency: str,
        idempotency_key: str,
        metadata: Mapping[str, str],
    ) -> CreatedObject:
        """Pay out from a connected account's balance to its bank account (``amount`` in ISO
        minor units, already rounded to what Stripe pays out: HUF/TWD whole units)."""
        params = {
            "amount": to_api(amount, currency, Operation.PAYOUT),
            "currency": currency.lower(),
            "metadata": _metadata(metadata),
        }
        obj = self._call("payouts.create", params=params, key=idempotency_key, on_account=account)
        return _created(obj, Operation.PAYOUT)

    def retrieve_payout(self, *, account: str, payout_id: str) -> Mapping[str, Any]:
        """A payout of a connected account as it is now (``status``, ``failure_code``, ...)."""
        return self._call("payouts.retrieve", payout_id, on_account=account)

    def create_refund(
        self,
        *,
        payment_id: str,
        amount: int | None,
        currency: str | None,
        idempotency_key: str,
        metadata: Mapping[str, str],
    ) -> CreatedObject:
        """Refund ``amount`` (ISO minor units of ``currency``; ``None`` = what remains) of a
        charge or payment intent."""
        key = "payment_intent" if payment_id.startswith("pi_") else "charge"
        params: dict[str, Any] = {key: payment_id, "metadata": _metadata(metadata)}
        if amount is not None:
            if not currency:
                raise InvalidItemError("a partial refund needs its currency")
            params["amount"] = to_api(amount, currency, Operation.REFUND)
        obj = self._call("refunds.create", params=params, key=idempotency_key)
        return _created(obj, Operation.REFUND)

    def capture_payment(
        self, payment_id: str, *, amount: int, currency: str, idempotency_key: str
    ) -> str:
        """Capture ``amount`` (ISO minor units of ``currency``) of an authorised payment; return
        the captured object's id.

        A charge that belongs to a payment intent is captured through the intent (capturing the
        charge itself is refused by Stripe for intents).
        """
        amount = to_api(amount, currency, Operation.CHARGE)
        target = self._capture_target(payment_id)
        if target.startswith("pi_"):
            params = {"amount_to_capture": amount}
            obj = self._call("payment_intents.capture", target, params=params, key=idempotency_key)
        else:
            obj = self._call(
                "charges.capture", target, params={"amount": amount}, key=idempotency_key
            )
        return obj["id"]

    def cancel_payment(self, payment_id: str, *, idempotency_key: str) -> str:
        """Release an authorisation: cancel the intent, or refund a charge that has none."""
        target = self._capture_target(payment_id)
        if target.startswith("pi_"):
            return self._call("payment_intents.cancel", target, key=idempotency_key)["id"]
        refund = self._call("refunds.create", params={"charge": target}, key=idempotency_key)
        return refund["id"]

    def create_express_account(
        self,
        *,
        shop_id: int,
        idempotency_key: str,
        prefill: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create the seller account of a Mirakl shop (manual payouts, no negative debits).

        ``type=express`` is deprecated in the pinned API version (SDK
        ``AccountCreateParams.type``: "Use controller instead"); the same account is described
        with ``controller`` properties (docs.stripe.com/connect/migrate-to-controller-properties:
        Express = Express dashboard, the platform pays fees and bears losses, Stripe collects
        requirements). The seller only receives the marketplace's transfers and pays them out,
        so only the ``transfers`` capability is requested (the platform makes the charges).
        """
        params: dict[str, Any] = {
            "controller": EXPRESS_CONTROLLER,
            "capabilities": {"transfers": {"requested": True}},
            "settings": {
                "payouts": {"debit_negative_balances": False, "schedule": {"interval": "manual"}}
            },
            "metadata": _metadata({"miraklShopId": str(shop_id)}),
            **dict(prefill or {}),
        }
        return self._call("accounts.create", params=params, key=idempotency_key)

    def create_account_link(self, account_id: str, *, refresh_url: str, return_url: str) -> str:
        """A single-use onboarding URL for ``account_id``."""
        params = {
            "account": account_id,
            "refresh_url": refresh_url,
            "return_url": return_url,
            "type": "account_onboarding",
        }
        return self._call("account_links.create", params=params)["url"]

    def create_login_link(self, account_id: str) -> str:
        """A login URL to the seller's Express dashboard."""
        return self._call("accounts.login_links.create", account_id)["url"]

    # -- generic objects (the generic Stripe operators and sensors) ------------------------

    def list_created_since(
        self, resource: str, *, created_gte: int, types: list[str] | None = None
    ) -> Iterator[Mapping[str, Any]]:
        """Objects of ``resource`` (``charges``, ``refunds``, ``events``) created at or after
        ``created_gte`` (Unix seconds), newest first, every page (``starting_after``).

        ``types`` filters events only: the charges and refunds lists have no such parameter and
        Stripe refuses it (``parameter_unknown``), so asking for it elsewhere is a bug here.
        """
        params: dict[str, Any] = {"created": {"gte": int(created_gte)}, "limit": 100}
        if types and resource != "events":
            raise ValueError(f"types filters events only, not {resource}")
        if types:
            params["types"] = list(types)
        return self._list(resource, params)

    def iter_created_between(
        self,
        resource: str,
        *,
        since: datetime,
        until: datetime | None,
        on_account: str | None = None,
        filters: Mapping[str, str] | None = None,
    ) -> Iterator[Mapping[str, Any]]:
        """Every ``resource`` object (``transfers``, ``refunds``, ``payouts``,
        ``balance_transactions``) created in ``[since, until]``, 100 a page, newest first.

        ``created[gte]`` / ``created[lte]`` (Unix seconds) and the resource's own ``filters``
        (e.g. ``type`` of balance transactions) are the list parameters of the SDK's
        ``TransferListParams``, ``RefundListParams``, ``PayoutListParams``,
        ``BalanceTransactionListParams``; ``on_account`` lists a connected account's objects
        (``Stripe-Account``); ``until`` ``None``: no upper bound. The reconciliation reads a
        whole window this way, never one object at a time.
        """
        created = {"gte": int(since.timestamp())}
        if until is not None:
            created["lte"] = int(until.timestamp()) + 1
        params: dict[str, Any] = {"created": created, "limit": 100, **dict(filters or {})}
        return self._list(resource, params, on_account=on_account)

    def create_charge(self, params: Mapping[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        """Create a charge from already validated ``params``: only for a one-time token source,
        which PaymentIntents cannot take (see the generic operator)."""
        return self._call("charges.create", params=dict(params), key=idempotency_key)

    def create_payment(self, params: Mapping[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        """Create and confirm a PaymentIntent from validated ``params``; return its charge (what
        the Charges API returned), or the intent itself when no charge was made (e.g. it
        requires an action from the customer)."""
        intent = self._call("payment_intents.create", params=dict(params), key=idempotency_key)
        latest = intent.get("latest_charge")
        if isinstance(latest, Mapping):
            return dict(latest)
        if isinstance(latest, str) and latest:
            return self._call("charges.retrieve", latest)
        return intent

    def create_customer(self, params: Mapping[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        """Create a customer from already validated ``params``."""
        return self._call("customers.create", params=dict(params), key=idempotency_key)

    def retrieve_customer(self, customer_id: str) -> dict[str, Any]:
        """A customer by id (``cus_...``)."""
        return self._call("customers.retrieve", customer_id)

    def create_product(self, params: Mapping[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        """Create a product from already validated ``params``."""
        return self._call("products.create", params=dict(params), key=idempotency_key)

    # -- plumbing --------------------------------------------------------------------------

    def _charge_state(self, charge: Mapping[str, Any]) -> PaymentState:
        intent = charge.get("payment_intent")
        if isinstance(intent, Mapping):
            intent = intent.get("id")
        return PaymentState(
            id=charge["id"],
            kind="charge",
            status=charge.get("status") or "unknown",
            captured=bool(charge.get("captured")),
            refunded=bool(charge.get("refunded")),
            amount=from_api(charge.get("amount"), charge.get("currency")),
            currency=charge.get("currency"),
            amount_captured=from_api(charge.get("amount_captured"), charge.get("currency")),
            payment_intent=intent,
            metadata=dict(charge.get("metadata") or {}),
        )

    def _capture_target(self, payment_id: str) -> str:
        if payment_id.startswith("pi_"):
            return payment_id
        if payment_id.startswith(("ch_", "py_")):
            charge = self.retrieve_payment(payment_id)
            return charge.payment_intent or charge.id
        raise PaymentProviderError(f"Unexpected payment type: {payment_id}", permanent=True)

    def _find(
        self,
        resource: str,
        params: dict[str, Any],
        metadata: Mapping[str, str],
        *,
        on_account: str | None = None,
        args: tuple[Any, ...] = (),
        accept: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> CreatedObject | None:
        """First object of a list whose metadata contains ``metadata`` (and that ``accept``s)."""
        for obj in self._list(resource, params, on_account=on_account, args=args):
            found = obj.get("metadata") or {}
            if all(found.get(k) == v for k, v in metadata.items()) and (
                accept is None or accept(obj)
            ):
                return _created(obj, _OPERATION_OF.get(resource, Operation.CHARGE))
        return None

    def _list(
        self,
        resource: str,
        params: dict[str, Any],
        *,
        on_account: str | None = None,
        args: tuple[Any, ...] = (),
    ) -> Iterator[Mapping[str, Any]]:
        """Walk a Stripe list (newest first) page by page with ``starting_after``."""
        params = dict(params)
        while True:
            page = self._call(f"{resource}.list", *args, params=params, on_account=on_account)
            data = page.get("data") or []
            yield from data
            if not page.get("has_more") or not data:
                return
            params["starting_after"] = data[-1]["id"]

    def _endpoint_throttle(self, operation: str) -> Throttle | None:
        if not self._endpoint_rate:
            return None
        with self._endpoint_lock:
            throttle = self._endpoint_throttles.get(operation)
            if throttle is None:
                throttle = self._endpoint_throttles[operation] = _paced(self._endpoint_rate)
            return throttle

    def _call(
        self,
        operation: str,
        *args: Any,
        params: dict[str, Any] | None = None,
        key: str | None = None,
        on_account: str | None = None,
    ) -> Any:
        """Run one SDK call under the retry policy and map its errors."""
        *path, method = operation.split(".")
        service: Any = self._client.v1
        for name in path:
            service = getattr(service, name)
        options: dict[str, Any] = {}
        if key:
            options["idempotency_key"] = key
        if on_account:
            options["stripe_account"] = on_account
        kwargs: dict[str, Any] = {"options": options}
        if params is not None:
            kwargs["params"] = params

        endpoint = self._endpoint_throttle(operation)

        def once() -> Any:
            if self._throttle is not None:
                self._throttle.acquire()
            if endpoint is not None:
                endpoint.acquire()
            self.call_counts[operation] = self.call_counts.get(operation, 0) + 1
            try:
                result = getattr(service, method)(*args, **kwargs)
            except stripe.StripeError:
                raise
            except (AttributeError, KeyError, TypeError, ValueError) as exc:
                # The SDK could not read the answer (e.g. {"error": "..."} from a proxy): whatever
                # sent it, it is not Stripe's answer, and the request may have been done.
                raise _unclear(f"unreadable answer ({exc!r})") from exc
            if not isinstance(result, stripe.StripeObject) or "object" not in result:
                # Every Stripe API answer is an object with an ``object`` field (lists too).
                raise _unclear("a 2xx answer that is not a Stripe object", result, status=200)
            return result

        def log_retry(exc: BaseException, attempt: int, wait: float) -> None:
            log.warning(
                "Stripe %s attempt %d failed (%s); retrying in %.1fs",
                operation, attempt, _describe(exc), wait,
            )  # fmt: skip

        try:
            result = self._retry.call(once, is_retryable=_is_transient, on_retry=log_retry)
        except stripe.AuthenticationError as exc:
            detail = exc.user_message or "authentication failed"
            message = f"Stripe rejected the API key ({operation}): {detail}"
            raise ConfigurationError(message) from None
        except stripe.StripeError as exc:
            refused = classify(exc) == REFUSED
            raise PaymentProviderError(
                exc.user_message or _describe(exc),
                code=_error_code(exc),
                http_status=exc.http_status,
                permanent=refused,
            ) from exc
        return _plain(result)


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


def _paced(rate: float | None) -> Throttle | None:
    return Throttle(rate, burst=max(1.0, rate * BURST)) if rate else None


def _is_transient(exc: BaseException) -> bool:
    """Whether the retry policy sends the request again (with the same key)."""
    return classify(exc) == RETRY


def _is_refusal(exc: stripe.StripeError) -> bool:
    if exc.http_status not in REFUSAL_STATUSES:
        return False
    error = _stripe_error(exc)
    return error is not None and error.get("type") != "api_error"


def key_spent(exc: BaseException) -> bool:
    """Stripe saved a server error for this idempotency key: a replay gets the same answer."""
    if not isinstance(exc, stripe.StripeError) or (exc.http_status or 0) < 500:
        return False
    if _stripe_error(exc) is None:
        return False
    replayed = str(_header(exc, "Idempotent-Replayed") or "").lower() == "true"
    return replayed or _should_retry(exc) is False


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
            return value
    return None


def _unclear(what: str, body: Any = None, status: int | None = None) -> stripe.APIError:
    message = f"Unclear answer from Stripe: {what}"
    return stripe.APIError(message, http_body=str(body)[:200], http_status=status)


def _error_code(exc: stripe.StripeError) -> str | None:
    if isinstance(exc, stripe.IdempotencyError):
        return "idempotency_error"
    if key_spent(exc):
        return KEY_SPENT
    if _stripe_error(exc) is None:
        return UNCLEAR_ANSWER
    return exc.code


def _describe(exc: BaseException) -> str:
    if isinstance(exc, stripe.StripeError):
        status = exc.http_status if exc.http_status is not None else "no response"
        return f"{type(exc).__name__} {status}: {exc.user_message or ''}".strip()
    return repr(exc)


def _metadata(extra: Mapping[str, str]) -> dict[str, str]:
    return {"pluginName": PLUGIN_NAME, "pluginVersion": PLUGIN_VERSION, **dict(extra)}


_REPLAYED = "_idempotent_replayed"


def _plain(result: Any) -> Any:
    """SDK objects as plain dicts, with Stripe's ``Idempotent-Replayed`` answer kept."""
    if not isinstance(result, stripe.StripeObject):
        return result
    data = result.to_dict()
    headers = getattr(result.last_response, "headers", None) or {}
    data[_REPLAYED] = str(headers.get("Idempotent-Replayed", "")).lower() == "true"
    return data


#: The operation whose unit a listed object's amount is in (UGX payouts differ).
_OPERATION_OF = {
    "transfers": Operation.TRANSFER,
    "transfers.reversals": Operation.REVERSAL,
    "payouts": Operation.PAYOUT,
    "refunds": Operation.REFUND,
}


def _created(obj: Mapping[str, Any], operation: Operation = Operation.CHARGE) -> CreatedObject:
    """The object as created; its amount back in ISO minor units (the ledger's unit)."""
    return CreatedObject(
        id=obj["id"],
        amount=from_api(obj.get("amount"), obj.get("currency"), operation),
        currency=(obj.get("currency") or "").upper(),
        replayed=bool(obj.get(_REPLAYED)),
        metadata=dict(obj.get("metadata") or {}),
    )
