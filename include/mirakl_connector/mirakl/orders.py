"""Mirakl orders as the payment workflows need them, and the amount rules that apply to them.

Product orders (OR11) and service orders (SOR11 + their SPA11 debit) have different shapes but
the payment split asks the same questions of both: is it validated, aborted, paid; how much is
due, how much is the operator's commission, how much is tax. :class:`MiraklOrder` answers them
once, so the decision code never reads raw Mirakl dicts.

Everything here is pure. Amounts stay ``Decimal`` major units as Mirakl sends them; the
``*_minor`` helpers convert to Stripe's integer minor units with the currency's ISO 4217
exponent (JPY 0, EUR 2, KWD 3). Bad data raises :class:`InvalidItemError` carrying the order id
and naming the field, so one broken order is reported and skipped instead of stopping a batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.core.ids import parse_int_id
from mirakl_connector.core.money import normalize_currency, parse_amount, to_minor

PRODUCT_NOT_VALIDATED = frozenset(
    {"STAGING", "WAITING_ACCEPTANCE", "WAITING_DEBIT", "WAITING_DEBIT_PAYMENT"}
)
PRODUCT_ABORTED = frozenset({"REFUSED", "CANCELED"})
SERVICE_NOT_VALIDATED = frozenset(
    {"WAITING_SCORING", "WAITING_ACCEPTANCE", "WAITING_DEBIT", "WAITING_DEBIT_PAYMENT"}
)
SERVICE_ABORTED = frozenset({"ORDER_REFUSED", "ORDER_EXPIRED", "ORDER_CANCELLED"})

TAX_INCLUDED = "TAX_INCLUDED"
TAX_EXCLUDED = "TAX_EXCLUDED"
_TAX_MODES = (TAX_INCLUDED, TAX_EXCLUDED)
_INACTIVE_LINE_STATES = PRODUCT_ABORTED  # lines Mirakl already left out of total_price
_ZERO = Decimal(0)

#: The instants a Mirakl date may name (see :func:`parse_mirakl_datetime`).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)
#: How far after our clock a Mirakl date may be (clock skew) before it counts as bad data.
MAX_CLOCK_SKEW = timedelta(days=1)


@dataclass(frozen=True)
class RefundPart:
    """What one refund of an order takes back: the refund itself, commission and tax.

    ``currency`` is the order's, so the ``*_minor`` helpers can convert on their own.
    """

    refund_id: str
    amount: Decimal
    commission: Decimal
    tax: Decimal
    currency: str

    def amount_minor(self) -> int:
        return to_minor(self.amount, self.currency)

    def commission_minor(self) -> int:
        return to_minor(self.commission, self.currency)

    def tax_minor(self) -> int:
        return to_minor(self.tax, self.currency)

    def seller_amount_minor(self, *, tax_split: bool) -> int:
        """What to reverse from the seller: refund − refunded commission [− refunded tax]."""
        seller = self.amount_minor() - self.commission_minor()
        return seller - self.tax_minor() if tax_split else seller


@dataclass(frozen=True)
class MiraklOrder:
    """A product or service order reduced to what the payment workflows decide on.

    ``created_date`` is the raw string Mirakl sent (checkpoints are sent back verbatim);
    ``created_at`` is the same instant parsed, for ordering.
    """

    order_id: str
    commercial_id: str
    shop_id: int | None
    state: str
    currency: str
    created_date: str
    created_at: datetime
    tax_mode: str
    amount_due: Decimal
    commission: Decimal
    tax_total: Decimal
    aborted_amount: Decimal
    is_validated: bool
    is_aborted: bool
    is_paid: bool
    payment_id: str | None
    kind: str
    refunds: Mapping[str, Mapping[str, Any]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def amount_due_minor(self) -> int:
        return to_minor(self.amount_due, self.currency)

    def commission_minor(self) -> int:
        return to_minor(self.commission, self.currency)

    def tax_amount_minor(self) -> int:
        """The tax transfer of a tax split (``<order id>_TAX``)."""
        return to_minor(self.tax_total, self.currency)

    def aborted_amount_minor(self) -> int:
        """The part of the payment not to capture (refused and cancelled lines)."""
        return to_minor(self.aborted_amount, self.currency)

    def seller_amount_minor(self, *, tax_split: bool) -> int:
        """The seller's transfer: amount due − commission [− tax], in minor units.

        Each term is converted on its own, so seller + commission (+ tax) add up exactly to the
        amount due in minor units. The result may be zero or negative; deciding what that
        means (an aborted transfer) is the caller's business.
        """
        seller = self.amount_due_minor() - self.commission_minor()
        return seller - self.tax_amount_minor() if tax_split else seller

    def refund(self, refund_id: str) -> RefundPart:
        """The commission and tax that go back with refund ``refund_id`` of this order.

        :raises InvalidItemError: when the order has no such refund or its amounts are bad.
        """
        raw = self.refunds.get(str(refund_id))
        if raw is None:
            raise InvalidItemError(f"refund {refund_id} not found", item_id=self.order_id)
        where = f"refund {refund_id}"
        with _for_item(self.order_id):
            amount = _amount(raw, "amount", where)
            if self.kind == "product":
                commission = _amount(raw, "commission_total_amount", where)
            else:
                commission = _optional_commission(raw.get("commission"), f"{where}.commission")
            tax = _sum_amounts(raw, "shipping_taxes", where) + _sum_amounts(raw, "taxes", where)
        return RefundPart(str(refund_id), amount, commission, tax, self.currency)


# ---------------------------------------------------------------------- parsers


def parse_product_order(raw: Mapping[str, Any]) -> MiraklOrder:
    """Read an OR11 order and apply the product amount rules.

    * amount due = ``total_price`` (Mirakl already leaves refused and cancelled lines out) plus,
      unless the order is ``TAX_INCLUDED``, the shipping and product taxes of the other lines;
    * commission = ``total_commission``;
    * tax total = product taxes (not shipping) of the active lines, whatever the tax mode;
    * aborted amount = refused lines' ``total_price`` and cancelled lines' ``cancelations``
      (Mirakl zeroes a cancelled line and moves its amounts there), each with its taxes
      unless ``TAX_INCLUDED``.
    """
    order_id = _order_id(raw, "order_id")
    with _for_item(order_id):
        tax_mode = _tax_mode(raw)
        taxes_due = tax_mode != TAX_INCLUDED
        currency = normalize_currency(_required(raw, "currency_iso_code"))
        state = _text(raw, "order_state")
        created_date = _text(raw, "created_date")
        lines = raw.get("order_lines")
        if lines is None:
            raise InvalidItemError("order_lines is missing")
        if not isinstance(lines, list):
            raise InvalidItemError("order_lines is not a list")

        extra_taxes = tax_total = aborted = _ZERO
        refunds: dict[str, Mapping[str, Any]] = {}
        for index, line in enumerate(lines):
            where = f"order_lines[{index}]"
            if not isinstance(line, Mapping):
                raise InvalidItemError(f"{where} is not an object")
            line_state = _text(line, "order_line_state", where)
            shipping_taxes = _sum_amounts(line, "shipping_taxes", where)
            product_taxes = _sum_amounts(line, "taxes", where)
            if line_state == "REFUSED":
                aborted += _amount(line, "total_price", where)
                if taxes_due:
                    aborted += shipping_taxes + product_taxes
            elif line_state == "CANCELED":
                aborted += _cancelled_amount(line, where, taxes_due=taxes_due)
            if line_state not in _INACTIVE_LINE_STATES:
                extra_taxes += shipping_taxes + product_taxes
                tax_total += product_taxes
            for refund in _list(line, "refunds", where):
                if isinstance(refund, Mapping) and refund.get("id") is not None:
                    refunds[str(refund["id"])] = refund

        amount_due = _amount(raw, "total_price")
        if taxes_due:
            amount_due += extra_taxes
        commission = _amount(raw, "total_commission")
        _check_minor(currency, total_price=amount_due, total_commission=commission,
                     taxes=tax_total, **{"refused and cancelled lines": aborted})  # fmt: skip
        return MiraklOrder(
            order_id=order_id,
            commercial_id=_text(raw, "commercial_id"),
            shop_id=_shop_id(raw.get("shop_id"), "shop_id"),
            state=state,
            currency=currency,
            created_date=created_date,
            created_at=parse_mirakl_datetime(created_date, field="created_date"),
            tax_mode=tax_mode,
            amount_due=amount_due,
            commission=commission,
            tax_total=tax_total,
            aborted_amount=aborted,
            is_validated=state not in PRODUCT_NOT_VALIDATED,
            is_aborted=state in PRODUCT_ABORTED,
            is_paid=bool(raw.get("customer_debited_date")),
            payment_id=_optional_text(raw, "transaction_number"),
            kind="product",
            refunds=refunds,
        )


def parse_service_order(raw: Mapping[str, Any], debit: Mapping[str, Any] | None) -> MiraklOrder:
    """Read an SOR11 order with its SPA11 debit and apply the service amount rules.

    * amount due = ``price.amount`` + options (``BOOLEAN`` amounts, ``VALUE_LIST`` value
      amounts) + ``price.taxes`` unless ``TAX_INCLUDED``;
    * commission = ``commission.amount_including_taxes`` (0 when absent);
    * tax total = ``price.taxes`` unless ``TAX_INCLUDED``, else 0;
    * aborted amount = the whole amount due when the order is aborted.

    SOR11 carries no payment data: the order is paid iff its debit's ``state`` is ``OK``, and
    the payment id is the debit's ``transaction_number``.
    """
    order_id = _order_id(raw, "id")
    with _for_item(order_id):
        tax_mode = _tax_mode(raw)
        currency = normalize_currency(_required(raw, "currency_code"))
        state = _text(raw, "state")
        created_date = _text(raw, "date_created")
        price = raw.get("price")
        if not isinstance(price, Mapping):
            raise InvalidItemError("price is missing" if price is None else "price is malformed")
        options = _ZERO
        for index, option in enumerate(_list(price, "options", "price")):
            where = f"price.options[{index}]"
            kind = option.get("type") if isinstance(option, Mapping) else None
            if kind == "BOOLEAN":
                options += _amount(option, "amount", where)
            elif kind == "VALUE_LIST":
                options += _sum_amounts(option, "values", where)
            # other option types carry no price (Mirakl and the incumbent ignore them)
        taxes = _sum_amounts(price, "taxes", "price")
        taxes_due = tax_mode != TAX_INCLUDED
        amount_due = _amount(price, "amount", "price") + options + (taxes if taxes_due else _ZERO)
        is_aborted = state in SERVICE_ABORTED

        shop = raw.get("shop")
        if shop is not None and not isinstance(shop, Mapping):
            raise InvalidItemError("shop is malformed")
        commission = _optional_commission(raw.get("commission"), "commission")
        _check_minor(currency, **{"price.amount": amount_due, "commission": commission})
        payment_id, is_paid = _service_payment(order_id, debit)
        refunds = {
            str(r["id"]): r
            for r in _list(raw, "refunds")
            if isinstance(r, Mapping) and r.get("id") is not None
        }
        return MiraklOrder(
            order_id=order_id,
            commercial_id=_text(raw, "commercial_order_id"),
            shop_id=_shop_id((shop or {}).get("id"), "shop.id"),
            state=state,
            currency=currency,
            created_date=created_date,
            created_at=parse_mirakl_datetime(created_date, field="date_created"),
            tax_mode=tax_mode,
            amount_due=amount_due,
            commission=commission,
            tax_total=taxes if taxes_due else _ZERO,
            aborted_amount=amount_due if is_aborted else _ZERO,
            is_validated=state not in SERVICE_NOT_VALIDATED,
            is_aborted=is_aborted,
            is_paid=is_paid,
            payment_id=payment_id,
            kind="service",
            refunds=refunds,
        )


def parse_mirakl_datetime(value: str, *, field: str = "date") -> datetime:
    """Parse a Mirakl ISO-8601 date-time into an aware ``datetime``.

    Lenient on the forms Mirakl and its SDKs emit: ``Z``, ``+01:00``, ``+0100``, with or without
    milliseconds. A value without an offset is refused: ordering checkpoints needs an instant.
    So is one outside :data:`EARLIEST`…:data:`LATEST`: no marketplace date is there, and year
    9999 (or 0001) overflows the date arithmetic done with it (time windows around an order).
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidItemError(f"{field} is missing")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidItemError(f"{field} is not an ISO-8601 date-time: {value!r}") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise InvalidItemError(f"{field} has no timezone offset: {value!r}")
    if not in_date_range(parsed):
        raise InvalidItemError(f"{field} is out of range: {value!r}")
    return parsed


