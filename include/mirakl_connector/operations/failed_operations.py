"""Daily alert: one e-mail of what failed, what is being retried and what waits too long.

FAILED rows are retried by their own workflows, but a row that keeps failing needs a human (a
closed bank account, a seller without funds, a wrong Stripe setting). Once a day this step lists,
for both providers, with the ids an operator searches by, the amount in major units with its
currency, the status and the provider's or the connector's reason:

* FAILED Stripe transfers, refunds and payouts;
* FAILED Hyperwallet payments: seller payments Hyperwallet refused, or reported failed later
  (``RETURNED`` by the bank, ``RECALLED``...), and operator commissions that failed;
* operator commissions refused (ABORTED, e.g. a negative commission Hyperwallet cannot take)
  in the last day: they are final, so they are named once, the day they were decided;
* the retry queues (``pending_items``): shops, bank accounts and invoices a Hyperwallet
  workflow retries with a growing delay;
* ON_HOLD rows of every kind older than ``failed_operations.on_hold_max_age_days`` (3): a
  hold is expected for a while (KYC pending, invoice not paid yet), not for days.

Nothing in any section, no e-mail. Reads only.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mirakl_connector.core.batch import BatchSummary, ItemOutcome
from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.core.money import format_minor
from mirakl_connector.core.registry import Resources
from mirakl_connector.core.settings import checked_values
from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.queries import (
    HW_OPERATOR_FEE,
    ConsoleQueries,
    Item,
    ItemFilters,
    RetryEntry,
)
from mirakl_connector.ledger.records import (
    HyperwalletPaymentStatus,
    PayoutRecord,
    RefundRecord,
    TransferRecord,
)
from mirakl_connector.operations.mail import Mailer, alert_recipients
from mirakl_connector.operations.retry_queue import RETRY_QUEUED
from mirakl_connector.operations.specs import FAILED_OPERATIONS

log = logging.getLogger(__name__)

WORKFLOW = FAILED_OPERATIONS.name
SUBJECT = "[Mirakl connector] Failed operations"
#: Rows listed per section; the counts stay exact (an e-mail of 50 000 rows helps nobody).
MAX_ROWS_PER_SECTION = 500

#: Section of ``mirakl_connector_config`` read by :class:`FailedOperationsSettings`.
SETTINGS_SECTION = FAILED_OPERATIONS.settings_section
#: How far back an ABORTED operator commission is named (the alert runs daily).
REFUSED_LOOKBACK = timedelta(days=1)

FailedRow = TransferRecord | RefundRecord | PayoutRecord


@dataclass(frozen=True)
class FailedOperationsSettings:
    """The ``failed_operations`` section of the connector configuration.

    :param on_hold_max_age_days: an ON_HOLD row created longer ago than this many days is
        listed as waiting too long (whole days, at least 1).
    """

    on_hold_max_age_days: int = 3

    def __post_init__(self) -> None:
        if self.on_hold_max_age_days < 1:
            raise ConfigurationError(
                f"{SETTINGS_SECTION}.on_hold_max_age_days must be at least 1 (days), got "
                f"{self.on_hold_max_age_days!r}"
            )

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> FailedOperationsSettings:
        return cls(**checked_values(cls, values, SETTINGS_SECTION))


@dataclass
class _Others:
    """What the alert lists beyond the Stripe FAILED rows (both providers, queues, holds)."""

    hw_failed: list[Item] = field(default_factory=list)
    hw_failed_total: int = 0
    refused_fees: list[Item] = field(default_factory=list)
    retries: list[RetryEntry] = field(default_factory=list)
    retries_total: int = 0
    held: list[Item] = field(default_factory=list)
    held_total: int = 0

    @property
    def total(self) -> int:
        return self.hw_failed_total + len(self.refused_fees) + self.retries_total + self.held_total


@dataclass(frozen=True)
class _Section:
    title: str
    headers: tuple[str, ...]
    rows: list[tuple[str, ...]]
    total: int


class FailedOperationsAlert:
    """Collect the FAILED rows and e-mail them to ``alerts.email_to``."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        mailer: Mailer | None,
        recipients: Sequence[str],
        settings: FailedOperationsSettings | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.ledger = ledger
        self.mailer = mailer
        self.recipients = list(recipients)
        self.settings = settings or FailedOperationsSettings()
        self._now = now or (lambda: datetime.now(UTC))

    def alert(self, *, dry_run: bool = False) -> BatchSummary:
        """Send the e-mail when anything failed; the summary lists what it reported."""
        summary = BatchSummary(WORKFLOW, "alert", dry_run=dry_run)
        transfers: list[TransferRecord] = []
        refunds: list[RefundRecord] = []
        payouts: list[PayoutRecord] = []
        # each row to the list of its type (a FailedRow of that type)
        failed: dict[type, list[Any]] = {
            TransferRecord: transfers,
            RefundRecord: refunds,
            PayoutRecord: payouts,
        }
        totals = dict.fromkeys(failed, 0)
        for row in self.ledger.iter_failed():
            totals[type(row)] += 1
            summary.add(_outcome(row))
            if len(failed[type(row)]) < MAX_ROWS_PER_SECTION:
                failed[type(row)].append(row)
        others = self._others(summary)
        if summary.total == 0:
            summary.notes.append(
                "nothing failed, nothing to retry, nothing on hold too long: no e-mail sent"
            )
            log.info(
                "No failed operation on either provider, no retry queued, nothing on hold for "
                "more than %d day(s): no e-mail",
                self.settings.on_hold_max_age_days,
            )
            return summary
        body = build_html(
            transfers=transfers,
            refunds=refunds,
            payouts=payouts,
            totals=(totals[TransferRecord], totals[RefundRecord], totals[PayoutRecord]),
        ) + _other_sections(others, self.settings.on_hold_max_age_days)
        if dry_run:
            summary.notes.append(f"dry run: e-mail to {len(self.recipients)} recipient(s) not sent")
            return summary
        if not self.recipients:
            raise ConfigurationError(
                f"{summary.total} failed operation(s) to report but no recipient: set "
                "alerts.email_to in the mirakl_connector_config Variable"
            )
        if self.mailer is None:
            raise ConfigurationError("this deployment provides no mailer")
        self.mailer.send(to=self.recipients, subject=SUBJECT, html=body)
        summary.notes.append(f"e-mail sent to {len(self.recipients)} recipient(s)")
        log.info("Failed operations e-mail sent (%d row(s))", summary.total)
        return summary

    def _others(self, summary: BatchSummary) -> _Others:
        """Hyperwallet failures and refusals, retry queues, long holds; counted in ``summary``."""
        queries = ConsoleQueries(self.ledger.engine)
        now = self._now()
        others = _Others()
        for item in queries.iter_items("failed", ItemFilters(provider="hyperwallet")):
            others.hw_failed_total += 1
            summary.add(_item_outcome(item))
            if len(others.hw_failed) < MAX_ROWS_PER_SECTION:
                others.hw_failed.append(item)
        refused = ItemFilters(
            status=HyperwalletPaymentStatus.ABORTED.value,
            workflow=HW_OPERATOR_FEE,
            updated_since=now - REFUSED_LOOKBACK,
        )
        for item in queries.iter_items(None, refused):
            summary.add(_item_outcome(item, "OPERATOR_FEE_REFUSED"))
            if len(others.refused_fees) < MAX_ROWS_PER_SECTION:
                others.refused_fees.append(item)
        others.retries, others.retries_total = queries.retry_queue(limit=MAX_ROWS_PER_SECTION)
        for entry in others.retries:
            summary.add(ItemOutcome(f"{entry.workflow}/{entry.item_id}", RETRY_QUEUED,
                                    entry.reason))  # fmt: skip
        if others.retries_total > len(others.retries):  # the rows past the e-mail's cap
            summary.counts[RETRY_QUEUED] += others.retries_total - len(others.retries)
        cutoff = now - timedelta(days=self.settings.on_hold_max_age_days)
        for item in queries.iter_items("waiting", ItemFilters(created_before=cutoff)):
            others.held_total += 1
            summary.add(_item_outcome(item, "ON_HOLD_TOO_LONG"))
            if len(others.held) < MAX_ROWS_PER_SECTION:
                others.held.append(item)
        return others


