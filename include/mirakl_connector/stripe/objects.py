"""What the gateway returns: typed results read from the SDK's answers.

The SDK's objects are turned into plain dicts (:func:`plain`) with Stripe's ``Idempotent-Replayed``
answer kept, then into the few typed results the workflows need: :class:`PaymentState` and
:class:`CreatedObject`, whose amounts are back in ISO minor units (the ledger's unit).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import stripe

from mirakl_connector.stripe.currency import Operation, from_api

PLUGIN_NAME = "MiraklPaymentsForAirflow"
PLUGIN_VERSION = "0.1.0"

#: Key of :func:`plain`'s dicts saying that Stripe answered from its idempotency store.
REPLAYED = "_idempotent_replayed"


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


def tagged(extra: Mapping[str, str]) -> dict[str, str]:
    """The metadata of an object we create: the plugin's name and version, then ``extra``."""
    return {"pluginName": PLUGIN_NAME, "pluginVersion": PLUGIN_VERSION, **dict(extra)}


def plain(result: Any) -> Any:
    """SDK objects as plain dicts, with Stripe's ``Idempotent-Replayed`` answer kept."""
    if not isinstance(result, stripe.StripeObject):
        return result
    data = result.to_dict()
    headers = getattr(result.last_response, "headers", None) or {}
    data[REPLAYED] = str(headers.get("Idempotent-Replayed", "")).lower() == "true"
    return data


def created(obj: Mapping[str, Any], operation: Operation = Operation.CHARGE) -> CreatedObject:
    """The object as created; its amount back in ISO minor units (the ledger's unit)."""
    # Transfers, reversals, payouts and refunds always carry an amount (``amount: int`` in the
    # SDK's object types), so ``from_api`` only answers ``None`` for an object without one.
    amount = from_api(obj.get("amount"), obj.get("currency"), operation)
    return CreatedObject(
        id=obj["id"],
        amount=cast(int, amount),
        currency=(obj.get("currency") or "").upper(),
        replayed=bool(obj.get(REPLAYED)),
        metadata=dict(obj.get("metadata") or {}),
    )


def charge_state(charge: Mapping[str, Any]) -> PaymentState:
    """A charge (``ch_``/``py_``) as the workflows read it."""
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
