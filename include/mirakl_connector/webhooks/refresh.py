"""The onboarding refresh URL: Stripe sends a seller here when their account link expired.

``GET …/onboarding/refresh?token=<t>``: the token is the one the onboarding workflow put in the
link (stored on the account mapping). A seller who has not finished gets a fresh account link, a
seller who has gets a login link to their Express dashboard; either way the new URL is written to
the shop's link field in Mirakl (S07) and the seller is redirected to it (302).

This route does call Stripe and Mirakl: the seller is waiting in a browser for a new link, and
there is nothing to store and apply later.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mirakl_connector.core.errors import MiraklApiError
from mirakl_connector.ledger import Ledger
from mirakl_connector.mirakl.client import MiraklClient
from mirakl_connector.stripe.gateway import StripeGateway
from mirakl_connector.stripe.onboarding import OnboardingSettings, usable_token

log = logging.getLogger(__name__)


class IncorrectToken(Exception):
    """Missing or unknown token: the route answers 400 ``Incorrect token``."""


@dataclass
class OnboardingRefresh:
    """Build a new link for the shop behind a refresh token."""

    ledger: Ledger
    stripe: StripeGateway
    mirakl: MiraklClient
    settings: OnboardingSettings

    def new_link(self, token: str | None) -> str:
        """The URL to redirect the seller to (written to Mirakl first, best effort).

        :raises IncorrectToken: the token is missing, belongs to no shop, or is older than
            :data:`~mirakl_connector.stripe.onboarding.REFRESH_TOKEN_TTL`.
        """
        mapping = self.ledger.account_mapping_by_onboarding_token(token or "")
        if mapping is None or usable_token(token) is None:  # unknown or expired: same answer
            raise IncorrectToken("Incorrect token")
        account = self.stripe.retrieve_account(mapping.stripe_account_id)
        if account.get("details_submitted"):
            url = self.stripe.create_login_link(mapping.stripe_account_id)
        else:
            url = self.stripe.create_account_link(
                mapping.stripe_account_id,
                refresh_url=self.settings.refresh_url(token or ""),
                return_url=self.settings.return_url_for(self.mirakl.base_url),
            )
        shop = {
            "shop_id": mapping.mirakl_shop_id,
            "shop_additional_fields": [{"code": self.settings.link_field, "value": url}],
        }
        try:
            self.mirakl.update_shops([shop])
        except MiraklApiError as exc:
            # The seller still gets the link; the field is fixed by the next account.updated
            # or onboarding run. Failing the redirect would strand the seller instead.
            log.warning("S07 of shop %s failed: %s", mapping.mirakl_shop_id, exc.message)
        return url
