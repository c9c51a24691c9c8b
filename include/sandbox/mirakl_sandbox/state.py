"""In-memory state of the sandbox: Mirakl data, Stripe objects, logs, ids and the clock.

One :class:`SandboxState` per app. Request handlers run on the event loop, admin calls too, so the
lock mostly protects against the test thread reading while a handler writes; every mutation still
takes it. Ids are ``<prefix>_<8-digit counter>`` so two runs of the same script produce the
same ids.
"""

from __future__ import annotations

import bisect
import copy
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mirakl_sandbox import balances
from mirakl_sandbox.clock import SandboxClock
from mirakl_sandbox.dates import to_timestamp
from mirakl_sandbox.scenario import (
    DEFAULT_MIRAKL_API_KEY,
    DEFAULT_PLATFORM_ACCOUNT,
    DEFAULT_STRIPE_API_KEY,
    validate_scenario,
)


class Collection:
    """Stripe objects of one kind in creation order, listed newest first.

    Keeps an id -> position index so ``starting_after`` / ``ending_before`` are O(page), which
    matters when a benchmark has created 100,000 transfers.
    """

    def __init__(self) -> None:
        self._items: dict[str, dict[str, Any]] = {}
        self._ids: list[str] = []
        self._pos: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, obj_id: object) -> bool:
        return obj_id in self._items

    def get(self, obj_id: str) -> dict[str, Any] | None:
        return self._items.get(obj_id)

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Insert (or replace in place, keeping the original position)."""
        obj_id = obj["id"]
        if obj_id not in self._items:
            self._pos[obj_id] = len(self._ids)
            self._ids.append(obj_id)
        self._items[obj_id] = obj
        return obj

    def values(self) -> list[dict[str, Any]]:
        """Oldest first."""
        return [self._items[i] for i in self._ids]

    def page(
        self,
        *,
        limit: int,
        starting_after: str | None = None,
        ending_before: str | None = None,
        match: Callable[[dict[str, Any]], bool] | None = None,
    ) -> tuple[list[dict[str, Any]], bool]:
        """One newest-first page and ``has_more``.

        :raises KeyError: when the cursor id is unknown.
        """
        accept = match or (lambda _obj: True)
        found: list[dict[str, Any]] = []
        if ending_before is not None:
            start = self._pos[ending_before] + 1
            for obj_id in self._ids[start:]:
                obj = self._items[obj_id]
                if accept(obj):
                    found.append(obj)
                    if len(found) > limit:
                        break
            has_more = len(found) > limit
            return list(reversed(found[:limit])), has_more
        start = self._pos[starting_after] - 1 if starting_after is not None else len(self._ids) - 1
        for index in range(start, -1, -1):
            obj = self._items[self._ids[index]]
            if accept(obj):
                found.append(obj)
                if len(found) > limit:
                    break
        return found[:limit], len(found) > limit


@dataclass
class StripeData:
    """Everything the Stripe simulator stores."""

    api_key: str = DEFAULT_STRIPE_API_KEY
    platform_account: dict[str, Any] = field(default_factory=dict)
    accounts: Collection = field(default_factory=Collection)
    charges: Collection = field(default_factory=Collection)
    payment_intents: Collection = field(default_factory=Collection)
    transfers: Collection = field(default_factory=Collection)
    reversals: Collection = field(default_factory=Collection)
    payouts: Collection = field(default_factory=Collection)
    refunds: Collection = field(default_factory=Collection)
    events: Collection = field(default_factory=Collection)
    customers: Collection = field(default_factory=Collection)
    products: Collection = field(default_factory=Collection)
    # object id -> the account it lives on (None = the platform); for Stripe-Account scoping
    owners: dict[str, str | None] = field(default_factory=dict)
    # charge id -> minor units already transferred with it as source_transaction
    transferred_from_charge: dict[str, int] = field(default_factory=dict)
    # every balance movement of every account (see sandbox/balances.py); owner in ``owners``
    balance_transactions: Collection = field(default_factory=Collection)
    # charge id -> when its funds become available, for charges captured through the API
    charge_funds: dict[str, int] = field(default_factory=dict)
    # scenario ``stripe.funds_available_after_days`` (see sandbox/balances.py)
    funds_available_after_days: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    # (api key, stripe account, idempotency key) -> record
    idempotency: dict[tuple[str, str | None, str], dict[str, Any]] = field(default_factory=dict)


class MiraklData:
    """Mirakl data; product orders are kept sorted by (created_date, order_id) for OR11 paging."""

    def __init__(self) -> None:
        self.api_key: str = DEFAULT_MIRAKL_API_KEY
        self.shops: dict[int | str, dict[str, Any]] = {}
        self.service_orders: dict[str, dict[str, Any]] = {}
        self.service_debits: list[dict[str, Any]] = []
        self.invoices: list[dict[str, Any]] = []
        self.billing_cycles: list[dict[str, Any]] = []  # SBC11 seller billing cycles
        #: S30 shop documents by id (``id``, ``shop_id``, ``type``, ``file_name``,
        #: ``date_uploaded``; the file's bytes in the internal ``content`` key)
        self.shop_documents: dict[int, dict[str, Any]] = {}
        self.calls: list[dict[str, Any]] = []
        self._orders: dict[str, dict[str, Any]] = {}
        self._sorted: list[dict[str, Any]] = []
        self._keys: list[tuple[float, str]] = []
        self._dirty = False

    # -- product orders -------------------------------------------------------------------
    def put_orders(self, orders: Iterable[dict[str, Any]]) -> int:
        """Add or replace product orders (by ``order_id``)."""
        count = 0
        for order in orders:
            self._orders[str(order["order_id"])] = order
            count += 1
        self._dirty = True
        return count

    def load_sorted_orders(self, orders: list[dict[str, Any]]) -> None:
        """Bulk-load orders already sorted by (created_date, order_id) — the generator's path."""
        for order in orders:
            self._orders[str(order["order_id"])] = order
        self._dirty = True

    def get_order(self, order_id: str) -> dict[str, Any] | None:
        return self._orders.get(order_id)

    def mark_orders_changed(self) -> None:
        """Call after changing an order's ``created_date`` in place."""
        self._dirty = True

    def sorted_orders(self) -> tuple[list[dict[str, Any]], list[tuple[float, str]]]:
        """Orders and their sort keys, rebuilt lazily after changes."""
        if self._dirty:
            keyed = sorted(
                ((to_timestamp(o["created_date"]), str(o["order_id"])), o)
                for o in self._orders.values()
            )
            self._keys = [k for k, _ in keyed]
            self._sorted = [o for _, o in keyed]
            self._dirty = False
        return self._sorted, self._keys

    def orders_between(
        self, start: float | None, end: float | None
    ) -> tuple[list[dict[str, Any]], int, int]:
        """The sorted list and the slice bounds of orders created in ``[start, end]``."""
        orders, keys = self.sorted_orders()
        lo = bisect.bisect_left(keys, (start, "")) if start is not None else 0
        hi = bisect.bisect_right(keys, (end, "\uffff")) if end is not None else len(keys)
        return orders, lo, max(lo, hi)

    def iter_orders(self) -> Iterator[dict[str, Any]]:
        orders, _ = self.sorted_orders()
        return iter(orders)

    @property
    def order_count(self) -> int:
        return len(self._orders)


