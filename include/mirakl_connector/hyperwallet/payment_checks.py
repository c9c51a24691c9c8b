"""Does a Hyperwallet payment match its ledger row? The payments console asks before a person
attaches a payment token found by hand to a row in doubt (the Stripe side is
:mod:`mirakl_connector.stripe.lookups`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mirakl_connector.core.errors import MiraklConnectorError
from mirakl_connector.core.money import describe_amount, to_minor
from mirakl_connector.hyperwallet.payment_decisions import FAILURE, classify_status
from mirakl_connector.ledger.records import HyperwalletPayment


def hyperwallet_payment_problems(payment: Mapping[str, Any], row: HyperwalletPayment) -> list[str]:
    """What does not match between a Hyperwallet payment (``GET /payments/{token}``) and
    ``row``: amount (a decimal string in major units), currency, destination, a live status."""
    problems = []
    try:
        amount: int | None = to_minor(payment.get("amount"), row.currency or "")
    except MiraklConnectorError:  # unreadable: a mismatch, said below
        amount = None
    if amount != row.amount or str(payment.get("currency") or "").upper() != row.currency:
        problems.append(
            f"it is {payment.get('amount')} {payment.get('currency')}, the row "
            f"{describe_amount(row.amount, row.currency)} {row.currency}"
        )
    if payment.get("destinationToken") != row.destination_token:
        problems.append(
            f"its destination is {payment.get('destinationToken')}, not {row.destination_token}"
        )
    if classify_status(payment.get("status")) == FAILURE:
        problems.append(f"its status is {payment.get('status')}: it paid nothing")
    return problems
