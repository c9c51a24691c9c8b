"""What a Mirakl shop and a configured program tell the Hyperwallet payments (pure).

A shop's Hyperwallet side is three S20 additional fields (its program, its user token, its bank
account token); a program's, the tokens configured for it. Read here once, for the payment plan
(:mod:`.payment_decisions`) and the notification checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from mirakl_connector.core.ids import parse_int_id

PROGRAM_FIELD = "hw-program"
USER_TOKEN_FIELD = "hw-user-token"
BANK_ACCOUNT_TOKEN_FIELD = "hw-bankaccount-token"


@dataclass(frozen=True)
class ShopTokens:
    """What a Mirakl shop tells us about its Hyperwallet side (S20 additional fields)."""

    shop_id: int
    program: str | None
    user_token: str | None
    bank_account_token: str | None
    terminated: bool = False


def shop_tokens(shop: Mapping[str, Any]) -> ShopTokens:
    """The Hyperwallet fields of an S20 shop."""
    fields: dict[str, Any] = {}
    for entry in shop.get("shop_additional_fields") or []:
        if isinstance(entry, Mapping) and entry.get("code"):
            fields[str(entry["code"])] = entry.get("value")
    return ShopTokens(
        # not optional: parse_int_id raises rather than return None
        shop_id=cast(int, parse_int_id(shop.get("shop_id"), field="shop_id", optional=False)),
        program=clean_text(fields.get(PROGRAM_FIELD)),
        user_token=clean_text(fields.get(USER_TOKEN_FIELD)),
        bank_account_token=clean_text(fields.get(BANK_ACCOUNT_TOKEN_FIELD)),
        terminated=upper_text(shop.get("shop_state")) == "TERMINATED",
    )


@dataclass(frozen=True)
class ProgramTokens:
    """What the plan needs of a configured program (see ``hyperwallet.programs.Program``)."""

    name: str
    payment_token: str | None
    bank_account_token: str | None  # the operator's trm- for the commission
    ignored: bool = False


def clean_text(value: Any) -> str | None:
    """``value`` as text without surrounding blanks; ``None`` when nothing is left."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def upper_text(value: Any) -> str | None:
    """:func:`clean_text` in upper case (Mirakl states: ``"terminated "`` is TERMINATED)."""
    text = clean_text(value)
    return text.upper() if text else None