def build_html(
    *,
    transfers: Sequence[TransferRecord],
    refunds: Sequence[RefundRecord],
    payouts: Sequence[PayoutRecord],
    totals: tuple[int, int, int] | None = None,
) -> str:
    """The e-mail body: one table per kind of operation (values escaped: ids come from Mirakl)."""
    t_total, r_total, p_total = totals or (len(transfers), len(refunds), len(payouts))
    sections = [
        _Section(
            "Transfers",
            ("Internal ID", "Mirakl ID", "Type", "Shop", "Amount", "Status", "Reason"),
            [
                (
                    _s(r.id),
                    r.mirakl_id,
                    str(r.type),
                    _s(r.mirakl_shop_id),
                    _amount(r),
                    str(r.status),
                    r.status_reason or "",
                )
                for r in transfers
            ],  # fmt: skip
            t_total,
        ),
        _Section(
            "Refunds",
            ("Internal ID", "Mirakl refund ID", "Mirakl order ID", "Amount", "Status", "Reason"),
            [
                (
                    _s(r.id),
                    r.mirakl_refund_id,
                    _s(r.mirakl_order_id),
                    _amount(r),
                    str(r.status),
                    r.status_reason or "",
                )
                for r in refunds
            ],  # fmt: skip
            r_total,
        ),
        _Section(
            "Payouts",
            ("Internal ID", "Mirakl invoice ID", "Shop", "Amount", "Status", "Reason"),
            [
                (
                    _s(r.id),
                    r.mirakl_invoice_id,
                    _s(r.mirakl_shop_id),
                    _amount(r),
                    str(r.status),
                    r.status_reason or "",
                )
                for r in payouts
            ],  # fmt: skip
            p_total,
        ),
    ]
    total = t_total + r_total + p_total
    parts = [
        f"<p>{total} Stripe operation(s) failed and are waiting in the connector's ledger. "
        "Each is retried by its workflow; those that keep failing need a look.</p>"
        if total
        else "<p>No Stripe transfer, refund or payout failed.</p>"
    ]
    for section in sections:
        if section.total:
            parts.append(_table(section))
    return "\n".join(parts)


