"""Apply the Stripe events stored in the ledger's inbox, and heal the ones whose webhook was lost.

Steps (each one Airflow task, see ``dags/stripe_webhook_events.py``):

``process``
    Every RECEIVED event, and every FAILED one whose retry is due, in arrival order:

    * ``account.updated`` (a mapped account whose details are submitted): update the mapping
      (flags, disabled reason, KYC status, onboarding token cleared), write a login link and the
      KYC status to the shop with one S07, queue the ``account.updated`` operator notification;
    * ``charge.succeeded`` / ``charge.updated``: create or update the payment mapping of the
      Mirakl commercial order named in the charge's metadata (or its payment intent's) under
      ``commercial_order_metadata_key``;
    * ``payout.failed``: the payout row goes to PAYOUT_FAILED with ``"<code>: <message>"`` (the
      ledger queues the ``payout.failed`` notification in the same transaction);
    * anything else is IGNORED with the reason (unknown types, accounts and payouts we do not
      know, charges without a commercial order id).

    Out of order protection: before acting on an object, the event's ``created`` is claimed
    against the newest event already applied to that object; an older event is IGNORED
    ("superseded") and never overwrites a newer one's effect.

    A failed attempt leaves the event FAILED with ``next_attempt_at`` (1, 2, 4 ... minutes, at
    most an hour); after the last attempt it stays FAILED without one, for a human. A manual run
    with ``event_ids`` retries exactly those events, whatever their status but PROCESSED.

``heal``
    List Stripe's Events API for the handled types since the healing cursor (at most the 30 days
    Stripe keeps), page by page, and store every event the inbox lacks, marked ``healing``; the
    next ``process`` applies them like any webhook. The cursor (newest ``created`` seen) moves
    only after the whole listing is stored. That list holds the *platform's* events only: the
    events of connected accounts live on those accounts (docs.stripe.com/connect/webhooks).

``heal_connected``
    The connected accounts' ``account.updated`` and ``payout.failed`` whose webhook never
    arrived, re-read from the accounts list and each recently paid account's failed payouts, and
    stored in the inbox like healed events (see :mod:`.connected_healing`, which states the
    cost per run: ``ceil(accounts / 100) + accounts paid in the last payout_days``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mirakl_connector.core.batch import BatchSummary, ItemOutcome, run_batch
from mirakl_connector.core.errors import (
    ConfigurationError,
    InvalidItemError,
    MiraklApiError,
    MiraklConnectorError,
)
from mirakl_connector.core.registry import Resources
from mirakl_connector.core.settings import checked_values
from mirakl_connector.ledger import InboxEvent, InboxStatus, Ledger
from mirakl_connector.ledger.inbox_events import (
    STRIPE,
    VIA_HEALING,
    after_failure,
    settled,
    stripe_inbox_event,
)
from mirakl_connector.ledger.notifications import ACCOUNT_UPDATED, account_updated_payload
from mirakl_connector.mirakl.shops import shop_errors
from mirakl_connector.stripe import event_handlers as handlers
from mirakl_connector.stripe import event_types
from mirakl_connector.stripe.connected_healing import (
    account_drift,
    account_event,
    payout_event,
    payout_to_heal,
)
from mirakl_connector.stripe.kyc_rules import kyc_reason
from mirakl_connector.stripe.onboarding import OnboardingSettings
from mirakl_connector.stripe.specs import STRIPE_EVENTS

log = logging.getLogger(__name__)

WORKFLOW = STRIPE_EVENTS.name
HEALING_CURSOR_KEY = "stripe_events_healing_cursor"
PAYOUT_HEALING_KEY = "stripe_payouts_healing_at"
#: Stripe keeps events for 30 days; list a little less so the oldest page never vanishes mid-walk.
EVENTS_RETENTION = timedelta(days=30)
_RETENTION_MARGIN = timedelta(minutes=5)

PROCESSED = InboxStatus.PROCESSED.value
IGNORED = InboxStatus.IGNORED.value
RETRY_SCHEDULED = "RETRY_SCHEDULED"
GAVE_UP = "GAVE_UP"
HEALED = "HEALED"
ALREADY_STORED = "ALREADY_STORED"


@dataclass(frozen=True)
class StripeEventsSettings:
    """The ``stripe_events`` section of the connector configuration."""

    commercial_order_metadata_key: str = "mirakl_commercial_order_id"
    batch_size: int = 100
    #: how far back ``heal_connected`` re-reads the failed payouts of recently paid accounts
    #: (a payout can fail days after it was created; docs.stripe.com/payouts#payout-failures)
    payout_days: int = 10
    #: at most one payout re-read per this many hours (the accounts are re-read every run)
    payout_interval_hours: int = 6

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> StripeEventsSettings:
        values = checked_values(cls, values, "stripe_events")
        key = values.get("commercial_order_metadata_key", cls.commercial_order_metadata_key)
        if not isinstance(key, str) or not key:
            raise ConfigurationError("stripe_events.commercial_order_metadata_key must be a string")
        for name in ("batch_size", "payout_days", "payout_interval_hours"):
            size = values.get(name, getattr(cls, name))
            if not isinstance(size, int) or isinstance(size, bool) or size < 1:
                raise ConfigurationError(f"stripe_events.{name} must be a positive integer")
        return cls(**values)


class StripeEvents:
    """The inbox processing and healing job (see the module docstring)."""

    def __init__(
        self,
        *,
        resources: Resources,
        settings: StripeEventsSettings,
        onboarding: OnboardingSettings,
        run_id: str | None = None,
        clock: Any = None,
    ) -> None:
        self._resources = resources
        self.settings = settings
        self.onboarding = onboarding
        self.run_id = run_id
        self._clock = clock or (lambda: datetime.now(UTC))

    # Clients are built on first use: a batch of charge events never needs Mirakl.
    @property
    def ledger(self) -> Ledger:
        ledger: Ledger = self._resources.get("ledger")
        return ledger

    @property
    def stripe(self) -> Any:
        return self._resources.get("stripe")

    @property
    def mirakl(self) -> Any:
        return self._resources.get("mirakl")

    # -- process ---------------------------------------------------------------------------

    def process(self, event_ids: Sequence[str] | None = None) -> BatchSummary:
        """Apply the due inbox events (or exactly ``event_ids``); one outcome per event."""
        summary = BatchSummary(WORKFLOW, "process")
        return run_batch(
            self._due_events(event_ids), self._handle, item_id=lambda e: e.event_id, summary=summary
        )

    def _due_events(self, event_ids: Sequence[str] | None) -> Iterator[InboxEvent]:
        if event_ids:
            for event_id in event_ids:
                event = self.ledger.get_inbox_event(STRIPE, event_id)
                if event is None:
                    raise InvalidItemError("not in the inbox", item_id=event_id)
                if event.status != InboxStatus.PROCESSED:
                    yield event
            return
        now = self._clock()
        batches = self.ledger.iter_inbox(
            statuses=[InboxStatus.RECEIVED, InboxStatus.FAILED],
            source=STRIPE,
            due_before=now,
            batch_size=self.settings.batch_size,
        )
        for batch in batches:
            for event in batch:
                # A FAILED event without a next attempt was given up: only a manual run retries it.
                if event.status == InboxStatus.FAILED and event.next_attempt_at is None:
                    continue
                yield event

    def _handle(self, event: InboxEvent) -> ItemOutcome:
        try:
            status, note = self._apply(event)
        except ConfigurationError:
            raise  # a wrong key or setting is not the event's fault: stop, keep the event as is
        except InvalidItemError as exc:
            # Bad data does not get better by waiting: give up at once, with the reason.
            return self._failed(event, f"invalid data: {exc.reason}", permanent=True)
        except MiraklConnectorError as exc:
            return self._failed(event, str(exc))
        except Exception as exc:  # noqa: BLE001 - recorded on the event, retried, never lost
            log.exception("Unexpected error applying %s", event.event_id)
            return self._failed(event, f"unexpected error: {exc!r}")
        self.ledger.save_inbox_event(settled(event, status, note, now=self._clock()))
        return ItemOutcome(event.event_id, status.value, note)

    def _failed(self, event: InboxEvent, error: str, *, permanent: bool = False) -> ItemOutcome:
        updated = after_failure(event, error, now=self._clock())
        if permanent:
            updated = _give_up(updated)
        self.ledger.save_inbox_event(updated)
        retrying = updated.next_attempt_at is not None
        status = RETRY_SCHEDULED if retrying else GAVE_UP
        log.warning("Event %s (%s) failed: %s (%s)", event.event_id, event.type, error, status)
        return ItemOutcome(event.event_id, status, f"{event.type}: {error}", failed=True)

    def _apply(self, event: InboxEvent) -> tuple[InboxStatus, str | None]:
        reason = handlers.ignore_reason(event.type)
        if reason is not None:
            return InboxStatus.IGNORED, reason
        obj = ((event.payload.get("data") or {}).get("object")) or {}
        if not obj.get("id"):
            raise InvalidItemError("event has no data.object.id", item_id=event.event_id)
        if event.type == event_types.ACCOUNT_UPDATED:
            return self._account_updated(event, obj)
        if event.type == event_types.PAYOUT_FAILED:
            return self._payout_failed(event, obj)
        return self._charge(event, obj)

    def _stale(self, event: InboxEvent, object_id: str) -> tuple[InboxStatus, str] | None:
        """Claim ``object_id`` for this event: ``None`` when claimed, else (a newer event was
        already applied to it) the IGNORED status and why."""
        created = event.event_created or event.created_at or self._clock()
        if self.ledger.claim_object_event(object_id, created, event.event_id):
            return None
        last = self.ledger.last_applied_event(object_id)
        newer = f" ({last[1]})" if last else ""
        return (
            InboxStatus.IGNORED,
            f"superseded: a newer event{newer} was already applied to {object_id}",
        )

    def _account_updated(
        self, event: InboxEvent, account: Mapping[str, Any]
    ) -> tuple[InboxStatus, str | None]:
        account_id = str(account["id"])
        mapping = self.ledger.account_mapping_by_stripe_account(account_id)
        decision = handlers.account_update(mapping, account)
        if isinstance(decision, str):
            early = handlers.early_kyc_status(mapping, account)
            if early is None:
                return InboxStatus.IGNORED, decision
            if (stale := self._stale(event, account_id)) is not None:
                return stale
            self.ledger.upsert_account_mapping(early)
            return (
                InboxStatus.PROCESSED,
                f"shop {early.mirakl_shop_id}: KYC status {early.kyc_status} recorded "
                "(details not submitted yet: nothing written to Mirakl)",
            )
        if (stale := self._stale(event, account_id)) is not None:
            return stale
        saved = self.ledger.upsert_account_mapping(decision.mapping)
        login_url = self.stripe.create_login_link(account_id)
        shop: dict[str, Any] = {
            "shop_id": saved.mirakl_shop_id,
            "shop_additional_fields": [{"code": self.onboarding.link_field, "value": login_url}],
        }
        if decision.kyc_status:
            shop["kyc"] = {
                "status": decision.kyc_status,
                "reason": kyc_reason(account, decision.kyc_status),
            }
        try:
            returns = self.mirakl.update_shops([shop])
        except MiraklApiError as exc:
            raise MiraklConnectorError(f"Mirakl S07 failed: {exc.message}") from exc
        errors = shop_errors([saved.mirakl_shop_id], returns)
        if errors:
            raise MiraklConnectorError(
                f"Mirakl S07 refused shop {saved.mirakl_shop_id}: {errors[saved.mirakl_shop_id]}"
            )
        self.ledger.enqueue_notification(
            ACCOUNT_UPDATED,
            account_updated_payload(saved.mirakl_shop_id, account_id),
            f"{ACCOUNT_UPDATED}:{event.event_id}",
        )
        kyc = decision.kyc_status or "unchanged"
        note = f"shop {saved.mirakl_shop_id}: login link and KYC {kyc} sent"
        return InboxStatus.PROCESSED, note

    def _charge(
        self, event: InboxEvent, charge: Mapping[str, Any]
    ) -> tuple[InboxStatus, str | None]:
        key = self.settings.commercial_order_metadata_key
        intent_metadata = None
        intent_id = handlers.charge_intent_id(charge, key)
        if intent_id and not isinstance(charge.get("payment_intent"), Mapping):
            intent_metadata = self.stripe.retrieve_payment(intent_id).metadata or {}
        commercial_id = handlers.commercial_order_id(charge, key, intent_metadata)
        if commercial_id is None:
            return InboxStatus.IGNORED, "Ignoring event with no Mirakl Commercial Order ID."
        charge_id = str(charge["id"])
        if (stale := self._stale(event, charge_id)) is not None:
            return stale
        existing = self.ledger.get_payment_mapping(charge_id)
        mapping = handlers.payment_mapping_for(charge, commercial_id, existing)
        saved = self.ledger.upsert_payment_mapping(mapping, run_id=self.run_id)
        verb = "created" if existing is None else "updated"
        return (
            InboxStatus.PROCESSED,
            f"payment mapping {verb}: order {commercial_id} {saved.status.value}",
        )

    def _payout_failed(
        self, event: InboxEvent, payout: Mapping[str, Any]
    ) -> tuple[InboxStatus, str | None]:
        payout_id = str(payout["id"])
        decision = handlers.payout_failed(self.ledger.payout_by_payout_id(payout_id), payout)
        if isinstance(decision, str):
            return InboxStatus.IGNORED, decision
        if (stale := self._stale(event, payout_id)) is not None:
            return stale
        self.ledger.save_payouts([decision], run_id=self.run_id)
        return (
            InboxStatus.PROCESSED,
            f"invoice {decision.mirakl_invoice_id}: {decision.status_reason}",
        )

    # -- heal ------------------------------------------------------------------------------

    def heal(self, since: datetime | None = None) -> BatchSummary:
        """Store the handled events Stripe has and the inbox lacks (see the module docstring)."""
        now = self._clock()
        start = self._healing_start(since, now)
        events = list(
            self.stripe.iter_events(
                types=list(event_types.HANDLED_STRIPE_TYPES), created_since=start
            )
        )
        summary = self.store_missing(events)
        newest = max((e.get("created") or 0 for e in events), default=0)
        if newest and since is None:
            self.ledger.set_checkpoint(HEALING_CURSOR_KEY, str(newest))
        summary.notes.append(f"listed {len(events)} event(s) created since {start.isoformat()}")
        return summary

    def store_missing(self, events: Iterable[Mapping[str, Any]]) -> BatchSummary:
        """Store every event of ``events`` not yet in the inbox (marked ``healing``)."""
        summary = BatchSummary(WORKFLOW, "heal")
        events = [e for e in events if e.get("type") in event_types.HANDLED_STRIPE_TYPES]
        known = self.ledger.inbox_event_ids(STRIPE, [str(e.get("id")) for e in events])

        def store(event: Mapping[str, Any]) -> ItemOutcome:
            event_id = str(event.get("id"))
            if event_id in known:
                return ItemOutcome(event_id, ALREADY_STORED)
            new = self.ledger.store_webhook_event(
                stripe_inbox_event(event, received_via=VIA_HEALING)
            )
            if new:
                log.info(
                    "Healed Stripe event %s (%s): its webhook never arrived",
                    event_id,
                    event.get("type"),
                )
            return ItemOutcome(event_id, HEALED if new else ALREADY_STORED, event.get("type"))

        return run_batch(events, store, item_id=lambda e: str(e.get("id")), summary=summary)

    def heal_connected(self) -> BatchSummary:
        """Store the connected accounts' events whose webhook never arrived (module docstring)."""
        now = self._clock()
        events: list[dict[str, Any]] = []
        accounts = 0
        for account in self.stripe.iter_accounts():
            accounts += 1
            mapping = self.ledger.account_mapping_by_stripe_account(str(account["id"]))
            if mapping is not None and account_drift(mapping, account):
                events.append(account_event(account, now))
        notes = [f"read {accounts} account(s)"]
        last = self.ledger.get_checkpoint(PAYOUT_HEALING_KEY)
        interval = timedelta(hours=self.settings.payout_interval_hours)
        if last and now - datetime.fromisoformat(last) < interval:
            notes.append(f"payouts re-read at {last}: next after {interval}")
        else:
            since = now - timedelta(days=self.settings.payout_days)
            paid = self.ledger.accounts_with_payouts_since(since)
            for account_id in paid:
                for payout in self.stripe.iter_payouts(
                    account=account_id, created_since=since, status="failed"
                ):
                    row = self.ledger.payout_by_payout_id(str(payout["id"]))
                    if payout_to_heal(row, payout):
                        events.append(payout_event(payout, account_id, now))
            self.ledger.set_checkpoint(PAYOUT_HEALING_KEY, now.isoformat())
            notes.append(f"re-read the failed payouts of {len(paid)} account(s) since {since:%F}")
        summary = self.store_missing(events)
        summary.notes.extend(notes)
        return summary

    def healing_cursor(self) -> int | None:
        """Newest ``created`` (Unix seconds) the last healing pass saw, if any."""
        value = self.ledger.get_checkpoint(HEALING_CURSOR_KEY)
        return int(value) if value else None

    def _healing_start(self, since: datetime | None, now: datetime) -> datetime:
        oldest = now - EVENTS_RETENTION + _RETENTION_MARGIN
        if since is None:
            cursor = self.healing_cursor()
            since = datetime.fromtimestamp(cursor, UTC) if cursor else oldest
        return max(since, oldest)


def _give_up(event: InboxEvent) -> InboxEvent:
    from dataclasses import replace

    return replace(event, next_attempt_at=None)


def build(resources: Resources, config: Mapping[str, Any], run_id: str | None) -> StripeEvents:
    """Registry entry: the job wired to the run's clients and its configuration sections."""
    return StripeEvents(
        resources=resources,
        settings=StripeEventsSettings.from_mapping(config.get("stripe_events")),
        onboarding=OnboardingSettings.from_mapping(config.get("seller_onboarding")),
        run_id=run_id,
    )
