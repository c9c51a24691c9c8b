"""Seller settlement: Mirakl invoices (IV01) → invoice transfers and payouts on Stripe Connect.

Three steps, each one Airflow task, in this order:

``plan``
    First the *backlog*: invoice transfers and payouts left ON_HOLD or FAILED, re-evaluated
    against a fresh copy of their invoice (IV01 read from the earliest backlog date). A backlog
    row whose invoice Mirakl no longer returns keeps its status and gets a reason saying so; it
    is reported, never a crash. Then the invoices created since the checkpoint (or in the
    ``since``/``until`` window, or of one ``shop_id``): three invoice transfers and one payout
    each (:mod:`.settlement_decisions`). The checkpoint is the newest ``date_created`` seen (not
    the last invoice of the response), moves only forward and only on a plain scheduled run.
    A payout Stripe reported failed at the bank (``payout.failed``) is reopened first
    (``Ledger.reopen_failed_payout``: the old payout id goes to the audit trail) and decided
    again, so the ``payout`` step creates it anew with the key ``…:payout:<invoice>:retry<n>``.
``transfer`` (mapped: one task per shard of the rows, see :mod:`mirakl_connector.core.shards`)
    Creates every PENDING invoice transfer: seller → platform ones on the seller's account
    (``Stripe-Account``), platform → seller ones on the platform.
``payout`` (mapped, the same way)
    Pays out every PENDING payout from the seller's balance, once the invoice transfers of the
    same invoice are settled (see :func:`.settlement_decisions.payout_blocker` for why the
    transfers go first).

Every Stripe write carries an idempotency key made of the invoice id and the row type, committed
to the ledger before the call. A row "in doubt" (the process died after the call) is replayed
with the same key within 23 h, or looked up at Stripe by metadata after that: never created twice.
A dry run decides and reports, and writes nothing.

With the approval gate on (``approval`` settings,
:mod:`mirakl_connector.operations.approval_gate`), an
invoice transfer or a payout above its currency's threshold, or the first payout to a connected
account the ledger never paid out to, is recorded ON_HOLD ("awaiting approval: …"); the backlog
is re-decided every run, so the run after a person's approval sends it (once).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from mirakl_connector.core.batch import (
    BatchSummary,
    ItemOutcome,
    chunked,
    decision_failure_reason,
    run_batch,
)
from mirakl_connector.core.errors import ConfigurationError, InvalidItemError, PaymentProviderError
from mirakl_connector.core.ids import parse_int_id
from mirakl_connector.core.registry import Resources
from mirakl_connector.core.settings import checked_values
from mirakl_connector.core.shards import DEFAULT_SHARDS, shard_count, start_sharded_step
from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.claims import ClaimKind
from mirakl_connector.ledger.manual_rules import is_held_record
from mirakl_connector.ledger.records import (
    INVOICE_TRANSFER_TYPES,
    RETRIABLE_PAYOUT,
    RETRIABLE_TRANSFER,
    PayoutRecord,
    PayoutStatus,
    TransferRecord,
    TransferStatus,
    TransferType,
)
from mirakl_connector.mirakl.client import MiraklClient
from mirakl_connector.mirakl.orders import check_not_future, parse_mirakl_datetime
from mirakl_connector.operations.approval_gate import ApprovalGate, ApprovalSettings
from mirakl_connector.operations.approvals import gate_for
from mirakl_connector.operations.backlog import (
    DEFAULT_SWEEP_HOURS,
    BacklogClock,
    check_sweep_hours,
    released_since,
)
from mirakl_connector.operations.first_run import GoLive, go_live_from_config
from mirakl_connector.operations.payout_provider import STRIPE, ShopProviders
from mirakl_connector.operations.provider_guard import (
    claim_pending,
    default_providers,
    refuse_claimed_before_sending,
    shop_providers,
)
from mirakl_connector.operations.send_once import (
    Recording,
    Refused,
    Unknown,
    Written,
    record_in_doubt,
)
from mirakl_connector.stripe.currency import from_api
from mirakl_connector.stripe.event_handlers import payout_failure_reason
from mirakl_connector.stripe.exactly_once import write_once
from mirakl_connector.stripe.gateway import CreatedObject, StripeGateway, idempotency_key
from mirakl_connector.stripe.lookups import find_payout, find_transfer
from mirakl_connector.stripe.settlement_decisions import (
    FUNDS_REASON_PREFIX,
    SETTLED_TRANSFER,
    MiraklInvoice,
    decide_invoice_transfer,
    decide_payout,
    funds_hold_reason,
    funds_may_be_there,
    parse_invoice,
    payout_blocker,
    payout_failed_at_bank,
)
from mirakl_connector.stripe.specs import SELLER_SETTLEMENT

log = logging.getLogger(__name__)

WORKFLOW = SELLER_SETTLEMENT.name
CHECKPOINT_KEY = "seller_settlement_checkpoint"
#: the backlog's checkpoints (see :mod:`.backlog`)
BACKLOG_NAME = "seller_settlement"
CHUNK_SIZE = 100
#: how far back the pending balance transactions of a payout waiting for funds are read (the
#: longest standard settlement delays are about a month, docs.stripe.com/payouts)
FUNDS_LOOKBACK = timedelta(days=35)

Row = TransferRecord | PayoutRecord


@dataclass(frozen=True)
class SettlementSettings:
    """The ``seller_settlement`` section of the connector configuration.

    :param invoice_transfers: create the subscription / extra invoice / extra credit transfers.
    :param payouts: create the payouts; switch off when the sellers' accounts pay out on
        Stripe's automatic schedule (Stripe refuses manual payouts on those).
    :param execute_shards: mapped tasks per write step.
    """

    invoice_transfers: bool = True
    payouts: bool = True
    #: how many mapped tasks share the PENDING transfers, then the PENDING payouts
    #: (see :mod:`mirakl_connector.core.shards`)
    execute_shards: int = DEFAULT_SHARDS
    #: hours between two full re-reads of the waiting (ON_HOLD) invoice rows; in between a
    #: scheduled run re-decides only the rows whose account, sibling transfers or funds changed
    backlog_full_sweep_hours: int = DEFAULT_SWEEP_HOURS

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> SettlementSettings:
        values = checked_values(cls, values, "seller_settlement")
        shard_count(
            values.get("execute_shards", cls.execute_shards), "seller_settlement.execute_shards"
        )
        check_sweep_hours(
            values.get("backlog_full_sweep_hours", cls.backlog_full_sweep_hours),
            "seller_settlement.backlog_full_sweep_hours",
        )
        return cls(**values)


@dataclass
class _Candidate:
    """The ledger rows of one invoice to decide, with the invoice (None when unusable)."""

    invoice_id: str
    rows: list[Row]
    invoice: MiraklInvoice | None
    error: str | None = None


class SellerSettlement:
    """The settlement job; see the module docstring for what each step does."""

    def __init__(
        self,
        *,
        mirakl: MiraklClient,
        stripe: StripeGateway,
        ledger: Ledger,
        settings: SettlementSettings,
        run_id: str | None = None,
        go_live: GoLive | None = None,
        providers: ShopProviders | None = None,
        now: Callable[[], datetime] | None = None,
        approval: ApprovalSettings | None = None,
    ) -> None:
        self.mirakl = mirakl
        self.stripe = stripe
        self.ledger = ledger
        self.settings = settings
        self.run_id = run_id
        #: which transfers and payouts wait for a person's approval
        #: (mirakl_connector.operations.approval_gate)
        self.approval = approval or ApprovalSettings()
        #: first run without checkpoint: nothing created before this moves (see first_run)
        self.go_live = go_live or GoLive()
        #: which provider pays each shop (see mirakl_connector.operations.payout_provider)
        self.providers = providers or default_providers(mirakl)
        self._now = now or (lambda: datetime.now(UTC))

    # -- plan -------------------------------------------------------------------------------

    def plan(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        shop_id: int | str | None = None,
        dry_run: bool = False,
    ) -> BatchSummary:
        """Decide the transfers and payout of every backlog row and new invoice; record them.

        :param shop_id: only this shop's invoices (all of them, or those in the window); no
            backlog and no checkpoint change, like the connector's ``process-payout <shop>``.
        """
        summary = BatchSummary(WORKFLOW, "plan", dry_run=dry_run)
        shop = parse_shop_id(shop_id)
        if not (self.settings.invoice_transfers or self.settings.payouts):
            summary.notes.append("invoice transfers and payouts are both disabled")
            return summary
        self.go_live.require(
            WORKFLOW, CHECKPOINT_KEY, self.ledger.get_checkpoint(CHECKPOINT_KEY), "invoice"
        )
        seen: set[tuple[str, ...]] = set()
        scheduled = shop is None and since is None and until is None
        clock = BacklogClock(
            self.ledger,
            BACKLOG_NAME,
            sweep_hours=self.settings.backlog_full_sweep_hours,
            now=self._now,
        )
        backlog = clock.start(scheduled=scheduled and not dry_run)
        if shop is None:
            if backlog.sweep:
                seen = self._plan_backlog(summary, dry_run=dry_run)
            else:
                assert backlog.since is not None
                seen = self._plan_changed(summary, since=backlog.since, dry_run=dry_run)
            if backlog.scheduled:
                summary.notes.append(backlog.note("invoice backlog"))
        start: datetime | str | None = since
        if scheduled:
            start = self.ledger.get_checkpoint(CHECKPOINT_KEY)
        newest: MiraklInvoice | None = None
        invoices = self.mirakl.iter_invoices(start_date=start, end_date=until, shop_id=shop)
        now = self._now()
        for chunk in chunked((_parse(raw, now) for raw in invoices), CHUNK_SIZE):
            ids = [invoice_id for invoice_id, _ in chunk if invoice_id]
            existing = self._existing_rows(ids)
            candidates = []
            for invoice_id, invoice in chunk:
                if not invoice_id:
                    reason = f"invalid data: {getattr(invoice, 'reason', invoice)}"
                    summary.add(ItemOutcome("<invoice without id>", "FAILED", reason, failed=True))
                    continue
                if isinstance(invoice, MiraklInvoice) and (
                    newest is None or invoice.created_at > newest.created_at
                ):
                    newest = invoice
                if (
                    isinstance(invoice, MiraklInvoice)
                    and self.go_live.before(invoice.created_at)
                    and not any(
                        getattr(r, "id", None) is not None
                        for r in self._rows_of(invoice_id, existing)
                    )
                ):
                    summary.add(
                        self.go_live.outcome(
                            invoice_id,
                            invoice.created_date,
                            amount=invoice.payout_amount_minor(),
                            currency=invoice.currency,
                        )
                    )
                    continue
                rows = [
                    row
                    for row in self._rows_of(invoice_id, existing)
                    if _key(row) not in seen and _open(row)
                ]
                if rows:
                    candidates.append(_candidate(invoice_id, rows, invoice))
            self._decide_and_record(candidates, summary, dry_run=dry_run)

        if scheduled and newest is not None and not dry_run:
            current = self.ledger.get_checkpoint(CHECKPOINT_KEY)
            if current is None or newest.created_at > parse_mirakl_datetime(current):
                self.ledger.set_checkpoint(CHECKPOINT_KEY, newest.created_date)
                summary.notes.append(f"{CHECKPOINT_KEY} moved to {newest.created_date}")
        clock.finish(backlog)
        log.info("%s", summary.describe())
        return summary

    def _plan_changed(
        self, summary: BatchSummary, *, since: datetime, dry_run: bool
    ) -> set[tuple[str, ...]]:
        """Re-decide only the waiting rows whose cause may have changed since ``since``; return
        their keys. What a row waits for is in its reason, and each has its ledger-side change:

        * no Stripe account, shop ignored, payouts disabled, KYC status unknown: the shop's
          account mapping changed (onboarding, the KYC monitor, ``account.updated``);
        * a payout waiting for the invoice transfers of its invoice: one of them changed;
        * waiting for funds: the date the pending funds were expected has passed, or a transfer
          was made to the account it takes from (:func:`.funds_may_be_there`);
        * a person released it from a hold on the payments console;
        * FAILED rows, every run (the failures the report names, few).

        IV01 has no update-date filter, and what Mirakl could change on an issued invoice is not
        what these rows wait for: their invoices are read again by id (100 a call), only these.
        """
        rows: dict[tuple[str, ...], Row] = {}

        def add(found: Iterable[Row]) -> None:
            for row in found:
                rows.setdefault(_key(row), row)

        shops = self.ledger.shops_with_mappings_changed_since(since)
        settled = self.ledger.transfer_ids_changed_since(
            types=INVOICE_TRANSFER_TYPES, since=since, statuses=SETTLED_TRANSFER
        )
        credited = set(self.ledger.accounts_credited_since(since))
        now = self._now()
        for entity, enabled in (
            ("transfer", self.settings.invoice_transfers),
            ("payout", self.settings.payouts),
        ):
            if enabled:
                released = released_since(self.ledger, entity, since)
                add(r for r in released if _open(r) and _ours(r))
        if self.settings.invoice_transfers:
            for found in self.ledger.iter_transfers_of_shops(
                types=INVOICE_TRANSFER_TYPES,
                statuses=[TransferStatus.ON_HOLD],
                shop_ids=shops,
                batch_size=CHUNK_SIZE,
            ):
                add(found)
            for found in self.ledger.iter_waiting(
                "transfer", reason_prefix=FUNDS_REASON_PREFIX, types=INVOICE_TRANSFER_TYPES
            ):
                add(r for r in found if funds_may_be_there(r, now=now, credited=credited))
            for found in self.ledger.iter_transfers(
                types=INVOICE_TRANSFER_TYPES,
                statuses=[TransferStatus.FAILED],
                batch_size=CHUNK_SIZE,
            ):
                add(found)
        if self.settings.payouts:
            for found in self.ledger.iter_payouts_of_shops(
                statuses=[PayoutStatus.ON_HOLD], shop_ids=shops, batch_size=CHUNK_SIZE
            ):
                add(found)
            for chunk in chunked(settled, CHUNK_SIZE):
                add(
                    p
                    for p in self.ledger.get_payouts(chunk).values()
                    if p.status is PayoutStatus.ON_HOLD
                )
            for found in self.ledger.iter_waiting("payout", reason_prefix=FUNDS_REASON_PREFIX):
                add(r for r in found if funds_may_be_there(r, now=now, credited=credited))
            for found in self.ledger.iter_payouts(
                statuses=[PayoutStatus.FAILED], batch_size=CHUNK_SIZE
            ):
                add(found)
        # The other waiting rows of the same invoices go with them: a payout waiting for the
        # invoice transfers decided now is decided with them, and sent after them this run.
        invoices = sorted({_invoice_id_of(row) for row in rows.values()})
        for chunk in chunked(invoices, CHUNK_SIZE):
            add(r for r in self._existing_rows(chunk).values() if _open(r))
        by_invoice: dict[str, list[Row]] = {}
        for row in rows.values():
            by_invoice.setdefault(_invoice_id_of(row), []).append(row)
        found_ids: set[str] = set()
        for chunk in chunked(sorted(by_invoice), CHUNK_SIZE):
            candidates = []
            for raw in self.mirakl.iter_invoices(invoice_ids=chunk):
                invoice_id, invoice = _parse(raw, now)
                waiting = by_invoice.get(invoice_id) if invoice_id else None
                if not waiting or invoice_id in found_ids:
                    continue
                found_ids.add(invoice_id)
                candidates.append(_candidate(invoice_id, waiting, invoice))
            self._decide_and_record(candidates, summary, dry_run=dry_run)
        for invoice_id in sorted(set(by_invoice) - found_ids):
            self._report_missing(by_invoice[invoice_id], None, summary, dry_run=dry_run, by_id=True)
        return set(rows)

    def _plan_backlog(self, summary: BatchSummary, *, dry_run: bool) -> set[tuple[str, ...]]:
        """Re-evaluate ON_HOLD and FAILED rows against their invoice; return their keys."""
        backlog: dict[str, list[Row]] = {}
        for row in self._retriable_rows():
            backlog.setdefault(_invoice_id_of(row), []).append(row)
        if not backlog:
            return set()
        start = _earliest_date(row for rows in backlog.values() for row in rows)
        found: set[str] = set()
        for chunk in chunked(self.mirakl.iter_invoices(start_date=start), CHUNK_SIZE):
            candidates = []
            for raw in chunk:
                invoice_id, invoice = _parse(raw, self._now())
                rows = backlog.get(invoice_id) if invoice_id else None
                if not rows or invoice_id in found:
                    continue
                found.add(invoice_id)
                candidates.append(_candidate(invoice_id, rows, invoice))
            self._decide_and_record(candidates, summary, dry_run=dry_run)

        missing = [rows for invoice_id, rows in sorted(backlog.items()) if invoice_id not in found]
        for rows in missing:
            self._report_missing(rows, start, summary, dry_run=dry_run)
        return {_key(row) for rows in backlog.values() for row in rows}

    def _report_missing(
        self,
        rows: list[Row],
        start: str | None,
        summary: BatchSummary,
        *,
        dry_run: bool,
        by_id: bool = False,
    ) -> None:
        """Mirakl did not return the invoice of these rows: keep them, say so, go on."""
        window = " by invoice_id" if by_id else f" since {start}" if start else ""
        reason = (
            f"Invoice {_invoice_id_of(rows[0])} is not returned by Mirakl (IV01{window}); "
            "kept as is, checked again next run"
        )
        updated = [replace(row, status_reason=reason) for row in rows if not is_held_record(row)]
        for row in updated:
            summary.add(_outcome(row, failed=True))
        if not dry_run:
            self._save(updated)

    def _retriable_rows(self) -> Iterator[Row]:
        if self.settings.invoice_transfers:
            for rows in self.ledger.iter_transfers(
                types=INVOICE_TRANSFER_TYPES, statuses=RETRIABLE_TRANSFER, batch_size=CHUNK_SIZE
            ):
                yield from rows
        if self.settings.payouts:
            for payouts in self.ledger.iter_payouts(
                statuses=RETRIABLE_PAYOUT, batch_size=CHUNK_SIZE
            ):
                yield from payouts

    def _existing_rows(self, invoice_ids: list[str]) -> dict[tuple[str, ...], Row]:
        found: dict[tuple[str, ...], Row] = {}
        if self.settings.invoice_transfers:
            for transfer_type in INVOICE_TRANSFER_TYPES:
                for row in self.ledger.get_transfers(transfer_type, invoice_ids).values():
                    found[_key(row)] = row
        if self.settings.payouts:
            for payout in self.ledger.get_payouts(invoice_ids).values():
                found[_key(payout)] = payout
        return found

    def _rows_of(self, invoice_id: str, existing: Mapping[tuple[str, ...], Row]) -> list[Row]:
        """The invoice's rows as saved, or new ones (three transfers, one payout)."""
        rows: list[Row] = []
        if self.settings.invoice_transfers:
            for transfer_type in INVOICE_TRANSFER_TYPES:
                new = TransferRecord(type=transfer_type, mirakl_id=invoice_id)
                rows.append(existing.get(_key(new)) or new)
        if self.settings.payouts:
            new_payout = PayoutRecord(mirakl_invoice_id=invoice_id)
            rows.append(existing.get(_key(new_payout)) or new_payout)
        return rows

    def _decide_and_record(
        self, candidates: list[_Candidate], summary: BatchSummary, *, dry_run: bool
    ) -> None:
        for candidate in candidates:
            for held in [r for r in candidate.rows if is_held_record(r)]:
                summary.add(_outcome(held))  # a person holds it: not decided until released
            candidate.rows = [r for r in candidate.rows if not is_held_record(r)]
        candidates = [c for c in candidates if c.rows]
        if not candidates:
            return
        shop_ids = {c.invoice.shop_id for c in candidates if c.invoice and c.invoice.shop_id}
        mappings = self.ledger.account_mappings_by_shop(shop_ids)
        self.providers.prefetch(shop_ids)
        gates = self._approval_gates(candidates, mappings)
        decided: list[Row] = []

        def handle(candidate: _Candidate) -> list[ItemOutcome]:
            rows = [
                self._decide_or_fail(row, candidate, mappings, gates, dry_run=dry_run)
                for row in candidate.rows
            ]
            decided.extend(rows)
            return []  # counted below, once the claims are settled

        run_batch(candidates, handle, item_id=lambda c: c.invoice_id, summary=summary)
        # One provider per invoice, whatever the rule said: claim the invoices about to be paid.
        decided = claim_pending(
            self.ledger,
            STRIPE,
            ClaimKind.INVOICE,
            decided,
            is_pending=lambda r: r.status in (TransferStatus.PENDING, PayoutStatus.PENDING),
            document_of=_invoice_id_of,
            shop_of=lambda r: r.mirakl_shop_id,
            refuse=_abort,
            workflow=WORKFLOW,
            run_id=self.run_id,
            dry_run=dry_run,
        )
        for row in decided:
            summary.add(_outcome(row))
        if not dry_run:
            self._save(decided)

    def _approval_gates(
        self, candidates: list[_Candidate], mappings: Mapping[int, Any]
    ) -> dict[str, ApprovalGate | None]:
        """The chunk's approval gates, for transfers and for payouts (``None`` when off): the
        decisions taken on its rows, and which of its accounts were already paid out to."""
        transfers = [
            f"{r.type}:{r.mirakl_id}"
            for c in candidates
            for r in c.rows
            if isinstance(r, TransferRecord) and r.id is not None
        ]
        payouts = [
            r.mirakl_invoice_id
            for c in candidates
            for r in c.rows
            if isinstance(r, PayoutRecord) and r.id is not None
        ]
        accounts = [m.stripe_account_id for m in mappings.values()]
        engine = self.ledger.engine
        return {
            "transfer": gate_for(engine, self.approval, "transfer", transfers),
            "payout": gate_for(engine, self.approval, "payout", payouts, destinations=accounts),
        }

    def _decide_or_fail(
        self,
        row: Row,
        candidate: _Candidate,
        mappings: Mapping[int, Any],
        gates: Mapping[str, ApprovalGate | None],
        *,
        dry_run: bool,
    ) -> Row:
        """:meth:`_decide`, or the row FAILED with the reason when deciding raised.

        Deciding may call Stripe (the platform's account id); if that call fails, the row must
        still be saved: FAILED, it is in the backlog and decided again by the next run. Left
        unsaved, a new invoice was lost for good, since the checkpoint moves past it.
        """
        try:
            decided = self._decide(row, candidate, mappings, gates, dry_run=dry_run)
            problem = self.ledger.unrecordable_reason(decided)
            if problem is not None:
                raise InvalidItemError(problem)
            return decided
        except ConfigurationError:
            raise
        except Exception as exc:  # noqa: BLE001 - recorded on the row: nothing is lost
            reason = decision_failure_reason(exc, item=_item_id(row))
            invoice = candidate.invoice
            if invoice is not None:  # the backlog re-reads IV01 from this date
                row = replace(
                    row, mirakl_shop_id=invoice.shop_id, mirakl_created_date=invoice.created_date
                )
            if isinstance(row, TransferRecord):
                return replace(row, status=TransferStatus.FAILED, status_reason=reason)
            return replace(row, status=PayoutStatus.FAILED, status_reason=reason)

    def _decide(
        self,
        row: Row,
        candidate: _Candidate,
        mappings: Mapping[int, Any],
        gates: Mapping[str, ApprovalGate | None],
        *,
        dry_run: bool,
    ) -> Row:
        invoice = candidate.invoice
        if invoice is None:
            if isinstance(row, TransferRecord):
                return replace(row, status=TransferStatus.FAILED, status_reason=candidate.error)
            return replace(row, status=PayoutStatus.FAILED, status_reason=candidate.error)
        if isinstance(row, PayoutRecord) and payout_failed_at_bank(row):
            # payout.failed: forget the failed payout (its id goes to the audit trail) so it is
            # decided afresh and re-created with a new key (…:retry<n>) by the payout step.
            row = (
                replace(row, payout_id=None, idempotency_key=None, attempted_at=None)
                if dry_run
                else self.ledger.reopen_failed_payout(row, run_id=self.run_id)
            )
        mapping = mappings.get(invoice.shop_id) if invoice.shop_id else None
        done = row.transfer_id if isinstance(row, TransferRecord) else row.payout_id
        refusal = (
            None
            if done or not invoice.shop_id
            else self.providers.refusal(invoice.shop_id, invoice.created_at, STRIPE)
        )
        if refusal is not None:
            # Another provider pays this shop's invoices: nothing moves on Stripe for it.
            row = replace(
                row, mirakl_shop_id=invoice.shop_id, mirakl_created_date=invoice.created_date
            )
            return _abort(row, refusal)
        if isinstance(row, TransferRecord):
            return decide_invoice_transfer(
                row,
                invoice,
                shop_mapping=mapping,
                platform_account=self.stripe.platform_account_id,
                approval=gates.get("transfer"),
            )
        return decide_payout(row, invoice, shop_mapping=mapping, approval=gates.get("payout"))

    def _save(self, rows: Iterable[Row]) -> None:
        rows = list(rows)
        transfers = [r for r in rows if isinstance(r, TransferRecord)]
        payouts = [r for r in rows if isinstance(r, PayoutRecord)]
        self.ledger.save_transfers(transfers, run_id=self.run_id)
        self.ledger.save_payouts(payouts, run_id=self.run_id)

    # -- transfer ---------------------------------------------------------------------------

    def transfer(
        self,
        *,
        shop_id: int | str | None = None,
        dry_run: bool = False,
        shard: int | None = None,
        shards: int | None = None,
    ) -> BatchSummary:
        """Create every PENDING invoice transfer (exactly once); with ``shard``/``shards``, only
        that shard's rows."""
        summary, part = start_sharded_step(
            WORKFLOW, "transfer", dry_run=dry_run, shard=shard, shards=shards
        )
        shop = parse_shop_id(shop_id)
        for rows in self.ledger.iter_transfers(
            types=INVOICE_TRANSFER_TYPES,
            statuses=[TransferStatus.PENDING],
            batch_size=CHUNK_SIZE,
            shard=part,
        ):
            rows = [r for r in rows if shop is None or r.mirakl_shop_id == shop]
            rows = self._claimed(rows, summary, dry_run=dry_run)
            if dry_run:
                for row in rows:
                    summary.add(_outcome(replace(row, status_reason="would be transferred")))
                continue
            run_batch(rows, self._send_transfer, item_id=_item_id, summary=summary)
        log.info("%s", summary.describe())
        return summary

    def _send_transfer(self, row: TransferRecord) -> ItemOutcome:
        if row.transfer_id:
            return self._record_transfer(row, TransferStatus.CREATED, None)
        if not row.destination_account or not row.amount or not row.currency:
            reason = "PENDING row lacks destination or amount"
            return self._record_transfer(row, TransferStatus.FAILED, reason)
        result, row = write_once(
            row,
            new_key=_new_transfer_key(row),
            find=self._find_transfer,
            mark=partial(self.ledger.mark_transfer_attempt, run_id=self.run_id),
            create=self._create_transfer,
        )
        recording = Recording(
            created=self._transfer_created,
            refused=self._transfer_refused,
            unknown=partial(self._unknown, save=self.ledger.save_transfers),
        )
        return recording.record(row, result)

    def _transfer_created(self, row: TransferRecord, written: Written) -> ItemOutcome:
        row = replace(row, transfer_id=written.object_id)
        return self._record_transfer(row, TransferStatus.CREATED, None)

    def _transfer_refused(self, row: TransferRecord, refused: Refused) -> ItemOutcome:
        if refused.code == "balance_insufficient":
            # Funds not there yet (the seller's, for its fees): wait, tried again next run.
            assert row.amount is not None and row.currency
            reason = self._funds_reason("transfer", row.source_account, row.amount, row.currency)
            return self._record_transfer(row, TransferStatus.ON_HOLD, reason)
        return self._record_transfer(row, TransferStatus.FAILED, refused.message)

    def _unknown(self, row: Row, unknown: Unknown, *, save: Callable[..., object]) -> ItemOutcome:
        return record_in_doubt(
            row, unknown.reason, item_id=_item_id(row), save=partial(save, run_id=self.run_id)
        )

    def _create_transfer(self, row: TransferRecord, key: str) -> CreatedObject:
        metadata = {
            "miraklId": row.mirakl_id,
            "miraklShopId": str(row.mirakl_shop_id or ""),
            "miraklTransferType": str(row.type),
        }
        return self.stripe.create_transfer(
            amount=row.amount,
            currency=row.currency,
            destination=row.destination_account,
            idempotency_key=key,
            metadata=metadata,
            on_account=row.source_account,
        )

    def _find_transfer(self, row: TransferRecord) -> str | None:
        return find_transfer(self.stripe, row)

    def _record_transfer(
        self, row: TransferRecord, status: TransferStatus, reason: str | None
    ) -> ItemOutcome:
        row = replace(row, status=status, status_reason=reason)
        self.ledger.save_transfers([row], run_id=self.run_id)
        return _outcome(row)

    # -- payout -----------------------------------------------------------------------------

    def payout(
        self,
        *,
        shop_id: int | str | None = None,
        dry_run: bool = False,
        shard: int | None = None,
        shards: int | None = None,
    ) -> BatchSummary:
        """Create every PENDING payout whose invoice transfers are settled (exactly once); with
        ``shard``/``shards``, only that shard's rows."""
        summary, part = start_sharded_step(
            WORKFLOW, "payout", dry_run=dry_run, shard=shard, shards=shards
        )
        shop = parse_shop_id(shop_id)
        for rows in self.ledger.iter_payouts(
            statuses=[PayoutStatus.PENDING], batch_size=CHUNK_SIZE, shard=part
        ):
            rows = [r for r in rows if shop is None or r.mirakl_shop_id == shop]
            rows = self._claimed(rows, summary, dry_run=dry_run)
            siblings = self._invoice_transfers([r.mirakl_invoice_id for r in rows])
            ready: list[PayoutRecord] = []
            for row in rows:
                blocker = payout_blocker(
                    row.mirakl_invoice_id, siblings.get(row.mirakl_invoice_id, [])
                )
                # A payout in doubt may exist at Stripe already: settle it, never hold it.
                if blocker and not row.in_doubt:
                    held = replace(row, status=PayoutStatus.ON_HOLD, status_reason=blocker)
                    if not dry_run:
                        self.ledger.save_payouts([held], run_id=self.run_id)
                    summary.add(_outcome(held))
                elif dry_run:
                    summary.add(_outcome(replace(row, status_reason="would be paid out")))
                else:
                    ready.append(row)
            run_batch(ready, self._send_payout, item_id=_item_id, summary=summary)
        log.info("%s", summary.describe())
        return summary

    def _claimed(self, rows: list[Row], summary: BatchSummary, *, dry_run: bool) -> list[Row]:
        """The rows to send; those whose invoice another provider holds are refused (saved)."""
        keep, refused = refuse_claimed_before_sending(
            self.ledger,
            STRIPE,
            ClaimKind.INVOICE,
            rows,
            document_of=_invoice_id_of,
            shop_of=lambda r: r.mirakl_shop_id,
            untouched=lambda r: not _stripe_id(r) and r.attempted_at is None,
            refuse=_abort,
            save=self._save,
            workflow=WORKFLOW,
            run_id=self.run_id,
            dry_run=dry_run,
        )
        for row in refused:
            summary.add(_outcome(row))
        return keep

    def _invoice_transfers(self, invoice_ids: list[str]) -> dict[str, list[TransferRecord]]:
        found: dict[str, list[TransferRecord]] = {}
        if not invoice_ids:
            return found
        for transfer_type in INVOICE_TRANSFER_TYPES:
            for invoice_id, row in self.ledger.get_transfers(transfer_type, invoice_ids).items():
                found.setdefault(invoice_id, []).append(row)
        return found

    def _send_payout(self, row: PayoutRecord) -> ItemOutcome:
        if row.payout_id:
            return self._record_payout(row, PayoutStatus.CREATED, None)
        if not row.stripe_account_id or not row.amount or not row.currency:
            reason = "PENDING payout lacks account or amount"
            return self._record_payout(row, PayoutStatus.FAILED, reason)
        result, row = write_once(
            row,
            new_key=_new_payout_key(row),
            find=self._find_payout,
            mark=partial(self.ledger.mark_payout_attempt, run_id=self.run_id),
            create=self._create_payout,
        )
        recording = Recording(
            created=self._payout_created,
            refused=self._payout_refused,
            unknown=partial(self._unknown, save=self.ledger.save_payouts),
        )
        return recording.record(row, result)

    def _payout_created(self, row: PayoutRecord, written: Written) -> ItemOutcome:
        row = replace(row, payout_id=written.object_id)
        if written.replayed or written.found:
            failure = self._failed_since(row)
            if failure:
                # Recorded as the payout.failed webhook would have (the event may have
                # come before the id was known): the next plan re-creates the payout.
                return self._record_payout(row, PayoutStatus.FAILED, failure)
        return self._record_payout(row, PayoutStatus.CREATED, None)

    def _payout_refused(self, row: PayoutRecord, refused: Refused) -> ItemOutcome:
        if refused.code == "balance_insufficient":
            assert row.amount is not None and row.currency
            reason = self._funds_reason("pay out", row.stripe_account_id, row.amount, row.currency)
            return self._record_payout(row, PayoutStatus.ON_HOLD, reason)
        return self._record_payout(row, PayoutStatus.FAILED, refused.message)

    def _funds_reason(self, action: str, account: str | None, amount: int, currency: str) -> str:
        """The hold reason of a payout or transfer the balance of ``account`` (``None``: the
        platform) cannot cover yet, with the date the pending funds should (its balance and
        pending balance transactions of the last :data:`FUNDS_LOOKBACK`); without the date when
        those reads fail."""
        lower = currency.lower()
        shown = account or "the platform"
        try:
            balance = self.stripe.retrieve_balance(account)
            # Balances are in Stripe's unit; ``amount`` is in the ledger's (ISO minor units).
            available = sum(
                from_api(b.get("amount", 0), lower) or 0
                for b in balance.get("available") or []
                if b.get("currency") == lower
            )
            now = self._now()
            pending = [
                (from_api(t["amount"], lower) or 0, t["available_on"])
                for t in self.stripe.iter_balance_transactions(
                    account=account, currency=lower, created_since=now - FUNDS_LOOKBACK
                )
                if t.get("available_on", 0) > now.timestamp()
            ]
        except PaymentProviderError as exc:
            log.warning("Balance of %s unreadable: %s", shown, exc)
            return funds_hold_reason(action, amount, currency, shown, 0, [])
        return funds_hold_reason(action, amount, currency, shown, available, pending)

    def _failed_since(self, row: PayoutRecord) -> str | None:
        """Why a recovered payout is dead (failed at the bank, cancelled), or ``None``.

        A replay answers with the payout as it was first created ("pending"), and a
        ``payout.failed`` event that came while the row was in doubt found no payout id to
        apply to. Without this check the invoice would be marked paid with a dead payout.
        """
        payout = self.stripe.retrieve_payout(
            account=row.stripe_account_id or "", payout_id=row.payout_id or ""
        )
        if payout.get("status") in ("failed", "canceled"):
            return payout_failure_reason(payout)
        return None

    def _create_payout(self, row: PayoutRecord, key: str) -> CreatedObject:
        return self.stripe.create_payout(
            account=row.stripe_account_id,
            amount=row.amount,
            currency=row.currency,
            idempotency_key=key,
            metadata={
                "miraklShopId": str(row.mirakl_shop_id or ""),
                "invoiceId": row.mirakl_invoice_id,
            },
        )

    def _find_payout(self, row: PayoutRecord) -> str | None:
        return find_payout(self.stripe, row)

    def _record_payout(
        self, row: PayoutRecord, status: PayoutStatus, reason: str | None
    ) -> ItemOutcome:
        row = replace(row, status=status, status_reason=reason)
        self.ledger.save_payouts([row], run_id=self.run_id)
        return _outcome(row)