def in_date_range(when: datetime) -> bool:
    """``when`` (aware) is between :data:`EARLIEST` and :data:`LATEST`, without overflowing."""
    try:
        return EARLIEST <= when.astimezone(UTC) < LATEST
    except OverflowError:  # year 9999 with a negative offset, year 1 with a positive one
        return False


def check_not_future(when: datetime, raw: str, *, now: datetime, field: str) -> None:
    """Refuse a Mirakl date more than :data:`MAX_CLOCK_SKEW` after ``now``.

    Checkpoints are the newest date seen: one order dated 2999 would move the checkpoint there
    and no later order would ever be read again. Such a date is bad data for its item.
    """
    if when > now + MAX_CLOCK_SKEW:
        raise InvalidItemError(f"{field} is in the future: {raw!r}")


# ---------------------------------------------------------------------- field readers


@contextmanager
def _for_item(order_id: str) -> Iterator[None]:
    """Attach ``order_id`` to any :class:`InvalidItemError` raised inside the block."""
    try:
        yield
    except InvalidItemError as exc:
        if exc.item_id:
            raise
        raise exc.for_item(order_id) from None


def _order_id(raw: Mapping[str, Any], key: str) -> str:
    if not isinstance(raw, Mapping):
        raise InvalidItemError(f"order is not an object: {type(raw).__name__}")
    value = raw.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidItemError(f"order {key} is missing")
    return _no_nul(str(value), key)


