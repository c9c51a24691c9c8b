"""Hyperwallet bank account extract: each shop's Mirakl bank details as a Hyperwallet account.

Steps ``check``, ``sync`` and ``retry`` as in the seller extract. For each eligible shop:

1. No ``payment_info`` or no account number → nothing to do (``NO_BANK_ACCOUNT``).
2. The Mirakl account is parsed and checked (IBAN country and check digits, bank codes, contact
   country); bad data fails this shop only, with the reason.
3. The shop needs its Hyperwallet user (``hw-user-token``, written by the seller extract, which
   runs first by default: 00:00 vs 00:30); without it the shop fails and is retried.
4. **Currency**: :func:`~mirakl_connector.hyperwallet.currency_selection.select_currency`, with the
   automatic selection flag of this workflow's settings.
5. **Token synchronisation**, always: the user's Hyperwallet accounts are listed and matched
   (:func:`~mirakl_connector.hyperwallet.bank_accounts.match_bank_account`). When the match
   differs from Mirakl's ``hw-bankaccount-token`` (or there is none: then the field is
   cleared) Mirakl is updated first.
6. **Create or update**: a matched account is updated in place (``PUT``); otherwise a new one is
   created (``POST``) and its ``trm-`` token written to ``hw-bankaccount-token``. A change of
   country or type (US ABA → IBAN, Italian → Spanish IBAN) never matches, so it creates a new
   account: Hyperwallet cannot change either.

Idempotent: a rerun finds the account it created through step 5 (same last four digits, bank
codes, country and currency), so a crash between the creation and the token write-back does not
create a second account. Account numbers appear masked (``****6726``) in logs, summaries and
errors.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from mirakl_connector.core.batch import ItemOutcome
from mirakl_connector.core.errors import ConfigurationError, InvalidItemError
from mirakl_connector.core.money import normalize_currency
from mirakl_connector.core.registry import Resources
from mirakl_connector.hyperwallet.bank_accounts import (
    bank_account_body,
    contact_country,
    mask,
    match_bank_account,
    parse_bank_account,
)
from mirakl_connector.hyperwallet.batchlog import BatchLog
from mirakl_connector.hyperwallet.currency_selection import CurrencySettings, select_currency
from mirakl_connector.hyperwallet.programs import HyperwalletSettings, Program
from mirakl_connector.hyperwallet.seller_sync import _mailer
from mirakl_connector.hyperwallet.sellers import (
    BANK_ACCOUNT_TOKEN_FIELD,
    USER_TOKEN_FIELD,
    text_field,
)
from mirakl_connector.hyperwallet.shops import ShopExtract
from mirakl_connector.hyperwallet.specs import BANK_ACCOUNT_EXTRACT
from mirakl_connector.operations.mail import alert_recipients
from mirakl_connector.operations.payout_provider import PayoutProviderRule

log = logging.getLogger(__name__)

WORKFLOW = BANK_ACCOUNT_EXTRACT.name

CREATED = "CREATED"
UPDATED = "UPDATED"
NO_BANK_ACCOUNT = "NO_BANK_ACCOUNT"
WOULD_CREATE = "WOULD_CREATE"
WOULD_UPDATE = "WOULD_UPDATE"


class BankAccountExtract(ShopExtract):
    """See the module docstring."""

    WORKFLOW = WORKFLOW
    ITEM_TYPE = "BankAccount"

    def __init__(self, *, currency_settings: CurrencySettings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.currency_settings = currency_settings
        self._blog = BatchLog()

    def _redact(self, shop: Mapping[str, Any], text: str) -> str:
        """Mask the shop's account number wherever an error message echoes it."""
        info = shop.get("payment_info") if isinstance(shop, Mapping) else None
        if not isinstance(info, Mapping):
            return text
        for key in ("iban", "bank_account_number"):
            raw = str(info.get(key) or "")
            for variant in {raw, raw.replace(" ", ""), raw.replace(" ", "").upper()}:
                if len(variant) >= 5:
                    text = text.replace(variant, mask(variant))
        return text

    def _handle(
        self, shop: Mapping[str, Any], shop_id: str, program: Program, *, dry_run: bool
    ) -> ItemOutcome:
        blog = self._blog
        account = parse_bank_account(shop)
        if account is None:
            blog.item("No bank account info for shop code: [%s]", shop_id)
            return ItemOutcome(shop_id, NO_BANK_ACCOUNT, "no bank account in Mirakl")
        contact_country(shop)  # a bad contact country fails the shop before any call
        user_token = text_field(shop, USER_TOKEN_FIELD)
        if user_token is None:
            raise InvalidItemError(
                f"the shop has no {USER_TOKEN_FIELD} yet: hyperwallet_seller_extract creates "
                "the Hyperwallet user first"
            )
        try:
            shop_currency = normalize_currency(str(shop.get("currency_iso_code") or ""))
        except InvalidItemError as exc:
            raise InvalidItemError(f"shop currency: {exc.reason}") from None
        choice = select_currency(
            account.type, account.country, shop_currency, self.currency_settings
        )
        notes = [account.describe(), f"currency {choice.currency}"]
        if choice.note:
            notes.append(choice.note)

        mirakl_token = text_field(shop, BANK_ACCOUNT_TOKEN_FIELD)
        existing = list(self.hyperwallet.iter_bank_accounts(user_token))
        match = match_bank_account(
            existing, account, currency=choice.currency, mirakl_token=mirakl_token
        )
        token = str(match["token"]) if match is not None else None
        if token != mirakl_token:
            blog.item("Updating bank account token for shop [%s]", shop_id)
            if not dry_run:
                self.write_fields(shop_id, {BANK_ACCOUNT_TOKEN_FIELD: token})
                blog.item("Bank account token updated for shop [%s]", shop_id)
            notes.append(
                f"{BANK_ACCOUNT_TOKEN_FIELD} synchronised to {token}"
                if token
                else f"{BANK_ACCOUNT_TOKEN_FIELD} {mirakl_token} is not compatible: cleared"
            )

        body = bank_account_body(
            shop,
            account,
            currency=choice.currency,
            transfer_type=choice.transfer_type,
            user_token=user_token,
            token=token,
        )
        if token is None:
            if dry_run:
                return ItemOutcome(shop_id, WOULD_CREATE, "; ".join(notes))
            created = self.hyperwallet.create_bank_account(user_token, body)
            new_token = str(created.get("token") or "")
            if not new_token:
                raise ConfigurationError("Hyperwallet created a bank account without a token")
            blog.item("Bank account created or updated for seller with clientId [%s]", shop_id)
            blog.item("Updating bank account token for shop [%s]", shop_id)
            self.write_fields(shop_id, {BANK_ACCOUNT_TOKEN_FIELD: new_token})
            blog.item("Bank account token updated for shop [%s]", shop_id)
            return ItemOutcome(shop_id, CREATED, "; ".join([f"{new_token} created", *notes]))
        if dry_run:
            return ItemOutcome(shop_id, WOULD_UPDATE, "; ".join([token, *notes]))
        self.hyperwallet.update_bank_account(user_token, token, body)
        blog.item("Bank account created or updated for seller with clientId [%s]", shop_id)
        return ItemOutcome(shop_id, UPDATED, "; ".join([f"{token} updated", *notes]))


def build(
    resources: Resources, config: Mapping[str, Any], run_id: str | None
) -> BankAccountExtract:
    """Registry entry: the job wired to the run's clients and configuration."""
    return BankAccountExtract(
        mirakl=resources.get("mirakl"),
        hyperwallet=resources.get("hyperwallet"),
        ledger=resources.get("ledger"),
        settings=HyperwalletSettings.from_config(config),
        currency_settings=CurrencySettings.from_mapping(config.get(WORKFLOW), where=WORKFLOW),
        mailer=_mailer(resources),
        email_to=alert_recipients(config),
        run_id=run_id,
        providers=PayoutProviderRule.from_config(config),
    )
