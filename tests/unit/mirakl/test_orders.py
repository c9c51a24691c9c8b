"""Amount rules and parsing of Mirakl product (OR11) and service (SOR11 + SPA11) orders."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mirakl_connector.core.errors import InvalidItemError, UnknownCurrencyError
from mirakl_connector.mirakl.orders import (
    parse_mirakl_datetime,
    parse_product_order,
    parse_service_order,
)


def product_order(**overrides) -> dict:
    """The OR11 sample of the incumbent's test suite (two shipping lines, EUR, tax excluded)."""
    order = {
        "order_id": "ORD-1-A",
        "commercial_id": "ORD-1",
        "created_date": "2019-01-02T00:00:00+0100",
        "customer_debited_date": "2019-01-02T10:00:00+0100",
        "currency_iso_code": "EUR",
        "order_state": "SHIPPING",
        "order_tax_mode": "TAX_EXCLUDED",
        "shop_id": 1,
        "total_commission": D("3.99"),
        "total_price": D("69.12"),
        "transaction_number": "ch_basic",
        "order_lines": [
            {
                "order_line_id": "ORD-1-A-1",
                "order_line_state": "SHIPPING",
                "total_price": D("12.34"),
                "shipping_taxes": [{"amount": D("1.12")}, {"amount": D("1.34")}],
                "taxes": [{"amount": D("1.56")}, {"amount": D("1.78")}],
                "refunds": [
                    {
                        "id": "1000",
                        "amount": D("12.34"),
                        "commission_total_amount": D("1.23"),
                        "shipping_taxes": [{"amount": D("0.50")}],
                        "taxes": [{"amount": D("0.70")}],
                    }
                ],
            },
            {
                "order_line_id": "ORD-1-A-2",
                "order_line_state": "SHIPPING",
                "total_price": D("56.78"),
                "shipping_taxes": [{"amount": D("2.12")}, {"amount": D("2.34")}],
                "taxes": [{"amount": D("2.56")}, {"amount": D("2.78")}],
            },
        ],
    }
    order.update(overrides)
    return order


def service_order(**overrides) -> dict:
    order = {
        "id": "SRV-1-A",
        "commercial_order_id": "SRV-1",
        "date_created": "2019-01-02T00:00:00.000+01:00",
        "currency_code": "EUR",
        "state": "ORDER_PENDING",
        "order_tax_mode": "TAX_EXCLUDED",
        "shop": {"id": 1},
        "commission": {"amount_including_taxes": D("3.99")},
        "price": {
            "amount": D("12.34"),
            "options": [
                {"type": "BOOLEAN", "amount": D("1.12")},
                {"type": "VALUE_LIST", "values": [{"amount": D("1.34")}, {"amount": D("0.50")}]},
            ],
            "taxes": [{"amount": D("1.56")}, {"amount": D("1.78")}],
        },
        "refunds": [
            {"id": 2000, "amount": D("12.34"), "commission": {"amount_including_taxes": 1}}
        ],
    }
    order.update(overrides)
    return order


DEBIT_OK = {"order_id": "SRV-1-A", "state": "OK", "transaction_number": "ch_basic"}


def invalid(fn, *args) -> InvalidItemError:
    with pytest.raises(InvalidItemError) as raised:
        fn(*args)
    return raised.value


# ---------------------------------------------------------------------- product amounts


def test_product_tax_excluded_adds_line_and_shipping_taxes():
    order = parse_product_order(product_order())

    # 69.12 + (1.12 + 1.34 + 1.56 + 1.78) + (2.12 + 2.34 + 2.56 + 2.78)
    assert order.amount_due == D("84.72")
    assert order.commission == D("3.99")
    assert order.tax_total == D("8.68")  # 1.56 + 1.78 + 2.56 + 2.78, shipping taxes excluded
    assert order.aborted_amount == 0
    assert order.amount_due_minor() == 8472
    assert order.seller_amount_minor(tax_split=False) == 8073
    assert order.seller_amount_minor(tax_split=True) == 7205
    assert order.tax_amount_minor() == 868


def test_product_tax_included_adds_nothing_but_still_splits_tax():
    order = parse_product_order(product_order(order_tax_mode="TAX_INCLUDED"))

    assert order.amount_due == D("69.12")
    assert order.tax_total == D("8.68")
    assert order.seller_amount_minor(tax_split=False) == 6513
    assert order.seller_amount_minor(tax_split=True) == 6513 - 868


