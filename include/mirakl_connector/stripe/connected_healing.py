"""Heal the events of connected accounts whose webhook never arrived (pure decisions).

Why this exists: ``account.updated``, ``payout.failed`` and every other event of a connected
account live on that account. Stripe sends them to the platform's *Connect* webhook endpoint with
an ``account`` field, but the platform's own Events list (``GET /v1/events`` without
``Stripe-Account``) never returns them (docs.stripe.com/connect/webhooks;
docs.stripe.com/api/events: "Connect platforms can also receive event notifications that occur
in their connected accounts"). Listing each connected account's events instead would cost one
call per seller per run. So the state those events carry is re-read where it is cheap:

* accounts: ``GET /v1/accounts``, 100 a page (the list the KYC monitor pages through too); an
  account whose state differs from its mapping (what an ``account.updated`` would change) gets
  an ``account.updated`` inbox event built from the account as it is now;
* payouts: for each account with a payout CREATED in the ledger within the last
  ``payout_days``, ``GET /v1/payouts?status=failed&created[gte]=…`` with ``Stripe-Account``; a
  failed payout whose ledger row is still CREATED gets a ``payout.failed`` inbox event.

The events are stored in the inbox (``received_via = healing``) with ids derived from what they
carry, so a rerun stores nothing new, and the ``process`` step applies them with the webhook's own
code path (out-of-order guard included).

Cost per run, A = connected accounts of the platform, P = accounts with a payout created in the
last ``payout_days`` (list calls; each is one page unless it holds more than 100 results):

    calls = ceil(A / 100) + P

For 10,000 sellers: 100 account pages, plus at most 10,000 payout lists when every seller was paid
in the window (a monthly billing cycle paying everyone on the same day): 10,100 calls, about 400 s,
since one endpoint takes 25 requests per second (docs.stripe.com/rate-limits, see
:mod:`mirakl_connector.stripe.limits`); ~100 calls, 4 s, on the other runs. Listing each
account's events instead would cost 10,000 calls on every run, every day. The payout part runs at
most once per ``payout_interval_hours`` (6 by default), so the worst day costs
4 × 10,000 + 48 × 100 calls.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from mirakl_connector.ledger.records import AccountMapping, PayoutRecord, PayoutStatus
from mirakl_connector.stripe import event_handlers as handlers
from mirakl_connector.stripe import event_types

#: The account fields an ``account.updated`` would copy to the mapping.
_ACCOUNT_STATE = ("details_submitted", "payouts_enabled", "charges_enabled")


def account_drift(mapping: AccountMapping | None, account: Mapping[str, Any]) -> bool:
    """Whether applying ``account.updated`` for ``account`` would change ``mapping``."""
    decision = handlers.account_update(mapping, account)
    if isinstance(decision, str):
        return handlers.early_kyc_status(mapping, account) is not None
    assert mapping is not None  # account_update ignores unmapped accounts
    new = decision.mapping
    return (
        new.payouts_enabled != mapping.payouts_enabled
        or new.charges_enabled != mapping.charges_enabled
        or new.disabled_reason != mapping.disabled_reason
        or new.kyc_status != mapping.kyc_status
        or mapping.onboarding_token is not None
    )


def payout_to_heal(row: PayoutRecord | None, payout: Mapping[str, Any]) -> bool:
    """A failed payout whose ledger row does not know it yet (the webhook never arrived)."""
    return (
        row is not None and row.status == PayoutStatus.CREATED and payout.get("status") == "failed"
    )


def account_event(account: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """An ``account.updated`` event carrying ``account`` as it is now (id from its state)."""
    requirements = account.get("requirements") or {}
    state = [account.get(k) for k in _ACCOUNT_STATE] + [
        requirements.get("disabled_reason"),
        sorted(requirements.get("currently_due") or []),
        sorted(requirements.get("past_due") or []),
    ]
    digest = hashlib.sha256(json.dumps(state, default=str).encode()).hexdigest()[:16]
    return _event(f"heal_{account['id']}_{digest}", event_types.ACCOUNT_UPDATED, account, now)


def payout_event(payout: Mapping[str, Any], account: str, now: datetime) -> dict[str, Any]:
    """A ``payout.failed`` event for ``payout`` of ``account`` (one id per payout)."""
    event = _event(f"heal_{payout['id']}_failed", event_types.PAYOUT_FAILED, payout, now)
    event["account"] = account
    return event


def _event(event_id: str, type_: str, obj: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "type": type_,
        "created": int(now.timestamp()),
        "account": obj.get("id") if type_ == event_types.ACCOUNT_UPDATED else None,
        "data": {"object": dict(obj)},
    }
