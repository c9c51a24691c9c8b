"""The reconciliation's reads: whole windows and id batches, never one call per item.

Providers are read by **creation window** with their list endpoints, page after page:

* Stripe: ``GET /v1/transfers``, ``/v1/refunds``, ``/v1/payouts`` and ``/v1/balance_transactions``
  with ``created[gte]`` (and ``created[lte]`` for a day: a run's window has no upper bound)
  (the ``created`` range of the SDK's generated
  ``TransferListParams``, ``RefundListParams``, ``PayoutListParams``,
  ``BalanceTransactionListParams``: ``gt``/``gte``/``lt``/``lte`` in Unix seconds), 100 a page;
  a connected account's transfers and payouts with its ``Stripe-Account``. Reversals have no
  list of their own across transfers (``GET /v1/transfers/{id}/reversals`` is one transfer's),
  so they are read as the platform's balance transactions of ``type=transfer_refund``, whose
  ``source`` is the reversal (``trr_``);
* Hyperwallet: ``GET /payments?createdAfter=…&createdBefore=…`` (the list filters of the Java
  SDK's ``HyperwalletPaginationOptions``; REST v4 cursor pages).

Mirakl is read by **id batches** where the list takes ids (OR11 ``order_ids``, 100 a call; SOR11
``order_id``, 100 a call): a run's orders may span weeks (a backlog order paid today), and a
creation window would read every order in between. Invoices by **date window** (IV01
``start_date``/``end_date``, SBC11 the same), the way the settlement and the Hyperwallet payments
read them.

Each reader turns what it read into :class:`~.compare.ProviderObject` or raw documents by id.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from mirakl_connector.hyperwallet.payment_decisions import FAILURE_STATUSES
from mirakl_connector.reconciliation.compare import ProviderObject, Unit

#: Payout statuses that moved nothing (docs.stripe.com/api/payouts/object, ``status``).
DEAD_PAYOUT_STATUSES = frozenset({"failed", "canceled"})


@dataclass(frozen=True)
class Window:
    """A creation window, both ends included (aware UTC datetimes). ``until`` ``None``: no
    upper bound (a run's window: nothing the provider created after the run is older than it,
    and a provider's clock ahead of ours must not hide what the run made)."""

    since: datetime
    until: datetime | None


# -- Stripe ---------------------------------------------------------------------------------------


def stripe_transfers(
    stripe: Any,
    window: Window,
    *,
    types: Collection[str],
    on_account: str | None = None,
) -> list[ProviderObject]:
    """Transfers created in ``window`` (on ``on_account``: a seller's transfers to the platform).

    Transfers whose metadata names another type (another workflow's) are left out; transfers
    without the connector's metadata are kept (matched by id only, never reported missing).
    """
    found = []
    for obj in stripe.iter_created_between(
        "transfers", since=window.since, until=window.until, on_account=on_account
    ):
        metadata = obj.get("metadata") or {}
        kind = metadata.get("miraklTransferType")
        if kind and kind not in types:
            continue
        key = f"{kind}:{metadata['miraklId']}" if kind and metadata.get("miraklId") else None
        found.append(_stripe_object(obj, Unit.STRIPE_TRANSFER, key))
    return found


def stripe_refunds(stripe: Any, window: Window) -> list[ProviderObject]:
    """The platform's refunds created in ``window`` (ours carry ``metadata.miraklRefundId``)."""
    found = []
    for obj in stripe.iter_created_between("refunds", since=window.since, until=window.until):
        refund_id = (obj.get("metadata") or {}).get("miraklRefundId")
        key = f"refund:{refund_id}" if refund_id else None
        live = obj.get("status") not in ("failed", "canceled")
        found.append(_stripe_object(obj, Unit.STRIPE_REFUND, key, live=live))
    return found


def stripe_reversals(stripe: Any, window: Window) -> list[ProviderObject]:
    """Transfer reversals made in ``window``: the platform's ``transfer_refund`` balance
    transactions, one per reversal (``source`` = the ``trr_`` id; no metadata, so they are
    matched by id only)."""
    found = []
    for txn in stripe.iter_created_between(
        "balance_transactions",
        since=window.since,
        until=window.until,
        filters={"type": "transfer_refund"},
    ):
        source = txn.get("source")
        if isinstance(source, Mapping):
            source = source.get("id")
        if not source:
            continue
        amount = int(txn.get("amount") or 0)
        found.append(
            ProviderObject(
                object_id=str(source),
                unit=Unit.STRIPE_REVERSAL,
                amount=abs(amount),
                currency=str(txn.get("currency") or "").upper(),
            )
        )
    return found


def stripe_payouts(stripe: Any, window: Window, account: str) -> list[ProviderObject]:
    """Payouts of connected account ``account`` created in ``window`` (ours carry
    ``metadata.invoiceId``; a failed or cancelled one moved nothing)."""
    found = []
    for obj in stripe.iter_created_between(
        "payouts", since=window.since, until=window.until, on_account=account
    ):
        invoice = (obj.get("metadata") or {}).get("invoiceId")
        key = f"payout:{invoice}" if invoice else None
        live = obj.get("status") not in DEAD_PAYOUT_STATUSES
        found.append(_stripe_object(obj, Unit.STRIPE_PAYOUT, key, live=live))
    return found


def _stripe_object(
    obj: Mapping[str, Any], unit: Unit, key: str | None, *, live: bool = True
) -> ProviderObject:
    return ProviderObject(
        object_id=str(obj["id"]),
        unit=unit,
        amount=int(obj.get("amount") or 0),
        currency=str(obj.get("currency") or "").upper(),
        match_key=key,
        live=live,
    )


# -- Hyperwallet ----------------------------------------------------------------------------------


def hyperwallet_payments(hyperwallet: Any, window: Window) -> list[ProviderObject]:
    """Payments created in ``window``. Each is matched by its ``clientPaymentId``; one that
    failed, was returned or cancelled moved nothing (it may have been made again)."""
    found = []
    for payment in hyperwallet.iter_payments(
        created_after=window.since, created_before=window.until
    ):
        token = payment.get("token")
        if not token:
            continue
        try:
            amount = Decimal(str(payment.get("amount")))
        except InvalidOperation:
            amount = Decimal(0)
        client_id = payment.get("clientPaymentId")
        status = str(payment.get("status") or "").upper()
        found.append(
            ProviderObject(
                object_id=str(token),
                unit=Unit.HYPERWALLET,
                amount=amount,
                currency=str(payment.get("currency") or "").upper(),
                match_key=f"hw:{client_id}" if client_id else None,
                live=status not in FAILURE_STATUSES,
            )
        )
    return found


# -- Mirakl ---------------------------------------------------------------------------------------


def mirakl_orders(mirakl: Any, order_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Product orders by id (OR11 ``order_ids``, 100 a call)."""
    ids = sorted(set(order_ids))
    if not ids:
        return {}
    return {str(o.get("order_id")): o for o in mirakl.iter_orders(order_ids=ids)}


def mirakl_service_orders(mirakl: Any, order_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Service orders by id (SOR11 ``order_id``, 100 a call)."""
    ids = sorted(set(order_ids))
    if not ids:
        return {}
    return {str(o.get("id")): o for o in mirakl.iter_service_orders(order_ids=ids)}


def mirakl_invoices(
    mirakl: Any, since: datetime, until: datetime, *, doc_type: str | None = None
) -> dict[str, dict[str, Any]]:
    """IV01 accounting documents created in ``[since, until]`` (Mirakl's default states;
    ``doc_type`` as IV01's ``type``, Mirakl's default AUTO_INVOICE when ``None``)."""
    invoices = mirakl.iter_invoices(start_date=since, end_date=until, doc_type=doc_type)
    return {str(i.get("invoice_id")): i for i in invoices}


def mirakl_billing_cycles(
    mirakl: Any, since: datetime, until: datetime
) -> dict[str, dict[str, Any]]:
    """SBC11 seller billing cycles created in ``[since, until]``, whatever their pay-out state."""
    cycles = mirakl.iter_billing_cycles(start_date=since, end_date=until, pay_out_states=None)
    return {str(c.get("id")): c for c in cycles}
