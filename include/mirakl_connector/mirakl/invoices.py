"""Mirakl accounting documents (IV01), read one way for every workflow that pays them.

Two workflows pay from IV01: the Stripe settlement (the summary's subscription, extra credits,
extra invoices and payout, :mod:`mirakl_connector.stripe.settlement_decisions`) and the
Hyperwallet invoice payments (the seller payment, the operator commission and the manual credit
notes, :mod:`mirakl_connector.hyperwallet.payment_decisions`). Both read an IV01 entry
through :func:`read_iv01`, and every field of a Mirakl document (these and SBC11's billing
cycles) through the readers below, so a field is checked the same way, and refused with the same
words, whoever pays it.

Fields as the published Mirakl operator OpenAPI describes IV01 (``IV01_Response_200_Invoices``):
``invoice_id``, ``shop_id``, ``currency_iso_code``, ``date_created``, ``state``, ``type``
(``AUTO_INVOICE``, ``MANUAL_INVOICE``, ``MANUAL_CREDIT``), ``payment.state`` (PENDING, PAID,
FAILED), ``seller_billing_cycle_id``, ``total_charged_amount`` and the ``summary`` amounts.

The document's identity and status are read at once (a workflow decides from them whether to
pay it at all); its values are read when asked for, each checked and naming the field and the
document, so a document a workflow leaves alone (a draft, one already paid) is never failed for
a field that workflow does not use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.core.ids import parse_int_id
from mirakl_connector.core.money import normalize_currency, parse_amount
from mirakl_connector.mirakl.orders import parse_mirakl_datetime

T = TypeVar("T")

#: IV01 ``type`` of an automatic invoice and of a manual credit note.
AUTO_INVOICE = "AUTO_INVOICE"
MANUAL_CREDIT = "MANUAL_CREDIT"


@dataclass(frozen=True)
class Iv01Document:
    """One IV01 accounting document: its identity and status read, its values on demand."""

    raw: Mapping[str, Any]
    invoice_id: str
    #: ``state`` upper-cased (``COMPLETE``...), ``None`` when the instance does not send it
    state: str | None
    #: ``type`` upper-cased (``AUTO_INVOICE``...), ``None`` when the instance does not send it
    doc_type: str | None
    #: which field marks it paid (``"payment.state PAID"``), ``None`` while unpaid
    paid_in_mirakl: str | None
    billing_cycle_id: str | None

    def shop_id(self, *, required: bool = True) -> int | None:
        """``shop_id`` (ASCII digits only: ``int("１")`` is 1, and would pay shop 1)."""
        return self._read(read_shop_id, self.raw.get("shop_id"), required=required)

    def currency(self) -> str:
        """``currency_iso_code``, upper-cased, a currency the connector knows."""
        return self._read(read_currency, self.raw.get("currency_iso_code"))

    def created(self) -> tuple[str, datetime]:
        """``date_created`` as sent (checkpoints send it back verbatim) and as an instant."""
        return self._read(read_created, self.raw.get("date_created"))

    def summary_amount(self, name: str, *, default: Decimal | None = None) -> Decimal:
        """``summary.<name>`` in major units; ``default`` when absent (without one: an error)."""
        summary = self.raw.get("summary")
        if not isinstance(summary, Mapping):
            raise InvalidItemError("summary is missing", item_id=self.invoice_id)
        return self._read(read_amount, summary.get(name), f"summary.{name}", default=default)

    def total_charged_amount(self) -> Decimal:
        """``total_charged_amount``, what a manual credit note pays the seller."""
        return self._read(read_amount, self.raw.get("total_charged_amount"), "total_charged_amount")

    def _read(self, reader: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return reader(*args, **kwargs)
        except InvalidItemError as exc:
            raise exc.for_item(self.invoice_id) from None


def read_iv01(raw: Any) -> Iv01Document:
    """The identity and status of an IV01 entry.

    :raises InvalidItemError: the entry is not an object, or has no ``invoice_id``.
    """
    if not isinstance(raw, Mapping):
        raise InvalidItemError(f"invoice is not an object: {raw!r}"[:200])
    invoice_id = raw.get("invoice_id")
    if invoice_id in (None, "") or isinstance(invoice_id, bool):
        raise InvalidItemError("invoice_id is missing")
    return Iv01Document(
        raw=raw,
        invoice_id=str(invoice_id),
        state=_upper(raw.get("state")),
        doc_type=_upper(raw.get("type")),
        paid_in_mirakl=iv01_paid(raw),
        billing_cycle_id=_text(raw.get("seller_billing_cycle_id")),
    )


def iv01_paid(raw: Mapping[str, Any]) -> str | None:
    """Which field marks an IV01 document paid, ``None`` when none does.

    The published schema carries the state as ``payment.state``
    (``IV01_Response_200_Invoices_Payment``); some of the Hyperwallet connector's mocks show a
    top-level ``payment_status`` instead. Either saying PAID is enough: a document settled
    outside the connector must never be paid again.
    """
    payment = raw.get("payment")
    candidates = {
        "payment.state": payment.get("state") if isinstance(payment, Mapping) else None,
        "payment_status": raw.get("payment_status"),
    }
    for name, value in candidates.items():
        if _upper(value) == "PAID":
            return f"{name} PAID"
    return None


# -- fields of a Mirakl document (IV01, SBC11) --------------------------------------------------


def read_shop_id(value: Any, *, required: bool = True) -> int | None:
    """A document's shop id; missing is an error when ``required``, else ``None``."""
    return parse_int_id(value, field="shop_id", optional=not required)


def read_currency(value: Any) -> str:
    """A document's ``currency_iso_code``, upper-cased and known."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidItemError("currency_iso_code is missing")
    return normalize_currency(value)


def read_created(value: Any) -> tuple[str, datetime]:
    """A document's ``date_created``: the raw text and the instant (an offset is required)."""
    return str(value), parse_mirakl_datetime(value, field="date_created")


def read_amount(value: Any, field: str, *, default: Decimal | None = None) -> Decimal:
    """An amount in major units, never through ``float``.

    Absent (no key, or JSON ``null``) gives ``default``, or the error ``missing <field>``
    without one; anything else must be a number (a blank string is not).
    """
    if value is None and default is not None:
        return default
    return parse_amount(value, field=field)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _upper(value: Any) -> str | None:
    text = _text(value)
    return text.upper() if text else None
