"""What a Mirakl invoice (IV01) settles: three invoice transfers and one payout, decided purely.

A Mirakl billing cycle ends with one accounting document per shop. Its ``summary`` says what the
seller owes the operator (subscription, extra invoices: Mirakl sends them as negative numbers),
what the operator owes the seller besides orders (extra credits), and what the seller is finally
paid (``amount_transferred``). The settlement turns that into Stripe money movements:

* ``TRANSFER_SUBSCRIPTION`` and ``TRANSFER_EXTRA_INVOICES``: seller → platform, created on the
  seller's connected account (``source_account``) with the platform as destination;
* ``TRANSFER_EXTRA_CREDITS``: platform → seller;
* a payout of ``amount_transferred`` from the seller's balance to their bank.

The rules follow the Stripe connector's, with deliberate changes (each says why):

* permanent verdicts come before temporary ones: a zero amount is ABORTED even when the shop has
  no Stripe account yet (the connector held it ON_HOLD, to abort it later anyway);
* a shop flagged *ignored* holds its invoice transfers and payout ON_HOLD ("Shop N is ignored")
  instead of moving its money regardless (the connector ignored the flag here): the flag also
  marks KYC trouble, which is temporary, so the rows resume once it is cleared;
* amounts are printed in major units with their currency, and a row going back to PENDING has
  its previous reason cleared;
* the extra-credit transfer and the payout (money *to* the seller's account) wait (ON_HOLD)
  while the account's verification status is not known yet (no ``kyc_status``);
* the payout waits (ON_HOLD) until every invoice transfer of the same invoice is settled, see
  :func:`payout_blocker`;
* a payout or an invoice transfer Stripe refuses with ``balance_insufficient`` (the *available*
  balance it takes from does not cover it, docs.stripe.com/error-codes) waits ON_HOLD with the
  reason and the date the pending funds should cover it (:func:`funds_hold_reason`), instead of
  FAILED: it is not an error to alert on every day, only money not there yet. The next run tries
  again (same ledger row, a new key ``…:retry<n>`` since Stripe saved the refusal for the old
  one).
* a transfer or payout that would go out waits ON_HOLD ("awaiting approval: …") when the
  approval gate (:mod:`mirakl_connector.operations.approval_gate`: ``approval.transfer_above``,
  ``payout_above``, ``first_payout_to_new_account``) says a person must approve it first.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.core.money import format_minor, to_minor
from mirakl_connector.ledger.records import (
    AccountMapping,
    PayoutRecord,
    PayoutStatus,
    TransferRecord,
    TransferStatus,
    TransferType,
)
from mirakl_connector.mirakl.invoices import read_iv01
from mirakl_connector.operations.approval_gate import ApprovalGate, gate_payout, gate_transfer
from mirakl_connector.stripe.currency import Operation, positive_sendable
from mirakl_connector.stripe.kyc_rules import unknown_status_reason

#: Which ``summary`` field each invoice transfer takes its amount from.
SUMMARY_FIELDS: Mapping[TransferType, str] = {
    TransferType.SUBSCRIPTION: "total_subscription_incl_tax",
    TransferType.EXTRA_CREDITS: "total_other_credits_incl_tax",
    TransferType.EXTRA_INVOICES: "total_other_invoices_incl_tax",
}

#: Invoice transfers that take money *from* the seller (created on the seller's account).
SELLER_TO_PLATFORM = frozenset({TransferType.SUBSCRIPTION, TransferType.EXTRA_INVOICES})

#: Invoice-transfer statuses after which the payout of the same invoice may go.
SETTLED_TRANSFER = frozenset(
    {TransferStatus.CREATED, TransferStatus.ABORTED, TransferStatus.IGNORED}
)


@dataclass(frozen=True)
class MiraklInvoice:
    """An IV01 accounting document reduced to what the settlement decides on.

    Amounts are ``Decimal`` major units as Mirakl sent them (sign included); ``created_date`` is
    the raw string (checkpoints are sent back verbatim), ``created_at`` the parsed instant.
    """

    invoice_id: str
    shop_id: int | None
    currency: str
    created_date: str
    created_at: datetime
    summary: Mapping[str, Decimal]

    def transfer_amount_minor(self, transfer_type: TransferType) -> int:
        """Absolute value: Mirakl reports what the seller owes as negative numbers (#76)."""
        return abs(to_minor(self.summary[SUMMARY_FIELDS[transfer_type]], self.currency))

    def payout_amount_minor(self) -> int:
        """``amount_transferred`` as is: a negative payout is not a payout (it is ABORTED)."""
        return to_minor(self.summary["amount_transferred"], self.currency)


def parse_invoice(raw: Any) -> MiraklInvoice:
    """Parse one IV01 document (:func:`~mirakl_connector.mirakl.invoices.read_iv01`); a bad one
    raises :class:`InvalidItemError` naming the field. An absent summary amount is zero."""
    document = read_iv01(raw)
    currency = document.currency()
    created_date, created_at = document.created()
    amounts: dict[str, Decimal] = {}
    for name in (*SUMMARY_FIELDS.values(), "amount_transferred"):
        amounts[name] = document.summary_amount(name, default=Decimal(0))
        try:
            to_minor(amounts[name], currency, field=f"summary.{name}")  # fits the ledger
        except InvalidItemError as exc:
            raise exc.for_item(document.invoice_id) from None
    return MiraklInvoice(
        invoice_id=document.invoice_id,
        shop_id=document.shop_id(required=False),
        currency=currency,
        created_date=created_date,
        created_at=created_at,
        summary=amounts,
    )


def decide_invoice_transfer(
    row: TransferRecord,
    invoice: MiraklInvoice,
    *,
    shop_mapping: AccountMapping | None,
    platform_account: Callable[[], str],
    approval: ApprovalGate | None = None,
) -> TransferRecord:
    """Return ``row`` (one of the invoice's three transfers) with its decision.

    :param platform_account: the platform's ``acct_`` id, asked only for seller → platform rows
        that are about to become PENDING (it costs one Stripe call, once per run).
    :param approval: the approval gate of the run (``None``: no approval rule is configured).
    """
    transfer_type = TransferType(row.type)
    row = replace(row, mirakl_shop_id=invoice.shop_id, mirakl_created_date=invoice.created_date)
    if row.transfer_id:
        return _transfer(row, TransferStatus.CREATED, None)
    if not invoice.shop_id:
        return _transfer(row, TransferStatus.ABORTED, "No shop ID provided")
    amount = invoice.transfer_amount_minor(transfer_type)
    send = positive_sendable(amount, invoice.currency, Operation.TRANSFER)
    row = replace(row, amount=send.amount, amount_residue=send.residue, currency=invoice.currency)
    if send.unsupported:  # before any Stripe call
        return _transfer(row, TransferStatus.FAILED, send.unsupported)
    if send.too_small:
        return _transfer(row, TransferStatus.ABORTED, send.too_small)
    blocker = _shop_blocker(invoice.shop_id, shop_mapping)
    if blocker or shop_mapping is None:
        return _transfer(row, TransferStatus.ON_HOLD, blocker)
    if transfer_type in SELLER_TO_PLATFORM:
        row = replace(
            row,
            source_account=shop_mapping.stripe_account_id,
            destination_account=platform_account(),
        )
    else:
        row = replace(row, source_account=None, destination_account=shop_mapping.stripe_account_id)
        if shop_mapping.kyc_status is None:
            # Money *to* an account never looked at: unknown is not verified.
            return _transfer(
                row, TransferStatus.ON_HOLD, unknown_status_reason(shop_mapping.stripe_account_id)
            )
    return gate_transfer(row, approval)


def decide_payout(
    row: PayoutRecord,
    invoice: MiraklInvoice,
    *,
    shop_mapping: AccountMapping | None,
    approval: ApprovalGate | None = None,
) -> PayoutRecord:
    """Return the invoice's payout row with its decision (see the module docstring).

    :param approval: the approval gate of the run (``None``: no approval rule is configured).
    """
    row = replace(
        row,
        mirakl_shop_id=invoice.shop_id,
        mirakl_created_date=invoice.created_date,
        currency=invoice.currency,
    )
    if row.payout_id:
        if row.status in (PayoutStatus.FAILED, PayoutStatus.ON_HOLD):
            # Created, then failed at the bank (payout.failed). The settlement job reopens such a
            # row (Ledger.reopen_failed_payout, see payout_failed_at_bank) before deciding it, so
            # it is paid out again; a row that reaches this point was not reopened, and the
            # ledger keeps its payout id as proof of what moved: never paid twice from here.
            reason = (
                f"Payout {row.payout_id} failed after it was created"
                f"{': ' + row.status_reason if row.status_reason else ''}; "
                "check the seller's bank details, then pay out again from the Stripe dashboard"
            )
            return _payout(row, PayoutStatus.FAILED, reason[:500])
        return _payout(row, PayoutStatus.CREATED, None)
    if not invoice.shop_id:
        return _payout(row, PayoutStatus.ABORTED, "No shop ID provided")
    # HUF/TWD pay out whole units only: round down, the rest stays on the seller's balance.
    send = positive_sendable(invoice.payout_amount_minor(), invoice.currency, Operation.PAYOUT)
    row = replace(row, amount=send.amount, amount_residue=send.residue)
    if send.unsupported:  # before any Stripe call
        return _payout(row, PayoutStatus.FAILED, send.unsupported)
    if send.too_small:
        return _payout(row, PayoutStatus.ABORTED, send.too_small)
    blocker = _shop_blocker(invoice.shop_id, shop_mapping)
    if blocker or shop_mapping is None:
        return _payout(row, PayoutStatus.ON_HOLD, blocker)
    row = replace(row, stripe_account_id=shop_mapping.stripe_account_id)
    if not shop_mapping.payouts_enabled:
        return _payout(
            row, PayoutStatus.ON_HOLD, f"Payouts are disabled for shop ID {invoice.shop_id}"
        )
    if shop_mapping.kyc_status is None:
        return _payout(
            row, PayoutStatus.ON_HOLD, unknown_status_reason(shop_mapping.stripe_account_id)
        )
    return gate_payout(row, approval)


def funds_expected_at(
    needed: int, available: int, pending: Iterable[tuple[int, int]]
) -> int | None:
    """When (Unix time) ``available`` plus the pending ``(amount, available_on)`` movements
    first reach ``needed``, or ``None`` when they never do."""
    total = available
    for amount, available_on in sorted(pending, key=lambda p: p[1]):
        total += amount
        if total >= needed:
            return available_on
    return None


#: how every "waiting for funds" reason starts (see :func:`funds_hold_reason`)
FUNDS_REASON_PREFIX = "Waiting for funds:"
_FUNDS_EXPECTED = "expected available on "
_FUNDS_DATE_FORMAT = "%Y-%m-%d %H:%M"


def funds_hold_reason(
    action: str,
    needed: int,
    currency: str,
    account: str,
    available: int,
    pending: Iterable[tuple[int, int]],
) -> str:
    """Why a payout or transfer waits for funds (``action``: "pay out", "transfer"), with the
    date they are expected when the pending balance transactions say (``available_on``)."""
    when = funds_expected_at(needed, available, pending)
    expected = (
        f"{_FUNDS_EXPECTED}{datetime.fromtimestamp(when, UTC).strftime(_FUNDS_DATE_FORMAT)} UTC"
        if when is not None
        else "no pending funds cover it yet"
    )
    return (
        f"{FUNDS_REASON_PREFIX} {format_minor(needed, currency)} to {action}, "
        f"{format_minor(max(available, 0), currency)} available on {account} "
        f"(balance_insufficient); {expected}"
    )


def funds_expected_on(reason: str | None) -> datetime | None:
    """The instant a :func:`funds_hold_reason` expects the funds, or ``None`` when it names none
    (no pending funds cover the amount yet) or is not such a reason."""
    if not reason or not reason.startswith(FUNDS_REASON_PREFIX) or _FUNDS_EXPECTED not in reason:
        return None
    text = reason.rsplit(_FUNDS_EXPECTED, 1)[1].removesuffix(" UTC")
    try:
        return datetime.strptime(text, _FUNDS_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def funds_may_be_there(
    row: TransferRecord | PayoutRecord, *, now: datetime, credited: Collection[str]
) -> bool:
    """Whether a row waiting for funds should be tried again now: the date its reason expects
    them has passed (the minute it names is rounded down: a minute later), or money arrived on
    the balance it takes from (``credited``: accounts a transfer was made to since the previous
    look). The platform's own balance (a platform → seller transfer) is credited by charges the
    ledger does not see: only its date, or the full sweep, tries such a row again."""
    expected = funds_expected_on(row.status_reason)
    if expected is not None and now >= expected + timedelta(minutes=1):
        return True
    account = row.stripe_account_id if isinstance(row, PayoutRecord) else row.source_account
    return account is not None and account in credited


def payout_failed_at_bank(row: PayoutRecord) -> bool:
    """True for a payout Stripe created and then reported failed (``payout.failed``): the money
    is back in the seller's balance and the payout must be created again (reference 4.1.1)."""
    return bool(row.payout_id) and row.status == PayoutStatus.FAILED


def payout_blocker(invoice_id: str, transfers: Iterable[TransferRecord]) -> str | None:
    """Why the payout of ``invoice_id`` must wait, or ``None`` when it may go now.

    Transfers go first: the seller → platform transfers take the operator's fees from the
    seller's Stripe balance, and the extra credits add to it; ``amount_transferred`` is what
    remains. Paid out first, the balance would be gone and the fee transfers would fail (or
    push the seller's balance negative). So the payout waits while an invoice transfer of the
    same invoice is not settled (CREATED, ABORTED or IGNORED).
    """
    waiting = sorted(
        f"{row.type} ({row.status})" for row in transfers if row.status not in SETTLED_TRANSFER
    )
    if not waiting:
        return None
    return f"Waiting for the invoice transfers of invoice {invoice_id}: {', '.join(waiting)}"


def _shop_blocker(shop_id: int, mapping: AccountMapping | None) -> str | None:
    if mapping is None:
        return f"Cannot find Stripe account for shop ID {shop_id}"
    if mapping.ignored:
        return f"Shop {shop_id} is ignored"
    return None


def _transfer(row: TransferRecord, status: TransferStatus, reason: str | None) -> TransferRecord:
    return replace(row, status=status, status_reason=reason)


def _payout(row: PayoutRecord, status: PayoutStatus, reason: str | None) -> PayoutRecord:
    return replace(row, status=status, status_reason=reason)
