"""What a person may do to a ledger row from the payments console, and the reasons it writes.

Pure (no database, no provider): the rules are checked by :mod:`.manual_actions` under the row's
lock, and by the console before it asks a provider anything. Each refusal is a sentence naming
the row's state, shown to the user and kept in the audit trail.

* **hold**: a row not sent yet (PENDING, ON_HOLD, FAILED; not in doubt, no provider object id)
  goes ON_HOLD with the reason ``held by <user>: <why>``. The workflows never decide, save over
  or send a held row (:func:`is_held`; the ledger enforces it, see ``Ledger._save``) until it is
  released;
* **release**: a held row goes back to ON_HOLD with ``released by <user>: <why>``, a reason no
  rule keeps: the next run decides it again like any waiting row;
* **retry**: a row that is neither done nor held; the console triggers its DAG for its ids;
* **resolve**: a row *in doubt* (sent, the provider's answer unknown: ``attempted_at`` set, no
  provider id, not terminal): either the provider object a person found is attached (checked at
  the provider first), or, when nothing was made, the row may be sent again with a new
  idempotency key (Stripe rows only: a Hyperwallet payment is always looked up by its
  ``clientPaymentId`` before it is created, so it needs no such decision).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mirakl_connector.ledger.records import (
    HyperwalletPayment,
    HyperwalletPaymentStatus,
    PayoutRecord,
    PayoutStatus,
    ProviderWrite,
    RefundRecord,
    RefundStatus,
    TransferRecord,
    TransferStatus,
    sent_without_answer,
)

#: Start of the reason of a row a person put on hold (the mark the workflows look for).
HELD_BY = "held by "
#: Start of the reason of a row released from a hold.
RELEASED_BY = "released by "
#: Longest "why" a user may give (it becomes part of a 1024-character status reason).
WHY_MAX = 500

HOLD = "hold"
RELEASE = "release"
RETRY = "retry"
RESOLVE_FOUND = "resolve_found"
RESOLVE_NOT_FOUND = "resolve_not_found"
MAP_SHOP = "map_shop"
#: decisions of the approval gate (mirakl_connector.operations.approval_gate, ledger.approvals)
APPROVE = "approve"
REJECT = "reject"
ACTIONS = (HOLD, RELEASE, RETRY, RESOLVE_FOUND, RESOLVE_NOT_FOUND, MAP_SHOP, APPROVE, REJECT)

#: ``console_actions.result`` values.
DONE = "done"
REFUSED = "refused"


@dataclass(frozen=True)
class EntityRules:
    """The statuses and provider id column of one money table."""

    on_hold: str
    pending: str
    created: str
    failed: str
    terminal: frozenset[str]
    provider_id: str  # column (and record field) of the provider object id
    provider: str  # "Stripe" | "Hyperwallet", as the user reads it


ENTITIES: dict[str, EntityRules] = {
    "transfer": EntityRules(
        TransferStatus.ON_HOLD.value,
        TransferStatus.PENDING.value,
        TransferStatus.CREATED.value,
        TransferStatus.FAILED.value,
        frozenset({TransferStatus.CREATED, TransferStatus.ABORTED, TransferStatus.IGNORED}),
        "transfer_id",
        "Stripe",
    ),
    "refund": EntityRules(
        RefundStatus.ON_HOLD.value,
        RefundStatus.PENDING.value,
        RefundStatus.CREATED.value,
        RefundStatus.FAILED.value,
        frozenset({RefundStatus.CREATED, RefundStatus.ABORTED}),
        "stripe_refund_id",
        "Stripe",
    ),
    "payout": EntityRules(
        PayoutStatus.ON_HOLD.value,
        PayoutStatus.PENDING.value,
        PayoutStatus.CREATED.value,
        PayoutStatus.FAILED.value,
        frozenset({PayoutStatus.CREATED, PayoutStatus.ABORTED}),
        "payout_id",
        "Stripe",
    ),
    "hyperwallet_payment": EntityRules(
        HyperwalletPaymentStatus.ON_HOLD.value,
        HyperwalletPaymentStatus.PENDING.value,
        HyperwalletPaymentStatus.CREATED.value,
        HyperwalletPaymentStatus.FAILED.value,
        # CREATED is not final at Hyperwallet, but nothing is left to send: it waits for
        # Hyperwallet's notifications
        frozenset(
            {
                HyperwalletPaymentStatus.CREATED,
                HyperwalletPaymentStatus.COMPLETED,
                HyperwalletPaymentStatus.ABORTED,
            }
        ),
        "payment_token",
        "Hyperwallet",
    ),
}

#: the record class of each money table: where *in doubt* and its settled statuses are defined
_RECORDS: dict[str, type[ProviderWrite]] = {
    "transfer": TransferRecord,
    "refund": RefundRecord,
    "payout": PayoutRecord,
    "hyperwallet_payment": HyperwalletPayment,
}

_ON_HOLD_VALUES = frozenset(r.on_hold for r in ENTITIES.values())


def is_held(status: Any, reason: str | None) -> bool:
    """Whether a row with ``status`` and ``reason`` is held by a person (not by a workflow)."""
    return str(status) in _ON_HOLD_VALUES and (reason or "").startswith(HELD_BY)


def is_held_record(record: Any) -> bool:
    """:func:`is_held` of a ledger record (transfer, refund, payout, Hyperwallet payment)."""
    return is_held(record.status, record.status_reason)


@dataclass(frozen=True)
class RowState:
    """What the rules read of a row."""

    entity: str
    status: str
    reason: str | None
    provider_id: str | None
    attempted_at: datetime | None
    attempts: int = 0

    @classmethod
    def of(cls, entity: str, row: Any) -> RowState:
        """From a ledger record or a row mapping of ``entity``'s table."""
        rules = ENTITIES[entity]
        get = row.get if isinstance(row, dict) or hasattr(row, "keys") else row.__getattribute__
        return cls(
            entity=entity,
            status=str(get("status")),
            reason=get("status_reason"),
            provider_id=get(rules.provider_id),
            attempted_at=get("attempted_at"),
            attempts=int(get("attempts") or 0),
        )

    @property
    def rules(self) -> EntityRules:
        return ENTITIES[self.entity]

    @property
    def terminal(self) -> bool:
        return self.status in self.rules.terminal

    @property
    def in_doubt(self) -> bool:
        """Sent, and the provider's answer never reached the ledger: the record's own
        definition (:attr:`ProviderWrite.in_doubt`), so a console action and a run agree."""
        settled = _RECORDS[self.entity].SETTLED
        return sent_without_answer(self.attempted_at, self.provider_id, self.status, settled)

    @property
    def held(self) -> bool:
        return is_held(self.status, self.reason)


