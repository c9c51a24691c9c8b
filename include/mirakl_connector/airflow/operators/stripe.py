"""Generic Stripe actions (create charge, create customer, find customer, create product).

"Create charge" keeps the MuleSoft Stripe connector's fields (``amount``, ``currency``,
``source``, ``customer``, ``capture``, ...) and result (a Charge object), but makes the payment
the current way: ``charges.create`` is deprecated in the pinned API version, so it creates and
confirms a **PaymentIntent** (``source`` becomes its ``payment_method``; ``capture=False``
becomes ``capture_method=manual``) and returns the intent's charge. Only a one-time card token
(``tok_...``) still goes through ``POST /v1/charges``: the pinned PaymentIntent parameters have
no way to pay with a token (no ``payment_method_data[card][token]``).

Every input is checked *before* Stripe is called, with an error naming the field and the rule
(:class:`~mirakl_connector.core.errors.InvalidItemError`): a typo costs no API call and no half-made
object. Writes carry an idempotency key derived from the DAG run and task, so a retried task
returns the object of the first try instead of creating a second one.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from mirakl_connector.airflow.hooks.stripe import StripeHook
from mirakl_connector.airflow.pools import STRIPE_POOL, set_default_pool
from mirakl_connector.core.errors import InvalidItemError

if TYPE_CHECKING:
    from airflow.sdk import Context

SHIPPING_REQUIRED = ("name", "address")
ADDRESS_FIELDS = ("line1", "line2", "city", "state", "postal_code", "country")


def charge_params(
    *,
    amount: Any,
    currency: Any,
    source: str | None = None,
    customer: str | None = None,
    description: str | None = None,
    receipt_email: str | None = None,
    shipping: Mapping[str, Any] | None = None,
    capture: bool = True,
    metadata: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Validated params of the "Create charge" action (pure), for ``POST /v1/payment_intents``
    (see the module docstring; :func:`uses_payment_intent` tells which endpoint they are for).

    Rules: ``amount`` is a positive integer in minor units (1.00 EUR is 100; a float or a
    decimal string is refused rather than guessed); a 3-letter currency; a ``source`` or a
    ``customer`` (``cus_...``); shipping all-or-none: when given, ``name`` and
    ``address.line1`` are required.
    """
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidItemError(
            f"amount must be an integer in minor units (1.00 is 100), got {amount!r}",
            item_id="amount",
        )
    if amount <= 0:
        raise InvalidItemError(f"amount must be positive, got {amount}", item_id="amount")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
        raise InvalidItemError(
            f"currency must be a 3-letter ISO code, got {currency!r}", item_id="currency"
        )
    if not source and not customer:
        raise InvalidItemError("either source or customer is required", item_id="source")
    if customer and not str(customer).startswith("cus_"):
        raise InvalidItemError(
            f"customer must be a Stripe customer id (cus_...), got {customer!r}",
            item_id="customer",
        )
    params: dict[str, Any] = {"amount": amount, "currency": currency.lower()}
    if source and not uses_payment_intent(source):
        params.update(source=source, capture=capture)  # a token: the Charges API (see above)
    else:
        params.update(
            confirm=True,
            capture_method="automatic" if capture else "manual",
            # card-like methods only: no redirect, so no return_url is needed to confirm
            automatic_payment_methods={"enabled": True, "allow_redirects": "never"},
        )
        if source:
            params["payment_method"] = source
    for name, value in (
        ("customer", customer),
        ("description", description),
        ("receipt_email", receipt_email),
    ):
        if value:
            params[name] = value
    if shipping:
        params["shipping"] = shipping_params(shipping)
    if metadata:
        params["metadata"] = dict(metadata)
    return params


def uses_payment_intent(source: str | None) -> bool:
    """True unless ``source`` is a one-time token (``tok_``), which only the Charges API takes."""
    return not (source or "").startswith("tok_")


def shipping_params(shipping: Mapping[str, Any]) -> dict[str, Any]:
    """Shipping is all-or-none: once any field is set, name and address.line1 are required."""
    missing = [name for name in SHIPPING_REQUIRED if not shipping.get(name)]
    address = shipping.get("address") or {}
    if not isinstance(address, Mapping):
        raise InvalidItemError("shipping.address must be an object", item_id="shipping")
    if address and not address.get("line1"):
        missing.append("address.line1")
    if missing:
        raise InvalidItemError(
            f"shipping fields present but {', '.join(sorted(set(missing)))} missing "
            "(shipping is all or none)",
            item_id="shipping",
        )
    unknown = set(address) - set(ADDRESS_FIELDS)
    if unknown:
        raise InvalidItemError(
            f"unknown shipping.address field(s): {', '.join(sorted(unknown))}", item_id="shipping"
        )
    out = {
        k: v for k, v in shipping.items() if k in ("name", "phone", "carrier", "tracking_number")
    }
    out["address"] = dict(address)
    return out


