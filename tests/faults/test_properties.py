"""Property tests: money conversion and the Mirakl order parsers under generated payloads.

The parsers sit between Mirakl's JSON and the money we move, so two things must hold for any
input: a well-formed order splits exactly (seller + commission + tax = amount due, in minor
units), and a malformed one is refused with ``InvalidItemError`` carrying a reason, never a
``KeyError``/``TypeError`` that would stop a whole batch.
"""

from __future__ import annotations

import copy
from decimal import Decimal, InvalidOperation

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mirakl_connector.core.errors import InvalidItemError, UnknownCurrencyError
from mirakl_connector.core.money import CURRENCY_EXPONENTS, from_minor, to_minor
from mirakl_connector.mirakl.orders import (
    MiraklOrder,
    parse_product_order,
    parse_service_order,
)


def examples(count: int) -> settings:
    """Settings for one property: ``count`` payloads, no deadline, no example database."""
    return settings(
        max_examples=count,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


CURRENCIES = sorted(CURRENCY_EXPONENTS)

# ---------------------------------------------------------------------- money


@examples(300)
@given(currency=st.sampled_from(CURRENCIES), minor=st.integers(-(10**12), 10**12))
def test_minor_units_round_trip_at_the_currency_exponent(currency: str, minor: int) -> None:
    exponent = CURRENCY_EXPONENTS[currency]
    amount = Decimal(minor).scaleb(-exponent)
    assert to_minor(amount, currency) == minor
    assert to_minor(str(amount), currency.lower()) == minor
    back = from_minor(minor, currency)
    assert back == amount
    assert back.as_tuple().exponent == -exponent  # quantized to the currency's precision
    assert to_minor(back, currency) == minor


@pytest.mark.parametrize("currency", CURRENCIES)
def test_every_currency_converts_with_its_own_exponent(currency: str) -> None:
    exponent = CURRENCY_EXPONENTS[currency]
    assert to_minor(Decimal(1), currency) == 10**exponent
    assert from_minor(10**exponent + 1, currency) == Decimal(1) + Decimal(1).scaleb(-exponent)


@examples(100)
@given(currency=st.sampled_from(CURRENCIES), value=st.floats(allow_nan=True))
def test_floats_are_refused(currency: str, value: float) -> None:
    with pytest.raises(InvalidItemError) as info:
        to_minor(value, currency)
    assert "float" in info.value.reason


def _not_a_finite_number(text: str) -> bool:
    try:
        return not Decimal(text.strip()).is_finite()
    except InvalidOperation:
        return True


@examples(100)
@given(currency=st.sampled_from(CURRENCIES), text=st.text(max_size=20).filter(_not_a_finite_number))
def test_garbage_strings_are_refused_with_a_reason(currency: str, text: str) -> None:
    with pytest.raises(InvalidItemError) as info:
        to_minor(text, currency, field="total_price")
    assert "total_price" in info.value.reason


# ---------------------------------------------------------------------- order strategies

DATES = st.sampled_from(
    ["2026-11-01T10:00:00Z", "2026-11-01T10:00:00.123+01:00", "2026-11-02T08:30:00+0100"]
)
TAX_MODES = st.sampled_from([None, "TAX_INCLUDED", "TAX_EXCLUDED"])


@st.composite
def money(draw, exponent: int, max_minor: int = 10**7) -> Decimal:
    """A non-negative amount at the currency's precision, as the Mirakl client parses it."""
    return Decimal(draw(st.integers(0, max_minor))).scaleb(-exponent)


@st.composite
def product_orders(draw) -> tuple[dict, int]:
    """A well-formed OR11 order and its expected amount due in minor units."""
    currency = draw(st.sampled_from(CURRENCIES))
    exp = CURRENCY_EXPONENTS[currency]
    tax_mode = draw(TAX_MODES)
    lines, extra_minor = [], 0
    for index in range(draw(st.integers(0, 4))):
        state = draw(st.sampled_from(["SHIPPING", "SHIPPED", "RECEIVED", "REFUSED", "CANCELED"]))
        taxes = [
            {"amount": draw(money(exp, 10**5)), "code": "VAT"}
            for _ in range(draw(st.integers(0, 2)))
        ]
        shipping = [{"amount": draw(money(exp, 10**4))} for _ in range(draw(st.integers(0, 2)))]
        line = {
            "order_line_id": f"L{index}",
            "order_line_state": state,
            "total_price": draw(money(exp)),
            "taxes": taxes,
            "shipping_taxes": shipping,
        }
        if state == "CANCELED":
            line["cancelations"] = [{"amount": draw(money(exp)), "taxes": [], "shipping_taxes": []}]
        lines.append(line)
        if state not in ("REFUSED", "CANCELED"):
            extra_minor += sum(to_minor(t["amount"], currency) for t in taxes + shipping)
    total = draw(money(exp))
    raw = {
        "order_id": draw(st.from_regex(r"ORD-[0-9]{1,6}-[A-Z]", fullmatch=True)),
        "commercial_id": "CO-1",
        "currency_iso_code": draw(st.sampled_from([currency, currency.lower()])),
        "order_state": draw(st.sampled_from(["SHIPPING", "SHIPPED", "WAITING_DEBIT", "CLOSED"])),
        "created_date": draw(DATES),
        "shop_id": draw(st.sampled_from([1, "42", None])),
        "total_price": total,
        "total_commission": draw(money(exp)),
        "order_lines": lines,
    }
    if tax_mode is not None:
        raw["order_tax_mode"] = tax_mode
    expected = to_minor(total, currency) + (0 if tax_mode == "TAX_INCLUDED" else extra_minor)
    return raw, expected


@st.composite
def service_orders(draw) -> tuple[dict, dict | None, int]:
    """A well-formed SOR11 order, its SPA11 debit and the expected amount due in minor units."""
    currency = draw(st.sampled_from(CURRENCIES))
    exp = CURRENCY_EXPONENTS[currency]
    tax_mode = draw(TAX_MODES)
    options, options_minor = [], 0
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["BOOLEAN", "VALUE_LIST", "STRING"]))
        if kind == "BOOLEAN":
            amount = draw(money(exp, 10**5))
            options.append({"type": kind, "amount": amount})
            options_minor += to_minor(amount, currency)
        elif kind == "VALUE_LIST":
            values = [{"amount": draw(money(exp, 10**5))} for _ in range(draw(st.integers(0, 2)))]
            options.append({"type": kind, "values": values})
            options_minor += sum(to_minor(v["amount"], currency) for v in values)
        else:
            options.append({"type": kind, "value": "blue"})
    taxes = [{"amount": draw(money(exp, 10**5))} for _ in range(draw(st.integers(0, 2)))]
    price = draw(money(exp))
    commission = draw(
        st.one_of(
            st.none(), st.builds(dict), money(exp).map(lambda a: {"amount_including_taxes": a})
        )
    )
    order_id = draw(st.from_regex(r"SRV-[0-9]{1,6}-[A-Z]", fullmatch=True))
    raw = {
        "id": order_id,
        "commercial_order_id": "SCO-1",
        "currency_code": currency,
        "state": draw(st.sampled_from(["ORDER_ACCEPTED", "WAITING_DEBIT", "ORDER_CANCELLED"])),
        "date_created": draw(DATES),
        "price": {"amount": price, "options": options, "taxes": taxes},
        "commission": commission,
        "shop": draw(st.sampled_from([None, {"id": 3}, {"id": "7"}])),
    }
    if tax_mode is not None:
        raw["order_tax_mode"] = tax_mode
    debit = draw(
        st.sampled_from(
            [None, {"order_id": order_id, "transaction_number": "pi_1", "state": "OK"}, {}]
        )
    )
    taxes_minor = (
        0 if tax_mode == "TAX_INCLUDED" else sum(to_minor(t["amount"], currency) for t in taxes)
    )
    return raw, debit, to_minor(price, currency) + options_minor + taxes_minor


