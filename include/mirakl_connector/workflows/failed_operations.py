"""Daily alert: one e-mail listing every FAILED transfer, refund and payout in the ledger.

FAILED rows are retried by their own workflows, but a row that keeps failing needs a human (a
closed bank account, a seller without funds, a wrong Stripe setting). Once a day this step lists
them all, with the Mirakl ids an operator searches by, the amount in major units with its
currency, the status and Stripe's or the connector's reason. Only FAILED rows: ON_HOLD ones are
waiting for something expected and ABORTED ones are final. No failure, no e-mail.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mirakl_connector.batch import BatchSummary, ItemOutcome
from mirakl_connector.errors import ConfigurationError
from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.records import PayoutRecord, RefundRecord, TransferRecord
from mirakl_connector.mail import Mailer
from mirakl_connector.money import format_minor
from mirakl_connector.workflows.registry import Resources

log = logging.getLogger(__name__)

WORKFLOW = "failed_operations"
SUBJECT = "[Mirakl connector] Failed operations"
#: Rows listed per section; the counts stay exact (an e-mail of 50 000 rows helps nobody).
MAX_ROWS_PER_SECTION = 500

FailedRow = TransferRecord | RefundRecord | PayoutRecord


@dataclass(frozen=True)
class _Section:
    title: str
    headers: tuple[str, ...]
    rows: list[tuple[str, ...]]
    total: int


class FailedOperationsAlert:
    """Collect the FAILED rows and e-mail them to ``alerts.email_to``."""

    def __init__(self, *, ledger: Ledger, mailer: Mailer | None, recipients: Sequence[str]) -> None:
        self.ledger = ledger
        self.mailer = mailer
        self.recipients = list(recipients)

    def alert(self, *, dry_run: bool = False) -> BatchSummary:
        """Send the e-mail when anything failed; the summary lists what it reported."""
        summary = BatchSummary(WORKFLOW, "alert", dry_run=dry_run)
        failed: dict[type, list[FailedRow]] = {
            TransferRecord: [],
            RefundRecord: [],
            PayoutRecord: [],
        }
        totals = dict.fromkeys(failed, 0)
        for row in self.ledger.iter_failed():
            totals[type(row)] += 1
            summary.add(_outcome(row))
            if len(failed[type(row)]) < MAX_ROWS_PER_SECTION:
                failed[type(row)].append(row)
        if summary.total == 0:
            summary.notes.append("nothing failed: no e-mail sent")
            log.info("No failed transfer, refund or payout: no e-mail")
            return summary
        body = build_html(
            transfers=failed[TransferRecord],
            refunds=failed[RefundRecord],
            payouts=failed[PayoutRecord],
            totals=(totals[TransferRecord], totals[RefundRecord], totals[PayoutRecord]),
        )
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
        f"<p>{total} operation(s) failed and are waiting in the connector's ledger. Each is "
        "retried by its workflow; those that keep failing need a look.</p>"
    ]
    for section in sections:
        if section.total:
            parts.append(_table(section))
    return "\n".join(parts)


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


def _amount(row: FailedRow) -> str:
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


def recipients_from(config: Mapping[str, Any]) -> list[str]:
    """``alerts.email_to`` (a list, or a comma-separated string) without Airflow's parser."""
    alerts = config.get("alerts") or {}
    if not isinstance(alerts, Mapping):
        raise ConfigurationError("mirakl_connector_config.alerts must be an object")
    to = alerts.get("email_to") or []
    if isinstance(to, str):
        to = [part.strip() for part in to.split(",")]
    if not isinstance(to, list | tuple) or not all(isinstance(a, str) for a in to):
        raise ConfigurationError("mirakl_connector_config.alerts.email_to must be a list")
    return [a for a in to if a]


def build(
    resources: Resources, config: Mapping[str, Any], run_id: str | None
) -> FailedOperationsAlert:
    """Registry entry: the alert wired to the ledger, the mailer and ``alerts.email_to``."""
    mailer = resources.get("mailer") if resources.mailer is not None else None
    return FailedOperationsAlert(
        ledger=resources.get("ledger"), mailer=mailer, recipients=recipients_from(config)
    )
