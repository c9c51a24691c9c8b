"""Hyperwallet KYC resync: Hyperwallet's verification statuses → Mirakl, for lost notifications.

Step ``resync`` (``dags/hyperwallet_kyc_resync.py``). The Hyperwallet connector's optional
``KYCUserStatusResyncBatchJob`` (github.com/paypal/mirakl-hyperwallet-connector, hmc-kyc): list the
users created
in a fixed window (``GET /users?createdAfter=``, v4 cursor pages; ``now −
hyperwallet_kyc_resync.max_days``, 90 days, or the ``since`` param), turn each into what a
``USERS.UPDATED.VERIFICATION_STATUS.*`` notification of that user would write, and write it.

The state written is computed by the KYC notification handler itself
(:meth:`.hyperwallet_kyc_status.HyperwalletKycStatusJob.user_update`): KYC status and reason,
``hw-kyc-req-proof-identity-business``, the ``hw-stakeholder-req-proof-identity-<n>`` of the
business stakeholders Hyperwallet lists as REQUIRED and, with ``kyc_automated``, the letter of
authorisation flag. Hyperwallet's ``GET /users`` filters only by creation date (its published
filters: ``clientUserId, email, programToken, status, verificationStatus,
taxVerificationStatus, createdBefore, createdAfter, sortBy, offset, limit``): there is no
"updated since", so the window is a creation window, as the connector's.

Cost: one paged user list per program, one S20 per 100 users (the shops, to compare), and one
S07 per shop whose Mirakl state differs (the connector staged and merged its writes to respect
Mirakl's rate limits; comparing first writes only what a lost notification left wrong). A
business whose stakeholders are REQUIRED also lists its stakeholders (one call), as the
notification does.

Order: a notification applied after the resync read Hyperwallet is newer than what the resync
knows: the resync claims the user in the out-of-order guard at the moment it started reading,
and leaves a user alone (``SUPERSEDED``) when a later notification was applied meanwhile; a
notification created before the resync that arrives late is then IGNORED by the KYC DAG.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mirakl_connector.core.batch import BatchSummary, ItemOutcome, chunked, run_batch
from mirakl_connector.core.errors import ConfigurationError, InvalidItemError
from mirakl_connector.core.ids import MAX_INT64, is_ascii_digits
from mirakl_connector.core.registry import Resources
from mirakl_connector.core.settings import checked_values
from mirakl_connector.hyperwallet.kyc_status import HyperwalletKycStatusJob
from mirakl_connector.hyperwallet.kyc_status import build as build_kyc
from mirakl_connector.hyperwallet.programs import HyperwalletSettings
from mirakl_connector.hyperwallet.specs import KYC_RESYNC
from mirakl_connector.ledger import Ledger

log = logging.getLogger(__name__)

WORKFLOW = KYC_RESYNC.name
SETTINGS_SECTION = KYC_RESYNC.settings_section
CHUNK_SIZE = 100

UPDATED = "UPDATED"
WOULD_UPDATE = "WOULD_UPDATE"
UNCHANGED = "UNCHANGED"
SUPERSEDED = "SUPERSEDED"
SKIPPED = "SKIPPED"


@dataclass(frozen=True)
class KycResyncSettings:
    """The ``hyperwallet_kyc_resync`` section.

    :param max_days: the users created this many days back are re-read (the connector's
        ``PAYPAL_HYPERWALLET_JOB_RESYNC_MAXDAYS``, 90).
    """

    max_days: int = 90

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> KycResyncSettings:
        values = checked_values(cls, values, SETTINGS_SECTION)
        days = values.get("max_days", cls.max_days)
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise ConfigurationError(f"{SETTINGS_SECTION}.max_days must be a positive integer")
        return cls(**values)


def field_values(shop: Mapping[str, Any]) -> dict[str, str]:
    """The shop's additional fields as text (``True`` → ``"true"``), by code."""
    values: dict[str, str] = {}
    for entry in shop.get("shop_additional_fields") or []:
        if isinstance(entry, Mapping) and entry.get("code"):
            value = entry.get("value")
            text = str(value).lower() if isinstance(value, bool) else str(value or "")
            values[str(entry["code"])] = text
    return values


def differs(shop: Mapping[str, Any], entry: Mapping[str, Any]) -> list[str]:
    """What of the S07 ``entry`` the shop does not show yet (empty: nothing to write)."""
    changes = []
    wanted = entry.get("kyc")
    if isinstance(wanted, Mapping):
        found = shop.get("kyc")
        kyc: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        if str(kyc.get("status") or "") != wanted.get("status"):
            changes.append(f"kyc.status {kyc.get('status')!r} → {wanted.get('status')!r}")
        elif str(kyc.get("reason") or "") != str(wanted.get("reason") or ""):
            changes.append("kyc.reason")
    current = field_values(shop)
    for field in entry.get("shop_additional_fields") or []:
        if current.get(field["code"], "") != str(field["value"]).lower():
            changes.append(f"{field['code']}={field['value']}")
    return changes


