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
retry queue (:mod:`mirakl_connector.hyperwallet.retries`): retried on later runs with a growing
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
import os
import socket
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from mirakl_connector.core.batch import BatchSummary, ItemOutcome, chunked, run_batch
from mirakl_connector.core.errors import (
    ConfigurationError,
    InvalidItemError,
    MiraklConnectorError,
    PaymentProviderError,
)
from mirakl_connector.core.registry import Resources
from mirakl_connector.core.settings import checked_values
from mirakl_connector.hyperwallet.errors import HyperwalletApiError
from mirakl_connector.hyperwallet.payment_decisions import (
    AUTO_INVOICE,
    BILLING_CYCLE_ID,
    CLIENT_PAYMENT_ID_CONVENTIONS,
    INVOICE_ID,
    INVOICE_SOURCES,
    IV01,
    MANUAL_CREDIT,
    SBC11,
    HwInvoice,
    ProgramTokens,
    ShopTokens,
    client_payment_base,
    is_live,
    known_payment_ids,
    ledger_status,
    live_payment,
    operator_fee_id,
    parse_invoice,
    payment_body,
    plan_invoice_payments,
    raw_invoice_id,
    refresh_payment,
    shop_tokens,
)
from mirakl_connector.hyperwallet.programs import HyperwalletSettings
from mirakl_connector.hyperwallet.shops import check_programs
from mirakl_connector.hyperwallet.specs import INVOICE_PAYMENTS
from mirakl_connector.ledger import (
    HyperwalletPayment,
    HyperwalletPaymentKind,
    HyperwalletPaymentStatus,
    Ledger,
)
from mirakl_connector.ledger.claims import ClaimKind, claim_documents, find_claims
from mirakl_connector.ledger.manual_rules import is_held_record
from mirakl_connector.ledger.store import LedgerConflictError
from mirakl_connector.mirakl.client import MiraklClient
from mirakl_connector.operations.approval_gate import (
    ApprovalGate,
    ApprovalSettings,
    gate_hyperwallet_payment,
    is_decidable,
)
from mirakl_connector.operations.approvals import gate_for, released_invoices
from mirakl_connector.operations.backlog import (
    DEFAULT_SWEEP_HOURS,
    BacklogClock,
    check_sweep_hours,
    released_since,
)
from mirakl_connector.operations.first_run import GoLive, go_live_from_config
from mirakl_connector.operations.mail import alert_recipients
from mirakl_connector.operations.payout_provider import HYPERWALLET, PayoutProviderRule
from mirakl_connector.operations.retry_queue import RetryQueue, is_exhausted
from mirakl_connector.operations.send_once import (
    Recording,
    Refused,
    SendResult,
    Unknown,
    Written,
    attempt_once,
    record_in_doubt,
    refused_or_unknown,
    send_and_record,
)

log = logging.getLogger(__name__)

WORKFLOW = INVOICE_PAYMENTS.name
SETTINGS_SECTION = INVOICE_PAYMENTS.settings_section
WINDOW_KEY = f"{WORKFLOW}_window_start"
CHUNK_SIZE = 100

S = HyperwalletPaymentStatus

