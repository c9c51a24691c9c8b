"""Mirakl ids read from the wire or from a run's params: one set of rules for every workflow.

Mirakl's shop and invoice ids are 64-bit integers (JSON numbers, or strings of digits in some
endpoints); order, refund and commercial ids are strings. Python is more lenient than that on
its own: ``"²".isdigit()`` and ``"１".isdigit()`` are true, ``int("１")`` is 1 and ``int("1_0")``
is 10, and nothing stops a number larger than the ledger's 64-bit columns. A lenient parser pays
the wrong shop (a full-width ``"１"`` read as shop 1) or blocks a whole batch at the database, so
every id goes through here and a bad one fails its own item with a reason naming it.
"""

from __future__ import annotations

from typing import Any

from mirakl_connector.core.errors import InvalidItemError

#: The largest value of a 64-bit signed integer column (PostgreSQL ``bigint``, SQLite INTEGER).
MAX_INT64 = 2**63 - 1

#: Characters that separate ids in Mirakl list queries (``order_ids=A,B``) or in a run's params.
ID_SEPARATORS = frozenset(",;\n\r\t")


def is_ascii_digits(text: str) -> bool:
    """``"123"`` yes; ``"１"``, ``"²"``, ``"-1"``, ``"1_0"``, ``""`` no."""
    return text.isascii() and text.isdigit()


def parse_int_id(value: Any, *, field: str, optional: bool = True) -> int | None:
    """A Mirakl integer id (JSON integer or string of ASCII digits) within 0 … 2^63 − 1.

    :param optional: missing (``None`` or blank) gives ``None`` instead of an error.
    :raises InvalidItemError: naming ``field`` and the value.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        if optional:
            return None
        raise InvalidItemError(f"{field} is missing")
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and is_ascii_digits(value.strip()):
        number = int(value.strip())
    else:
        raise InvalidItemError(f"{field} is not numeric: {value!r}")
    if not 0 <= number <= MAX_INT64:
        raise InvalidItemError(f"{field} is out of range: {value!r}")
    return number


def check_id_list_entry(value: str, *, field: str) -> str:
    """One entry of an ``*_ids`` list, refused when it holds a separator.

    Mirakl list queries join ids with commas, so an id ``"A,B"`` would silently widen the run to
    orders ``A`` and ``B``; a list entry that holds a separator is a mistake to name, not guess.
    """
    found = sorted(ch for ch in set(value) if ch in ID_SEPARATORS)
    if found:
        shown = ", ".join(repr(ch) for ch in found)
        raise InvalidItemError(
            f"{field}: {value!r} contains a separator ({shown}); give one id per entry"
        )
    return value