def test_product_missing_tax_mode_counts_as_tax_excluded():
    raw = product_order()
    del raw["order_tax_mode"]

    order = parse_product_order(raw)

    assert order.tax_mode == "TAX_EXCLUDED"
    assert order.amount_due == D("84.72")


def refused_second_line(tax_mode: str) -> dict:
    raw = product_order(order_tax_mode=tax_mode, total_price=D("12.34"))  # Mirakl drops the line
    raw["order_lines"][1]["order_line_state"] = "REFUSED"
    return raw


def test_product_refused_line_is_excluded_and_aborted():
    order = parse_product_order(refused_second_line("TAX_EXCLUDED"))

    assert order.amount_due == D("12.34") + D("5.80")
    assert order.tax_total == D("3.34")
    assert order.aborted_amount == D("56.78") + D("9.80")  # line price + its taxes
    assert order.aborted_amount_minor() == 6658
    assert not order.is_aborted and order.is_validated


def test_product_refused_line_tax_included_aborts_price_only():
    order = parse_product_order(refused_second_line("TAX_INCLUDED"))

    assert order.amount_due == D("12.34")
    assert order.aborted_amount == D("56.78")


def cancelled_second_line(tax_mode: str) -> dict:
    raw = product_order(order_tax_mode=tax_mode, total_price=D("12.34"))
    raw["order_lines"][1] = {
        "order_line_id": "ORD-1-A-2",
        "order_line_state": "CANCELED",
        "total_price": D("0"),
        "shipping_taxes": [],
        "taxes": [],
        "cancelations": [
            {
                "amount": D("50.00"),
                "shipping_taxes": [{"amount": D("2.12")}],
                "taxes": [{"amount": D("2.56")}],
            },
            {"amount": D("6.78"), "taxes": [{"amount": D("0.22")}]},
        ],
    }
    return raw


def test_product_cancelled_line_aborts_its_cancelations_with_taxes():
    order = parse_product_order(cancelled_second_line("TAX_EXCLUDED"))

    assert order.aborted_amount == D("50.00") + D("2.12") + D("2.56") + D("6.78") + D("0.22")
    assert order.amount_due == D("12.34") + D("5.80")
    assert order.tax_total == D("3.34")


def test_product_cancelled_line_tax_included_aborts_amounts_only():
    order = parse_product_order(cancelled_second_line("TAX_INCLUDED"))

    assert order.aborted_amount == D("56.78")


def test_product_without_lines_is_allowed():
    order = parse_product_order(product_order(order_lines=[]))

    assert order.amount_due == D("69.12")
    assert order.tax_total == 0


def test_product_jpy_has_no_decimals():
    raw = product_order(
        currency_iso_code="jpy",
        total_price=1500,
        total_commission=D("165"),
        order_lines=[{"order_line_state": "SHIPPING", "taxes": [{"amount": 150}]}],
    )

    order = parse_product_order(raw)

    assert order.currency == "JPY"
    assert order.amount_due_minor() == 1650
    assert order.seller_amount_minor(tax_split=False) == 1485
    assert order.seller_amount_minor(tax_split=True) == 1335
    assert order.tax_amount_minor() == 150


def test_product_kwd_has_three_decimals():
    raw = product_order(
        currency_iso_code="KWD",
        total_price="12.345",
        total_commission="1.234",
        order_lines=[{"order_line_state": "SHIPPING", "taxes": [{"amount": "0.617"}]}],
    )

    order = parse_product_order(raw)

    assert order.amount_due == D("12.962")
    assert order.amount_due_minor() == 12962
    assert order.seller_amount_minor(tax_split=False) == 11728
    assert order.tax_amount_minor() == 617


@pytest.mark.parametrize(
    ("state", "validated", "aborted"),
    [
        ("STAGING", False, False),
        ("WAITING_ACCEPTANCE", False, False),
        ("WAITING_DEBIT", False, False),
        ("WAITING_DEBIT_PAYMENT", False, False),
        ("SHIPPING", True, False),
        ("CLOSED", True, False),
        ("REFUSED", True, True),
        ("CANCELED", True, True),
    ],
)
def test_product_states(state, validated, aborted):
    order = parse_product_order(product_order(order_state=state))

    assert (order.is_validated, order.is_aborted) == (validated, aborted)


