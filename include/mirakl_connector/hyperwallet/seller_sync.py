"""Hyperwallet seller extract: each Mirakl shop becomes (or updates) a Hyperwallet user.

Steps ``check`` (credentials and program tokens), ``sync`` (the shops changed in Mirakl since the
last run, plus the due retries) and ``retry`` (the due retries only). For each eligible shop
(see :mod:`mirakl_connector.hyperwallet.sellers` for the filters), individual or professional:

1. **Token synchronisation**: a shop without ``hw-user-token`` may still have a user (created by
   an earlier run that died before writing the token back): look it up by ``clientUserId`` (the
   shop id) in the shop's users program and write its token to Mirakl (S07).
2. **Create or update**: no token → ``POST /users``, then the new ``usr-`` token is written to
   ``hw-user-token``; a token → ``PUT /users/{token}`` with the same mapping.

Idempotent: a rerun, or a cleared task, finds the user by ``clientUserId`` and never creates a
second one. A Mirakl failure writing the token back fails the shop (retry queue) instead of being
e-mailed and forgotten as in the incumbent; its retry heals it through step 1.

3. **Business stakeholders** (professional shops, as the PayPal connector's
``BusinessStakeholdersExtractBatchJob``): the blocks
   ``hw-stakeholder-<attr>-<n>`` are read and checked *before* any write (bad data fails the shop
   with its reason); a block with ``hw-stakeholder-token-<n>`` is ``PUT``; one without is first
   looked up among the user's stakeholders (``GET /users/{u}/business-stakeholders``, by e-mail,
   else by name and date of birth) and only then ``POST``-ed; the token is written back to
   ``hw-stakeholder-token-<n>`` (S07) at once. A Hyperwallet refusal fails the shop (retry queue),
   where the incumbent e-mailed it and counted the shop as done.

A dry run reads Mirakl and Hyperwallet and reports ``WOULD_CREATE`` / ``WOULD_UPDATE``; it writes
nothing anywhere.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mirakl_connector.core.batch import ItemOutcome
from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.core.registry import Resources
from mirakl_connector.core.settings import checked_values
from mirakl_connector.hyperwallet.batchlog import BatchLog
from mirakl_connector.hyperwallet.programs import HyperwalletSettings, Program
from mirakl_connector.hyperwallet.sellers import (
    USER_TOKEN_FIELD,
    is_professional,
    item_type,
    text_field,
    user_body,
)
from mirakl_connector.hyperwallet.shops import ShopExtract
from mirakl_connector.hyperwallet.specs import SELLER_EXTRACT
from mirakl_connector.hyperwallet.stakeholders import Stakeholder, find_existing, stakeholders_of
from mirakl_connector.operations.mail import alert_recipients
from mirakl_connector.operations.payout_provider import PayoutProviderRule

log = logging.getLogger(__name__)

WORKFLOW = SELLER_EXTRACT.name

CREATED = "CREATED"
UPDATED = "UPDATED"
WOULD_CREATE = "WOULD_CREATE"
WOULD_UPDATE = "WOULD_UPDATE"


@dataclass(frozen=True)
class SellerExtractSettings:
    """The ``hyperwallet_seller_extract`` section of the connector configuration.

    :param new_user_mapping: businesses: ``businessName`` = registered company name and
        ``businessOperatingName`` = shop name (recommended for new installations); off = the
        incumbent's legacy mapping. Changing it renames onboarded businesses in Hyperwallet.
    :param mirakl_time_zone: the zone Mirakl DATE fields (date of birth) are read in.
    """

    new_user_mapping: bool = False
    mirakl_time_zone: str = "UTC"

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> SellerExtractSettings:
        values = checked_values(cls, values, WORKFLOW)
        zone = values.get("mirakl_time_zone", "UTC")
        try:
            ZoneInfo(str(zone))
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigurationError(
                f"{WORKFLOW}.mirakl_time_zone {zone!r} is not a time zone (e.g. Europe/Paris)"
            ) from None
        return cls(**values)


class SellerExtract(ShopExtract):
    """See the module docstring."""

    WORKFLOW = WORKFLOW
    ITEM_TYPE = "Seller"

    def __init__(self, *, seller_settings: SellerExtractSettings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seller_settings = seller_settings
        self._blog = BatchLog()

    def _item_type(self, shop: Mapping[str, Any]) -> str:
        return item_type(shop)

    def _handle(
        self, shop: Mapping[str, Any], shop_id: str, program: Program, *, dry_run: bool
    ) -> ItemOutcome:
        notes: list[str] = []
        stakeholders = (
            stakeholders_of(shop, time_zone=self.seller_settings.mirakl_time_zone)
            if is_professional(shop)
            else []
        )
        token = text_field(shop, USER_TOKEN_FIELD)
        if token is None:
            found = self.hyperwallet.find_user(shop_id, program.user_token)
            if found is not None and found.get("token"):
                token = str(found["token"])
                self._blog.item("Updating token for shop [%s] to [%s]", shop_id, token)
                notes.append(f"existing user {token} found by clientUserId")
                if not dry_run:
                    self.write_fields(shop_id, {USER_TOKEN_FIELD: token})
                    notes.append(f"{USER_TOKEN_FIELD} written")
        body = user_body(
            shop,
            program,
            new_user_mapping=self.seller_settings.new_user_mapping,
            time_zone=self.seller_settings.mirakl_time_zone,
            token=token,
        )
        if token is None:
            if dry_run:
                return ItemOutcome(shop_id, WOULD_CREATE, f"program {program.name}")
            user = self.hyperwallet.create_user(body)
            token = str(user.get("token") or "")
            if not token:
                raise ConfigurationError("Hyperwallet created a user without a token")
            self._blog.item("Seller created for seller with clientUserId [%s]", shop_id)
            self.write_fields(shop_id, {USER_TOKEN_FIELD: token})
            notes.insert(0, f"user {token} created in program {program.name}")
            notes.extend(self._stakeholders(shop_id, token, stakeholders))
            return ItemOutcome(shop_id, CREATED, "; ".join(notes))
        if dry_run:
            notes.extend(f"stakeholder {s.n} would be sent" for s in stakeholders)
            return ItemOutcome(shop_id, WOULD_UPDATE, "; ".join([f"user {token}", *notes]))
        self.hyperwallet.update_user(token, body)
        self._blog.item("Seller updated for seller with clientUserId [%s]", shop_id)
        notes.extend(self._stakeholders(shop_id, token, stakeholders))
        return ItemOutcome(shop_id, UPDATED, "; ".join([f"user {token} updated", *notes]))

    def _stakeholders(
        self, shop_id: str, user_token: str, stakeholders: list[Stakeholder]
    ) -> list[str]:
        """Create or update each stakeholder; write new tokens back at once (module doc, 3)."""
        notes: list[str] = []
        existing: list[dict[str, Any]] | None = None
        for stakeholder in stakeholders:
            token = stakeholder.token
            if token is None:
                if existing is None:
                    # the tokens other blocks hold are theirs: never matched to this one
                    held = {s.token for s in stakeholders if s.token}
                    existing = [
                        s
                        for s in self.hyperwallet.iter_business_stakeholders(user_token)
                        if s.get("token") not in held
                    ]
                found = find_existing(stakeholder, existing)
                if found is not None and found.get("token"):
                    token = str(found["token"])
                    self._blog.item(
                        "Storing business stakeholder tokens [%s] for shop [%s]", token, shop_id
                    )
                    self.write_fields(shop_id, {stakeholder.token_field: token})
                    notes.append(f"stakeholder {stakeholder.n} {token} found and written back")
            if token is None:
                created = self.hyperwallet.create_business_stakeholder(user_token, stakeholder.body)
                token = str(created.get("token") or "")
                if not token:
                    raise ConfigurationError("Hyperwallet created a stakeholder without a token")
                existing = [*(existing or []), created]
                self.write_fields(shop_id, {stakeholder.token_field: token})
                notes.append(f"stakeholder {stakeholder.n} {token} created")
                continue
            self._blog.item("Updating stakeholder [%s] for user [%s]", token, user_token)
            self.hyperwallet.update_business_stakeholder(
                user_token, token, {**stakeholder.body, "token": token}
            )
            notes.append(f"stakeholder {stakeholder.n} {token} updated")
        return notes


def build(resources: Resources, config: Mapping[str, Any], run_id: str | None) -> SellerExtract:
    """Registry entry: the job wired to the run's clients and configuration."""
    settings = HyperwalletSettings.from_config(config)
    return SellerExtract(
        mirakl=resources.get("mirakl"),
        hyperwallet=resources.get("hyperwallet"),
        ledger=resources.get("ledger"),
        settings=settings,
        seller_settings=SellerExtractSettings.from_mapping(config.get(WORKFLOW)),
        mailer=_mailer(resources),
        email_to=alert_recipients(config),
        run_id=run_id,
        providers=PayoutProviderRule.from_config(config),
    )


def _mailer(resources: Resources) -> Any:
    """The mailer, or ``None`` when the deployment has none (exhaustions are then logged)."""
    if resources.mailer is None:
        return None
    return _LazyMailer(resources)


class _LazyMailer:
    """Builds the mailer only when an e-mail is sent (most runs send none)."""

    def __init__(self, resources: Resources) -> None:
        self._resources = resources

    def send(self, **kwargs: Any) -> None:
        self._resources.get("mailer").send(**kwargs)