def hold_refusal(row: RowState) -> str | None:
    """Why ``row`` cannot be held, or ``None``."""
    if row.held:
        return f"it is already {row.reason}"
    if row.terminal:
        return f"it is {row.status}: nothing is left to send"
    if row.provider_id:
        # even a failed one (a payout failed at the bank): the workflow that re-creates it
        # must see it as it left it
        return f"it already has {row.rules.provider} object {row.provider_id}"
    if row.in_doubt:
        return (
            f"it was sent to {row.rules.provider} and the answer is unknown (in doubt): "
            "resolve it first"
        )
    return None


def release_refusal(row: RowState) -> str | None:
    """Why ``row`` cannot be released, or ``None``."""
    if not row.held:
        return f"it is not held by anyone (status {row.status})"
    return None


def retry_refusal(row: RowState) -> str | None:
    """Why no run should be triggered for ``row``, or ``None``."""
    if row.held:
        return f"it is {row.reason}: release it first"
    if row.terminal:
        if row.status == row.rules.created and row.entity == "hyperwallet_payment":
            return (
                f"it exists at Hyperwallet ({row.provider_id}); its status comes from "
                "Hyperwallet's notifications"
            )
        return f"it is {row.status}: nothing is left to retry"
    return None


def resolve_refusal(row: RowState, *, found: bool) -> str | None:
    """Why ``row``'s doubt cannot be resolved so (``found``: an object was found), or ``None``."""
    if not row.in_doubt:
        if row.provider_id:
            return f"it is not in doubt: {row.rules.provider} object {row.provider_id} is recorded"
        return f"it is not in doubt: no call is waiting for an answer (status {row.status})"
    if not found and row.entity == "hyperwallet_payment":
        return (
            "a Hyperwallet payment is looked up by its clientPaymentId before every creation: "
            "the next run creates it only if Hyperwallet has none, with no decision needed"
        )
    return None


def clean_why(why: Any) -> str:
    """The user's reason, trimmed; :class:`ValueError` when missing or too long."""
    text = " ".join(str(why or "").split())
    if not text:
        raise ValueError("a reason (why) is required for every action")
    if len(text) > WHY_MAX:
        raise ValueError(f"the reason is {len(text)} characters long; at most {WHY_MAX}")
    return text


def hold_reason(user: str, why: str) -> str:
    return f"{HELD_BY}{user}: {why}"


def release_reason(user: str, why: str) -> str:
    return f"{RELEASED_BY}{user}: {why}; decided again by the next run"


def retry_reason(user: str, why: str, dag_id: str, run_id: str) -> str:
    return f"retry requested by {user}: {why}; run {run_id} of {dag_id}"


def found_reason(user: str, why: str, provider: str, object_id: str) -> str:
    return (
        f"resolved by {user}: {provider} object {object_id} found and checked "
        f"(amount, currency, destination): {why}"
    )


def not_found_reason(user: str, why: str, provider: str, attempt: int) -> str:
    return (
        f"resolved by {user}: nothing found at {provider}; the next run sends it once with a "
        f"new idempotency key (attempt {attempt + 1}): {why}"
    )
