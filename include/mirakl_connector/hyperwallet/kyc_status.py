"""Hyperwallet KYC status: user and stakeholder verification notifications → the Mirakl shop.

Step ``process`` (``dags/hyperwallet_kyc_status.py``), for each due ``usr-``/``stk-``
notification of the inbox (picking and retries: :mod:`.hyperwallet_notifications`):

* **user** (``USERS.UPDATED.VERIFICATION_STATUS.*`` and any other ``usr-`` event): the shop is the
  user's ``clientUserId``; one S07 writes its KYC status and reason
  (:mod:`.hyperwallet_kyc_rules`) and the document flags: ``hw-kyc-req-proof-identity-business``
  when verification is REQUIRED, ``hw-stakeholder-req-proof-identity-<n>`` for each stakeholder
  Hyperwallet still wants documents from (listed at Hyperwallet, matched to the shop's
  ``hw-stakeholder-token-<n>``), ``hw-kyc-req-proof-authorization`` when
  ``hyperwallet_notifications.kyc_automated`` and the letter of authorisation is REQUIRED.
  A status that maps to nothing (``REQUESTED``, ``EXPIRED``) with no flag to set changes nothing.
* **stakeholder**: ``USERS.BUSINESS_STAKEHOLDERS.CREATED`` of a business contact who is a
  director sets ``hw-kyc-req-proof-authorization`` (letter REQUIRED or FAILED);
  ``...UPDATED.VERIFICATION_STATUS...`` of an individual sets
  ``hw-stakeholder-req-proof-identity-<n>`` (REQUIRED or not). The shop comes from the owning
  user (``GET /users/{userToken}``: a stakeholder notification carries no program).

Trust: each notification is re-read from Hyperwallet by its token before anything is written
(:mod:`.hyperwallet_notifications`); one Hyperwallet does not know is rejected and reported.

Order: before acting, a notification claims its object (``usr-``/``stk-`` token) in the ledger's
out-of-order guard; one created before a notification already applied to the same object is
IGNORED (stale letter-of-authorisation statuses, issue #134).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from mirakl_connector.core.errors import InvalidItemError, MiraklApiError, MiraklConnectorError
from mirakl_connector.core.ids import MAX_INT64, is_ascii_digits
from mirakl_connector.core.registry import Resources
from mirakl_connector.hyperwallet.invoice_payments import lazy_mailer
from mirakl_connector.hyperwallet.kyc_documents import documents_to_delete, invalid_documents
from mirakl_connector.hyperwallet.kyc_rules import (
    PROOF_OF_AUTHORIZATION_FIELD,
    REQUIRED,
    STAKEHOLDER_PROOF_FIELD,
    document_flags,
    is_business,
    kyc_reason,
    letter_of_authorization_wanted,
    mirakl_kyc_status,
    required_stakeholder_flags,
    shop_update,
    stakeholder_index,
    stakeholders_required,
)
from mirakl_connector.hyperwallet.notifications import (
    SETTINGS_SECTION,
    STAKEHOLDER,
    USER,
    NotificationJob,
    NotificationSettings,
)
from mirakl_connector.hyperwallet.specs import KYC_STATUS
from mirakl_connector.ledger import InboxEvent, InboxStatus
from mirakl_connector.mirakl.shops import shop_errors
from mirakl_connector.operations.mail import alert_recipients

log = logging.getLogger(__name__)

WORKFLOW = KYC_STATUS.name
STAKEHOLDER_CREATED = "USERS.BUSINESS_STAKEHOLDERS.CREATED"
STAKEHOLDER_VERIFICATION = "USERS.BUSINESS_STAKEHOLDERS.UPDATED.VERIFICATION_STATUS"


class HyperwalletKycStatusJob(NotificationJob):
    """Applies user and stakeholder notifications (see the module docstring)."""

    WORKFLOW = WORKFLOW
    KINDS = frozenset({USER, STAKEHOLDER})
    VERIFIED_KINDS = KINDS  # re-read from Hyperwallet before any S07

    def apply(self, event: InboxEvent, kind: str) -> tuple[InboxStatus, str | None]:
        obj = event.payload.get("object")
        if not isinstance(obj, Mapping) or not obj.get("token"):
            raise InvalidItemError("notification has no object.token", item_id=event.event_id)
        token = str(obj["token"])
        created = event.event_created or event.created_at or self._now()
        if not self.ledger.claim_object_event(token, created, event.event_id):
            last = self.ledger.last_applied_event(token)
            newer = f" ({last[1]})" if last else ""
            return InboxStatus.IGNORED, f"superseded: a newer notification{newer} of {token}"
        if kind == USER:
            return self._user(obj)
        return self._stakeholder(event, obj)

    # -- users ------------------------------------------------------------------------------

    def user_update(
        self, user: Mapping[str, Any], shop: Mapping[str, Any] | None = None
    ) -> tuple[int, str | None, dict[str, str], dict[str, Any] | None]:
        """What a user's state means for its shop: ``(shop_id, KYC status, document flags,
        S07 entry or None)``. Shared by the notifications and the KYC resync
        (:mod:`.hyperwallet_kyc_resync`), so both write the same thing for the same user.

        :param shop: the shop as S20 returned it, when the caller already read it.
        """
        shop_id = _shop_id(user)
        status = mirakl_kyc_status(user)
        reason = kyc_reason(user)
        fields = document_flags(user, automated=self.settings.kyc_automated)
        if stakeholders_required(user):
            fields.update(self._required_stakeholders(shop_id, str(user["token"]), shop))
        return shop_id, status, fields, shop_update(shop_id, status, reason, fields)

    def _user(self, user: Mapping[str, Any]) -> tuple[InboxStatus, str | None]:
        shop_id, status, fields, entry = self.user_update(user)
        if entry is None:
            verification = user.get("verificationStatus")
            return InboxStatus.IGNORED, (
                f"verification status {verification!r} does not change shop {shop_id}"
            )
        self.write(shop_id, entry)
        what = f"KYC {status}" if status else "document flags"
        flags = f" ({', '.join(sorted(fields))})" if fields else ""
        deleted = self._delete_invalid_documents(shop_id, user)
        return InboxStatus.PROCESSED, f"shop {shop_id}: {what}{flags}{deleted}"

    def _delete_invalid_documents(self, shop_id: int, user: Mapping[str, Any]) -> str:
        """S30 + S33 of the documents Hyperwallet marked INVALID (:mod:`...kyc_documents`).

        Runs after the KYC write, as the incumbent does; a rerun lists the documents again, so
        one already deleted is not deleted twice.
        """
        invalid = invalid_documents(user)
        if not invalid:
            return ""
        try:
            listed = list(self.mirakl.iter_shop_documents([shop_id]))
            doomed = documents_to_delete(invalid, listed)
            for document in doomed:
                self.mirakl.delete_shop_document(document["id"])
        except MiraklApiError as exc:
            raise MiraklConnectorError(
                f"Issue deleting the INVALID documents of shop {shop_id} in Mirakl: {exc}"
            ) from exc
        if not doomed:
            return "; no Mirakl document to delete for the INVALID documents"
        names = ", ".join(f"{d.get('type')} #{d.get('id')}" for d in doomed)
        return f"; deleted INVALID documents from Mirakl: {names}"

    def _required_stakeholders(
        self, shop_id: int, user_token: str, shop: Mapping[str, Any] | None = None
    ) -> dict[str, str]:
        stakeholders = list(self.hyperwallet.iter_business_stakeholders(user_token))
        return required_stakeholder_flags(shop or self._shop(shop_id), stakeholders)

    # -- stakeholders -----------------------------------------------------------------------

    def _stakeholder(
        self, event: InboxEvent, stakeholder: Mapping[str, Any]
    ) -> tuple[InboxStatus, str | None]:
        kind = event.type.upper()
        user_token = stakeholder.get("userToken")
        if kind == STAKEHOLDER_CREATED:
            if not (stakeholder.get("isBusinessContact") and stakeholder.get("isDirector")):
                return InboxStatus.IGNORED, "not a business contact who is a director"
            user = self._user_of(user_token, event)
            if not is_business(user):
                return InboxStatus.IGNORED, "the owning user is not a business"
            shop_id = _shop_id(user)
            value = letter_of_authorization_wanted(user)
            self.write(
                shop_id,
                shop_update(shop_id, None, "", {PROOF_OF_AUTHORIZATION_FIELD: value}),
            )
            return InboxStatus.PROCESSED, f"shop {shop_id}: {PROOF_OF_AUTHORIZATION_FIELD}={value}"
        if kind.startswith(STAKEHOLDER_VERIFICATION):
            if str(stakeholder.get("profileType") or "").upper() != "INDIVIDUAL":
                return InboxStatus.IGNORED, "not an individual stakeholder"
            user = self._user_of(user_token, event)
            shop_id = _shop_id(user)
            n = stakeholder_index(self._shop(shop_id), str(stakeholder["token"]))
            if n is None:
                return InboxStatus.IGNORED, (
                    f"stakeholder {stakeholder['token']} is not in shop {shop_id}'s "
                    "hw-stakeholder-token-<n> fields"
                )
            required = str(stakeholder.get("verificationStatus") or "").upper() == REQUIRED
            field = STAKEHOLDER_PROOF_FIELD.format(n=n)
            value = "true" if required else "false"
            self.write(shop_id, shop_update(shop_id, None, "", {field: value}))
            return InboxStatus.PROCESSED, f"shop {shop_id}: {field}={value}"
        return InboxStatus.IGNORED, f"{event.type}: nothing to update in Mirakl"

    def _user_of(self, user_token: Any, event: InboxEvent) -> Mapping[str, Any]:
        if not isinstance(user_token, str) or not user_token:
            raise InvalidItemError(
                "stakeholder notification has no userToken", item_id=event.event_id
            )
        user: Mapping[str, Any] = self.hyperwallet.get_user(user_token)
        return user

    # -- Mirakl -----------------------------------------------------------------------------

    def _shop(self, shop_id: int) -> Mapping[str, Any]:
        shop: Mapping[str, Any]
        for shop in self.mirakl.iter_shops(shop_ids=[shop_id]):
            if str(shop.get("shop_id")) == str(shop_id):
                return shop
        raise MiraklConnectorError(f"shop {shop_id} is not returned by Mirakl (S20)")

    def write(self, shop_id: int, entry: Mapping[str, Any] | None) -> None:
        """One S07 for one shop; a refusal raises :class:`MiraklConnectorError`."""
        if entry is None:
            return
        try:
            returns = self.mirakl.update_shops([entry])
        except MiraklApiError as exc:
            raise MiraklConnectorError(
                f"Issue updating KYC information of shop {shop_id} in Mirakl: {exc}"
            ) from exc
        errors = shop_errors([shop_id], returns)
        if errors:
            raise MiraklConnectorError(
                f"Mirakl S07 refused the KYC update of shop {shop_id}: {errors[shop_id]}"
            )


def _shop_id(user: Mapping[str, Any]) -> int:
    value = str(user.get("clientUserId") or "").strip()
    if not is_ascii_digits(value) or int(value) > MAX_INT64:
        raise InvalidItemError(
            f"clientUserId {value!r} is not a Mirakl shop id", item_id=str(user.get("token"))
        )
    return int(value)


def build(
    resources: Resources, config: Mapping[str, Any], run_id: str | None
) -> HyperwalletKycStatusJob:
    """Registry entry: the job wired to the ledger and, on first use, Mirakl and Hyperwallet."""
    return HyperwalletKycStatusJob(
        mirakl=lambda: resources.get("mirakl"),
        hyperwallet=lambda: resources.get("hyperwallet"),
        ledger=resources.get("ledger"),
        settings=NotificationSettings.from_mapping(config.get(SETTINGS_SECTION)),
        mailer=lazy_mailer(resources),
        email_to=alert_recipients(config),
        run_id=run_id,
    )
