"""Hyperwallet KYC documents extract: the documents sellers upload in Mirakl → Hyperwallet.

Steps ``check`` and ``sync`` (the shops changed in Mirakl since the last run, plus the due
retries; :class:`~.hyperwallet_shops.ShopExtract` gives the window, filters and retry queue).
For each shop whose ``hw-kyc-req-proof-identity-business`` is true (Hyperwallet asked for
documents) and that has a ``hw-user-token`` (the PayPal connector's ``DocumentsExtractJob``):

1. the documents to send follow the seller's selection
   (:mod:`mirakl_connector.hyperwallet.seller_documents`); no selection yet → skipped;
2. the shop's documents are listed (S30); a required file missing → skipped (the seller is not
   done); each required file (the newest of its type) is downloaded (S31);
3. one multipart ``PUT /users/{token}`` uploads them; then S07 sets
   ``hw-kyc-req-proof-identity-business=false`` and, for a business, ``PUT /users/{token}``
   ``businessStakeholderVerificationStatus=READY_FOR_REVIEW`` (the incumbent's order).

Idempotent by the flag: once it is false the shop is skipped. A crash between the upload and the
S07 uploads the same files again on the next run (Hyperwallet then holds a duplicate document of
the same status; no money is involved). Bad input (a selection outside Hyperwallet's types, an
empty file) fails the shop with the reason; the batch goes on. Dry run: reads and reports
``WOULD_UPLOAD``.

4. business stakeholders flagged ``hw-stakeholder-req-proof-identity-<n>``: their identity
   document (``hw-bsh<n>-proof-identity-front``/``-back``) goes to multipart
   ``PUT /users/{u}/business-stakeholders/{stk}``, then S07 clears the stakeholder's flag.

Not done yet: the letter of authorisation (``hw-bsh-letter-authorization``,
``hw-kyc-req-proof-authorization``): no reference we hold names its Hyperwallet category/type.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from mirakl_connector.core.batch import ItemOutcome
from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.core.registry import Resources
from mirakl_connector.hyperwallet.programs import HyperwalletSettings, Program
from mirakl_connector.hyperwallet.seller_documents import (
    REQUEST_FLAG,
    PlannedDocument,
    document_plan,
    latest_by_type,
    stakeholder_plan,
)
from mirakl_connector.hyperwallet.seller_sync import _mailer
from mirakl_connector.hyperwallet.sellers import (
    USER_TOKEN_FIELD,
    bool_field,
    is_professional,
    text_field,
)
from mirakl_connector.hyperwallet.shops import ShopExtract
from mirakl_connector.hyperwallet.specs import DOCUMENTS_EXTRACT
from mirakl_connector.operations.mail import alert_recipients
from mirakl_connector.operations.payout_provider import PayoutProviderRule

log = logging.getLogger(__name__)

WORKFLOW = DOCUMENTS_EXTRACT.name

UPLOADED = "UPLOADED"
WOULD_UPLOAD = "WOULD_UPLOAD"
SKIPPED_NOT_REQUESTED = "SKIPPED_NOT_REQUESTED"
SKIPPED_NO_USER = "SKIPPED_NO_USER"
SKIPPED_NO_SELECTION = "SKIPPED_NO_SELECTION"
SKIPPED_MISSING_DOCUMENTS = "SKIPPED_MISSING_DOCUMENTS"
READY_FOR_REVIEW = "READY_FOR_REVIEW"


class DocumentsExtract(ShopExtract):
    """See the module docstring."""

    WORKFLOW = WORKFLOW
    ITEM_TYPE = "SellerDocument"

    def _handle(
        self, shop: Mapping[str, Any], shop_id: str, program: Program, *, dry_run: bool
    ) -> ItemOutcome:
        seller_asked = bool_field(shop, REQUEST_FLAG)
        stakeholders = stakeholder_plan(shop) if is_professional(shop) else []
        if not seller_asked and not stakeholders:
            return ItemOutcome(shop_id, SKIPPED_NOT_REQUESTED, "no document requested")
        user_token = text_field(shop, USER_TOKEN_FIELD)
        if user_token is None:
            return ItemOutcome(shop_id, SKIPPED_NO_USER, f"no {USER_TOKEN_FIELD} yet")
        plan = document_plan(shop) if seller_asked else []
        if isinstance(plan, str) or isinstance(stakeholders, str):
            reason = plan if isinstance(plan, str) else stakeholders
            return ItemOutcome(shop_id, SKIPPED_NO_SELECTION, str(reason))
        uploaded = latest_by_type(self.mirakl.iter_shop_documents([shop_id]))
        wanted = [t for d in [*plan, *(s.document for s in stakeholders)] for t in d.files.values()]
        missing = [t for t in wanted if t not in uploaded]
        if missing:
            return ItemOutcome(
                shop_id, SKIPPED_MISSING_DOCUMENTS, f"not uploaded yet: {', '.join(missing)}"
            )
        if dry_run:
            names = [f"{d.category}/{d.type}" for d in plan]
            names += [f"stakeholder {s.n} {s.document.type}" for s in stakeholders]
            return ItemOutcome(shop_id, WOULD_UPLOAD, ", ".join(names))
        notes: list[str] = []
        if plan:
            files = self._files(plan, uploaded)
            self.hyperwallet.upload_user_documents(user_token, [d.body for d in plan], files)
            self.write_fields(shop_id, {REQUEST_FLAG: "false"})
            notes.extend(f"{d.category}/{d.type}" for d in plan)
        for stakeholder in stakeholders:
            files = self._files([stakeholder.document], uploaded)
            self.hyperwallet.upload_stakeholder_documents(
                user_token, stakeholder.token, [stakeholder.document.body], files
            )
            self.write_fields(shop_id, {stakeholder.flag: "false"})
            notes.append(f"stakeholder {stakeholder.n} {stakeholder.document.type}")
        if is_professional(shop):
            self.hyperwallet.update_user(
                user_token, {"businessStakeholderVerificationStatus": READY_FOR_REVIEW}
            )
            notes.append("ready for review")
        return ItemOutcome(shop_id, UPLOADED, f"user {user_token}: {', '.join(notes)}")

    def _files(
        self, plan: list[PlannedDocument], uploaded: Mapping[str, Mapping[str, Any]]
    ) -> dict[str, tuple[str, bytes]]:
        """Download (S31) the newest Mirakl file of each side; an empty file fails the shop."""
        files: dict[str, tuple[str, bytes]] = {}
        for doc in plan:
            for part, mirakl_type in doc.files.items():
                document = uploaded[mirakl_type]
                content = self.mirakl.download_shop_document(document["id"])
                if not content:
                    raise InvalidItemError(f"document {mirakl_type} #{document['id']} is empty")
                files[part] = (str(document.get("file_name") or part), content)
        return files


def build(resources: Resources, config: Mapping[str, Any], run_id: str | None) -> DocumentsExtract:
    """Registry entry: the job wired to the run's clients and configuration."""
    return DocumentsExtract(
        mirakl=resources.get("mirakl"),
        hyperwallet=resources.get("hyperwallet"),
        ledger=resources.get("ledger"),
        settings=HyperwalletSettings.from_config(config),
        mailer=_mailer(resources),
        email_to=alert_recipients(config),
        run_id=run_id,
        providers=PayoutProviderRule.from_config(config),
    )