def build(resources: Resources, config: Mapping[str, Any], run_id: str | None) -> SellerSettlement:
    """Registry entry: the job wired to the run's clients and ``config["seller_settlement"]``."""
    return SellerSettlement(
        mirakl=resources.get("mirakl"),
        stripe=resources.get("stripe"),
        ledger=resources.get("ledger"),
        settings=SettlementSettings.from_mapping(config.get("seller_settlement")),
        run_id=run_id,
        go_live=GoLive(go_live_from_config(config)),
        providers=shop_providers(config, resources.get("mirakl")),
        approval=ApprovalSettings.from_mapping(config.get("approval")),
    )


def parse_shop_id(value: Any) -> int | None:
    """The ``shop_id`` run param: an integer, a string of ASCII digits, or empty for every shop."""
    try:
        return parse_int_id(value, field="param 'shop_id'")
    except InvalidItemError as exc:
        raise ConfigurationError(f"{exc.reason}: expected a Mirakl shop id") from None


def _new_transfer_key(row: TransferRecord) -> str:
    """``…:transfer:<type>:<invoice id>``, ``…:retry<n>`` after a definite refusal."""
    parts: list[object] = ["transfer", row.type, row.mirakl_id]
    if row.attempts:
        parts.append(f"retry{row.attempts}")
    return idempotency_key(*parts)