def _no_nul(value: str, name: str) -> str:
    """A NUL character is never real data, and PostgreSQL refuses any query that holds one."""
    if "\x00" in value:
        raise InvalidItemError(f"{name} contains a NUL character: {value!r}")
    return value


def _path(where: str | None, key: str) -> str:
    return f"{where}.{key}" if where else key


def _required(raw: Mapping[str, Any], key: str, where: str | None = None) -> Any:
    value = raw.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidItemError(f"{_path(where, key)} is missing")
    return value


def _text(raw: Mapping[str, Any], key: str, where: str | None = None) -> str:
    value = _required(raw, key, where)
    if not isinstance(value, str):
        raise InvalidItemError(f"{_path(where, key)} is not a string: {value!r}")
    return _no_nul(value.strip(), _path(where, key))


def _amount(raw: Mapping[str, Any], key: str, where: str | None = None) -> Decimal:
    name = _path(where, key)
    if raw.get(key) is None:
        raise InvalidItemError(f"{name} is missing")
    return parse_amount(raw[key], field=name)


def _check_minor(currency: str, **amounts: Decimal) -> None:
    """Each amount converts to minor units the ledger can hold (else the item fails, naming
    the field, instead of the database refusing the whole chunk)."""
    for name, amount in amounts.items():
        to_minor(amount, currency, field=name)


