"""A Mirakl shop's bank details as a Hyperwallet bank account (pure rules, no API calls).

Four Mirakl ``payment_info`` types are supported (transfer method country → Hyperwallet fields):

* ``IBAN``: the IBAN's first two letters; ``bankId`` = BIC, ``bankAccountId`` = IBAN.
* ``ABA``: ``US``; ``branchId`` = routing number, ``bankAccountId`` = account number,
  ``bankAccountPurpose`` = CHECKING, ``postalCode`` = bank zip, ``stateProvince`` = the shop
  field ``hw-bankaccount-state``.
* ``CANADIAN``: ``CA``; ``bankId`` = institution number, ``branchId`` = transit number,
  ``bankAccountId`` = account number.
* ``UK``: ``GB``; ``bankId`` = sort code, ``bankAccountId`` = account number (a GB *IBAN* is an
  IBAN account).

Hyperwallet never changes a transfer method's country or type, so a Mirakl change from a US
account to an IBAN, or from an Italian to a Spanish IBAN, needs a *new* account: the existing
Hyperwallet account is *compatible* only when type and country are the same. A malformed IBAN or
an unknown contact country fails that shop only (:class:`InvalidItemError`), where the incumbent
failed the whole run.

Account numbers are secrets of the seller: only :func:`mask` of them reaches a log, a summary or
an error message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.hyperwallet.countries import to_alpha2
from mirakl_connector.hyperwallet.currency_selection import (
    BANK_ACCOUNT,
    BankAccountType,
    account_type_of,
)
from mirakl_connector.hyperwallet.sellers import additional_field, is_professional

STATE_FIELD = "hw-bankaccount-state"
#: Hyperwallet statuses of a transfer method that can no longer receive money.
INACTIVE_STATUSES = frozenset({"DE_ACTIVATED"})
_IBAN_SHAPE = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")


def mask(number: object) -> str:
    """``ES3920956580417064096726`` → ``****6726`` (Hyperwallet masks the same way)."""
    text = re.sub(r"\s+", "", str(number or ""))
    return "****" + text[-4:] if text else ""


def last4(number: object) -> str:
    return re.sub(r"\s+", "", str(number or ""))[-4:]


@dataclass(frozen=True)
class MiraklBankAccount:
    """The bank account a shop declares in Mirakl, normalised.

    ``repr`` shows the masked number only.
    """

    type: BankAccountType
    country: str  # the transfer method country (ISO alpha-2)
    bank_account_id: str
    bank_id: str | None = None
    branch_id: str | None = None
    purpose: str | None = None
    city: str | None = None
    postal_code: str | None = None
    state_province: str | None = None

    @property
    def masked(self) -> str:
        return mask(self.bank_account_id)

    def __repr__(self) -> str:
        return f"MiraklBankAccount({self.type}, {self.country}, {self.masked})"

    def describe(self) -> str:
        """``IBAN ES ****6726`` for logs and summaries."""
        return f"{self.type} {self.country} {self.masked}"


def contact_country(shop: Mapping[str, Any]) -> str:
    """The shop's contact country as ISO alpha-2 (Mirakl sends alpha-3, e.g. ``ESP``).

    :raises InvalidItemError: blank or unknown country.
    """
    raw = (shop.get("contact_informations") or {}).get("country")
    country = to_alpha2(raw)
    if country is None:
        raise InvalidItemError(f"contact country {raw!r} is not a valid ISO country code")
    return country


def validate_iban(iban: str) -> str:
    """The IBAN without spaces, upper case, with its country known and check digits right.

    :raises InvalidItemError: the reason names the masked IBAN, never the number.
    """
    value = re.sub(r"\s+", "", iban or "").upper()
    if len(value) < 2:
        raise InvalidItemError(f"IBAN {mask(value) or '(empty)'} is too short")
    country = value[:2]
    if to_alpha2(country) is None:
        raise InvalidItemError(f"IBAN {mask(value)} starts with unknown country code {country!r}")
    if not _IBAN_SHAPE.match(value):
        raise InvalidItemError(f"IBAN {mask(value)} is malformed (length or characters)")
    rearranged = value[4:] + value[:4]
    if int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 != 1:
        raise InvalidItemError(f"IBAN {mask(value)} has wrong check digits")
    return value


def parse_bank_account(shop: Mapping[str, Any]) -> MiraklBankAccount | None:
    """The shop's bank account, or ``None`` when it has none (no ``payment_info`` or number).

    :raises InvalidItemError: unsupported type, malformed IBAN, missing bank codes.
    """
    info = shop.get("payment_info")
    if not isinstance(info, Mapping):
        return None
    kind = str(info.get("@type") or info.get("type") or "").strip().upper()
    number_field = "iban" if kind == "IBAN" else "bank_account_number"
    number = _text(info.get(number_field))
    if not number:
        return None
    common = {
        "city": _text(info.get("bank_city")),
        "postal_code": None,
        "state_province": None,
    }
    if kind == "IBAN":
        iban = validate_iban(number)
        return MiraklBankAccount(
            BankAccountType.IBAN, iban[:2], iban, bank_id=_text(info.get("bic")), **common
        )
    if kind == "ABA":
        routing = _required(info, "routing_number", kind)
        return MiraklBankAccount(
            BankAccountType.ABA,
            "US",
            number,
            branch_id=routing,
            purpose="CHECKING",
            city=common["city"],
            postal_code=_text(info.get("bank_zip")),
            state_province=_text(additional_field(shop, STATE_FIELD)),
        )
    if kind == "CANADIAN":
        return MiraklBankAccount(
            BankAccountType.CANADIAN,
            "CA",
            number,
            bank_id=_required(info, "institution_number", kind),
            branch_id=_required(info, "transit_number", kind),
            **common,
        )
    if kind == "UK":
        return MiraklBankAccount(
            BankAccountType.UK,
            "GB",
            number,
            bank_id=_required(info, "bank_sort_code", kind),
            **common,
        )
    raise InvalidItemError(
        f"bank account type {kind or '(none)'!r} is not supported (IBAN, ABA, CANADIAN, UK)"
    )


def bank_account_body(
    shop: Mapping[str, Any],
    account: MiraklBankAccount,
    *,
    currency: str,
    transfer_type: str = BANK_ACCOUNT,
    user_token: str,
    token: str | None = None,
) -> dict[str, Any]:
    """The Hyperwallet ``POST``/``PUT .../bank-accounts`` body.

    Individuals are named by the contact's first and last name, businesses by the shop name.
    Only ABA accounts carry the postal code and state (what Hyperwallet validates for US
    accounts; the other types are sent as the incumbent sends them).
    """
    contact = shop.get("contact_informations") or {}
    professional = is_professional(shop)
    body: dict[str, Any] = {
        "type": transfer_type,
        "profileType": "BUSINESS" if professional else "INDIVIDUAL",
        "transferMethodCountry": account.country,
        "transferMethodCurrency": currency,
        "bankAccountId": account.bank_account_id,
        "country": contact_country(shop),
        "addressLine1": _text(contact.get("street1")),
        "addressLine2": _text(contact.get("street2")) or "",
        "city": account.city,
        "userToken": user_token,
    }
    if professional:
        body["businessName"] = _text(shop.get("shop_name"))
    else:
        body["firstName"] = _text(contact.get("firstname"))
        body["lastName"] = _text(contact.get("lastname"))
    if account.type == BankAccountType.IBAN:
        body["bankId"] = account.bank_id
    elif account.type == BankAccountType.ABA:
        body["branchId"] = account.branch_id
        body["bankAccountPurpose"] = account.purpose
        body["postalCode"] = account.postal_code
        body["stateProvince"] = account.state_province
    elif account.type == BankAccountType.CANADIAN:
        body["bankId"] = account.bank_id
        body["branchId"] = account.branch_id
    elif account.type == BankAccountType.UK:
        body["bankId"] = account.bank_id
    if token:
        body["token"] = token
    return {k: v for k, v in body.items() if v is not None}


# -- matching a Mirakl account against the user's Hyperwallet accounts -----------------------


def hyperwallet_type(hw_account: Mapping[str, Any]) -> BankAccountType | None:
    """The account type of a Hyperwallet bank account (``None`` when it fits no known row)."""
    return account_type_of(
        str(hw_account.get("transferMethodCountry") or ""),
        str(hw_account.get("transferMethodCurrency") or ""),
        str(hw_account.get("type") or BANK_ACCOUNT),
    )


def is_compatible(hw_account: Mapping[str, Any], account: MiraklBankAccount) -> bool:
    """True when Hyperwallet can update ``hw_account`` to ``account``: same type and country."""
    return (
        hyperwallet_type(hw_account) == account.type
        and hw_account.get("transferMethodCountry") == account.country
    )


def is_same_account(
    hw_account: Mapping[str, Any], account: MiraklBankAccount, currency: str
) -> bool:
    """True when ``hw_account`` already *is* ``account`` (Hyperwallet masks all but 4 digits)."""
    if not is_compatible(hw_account, account):
        return False
    if hw_account.get("transferMethodCurrency") != currency:
        return False
    if last4(hw_account.get("bankAccountId")) != last4(account.bank_account_id):
        return False
    bank_id, branch_id = hw_account.get("bankId"), hw_account.get("branchId")
    if account.type in (BankAccountType.IBAN, BankAccountType.UK):
        return _same(bank_id, account.bank_id)
    if account.type == BankAccountType.ABA:
        return _same(branch_id, account.branch_id) and _same(
            hw_account.get("bankAccountPurpose"), account.purpose
        )
    return _same(bank_id, account.bank_id) and _same(branch_id, account.branch_id)


def match_bank_account(
    hw_accounts: Iterable[Mapping[str, Any]],
    account: MiraklBankAccount,
    *,
    currency: str,
    mirakl_token: str | None,
) -> Mapping[str, Any] | None:
    """The Hyperwallet account to update, or ``None`` when a new one must be created.

    In order: the account Mirakl already points at, when compatible; else the first one that
    is the same account; else the first compatible one. Deactivated accounts are never chosen.
    """
    usable = [a for a in hw_accounts if a.get("status") not in INACTIVE_STATUSES]
    if mirakl_token:
        for hw in usable:
            if hw.get("token") == mirakl_token and is_compatible(hw, account):
                return hw
    for hw in usable:
        if is_same_account(hw, account, currency):
            return hw
    for hw in usable:
        if is_compatible(hw, account):
            return hw
    return None


def _same(a: Any, b: Any) -> bool:
    return _text(a) == _text(b) if (a or b) else True


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _required(info: Mapping[str, Any], name: str, kind: str) -> str:
    value = _text(info.get(name))
    if not value:
        raise InvalidItemError(f"{kind} bank account without {name}")
    return value