def _new_payout_key(row: PayoutRecord) -> str:
    """``…:payout:<invoice id>``, ``…:retry<n>`` after a definite refusal."""
    parts: list[object] = ["payout", row.mirakl_invoice_id]
    if row.attempts:
        parts.append(f"retry{row.attempts}")
    return idempotency_key(*parts)


def _parse(raw: Any, now: datetime) -> tuple[str, MiraklInvoice | InvalidItemError]:
    invoice_id = raw.get("invoice_id") if isinstance(raw, Mapping) else None
    item = "" if invoice_id in (None, "") else str(invoice_id)
    try:
        invoice = parse_invoice(raw)
        check_not_future(invoice.created_at, invoice.created_date, now=now, field="date_created")
        return item, invoice
    except InvalidItemError as exc:
        return item, exc.for_item(item or "<invoice without id>")


def _candidate(
    invoice_id: str, rows: list[Row], invoice: MiraklInvoice | InvalidItemError
) -> _Candidate:
    if isinstance(invoice, InvalidItemError):
        return _Candidate(invoice_id, rows, None, f"invalid data: {invoice.reason}")
    return _Candidate(invoice_id, rows, invoice)


def _earliest_date(rows: Iterable[Row]) -> str | None:
    """The earliest ``mirakl_created_date`` (raw string), or None to read every invoice."""
    earliest: tuple[datetime, str] | None = None
    for row in rows:
        if not row.mirakl_created_date:
            return None
        try:
            at = parse_mirakl_datetime(row.mirakl_created_date)
        except InvalidItemError:
            return None
        if earliest is None or at < earliest[0]:
            earliest = (at, row.mirakl_created_date)
    return earliest[1] if earliest else None


