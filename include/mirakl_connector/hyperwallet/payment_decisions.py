"""What a Mirakl invoice owes through Hyperwallet (pure).

What a payment notification means is :mod:`.payment_notices`.

An invoice (IV01 accounting document, or SBC11 seller billing cycle on newer Mirakl instances)
pays two amounts: the seller's (``amount_transferred`` / ``amount_transferred_to_seller``) to the
bank account Hyperwallet knows as the shop's ``hw-bankaccount-token``, and, when operator
commissions are enabled, the operator's commission to the operator's own bank account of the
shop's program. Each becomes one Hyperwallet payment whose ``clientPaymentId`` is the invoice id
(``<id>-operatorFee`` for the commission): that id, looked up before every creation, is what keeps
an invoice from being paid twice.

Deliberate differences from the incumbent, each for a reason its users hit:

* a zero commission is skipped and a *negative* one (manual credits larger than the commission,
  issue #151) is refused with a reason in the ledger and the run summary, never sent;
* an unknown ``hw-program`` holds the invoice with a reason instead of crashing the run; a shop
  without one is skipped (it is not onboarded to Hyperwallet, as the seller extract decides);
* an invoice of an *ignored* program is skipped without being queued for retry (the operator
  chose to leave it alone; retrying it five times would only end in an alert);
* the shop's tokens are read from Mirakl (S20) on every attempt, never from a cache, so a token
  corrected in Mirakl is used by the next retry (issue #127).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.core.money import (
    format_minor,
    from_minor,
    to_minor,
)

# the shop and program tokens live in .shop_tokens; re-exported for the callers of this module
from mirakl_connector.hyperwallet.shop_tokens import (
    BANK_ACCOUNT_TOKEN_FIELD as BANK_ACCOUNT_TOKEN_FIELD,
)
from mirakl_connector.hyperwallet.shop_tokens import PROGRAM_FIELD as PROGRAM_FIELD
from mirakl_connector.hyperwallet.shop_tokens import USER_TOKEN_FIELD as USER_TOKEN_FIELD
from mirakl_connector.hyperwallet.shop_tokens import ProgramTokens as ProgramTokens
from mirakl_connector.hyperwallet.shop_tokens import ShopTokens as ShopTokens
from mirakl_connector.hyperwallet.shop_tokens import clean_text as clean_text
from mirakl_connector.hyperwallet.shop_tokens import shop_tokens as shop_tokens
from mirakl_connector.hyperwallet.shop_tokens import upper_text as upper_text
from mirakl_connector.ledger.records import (
    OPERATOR_FEE_SUFFIX,
    HyperwalletPayment,
    HyperwalletPaymentKind,
    HyperwalletPaymentStatus,
)
from mirakl_connector.mirakl.invoices import (
    AUTO_INVOICE,
    MANUAL_CREDIT,
    Iv01Document,
    iv01_paid,
    read_amount,
    read_created,
    read_currency,
    read_iv01,
    read_shop_id,
)

IV01 = "IV01"
SBC11 = "SBC11"
INVOICE_SOURCES = (IV01, SBC11)

#: ``clientPaymentId`` conventions (``hyperwallet_payments.client_payment_id``): the Hyperwallet
#: connector up to 5.2 paid IV01 invoices under their ``invoice_id``, 5.3+ pays SBC11 billing
#: cycles under their UUID (its ``InvoicesExtractBatchJob``,
#: github.com/paypal/mirakl-hyperwallet-connector).
INVOICE_ID = "invoice_id"
BILLING_CYCLE_ID = "billing_cycle_id"
CLIENT_PAYMENT_ID_CONVENTIONS = (INVOICE_ID, BILLING_CYCLE_ID)

#: A seller billing cycle id: SBC07 ``id`` pattern of the published operator OpenAPI
#: (``SBC07_Request_SellerBillingCycles.id``).
BILLING_CYCLE_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)

#: Hyperwallet payment statuses, as the incumbent classifies them.
ACCEPTED_STATUSES = frozenset({"COMPLETED"})
FAILURE_STATUSES = frozenset(
    {"FAILED", "RECALLED", "RETURNED", "EXPIRED", "UNCLAIMED", "CANCELLED"}
)

ACCEPTED = "accepted"
FAILURE = "failure"
IN_PROGRESS = "in_progress"


_S = HyperwalletPaymentStatus


@dataclass(frozen=True)
class HwInvoice:
    """An invoice to pay, whatever Mirakl API it came from; amounts in minor units."""

    invoice_id: str
    source: str  # IV01 | SBC11
    shop_id: int
    currency: str
    seller_amount: int
    operator_amount: int
    created_date: str  # raw Mirakl date (sent back verbatim when searching it again)
    created_at: datetime
    #: why Mirakl marks the document paid (``payment.state`` PAID...), ``None`` while unpaid: a
    #: paid document is never paid again (it may have been settled outside Hyperwallet)
    paid_in_mirakl: str | None = None
    #: the seller billing cycle of the document (IV01 ``seller_billing_cycle_id``; SBC11 ``id``)
    billing_cycle_id: str | None = None
    #: the accounting document (IV01 ``invoice_id``; for SBC11 found through IV01's
    #: ``seller_billing_cycle_id`` filter when the invoice-id convention needs it)
    accounting_invoice_id: str | None = None
    #: an IV01 ``MANUAL_CREDIT`` document: one seller payment of ``total_charged_amount`` under
    #: its own id, no commission (see :func:`parse_iv01_invoice`)
    credit_note: bool = False


@dataclass
class PaymentPlan:
    """The payments of one invoice, or why none can be made now.

    ``hold``: a reason the invoice waits (retried on later runs); ``skip``: a reason it is left
    alone for good (ignored program). ``payments`` are the ledger rows to send (PENDING) or to
    record as refused (ABORTED, ON_HOLD).
    """

    invoice_id: str
    payments: list[HyperwalletPayment] = field(default_factory=list)
    hold: str | None = None
    skip: str | None = None
    notes: list[str] = field(default_factory=list)


def classify_status(status: object) -> str:
    """``accepted`` (COMPLETED), ``failure`` (FAILED, RETURNED...) or ``in_progress``."""
    value = str(status or "").strip().upper()
    if value in ACCEPTED_STATUSES:
        return ACCEPTED
    if value in FAILURE_STATUSES:
        return FAILURE
    return IN_PROGRESS


def ledger_status(hw_status: object) -> HyperwalletPaymentStatus:
    """The ledger status of a payment Hyperwallet reports in ``hw_status``."""
    kind = classify_status(hw_status)
    if kind == ACCEPTED:
        return _S.COMPLETED
    if kind == FAILURE:
        return _S.FAILED
    return _S.CREATED


def operator_fee_id(invoice_id: str) -> str:
    return f"{invoice_id}{OPERATOR_FEE_SUFFIX}"


def is_operator_fee(client_payment_id: str) -> bool:
    return str(client_payment_id).endswith(OPERATOR_FEE_SUFFIX)


def invoice_id_of(client_payment_id: str) -> str:
    """The invoice a ``clientPaymentId`` pays (the operator-fee suffix removed)."""
    return str(client_payment_id).removesuffix(OPERATOR_FEE_SUFFIX)


# -- invoices ---------------------------------------------------------------------------------


def mirakl_paid(raw: Mapping[str, Any], source: str) -> str | None:
    """Which field of a raw document marks it paid in Mirakl (``"payment.state PAID"``...),
    ``None`` when none does.

    IV01: see :func:`~mirakl_connector.mirakl.invoices.iv01_paid`. SBC11: ``pay_out.state``
    (``SBC11_Response_200_Data_PayOut``: TO_PAY, PAID, FAILED), or a flat ``pay_out_state``.
    Any of them saying PAID is enough: a document settled outside Hyperwallet, or settled by
    hand after its Hyperwallet payment was returned, must never be paid again.
    """
    if source != SBC11:
        return iv01_paid(raw)
    candidates = {
        "pay_out.state": _nested(raw, "pay_out", "state"),
        "pay_out_state": raw.get("pay_out_state"),
    }
    for name, value in candidates.items():
        if upper_text(value) == "PAID":
            return f"{name} PAID"
    return None


def parse_iv01_invoice(
    raw: Mapping[str, Any], *, include_paid: bool = False, credit_notes: bool = False
) -> HwInvoice | str:
    """An IV01 accounting document as an :class:`HwInvoice`, or why it is not to be paid.

    Only COMPLETE automatic invoices whose payment is PENDING are paid (the incumbent's IV01
    filters ``states=COMPLETE``, ``type=AUTO_INVOICE``, ``payment_status=PENDING``, sent to
    Mirakl by the workflow; checked here again); a field the instance does not send is not held
    against the document. A paid one comes back (``paid_in_mirakl`` set) only with
    ``include_paid``, so that the payments Hyperwallet already holds for it are recorded; it is
    never paid.

    :raises InvalidItemError: no id, shop, currency, date or a malformed amount.
    """
    document = read_iv01(raw)
    if document.state and document.state != "COMPLETE":
        return f"state is {document.state}, not COMPLETE"
    if document.doc_type == MANUAL_CREDIT and credit_notes:
        return _credit_note(document, include_paid=include_paid)
    if document.doc_type and document.doc_type != AUTO_INVOICE:
        return f"type is {document.doc_type}, not AUTO_INVOICE"
    paid = document.paid_in_mirakl
    if paid and not include_paid:
        return f"already PAID in Mirakl ({paid})"
    seller = document.summary_amount("amount_transferred")
    operator = document.summary_amount("amount_transferred_to_operator", default=Decimal(0))
    invoice = _invoice(
        document.invoice_id,
        IV01,
        document.raw.get("shop_id"),
        document.raw.get("currency_iso_code"),
        seller,
        operator,
        document.raw.get("date_created"),
        ("summary.amount_transferred", "summary.amount_transferred_to_operator"),
    )
    return replace(
        invoice,
        paid_in_mirakl=paid,
        billing_cycle_id=document.billing_cycle_id,
        accounting_invoice_id=document.invoice_id,
    )


def _credit_note(document: Iv01Document, *, include_paid: bool) -> HwInvoice | str:
    """An IV01 manual credit note as the Hyperwallet connector pays it (≤ 5.2,
    ``InvoicesExtractBatchJob`` on IV01): ``creditAmount = total_charged_amount`` to the
    seller, no operator commission.

    Its ``clientPaymentId`` is always its own invoice id, whatever the convention: the billing
    cycle id it may carry is the automatic invoice's payment, which it must never be taken for
    (found live, it would count the credit note as paid; looked up, it would be adopted).
    """
    paid = document.paid_in_mirakl
    if paid and not include_paid:
        return f"already PAID in Mirakl ({paid})"
    invoice = _invoice(
        document.invoice_id,
        IV01,
        document.raw.get("shop_id"),
        document.raw.get("currency_iso_code"),
        document.total_charged_amount(),
        None,
        document.raw.get("date_created"),
        ("total_charged_amount", "total_charged_amount"),
    )
    return replace(
        invoice, paid_in_mirakl=paid, accounting_invoice_id=document.invoice_id, credit_note=True
    )


def parse_sbc11_cycle(raw: Mapping[str, Any], *, include_paid: bool = False) -> HwInvoice | str:
    """An SBC11 seller billing cycle as an :class:`HwInvoice`, or why it is not to be paid.

    :raises InvalidItemError: no id, shop, currency, date or a malformed amount.
    """
    cycle_id = _id(raw.get("id"), "id")
    paid = mirakl_paid(raw, SBC11)
    if paid and not include_paid:
        return f"already PAID in Mirakl ({paid})"
    nested = raw.get("shop")
    shop: Mapping[str, Any] = nested if isinstance(nested, Mapping) else {}
    invoice = _invoice(
        cycle_id,
        SBC11,
        shop.get("shop_id", raw.get("shop_id")),
        raw.get("currency_iso_code"),
        raw.get("amount_transferred_to_seller"),
        raw.get("amount_transferred_to_operator"),
        raw.get("date_created"),
        ("amount_transferred_to_seller", "amount_transferred_to_operator"),
    )
    return replace(invoice, paid_in_mirakl=paid, billing_cycle_id=cycle_id)


def client_payment_base(invoice: HwInvoice, convention: str) -> str | None:
    """The ``clientPaymentId`` of the invoice's seller payment under ``convention``.

    ``None`` when the document does not carry the id the convention needs (an IV01 invoice
    without ``seller_billing_cycle_id``, a billing cycle whose invoice Mirakl did not return).
    A credit note is always paid under its own invoice id (the connector's convention).
    """
    if invoice.credit_note:
        return invoice.accounting_invoice_id
    if convention == BILLING_CYCLE_ID:
        return invoice.billing_cycle_id
    return invoice.accounting_invoice_id


def known_payment_ids(invoice: HwInvoice) -> tuple[str, ...]:
    """Every id an earlier connector may have paid this document under (looked up before any
    creation, whatever the convention): its invoice id and its billing cycle id."""
    ids = [invoice.accounting_invoice_id, invoice.billing_cycle_id, invoice.invoice_id]
    return tuple(dict.fromkeys(i for i in ids if i))


def looks_like_billing_cycle(client_payment_id: str) -> bool:
    """A (seller-fee part of a) ``clientPaymentId`` shaped as an SBC11 id (a UUID)."""
    return BILLING_CYCLE_UUID.fullmatch(invoice_id_of(client_payment_id)) is not None


def parse_invoice(
    raw: Mapping[str, Any], source: str, *, include_paid: bool = False, credit_notes: bool = False
) -> HwInvoice | str:
    """Parse a document of ``source`` (IV01 or SBC11); ``credit_notes``: IV01 manual credits
    are paid too."""
    if not isinstance(raw, Mapping):
        raise InvalidItemError(f"{source} entry is not an object")
    if source == SBC11:
        return parse_sbc11_cycle(raw, include_paid=include_paid)
    return parse_iv01_invoice(raw, include_paid=include_paid, credit_notes=credit_notes)


def raw_invoice_id(raw: Any, source: str) -> str:
    """The id of a raw document ('' when it has none)."""
    if not isinstance(raw, Mapping):
        return ""
    value = raw.get("id" if source == SBC11 else "invoice_id")
    return "" if value in (None, "") else str(value)


def _invoice(
    invoice_id: str,
    source: str,
    shop_id: Any,
    currency: Any,
    seller: Any,
    operator: Any,
    created: Any,
    names: tuple[str, str],
) -> HwInvoice:
    """An :class:`HwInvoice` from a document's fields (IV01 or SBC11), read with the one set of
    Mirakl document readers (:mod:`mirakl_connector.mirakl.invoices`)."""
    try:
        shop = read_shop_id(shop_id, required=True)
        code = read_currency(currency)
        created_date, created_at = read_created(created)
        seller_minor = to_minor(read_amount(seller, names[0]), code, field=names[0])
        operator_minor = to_minor(
            read_amount(operator, names[1], default=Decimal(0)), code, field=names[1]
        )
    except InvalidItemError as exc:
        raise exc.for_item(invoice_id) from None
    assert shop is not None
    return HwInvoice(
        invoice_id=invoice_id,
        source=source,
        shop_id=shop,
        currency=code,
        seller_amount=seller_minor,
        operator_amount=operator_minor,
        created_date=created_date,
        created_at=created_at,
    )


# -- planning ---------------------------------------------------------------------------------


def plan_invoice_payments(
    invoice: HwInvoice,
    shop: ShopTokens | None,
    programs: Mapping[str, ProgramTokens],
    *,
    operator_commissions: bool,
    client_payment_id: str | None = None,
) -> PaymentPlan:
    """Decide the seller payment and the operator commission of ``invoice``.

    :param shop: the invoice's shop as S20 returns it now (``None``: not returned).
    :param programs: the configured programs by name.
    :param client_payment_id: the seller payment's ``clientPaymentId`` (the convention's id,
        see :func:`client_payment_base`); the document id by default.
    """
    base = client_payment_id or invoice.invoice_id
    plan = PaymentPlan(invoice.invoice_id)
    if shop is None:
        plan.hold = f"shop {invoice.shop_id} is not returned by Mirakl (S20)"
        return plan
    if shop.terminated:
        plan.hold = f"shop {shop.shop_id} is TERMINATED in Mirakl"
        return plan
    if not shop.program:
        # Like the seller extract: a shop without a program is not paid through Hyperwallet.
        plan.skip = f"shop {shop.shop_id} has no {PROGRAM_FIELD} (not paid through Hyperwallet)"
        return plan
    program = programs.get(shop.program)
    if program is None:
        known = ", ".join(sorted(programs)) or "none"
        plan.hold = (
            f"shop {shop.shop_id} has {PROGRAM_FIELD} {shop.program!r}, which is not a "
            f"configured program (known: {known})"
        )
        return plan
    if program.ignored:
        plan.skip = f"program {program.name} is ignored"
        return plan
    if not shop.bank_account_token:
        plan.hold = (
            f"shop {shop.shop_id} has no {BANK_ACCOUNT_TOKEN_FIELD} yet (the bank account "
            "extract has not created its Hyperwallet bank account)"
        )
        return plan

    common: dict[str, Any] = {
        "invoice_id": invoice.invoice_id,
        "currency": invoice.currency,
        "program": program.name,
        "shop_id": shop.shop_id,
        "invoice_source": invoice.source,
        "invoice_created_date": invoice.created_date,
    }
    seller = HyperwalletPayment(
        client_payment_id=base,
        kind=HyperwalletPaymentKind.SELLER,
        amount=invoice.seller_amount,
        destination_token=shop.bank_account_token,
        **common,
    )
    if invoice.seller_amount > 0:
        plan.payments.append(seller)
    elif invoice.seller_amount == 0:
        plan.notes.append("seller amount is 0: no seller payment")
    else:
        money = format_minor(invoice.seller_amount, invoice.currency)
        seller.status = _S.ABORTED
        seller.status_reason = f"seller amount is negative ({money}): not sent"
        plan.payments.append(seller)

    if not operator_commissions or invoice.credit_note:
        return plan  # a credit note has no commission (the connector's CreditNote model)
    fee = HyperwalletPayment(
        client_payment_id=operator_fee_id(base),
        kind=HyperwalletPaymentKind.OPERATOR_FEE,
        amount=invoice.operator_amount,
        destination_token=program.bank_account_token,
        **common,
    )
    if invoice.operator_amount == 0:
        plan.notes.append("operator commission is 0: no operator payment")
        return plan
    if invoice.operator_amount < 0:
        money = format_minor(invoice.operator_amount, invoice.currency)
        fee.status = _S.ABORTED
        fee.status_reason = (
            f"operator commission is negative ({money}): manual credits exceed the "
            "commission; refused, not sent to Hyperwallet"
        )
    elif not program.bank_account_token:
        fee.status = _S.ON_HOLD
        fee.status_reason = (
            f"program {program.name} has no bank_account_token for the operator commission"
        )
    plan.payments.append(fee)
    return plan


def is_live(row: HyperwalletPayment) -> bool:
    """The ledger knows a payment for ``row`` that counts: never create another one."""
    return row.status == _S.COMPLETED or (
        row.payment_token is not None and row.status == _S.CREATED
    )


def refresh_payment(
    saved: HyperwalletPayment | None, planned: HyperwalletPayment
) -> HyperwalletPayment:
    """The row to act on: the planned one, merged into what the ledger already has.

    A row that is done (COMPLETED, or with a live payment at Hyperwallet) is returned as saved:
    the plan never reopens it. Otherwise the plan's amounts and tokens win (a bank token
    corrected in Mirakl is used), the ledger's identity and attempt columns are kept.
    """
    if saved is None:
        return planned
    if is_live(saved) or saved.status == _S.ABORTED and planned.status == _S.ABORTED:
        return saved
    return HyperwalletPayment(
        client_payment_id=saved.client_payment_id,
        invoice_id=saved.invoice_id,
        kind=saved.kind,
        status=planned.status,
        status_reason=planned.status_reason,
        hw_status=saved.hw_status,
        payment_token=saved.payment_token,
        amount=planned.amount,
        currency=planned.currency,
        program=planned.program,
        shop_id=planned.shop_id,
        destination_token=planned.destination_token,
        invoice_source=planned.invoice_source,
        invoice_created_date=planned.invoice_created_date,
        hw_created_on=saved.hw_created_on,
        last_notification_at=saved.last_notification_at,
        last_notification_token=saved.last_notification_token,
        confirmed_at=saved.confirmed_at,
        idempotency_key=saved.idempotency_key,
        attempted_at=saved.attempted_at,
        attempts=saved.attempts,
        id=saved.id,
        created_at=saved.created_at,
        updated_at=saved.updated_at,
    )


def live_payment(found: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The payment Hyperwallet already has for a ``clientPaymentId`` and that still counts.

    Any status but a failure one counts (the incumbent's rule): a payment CREATED, SCHEDULED or
    COMPLETED must not be made again; a RETURNED or CANCELLED one may be replaced. A COMPLETED one
    is preferred, then the most recent.
    """
    alive = [p for p in found if classify_status(p.get("status")) != FAILURE]
    if not alive:
        return None
    completed = [p for p in alive if classify_status(p.get("status")) == ACCEPTED]
    pool = completed or alive
    return max(pool, key=lambda p: str(p.get("createdOn") or ""))


def payment_body(payment: HyperwalletPayment, program_token: str) -> dict[str, Any]:
    """The ``POST /payments`` body: amount as a plain decimal string in major units."""
    if payment.amount is None or not payment.currency or not payment.destination_token:
        raise InvalidItemError(
            "payment lacks an amount, a currency or a destination",
            item_id=payment.client_payment_id,
        )
    return {
        "clientPaymentId": payment.client_payment_id,
        "amount": decimal_text(from_minor(payment.amount, payment.currency)),
        "currency": payment.currency,
        "destinationToken": payment.destination_token,
        "programToken": program_token,
        "purpose": "OTHER",
    }


def decimal_text(value: Decimal) -> str:
    """``Decimal('4545.20')`` → ``"4545.20"`` (never an exponent)."""
    return format(value, "f")


def _id(value: Any, name: str) -> str:
    if value in (None, ""):
        raise InvalidItemError(f"document has no {name}")
    return str(value)


def _nested(raw: Mapping[str, Any], outer: str, inner: str) -> Any:
    value = raw.get(outer)
    return value.get(inner) if isinstance(value, Mapping) else None
