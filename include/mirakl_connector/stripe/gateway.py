"""Stripe, as the workflows need it: typed results, idempotent writes, one retry policy.

Built on the official SDK's ``StripeClient`` (v16), called by bound method
(``client.v1.transfers.create``) with the parameters typed as the SDK's ``stripe.params``
TypedDicts, always through :meth:`StripeGateway._call`: one path for pacing, counting, retrying
and mapping errors. The SDK's own network retries are switched off (``max_network_retries=0``)
so that :class:`~mirakl_connector.core.retry.RetryPolicy` is the only retry loop; every write
carries an idempotency key derived from Mirakl ids (:mod:`mirakl_connector.stripe.idempotency`)
and reused on every retry, so a retried or replayed call can never move money twice. Stripe keeps
a key's result for at least 24 h; after that, :meth:`StripeGateway.find_transfer` looks for the
object by its metadata before anything is re-created.

Errors are mapped once (:func:`~mirakl_connector.stripe.errors.classify`, where the reasons are):
to :class:`~mirakl_connector.core.errors.PaymentProviderError` with ``permanent=True`` only when
*Stripe itself* refused the request; everything else is an unknown outcome, resolved by replaying
the same key or looking the object up, never by a new key. A wrong API key is a
:class:`~mirakl_connector.core.errors.ConfigurationError`: it stops the step instead of failing
every item one by one.

The names other modules import from here (:class:`CreatedObject`, :class:`PaymentState`,
:func:`idempotency_key`, :data:`KEY_SPENT`, :data:`REPLAY_WINDOW`, :func:`classify`...) live in
:mod:`.objects`, :mod:`.idempotency` and :mod:`.errors` and are re-exported.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, cast

from stripe.params import (
    AccountCreateParams,
    AccountCreateParamsController,
    AccountLinkCreateParams,
    AccountListParams,
    BalanceTransactionListParams,
    ChargeCaptureParams,
    ChargeListParams,
    EventListParams,
    PaymentIntentCaptureParams,
    PayoutCreateParams,
    PayoutListParams,
    RefundCreateParams,
    RefundListParams,
    TransferCreateParams,
    TransferListParams,
    TransferReversalCreateParams,
    TransferReversalListParams,
)

from mirakl_connector.core.errors import InvalidItemError, PaymentProviderError
from mirakl_connector.stripe.currency import Operation, from_api, to_api
from mirakl_connector.stripe.errors import (
    KEY_SPENT,
    REFUSAL_STATUSES,
    REFUSED,
    RETRY,
    STRIPE_ERROR_TYPES,
    UNCLEAR_ANSWER,
    UNKNOWN,
    classify,
    key_spent,
)
from mirakl_connector.stripe.generic_objects import GenericObjects
from mirakl_connector.stripe.idempotency import REPLAY_WINDOW, idempotency_key
from mirakl_connector.stripe.objects import (
    PLUGIN_NAME,
    PLUGIN_VERSION,
    CreatedObject,
    PaymentState,
    charge_state,
    created,
    tagged,
)
from mirakl_connector.stripe.requestor import BURST
from mirakl_connector.stripe.sdk import request_options

__all__ = [
    "BURST",
    "EXPRESS_CONTROLLER",
    "KEY_SPENT",
    "PLUGIN_NAME",
    "PLUGIN_VERSION",
    "REFUSAL_STATUSES",
    "REFUSED",
    "REPLAY_WINDOW",
    "RETRY",
    "STRIPE_ERROR_TYPES",
    "UNCLEAR_ANSWER",
    "UNKNOWN",
    "CreatedObject",
    "PaymentState",
    "StripeGateway",
    "classify",
    "idempotency_key",
    "key_spent",
]

#: An Express account in ``controller`` properties (``type=express`` is deprecated).
EXPRESS_CONTROLLER: AccountCreateParamsController = {
    "stripe_dashboard": {"type": "express"},
    "fees": {"payer": "application"},
    "losses": {"payments": "application"},
    "requirement_collection": "stripe",
}


class StripeGateway(GenericObjects):
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

    #: The platform's own account id, read once (:meth:`platform_account_id`).
    _platform_account: str | None = None

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
                options = request_options(account=seller_account)
                found = self._call(self._v1.charges.retrieve, payment_id, options=options)
                return charge_state(found)
            except PaymentProviderError as exc:
                if exc.code != "resource_missing":
                    raise
        if payment_id.startswith("pi_"):
            intent = self._call(self._v1.payment_intents.retrieve, payment_id)
            charge: PaymentState | None = None
            latest = intent.get("latest_charge")
            if isinstance(latest, str) and latest:
                charge = charge_state(self._call(self._v1.charges.retrieve, latest))
            elif isinstance(latest, Mapping):
                charge = charge_state(latest)
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
            return charge_state(self._call(self._v1.charges.retrieve, payment_id))
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
        params: ChargeListParams = {
            "created": {
                "gte": int(created_since.timestamp()),
                "lte": int(created_until.timestamp()) + 1,
            },
            "limit": 100,
        }
        found: list[PaymentState] = []
        for page in range(max_pages):
            data = self._call(self._v1.charges.list, params=params)
            items = data.get("data") or []
            found.extend(charge_state(c) for c in items)
            if not data.get("has_more") or not items:
                return found, True
            if page + 1 < max_pages:
                params["starting_after"] = items[-1]["id"]
        return found, False

    def platform_account_id(self) -> str:
        """The platform's own ``acct_`` id (destination of seller → platform transfers)."""
        if self._platform_account is None:
            account = self._call(self._v1.accounts.retrieve_current)
            self._platform_account = str(account["id"])
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
        params: TransferListParams = {
            "created": {"gte": int(created_since.timestamp())},
            "limit": 100,
        }
        if destination:
            params["destination"] = destination
        return self._find(
            self._v1.transfers.list,
            params,
            {"miraklId": mirakl_id, "miraklTransferType": transfer_type},
            Operation.TRANSFER,
            on_account=on_account,
        )

    def find_reversal(self, transfer_id: str, *, mirakl_id: str) -> CreatedObject | None:
        """Look for a reversal of ``transfer_id`` we may have created (``metadata.miraklId``)."""
        params: TransferReversalListParams = {"limit": 100}
        return self._find(
            self._v1.transfers.reversals.list,
            params,
            {"miraklId": mirakl_id},
            Operation.REVERSAL,
            args=(transfer_id,),
        )

    def find_payout(
        self, *, account: str, invoice_id: str, created_since: datetime
    ) -> CreatedObject | None:
        """Look for a live payout on ``account`` for a Mirakl invoice (``metadata.invoiceId``).

        A payout that failed at the bank or was cancelled is skipped: the settlement re-creates
        such a payout with a new key, and finding the dead one would mark the invoice paid.
        """
        params: PayoutListParams = {
            "created": {"gte": int(created_since.timestamp())},
            "limit": 100,
        }
        return self._find(
            self._v1.payouts.list,
            params,
            {"invoiceId": invoice_id},
            Operation.PAYOUT,
            on_account=account,
            accept=lambda payout: payout.get("status") not in ("failed", "canceled"),
        )

    def find_refund(self, *, payment_id: str, mirakl_refund_id: str) -> CreatedObject | None:
        """Look for a refund of ``payment_id`` for a Mirakl refund (``metadata.miraklRefundId``)."""
        params: RefundListParams = (
            {"payment_intent": payment_id, "limit": 100}
            if payment_id.startswith("pi_")
            else {"charge": payment_id, "limit": 100}
        )
        return self._find(
            self._v1.refunds.list, params, {"miraklRefundId": mirakl_refund_id}, Operation.REFUND
        )

    def retrieve_transfer(
        self, transfer_id: str, *, on_account: str | None = None
    ) -> dict[str, Any]:
        """A transfer as Stripe has it; ``on_account`` for one made on a connected account
        (seller → platform)."""
        options = request_options(account=on_account)
        return self._call(self._v1.transfers.retrieve, transfer_id, options=options)

    def retrieve_reversal(self, transfer_id: str, reversal_id: str) -> dict[str, Any]:
        """A reversal of ``transfer_id`` as Stripe has it."""
        return self._call(self._v1.transfers.reversals.retrieve, transfer_id, reversal_id)

    def retrieve_refund(self, refund_id: str) -> dict[str, Any]:
        """A refund as Stripe has it."""
        return self._call(self._v1.refunds.retrieve, refund_id)

    def retrieve_account(self, account_id: str) -> dict[str, Any]:
        """A connected account as a plain dict (KYC fields: ``requirements``, ``*_enabled``)."""
        return self._call(self._v1.accounts.retrieve, account_id)

    def iter_accounts(self) -> Iterator[Mapping[str, Any]]:
        """Every connected account, page by page (100 a page)."""
        params: AccountListParams = {"limit": 100}
        return self._list(self._v1.accounts.list, params)

    def iter_events(
        self, *, types: list[str], created_since: datetime
    ) -> Iterator[Mapping[str, Any]]:
        """Events of ``types`` since ``created_since`` (Stripe keeps 30 days), newest first."""
        params: EventListParams = {
            "types": types,
            "created": {"gte": int(created_since.timestamp())},
            "limit": 100,
        }
        return self._list(self._v1.events.list, params)

    def iter_payouts(
        self, *, account: str, created_since: datetime, status: str | None = None
    ) -> Iterator[Mapping[str, Any]]:
        """The payouts of connected account ``account`` created since ``created_since`` (newest
        first; ``status`` filters, docs.stripe.com/api/payouts/list)."""
        params: PayoutListParams = {
            "created": {"gte": int(created_since.timestamp())},
            "limit": 100,
        }
        if status:
            params["status"] = status
        return self._list(self._v1.payouts.list, params, on_account=account)

    def retrieve_balance(self, account: str | None = None) -> dict[str, Any]:
        """The balance (``available`` and ``pending`` per currency) of ``account``, or of the
        platform (docs.stripe.com/api/balance/balance_retrieve)."""
        return self._call(self._v1.balance.retrieve, options=request_options(account=account))

    def iter_balance_transactions(
        self, *, account: str | None, currency: str, created_since: datetime
    ) -> Iterator[Mapping[str, Any]]:
        """The balance transactions of ``account`` in ``currency`` since ``created_since``,
        newest first (``available_on`` says when pending funds become available)."""
        params: BalanceTransactionListParams = {
            "currency": currency.lower(),
            "created": {"gte": int(created_since.timestamp())},
            "limit": 100,
        }
        return self._list(self._v1.balance_transactions.list, params, on_account=account)

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
        params: TransferCreateParams = {
            "amount": to_api(amount, currency, Operation.TRANSFER),
            "currency": currency.lower(),
            "destination": destination,
            "metadata": tagged(metadata),
        }
        if source_transaction:
            params["source_transaction"] = source_transaction
        options = request_options(idempotency_key, on_account)
        obj = self._call(self._v1.transfers.create, params=params, options=options)
        return created(obj, Operation.TRANSFER)

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
        params: TransferReversalCreateParams = {
            "amount": to_api(amount, currency, Operation.REVERSAL),
            "metadata": tagged(metadata),
        }
        obj = self._call(
            self._v1.transfers.reversals.create,
            transfer_id,
            params=params,
            options=request_options(idempotency_key),
        )
        return created(obj, Operation.REVERSAL)

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
        params: PayoutCreateParams = {
            "amount": to_api(amount, currency, Operation.PAYOUT),
            "currency": currency.lower(),
            "metadata": tagged(metadata),
        }
        options = request_options(idempotency_key, account)
        obj = self._call(self._v1.payouts.create, params=params, options=options)
        return created(obj, Operation.PAYOUT)

    def retrieve_payout(self, *, account: str, payout_id: str) -> Mapping[str, Any]:
        """A payout of a connected account as it is now (``status``, ``failure_code``, ...)."""
        options = request_options(account=account)
        return self._call(self._v1.payouts.retrieve, payout_id, options=options)

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
        params: RefundCreateParams = (
            {"payment_intent": payment_id, "metadata": tagged(metadata)}
            if payment_id.startswith("pi_")
            else {"charge": payment_id, "metadata": tagged(metadata)}
        )
        if amount is not None:
            if not currency:
                raise InvalidItemError("a partial refund needs its currency")
            params["amount"] = to_api(amount, currency, Operation.REFUND)
        options = request_options(idempotency_key)
        obj = self._call(self._v1.refunds.create, params=params, options=options)
        return created(obj, Operation.REFUND)

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
        options = request_options(idempotency_key)
        if target.startswith("pi_"):
            intent: PaymentIntentCaptureParams = {"amount_to_capture": amount}
            capture = self._v1.payment_intents.capture
            obj = self._call(capture, target, params=intent, options=options)
        else:
            charge: ChargeCaptureParams = {"amount": amount}
            obj = self._call(self._v1.charges.capture, target, params=charge, options=options)
        return str(obj["id"])

    def cancel_payment(self, payment_id: str, *, idempotency_key: str) -> str:
        """Release an authorisation: cancel the intent, or refund a charge that has none."""
        target = self._capture_target(payment_id)
        options = request_options(idempotency_key)
        if target.startswith("pi_"):
            return str(self._call(self._v1.payment_intents.cancel, target, options=options)["id"])
        params: RefundCreateParams = {"charge": target}
        refund = self._call(self._v1.refunds.create, params=params, options=options)
        return str(refund["id"])

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
        account: AccountCreateParams = {
            "controller": EXPRESS_CONTROLLER,
            "capabilities": {"transfers": {"requested": True}},
            "settings": {
                "payouts": {"debit_negative_balances": False, "schedule": {"interval": "manual"}}
            },
            "metadata": tagged({"miraklShopId": str(shop_id)}),
        }
        # The prefill (validated by onboarding) may override any of the above, as it always did.
        params = cast(AccountCreateParams, {**account, **dict(prefill or {})})
        options = request_options(idempotency_key)
        return self._call(self._v1.accounts.create, params=params, options=options)

    def create_account_link(self, account_id: str, *, refresh_url: str, return_url: str) -> str:
        """A single-use onboarding URL for ``account_id``."""
        params: AccountLinkCreateParams = {
            "account": account_id,
            "refresh_url": refresh_url,
            "return_url": return_url,
            "type": "account_onboarding",
        }
        return str(self._call(self._v1.account_links.create, params=params)["url"])

    def create_login_link(self, account_id: str) -> str:
        """A login URL to the seller's Express dashboard."""
        login = self._call(self._v1.accounts.login_links.create, account_id)
        return str(login["url"])

    # -- helpers ----------------------------------------------------------------------------

    def _capture_target(self, payment_id: str) -> str:
        if payment_id.startswith("pi_"):
            return payment_id
        if payment_id.startswith(("ch_", "py_")):
            charge = self.retrieve_payment(payment_id)
            return charge.payment_intent or charge.id
        raise PaymentProviderError(f"Unexpected payment type: {payment_id}", permanent=True)
