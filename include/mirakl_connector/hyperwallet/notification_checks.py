"""Is a posted Hyperwallet notification true? The pure comparisons (no API call here).

Hyperwallet does not sign its webhooks: the endpoint is protected only by a shared secret and
an optional IP allow list, so anyone who holds the secret could post a ``COMPLETED`` for any
``clientPaymentId``. The incumbent connector never acts on the posted body as such: it re-reads
each notification from Hyperwallet by its token (``GET /webhook-notifications/{token}``, REST
v4; the PayPal connector's ``NotificationProcessJob``, Hyperwallet SDKs
``getWebhookNotification``). We do the same and go one step further: a payment notification is
applied with the payment *as Hyperwallet has it now* (``GET /payments/{token}``), and only to a
payment this connector made (its ledger row: same ``clientPaymentId``, token, amount, currency,
destination). Nothing else can mark an invoice paid (issue 11 point 4).

These functions compare; :mod:`.hyperwallet_notifications` and
:mod:`.hyperwallet_payment_status` call Hyperwallet and act on the answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from mirakl_connector.core.errors import InvalidItemError, MiraklConnectorError
from mirakl_connector.core.money import to_minor
from mirakl_connector.hyperwallet.client import parse_hw_datetime
from mirakl_connector.hyperwallet.shop_tokens import clean_text
from mirakl_connector.ledger.records import HyperwalletPayment, HyperwalletPaymentStatus

#: Fields of ``object`` that must be the same in the posted body and in Hyperwallet's copy.
COMPARED_OBJECT_FIELDS = ("token", "status", "clientPaymentId", "amount", "currency")


class NotificationRejected(MiraklConnectorError):
    """Hyperwallet does not confirm a notification, or it is about a payment we did not make.

    It is never applied (nothing written to Mirakl, no ledger row marked paid), never retried by
    itself (waiting does not make a forgery true), and reported: the run fails naming it and an
    e-mail goes to ``alerts.email_to``. A manual run with its token tries it again.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def posted_differences(posted: Mapping[str, Any], known: Mapping[str, Any]) -> list[str]:
    """How the body posted to us differs from Hyperwallet's copy (empty: they agree).

    Compared: ``token``, ``type``, ``createdOn`` (as an instant: it orders notifications) and the
    object's token, status, clientPaymentId, amount (as a decimal) and currency. Fields absent
    from both are equal; other fields (links, extra object fields) are not compared.
    """
    out: list[str] = []
    for name in ("token", "type"):
        if clean_text(posted.get(name)) != clean_text(known.get(name)):
            out.append(f"{name} {posted.get(name)!r} ≠ {known.get(name)!r}")
    if _instant(posted.get("createdOn")) != _instant(known.get("createdOn")):
        out.append(f"createdOn {posted.get('createdOn')!r} ≠ {known.get('createdOn')!r}")
    mine = _mapping(posted.get("object"))
    theirs = _mapping(known.get("object"))
    for name in COMPARED_OBJECT_FIELDS:
        a, b = mine.get(name), theirs.get(name)
        same = _decimal(a) == _decimal(b) if name == "amount" else clean_text(a) == clean_text(b)
        if not same:
            out.append(f"object.{name} {a!r} ≠ {b!r}")
    return out


def payment_mismatch(row: HyperwalletPayment | None, payment: Mapping[str, Any]) -> str | None:
    """Why the Hyperwallet ``payment`` is not the one our ledger ``row`` made (None: it is).

    ``row`` is the ledger row of the payment's ``clientPaymentId``. No row: we never made a
    payment for that id. A row with a token: the token must be the same (unless that payment
    failed and a new one may replace it: the caller handles that case as before). The amount
    and currency must be the ones we sent, and the destination, when both sides know it.
    """
    cpid = clean_text(payment.get("clientPaymentId"))
    token = clean_text(payment.get("token"))
    if row is None:
        return (
            f"payment {token} (clientPaymentId {cpid!r}) was not made by this connector: "
            "no payment of that clientPaymentId in the ledger"
        )
    if cpid != row.client_payment_id:
        return (
            f"payment {token} has clientPaymentId {cpid!r}, the ledger row is "
            f"{row.client_payment_id!r}"
        )
    if (
        row.payment_token
        and token != row.payment_token
        and row.status != HyperwalletPaymentStatus.FAILED
    ):
        return None  # another payment of the same id: the caller ignores it, as before
    currency = clean_text(payment.get("currency"))
    if row.currency and currency != row.currency:
        return f"payment {token} is in {currency}, the ledger sent {row.currency}"
    if row.amount is not None and row.currency:
        try:
            amount = to_minor(_decimal(payment.get("amount")), row.currency, field="amount")
        except (InvalidItemError, TypeError, ValueError):
            return f"payment {token} has no readable amount ({payment.get('amount')!r})"
        if amount != row.amount:
            return (
                f"payment {token} is of {payment.get('amount')} {currency}, the ledger sent "
                f"{row.amount} minor units"
            )
    destination = clean_text(payment.get("destinationToken"))
    if row.destination_token and destination and destination != row.destination_token:
        return (
            f"payment {token} went to {destination}, the ledger sent it to {row.destination_token}"
        )
    return None


def verified_payload(known: Mapping[str, Any], payment: Mapping[str, Any]) -> dict[str, Any]:
    """The notification to act on: Hyperwallet's copy, its object the payment as it is now."""
    return {**dict(known), "object": dict(payment)}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _instant(value: Any) -> datetime | None:
    return parse_hw_datetime(value)
