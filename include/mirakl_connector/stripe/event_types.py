"""The Stripe event types the connector acts on, in a module that imports nothing.

The healing sensor of ``stripe_webhook_events`` needs this list when its DAG file is parsed;
reading it from :mod:`.handlers` would load the ledger (SQLAlchemy) into every parse.
"""

from __future__ import annotations

ACCOUNT_UPDATED = "account.updated"
CHARGE_SUCCEEDED = "charge.succeeded"
CHARGE_UPDATED = "charge.updated"
PAYOUT_FAILED = "payout.failed"

#: The Stripe event types the connector acts on (the healing sensor polls exactly these).
HANDLED_STRIPE_TYPES: tuple[str, ...] = (
    ACCOUNT_UPDATED,
    CHARGE_SUCCEEDED,
    CHARGE_UPDATED,
    PAYOUT_FAILED,
)

#: Types older connector versions needed; still acknowledged, with a hint to unsubscribe.
DEPRECATED_STRIPE_TYPES = frozenset(
    {
        "payment_intent.created",
        "payment_intent.succeeded",
        "payment_intent.amount_capturable_updated",
    }
)