def _invoice_id_of(row: Row) -> str:
    return row.mirakl_id if isinstance(row, TransferRecord) else row.mirakl_invoice_id


def _key(row: Row) -> tuple[str, ...]:
    if isinstance(row, TransferRecord):
        return ("transfer", str(TransferType(row.type)), row.mirakl_id)
    return ("payout", row.mirakl_invoice_id)


def _open(row: Row) -> bool:
    """New, or retriable: a row decided for good (or waiting to be sent) is left alone."""
    if row.id is None:
        return True
    if isinstance(row, TransferRecord):
        return row.status in RETRIABLE_TRANSFER
    return row.status in RETRIABLE_PAYOUT


def _ours(row: Any) -> bool:
    """An invoice transfer or payout (a released order transfer is the split's)."""
    return isinstance(row, PayoutRecord) or (
        isinstance(row, TransferRecord) and row.type in INVOICE_TRANSFER_TYPES
    )


def _item_id(row: Row) -> str:
    if isinstance(row, TransferRecord):
        return f"{row.mirakl_id}/{row.type}"
    return f"{row.mirakl_invoice_id}/PAYOUT"


def _outcome(row: Row, *, failed: bool | None = None) -> ItemOutcome:
    is_failed = row.status in (TransferStatus.FAILED, PayoutStatus.FAILED)
    return ItemOutcome(
        item_id=_item_id(row),
        status=str(row.status),
        reason=row.status_reason,
        amount=row.amount,
        currency=row.currency,
        failed=is_failed if failed is None else failed,
        residue=row.amount_residue,
    )


def _abort(row: Row, reason: str) -> Row:
    if isinstance(row, TransferRecord):
        return replace(row, status=TransferStatus.ABORTED, status_reason=reason)
    return replace(row, status=PayoutStatus.ABORTED, status_reason=reason)


def _stripe_id(row: Row) -> str | None:
    return row.transfer_id if isinstance(row, TransferRecord) else row.payout_id
