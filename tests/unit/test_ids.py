"""Issue 11 points 3 and 8: Mirakl integer ids are ASCII digits within 64 bits, everywhere."""

from __future__ import annotations

import pytest

from mirakl_connector.core.errors import ConfigurationError, InvalidItemError
from mirakl_connector.core.ids import MAX_INT64, parse_int_id
from mirakl_connector.stripe.onboarding import shop_id_of
from mirakl_connector.stripe.settlement import parse_shop_id

BAD = ["１", "²", "1_000", "-1", " +7", "1e3", 2**63, -1, True, 1.0, [1]]


@pytest.mark.parametrize("value", BAD, ids=repr)
def test_anything_but_ascii_digits_within_64_bits_is_refused_naming_the_field(value):
    with pytest.raises(InvalidItemError, match=r"^shop_id is (not numeric|out of range)"):
        parse_int_id(value, field="shop_id")
    with pytest.raises(InvalidItemError, match="shop_id"):
        shop_id_of({"shop_id": value})  # onboarding: "１" used to map shop 1's account
    with pytest.raises(ConfigurationError, match="param 'shop_id'"):
        parse_shop_id(value)


@pytest.mark.parametrize(("value", "expected"), [(1, 1), ("42", 42), (" 7 ", 7),
                                                 (MAX_INT64, MAX_INT64), ("0", 0)])  # fmt: skip
def test_real_ids_are_read(value, expected):
    assert parse_int_id(value, field="shop_id") == expected
    assert shop_id_of({"shop_id": value}) == expected


def test_missing_is_none_unless_required():
    assert parse_int_id(None, field="shop_id") is None
    assert parse_int_id(" ", field="shop_id") is None
    with pytest.raises(InvalidItemError, match="shop_id is missing"):
        parse_int_id(None, field="shop_id", optional=False)