def shop_id_of(user: Mapping[str, Any]) -> int | None:
    """The Mirakl shop of a user (its ``clientUserId``), ``None`` for a user that is not one
    (the operator's own payee, say)."""
    value = str(user.get("clientUserId") or "").strip()
    if not is_ascii_digits(value) or int(value) > MAX_INT64:
        return None
    return int(value)


class HyperwalletKycResync:
    """The KYC resync job; see the module docstring."""

    def __init__(
        self,
        *,
        mirakl: Any,
        hyperwallet: Any,
        ledger: Ledger,
        kyc: HyperwalletKycStatusJob,
        settings: HyperwalletSettings,
        resync: KycResyncSettings,
        run_id: str | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.mirakl = mirakl
        self.hyperwallet = hyperwallet
        self.ledger = ledger
        self.kyc = kyc
        self.settings = settings
        self.resync_settings = resync
        self.run_id = run_id
        self._now = now or (lambda: datetime.now(UTC))

    def resync(self, *, since: datetime | None = None, dry_run: bool = False) -> BatchSummary:
        """Correct the shops of the users created since ``since`` (default: ``max_days``)."""
        summary = BatchSummary(WORKFLOW, "resync", dry_run=dry_run)
        started = self._now()
        start = since or started - timedelta(days=self.resync_settings.max_days)
        summary.notes.append(f"Hyperwallet users created since {start.isoformat()}")
        for chunk in chunked(self._users(start), CHUNK_SIZE):
            shops = self._shops(chunk)

            def handle(user: Mapping[str, Any], shops: Mapping[int, Any] = shops) -> ItemOutcome:
                return self._one(user, shops, started, dry_run=dry_run)

            run_batch(chunk, handle, item_id=_item_id, summary=summary)
        log.info("%s", summary.describe())
        return summary

    def _users(self, start: datetime) -> Iterator[Mapping[str, Any]]:
        """Each user once, program by program (every program's users token; the credentials'
        default program when none is configured)."""
        tokens = [p.user_token for p in self.settings.active_programs if p.user_token]
        seen: set[str] = set()
        for token in dict.fromkeys(tokens) or [None]:
            for user in self.hyperwallet.iter_users(program_token=token, created_after=start):
                key = str(user.get("token"))
                if key not in seen:
                    seen.add(key)
                    yield user

    def _shops(self, users: Sequence[Mapping[str, Any]]) -> dict[int, Mapping[str, Any]]:
        ids = sorted({i for i in (shop_id_of(u) for u in users) if i is not None})
        if not ids:
            return {}
        return {
            int(shop["shop_id"]): shop
            for shop in self.mirakl.iter_shops(shop_ids=ids)
            if isinstance(shop, Mapping) and shop.get("shop_id") is not None
        }

    def _one(
        self,
        user: Mapping[str, Any],
        shops: Mapping[int, Mapping[str, Any]],
        started: datetime,
        *,
        dry_run: bool,
    ) -> ItemOutcome:
        item = _item_id(user)
        shop_id = shop_id_of(user)
        if shop_id is None:
            reason = f"clientUserId {user.get('clientUserId')!r} is not a Mirakl shop id"
            return ItemOutcome(item, SKIPPED, reason)
        shop = shops.get(shop_id)
        if shop is None:
            return ItemOutcome(item, SKIPPED, f"shop {shop_id} is not returned by Mirakl (S20)")
        if not user.get("token"):
            raise InvalidItemError("user has no token", item_id=item)
        _, status, _, entry = self.kyc.user_update(user, shop)
        if entry is None:
            verification = user.get("verificationStatus")
            return ItemOutcome(item, UNCHANGED, f"{verification!r} maps to no Mirakl change")
        changes = differs(shop, entry)
        if not changes:
            return ItemOutcome(item, UNCHANGED, f"shop {shop_id} already shows it")
        what = f"shop {shop_id}: {', '.join(changes)}"
        if dry_run:
            return ItemOutcome(item, WOULD_UPDATE, what)
        event_id = f"kyc-resync:{self.run_id or started.isoformat()}"
        if not self.ledger.claim_object_event(str(user["token"]), started, event_id):
            return ItemOutcome(item, SUPERSEDED, "a newer notification was applied meanwhile")
        self.kyc.write(shop_id, entry)
        log.info("KYC resync corrected %s", what)
        return ItemOutcome(item, UPDATED, what)


def _item_id(user: Mapping[str, Any]) -> str:
    """``KYCUserStatusInfo`` items are named by ``clientUserId`` (the connector's)."""
    return str(user.get("clientUserId") or user.get("token") or "<user without id>")


def build(
    resources: Resources, config: Mapping[str, Any], run_id: str | None
) -> HyperwalletKycResync:
    """Registry entry: the job wired to the run's clients and configuration."""
    kyc = build_kyc(resources, config, run_id)
    return HyperwalletKycResync(
        mirakl=resources.get("mirakl"),
        hyperwallet=resources.get("hyperwallet"),
        ledger=resources.get("ledger"),
        kyc=kyc,
        settings=HyperwalletSettings.from_config(config),
        resync=KycResyncSettings.from_mapping(config.get(SETTINGS_SECTION)),
        run_id=run_id,
    )
