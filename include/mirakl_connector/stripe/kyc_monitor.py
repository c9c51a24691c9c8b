"""KYC status monitor: find the sellers whose Stripe account cannot receive money yet.

One step, ``monitor``, one Airflow task. Every Stripe connected account is listed and given a
Mirakl KYC status (:func:`~.kyc_rules.kyc_status`). For accounts mapped to a shop:

* the status is stored on the account mapping (``kyc_status``); the payment split holds the
  shop's transfers while it is PENDING_SUBMISSION, PENDING_APPROVAL or REFUSED, and lets them go
  when it clears;
* with ``kyc_monitor.update_mirakl`` on (off by default, like the incumbent's
  ``KYC_MIRAKL_SHOP_DISABLE_UPDATE``), a change to a problem status is written to the shop with
  S07 (the status, the reason, and a fresh account link in the link field), and a change back
  to APPROVED writes APPROVED and an Express dashboard login link. The shop enters the retry
  queue before its new status is saved and leaves it once S07 succeeded, so a failed update (or
  a run that died half-way) is written again next run;
* ONE e-mail, ``[Mirakl connector] KYC required``, lists the accounts whose problem status is
  new since they were last reported (``kyc_reported_status``); no e-mail when nothing is new.

Deliberate changes from the Stripe connector: the monitor never writes the shop's ``ignored``
flag (that flag belongs to the Mirakl ``stripe-ignored`` field and the onboarding job; the
incumbent's two writers overwrote each other and made transfers IGNORED for good); it does not
re-send the same e-mail every run; and it creates links only when it writes them to Mirakl.

A dry run computes and reports the statuses: no ledger write, no link, no S07, no e-mail.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from mirakl_connector.core.batch import BatchSummary, ItemOutcome, chunked
from mirakl_connector.core.errors import MiraklApiError, PaymentProviderError
from mirakl_connector.core.registry import Resources
from mirakl_connector.core.settings import checked_values
from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.records import AccountMapping
from mirakl_connector.mirakl.client import MiraklClient
from mirakl_connector.mirakl.shops import shop_errors
from mirakl_connector.operations.mail import Mailer, alert_recipients
from mirakl_connector.operations.retry_queue import RetryQueue
from mirakl_connector.stripe.gateway import StripeGateway
from mirakl_connector.stripe.kyc_rules import APPROVED, PROBLEM_STATUSES, kyc_reason, kyc_status
from mirakl_connector.stripe.onboarding import (
    OnboardingSettings,
    new_token,
    usable_token,
)
from mirakl_connector.stripe.specs import KYC_MONITOR

log = logging.getLogger(__name__)

WORKFLOW = KYC_MONITOR.name
EMAIL_SUBJECT = "[Mirakl connector] KYC required"
CHUNK_SIZE = 100
#: Summary status of an account for which Stripe's state gives no KYC status.
NO_STATUS = "NO_STATUS"
#: Summary statuses of a KYC update not written to Mirakl: its first failure (alerted on), and
#: a failed retry (counted only).
UPDATE_FAILED = "MIRAKL_UPDATE_FAILED"
UPDATE_RETRY_PENDING = "MIRAKL_UPDATE_RETRY_PENDING"


@dataclass(frozen=True)
class KycMonitorSettings:
    """The ``kyc_monitor`` section of the connector configuration."""

    enabled: bool = True
    update_mirakl: bool = False

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> KycMonitorSettings:
        values = checked_values(cls, values, "kyc_monitor")
        return cls(**values)


@dataclass(frozen=True)
class KycReport:
    """One line of the "KYC required" e-mail."""

    shop_id: int
    account_id: str
    status: str
    reason: str


@dataclass
class _MiraklUpdate:
    """An S07 entry to write for one shop, and the link it carries."""

    mapping: AccountMapping
    status: str
    reason: str
    link: str | None = None
    token: str | None = None  # set when a new onboarding token goes with the link


def mirakl_update_due(status: str | None, previous: str | None, *, retrying: bool) -> str | None:
    """Which KYC status to write to Mirakl now (``None``: nothing to write).

    A problem status is written when it is new (or its last write failed); APPROVED only when it
    ends a problem (an account that was always fine needs no KYC update from us).
    """
    if status in PROBLEM_STATUSES and (status != previous or retrying):
        return status
    if status == APPROVED and (previous in PROBLEM_STATUSES or retrying):
        return status
    return None


def render_email(reports: Sequence[KycReport]) -> str:
    """The HTML body: one table row per account (escaped: reasons come from Stripe)."""
    rows = "\n".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(v))}</td>" for v in (r.shop_id, r.account_id, r.status, r.reason)
        )
        + "</tr>"
        for r in reports
    )
    return (
        "<p>These sellers' Stripe accounts need attention before they can receive transfers "
        "(their transfers are on hold until the status clears):</p>\n"
        '<table border="1" cellpadding="4" cellspacing="0">\n'
        "<tr><th>Mirakl shop id</th><th>Stripe account id</th><th>KYC status</th>"
        "<th>Reason</th></tr>\n"
        f"{rows}\n</table>\n"
        "<p>Each account is listed once per status change.</p>"
    )


class KycMonitor:
    """The KYC monitor job; see the module docstring."""

    def __init__(
        self,
        *,
        mirakl: Callable[[], MiraklClient],
        stripe: StripeGateway,
        ledger: Ledger,
        mailer: Callable[[], Mailer],
        settings: KycMonitorSettings,
        links: OnboardingSettings,
        recipients: Sequence[str],
        run_id: str | None = None,
    ) -> None:
        self._mirakl_factory = mirakl
        self.stripe = stripe
        self.ledger = ledger
        self._mailer_factory = mailer
        self.settings = settings
        self.links = links
        self.recipients = tuple(recipients)
        self.run_id = run_id

    @property
    def mirakl(self) -> MiraklClient:
        return self._mirakl_factory()

    def monitor(self, *, dry_run: bool = False) -> BatchSummary:
        """Compute every mapped account's KYC status, record it, tell Mirakl and the operator."""
        summary = BatchSummary(WORKFLOW, "monitor", dry_run=dry_run)
        if not self.settings.enabled:
            summary.notes.append("the KYC monitor is disabled (kyc_monitor.enabled)")
            return summary
        mappings = {m.stripe_account_id: m for m in self.ledger.list_account_mappings()}
        queue = RetryQueue(
            self.ledger, WORKFLOW, first_status=UPDATE_FAILED, retry_status=UPDATE_RETRY_PENDING
        )
        queued = set(queue.load())
        updates: list[_MiraklUpdate] = []
        to_report: list[KycReport] = []
        unmapped = 0

        for account in self.stripe.iter_accounts():
            mapping = mappings.get(str(account.get("id")))
            if mapping is None:
                unmapped += 1
                continue
            status = kyc_status(account)
            reason = kyc_reason(account, status) if status else None
            notes = []
            if status != mapping.kyc_status:
                notes.append(f"KYC status {mapping.kyc_status or 'none'} → {status or 'none'}")
            retrying = str(mapping.mirakl_shop_id) in queued
            # A status onboarding or a webhook recorded before any report was never written to
            # Mirakl by this monitor: it is new for Mirakl.
            told = mapping.kyc_status if mapping.kyc_reported_status is not None else None
            due = mirakl_update_due(status, told, retrying=retrying)
            if due and self.settings.update_mirakl:
                updates.append(_MiraklUpdate(mapping, due, reason or due))
                notes.append("Mirakl KYC update due")
                if not retrying and not dry_run:
                    # Queued before the new status is saved: if the run dies before S07, the
                    # next run still writes it (the status itself will look unchanged then).
                    queue.mark(str(mapping.mirakl_shop_id), f"KYC {due} to write to Mirakl")
            elif retrying and not dry_run:
                queue.clear(str(mapping.mirakl_shop_id))
            if status in PROBLEM_STATUSES and status != mapping.kyc_reported_status:
                to_report.append(
                    # a problem status always has its reason (kyc_reason)
                    KycReport(
                        mapping.mirakl_shop_id, mapping.stripe_account_id, status, reason or ""
                    )
                )
                notes.append("to be reported by e-mail")

            saved = replace(mapping, kyc_status=status)
            if status not in PROBLEM_STATUSES:
                # Nothing to report; remember it so that a problem coming back is new again.
                saved = replace(saved, kyc_reported_status=status)
            if not dry_run and saved != mapping:
                self.ledger.upsert_account_mapping(saved)
            summary.add(
                ItemOutcome(
                    f"shop {mapping.mirakl_shop_id} ({mapping.stripe_account_id})",
                    status or NO_STATUS,
                    "; ".join(notes) or reason,
                )
            )

        if unmapped:
            summary.notes.append(f"{unmapped} Stripe account(s) are not mapped to a shop")
        if updates:
            if dry_run:
                summary.notes.append(f"{len(updates)} Mirakl KYC update(s) would be written")
            else:
                self._update_mirakl(updates, queue, queued, summary)
        if to_report:
            self._send_email(to_report, summary, dry_run=dry_run)
        log.info("%s", summary.describe())
        return summary

    # -- Mirakl --------------------------------------------------------------------------------

    def _update_mirakl(
        self,
        updates: list[_MiraklUpdate],
        queue: RetryQueue,
        queued: set[str],
        summary: BatchSummary,
    ) -> None:
        """Create each shop's link, S07 status + link 100 shops a call, queue what failed."""
        ready: list[_MiraklUpdate] = []
        for update in updates:
            try:
                self._add_link(update)
            except PaymentProviderError as exc:
                reason = f"Stripe error: {exc.message}"
                summary.add(self._fail(update, reason, queue, queued))
                continue
            ready.append(update)
        for chunk in chunked(ready, CHUNK_SIZE):
            shop_ids = [u.mapping.mirakl_shop_id for u in chunk]
            try:
                returns = self.mirakl.update_shops([self._s07_entry(u) for u in chunk])
                failures = shop_errors(shop_ids, returns)
            except MiraklApiError as exc:
                failures = {i: f"Mirakl S07 failed: {exc.message}" for i in shop_ids}
            for update in chunk:
                shop_id = update.mapping.mirakl_shop_id
                if shop_id in failures:
                    summary.add(self._fail(update, failures[shop_id], queue, queued))
                    continue
                if update.token:
                    current = self.ledger.account_mappings_by_shop([shop_id]).get(shop_id)
                    if current is not None and not usable_token(
                        current.onboarding_token, accept_legacy=False
                    ):
                        self.ledger.upsert_account_mapping(
                            replace(current, onboarding_token=update.token)
                        )
                queue.clear(str(shop_id))
                summary.add(
                    ItemOutcome(
                        f"shop {shop_id}",
                        "MIRAKL_UPDATED",
                        f"KYC {update.status} written to Mirakl",
                    )
                )

    def _add_link(self, update: _MiraklUpdate) -> None:
        """An account link to finish verification, or a dashboard login link once approved."""
        mapping = update.mapping
        if update.status == APPROVED:
            update.link = self.stripe.create_login_link(mapping.stripe_account_id)
            return
        token = usable_token(mapping.onboarding_token, accept_legacy=False) or new_token()
        update.token = None if token == mapping.onboarding_token else token
        update.link = self.stripe.create_account_link(
            mapping.stripe_account_id,
            refresh_url=self.links.refresh_url(token),
            return_url=self.links.return_url_for(self.mirakl.base_url),
        )

    def _s07_entry(self, update: _MiraklUpdate) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "shop_id": update.mapping.mirakl_shop_id,
            "kyc": {"status": update.status, "reason": update.reason},
        }
        if update.link:
            entry["shop_additional_fields"] = [
                {"code": self.links.link_field, "value": update.link}
            ]
        return entry

    def _fail(
        self, update: _MiraklUpdate, reason: str, queue: RetryQueue, queued: set[str]
    ) -> ItemOutcome:
        """Queue the update for the next run; alert once, when the shop enters the retry queue
        (was not ``queued`` when the run started), later failures are counted only."""
        shop_id = str(update.mapping.mirakl_shop_id)
        first = shop_id not in queued
        outcome = queue.fail(shop_id, reason, first=first, label=f"shop {shop_id}")
        log.warning("Shop %s: KYC update not written to Mirakl: %s", shop_id, reason)
        return outcome

    # -- e-mail -------------------------------------------------------------------------------

    def _send_email(
        self, reports: list[KycReport], summary: BatchSummary, *, dry_run: bool
    ) -> None:
        """Send ONE e-mail for every newly seen problem, then remember what was reported.

        The reported status is saved only after the e-mail went out: if sending fails the step
        fails, and its retry sends the same list again (at least once, never silently lost).
        """
        if dry_run:
            summary.notes.append(f"the KYC e-mail would list {len(reports)} account(s)")
            return
        if not self.recipients:
            summary.notes.append(
                f"{len(reports)} account(s) need KYC attention but alerts.email_to is empty: "
                "no e-mail sent (they will be listed once a recipient is configured)"
            )
            log.error("KYC e-mail not sent: no recipient configured (alerts.email_to)")
            return
        reports = sorted(reports, key=lambda r: r.shop_id)
        self._mailer_factory().send(
            to=self.recipients, subject=EMAIL_SUBJECT, html=render_email(reports)
        )
        mappings = self.ledger.account_mappings_by_shop(r.shop_id for r in reports)
        for report in reports:
            mapping = mappings.get(report.shop_id)
            if mapping is not None:
                self.ledger.upsert_account_mapping(
                    replace(mapping, kyc_reported_status=report.status)
                )
        summary.notes.append(f"KYC e-mail sent for {len(reports)} account(s)")


def build(resources: Resources, config: Mapping[str, Any], run_id: str | None) -> KycMonitor:
    """Registry entry: ``config["kyc_monitor"]``, with the link settings of ``seller_onboarding``
    (one link field and one refresh URL for both jobs)."""
    return KycMonitor(
        mirakl=lambda: resources.get("mirakl"),
        stripe=resources.get("stripe"),
        ledger=resources.get("ledger"),
        mailer=lambda: resources.get("mailer"),
        settings=KycMonitorSettings.from_mapping(config.get("kyc_monitor")),
        links=OnboardingSettings.from_mapping(config.get("seller_onboarding")),
        recipients=alert_recipients(config),
        run_id=run_id,
    )