def _other_sections(others: _Others, max_age_days: int) -> str:
    """Hyperwallet failures, refused commissions, retry queues and long holds (escaped)."""
    sections = [
        _Section(
            "Hyperwallet payments failed or returned",
            (
                "Internal ID",
                "Client payment ID",
                "Kind",
                "Shop",
                "Amount",
                "Status",
                "Reason",
                "Attempts",
            ),
            [
                (
                    _s(i.id),
                    i.mirakl_id,
                    i.workflow,
                    _s(i.shop_id),
                    _amount(i),
                    i.status,
                    i.reason or "",
                    _s(i.attempts),
                )
                for i in others.hw_failed
            ],
            others.hw_failed_total,
        ),  # fmt: skip
        _Section(
            "Operator commissions refused (last 24 hours)",
            ("Internal ID", "Client payment ID", "Amount", "Status", "Reason"),
            [
                (_s(i.id), i.mirakl_id, _amount(i), i.status, i.reason or "")
                for i in others.refused_fees
            ],
            len(others.refused_fees),
        ),  # fmt: skip
        _Section(
            "Retry queues (shops, bank accounts, invoices retried by their workflow)",
            ("Workflow", "Item", "Attempts", "First failure", "Last failure", "Reason"),
            [
                (
                    e.workflow,
                    e.item_id,
                    _s(e.attempts),
                    _when(e.first_failed_at),
                    _when(e.last_failed_at),
                    e.reason or "",
                )
                for e in others.retries
            ],
            others.retries_total,
        ),  # fmt: skip
        _Section(
            f"On hold for more than {max_age_days} day(s)",
            ("Provider", "Workflow", "Item", "Shop", "Amount", "Status", "Reason", "Since"),
            [
                (
                    i.provider,
                    i.workflow,
                    i.mirakl_id,
                    _s(i.shop_id),
                    _amount(i),
                    i.status,
                    i.reason or "",
                    _when(i.created_at),
                )
                for i in others.held
            ],
            others.held_total,
        ),  # fmt: skip
    ]
    return "\n".join(_table(section) for section in sections if section.total)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


def _item_outcome(item: Item, status: str | None = None) -> ItemOutcome:
    return ItemOutcome(
        f"{item.entity}/{item.mirakl_id}", status or item.status, item.reason, item.amount,
        item.currency,
    )  # fmt: skip


def _table(section: _Section) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in section.headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in row) + "</tr>" for row in section.rows
    )
    more = section.total - len(section.rows)
    tail = f"<p>... and {more} more.</p>" if more > 0 else ""
    return (
        f"<h3>{esc(section.title)} ({section.total})</h3>"
        f"<table border='1' cellpadding='4'><tr>{head}</tr>{body}</table>{tail}"
    )


def _amount(row: FailedRow | Item) -> str:
    if row.amount is None or not row.currency:
        return ""
    try:
        return format_minor(row.amount, row.currency)
    except Exception:  # noqa: BLE001 - a bad currency must not hide the rest of the alert
        return f"{row.amount} (minor units) {row.currency}"


def _s(value: object) -> str:
    return "" if value is None else str(value)


def _item_id(row: FailedRow) -> str:
    if isinstance(row, TransferRecord):
        return f"{row.type}/{row.mirakl_id}"
    if isinstance(row, RefundRecord):
        return f"{row.type}/{row.mirakl_refund_id}"
    return f"PAYOUT/{row.mirakl_invoice_id}"


def _outcome(row: FailedRow) -> ItemOutcome:
    # Not ``failed``: the alert did its job; the rows' own workflows already reported them.
    return ItemOutcome(_item_id(row), str(row.status), row.status_reason, row.amount, row.currency)


def build(
    resources: Resources, config: Mapping[str, Any], run_id: str | None
) -> FailedOperationsAlert:
    """Registry entry: the alert wired to the ledger, the mailer and ``alerts.email_to``."""
    mailer = resources.get("mailer") if resources.mailer is not None else None
    return FailedOperationsAlert(
        ledger=resources.get("ledger"),
        mailer=mailer,
        recipients=alert_recipients(config),
        settings=FailedOperationsSettings.from_mapping(config.get(SETTINGS_SECTION)),
    )