def test_product_payment_fields():
    paid = parse_product_order(product_order())
    unpaid = parse_product_order(product_order(customer_debited_date=None, transaction_number=""))

    assert (paid.is_paid, paid.payment_id) == (True, "ch_basic")
    assert (unpaid.is_paid, unpaid.payment_id) == (False, None)
    assert paid.kind == "product"
    assert paid.commercial_id == "ORD-1"
    assert paid.shop_id == 1
    assert paid.created_date == "2019-01-02T00:00:00+0100"
    assert paid.created_at == datetime(2019, 1, 1, 23, 0, tzinfo=UTC)


def test_product_refund_part():
    order = parse_product_order(product_order())

    part = order.refund("1000")

    assert (part.refund_id, part.amount, part.commission, part.tax) == (
        "1000",
        D("12.34"),
        D("1.23"),
        D("1.20"),
    )
    assert part.amount_minor() == 1234
    assert part.seller_amount_minor(tax_split=False) == 1111
    assert part.seller_amount_minor(tax_split=True) == 991


def test_unknown_refund_is_an_invalid_item():
    error = invalid(parse_product_order(product_order()).refund, "9999")

    assert error.item_id == "ORD-1-A"
    assert "9999" in error.reason


# ---------------------------------------------------------------------- service amounts


def test_service_amount_adds_options_and_taxes():
    order = parse_service_order(service_order(), DEBIT_OK)

    # 12.34 + 1.12 + (1.34 + 0.50) + (1.56 + 1.78)
    assert order.amount_due == D("18.64")
    assert order.commission == D("3.99")
    assert order.tax_total == D("3.34")
    assert order.seller_amount_minor(tax_split=False) == 1465
    assert order.seller_amount_minor(tax_split=True) == 1131
    assert order.tax_amount_minor() == 334
    assert order.aborted_amount == 0
    assert order.kind == "service"
    assert (order.shop_id, order.commercial_id) == (1, "SRV-1")


def test_service_tax_included_has_no_tax_total():
    order = parse_service_order(service_order(order_tax_mode="TAX_INCLUDED"), DEBIT_OK)

    assert order.amount_due == D("15.30")
    assert order.tax_total == 0
    assert order.seller_amount_minor(tax_split=True) == 1131


def test_service_without_commission_or_options():
    raw = service_order(price={"amount": D("10.00")})
    del raw["commission"]

    order = parse_service_order(raw, DEBIT_OK)

    assert order.amount_due == D("10.00")
    assert order.commission == 0
    assert order.seller_amount_minor(tax_split=False) == 1000


def test_service_paid_only_when_debit_is_ok():
    waiting = {"order_id": "SRV-1-A", "state": "WAITING"}

    assert parse_service_order(service_order(), DEBIT_OK).payment_id == "ch_basic"
    assert parse_service_order(service_order(), DEBIT_OK).is_paid
    assert not parse_service_order(service_order(), waiting).is_paid
    assert parse_service_order(service_order(), waiting).payment_id is None
    assert not parse_service_order(service_order(), None).is_paid


def test_service_debit_of_another_order_is_refused():
    error = invalid(parse_service_order, service_order(), {"order_id": "SRV-9-A", "state": "OK"})

    assert error.item_id == "SRV-1-A"
    assert "SRV-9-A" in error.reason


@pytest.mark.parametrize(
    ("state", "validated", "aborted"),
    [
        ("WAITING_SCORING", False, False),
        ("WAITING_ACCEPTANCE", False, False),
        ("WAITING_DEBIT_PAYMENT", False, False),
        ("ORDER_PENDING", True, False),
        ("ORDER_ACCEPTED", True, False),
        ("ORDER_CLOSED", True, False),
        ("ORDER_REFUSED", True, True),
        ("ORDER_EXPIRED", True, True),
        ("ORDER_CANCELLED", True, True),
    ],
)
def test_service_states(state, validated, aborted):
    order = parse_service_order(service_order(state=state), None)

    assert (order.is_validated, order.is_aborted) == (validated, aborted)
    assert order.aborted_amount == (order.amount_due if aborted else 0)


def test_service_refund_part():
    order = parse_service_order(service_order(), DEBIT_OK)

    part = order.refund("2000")

    assert (part.amount, part.commission, part.tax) == (D("12.34"), D("1"), D("0"))
    assert part.seller_amount_minor(tax_split=False) == 1134


# ---------------------------------------------------------------------- malformed orders


def test_missing_total_price_names_order_and_field():
    raw = product_order()
    del raw["total_price"]

    error = invalid(parse_product_order, raw)

    assert error.item_id == "ORD-1-A"
    assert error.reason == "total_price is missing"
    assert str(error) == "ORD-1-A: total_price is missing"


