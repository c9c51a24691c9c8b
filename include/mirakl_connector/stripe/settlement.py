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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from mirakl_connector.core.batch import (
    BatchSummary,
    ItemOutcome,
    chunked,
    run_batch,
)
from mirakl_connector.core.errors import ConfigurationError, InvalidItemError
from mirakl_connector.core.ids import parse_int_id
from mirakl_connector.core.registry import Resources
from mirakl_connector.core.shards import DEFAULT_SHARDS, start_sharded_step
from mirakl_connector.ledger.manual_rules import is_held_record
from mirakl_connector.ledger.records import (
    INVOICE_TRANSFER_TYPES,
    PayoutRecord,
    PayoutStatus,
    TransferStatus,
)
from mirakl_connector.mirakl.orders import parse_mirakl_datetime
from mirakl_connector.operations.backlog import (
    DEFAULT_SWEEP_HOURS,
    BacklogClock,
    released_since,
    sharded_backlog_values,
)
from mirakl_connector.stripe.money_job import MoneyJob
from mirakl_connector.stripe.settlement_deciding import SettlementDeciding
from mirakl_connector.stripe.settlement_decisions import (
    FUNDS_REASON_PREFIX,
    SETTLED_TRANSFER,
    MiraklInvoice,
    funds_may_be_there,
    payout_blocker,
)
from mirakl_connector.stripe.settlement_rows import (
    Row,
    candidate_of,
    earliest_date,
    invoice_id_of,
    is_open,
    is_ours,
    item_id_of,
    parse_raw_invoice,
    row_key,
    row_outcome,
)
from mirakl_connector.stripe.settlement_sending import SettlementSending
from mirakl_connector.stripe.specs import SELLER_SETTLEMENT

log = logging.getLogger(__name__)

WORKFLOW = SELLER_SETTLEMENT.name
CHECKPOINT_KEY = "seller_settlement_checkpoint"
#: the backlog's checkpoints (see :mod:`.backlog`)
BACKLOG_NAME = "seller_settlement"
CHUNK_SIZE = 100


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
        return cls(**sharded_backlog_values(cls, values, "seller_settlement"))


