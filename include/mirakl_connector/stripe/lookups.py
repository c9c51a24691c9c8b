"""The Stripe object of a ledger row: looked up by its metadata, or checked by its id.

A workflow looks the object of a row *in doubt* up before it sends the row again
(:mod:`mirakl_connector.stripe.exactly_once`); the payments console does the very same lookup
before a person may
settle such a row as "nothing was made", and checks an object id a person found before it is
attached to the row. One definition of "the Stripe object of this row" serves both, so the
console can never accept what a run would not find, nor miss what a run would.

Stripe keeps the metadata we send (``miraklId``, ``miraklTransferType``, ``miraklRefundId``,
``invoiceId``): an object carrying another item's metadata is refused even when its amount
matches. Amounts are compared in ISO minor units (``stripe_currency.from_api``: Stripe's unit
differs for a few currencies), never as floats.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mirakl_connector.core.errors import MiraklConnectorError
from mirakl_connector.core.money import describe_amount
from mirakl_connector.ledger.records import (
    PayoutRecord,
    RefundRecord,
    TransferRecord,
    TransferType,
)
from mirakl_connector.stripe.currency import Operation, from_api
from mirakl_connector.stripe.exactly_once import lookup_since
from mirakl_connector.stripe.gateway import StripeGateway

StripeRow = TransferRecord | RefundRecord | PayoutRecord


# -- lookups by metadata (the workflows' ``find``) ------------------------------------------------


def find_transfer(stripe: StripeGateway, row: TransferRecord) -> str | None:
    """An order or invoice transfer made for ``row`` (by ``miraklId`` and type), or ``None``.

    Seller → platform transfers (``source_account``) live on the seller's account.
    """
    found = stripe.find_transfer(
        mirakl_id=row.mirakl_id,
        transfer_type=str(row.type),
        destination=row.destination_account,
        created_since=lookup_since(row),
        on_account=row.source_account,
    )
    return found.id if found else None


def find_reversal(stripe: StripeGateway, row: TransferRecord) -> str | None:
    """A reversal of the order transfer made for refund row ``row``, or ``None``."""
    if not row.transaction_id:
        return None
    found = stripe.find_reversal(row.transaction_id, mirakl_id=row.mirakl_id)
    return found.id if found else None


def find_refund(stripe: StripeGateway, row: RefundRecord) -> str | None:
    """A refund of the row's payment made for its Mirakl refund, or ``None``."""
    if not row.transaction_id:
        return None
    found = stripe.find_refund(payment_id=row.transaction_id, mirakl_refund_id=row.mirakl_refund_id)
    return found.id if found else None


def find_payout(stripe: StripeGateway, row: PayoutRecord) -> str | None:
    """A live payout of the row's account for its invoice, or ``None``."""
    found = stripe.find_payout(
        account=row.stripe_account_id or "",
        invoice_id=row.mirakl_invoice_id,
        created_since=lookup_since(row),
    )
    return found.id if found else None


def find_stripe_object(stripe: StripeGateway, row: StripeRow) -> str | None:
    """The Stripe object of any Stripe row, looked up as its workflow does."""
    if isinstance(row, TransferRecord):
        if row.type is TransferType.REFUND:
            return find_reversal(stripe, row)
        return find_transfer(stripe, row)
    if isinstance(row, RefundRecord):
        return find_refund(stripe, row)
    return find_payout(stripe, row)


# -- checking an id a person found -----------------------------------------------------------


def stripe_object_problems(stripe: StripeGateway, row: StripeRow, object_id: str) -> list[str]:
    """What does not match between Stripe object ``object_id`` and ``row`` (empty: it is the
    row's object). Raises the gateway's ``PaymentProviderError`` when Stripe does not have it."""
    if isinstance(row, TransferRecord) and row.type is TransferType.REFUND:
        if not row.transaction_id:
            return ["the row names no transfer to reverse"]
        obj: Mapping[str, Any] = stripe.retrieve_reversal(row.transaction_id, object_id)
        problems = _money(obj, row.amount, row.currency, Operation.REVERSAL)
        if obj.get("transfer") != row.transaction_id:
            problems.append(f"it reverses {obj.get('transfer')}, not {row.transaction_id}")
        return problems + _metadata(obj, {"miraklId": row.mirakl_id})
    if isinstance(row, TransferRecord):
        obj = stripe.retrieve_transfer(object_id, on_account=row.source_account)
        problems = _money(obj, row.amount, row.currency, Operation.TRANSFER)
        destination = _id(obj.get("destination"))
        if destination != row.destination_account:
            problems.append(f"its destination is {destination}, not {row.destination_account}")
        wanted = {"miraklId": row.mirakl_id, "miraklTransferType": str(row.type)}
        return problems + _metadata(obj, wanted)
    if isinstance(row, RefundRecord):
        obj = stripe.retrieve_refund(object_id)
        problems = _money(obj, row.amount, row.currency, Operation.REFUND)
        kind = "payment_intent" if (row.transaction_id or "").startswith("pi_") else "charge"
        paid = _id(obj.get(kind))
        if paid != row.transaction_id:
            problems.append(f"it refunds {paid}, not {row.transaction_id}")
        if obj.get("status") in ("failed", "canceled"):
            problems.append(f"its status is {obj.get('status')}")
        return problems + _metadata(obj, {"miraklRefundId": row.mirakl_refund_id})
    if not row.stripe_account_id:
        return ["the row names no connected account"]
    obj = stripe.retrieve_payout(account=row.stripe_account_id, payout_id=object_id)
    problems = _money(obj, row.amount, row.currency, Operation.PAYOUT)
    if obj.get("status") in ("failed", "canceled"):
        problems.append(f"its status is {obj.get('status')}: it paid nothing")
    return problems + _metadata(obj, {"invoiceId": row.mirakl_invoice_id})


def _money(
    obj: Mapping[str, Any], amount: int | None, currency: str | None, op: Operation
) -> list[str]:
    got_currency = str(obj.get("currency") or "").upper()
    try:
        got = from_api(obj.get("amount"), obj.get("currency"), op)
    except MiraklConnectorError:  # an unknown currency: a mismatch, said below
        got = None
    if got != amount or got_currency != (currency or ""):
        return [
            f"it is {describe_amount(got, got_currency)} {got_currency}, the row "
            f"{describe_amount(amount, currency)} {currency}"
        ]
    return []


def _metadata(obj: Mapping[str, Any], wanted: Mapping[str, str]) -> list[str]:
    """Our metadata naming *another* item (absent metadata is fine: made by hand)."""
    found = obj.get("metadata") or {}
    return [
        f"its metadata {key} is {found[key]!r}, not {value!r}"
        for key, value in wanted.items()
        if found.get(key) not in (None, "", value)
    ]


def _id(value: Any) -> str | None:
    found: str | None = value.get("id") if isinstance(value, Mapping) else value
    return found