def _optional_text(raw: Mapping[str, Any], key: str, where: str | None = None) -> str | None:
    """An optional string field (a payment id): absent or blank is ``None``; a JSON number or
    anything else is an error, never turned into text that looks like an id."""
    value = raw.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise InvalidItemError(f"{_path(where, key)} is not a string: {value!r}")
    return _no_nul(value.strip(), _path(where, key))


def _list(raw: Mapping[str, Any], key: str, where: str | None = None) -> list[Any]:
    """An optional list field: absent or null is empty, anything else but a list is an error."""
    value = raw.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidItemError(f"{_path(where, key)} is not a list")
    return value


def _amount_items(raw: Mapping[str, Any], key: str, where: str | None) -> Iterator[Decimal]:
    for index, item in enumerate(_list(raw, key, where)):
        item_where = f"{_path(where, key)}[{index}]"
        if not isinstance(item, Mapping):
            raise InvalidItemError(f"{item_where} is not an object")
        yield _amount(item, "amount", item_where)


def _sum_amounts(raw: Mapping[str, Any], key: str, where: str | None = None) -> Decimal:
    """Σ ``amount`` of the entries of list ``key`` (taxes, option values); each must have one."""
    return sum(_amount_items(raw, key, where), _ZERO)


def _cancelled_amount(line: Mapping[str, Any], where: str, *, taxes_due: bool) -> Decimal:
    total = _ZERO
    for index, cancelation in enumerate(_list(line, "cancelations", where)):
        item_where = f"{where}.cancelations[{index}]"
        if not isinstance(cancelation, Mapping):
            raise InvalidItemError(f"{item_where} is not an object")
        total += _amount(cancelation, "amount", item_where)
        if taxes_due:
            total += _sum_amounts(cancelation, "shipping_taxes", item_where)
            total += _sum_amounts(cancelation, "taxes", item_where)
    return total


def _optional_commission(commission: Any, where: str) -> Decimal:
    """``commission.amount_including_taxes`` of service orders and refunds; 0 when absent."""
    if commission is None:
        return _ZERO
    if not isinstance(commission, Mapping):
        raise InvalidItemError(f"{where} is malformed")
    if commission.get("amount_including_taxes") is None:
        return _ZERO
    return _amount(commission, "amount_including_taxes", where)


def _tax_mode(raw: Mapping[str, Any]) -> str:
    """``order_tax_mode``; absent means ``TAX_EXCLUDED``, as Mirakl's default and the incumbent."""
    value = raw.get("order_tax_mode")
    if value is None:
        return TAX_EXCLUDED
    if value not in _TAX_MODES:
        raise InvalidItemError(f"order_tax_mode is unknown: {value!r}")
    return cast(str, value)  # one of _TAX_MODES


def _shop_id(value: Any, name: str) -> int | None:
    """Shop ids are int64; PA11 sends them as strings. Missing is allowed (the split holds it)."""
    return parse_int_id(value, field=name)


def _service_payment(order_id: str, debit: Mapping[str, Any] | None) -> tuple[str | None, bool]:
    if debit is None:
        return None, False
    if not isinstance(debit, Mapping):
        raise InvalidItemError("debit is malformed")
    debit_order = debit.get("order_id")
    if debit_order is not None and str(debit_order) != order_id:
        raise InvalidItemError(f"debit belongs to order {debit_order}, not to this order")
    return _optional_text(debit, "transaction_number", "debit"), debit.get("state") == "OK"