class SellerSettlement(MoneyJob[SettlementSettings], SettlementDeciding, SettlementSending):
    """The settlement job; see the module docstring for what each step does.

    Its parts live next to it: deciding the rows (:mod:`.settlement_deciding`), sending one
    transfer or payout (:mod:`.settlement_sending`), the rows (:mod:`.settlement_rows`)."""

    # -- plan ------------------------------------------------------------------------------

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
        for chunk in chunked((parse_raw_invoice(raw, now) for raw in invoices), CHUNK_SIZE):
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
                    if row_key(row) not in seen and is_open(row)
                ]
                if rows:
                    candidates.append(candidate_of(invoice_id, rows, invoice))
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
                rows.setdefault(row_key(row), row)

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
                add(r for r in released if is_open(r) and is_ours(r))
        if self.settings.invoice_transfers:
            for shop_transfers in self.ledger.iter_transfers_of_shops(
                types=INVOICE_TRANSFER_TYPES,
                statuses=[TransferStatus.ON_HOLD],
                shop_ids=shops,
                batch_size=CHUNK_SIZE,
            ):
                add(shop_transfers)
            for unfunded_transfers in self.ledger.iter_waiting(
                "transfer", reason_prefix=FUNDS_REASON_PREFIX, types=INVOICE_TRANSFER_TYPES
            ):
                add(
                    r
                    for r in unfunded_transfers
                    if funds_may_be_there(r, now=now, credited=credited)
                )
            for failed_transfers in self.ledger.iter_transfers(
                types=INVOICE_TRANSFER_TYPES,
                statuses=[TransferStatus.FAILED],
                batch_size=CHUNK_SIZE,
            ):
                add(failed_transfers)
        if self.settings.payouts:
            for shop_payouts in self.ledger.iter_payouts_of_shops(
                statuses=[PayoutStatus.ON_HOLD], shop_ids=shops, batch_size=CHUNK_SIZE
            ):
                add(shop_payouts)
            for chunk in chunked(settled, CHUNK_SIZE):
                add(
                    p
                    for p in self.ledger.get_payouts(chunk).values()
                    if p.status is PayoutStatus.ON_HOLD
                )
            for unfunded_payouts in self.ledger.iter_waiting(
                "payout", reason_prefix=FUNDS_REASON_PREFIX
            ):
                add(
                    r for r in unfunded_payouts if funds_may_be_there(r, now=now, credited=credited)
                )
            for failed_payouts in self.ledger.iter_payouts(
                statuses=[PayoutStatus.FAILED], batch_size=CHUNK_SIZE
            ):
                add(failed_payouts)
        # The other waiting rows of the same invoices go with them: a payout waiting for the
        # invoice transfers decided now is decided with them, and sent after them this run.
        invoices = sorted({invoice_id_of(row) for row in rows.values()})
        for chunk in chunked(invoices, CHUNK_SIZE):
            add(r for r in self._existing_rows(chunk).values() if is_open(r))
        by_invoice: dict[str, list[Row]] = {}
        for row in rows.values():
            by_invoice.setdefault(invoice_id_of(row), []).append(row)
        found_ids: set[str] = set()
        for chunk in chunked(sorted(by_invoice), CHUNK_SIZE):
            candidates = []
            for raw in self.mirakl.iter_invoices(invoice_ids=chunk):
                invoice_id, invoice = parse_raw_invoice(raw, now)
                waiting = by_invoice.get(invoice_id) if invoice_id else None
                if not waiting or invoice_id in found_ids:
                    continue
                found_ids.add(invoice_id)
                candidates.append(candidate_of(invoice_id, waiting, invoice))
            self._decide_and_record(candidates, summary, dry_run=dry_run)
        for invoice_id in sorted(set(by_invoice) - found_ids):
            self._report_missing(by_invoice[invoice_id], None, summary, dry_run=dry_run, by_id=True)
        return set(rows)

    def _plan_backlog(self, summary: BatchSummary, *, dry_run: bool) -> set[tuple[str, ...]]:
        """Re-evaluate ON_HOLD and FAILED rows against their invoice; return their keys."""
        backlog: dict[str, list[Row]] = {}
        for row in self._retriable_rows():
            backlog.setdefault(invoice_id_of(row), []).append(row)
        if not backlog:
            return set()
        start = earliest_date(row for rows in backlog.values() for row in rows)
        found: set[str] = set()
        for chunk in chunked(self.mirakl.iter_invoices(start_date=start), CHUNK_SIZE):
            candidates = []
            for raw in chunk:
                invoice_id, invoice = parse_raw_invoice(raw, self._now())
                rows = backlog.get(invoice_id) if invoice_id else None
                if not rows or invoice_id in found:
                    continue
                found.add(invoice_id)
                candidates.append(candidate_of(invoice_id, rows, invoice))
            self._decide_and_record(candidates, summary, dry_run=dry_run)

        missing = [rows for invoice_id, rows in sorted(backlog.items()) if invoice_id not in found]
        for rows in missing:
            self._report_missing(rows, start, summary, dry_run=dry_run)
        return {row_key(row) for rows in backlog.values() for row in rows}

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
            f"Invoice {invoice_id_of(rows[0])} is not returned by Mirakl (IV01{window}); "
            "kept as is, checked again next run"
        )
        updated = [replace(row, status_reason=reason) for row in rows if not is_held_record(row)]
        for row in updated:
            summary.add(row_outcome(row, failed=True))
        if not dry_run:
            self._save(updated)

    # -- transfer --------------------------------------------------------------------------

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
                    summary.add(row_outcome(replace(row, status_reason="would be transferred")))
                continue
            run_batch(rows, self._send_transfer, item_id=item_id_of, summary=summary)
        log.info("%s", summary.describe())
        return summary

    # -- payout ----------------------------------------------------------------------------

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
                    summary.add(row_outcome(held))
                elif dry_run:
                    summary.add(row_outcome(replace(row, status_reason="would be paid out")))
                else:
                    ready.append(row)
            run_batch(ready, self._send_payout, item_id=item_id_of, summary=summary)
        log.info("%s", summary.describe())
        return summary


def build(resources: Resources, config: Mapping[str, Any], run_id: str | None) -> SellerSettlement:
    """Registry entry: the job wired to the run's clients and ``config["seller_settlement"]``."""
    return SellerSettlement.wired(
        resources,
        config,
        run_id,
        section="seller_settlement",
        parse=SettlementSettings.from_mapping,
    )


def parse_shop_id(value: Any) -> int | None:
    """The ``shop_id`` run param: an integer, a string of ASCII digits, or empty for every shop."""
    try:
        return parse_int_id(value, field="param 'shop_id'")
    except InvalidItemError as exc:
        raise ConfigurationError(f"{exc.reason}: expected a Mirakl shop id") from None