class SandboxState:
    """The whole simulated world plus the fault configuration.

    :param clock: the sandbox clock (injectable so tests can control time).
    :param seed: default seed for fault injection and the generator.
    """

    def __init__(self, clock: SandboxClock | None = None, seed: int = 0) -> None:
        self.lock = threading.RLock()
        self.clock = clock or SandboxClock()
        self.seed = seed
        self.mirakl = MiraklData()
        self.stripe = StripeData()
        self.extra: dict[str, Any] = {}
        self._counters: dict[str, int] = {}
        self._reset_platform()
        from mirakl_sandbox.hyperwallet_data import HyperwalletData

        self.hyperwallet = HyperwalletData()
        from mirakl_sandbox.webhooks import WebhookEmitter

        self.webhooks = WebhookEmitter(self.clock.now)

    # -- ids and time ---------------------------------------------------------------------
    def new_id(self, prefix: str) -> str:
        """``tr_00000001``-style deterministic id."""
        with self.lock:
            value = self._counters.get(prefix, 0) + 1
            self._counters[prefix] = value
        return f"{prefix}_{value:08d}"

    def now(self) -> int:
        """Sandbox time, whole Unix seconds (Stripe's ``created``)."""
        return int(self.clock.now())

    # -- loading --------------------------------------------------------------------------
    def reset(self, scenario: dict[str, Any] | None = None, *, copy_data: bool = True) -> None:
        """Forget everything (except the clock) and load ``scenario`` if given.

        ``copy_data=False`` adopts the scenario's dicts instead of deep-copying them (the
        generator's 100,000-order scenarios would spend seconds in ``deepcopy``).
        """
        validate_scenario(scenario)
        with self.lock:
            self.mirakl = MiraklData()
            self.stripe = StripeData()
            self.extra = {}
            self._counters = {}
            self._reset_platform()
            from mirakl_sandbox.hyperwallet_data import HyperwalletData

            self.hyperwallet = HyperwalletData()
            if scenario:
                self._merge(scenario, copy_data)

    def merge(self, scenario: dict[str, Any], *, copy_data: bool = True) -> None:
        """Add the scenario's data to the current state (same ids replace)."""
        validate_scenario(scenario)
        with self.lock:
            self._merge(scenario, copy_data)

    def _reset_platform(self) -> None:
        self.stripe.platform_account = _account_defaults(
            {
                "id": DEFAULT_PLATFORM_ACCOUNT,
                "charges_enabled": True,
                "payouts_enabled": True,
                "details_submitted": True,
                "type": "standard",
            },
            created=self.now(),
        )

    def _merge(self, scenario: dict[str, Any], copy_data: bool = True) -> None:
        if copy_data:
            scenario = copy.deepcopy(scenario)
        mirakl = scenario.get("mirakl") or {}
        stripe = scenario.get("stripe") or {}
        if mirakl.get("api_key"):
            self.mirakl.api_key = mirakl["api_key"]
        for shop in mirakl.get("shops") or []:
            self.mirakl.shops[shop["shop_id"]] = shop
        orders = mirakl.get("orders") or []
        if orders:
            self.mirakl.put_orders(orders)
        for order in mirakl.get("service_orders") or []:
            self.mirakl.service_orders[str(order["id"])] = order
        self.mirakl.service_debits.extend(mirakl.get("service_debits") or [])
        for document in mirakl.get("shop_documents") or []:
            self.mirakl.shop_documents[int(document["id"])] = document
        self.mirakl.invoices.extend(_iv01_document(i) for i in mirakl.get("invoices") or [])
        self.mirakl.invoices.sort(key=lambda i: (to_timestamp(i["date_created"]), i["invoice_id"]))
        if mirakl.get("billing_cycles"):
            cycles = {str(c["id"]): c for c in self.mirakl.billing_cycles}
            cycles.update({str(c["id"]): c for c in mirakl["billing_cycles"]})
            self.mirakl.billing_cycles = sorted(
                cycles.values(), key=lambda c: (to_timestamp(c["date_created"]), str(c["id"]))
            )
        self.hyperwallet.load(scenario.get("hyperwallet"), self.clock.now())

        if stripe.get("api_key"):
            self.stripe.api_key = stripe["api_key"]
        if stripe.get("platform_account"):
            self.stripe.platform_account = _account_defaults(
                {**self.stripe.platform_account, **stripe["platform_account"]}, created=self.now()
            )
        now = self.now()
        for account in stripe.get("accounts") or []:
            self.stripe.accounts.put(_account_defaults(account, created=now))
        for charge in stripe.get("charges") or []:
            self.put_charge(charge)
        for intent in stripe.get("payment_intents") or []:
            self.put_payment_intent(intent)
        if stripe.get("funds_available_after_days") is not None:
            self.stripe.funds_available_after_days = int(stripe["funds_available_after_days"])
        seeded = {None: stripe.get("platform_balance") or {}, **(stripe.get("balances") or {})}
        for account_id, funds in seeded.items():
            for currency, amount in funds.items():
                balances.credit(
                    self, account_id, currency, int(amount), type_="adjustment", source=None
                )
        for key, value in scenario.items():
            if key not in ("mirakl", "stripe", "hyperwallet"):
                self.extra[key] = value

    def put_charge(self, charge: dict[str, Any]) -> dict[str, Any]:
        """Add or replace a charge, filling the Stripe fields a scenario may omit.

        A scenario charge with ``sandbox_account`` lives on that connected account (e.g. the
        ``py_`` payment a transfer creates there): only that account sees it.
        """
        with self.lock:
            owner = charge.pop("sandbox_account", None)
            obj = _charge_defaults(charge, created=self.now())
            if owner is not None:
                self.stripe.owners[obj["id"]] = owner
            self.stripe.owners.setdefault(obj["id"], None)
            return self.stripe.charges.put(obj)

    def put_payment_intent(self, intent: dict[str, Any]) -> dict[str, Any]:
        """Add or replace a PaymentIntent, filling defaults."""
        with self.lock:
            obj = _payment_intent_defaults(intent, created=self.now())
            return self.stripe.payment_intents.put(obj)

    def put_account(self, account: dict[str, Any]) -> dict[str, Any]:
        """Add or replace a connected account."""
        with self.lock:
            return self.stripe.accounts.put(_account_defaults(account, created=self.now()))

    def find_account(self, account_id: str | None) -> dict[str, Any] | None:
        """A connected account or the platform account by id."""
        if account_id is None:
            return None
        if account_id == self.stripe.platform_account.get("id"):
            return self.stripe.platform_account
        return self.stripe.accounts.get(account_id)

    def platform_available(self) -> dict[str, int]:
        """The platform's available balance per currency (the admin API's ``/stripe/balance``)."""
        with self.lock:
            out: dict[str, int] = {}
            for entry in balances.balance_object(self, None)["available"]:
                out[entry["currency"]] = entry["amount"]
            return out

    # -- snapshots ------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Everything, JSON-ready (for ``GET /_sandbox/state``)."""
        with self.lock:
            s = self.stripe
            return {
                "clock": {"now": self.clock.now(), "offset": self.clock.offset},
                "mirakl": {
                    "api_key_set": bool(self.mirakl.api_key),
                    "shops": list(self.mirakl.shops.values()),
                    "orders": list(self.mirakl.iter_orders()),
                    "service_orders": list(self.mirakl.service_orders.values()),
                    "service_debits": list(self.mirakl.service_debits),
                    "invoices": list(self.mirakl.invoices),
                    "billing_cycles": list(self.mirakl.billing_cycles),
                    "shop_documents": list(self.mirakl.shop_documents.values()),
                    "calls": len(self.mirakl.calls),
                },
                "stripe": {
                    "platform_account": s.platform_account,
                    "platform_balance": self.platform_available(),
                    "accounts": s.accounts.values(),
                    "charges": s.charges.values(),
                    "payment_intents": s.payment_intents.values(),
                    "transfers": self.with_owner(s.transfers.values()),
                    "reversals": s.reversals.values(),
                    "payouts": self.with_owner(s.payouts.values()),
                    "refunds": s.refunds.values(),
                    "events": s.events.values(),
                    "requests": len(s.requests),
                },
                "hyperwallet": self.hyperwallet.snapshot(),
                "extra": self.extra,
            }

    def with_owner(self, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Copies of ``objects`` annotated with ``sandbox_account`` (the account they live on)."""
        return [{**o, "sandbox_account": self.stripe.owners.get(o["id"])} for o in objects]


def _account_defaults(account: dict[str, Any], *, created: int) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "object": "account",
        "type": "express",
        "charges_enabled": False,
        "payouts_enabled": False,
        "details_submitted": False,
        "country": "FR",
        "default_currency": "eur",
        "email": None,
        "capabilities": {},
        "settings": {},
        "metadata": {},
        "created": created,
        # No ``livemode``: the Account object has none (stripe/_account.py).
    }
    obj.update(account)
    requirements = {
        "currently_due": [],
        "eventually_due": [],
        "past_due": [],
        "pending_verification": [],
        "errors": [],
        "disabled_reason": None,
        "current_deadline": None,
    }
    requirements.update(account.get("requirements") or {})
    obj["requirements"] = requirements
    return obj


def _charge_defaults(charge: dict[str, Any], *, created: int) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "object": "charge",
        "status": "succeeded",
        "paid": True,
        "captured": True,
        "refunded": False,
        "amount_refunded": 0,
        "payment_intent": None,
        "transfer_group": None,
        "metadata": {},
        "created": created,
        "livemode": False,
    }
    obj.update(charge)
    obj["currency"] = str(obj["currency"]).lower()
    obj.setdefault("amount_captured", obj["amount"] if obj["captured"] else 0)
    return obj


def _payment_intent_defaults(intent: dict[str, Any], *, created: int) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "object": "payment_intent",
        "status": "succeeded",
        "capture_method": "automatic",
        "latest_charge": None,
        "transfer_group": None,
        "metadata": {},
        "created": created,
        "livemode": False,
    }
    obj.update(intent)
    obj["currency"] = str(obj["currency"]).lower()
    status = obj["status"]
    obj.setdefault("amount_received", obj["amount"] if status == "succeeded" else 0)
    obj.setdefault("amount_capturable", obj["amount"] if status == "requires_capture" else 0)
    return obj


def _iv01_document(invoice: dict[str, Any]) -> dict[str, Any]:
    """A seeded IV01 document in the published schema's shape: its payment state as
    ``payment.state`` (``IV01_Response_200_Invoices_Payment``). A scenario written like the
    Hyperwallet connector's mocks (a top-level ``payment_status``) is moved there; the schema has
    no top-level ``payment_status``, so the simulator never answers one."""
    if invoice.get("id") is not None:
        # ``IV01_Response_200_Invoices.id`` is a string (the Stripe connector's mocks use a
        # number: the published schema wins).
        invoice["id"] = str(invoice["id"])
    legacy = invoice.pop("payment_status", None)
    payment = invoice.get("payment")
    if not isinstance(payment, dict):
        invoice["payment"] = {"state": str(legacy or "PENDING")}
    elif legacy:
        payment["state"] = str(legacy)
    return invoice
