"""What each handled Stripe event means for the ledger and for Mirakl (pure decisions).

The processing job fetches what these functions need (the mapping, the payment intent) and
applies what they return; keeping the rules here lets table tests pin them without a network.
Behaviour follows the Stripe connector (its ``StripeWebhookEndpoint``,
github.com/stripe/stripe-mirakl-connector) with one deliberate change: an event type
we do not handle is acknowledged and ignored (200 and an IGNORED inbox row) instead of answered
400, which made Stripe retry it for three days and eventually disable the endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.ledger.records import (
    AccountMapping,
    PaymentMapping,
    PaymentMappingStatus,
    PayoutRecord,
    PayoutStatus,
)
from mirakl_connector.stripe.currency import from_api
from mirakl_connector.stripe.event_types import DEPRECATED_STRIPE_TYPES, HANDLED_STRIPE_TYPES
from mirakl_connector.stripe.kyc_rules import kyc_status

#: Payment mapping statuses a later charge event must not move back to ``to_capture``: the
#: validation workflow captured or cancelled the payment and Stripe cannot undo either.
_SETTLED_PAYMENT = frozenset({PaymentMappingStatus.CAPTURED, PaymentMappingStatus.CANCELED})


def ignore_reason(event_type: str) -> str | None:
    """Why an event of ``event_type`` needs no processing, or ``None`` when it is handled."""
    if event_type in HANDLED_STRIPE_TYPES:
        return None
    if event_type in DEPRECATED_STRIPE_TYPES:
        return (
            f"The event type {event_type} is no longer required and can be removed in the "
            "webhook settings."
        )
    return f"Unhandled event type {event_type}: acknowledged and ignored"


@dataclass(frozen=True)
class AccountUpdate:
    """The effect of an ``account.updated`` event on a mapped, submitted account."""

    mapping: AccountMapping  # as it must be saved
    kyc_status: str | None  # Mirakl KYC status to push with S07 (None: no rule applies)


def account_update(
    mapping: AccountMapping | None, account: Mapping[str, Any]
) -> AccountUpdate | str:
    """The mapping update for ``account.updated``, or why the event is ignored.

    Only accounts we mapped and whose details are submitted count: until then the seller is
    still filling the onboarding form and the link field must keep the onboarding link.
    """
    if mapping is None:
        return "Ignoring account.updated event for non-Mirakl Stripe account."
    if not account.get("details_submitted"):
        return "Ignoring account.updated event until details are submitted for account."
    requirements = account.get("requirements") or {}
    status = kyc_status(account)
    updated = replace(
        mapping,
        onboarding_token=None,
        payouts_enabled=bool(account.get("payouts_enabled")),
        charges_enabled=bool(account.get("charges_enabled")),
        disabled_reason=requirements.get("disabled_reason") or None,
        kyc_status=status,
    )
    return AccountUpdate(updated, status)


def early_kyc_status(
    mapping: AccountMapping | None, account: Mapping[str, Any]
) -> AccountMapping | None:
    """The mapping with the account's KYC status recorded, for an ``account.updated`` event
    that :func:`account_update` ignores because the details are not submitted yet.

    Nothing is written to Mirakl then (the link field keeps the onboarding link), but the
    status is known at once: until it is, the account's transfers and payouts wait.
    ``None`` when there is nothing to record.
    """
    if mapping is None or account.get("details_submitted"):
        return None
    status = kyc_status(account)
    if status is None or status == mapping.kyc_status:
        return None
    return replace(mapping, kyc_status=status)


def charge_intent_id(charge: Mapping[str, Any], metadata_key: str) -> str | None:
    """The payment intent to read when the charge's own metadata lacks ``metadata_key``."""
    if metadata_key in (charge.get("metadata") or {}):
        return None
    intent = charge.get("payment_intent")
    if isinstance(intent, Mapping):
        intent = intent.get("id")
    return intent if isinstance(intent, str) and intent else None


def commercial_order_id(
    charge: Mapping[str, Any],
    metadata_key: str,
    intent_metadata: Mapping[str, Any] | None = None,
) -> str | None:
    """The Mirakl commercial order id a charge pays for, from its metadata or its intent's.

    :raises InvalidItemError: the key is present but empty (a checkout bug to fix, not a
        payment to skip silently).
    """
    charge_id = str(charge.get("id"))
    metadata = charge.get("metadata") or {}
    if metadata_key in metadata:
        return _non_empty(
            metadata[metadata_key], f"{metadata_key} is empty in Charge metadata.", charge_id
        )
    expanded = charge.get("payment_intent")
    if intent_metadata is None and isinstance(expanded, Mapping):
        intent_metadata = expanded.get("metadata") or {}
    if intent_metadata is not None and metadata_key in intent_metadata:
        return _non_empty(
            intent_metadata[metadata_key], f"{metadata_key} is empty in PaymentIntent.", charge_id
        )
    return None


def _non_empty(value: Any, message: str, item_id: str) -> str:
    text = "" if value is None else str(value).strip()
    if not text:
        raise InvalidItemError(message, item_id=item_id)
    return text


def payment_status(charge: Mapping[str, Any]) -> PaymentMappingStatus:
    """``failed`` for a failed charge, else ``captured`` or ``to_capture``."""
    if charge.get("status") == "failed":
        return PaymentMappingStatus.FAILED
    return (
        PaymentMappingStatus.CAPTURED if charge.get("captured") else PaymentMappingStatus.TO_CAPTURE
    )


def payment_mapping_for(
    charge: Mapping[str, Any], commercial_id: str, existing: PaymentMapping | None
) -> PaymentMapping:
    """The payment mapping to save for a charge event (new, or the existing one updated)."""
    status = payment_status(charge)
    if existing is None:
        return PaymentMapping(
            stripe_charge_id=str(charge["id"]),
            mirakl_commercial_order_id=commercial_id,
            status=status,
            # the ledger keeps ISO minor units: Stripe's unit differs for MGA, ISK (README
            # "Currencies")
            stripe_amount=from_api(charge.get("amount"), charge.get("currency")),
        )
    if existing.status in _SETTLED_PAYMENT and status == PaymentMappingStatus.TO_CAPTURE:
        status = existing.status
    return replace(existing, mirakl_commercial_order_id=commercial_id, status=status)


def payout_failure_reason(payout: Mapping[str, Any]) -> str:
    """``"<failure_code>: <failure_message>"``, with Stripe connector's defaults when absent."""
    code = payout.get("failure_code") or "unknown_code"
    message = payout.get("failure_message") or "Unknown failure reason"
    return f"{code}: {message}"


def payout_failed(record: PayoutRecord | None, payout: Mapping[str, Any]) -> PayoutRecord | str:
    """The payout row moved to FAILED, or why the event is ignored.

    The row keeps its ``payout_id`` (the ledger refuses to forget a provider id: it is the proof
    of what moved); the settlement workflow decides what happens to a FAILED row next.
    """
    if record is None:
        return "Ignoring payout.failed event for unknown payout."
    return replace(record, status=PayoutStatus.FAILED, status_reason=payout_failure_reason(payout))