# Item outcomes (one per payment; an invoice that could not be planned gets one for itself).
PAID = "PAID"
ALREADY_PAID = "ALREADY_PAID"
WOULD_PAY = "WOULD_PAY"
IN_DOUBT = "IN_DOUBT"
FAILED = "FAILED"
ON_HOLD = "ON_HOLD"
REFUSED = "REFUSED"
SKIPPED = "SKIPPED"
#: A person holds the payment on the payments console: neither sent nor queued until released.
HELD = "HELD"
#: The invoice's shop is paid by the other provider (mirakl_connector.operations.payout_provider),
#: or the
#: invoice is already claimed by it (mirakl_connector.ledger.claims): never paid here.
NOT_HYPERWALLET = "NOT_HYPERWALLET"
RETRY_PENDING = "RETRY_PENDING"
RETRIES_EXHAUSTED = "RETRIES_EXHAUSTED"
#: Held for a person's approval (the approval gate): not a failure, not retried by itself.
AWAITING_APPROVAL = "AWAITING_APPROVAL"
#: Another copy of the step holds the payment's send claim (it is being sent): retried later.
SENDING_ELSEWHERE = "SENDING_ELSEWHERE"
#: Outcomes after which the invoice is queued for a retry.
RETRIABLE_OUTCOMES = frozenset({FAILED, IN_DOUBT, ON_HOLD, SENDING_ELSEWHERE})
#: How long one run's claim to send a payment keeps the others away: the lookup and the
#: creation (each at most a few HTTP timeouts and retries) fit well inside it. A run that dies
#: holding it delays that payment by this much; the next run looks it up before creating.
SEND_LEASE = timedelta(minutes=15)


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


@dataclass
class _Item:
    """One invoice of the run: parsed, or why it cannot be (reason), with where it came from."""

    invoice_id: str
    invoice: HwInvoice | None
    problem: str | None = None  # invalid data
    skip: str | None = None  # not to be paid (state, PAID...)
    changed: bool = True  # read by the window / named by a run (fresh retry budget)


