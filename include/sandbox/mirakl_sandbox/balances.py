"""Stripe balances in the simulator: available and pending funds per account and currency.

What Stripe documents, and what the simulator does with it:

* Every account (the platform and each connected account) has a balance per currency, split into
  ``available`` and ``pending`` (docs.stripe.com/api/balance/balance_object). ``GET /v1/balance``
  answers the platform's; with ``Stripe-Account`` the connected account's
  (docs.stripe.com/connect/authentication: "the balance of a connected account").
* Each movement is a balance transaction with ``available_on``: funds are pending until then and
  available from then (docs.stripe.com/api/balance_transactions/object, ``available_on`` and
  ``status``). The simulator derives the status from the sandbox clock, so a test moves funds
  from pending to available by advancing it (:mod:`mirakl_sandbox.clock`).
* A charge's funds become available some days after the charge (docs.stripe.com/payouts,
  "Payout schedule": the settlement timing depends on the country and the industry). The
  simulator uses one delay, ``stripe.funds_available_after_days`` of the scenario (default 0:
  available at once, so the scenarios written before balances existed keep their meaning).
* A payout and a transfer made from a balance need *available* funds; when they are short Stripe
  answers 400 ``invalid_request_error`` ``balance_insufficient``, "The transfer or payout could
  not be completed because the associated account does not have a sufficient balance
  available" (docs.stripe.com/error-codes#balance-insufficient).
* A transfer with ``source_transaction`` is allowed while the charge's funds are pending: the
  destination receives them as pending, available when the charge's funds are
  (docs.stripe.com/connect/separate-charges-and-transfers#transfer-availability).
* A reversal subtracts from the destination account's balance and adds to the platform's; it
  is only possible when the destination account has enough balance to cover it
  (docs.stripe.com/api/transfer_reversals). The docs do not say whether pending funds count:
  the simulator takes the stricter reading, available funds only.
* A refund is taken from the platform's balance. Stripe documents no ``balance_insufficient``
  refusal for refunds (the error code names transfers and payouts only): the simulator never
  refuses one for funds, and the available balance may go below zero.
* A payout that fails or is cancelled returns its amount to the account's balance
  (docs.stripe.com/api/payouts/object, ``failure_code``: "the funds have been returned").

Seeded funds: the scenario's ``stripe.platform_balance`` ({currency: minor units}) and
``stripe.balances`` ({account id: {currency: minor units}}) are credited as available at load.
"""

from __future__ import annotations

from typing import Any

DAY = 86400
#: ``source_types`` key of every simulated amount (the simulator's funds all come from cards)
SOURCE_TYPE = "card"
BALANCE_INSUFFICIENT = "balance_insufficient"


def owner_key(state: Any, account_id: str | None) -> str | None:
    """``None`` for the platform (by id or absent), else the connected account id."""
    if account_id is None or account_id == state.stripe.platform_account.get("id"):
        return None
    return account_id


def credit(
    state: Any,
    account_id: str | None,
    currency: str,
    amount: int,
    *,
    type_: str,
    source: str | None,
    available_on: int | None = None,
) -> dict[str, Any]:
    """Record a movement of ``amount`` (negative: a debit) on the account's balance."""
    now = state.now()
    when = now if available_on is None else int(available_on)
    txn = {
        "id": state.new_id("txn"),
        "object": "balance_transaction",
        "amount": amount,
        "available_on": when,
        "created": now,
        "currency": currency.lower(),
        "description": None,
        "exchange_rate": None,
        "fee": 0,
        "fee_details": [],
        "net": amount,
        "reporting_category": type_,
        "source": source,
        "status": "available" if when <= now else "pending",
        "type": type_,
    }
    state.stripe.balance_transactions.put(txn)
    state.stripe.owners[txn["id"]] = owner_key(state, account_id)
    return txn


def amounts(state: Any, account_id: str | None, currency: str) -> tuple[int, int]:
    """``(available, pending)`` of the account in ``currency`` at the sandbox time."""
    key = owner_key(state, account_id)
    now = state.now()
    available = pending = 0
    currency = currency.lower()
    owners = state.stripe.owners
    for txn in state.stripe.balance_transactions.values():
        if txn["currency"] != currency or owners.get(txn["id"]) != key:
            continue
        if txn["available_on"] <= now:
            available += txn["amount"]
        else:
            pending += txn["amount"]
    return available, pending


def refresh_statuses(state: Any) -> None:
    """Set each balance transaction's ``status`` from the sandbox clock (before it is shown)."""
    now = state.now()
    for txn in state.stripe.balance_transactions.values():
        txn["status"] = "available" if txn["available_on"] <= now else "pending"


def balance_object(state: Any, account_id: str | None) -> dict[str, Any]:
    """The Balance object of the account (docs.stripe.com/api/balance/balance_object)."""
    key = owner_key(state, account_id)
    currencies = sorted(
        {
            txn["currency"]
            for txn in state.stripe.balance_transactions.values()
            if state.stripe.owners.get(txn["id"]) == key
        }
    )
    available, pending = [], []
    for currency in currencies:
        now_available, now_pending = amounts(state, account_id, currency)
        available.append(_entry(now_available, currency))
        pending.append(_entry(now_pending, currency))
    return {"object": "balance", "available": available, "pending": pending, "livemode": False}


def charge_available_on(state: Any, charge: dict[str, Any]) -> int:
    """When the funds of ``charge`` become available: its ``created`` plus the scenario delay."""
    delay = int(state.stripe.funds_available_after_days) * DAY
    return int(charge.get("created") or state.now()) + delay


def _entry(amount: int, currency: str) -> dict[str, Any]:
    return {"amount": amount, "currency": currency, "source_types": {SOURCE_TYPE: amount}}
