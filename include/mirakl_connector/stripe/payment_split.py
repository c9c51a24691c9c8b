"""Payment split: Mirakl orders → Stripe transfers to the sellers' connected accounts.

Two steps, each one Airflow task:

``plan``
    For product orders (OR11) and service orders (SOR11 + SPA11), each behind its enable flag:
    first the *backlog* (rows ON_HOLD or FAILED, re-evaluated against a fresh copy of their order;
    a row a person holds on the payments console is left alone until released),
    then the *new* orders created since the checkpoint (or since the ``since`` override, or just
    ``order_ids``). Every order is decided (see :mod:`.transfer_decisions`) and recorded in the
    ledger; the checkpoint (newest creation date seen) only moves forward, only after the whole
    batch is recorded, and only in a run without ``since`` or ``order_ids``: a manual run did not
    read everything after the checkpoint (a ``since`` later than it skips the orders in between),
    so it must never move it past them.
``execute``
    Sends every PENDING row to Stripe with an idempotency key derived from its Mirakl id. A row
    whose previous attempt may have reached Stripe (``attempted_at`` set, no transfer id) is
    replayed with the same key within 23 h, or looked up by metadata after that, never blindly
    re-created. ``shard``/``shards`` split the PENDING rows into disjoint sets (by ledger row id),
    so several workers can run ``execute`` at once without two of them sending the same row.

A dry run decides and reports, and writes nothing: no ledger row, no checkpoint, no transfer.

With the approval gate on (``approval`` settings,
:mod:`mirakl_connector.operations.approval_gate`), a
transfer above its currency's threshold is recorded ON_HOLD ("awaiting approval: …") instead of
PENDING; a decision taken on the console since the previous look is a change like any other, so
the next scheduled run re-decides that row and sends it (once) when approved.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any

from mirakl_connector.core.batch import (
    BatchSummary,
    ItemOutcome,
    chunked,
    read_ahead,
    run_batch,
)
from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.core.registry import Resources
from mirakl_connector.core.shards import DEFAULT_SHARDS, start_sharded_step
from mirakl_connector.ledger.claims import ClaimKind
from mirakl_connector.ledger.records import (
    ORDER_TRANSFER_TYPES,
    RETRIABLE_TRANSFER,
    TAX_SUFFIX,
    TransferRecord,
    TransferStatus,
    TransferType,
)
from mirakl_connector.mirakl.orders import (
    MiraklOrder,
    parse_mirakl_datetime,
)
from mirakl_connector.operations.approvals import items_decided_since
from mirakl_connector.operations.backlog import (
    DEFAULT_SWEEP_HOURS,
    BacklogClock,
    released_since,
    sharded_backlog_values,
)
from mirakl_connector.operations.payout_provider import STRIPE
from mirakl_connector.operations.provider_guard import (
    claim_pending,
    refuse_claimed_before_sending,
)
from mirakl_connector.stripe.money_job import MoneyJob
from mirakl_connector.stripe.specs import PAYMENT_SPLIT
from mirakl_connector.stripe.split_deciding import Candidate, TransferDeciding
from mirakl_connector.stripe.split_orders import OrderReading
from mirakl_connector.stripe.split_sending import TransferSending, order_id_of, transfer_outcome

log = logging.getLogger(__name__)

WORKFLOW = PAYMENT_SPLIT.name
CHUNK_SIZE = 100

CHECKPOINT_KEYS = {
    TransferType.PRODUCT_ORDER: "product_payment_split_checkpoint",
    TransferType.SERVICE_ORDER: "service_payment_split_checkpoint",
}
#: the prefix of each backlog's two checkpoints (see :mod:`.backlog`)
BACKLOG_NAMES = {
    TransferType.PRODUCT_ORDER: "product_payment_split",
    TransferType.SERVICE_ORDER: "service_payment_split",
}
#: when the waiting rows were last looked at for changes (our clock; scheduled runs only)
BACKLOG_CHECKED_KEYS = {t: f"{n}_backlog_checked" for t, n in BACKLOG_NAMES.items()}
#: when every waiting row was last re-read from Mirakl (the safety net; scheduled runs only)
FULL_SWEEP_KEYS = {t: f"{n}_full_sweep" for t, n in BACKLOG_NAMES.items()}


@dataclass(frozen=True)
class PaymentSplitSettings:
    """The ``payment_split`` section of the connector configuration."""

    product_enabled: bool = True
    service_enabled: bool = False
    tax_split_enabled: bool = False
    tax_account: str | None = None
    commercial_order_metadata_key: str = "mirakl_commercial_order_id"
    #: how many mapped ``create_transfers`` tasks share the PENDING rows
    #: (see :mod:`mirakl_connector.core.shards`)
    execute_shards: int = DEFAULT_SHARDS
    #: hours between two full re-reads of the waiting (ON_HOLD) rows; in between a scheduled
    #: run re-evaluates only the rows whose order or ledger-side condition changed
    backlog_full_sweep_hours: int = DEFAULT_SWEEP_HOURS

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> PaymentSplitSettings:
        return cls(**sharded_backlog_values(cls, values, "payment_split"))


class PaymentSplit(MoneyJob[PaymentSplitSettings], OrderReading, TransferDeciding, TransferSending):
    """The payment split job; see the module docstring for what each step does.

    Its parts live next to it: reading Mirakl (:mod:`.split_orders`), deciding
    (:mod:`.split_deciding`), sending one row (:mod:`.split_sending`)."""

    def _enabled_types(self) -> list[TransferType]:
        types = []
        if self.settings.product_enabled:
            types.append(TransferType.PRODUCT_ORDER)
        if self.settings.service_enabled:
            types.append(TransferType.SERVICE_ORDER)
        return types

    # -- plan -------------------------------------------------------------------------------

    def plan(
        self,
        *,
        since: datetime | None = None,
        order_ids: Sequence[str] | None = None,
        dry_run: bool = False,
    ) -> BatchSummary:
        """Decide a transfer for every backlog row and every new order; record the decisions."""
        summary = BatchSummary(WORKFLOW, "plan", dry_run=dry_run)
        types = self._enabled_types()
        if not types:
            summary.notes.append("product and service payment split are both disabled")
        for transfer_type in types:
            key = CHECKPOINT_KEYS[transfer_type]
            self.go_live.require(WORKFLOW, key, self.ledger.get_checkpoint(key), "order")
        scheduled = since is None and not order_ids and not dry_run
        for transfer_type in types:
            seen = self._plan_backlog(
                transfer_type, summary, order_ids=order_ids, dry_run=dry_run, scheduled=scheduled
            )
            self._plan_new(
                transfer_type, summary, since=since, order_ids=order_ids, dry_run=dry_run, skip=seen
            )
        log.info("%s", summary.describe())
        return summary

    def _plan_backlog(
        self,
        transfer_type: TransferType,
        summary: BatchSummary,
        *,
        order_ids: Sequence[str] | None,
        dry_run: bool,
        scheduled: bool,
    ) -> set[str]:
        """Re-evaluate the ON_HOLD and FAILED rows due this run; return the row ids decided.

        A scheduled run between two full sweeps looks only at what changed (see
        :meth:`_plan_changed`); a manual run (``since``, ``order_ids``, dry run), the first
        run and a run whose full sweep is due re-read every row, as the safety net for a
        change the cheap read missed. Only scheduled runs move the two checkpoints.
        """
        clock = BacklogClock(
            self.ledger,
            BACKLOG_NAMES[transfer_type],
            sweep_hours=self.settings.backlog_full_sweep_hours,
            now=self._now,
        )
        # SOR11 has `date_updated_start`, but a service order's payment lives in SPA11, which
        # has no date filter (reference, SPA11): the update date does not say that the debit
        # changed, so service rows are re-read every run (few, by id).
        backlog = clock.start(
            scheduled=scheduled, always_sweep=transfer_type is TransferType.SERVICE_ORDER
        )
        if backlog.sweep:
            seen = self._plan_all_waiting(transfer_type, summary, order_ids, dry_run=dry_run)
            if scheduled:
                summary.notes.append(f"{transfer_type} backlog: full sweep")
        else:
            assert backlog.since is not None
            seen = self._plan_changed(transfer_type, summary, since=backlog.since, dry_run=dry_run)
        clock.finish(backlog)
        return seen

    def _plan_changed(
        self,
        transfer_type: TransferType,
        summary: BatchSummary,
        *,
        since: datetime,
        dry_run: bool,
    ) -> set[str]:
        """Re-evaluate only the waiting rows whose cause may have changed since ``since``.

        * their Mirakl order changed: OR11 by ``start_update_date`` (one page when idle);
        * their shop's account mapping changed (account mapped, KYC status, ignored flag);
        * their commercial order's payment mapping was recorded or changed (OR11 by
          ``commercial_ids``, 100 a call);
        * a person released them from a hold on the payments console;
        * someone approved or rejected them on the payments console (the approval gate);
        * FAILED rows, every run: they are the failures the report and e-mail name, few.

        An order that comes more than once (Mirakl's overlap, ours, two causes) is decided once.
        """
        seen: set[str] = set()
        retriable = list(RETRIABLE_TRANSFER)

        def decide(orders: Iterator[tuple[str, MiraklOrder | InvalidItemError]]) -> None:
            for chunk in chunked(orders, CHUNK_SIZE):
                fresh = {i: o for i, o in chunk if i}
                row_ids = [r for i in fresh for r in self._row_ids(i) if r not in seen]
                rows = self.ledger.get_transfers(transfer_type, row_ids)
                waiting = [r for r in rows.values() if r.status in RETRIABLE_TRANSFER]
                seen.update(r.mirakl_id for r in waiting)
                self._decide_fetched(waiting, fresh, summary, dry_run=dry_run)

        decide(self._fetch_orders(transfer_type, start_update=since))
        commercial = self.ledger.commercial_ids_with_payments_changed_since(since)
        if commercial:
            decide(self._fetch_orders(transfer_type, commercial_ids=commercial))
        shops = self.ledger.shops_with_mappings_changed_since(since)
        released = self._released_since(transfer_type, since)
        if released:
            self._refetch_and_decide(
                transfer_type, [r for r in released if r.mirakl_id not in seen], summary, seen,
                dry_run=dry_run,
            )  # fmt: skip
        if shops:
            for rows in self.ledger.iter_transfers_of_shops(
                types=[transfer_type], statuses=retriable, shop_ids=shops, batch_size=CHUNK_SIZE
            ):
                self._refetch_and_decide(
                    transfer_type, [r for r in rows if r.mirakl_id not in seen], summary, seen,
                    dry_run=dry_run,
                )  # fmt: skip
        prefix = f"{transfer_type}:"
        decided = [
            item.removeprefix(prefix)
            for item in items_decided_since(self.ledger.engine, "transfer", since)
            if item.startswith(prefix)
        ]
        for ids in chunked(decided, CHUNK_SIZE):
            found = self.ledger.get_transfers(transfer_type, ids).values()
            self._refetch_and_decide(
                transfer_type,
                [r for r in found if r.status in RETRIABLE_TRANSFER and r.mirakl_id not in seen],
                summary, seen, dry_run=dry_run,
            )  # fmt: skip
        for rows in self.ledger.iter_transfers(
            types=[transfer_type], statuses=[TransferStatus.FAILED], batch_size=CHUNK_SIZE
        ):
            self._refetch_and_decide(
                transfer_type, [r for r in rows if r.mirakl_id not in seen], summary, seen,
                dry_run=dry_run,
            )  # fmt: skip
        return seen

    def _released_since(self, transfer_type: TransferType, since: datetime) -> list[TransferRecord]:
        """Waiting rows a person released from a hold since ``since`` (payments console): their
        cause may have changed while they were held, and no other change would bring them."""
        rows = released_since(self.ledger, "transfer", since)
        return [r for r in rows if r.type is transfer_type and r.status in RETRIABLE_TRANSFER]

    def _plan_all_waiting(
        self,
        transfer_type: TransferType,
        summary: BatchSummary,
        order_ids: Sequence[str] | None,
        *,
        dry_run: bool,
    ) -> set[str]:
        """Re-read every ON_HOLD and FAILED row's order (only ``order_ids``' when given)."""
        wanted = set(order_ids or ())
        seen: set[str] = set()
        for rows in self.ledger.iter_transfers(
            types=[transfer_type], statuses=RETRIABLE_TRANSFER, batch_size=CHUNK_SIZE
        ):
            if wanted:
                rows = [r for r in rows if order_id_of(r.mirakl_id) in wanted]
            self._refetch_and_decide(transfer_type, rows, summary, seen, dry_run=dry_run)
        return seen

    def _refetch_and_decide(
        self,
        transfer_type: TransferType,
        rows: list[TransferRecord],
        summary: BatchSummary,
        seen: set[str],
        *,
        dry_run: bool,
    ) -> None:
        """Read the orders of ``rows`` from Mirakl by id (100 a call) and decide the rows."""
        if not rows:
            return
        ids = list(dict.fromkeys(order_id_of(r.mirakl_id) for r in rows))
        orders = dict(self._fetch_orders(transfer_type, order_ids=ids))
        seen.update(r.mirakl_id for r in rows)
        self._decide_fetched(rows, orders, summary, dry_run=dry_run)

    def _decide_fetched(
        self,
        rows: list[TransferRecord],
        orders: Mapping[str, MiraklOrder | InvalidItemError],
        summary: BatchSummary,
        *,
        dry_run: bool,
    ) -> None:
        candidates = []
        for row in rows:
            order = orders.get(order_id_of(row.mirakl_id))
            if isinstance(order, InvalidItemError):
                candidates.append(Candidate(row, None, f"invalid data: {order.reason}"))
            elif order is None:
                reason = f"Order {order_id_of(row.mirakl_id)} is not returned by Mirakl"
                candidates.append(Candidate(row, None, reason))
            else:
                candidates.append(Candidate(row, order))
        self._decide_and_record(candidates, summary, dry_run=dry_run)

    def _plan_new(
        self,
        transfer_type: TransferType,
        summary: BatchSummary,
        *,
        since: datetime | None,
        order_ids: Sequence[str] | None,
        dry_run: bool,
        skip: set[str],
    ) -> None:
        checkpoint_key = CHECKPOINT_KEYS[transfer_type]
        start: datetime | str | None = since
        if order_ids:
            start = None
        elif since is None:
            start = self.ledger.get_checkpoint(checkpoint_key)
        newest: tuple[datetime, str] | None = None

        fetched = self._fetch_orders(transfer_type, start=start, order_ids=order_ids)
        # The next chunk is read from Mirakl while this one is decided and recorded.
        for chunk in read_ahead(chunked(fetched, CHUNK_SIZE)):
            ids = [order_id for order_id, _ in chunk if order_id]
            row_ids = (
                ids + [i + TAX_SUFFIX for i in ids] if self.settings.tax_split_enabled else ids
            )
            existing = self.ledger.get_transfers(transfer_type, row_ids)
            candidates = []
            for order_id, order in chunk:
                if not order_id:
                    reason = f"invalid data: {getattr(order, 'reason', order)}"
                    summary.add(ItemOutcome("<order without id>", "FAILED", reason, failed=True))
                    continue
                if isinstance(order, MiraklOrder) and (
                    newest is None or order.created_at > newest[0]
                ):
                    newest = (order.created_at, order.created_date)
                if (
                    isinstance(order, MiraklOrder)
                    and self.go_live.before(order.created_at)
                    and not any(
                        r in existing and existing[r].id is not None
                        for r in self._row_ids(order_id)
                    )
                ):
                    amount = order.seller_amount_minor(tax_split=self.settings.tax_split_enabled)
                    summary.add(
                        self.go_live.outcome(
                            order_id, order.created_date, amount=amount, currency=order.currency
                        )
                    )
                    continue
                for row_id in self._row_ids(order_id):
                    if row_id in skip:
                        continue  # just re-evaluated as backlog
                    row = existing.get(row_id) or TransferRecord(
                        type=transfer_type, mirakl_id=row_id
                    )
                    if row.id is not None and row.status not in RETRIABLE_TRANSFER:
                        continue  # already decided for good, or waiting for execute
                    if isinstance(order, InvalidItemError):
                        candidates.append(Candidate(row, None, f"invalid data: {order.reason}"))
                    else:
                        candidates.append(Candidate(row, order))
            self._decide_and_record(candidates, summary, dry_run=dry_run)

        if newest is not None and not dry_run and not order_ids and since is None:
            current = self.ledger.get_checkpoint(checkpoint_key)
            if current is None or newest[0] > parse_mirakl_datetime(current):
                self.ledger.set_checkpoint(checkpoint_key, newest[1])
                summary.notes.append(f"{checkpoint_key} moved to {newest[1]}")

    def _row_ids(self, order_id: str) -> list[str]:
        if self.settings.tax_split_enabled:
            return [order_id, order_id + TAX_SUFFIX]
        return [order_id]

    def _decide_and_record(
        self, candidates: list[Candidate], summary: BatchSummary, *, dry_run: bool
    ) -> None:
        decided = self._decide(candidates, summary, dry_run=dry_run)
        # One provider per order, whatever the rule said: claim the orders about to be paid.
        decided = claim_pending(
            self.ledger,
            STRIPE,
            ClaimKind.ORDER,
            decided,
            is_pending=lambda r: r.status is TransferStatus.PENDING,
            document_of=lambda r: order_id_of(r.mirakl_id),
            shop_of=lambda r: r.mirakl_shop_id,
            refuse=lambda r, reason: replace(
                r, status=TransferStatus.ABORTED, status_reason=reason
            ),
            workflow=WORKFLOW,
            run_id=self.run_id,
            dry_run=dry_run,
        )
        for row in decided:
            summary.add(transfer_outcome(row))
        if not dry_run:
            self.ledger.save_transfers(decided, run_id=self.run_id)

    # -- execute ------------------------------------------------------------------------------

    def execute(
        self,
        *,
        dry_run: bool = False,
        order_ids: Sequence[str] | None = None,
        shard: int | None = None,
        shards: int | None = None,
    ) -> BatchSummary:
        """Create the Stripe transfer of every PENDING order row (exactly once).

        With ``shard``/``shards``, only the rows whose ledger id is ``shard`` modulo ``shards``:
        the mapped tasks of one run then never send the same row twice.
        """
        summary, part = start_sharded_step(
            WORKFLOW, "execute", dry_run=dry_run, shard=shard, shards=shards
        )
        wanted = set(order_ids or ())
        types = [t for t in ORDER_TRANSFER_TYPES if t in self._enabled_types()]
        for rows in self.ledger.iter_transfers(
            types=types, statuses=[TransferStatus.PENDING], batch_size=CHUNK_SIZE, shard=part
        ):
            if wanted:
                rows = [r for r in rows if order_id_of(r.mirakl_id) in wanted]
            rows, refused = refuse_claimed_before_sending(
                self.ledger,
                STRIPE,
                ClaimKind.ORDER,
                rows,
                document_of=lambda r: order_id_of(r.mirakl_id),
                shop_of=lambda r: r.mirakl_shop_id,
                untouched=lambda r: not r.transfer_id and r.attempted_at is None,
                refuse=lambda r, reason: replace(
                    r, status=TransferStatus.ABORTED, status_reason=reason
                ),
                save=partial(self.ledger.save_transfers, run_id=self.run_id),
                workflow=WORKFLOW,
                run_id=self.run_id,
                dry_run=dry_run,
            )
            for row in refused:
                summary.add(transfer_outcome(row))
            if dry_run:
                for row in rows:
                    summary.add(
                        transfer_outcome(replace(row, status_reason="would be transferred"))
                    )
                continue
            run_batch(rows, self._send, item_id=lambda r: r.mirakl_id, summary=summary)
        log.info("%s", summary.describe())
        return summary


def build(resources: Resources, config: Mapping[str, Any], run_id: str | None) -> PaymentSplit:
    """Registry entry: the job wired to the run's clients and ``config["payment_split"]``."""
    return PaymentSplit.wired(
        resources,
        config,
        run_id,
        section="payment_split",
        parse=PaymentSplitSettings.from_mapping,
    )