class HyperwalletInvoicePayments:
    """The invoice payment job; see the module docstring."""

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

    # -- steps ------------------------------------------------------------------------------

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

    # -- reading ----------------------------------------------------------------------------

    @property
    def _source(self) -> str:
        return self.payments.invoice_source

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
    ) -> Iterator[_Item]:
        for raw in self._raw(start, include_paid=include_paid):
            yield self._parse(raw, include_paid=include_paid, changed=changed)

    def _parse(self, raw: Any, *, include_paid: bool, changed: bool) -> _Item:
        invoice_id = raw_invoice_id(raw, self._source) or "<invoice without id>"
        try:
            parsed = parse_invoice(
                raw,
                self._source,
                include_paid=include_paid,
                credit_notes=self.payments.credit_notes,
            )
        except InvalidItemError as exc:
            return _Item(invoice_id, None, problem=exc.reason, changed=changed)
        if isinstance(parsed, str):
            return _Item(invoice_id, None, skip=parsed, changed=changed)
        return _Item(invoice_id, parsed, changed=changed)

    def _find(
        self, ids: Sequence[str], start: datetime | str | None, *, include_paid: bool, changed: bool
    ) -> list[_Item]:
        """The invoices ``ids`` as Mirakl returns them from ``start``; missing ones named."""
        wanted = set(ids)
        found: dict[str, _Item] = {}
        for raw in self._raw(start, include_paid=include_paid):
            invoice_id = raw_invoice_id(raw, self._source)
            if invoice_id in wanted and invoice_id not in found:
                found[invoice_id] = self._parse(raw, include_paid=include_paid, changed=changed)
        since = start.isoformat() if isinstance(start, datetime) else start
        items = []
        for invoice_id in ids:
            items.append(
                found.get(invoice_id)
                or _Item(
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
        found: dict[str, _Item] = {}
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
            or _Item(
                i,
                None,
                problem=f"not returned by Mirakl ({self._source} by id)",
                changed=i in changed,
            )
            for i in ids
        ]
        for chunk in chunked(items, CHUNK_SIZE):
            self._process(chunk, summary, dry_run=dry_run)

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

    # -- deciding and paying ----------------------------------------------------------------

    def _process(self, items: Sequence[_Item], summary: BatchSummary, *, dry_run: bool) -> None:
        self._link_invoices(items)
        invoices = [item.invoice for item in items if item.invoice is not None]
        shops = self._shops({inv.shop_id for inv in invoices})
        saved = self.ledger.hyperwallet_payments_by_invoice(inv.invoice_id for inv in invoices)
        gate = self._approval_gate(saved, shops)

        def handle(item: _Item) -> list[ItemOutcome]:
            try:
                return self._one(item, shops, saved, gate, dry_run=dry_run)
            except (ConfigurationError, InvalidItemError):
                raise
            except Exception as exc:  # noqa: BLE001 - queued, so that it is read again
                # E.g. the ledger write after Hyperwallet answered failing: left to run_batch,
                # the item failed without a retry and the window moved past it, so nothing
                # read it again (its payment, at Hyperwallet, was never recorded).
                log.exception("Unexpected error on invoice %s", item.invoice_id)
                return [self._failure(item, f"unexpected error: {exc!r}", dry_run=dry_run)]

        run_batch(items, handle, item_id=lambda item: item.invoice_id, summary=summary)

    def _approval_gate(
        self,
        saved: Mapping[str, list[HyperwalletPayment]],
        shops: Mapping[int, ShopTokens] | MiraklConnectorError,
    ) -> ApprovalGate | None:
        """The chunk's approval gate (``None`` when off): the decisions taken on its recorded
        payments, and which of the bank accounts it would pay were already paid."""
        items = [p.client_payment_id for rows in saved.values() for p in rows]
        tokens = [p.bank_account_token for p in self.programs.values()]
        if not isinstance(shops, MiraklConnectorError):
            tokens += [shop.bank_account_token for shop in shops.values()]
        tokens += [p.destination_token for rows in saved.values() for p in rows]
        return gate_for(
            self.ledger.engine,
            self.approval,
            "hyperwallet_payment",
            items,
            destinations=[t for t in tokens if t],
        )

    def _link_invoices(self, items: Sequence[_Item]) -> None:
        """SBC11 under the invoice-id convention: each cycle's automatic invoice id (IV01
        ``seller_billing_cycle_id`` filter), the ``clientPaymentId`` its payments carry.

        A cycle whose invoice Mirakl does not return keeps none and fails with the reason.
        """
        if self._source != SBC11 or self.payments.payment_id_convention != INVOICE_ID:
            return
        cycles = [item for item in items if item.invoice is not None]
        if not cycles:
            return
        by_cycle: dict[str, str] = {}
        try:
            for raw in self.mirakl.iter_invoices(
                seller_billing_cycle_ids=[item.invoice_id for item in cycles],
                doc_type="AUTO_INVOICE",
            ):
                cycle = raw.get("seller_billing_cycle_id") if isinstance(raw, Mapping) else None
                if cycle and raw.get("invoice_id") is not None:
                    by_cycle[str(cycle)] = str(raw["invoice_id"])
        except MiraklConnectorError as exc:
            log.warning("IV01 by seller_billing_cycle_id failed: %s", exc)
        for item in cycles:
            assert item.invoice is not None
            linked = by_cycle.get(item.invoice_id)
            if linked:
                item.invoice = replace(item.invoice, accounting_invoice_id=linked)

    def _shops(self, shop_ids: set[int]) -> dict[int, ShopTokens] | MiraklConnectorError:
        """The shops by id, read now (tokens may have been corrected in Mirakl since)."""
        if not shop_ids:
            return {}
        try:
            raw = {
                int(shop["shop_id"]): shop
                for shop in self.mirakl.iter_shops(shop_ids=sorted(shop_ids))
                if isinstance(shop, Mapping) and shop.get("shop_id") is not None
            }
            self._raw_shops.update(raw)
            return {shop_id: shop_tokens(shop) for shop_id, shop in raw.items()}
        except MiraklConnectorError as exc:
            # The invoices of this chunk fail (and are retried); the run goes on.
            return exc

    def _one(
        self,
        item: _Item,
        shops: Mapping[int, ShopTokens] | MiraklConnectorError,
        saved: Mapping[str, list[HyperwalletPayment]],
        gate: ApprovalGate | None,
        *,
        dry_run: bool,
    ) -> list[ItemOutcome]:
        if item.skip is not None:
            if not dry_run:
                self.queue.record_success(item.invoice_id)
            return [ItemOutcome(item.invoice_id, SKIPPED, item.skip)]
        if item.invoice is None:
            return [self._failure(item, f"invalid data: {item.problem}", dry_run=dry_run)]
        if isinstance(shops, MiraklConnectorError):
            return [self._failure(item, f"shops not read: {shops}", dry_run=dry_run)]
        invoice = item.invoice
        known = saved.get(invoice.invoice_id, [])
        if self.go_live.before(invoice.created_at) and not known:
            before = self.go_live.outcome(
                invoice.invoice_id,
                invoice.created_date,
                amount=invoice.seller_amount,
                currency=invoice.currency,
            )
            return [before]
        convention = self.payments.payment_id_convention
        base = client_payment_base(invoice, convention)
        if base is None:
            return [
                self._failure(
                    item,
                    f"no {convention} for this {invoice.source} document: it cannot be paid "
                    f"under the clientPaymentId convention {convention!r}",
                    dry_run=dry_run,
                )
            ]
        plan = plan_invoice_payments(
            invoice,
            shops.get(invoice.shop_id),
            self.programs,
            operator_commissions=self.payments.operator_commissions and not invoice.credit_note,
            client_payment_id=base,
        )
        if plan.skip is not None:
            if not dry_run:
                self.queue.record_success(invoice.invoice_id)
            return [ItemOutcome(invoice.invoice_id, SKIPPED, plan.skip)]
        # The rule first (a hold must not wait for a shop Stripe pays), the claim only when
        # something is about to be sent (a held invoice is not bound to Hyperwallet yet).
        for claim in (False, plan.hold is None):
            refusal = self._refusal(invoice, known, claim=claim, dry_run=dry_run)
            if refusal is not None:
                if not dry_run:
                    self.queue.record_success(invoice.invoice_id)
                return [ItemOutcome(invoice.invoice_id, NOT_HYPERWALLET, refusal)]
        if plan.hold is not None:
            if not dry_run:
                self._hold_rows(invoice, saved.get(invoice.invoice_id, []), plan.hold)
            held = ItemOutcome(invoice.invoice_id, ON_HOLD, plan.hold, failed=True)
            return self._queue([held], item, dry_run=dry_run)

        rows = saved.get(invoice.invoice_id, [])
        by_id = {p.client_payment_id: p for p in rows}
        # A live payment recorded under the other convention's id (adopted) is this one.
        live = {p.kind: p for p in rows if is_live(p)}
        outcomes = []
        for planned in plan.payments:
            saved_row = live.get(planned.kind) or by_id.get(planned.client_payment_id)
            if saved_row is not None and is_held_record(saved_row):
                # A person holds it on the payments console: not sent until released (the
                # release queues the invoice again, see the console's actions).
                outcomes.append(_outcome(saved_row, HELD, saved_row.status_reason))
                continue
            row = refresh_payment(saved_row, planned)
            if saved_row is None or not saved_row.in_doubt:
                # A row in doubt may already be paid: it is looked up, never held.
                row = gate_hyperwallet_payment(row, gate)
            self._aliases[row.client_payment_id] = _aliases(invoice, row)
            outcomes.append(
                self._payment_or_failure(
                    row, dry_run=dry_run, paid_elsewhere=self._paid_elsewhere(invoice, row, rows)
                )
            )
        for note in plan.notes:
            log.info("Invoice %s: %s", invoice.invoice_id, note)
        if not outcomes:
            outcomes = [ItemOutcome(invoice.invoice_id, SKIPPED, "; ".join(plan.notes) or None)]
        return self._queue(outcomes, item, dry_run=dry_run)

    @staticmethod
    def _paid_elsewhere(
        invoice: HwInvoice, row: HyperwalletPayment, rows: Sequence[HyperwalletPayment]
    ) -> str | None:
        """Why ``row`` must not be created although no payment is found for it: the document is
        PAID in Mirakl and the ledger does not show that this connector paid it.

        The operator commission of an invoice whose seller payment we made and Hyperwallet
        COMPLETED (so we confirmed the invoice) is still paid: it is independent of the seller's.
        """
        if invoice.paid_in_mirakl is None:
            return None
        ours = any(
            r.kind == HyperwalletPaymentKind.SELLER and r.status == S.COMPLETED and r.payment_token
            for r in rows
        )
        if row.kind == HyperwalletPaymentKind.OPERATOR_FEE and ours:
            return None
        return (
            f"the invoice is PAID in Mirakl ({invoice.paid_in_mirakl}) without a payment of "
            "this connector: settled outside Hyperwallet, never paid again"
        )

    def _refusal(
        self,
        invoice: HwInvoice,
        known: Sequence[HyperwalletPayment],
        *,
        claim: bool,
        dry_run: bool,
    ) -> str | None:
        """Why Hyperwallet must not pay ``invoice``: its shop is another provider's (the rule),
        or the invoice is claimed by another provider. Otherwise it is claimed for Hyperwallet
        here, before anything is sent (a dry run only reads the claim)."""
        if any(p.payment_token for p in known):
            return None  # already at Hyperwallet: its payments are followed, never refused
        shop_id = invoice.shop_id
        raw = self._raw_shops.get(shop_id)
        if raw is not None or not self.providers.needs_shop(shop_id):
            verdict = self.providers.provider(shop_id, shop=raw, at=invoice.created_at)
            if verdict.provider not in (HYPERWALLET, "none"):
                return verdict.refusal(shop_id, HYPERWALLET)
        if not claim:
            return None
        documents = {invoice.invoice_id: shop_id}
        if dry_run:
            claims = find_claims(self.ledger, ClaimKind.INVOICE, documents)
        else:
            claims = claim_documents(
                self.ledger,
                HYPERWALLET,
                ClaimKind.INVOICE,
                documents,
                workflow=WORKFLOW,
                run_id=self.run_id,
            )
        held = claims.get(invoice.invoice_id)
        return held.refusal(HYPERWALLET) if held is not None else None

    def _hold_rows(self, invoice: HwInvoice, saved: list[HyperwalletPayment], reason: str) -> None:
        """Record (or update) the invoice's payments as ON_HOLD with why: visible in the ledger."""
        by_id = {p.client_payment_id: p for p in saved}
        rows = []
        wanted = [(invoice.invoice_id, HyperwalletPaymentKind.SELLER, invoice.seller_amount)]
        if self.payments.operator_commissions and not invoice.credit_note:
            fee_id = operator_fee_id(invoice.invoice_id)
            wanted.append((fee_id, HyperwalletPaymentKind.OPERATOR_FEE, invoice.operator_amount))
        for cpid, kind, amount in wanted:
            if amount <= 0:
                continue
            row = by_id.get(cpid) or HyperwalletPayment(
                client_payment_id=cpid,
                invoice_id=invoice.invoice_id,
                kind=kind,
                amount=amount,
                currency=invoice.currency,
                shop_id=invoice.shop_id,
                invoice_source=invoice.source,
                invoice_created_date=invoice.created_date,
            )
            # A row with a payment (even a failed one) or an attempt in doubt keeps its status.
            if row.status in (S.PENDING, S.ON_HOLD) and not row.payment_token and not row.in_doubt:
                rows.append(replace(row, status=S.ON_HOLD, status_reason=reason))
        self.ledger.save_hyperwallet_payments(rows, run_id=self.run_id)

    def _payment_or_failure(
        self, row: HyperwalletPayment, *, dry_run: bool, paid_elsewhere: str | None = None
    ) -> ItemOutcome:
        """:meth:`_payment`, a Hyperwallet error it raises (the lookup by ``clientPaymentId``
        failing) turned into a FAILED outcome, so that the invoice goes to the retry queue.

        Raised, it failed the item without queueing it, and the window moved past the invoice:
        no later run read it again, and it was never paid.
        """
        try:
            return self._payment(row, dry_run=dry_run, paid_elsewhere=paid_elsewhere)
        except HyperwalletApiError as exc:
            log.error("Payment %s not sent: %s", row.client_payment_id, exc)
            return _outcome(row, FAILED, f"not sent: {exc}", failed=True)

    def _payment(
        self, row: HyperwalletPayment, *, dry_run: bool, paid_elsewhere: str | None = None
    ) -> ItemOutcome:
        """Make sure ``row`` exists at Hyperwallet exactly once.

        One sender per payment: the row is claimed in the ledger (:data:`SEND_LEASE`) before it
        is looked up and created, so copies of this step running at once never both create it.
        """
        if is_live(row):
            reason = f"already sent ({row.payment_token}, {row.hw_status or row.status})"
            return _outcome(row, ALREADY_PAID, reason)
        if row.status in (S.ABORTED, S.ON_HOLD):
            if not dry_run:
                self.ledger.save_hyperwallet_payments([row], run_id=self.run_id)
            if row.status == S.ON_HOLD and is_decidable(row.status_reason):
                # Waits for a person (approval gate): expected, not a failure to retry.
                return _outcome(row, AWAITING_APPROVAL, row.status_reason)
            status = REFUSED if row.status == S.ABORTED else ON_HOLD
            return _outcome(row, status, row.status_reason, failed=True)

        program = self.programs.get(row.program or "")
        if program is None or not program.payment_token:
            raise ConfigurationError(f"program {row.program!r} has no payment program token")
        if dry_run or paid_elsewhere:
            # Nothing will be created: a payment Hyperwallet holds is recorded, that is all.
            found = self._lookup(row)
            if found is not None:
                return self._adopt(row, found, dry_run=dry_run)
            if paid_elsewhere:
                return _outcome(row, SKIPPED, paid_elsewhere)
            return _outcome(row, WOULD_PAY, f"would pay to {row.destination_token}")

        if self.ledger.get_hyperwallet_payment(row.client_payment_id) is None:
            try:
                self.ledger.save_hyperwallet_payments([row], run_id=self.run_id)
            except LedgerConflictError:
                pass  # saved meanwhile by another copy of this step: the claim decides
        held = self.ledger.claim_hyperwallet_payment_send(
            row.client_payment_id, owner=self._sender, lease=SEND_LEASE, gone=sender_gone
        )
        if held is not None:
            if held.startswith("already sent"):
                return _outcome(row, ALREADY_PAID, held)
            return _outcome(row, SENDING_ELSEWHERE, held)
        try:
            return self._send(row, program.payment_token)
        finally:
            self.ledger.release_hyperwallet_payment_send(row.client_payment_id, owner=self._sender)

    def _lookup(self, row: HyperwalletPayment) -> Mapping[str, Any] | None:
        """The live payment Hyperwallet holds under the row's ``clientPaymentId`` or under the
        id an earlier connector used for the same document (the other convention)."""
        for cpid in (row.client_payment_id, *self._aliases.get(row.client_payment_id, ())):
            found = live_payment(self.hyperwallet.find_payments(cpid))
            if found is not None:
                return found
        return None

    def _send(self, row: HyperwalletPayment, program_token: str) -> ItemOutcome:
        """Under the claim: look the payment up, then create it (Hyperwallet has no idempotency
        key, so every row is looked up first, in doubt or not)."""
        # A payment Hyperwallet reported failed (RETURNED...) is replaced by a new one.
        replaced = f"replaces failed {row.payment_token}" if row.payment_token else None
        body: dict[str, Any] = {}  # made once nothing is found, before the attempt is marked

        def mark(row: HyperwalletPayment) -> HyperwalletPayment:
            body.update(payment_body(row, program_token))
            row = replace(
                row, status=S.PENDING, status_reason=replaced, payment_token=None, hw_status=None
            )
            row = self.ledger.save_hyperwallet_payments([row], run_id=self.run_id)[0]
            row = self.ledger.mark_hyperwallet_payment_attempt(row, run_id=self.run_id)
            log.info("Trying to create payment for invoice [%s]", row.client_payment_id)
            return row

        def on_error(
            row: HyperwalletPayment, exc: PaymentProviderError
        ) -> tuple[SendResult, HyperwalletPayment]:
            unknown = (
                f"outcome unknown ({exc}); the next attempt looks it up by clientPaymentId "
                "before creating anything"
            )
            return refused_or_unknown(exc, unknown), row

        def created(row: HyperwalletPayment, written: Written) -> ItemOutcome:
            assert written.answer is not None
            if written.found:
                return self._adopt(row, written.answer, dry_run=False)
            log.info("Payment successfully created for invoice [%s]", row.client_payment_id)
            reason = f"payment {written.object_id} created"
            return self._record_created(row, written.answer, PAID, reason, note=replaced)

        def refused(row: HyperwalletPayment, refused: Refused) -> ItemOutcome:
            # Hyperwallet said no: nothing was created; the retry sends it again.
            failed = replace(row, status=S.FAILED, status_reason=refused.message)
            self.ledger.save_hyperwallet_payments([failed], run_id=self.run_id)
            return _outcome(failed, FAILED, refused.message, failed=True)

        def unknown(row: HyperwalletPayment, unknown: Unknown) -> ItemOutcome:
            save = partial(self.ledger.save_hyperwallet_payments, run_id=self.run_id)
            return record_in_doubt(row, unknown.reason, item_id=row.client_payment_id, save=save)

        return send_and_record(
            row,
            look_up_first=True,
            find=self._found,
            attempt=partial(
                attempt_once, mark=mark, create=partial(self._create, body=body), on_error=on_error
            ),
            recording=Recording(created=created, refused=refused, unknown=unknown),
        )

    def _found(self, row: HyperwalletPayment) -> Written | None:
        """The live payment of ``row`` at Hyperwallet (see :meth:`_lookup`), or ``None``."""
        found = self._lookup(row)
        if found is None:
            return None
        return Written(str(found.get("token")), found=True, answer=found)

    def _create(self, row: HyperwalletPayment, *, body: Mapping[str, Any]) -> SendResult:
        """Create the payment; an answer without a token leaves it in doubt (looked up next)."""
        created = self.hyperwallet.create_payment(body)
        token = created.get("token") if isinstance(created, Mapping) else None
        if not token:
            return Unknown(
                "Hyperwallet answered without a payment token; looked up on the next attempt"
            )
        return Written(str(token), answer=created)

    def _adopt(
        self, row: HyperwalletPayment, found: Mapping[str, Any], *, dry_run: bool
    ) -> ItemOutcome:
        """Hyperwallet already has a live payment for this id: record it, create nothing."""
        token = found.get("token")
        found_id = str(found.get("clientPaymentId") or row.client_payment_id)
        under = "" if found_id == row.client_payment_id else f" as {found_id}"
        reason = (
            f"already sent to Hyperwallet{under} ({token}, {found.get('status')}): "
            "not created again"
        )
        log.info("Invoice %s already sent to Hyperwallet%s", row.client_payment_id, under)
        if dry_run:
            return _outcome(row, ALREADY_PAID, reason)
        note = f"replaces failed {row.payment_token}" if row.payment_token else None
        if under:
            # Recorded under the id it carries, so that its notifications find it; the row
            # under our id stays unsent with why (sent only if that payment ever fails).
            if self.ledger.get_hyperwallet_payment(row.client_payment_id) is not None:
                self.ledger.save_hyperwallet_payments(
                    [replace(row, status_reason=f"paid{under} ({token})")], run_id=self.run_id
                )
            row = replace(row, client_payment_id=found_id, id=None, attempted_at=None, attempts=0)
        return self._record_created(row, found, ALREADY_PAID, reason, note=note)

    def _record_created(
        self,
        row: HyperwalletPayment,
        payment: Mapping[str, Any],
        status: str,
        reason: str,
        *,
        note: str | None = None,
    ) -> ItemOutcome:
        hw_status = str(payment.get("status") or "CREATED").upper()
        recorded = replace(
            row,
            status=ledger_status(hw_status),
            status_reason=note,  # kept in the audit trail: which failed payment it replaces
            hw_status=hw_status,
            payment_token=str(payment.get("token")),
            hw_created_on=payment.get("createdOn") or row.hw_created_on,
        )
        self.ledger.save_hyperwallet_payments([recorded], run_id=self.run_id)
        return _outcome(recorded, status, reason)

    # -- retry queue ------------------------------------------------------------------------

    def _failure(self, item: _Item, reason: str, *, dry_run: bool) -> ItemOutcome:
        """The outcome of an invoice that could not even be planned (queued for retry)."""
        failed = ItemOutcome(item.invoice_id, FAILED, reason, failed=True)
        return self._queue([failed], item, dry_run=dry_run)[0]

    def _queue(
        self, outcomes: list[ItemOutcome], item: _Item, *, dry_run: bool
    ) -> list[ItemOutcome]:
        """Queue the invoice when a payment must be retried, else clear it from the queue.

        Only the first failure (or the exhaustion) is a *failed* item of the run, turning it red
        and e-mailing; a failed retry is counted as ``RETRY_PENDING`` with what happened.
        """
        retriable = [o for o in outcomes if o.status in RETRIABLE_OUTCOMES]
        if dry_run:
            return outcomes
        if not retriable:
            self.queue.record_success(item.invoice_id)
            return outcomes
        reason = "; ".join(
            o.reason or o.status if o.item_id == item.invoice_id else f"{o.item_id}: {o.reason}"
            for o in retriable
        )
        first = not self.queue.is_queued(item.invoice_id)
        previous = self.queue.items.get(item.invoice_id)
        reset = (
            item.changed and previous is not None and is_exhausted(previous, self.queue.max_retries)
        )
        queued = self.queue.record_failure(item.invoice_id, reason, changed=item.changed)
        if first or reset:
            return outcomes
        exhausted = is_exhausted(queued, self.queue.max_retries)
        return [
            replace(
                o,
                status=RETRIES_EXHAUSTED if exhausted else RETRY_PENDING,
                reason=f"{o.status}: {o.reason}",
                failed=exhausted,
            )
            if o in retriable
            else o
            for o in outcomes
        ]

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


def sender_id(run_id: str | None) -> str:
    """``<host>/<pid>/<random>/<run>``: unique per job object, and telling where it runs."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}/{run_id or 'run'}"[:190]


def sender_gone(holder: str) -> bool:
    """The holder of a send claim is a process of this host that no longer exists (killed
    mid-send): its claim need not wait out the lease. Anything else (another host, a live
    process, an unreadable id) counts as alive: the lease decides."""
    host, _, rest = holder.partition("/")
    pid_text = rest.partition("/")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False  # another job object of this process: alive (a thread of ours)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # exists, owned by someone else
    return False


def _aliases(invoice: HwInvoice, row: HyperwalletPayment) -> tuple[str, ...]:
    """The ids other than ``row``'s under which the same payment may exist at Hyperwallet."""
    fee = row.kind == HyperwalletPaymentKind.OPERATOR_FEE
    ids = [operator_fee_id(i) if fee else i for i in known_payment_ids(invoice)]
    return tuple(i for i in ids if i != row.client_payment_id)


def _outcome(
    row: HyperwalletPayment, status: str, reason: str | None, *, failed: bool = False
) -> ItemOutcome:
    return ItemOutcome(
        item_id=row.client_payment_id,
        status=status,
        reason=reason,
        amount=row.amount,
        currency=row.currency,
        failed=failed,
    )
