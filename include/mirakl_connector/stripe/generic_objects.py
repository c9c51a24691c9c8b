"""The generic Stripe objects: what the generic Stripe operators, sensors and the reconciliation
read and create by resource name, apart from the connector's own money-moving calls.

A base of :class:`~mirakl_connector.stripe.gateway.StripeGateway` (which documents its
parameters), so that every call still goes through :meth:`StripeRequestor._call`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, cast

from stripe.params import (
    ChargeCreateParams,
    CustomerCreateParams,
    PaymentIntentCreateParams,
    ProductCreateParams,
)

from mirakl_connector.stripe.requestor import StripeRequestor
from mirakl_connector.stripe.sdk import request_options


class GenericObjects(StripeRequestor):
    """Objects by resource name (charges, refunds, events...) and the generic creates."""

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
        return self._list(self._lister(resource), params)

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
        return self._list(self._lister(resource), params, on_account=on_account)

    def create_charge(self, params: Mapping[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        """Create a charge from already validated ``params``: only for a one-time token source,
        which PaymentIntents cannot take (see the generic operator)."""
        # ``params`` come from the generic operator's builder, checked against the SDK's type
        # (tests/contract); the cast states it, it converts nothing.
        charge = cast(ChargeCreateParams, dict(params))
        options = request_options(idempotency_key)
        return self._call(self._v1.charges.create, params=charge, options=options)

    def create_payment(self, params: Mapping[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        """Create and confirm a PaymentIntent from validated ``params``; return its charge (what
        the Charges API returned), or the intent itself when no charge was made (e.g. it
        requires an action from the customer)."""
        create = cast(PaymentIntentCreateParams, dict(params))  # see create_charge
        options = request_options(idempotency_key)
        intent = self._call(self._v1.payment_intents.create, params=create, options=options)
        latest = intent.get("latest_charge")
        if isinstance(latest, Mapping):
            return dict(latest)
        if isinstance(latest, str) and latest:
            return self._call(self._v1.charges.retrieve, latest)
        return intent

    def create_customer(self, params: Mapping[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        """Create a customer from already validated ``params``."""
        customer = cast(CustomerCreateParams, dict(params))  # see create_charge
        options = request_options(idempotency_key)
        return self._call(self._v1.customers.create, params=customer, options=options)

    def retrieve_customer(self, customer_id: str) -> dict[str, Any]:
        """A customer by id (``cus_...``)."""
        return self._call(self._v1.customers.retrieve, customer_id)

    def create_product(self, params: Mapping[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        """Create a product from already validated ``params``."""
        product = cast(ProductCreateParams, dict(params))  # see create_charge
        options = request_options(idempotency_key)
        return self._call(self._v1.products.create, params=product, options=options)