def _assert_split_adds_up(order: MiraklOrder, expected_due: int) -> None:
    assert order.amount_due_minor() == expected_due
    assert (
        order.seller_amount_minor(tax_split=True)
        + order.commission_minor()
        + order.tax_amount_minor()
        == order.amount_due_minor()
    )
    assert order.seller_amount_minor(tax_split=False) + order.commission_minor() == expected_due


@pytest.mark.slow  # hundreds of generated payloads
@examples(200)
@given(case=product_orders())
def test_well_formed_product_orders_split_exactly(case: tuple[dict, int]) -> None:
    raw, expected = case
    order = parse_product_order(raw)
    assert order.kind == "product" and order.currency == raw["currency_iso_code"].upper()
    _assert_split_adds_up(order, expected)


@pytest.mark.slow  # hundreds of generated payloads
@examples(200)
@given(case=service_orders())
def test_well_formed_service_orders_split_exactly(case: tuple[dict, dict | None, int]) -> None:
    raw, debit, expected = case
    order = parse_service_order(raw, debit)
    assert order.kind == "service"
    assert order.is_paid == bool(debit and debit.get("state") == "OK")
    _assert_split_adds_up(order, expected)


# ---------------------------------------------------------------------- malformed orders

GARBAGE = st.one_of(
    st.none(),
    st.floats(allow_nan=True),
    st.integers(-(10**6), 10**6),
    st.decimals(min_value=-(10**6), max_value=Decimal("-0.01"), places=2),
    st.booleans(),
    st.text(max_size=8),
    st.sampled_from(["", "  ", "XXX", "EURO", "not-a-date", "2026-11-01T10:00:00", "NaN"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.just([None, 3, "line"]),
)


def _paths(value: object, prefix: tuple = ()) -> list[tuple]:
    """Every key/index path in a JSON-like payload (where a fault can be injected)."""
    found = []
    if isinstance(value, dict):
        for key, child in value.items():
            found.append((*prefix, key))
            found.extend(_paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.append((*prefix, index))
            found.extend(_paths(child, (*prefix, index)))
    return found


@st.composite
def corrupted(draw, payload: dict) -> dict:
    """``payload`` with one to three fields deleted or replaced by garbage."""
    payload = copy.deepcopy(payload)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(payload)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = payload
        for step in path[:-1]:
            parent = parent[step]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = copy.deepcopy(draw(GARBAGE))  # st.just values are shared
    return payload


def _parses_or_refuses(parse, *args) -> MiraklOrder | None:
    try:
        return parse(*args)
    except InvalidItemError as exc:
        assert isinstance(exc.reason, str) and exc.reason.strip()
        return None


@pytest.mark.slow  # hundreds of generated payloads
@examples(300)
@given(data=st.data())
def test_malformed_product_orders_only_ever_raise_invalid_item(data) -> None:
    raw, _ = data.draw(product_orders())
    _parses_or_refuses(parse_product_order, data.draw(corrupted(raw)))


@pytest.mark.slow  # hundreds of generated payloads
@examples(300)
@given(data=st.data())
def test_malformed_service_orders_only_ever_raise_invalid_item(data) -> None:
    raw, debit, _ = data.draw(service_orders())
    bad_debit = data.draw(st.one_of(st.just(debit), GARBAGE))
    _parses_or_refuses(parse_service_order, data.draw(corrupted(raw)), bad_debit)


@examples(100)
@given(
    case=product_orders(),
    field=st.sampled_from(["total_price", "total_commission"]),
    bad=st.one_of(st.floats(), st.none(), st.sampled_from(["abc", "", [], {}])),
)
def test_a_bad_order_amount_is_refused_naming_the_field(case, field: str, bad) -> None:
    raw, _ = case
    raw[field] = bad
    with pytest.raises(InvalidItemError) as info:
        parse_product_order(raw)
    assert field in info.value.reason and info.value.item_id == raw["order_id"]


@examples(50)
@given(case=product_orders(), code=st.sampled_from(["XXX", "EURO", "US", "BTC", "ZZZ"]))
def test_unknown_currency_is_refused(case, code: str) -> None:
    raw, _ = case
    raw["currency_iso_code"] = code
    with pytest.raises(UnknownCurrencyError) as info:
        parse_product_order(raw)
    assert info.value.reason and info.value.item_id == raw["order_id"]


@examples(50)
@given(
    case=product_orders(), line=st.one_of(st.none(), st.integers(), st.text(), st.lists(st.none()))
)
def test_a_non_object_line_is_refused(case, line) -> None:
    raw, _ = case
    raw["order_lines"] = [*raw["order_lines"], line]
    with pytest.raises(InvalidItemError, match=r"order_lines\[\d+\] is not an object"):
        parse_product_order(raw)


def test_absurdly_large_amount_is_an_item_error_not_a_crash():
    from mirakl_connector.core.errors import InvalidItemError as _InvalidItemError
    from mirakl_connector.core.money import to_minor as _to_minor

    with pytest.raises(_InvalidItemError, match="out of range"):
        _to_minor("1e40", "EUR")