def test_unknown_currency():
    with pytest.raises(UnknownCurrencyError) as raised:
        parse_product_order(product_order(currency_iso_code="XXX"))

    assert raised.value.item_id == "ORD-1-A"
    assert "unknown currency 'XXX'" in raised.value.reason


def test_float_amount_is_refused():
    error = invalid(parse_product_order, product_order(total_commission=3.99))

    assert error.item_id == "ORD-1-A"
    assert "total_commission" in error.reason
    assert "float" in error.reason


def test_missing_tax_amount_names_the_line_and_tax():
    raw = product_order()
    raw["order_lines"][0]["taxes"][1] = {"code": "EXP_TAX"}

    error = invalid(parse_product_order, raw)

    assert error.item_id == "ORD-1-A"
    assert error.reason == "order_lines[0].taxes[1].amount is missing"


def test_shop_id_missing_is_none_but_non_numeric_is_an_error():
    raw = product_order()
    del raw["shop_id"]

    assert parse_product_order(raw).shop_id is None
    assert parse_product_order(product_order(shop_id="42")).shop_id == 42
    error = invalid(parse_product_order, product_order(shop_id="shop-1"))
    assert error.item_id == "ORD-1-A"
    assert "shop_id" in error.reason
    service_error = invalid(parse_service_order, service_order(shop={"id": "x"}), None)
    assert "shop.id" in service_error.reason


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("order_lines", None, "order_lines is missing"),
        ("order_state", None, "order_state is missing"),
        ("commercial_id", None, "commercial_id is missing"),
        ("created_date", "yesterday", "created_date is not an ISO-8601 date-time: 'yesterday'"),
        ("created_date", "2019-01-02T00:00:00", "created_date has no timezone offset"),
        ("order_tax_mode", "TAX_FREE", "order_tax_mode is unknown: 'TAX_FREE'"),
        ("total_price", "12,34", "total_price is not a number: '12,34'"),
    ],
)
def test_malformed_product_fields(field, value, expected):
    raw = product_order(**{field: value})

    error = invalid(parse_product_order, raw)

    assert error.item_id == "ORD-1-A"
    assert error.reason.startswith(expected)


def test_missing_order_id():
    raw = product_order()
    del raw["order_id"]

    assert "order_id is missing" in str(invalid(parse_product_order, raw))


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda o: o.pop("price"), "price is missing"),
        (lambda o: o["price"].pop("amount"), "price.amount is missing"),
        (lambda o: o["price"]["taxes"].append({}), "price.taxes[2].amount is missing"),
        (lambda o: o.update(currency_code="EURO"), "unknown currency 'EURO'"),
        (
            lambda o: o["price"]["options"][1]["values"].append({"amount": 1.5}),
            "price.options[1].values[2].amount must be a decimal",
        ),
    ],
)
def test_malformed_service_fields(mutate, expected):
    raw = copy.deepcopy(service_order())
    mutate(raw)

    error = invalid(parse_service_order, raw, None)

    assert error.item_id == "SRV-1-A"
    assert error.reason.startswith(expected)


# ---------------------------------------------------------------------- dates and invariants


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-04-29T10:30:30Z", datetime(2025, 4, 29, 10, 30, 30, tzinfo=UTC)),
        (
            "2025-04-29T11:30:25.040Z",
            datetime(2025, 4, 29, 11, 30, 25, 40000, tzinfo=UTC),
        ),
        (
            "2019-01-02T00:00:00+0100",
            datetime(2019, 1, 2, tzinfo=timezone(timedelta(hours=1))),
        ),
        (
            "2019-01-02T00:00:00.000+01:00",
            datetime(2019, 1, 2, tzinfo=timezone(timedelta(hours=1))),
        ),
    ],
)
def test_parse_mirakl_datetime(value, expected):
    parsed = parse_mirakl_datetime(value)

    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset()


@given(
    total=st.decimals(min_value=0, max_value=10**6, places=2),
    commission=st.decimals(min_value=0, max_value=10**4, places=2),
    tax=st.decimals(min_value=0, max_value=10**4, places=2),
)
def test_split_parts_add_up_to_amount_due(total, commission, tax):
    raw = product_order(
        total_price=total,
        total_commission=commission,
        order_lines=[{"order_line_state": "SHIPPING", "taxes": [{"amount": tax}]}],
    )

    order = parse_product_order(raw)

    parts = order.seller_amount_minor(tax_split=True) + order.tax_amount_minor()
    assert parts + order.commission_minor() == order.amount_due_minor()
