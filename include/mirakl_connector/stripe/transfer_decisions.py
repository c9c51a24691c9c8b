"""Whether, how much and where to transfer for one Mirakl order: the decision procedure.

Pure functions over the order, the ledger row and the account mapping. The only outside fact they
need, the state of the customer's payment in Stripe, comes through the ``lookup_payment`` callable
so that tests can pass a dictionary. The rules and reason texts follow the Stripe connector's
payment split (first match wins), with four deliberate changes:

* the tax account of the tax split is the configured account id itself; no hand-inserted mapping
  row with shop id 0 is needed;
* "Amount must be positive" prints the amount in major units with its currency, not an integer;
* a row going back to PENDING has its previous reason cleared;
* a seller whose Stripe account is not verified (the KYC monitor's ``kyc_status`` is
  PENDING_SUBMISSION, PENDING_APPROVAL or REFUSED) has its transfers ON_HOLD, not IGNORED: they
  go out once the status clears. An account whose status is not known yet (no ``kyc_status``:
  not looked at by onboarding, the KYC monitor or an ``account.updated`` event) waits the same
  way: unknown is not verified. The tax twin of an order is not held (it goes to the tax
  account, whose verification is not the seller's).

A transfer that would go out waits ON_HOLD ("awaiting approval: …") when the approval gate
(:mod:`mirakl_connector.operations.approval_gate`, setting ``approval.transfer_above``) says a
person must
approve it first; checked last, so it never hides another reason to wait.

Amounts follow Stripe's currency rules (:mod:`mirakl_connector.stripe.currency`): a currency
Stripe does not support FAILs the row with that reason before any call, and an amount Stripe
cannot express is rounded down, the rest recorded as ``amount_residue``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from mirakl_connector.core.errors import PaymentProviderError
from mirakl_connector.ledger.records import AccountMapping, TransferRecord, TransferStatus
from mirakl_connector.mirakl.orders import MiraklOrder
from mirakl_connector.operations.approval_gate import ApprovalGate, gate_transfer
from mirakl_connector.stripe.currency import Operation, positive_sendable, unsupported_reason
from mirakl_connector.stripe.gateway import PaymentState
from mirakl_connector.stripe.kyc_rules import holds_transfers, unknown_status_reason

PaymentLookup = Callable[[str], PaymentState]

_PAYMENT_PREFIXES = ("pi_", "ch_", "py_")


def decide_order_transfer(
    row: TransferRecord,
    order: MiraklOrder,
    *,
    shop_mapping: AccountMapping | None,
    is_tax_row: bool,
    tax_split: bool,
    tax_account: str | None,
    fallback_payment_id: str | None,
    lookup_payment: PaymentLookup,
    approval: ApprovalGate | None = None,
) -> TransferRecord:
    """Return ``row`` updated with the decision for ``order`` (status, reason, amount, ids).

    :param fallback_payment_id: the payment mapping's charge for the order's commercial id, used
        when Mirakl carries no transaction number.
    :param approval: the approval gate of the run (``None``: no approval rule is configured).
    """
    row = replace(row, mirakl_shop_id=order.shop_id, mirakl_created_date=order.created_date)

    if row.transfer_id:
        return _set(row, TransferStatus.CREATED, None)
    unsupported = unsupported_reason(order.currency)
    if unsupported is not None:  # before any Stripe call: nothing Stripe could do with it
        return _set(replace(row, currency=order.currency), TransferStatus.FAILED, unsupported)

    if not order.shop_id:
        return _set(row, TransferStatus.ON_HOLD, "No shop ID provided")
    if shop_mapping is None:
        return _set(
            row, TransferStatus.ON_HOLD, f"Cannot find Stripe account for shop ID {order.shop_id}"
        )
    if is_tax_row:
        if not tax_split:
            return _set(
                row, TransferStatus.ON_HOLD, "Tax split is disabled; enable it to transfer the tax"
            )
        if not tax_account:
            return _set(row, TransferStatus.ON_HOLD, "No stripe account ID provided")
        destination = tax_account
    else:
        destination = shop_mapping.stripe_account_id
    row = replace(row, destination_account=destination)

    if shop_mapping.ignored:
        return _set(row, TransferStatus.IGNORED, f"Shop {order.shop_id} is ignored")
    if not is_tax_row and shop_mapping.kyc_status is None:
        # Never looked at yet (a brand-new account): unknown is not verified.
        return _set(
            row, TransferStatus.ON_HOLD, unknown_status_reason(shop_mapping.stripe_account_id)
        )
    if not is_tax_row and holds_transfers(shop_mapping.kyc_status):
        # A hold, not a terminal state: the KYC monitor stores the new status when it clears.
        return _set(
            row,
            TransferStatus.ON_HOLD,
            f"Stripe account {shop_mapping.stripe_account_id} is not verified yet "
            f"(KYC {shop_mapping.kyc_status})",
        )
    if order.is_aborted:
        return _set(
            row, TransferStatus.ABORTED, f"Order cannot be processed, status is {order.state}"
        )
    if not order.is_validated or not order.is_paid:
        return _set(row, TransferStatus.ON_HOLD, f"Order is not ready yet, status is {order.state}")

    if row.transaction_id is None:
        payment_id = order.payment_id or fallback_payment_id
        if payment_id and payment_id.startswith(_PAYMENT_PREFIXES):
            verdict = check_payment(payment_id, lookup_payment)
            if isinstance(verdict, tuple):
                return _set(row, *verdict)
            row = replace(row, transaction_id=verdict)
        # Any other id, or none: funded from the platform balance, no source_transaction.

    amount = (
        order.tax_amount_minor() if is_tax_row else order.seller_amount_minor(tax_split=tax_split)
    )
    send = positive_sendable(amount, order.currency, Operation.TRANSFER)  # supported: see above
    row = replace(row, amount=send.amount, amount_residue=send.residue, currency=order.currency)
    if send.too_small:
        return _set(row, TransferStatus.ABORTED, send.too_small)
    return gate_transfer(row, approval)


def needs_payment_check(
    order: MiraklOrder, shop_mapping: AccountMapping | None, *, is_tax_row: bool
) -> bool:
    """Whether :func:`decide_order_transfer` would reach the payment check for this order: the
    rules before it (account mapped, not ignored, KYC cleared, order accepted and debited) all
    pass. A row stopped earlier waits for something else; reading its charge would be wasted."""
    if not order.shop_id or shop_mapping is None or shop_mapping.ignored:
        return False
    if not is_tax_row and (
        shop_mapping.kyc_status is None or holds_transfers(shop_mapping.kyc_status)
    ):
        return False
    return not order.is_aborted and order.is_validated and order.is_paid


def check_payment(
    payment_id: str, lookup_payment: PaymentLookup
) -> str | tuple[TransferStatus, str]:
    """Check that the customer's payment can fund a transfer.

    Returns the charge id to use as ``source_transaction``, or the (status, reason) that stops the
    transfer for now (ON_HOLD) or for good (ABORTED).
    """
    try:
        payment = lookup_payment(payment_id)
    except PaymentProviderError as exc:
        if exc.permanent:
            return TransferStatus.ABORTED, exc.message
        raise
    if payment.kind == "payment_intent":
        if payment.status == "canceled":
            return TransferStatus.ABORTED, f"Payment {payment.id} has been canceled"
        if payment.status != "succeeded":
            return (
                TransferStatus.ON_HOLD,
                f"Payment {payment.id} is not ready yet, status is {payment.status}",
            )
        if payment.charge is None:
            return TransferStatus.ON_HOLD, f"Payment {payment.id} has no charge yet"
        payment = payment.charge
    return _check_charge(payment)


def _check_charge(charge: PaymentState) -> str | tuple[TransferStatus, str]:
    if charge.status == "succeeded":
        if not charge.captured:
            return (
                TransferStatus.ON_HOLD,
                f"Payment {charge.id} is not ready yet, status is succeeded (not captured)",
            )
        if charge.refunded:
            return TransferStatus.ABORTED, f"Payment {charge.id} has been canceled"
        return charge.id
    if charge.status == "failed":
        return TransferStatus.ABORTED, f"Payment {charge.id} failed"
    return (
        TransferStatus.ON_HOLD,
        f"Payment {charge.id} is not ready yet, status is {charge.status}",
    )


def _set(row: TransferRecord, status: TransferStatus, reason: str | None) -> TransferRecord:
    return replace(row, status=status, status_reason=reason)
