"""A PENDING row's field, checked present right before it is sent to Stripe."""

from __future__ import annotations

from typing import TypeVar

from mirakl_connector.core.errors import InvalidItemError

T = TypeVar("T")


def present(value: T | None, field: str, item_id: str) -> T:
    """``value``, or :class:`InvalidItemError` (the item fails, nothing is sent) when missing.

    Each send step checks a PENDING row's fields before it writes anything (a row without them
    is recorded FAILED, never sent); this guard sits at the Stripe call itself, so that the
    call can never go out with a missing amount, currency or account should that check change.
    """
    if value is None:
        raise InvalidItemError(
            f"PENDING row lacks {field}: nothing sent to Stripe", item_id=item_id
        )
    return value
