"""Hyperwallet invoice payments: Mirakl invoices → one Hyperwallet payment each (never two).

Steps (Airflow tasks of ``dags/hyperwallet_invoice_payments.py``):

``pay``
    Reads the invoices to pay (IV01 accounting documents by default, as the seeds describe; SBC11
    seller billing cycles with ``hyperwallet_payments.invoice_source = "SBC11"``) created since
    the start of the last run that read at least one (at most ``hyperwallet.extraction_max_days``
    back; the ``since`` param replaces the window for one run), plus the failed invoices whose
    retry is due. For each: the shop's program and bank account token are read fresh from Mirakl
    (S20), the payments are decided (:mod:`.hyperwallet_payment_decisions`) and sent.
``retry``
    Only the failed invoices whose retry is due (the frequent ``hyperwallet_retries`` DAG).

Never paying twice, whatever is re-run or cleared: Hyperwallet has no idempotency key, so before
any creation the payment is looked up by ``clientPaymentId`` (the invoice or billing cycle id as
``client_payment_id`` says, ``-operatorFee`` for the commission, and the document's other id);
a payment found in any non-failure status is recorded and not created again. Copies of the step
running at once do not both create it: each payment is claimed in the ledger before the lookup
(:data:`SEND_LEASE`). A document Mirakl marks paid is never paid (``paid_in_mirakl``).
The attempt is committed to the ledger before the call: if the process dies after Hyperwallet
answered, the next run finds the payment by that lookup. A lookup that fails stops the item and
queues it for a retry (the incumbent went on and created, which could pay twice).

Failures (an invoice held for a missing bank account token, a refusal by Hyperwallet) go to the
retry queue (:mod:`mirakl_connector.operations.retry_queue`): retried on later runs with a growing
delay, five times, then one e-mail naming the invoice. Nothing is written to Mirakl here: the
invoice is confirmed paid when Hyperwallet notifies the payment COMPLETED
(``hyperwallet_payment_status``).

With the approval gate on (``approval`` settings,
:mod:`mirakl_connector.operations.approval_gate`), a
payment above ``payout_above`` or the first one to a bank account token the ledger never paid is
recorded ON_HOLD ("awaiting approval: …", outcome ``AWAITING_APPROVAL``): not a failure, so not
queued for retries. Every run (``pay`` and ``retry``) reads again the invoices whose held payment
may now go (approved on the payments console, or no longer held by the settings).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mirakl_connector.core.batch import BatchSummary, chunked
from mirakl_connector.core.errors import (
    ConfigurationError,
    InvalidItemError,
)
from mirakl_connector.core.registry import Resources
from mirakl_connector.core.settings import checked_values
from mirakl_connector.hyperwallet.invoice_deciding import InvoiceDeciding
from mirakl_connector.hyperwallet.invoice_outcomes import (
    ALREADY_PAID as ALREADY_PAID,
)
from mirakl_connector.hyperwallet.invoice_outcomes import (
    AWAITING_APPROVAL as AWAITING_APPROVAL,
)
from mirakl_connector.hyperwallet.invoice_outcomes import (
    FAILED as FAILED,
)
from mirakl_connector.hyperwallet.invoice_outcomes import (
    HELD as HELD,
)
from mirakl_connector.hyperwallet.invoice_outcomes import (
    IN_DOUBT as IN_DOUBT,
)
from mirakl_connector.hyperwallet.invoice_outcomes import (
    NOT_HYPERWALLET as NOT_HYPERWALLET,
)
from mirakl_connector.hyperwallet.invoice_outcomes import (
    ON_HOLD as ON_HOLD,
)
from mirakl_connector.hyperwallet.invoice_outcomes import (
    PAID as PAID,
)
from mirakl_connector.hyperwallet.invoice_outcomes import (
    REFUSED as REFUSED,
)
from mirakl_connector.hyperwallet.invoice_outcomes import (
    RETRIABLE_OUTCOMES as RETRIABLE_OUTCOMES,
)
from mirakl_connector.hyperwallet.invoice_outcomes import (
    RETRIES_EXHAUSTED as RETRIES_EXHAUSTED,
)
from mirakl_connector.hyperwallet.invoice_outcomes import (
    RETRY_PENDING as RETRY_PENDING,
)
from mirakl_connector.hyperwallet.invoice_outcomes import (
    SENDING_ELSEWHERE as SENDING_ELSEWHERE,
)
from mirakl_connector.hyperwallet.invoice_outcomes import (
    SKIPPED as SKIPPED,
)
from mirakl_connector.hyperwallet.invoice_outcomes import (
    WOULD_PAY as WOULD_PAY,
)
from mirakl_connector.hyperwallet.invoice_outcomes import (
    InvoiceItem,
    S,
)
from mirakl_connector.hyperwallet.invoice_sending import SEND_LEASE as SEND_LEASE
from mirakl_connector.hyperwallet.invoice_sending import sender_gone as sender_gone
from mirakl_connector.hyperwallet.invoice_sending import sender_id as sender_id
from mirakl_connector.hyperwallet.payment_decisions import (
    BILLING_CYCLE_ID,
    CLIENT_PAYMENT_ID_CONVENTIONS,
    INVOICE_ID,
    INVOICE_SOURCES,
    IV01,
    SBC11,
    ProgramTokens,
    parse_invoice,
    raw_invoice_id,
)
from mirakl_connector.hyperwallet.programs import HyperwalletSettings
from mirakl_connector.hyperwallet.shops import check_programs
from mirakl_connector.hyperwallet.specs import INVOICE_PAYMENTS
from mirakl_connector.ledger import (
    Ledger,
)
from mirakl_connector.mirakl.client import MiraklClient
from mirakl_connector.mirakl.invoices import AUTO_INVOICE, MANUAL_CREDIT
from mirakl_connector.operations.approval_gate import (
    ApprovalSettings,
)
from mirakl_connector.operations.approvals import released_invoices
from mirakl_connector.operations.backlog import (
    DEFAULT_SWEEP_HOURS,
    BacklogClock,
    check_sweep_hours,
    released_since,
)
from mirakl_connector.operations.first_run import GoLive, go_live_from_config
from mirakl_connector.operations.mail import alert_recipients
from mirakl_connector.operations.payout_provider import PayoutProviderRule
from mirakl_connector.operations.retry_queue import RetryQueue, is_exhausted

log = logging.getLogger(__name__)

WORKFLOW = INVOICE_PAYMENTS.name
SETTINGS_SECTION = INVOICE_PAYMENTS.settings_section
WINDOW_KEY = f"{WORKFLOW}_window_start"
CHUNK_SIZE = 100


@dataclass(frozen=True)
class HyperwalletPaymentSettings:
    """The ``hyperwallet_payments`` section (shared by invoice payments and payment status).

    :param invoice_source: ``IV01`` (accounting documents, confirmed with IV07) or ``SBC11``
        (seller billing cycles, confirmed with SBC07) for Mirakl instances that have them.
    :param operator_commissions: also pay the operator's commission of each invoice to the
        operator's bank account of the shop's program.
    :param confirm_linked_manual_documents: IV07 ``confirm_all_linked_manual_documents``.
    :param invoice_search_days: how far back a run naming ``invoice_ids`` looks for them in
        Mirakl (the retries read their documents by id).
    :param backlog_full_sweep_hours: hours between two sweeps of every invoice waiting for its
        shop (see :meth:`HyperwalletInvoicePayments._retry_backlog`).
    :param client_payment_id: ``invoice_id`` or ``billing_cycle_id`` (see
        :attr:`payment_id_convention`); unset, the id of the source's document.
    :param credit_notes: also pay IV01 manual credit notes (``type=MANUAL_CREDIT``), each under
        its own invoice id. Off by default, as the connector's
        ``PAYPAL_HYPERWALLET_OPERATOR_CREDIT_NOTES_ENABLED``: Mirakl rolls a manual credit still
        unpaid into the seller's next automatic invoice, so paying it here as well pays it
        twice (issue #72). With SBC11 there is nothing more to read: the connector 5.3+ pays the
        same billing cycles again (a no-op after the invoices), so the setting only notes that.
    """

    invoice_source: str = IV01
    operator_commissions: bool = True
    confirm_linked_manual_documents: bool = True
    invoice_search_days: int = 15
    client_payment_id: str | None = None
    credit_notes: bool = False
    backlog_full_sweep_hours: int = DEFAULT_SWEEP_HOURS

    @property
    def payment_id_convention(self) -> str:
        """``invoice_id`` or ``billing_cycle_id``: the ``clientPaymentId`` of new payments.

        By default the id of the document read (IV01 → invoice id, SBC11 → billing cycle id),
        as each version of the Hyperwallet connector did; an operator moving from one version
        to the other source keeps the one its payments at Hyperwallet already carry.
        """
        if self.client_payment_id:
            return self.client_payment_id
        return BILLING_CYCLE_ID if self.invoice_source == SBC11 else INVOICE_ID

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> HyperwalletPaymentSettings:
        values = checked_values(cls, values, SETTINGS_SECTION)
        source = values.get("invoice_source", IV01)
        if not isinstance(source, str) or source.upper() not in INVOICE_SOURCES:
            raise ConfigurationError(
                f"{SETTINGS_SECTION}.invoice_source must be IV01 or SBC11, got {source!r}"
            )
        values["invoice_source"] = source.upper()
        convention = values.get("client_payment_id")
        if convention is not None and convention not in CLIENT_PAYMENT_ID_CONVENTIONS:
            raise ConfigurationError(
                f"{SETTINGS_SECTION}.client_payment_id must be one of "
                f"{', '.join(CLIENT_PAYMENT_ID_CONVENTIONS)}, got {convention!r}"
            )
        days = values.get("invoice_search_days", cls.invoice_search_days)
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise ConfigurationError(
                f"{SETTINGS_SECTION}.invoice_search_days must be a positive integer"
            )
        check_sweep_hours(
            values.get("backlog_full_sweep_hours", cls.backlog_full_sweep_hours),
            f"{SETTINGS_SECTION}.backlog_full_sweep_hours",
        )
        return cls(**values)


class HyperwalletInvoicePayments(InvoiceDeciding):
    """The invoice payment job; see the module docstring.

    Its parts live next to it: deciding and holding (:mod:`.invoice_deciding`), sending one
    payment once (:mod:`.invoice_sending`), outcomes and the retry queue
    (:mod:`.invoice_outcomes`)."""

    def __init__(
        self,
        *,
        mirakl: MiraklClient,
        hyperwallet: Any,
        ledger: Ledger,
        settings: HyperwalletSettings,
        payments: HyperwalletPaymentSettings,
        mailer: Any = None,
        email_to: Sequence[str] = (),
        run_id: str | None = None,
        now: Callable[[], datetime] | None = None,
        go_live: GoLive | None = None,
        providers: PayoutProviderRule | None = None,
        approval: ApprovalSettings | None = None,
    ) -> None:
        self.mirakl = mirakl
        self.hyperwallet = hyperwallet
        self.ledger = ledger
        self.settings = settings
        self.payments = payments
        self.run_id = run_id
        #: which payments wait for a person's approval (see
        #: mirakl_connector.operations.approval_gate)
        self.approval = approval or ApprovalSettings()
        self._now = now or (lambda: datetime.now(UTC))
        #: first run without checkpoint: nothing created before this is paid (see first_run)
        self.go_live = go_live or GoLive()
        #: which provider pays each shop (see mirakl_connector.operations.payout_provider)
        self.providers = providers or PayoutProviderRule(
            default="none", hyperwallet_configured=True
        )
        self._raw_shops: dict[int, Mapping[str, Any]] = {}
        #: other ids under which an earlier connector may have paid a payment's document
        self._aliases: dict[str, tuple[str, ...]] = {}
        #: who holds a send claim (one per job object: copies of the step never share it)
        self._sender = sender_id(run_id)
        self.programs = {
            p.name: ProgramTokens(p.name, p.payment_token, p.bank_account_token, p.ignored)
            for p in settings.programs
        }
        self.queue = RetryQueue(
            ledger,
            WORKFLOW,
            max_retries=settings.max_item_retries,
            delay=settings.item_retry_delay,
            mailer=mailer,
            email_to=email_to,
            now=self._now,
        )

    # -- steps -----------------------------------------------------------------------------

    def check(self) -> BatchSummary:
        """Check the credentials and every program token first: a wrong one fails here, once."""
        return check_programs(self.hyperwallet, self.settings, WORKFLOW)

    def pay(
        self,
        *,
        since: datetime | None = None,
        invoice_ids: Sequence[str] | None = None,
        include_paid: bool = False,
        dry_run: bool = False,
    ) -> BatchSummary:
        """Pay the invoices of the window (or ``since``, or exactly ``invoice_ids``) and retries.

        :param invoice_ids: only these invoices, searched from ``since`` or
            ``invoice_search_days`` back; a failed one gets a fresh retry budget.
        :param include_paid: also invoices Mirakl already marks PAID (the incumbent's
            ``includePaid``); the lookup by ``clientPaymentId`` still prevents a second payment.
        """
        summary = BatchSummary(WORKFLOW, "pay", dry_run=dry_run)
        started = self._now()
        self.go_live.require(
            WORKFLOW, WINDOW_KEY, self.ledger.get_checkpoint(WINDOW_KEY), "invoice"
        )
        self._note_commissions(summary)
        self._note_credit_notes(summary)
        self.queue.load()
        if invoice_ids:
            wanted = [str(i) for i in invoice_ids]
            start = since or started - timedelta(days=self.payments.invoice_search_days)
            items = self._find(wanted, start, include_paid=include_paid, changed=True)
            self._process(items, summary, dry_run=dry_run)
            log.info("%s", summary.describe())
            return summary

        start = since or self._window_start()
        summary.notes.append(f"invoices created since {start.isoformat()} ({self._source})")
        read = 0
        seen: set[str] = set()
        for chunk in chunked(self._read(start, include_paid=include_paid), CHUNK_SIZE):
            read += len(chunk)
            seen.update(item.invoice_id for item in chunk)
            self._process(chunk, summary, dry_run=dry_run)
        self._retry_backlog(summary, skip=seen, dry_run=dry_run, scheduled=since is None)
        self._note_exhausted(summary)
        if not dry_run and since is None and read:
            self.ledger.set_checkpoint(WINDOW_KEY, started.isoformat())
            summary.notes.append(f"next window starts at {started.isoformat()}")
        log.info("%s", summary.describe())
        return summary

    def retry(self, *, dry_run: bool = False) -> BatchSummary:
        """Retry only the queued invoices that are due (for the frequent retry schedule)."""
        summary = BatchSummary(WORKFLOW, "retry", dry_run=dry_run)
        self.queue.load()
        self._retry_backlog(summary, skip=set(), dry_run=dry_run, scheduled=True)
        self._note_exhausted(summary)
        log.info("%s", summary.describe())
        return summary

    # -- reading ---------------------------------------------------------------------------

    def _window_start(self) -> datetime:
        """Start of the last run that read an invoice, at most ``extraction_max_days`` back."""
        floor = self._now() - timedelta(days=self.settings.extraction_max_days)
        stored = self.ledger.get_checkpoint(WINDOW_KEY)
        if stored:
            try:
                value = datetime.fromisoformat(stored)
            except ValueError:
                log.warning("Ignoring unreadable checkpoint %s=%r", WINDOW_KEY, stored)
                return floor
            value = value if value.tzinfo else value.replace(tzinfo=UTC)
            return max(value, floor)
        return floor

    def _raw(self, start: datetime | str | None, *, include_paid: bool) -> Iterator[Any]:
        """The documents to pay, filtered by Mirakl as the Hyperwallet connector asks for them.

        Credit notes (``credit_notes``, IV01 only) are listed by a second IV01 query with
        ``type=MANUAL_CREDIT`` and the same filters.

        SBC11: ``start_date`` and ``pay_out_state=TO_PAY`` (no ``id`` filter: the connector
        never sends one, a search by id filters the window's cycles here). IV01:
        ``payment_status=PENDING&states=COMPLETE&type=AUTO_INVOICE`` (connector ≤ 5.2,
        its ``InvoicesExtractBatchJob`` on IV01). ``include_paid`` drops the payment filter
        only; a paid document read that way is still never paid (see ``_one``).
        """
        if self._source == SBC11:
            states = None if include_paid else ("TO_PAY",)
            yield from self.mirakl.iter_billing_cycles(start_date=start, pay_out_states=states)
            return
        # Credit notes: the same filters with type=MANUAL_CREDIT (connector ≤ 5.2,
        # CreditNotesExtractBatchJob``, ≤ 5.2), read after the invoices as it runs them.
        types = [AUTO_INVOICE, MANUAL_CREDIT] if self.payments.credit_notes else [AUTO_INVOICE]
        for doc_type in types:
            yield from self.mirakl.iter_invoices(
                start_date=start,
                payment_status=None if include_paid else "PENDING",
                states=("COMPLETE",),
                doc_type=doc_type,
            )

    def _read(
        self, start: datetime | str | None, *, include_paid: bool, changed: bool = True
    ) -> Iterator[InvoiceItem]:
        for raw in self._raw(start, include_paid=include_paid):
            yield self._parse(raw, include_paid=include_paid, changed=changed)

    def _parse(self, raw: Any, *, include_paid: bool, changed: bool) -> InvoiceItem:
        invoice_id = raw_invoice_id(raw, self._source) or "<invoice without id>"
        try:
            parsed = parse_invoice(
                raw,
                self._source,
                include_paid=include_paid,
                credit_notes=self.payments.credit_notes,
            )
        except InvalidItemError as exc:
            return InvoiceItem(invoice_id, None, problem=exc.reason, changed=changed)
        if isinstance(parsed, str):
            return InvoiceItem(invoice_id, None, skip=parsed, changed=changed)
        return InvoiceItem(invoice_id, parsed, changed=changed)

    def _find(
        self, ids: Sequence[str], start: datetime | str | None, *, include_paid: bool, changed: bool
    ) -> list[InvoiceItem]:
        """The invoices ``ids`` as Mirakl returns them from ``start``; missing ones named."""
        wanted = set(ids)
        found: dict[str, InvoiceItem] = {}
        for raw in self._raw(start, include_paid=include_paid):
            invoice_id = raw_invoice_id(raw, self._source)
            if invoice_id in wanted and invoice_id not in found:
                found[invoice_id] = self._parse(raw, include_paid=include_paid, changed=changed)
        since = start.isoformat() if isinstance(start, datetime) else start
        items = []
        for invoice_id in ids:
            items.append(
                found.get(invoice_id)
                or InvoiceItem(
                    invoice_id,
                    None,
                    problem=f"not returned by Mirakl ({self._source} since {since})",
                    changed=changed,
                )
            )
        return items

    def _retry_backlog(
        self, summary: BatchSummary, *, skip: set[str], dry_run: bool, scheduled: bool
    ) -> None:
        """Process the queued invoices due this run (the queue is loaded).

        Two kinds wait in the queue. An invoice *held* for its shop (no bank account token
        yet, shop TERMINATED or not returned, program unknown: its payments are ON_HOLD) waits
        for the shop to change in Mirakl; the seller extract, the bank account extract and the
        KYC notifications write what it waits for there (S07) too. So between two full sweeps
        it is looked at only when S20 ``updated_since`` says its shop changed (one call when
        nothing did), with a fresh retry budget. Any other queued invoice failed (a refusal,
        an answer lost, Mirakl unreadable): it is retried on the incumbent's growing delay,
        and also at once when its shop changed. A payment a person released on the payments
        console is processed at once. The full sweep
        (``hyperwallet_payments.backlog_full_sweep_hours``) looks at every held invoice not
        out of retries, as the safety net for a change the update-date read missed.
        """
        clock = BacklogClock(
            self.ledger,
            WORKFLOW,
            sweep_hours=self.payments.backlog_full_sweep_hours,
            now=self._now,
        )
        backlog = clock.start(scheduled=scheduled and not dry_run)
        queued = set(self.queue.items)
        changed: set[str] = set()
        ids: list[str] = []
        if queued:
            held = self.ledger.hyperwallet_invoice_ids(statuses=[S.ON_HOLD]) & queued
            ids = [i for i in self.queue.due_ids() if i not in held]
            if backlog.sweep:
                ids += sorted(
                    i for i in held if not is_exhausted(self.queue.items[i], self.queue.max_retries)
                )
            else:
                assert backlog.since is not None
                shops = {
                    int(shop["shop_id"])
                    for shop in self.mirakl.iter_shops(updated_since=backlog.since)
                    if isinstance(shop, Mapping) and str(shop.get("shop_id", "")).isdigit()
                }
                if shops:
                    changed = queued & self.ledger.hyperwallet_invoice_ids(
                        statuses=[S.ON_HOLD, S.FAILED, S.PENDING], shop_ids=shops
                    )
                # a payment a person released on the payments console (its invoice requeued)
                released = released_since(self.ledger, "hyperwallet_payment", backlog.since)
                changed |= queued & {p.invoice_id for p in released}
                ids = [*sorted(changed), *ids]
        # payments the approval gate held that may go now (approved on the payments console, or
        # no longer held by the settings): one ledger read, whatever the queue holds
        ids += released_invoices(self.ledger.engine, self.approval)
        ids = [i for i in dict.fromkeys(ids) if i not in skip]
        if ids:
            self._retry(ids, summary, dry_run=dry_run, changed=changed)
        if backlog.scheduled:
            summary.notes.append(backlog.note("retry queue"))
        clock.finish(backlog)

    def _retry(
        self,
        ids: Sequence[str],
        summary: BatchSummary,
        *,
        dry_run: bool,
        changed: set[str] | frozenset[str] = frozenset(),
    ) -> None:
        """Read the documents ``ids`` by id (100 a call) and process them; those in
        ``changed`` (their shop changed) get a fresh retry budget."""
        summary.notes.append(f"retrying {len(ids)} invoice(s): {', '.join(ids[:20])}")
        wanted = set(ids)
        found: dict[str, InvoiceItem] = {}
        for chunk in chunked(list(ids), CHUNK_SIZE):
            for raw in self._raw_by_id(chunk):
                invoice_id = raw_invoice_id(raw, self._source)
                if invoice_id in wanted and invoice_id not in found:
                    # PAID invoices too: the seller payment may be COMPLETED (the invoice
                    # confirmed) while the commission still waits; the lookup by
                    # clientPaymentId keeps the rest from repeating.
                    found[invoice_id] = self._parse(
                        raw, include_paid=True, changed=invoice_id in changed
                    )
        items = [
            found.get(i)
            or InvoiceItem(
                i,
                None,
                problem=f"not returned by Mirakl ({self._source} by id)",
                changed=i in changed,
            )
            for i in ids
        ]
        for batch in chunked(items, CHUNK_SIZE):
            self._process(batch, summary, dry_run=dry_run)

    def _raw_by_id(self, ids: Sequence[str]) -> Iterator[Any]:
        """The documents ``ids`` whatever their payment state: SBC11 by ``id``, IV01 by
        ``invoice_id`` (with ``states=COMPLETE`` and each type the run pays, as :meth:`_raw`)."""
        if self._source == SBC11:
            yield from self.mirakl.iter_billing_cycles(ids=ids, pay_out_states=None)
            return
        types = [AUTO_INVOICE, MANUAL_CREDIT] if self.payments.credit_notes else [AUTO_INVOICE]
        for doc_type in types:
            yield from self.mirakl.iter_invoices(
                invoice_ids=ids, states=("COMPLETE",), doc_type=doc_type
            )

    # -- notes -----------------------------------------------------------------------------

    def _note_credit_notes(self, summary: BatchSummary) -> None:
        if not self.payments.credit_notes:
            return
        if self._source == SBC11:
            summary.notes.append(
                "credit notes: part of the SBC11 billing cycles (nothing more to pay)"
            )
        else:
            summary.notes.append("credit notes (IV01 MANUAL_CREDIT) paid too")

    def _note_commissions(self, summary: BatchSummary) -> None:
        if self.payments.operator_commissions:
            log.info("Payment of commissions is enabled, retrieving payments for the operator")
        else:
            log.info("Payment of commissions is disabled, skipping processing payments to operator")
            summary.notes.append("operator commissions disabled")

    def _note_exhausted(self, summary: BatchSummary) -> None:
        exhausted = self.queue.exhausted_ids()
        if exhausted:
            summary.notes.append(
                f"{len(exhausted)} invoice(s) out of retries (paid again by a run naming them in "
                f"invoice_ids): {', '.join(sorted(exhausted)[:20])}"
            )


def build(
    resources: Resources, config: Mapping[str, Any], run_id: str | None
) -> HyperwalletInvoicePayments:
    """Registry entry: the job wired to the run's clients and configuration."""
    settings = HyperwalletSettings.from_config(config)
    return HyperwalletInvoicePayments(
        mirakl=resources.get("mirakl"),
        hyperwallet=resources.get("hyperwallet"),
        ledger=resources.get("ledger"),
        settings=settings,
        payments=HyperwalletPaymentSettings.from_mapping(config.get(SETTINGS_SECTION)),
        mailer=lazy_mailer(resources),
        email_to=alert_recipients(config),
        run_id=run_id,
        go_live=GoLive(go_live_from_config(config)),
        providers=PayoutProviderRule.from_config(config),
        approval=ApprovalSettings.from_mapping(config.get("approval")),
    )


class _LazyMailer:
    """Builds the mailer on the first e-mail (most runs send none)."""

    def __init__(self, resources: Resources) -> None:
        self._resources = resources

    def send(self, **kwargs: Any) -> None:
        self._resources.get("mailer").send(**kwargs)


def lazy_mailer(resources: Resources) -> Any:
    """The run's mailer, built when first used; ``None`` when the deployment has none."""
    return None if resources.mailer is None else _LazyMailer(resources)