def customer_params(
    *,
    email: str | None = None,
    name: str | None = None,
    phone: str | None = None,
    description: str | None = None,
    address: Mapping[str, Any] | None = None,
    metadata: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Validated ``POST /v1/customers`` params. ``phone`` is the customer's own phone number
    (Stripe's ``phone``), not a shipping phone."""
    if email is not None and ("@" not in email or email.startswith("@") or email.endswith("@")):
        raise InvalidItemError(f"email is not an e-mail address: {email!r}", item_id="email")
    if phone is not None and not any(ch.isdigit() for ch in phone):
        raise InvalidItemError(f"phone has no digits: {phone!r}", item_id="phone")
    if address is not None:
        unknown = set(address) - set(ADDRESS_FIELDS)
        if unknown:
            names = ", ".join(sorted(unknown))
            raise InvalidItemError(f"unknown address field(s): {names}", item_id="address")
    params: dict[str, Any] = {
        k: v
        for k, v in (
            ("email", email),
            ("name", name),
            ("phone", phone),
            ("description", description),
        )
        if v
    }
    if address:
        params["address"] = dict(address)
    if metadata:
        params["metadata"] = dict(metadata)
    return params


def product_params(
    *,
    name: str | None = None,
    description: str | None = None,
    active: bool = True,
    metadata: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Validated ``POST /v1/products`` params; ``name`` is required."""
    if not name or not str(name).strip():
        raise InvalidItemError("name is required", item_id="name")
    params: dict[str, Any] = {"name": str(name).strip(), "active": active}
    if description:
        params["description"] = description
    if metadata:
        params["metadata"] = dict(metadata)
    return params


def find_customer_params(*, customer_id: str | None = None) -> str:
    """The ``cus_...`` id to look up, or a clear error."""
    if not customer_id or not str(customer_id).startswith("cus_"):
        raise InvalidItemError(
            f"customer_id must be a Stripe customer id (cus_...), got {customer_id!r}",
            item_id="customer_id",
        )
    return str(customer_id)


def call_with_fields(builder: Callable[..., Any], fields: Mapping[str, Any]) -> Any:
    """``builder(**fields)``, refusing a field it does not know by name (a typo in a DAG would
    otherwise be a bare ``TypeError``, or worse, silently dropped)."""
    known = inspect.signature(builder).parameters
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise InvalidItemError(
            f"unknown field(s): {', '.join(unknown)} (accepted: {', '.join(known)})",
            item_id=unknown[0],
        )
    return builder(**fields)


class _StripeOperator(BaseOperator):
    template_fields: Sequence[str] = ("stripe_conn_id", "params_in")

    def __init__(self, *, stripe_conn_id: str = "stripe_default", **kwargs: Any) -> None:
        set_default_pool(kwargs, STRIPE_POOL)  # Stripe's rate limit is per account
        self.params_in: dict[str, Any] = kwargs.pop("fields", {})
        super().__init__(**kwargs)
        self.stripe_conn_id = stripe_conn_id

    def gateway(self) -> Any:
        return StripeHook(self.stripe_conn_id).get_gateway()

    def key(self, context: Context) -> str:
        from mirakl_connector.stripe.gateway import idempotency_key

        # The same key on every try of this task in this run: a retry never creates a second object.
        return idempotency_key("generic", self.dag_id, context.get("run_id"), self.task_id)


class StripeCreateChargeOperator(_StripeOperator):
    """The MuleSoft "Create charge" action: ``fields`` as :func:`charge_params` takes them
    (templated). It creates and confirms a PaymentIntent and returns its Charge (a ``tok_``
    source still uses the Charges API: see the module docstring)."""

    def execute(self, context: Context) -> dict[str, Any]:
        params = call_with_fields(charge_params, self.params_in)
        gateway = self.gateway()
        if "confirm" in params:
            return gateway.create_payment(params, idempotency_key=self.key(context))
        return gateway.create_charge(params, idempotency_key=self.key(context))


class StripeCreateCustomerOperator(_StripeOperator):
    """Create a customer; ``fields`` as :func:`customer_params` takes them (templated)."""

    def execute(self, context: Context) -> dict[str, Any]:
        params = call_with_fields(customer_params, self.params_in)
        return self.gateway().create_customer(params, idempotency_key=self.key(context))


class StripeFindCustomerOperator(_StripeOperator):
    """Find a customer by id: ``fields={"customer_id": "cus_..."}`` (templated)."""

    def execute(self, context: Context) -> dict[str, Any]:
        wanted = call_with_fields(find_customer_params, self.params_in)
        return self.gateway().retrieve_customer(wanted)


class StripeCreateProductOperator(_StripeOperator):
    """Create a product; ``fields`` as :func:`product_params` takes them (templated)."""

    def execute(self, context: Context) -> dict[str, Any]:
        params = call_with_fields(product_params, self.params_in)
        return self.gateway().create_product(params, idempotency_key=self.key(context))
