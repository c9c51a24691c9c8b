"""Payment refund: pay back customers the refunds Mirakl asks for, and take the seller's share back.

Three steps, each one Airflow task:

``plan``
    The ledger backlog (refunds ON_HOLD or FAILED, whether or not Mirakl still lists them — the
    incumbent forgot a refund Mirakl stopped listing) and Mirakl's pending refunds
    (PA12 products, SPA12 services, each behind its switch) are decided (see
    :mod:`.refund_decisions`): the payment to refund is the order transfer's source charge, else
    the payment mapping's; a payment still waiting for confirmation is cancelled, as the
    incumbent does. Each new refund also gets its reversal row(s), ON_HOLD until it is done.
``refund`` (mapped: one task per shard of the rows, see :mod:`mirakl_connector.core.shards`)
    Every PENDING refund is refunded in Stripe with an idempotency key from the Mirakl refund id;
    the ``re_`` id is stored **before** the Mirakl validation (PA02 / SPA02), so a failed
    validation is retried alone and never refunds twice.
``reverse`` (mapped, the same way)
    ``TRANSFER_REFUND`` rows are decided once their refund is done and the order's transfer
    exists: reverse refund − refunded commission (− refunded tax with the tax split; the tax goes
    back from the ``_TAX`` transfer in its own row), with an idempotency key; a row in doubt is
    replayed with the same key or looked up with ``find_reversal``.

The tax split is read from the ``payment_split`` section: the reversal must mirror the split that
was made, and one switch cannot disagree with itself. A dry run decides and reports, and writes
nothing (no ledger row, no refund, no cancel, no validation).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

from mirakl_connector.core.batch import BatchSummary, ItemOutcome, chunked, run_batch
from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.core.registry import Resources
from mirakl_connector.core.shards import DEFAULT_SHARDS, start_sharded_step
from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.claims import ClaimKind
from mirakl_connector.ledger.records import (
    ORDER_TRANSFER_TYPES,
    RETRIABLE_REFUND,
    RETRIABLE_TRANSFER,
    TAX_SUFFIX,
    RefundRecord,
    RefundStatus,
    RefundType,
    TransferRecord,
    TransferStatus,
    TransferType,
)
from mirakl_connector.mirakl.client import MiraklClient
from mirakl_connector.operations.backlog import (
    DEFAULT_SWEEP_HOURS,
    BacklogClock,
    released_since,
    sharded_backlog_values,
)
from mirakl_connector.operations.first_run import GoLive, go_live_from_config
from mirakl_connector.operations.payout_provider import STRIPE, ShopProviders
from mirakl_connector.operations.provider_guard import (
    default_providers,
    refuse_claimed_before_sending,
    shop_providers,
)
from mirakl_connector.stripe.charge_prefetch import ChargePrefetch
from mirakl_connector.stripe.gateway import (
    StripeGateway,
)
from mirakl_connector.stripe.payment_split import PaymentSplitSettings
from mirakl_connector.stripe.refund_deciding import RefundDeciding
from mirakl_connector.stripe.refund_decisions import (
    refund_from_pa12,
    refund_from_spa12,
)
from mirakl_connector.stripe.refund_reversing import ReversalMaking
from mirakl_connector.stripe.refund_rows import (
    refund_id_of,
    refund_outcome,
    wanted_refund,
)
from mirakl_connector.stripe.refund_sending import RefundSending
from mirakl_connector.stripe.specs import PAYMENT_REFUND
from mirakl_connector.stripe.split_sending import transfer_outcome

log = logging.getLogger(__name__)

WORKFLOW = PAYMENT_REFUND.name
CHUNK_SIZE = 100

#: Refunds have no date checkpoint (PA12/SPA12 list what waits): the first plan run that
#: recorded anything sets this one, so a later run is no longer a first run (see first_run).
FIRST_RUN_KEY = "payment_refund_started_at"
#: the refund backlog's checkpoints (see :mod:`.backlog`); each reverse shard keeps its own
#: (``payment_refund_reversals[_<i>_of_<n>]``): shards run at once and must not share one
BACKLOG_NAME = "payment_refund"
REVERSALS_BACKLOG_NAME = "payment_refund_reversals"


@dataclass(frozen=True)
class PaymentRefundSettings:
    """The ``payment_refund`` section of the connector configuration.

    ``tax_split_enabled`` is not here on purpose: it comes from ``payment_split`` (see the module
    docstring).
    """

    product_enabled: bool = True
    service_enabled: bool = False
    #: how many mapped tasks share the PENDING refunds, then the reversals
    #: (see :mod:`mirakl_connector.core.shards`)
    execute_shards: int = DEFAULT_SHARDS
    #: hours between two full re-decisions of the waiting (ON_HOLD) refunds and reversals; in
    #: between a scheduled run re-decides only those whose payment or transfer changed
    backlog_full_sweep_hours: int = DEFAULT_SWEEP_HOURS

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> PaymentRefundSettings:
        # the tax split is one setting of the split, which the refunds follow
        tax_split = {"tax_split_enabled": "payment_split", "tax_account": "payment_split"}
        return cls(**sharded_backlog_values(cls, values, "payment_refund", elsewhere=tax_split))


class PaymentRefund(RefundDeciding, RefundSending, ReversalMaking):
    """The payment refund job; see the module docstring for what each step does.

    Its parts live next to it: deciding the refunds (:mod:`.refund_deciding`), refunding and
    validating one row (:mod:`.refund_sending`), the reversals (:mod:`.refund_reversing`)."""

    def __init__(
        self,
        *,
        mirakl: MiraklClient,
        stripe: StripeGateway,
        ledger: Ledger,
        settings: PaymentRefundSettings | None = None,
        tax_split: bool = False,
        run_id: str | None = None,
        go_live: GoLive | None = None,
        providers: ShopProviders | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.mirakl = mirakl
        self.stripe = stripe
        self.ledger = ledger
        self.settings = settings or PaymentRefundSettings()
        self._now = now or (lambda: datetime.now(UTC))
        self.tax_split = tax_split
        self.run_id = run_id
        self._charges = ChargePrefetch(stripe)
        #: first run: no refund of an order created before this moves (see first_run)
        self.go_live = go_live or GoLive()
        #: which provider pays each shop (see mirakl_connector.operations.payout_provider)
        self.providers = providers or default_providers(mirakl)

    def _enabled_types(self) -> list[RefundType]:
        types = []
        if self.settings.product_enabled:
            types.append(RefundType.PRODUCT_ORDER)
        if self.settings.service_enabled:
            types.append(RefundType.SERVICE_ORDER)
        return types

    # -- plan ------------------------------------------------------------------------------

    def plan(
        self, *, order_ids: Sequence[str] | None = None, dry_run: bool = False
    ) -> BatchSummary:
        """Decide every backlog refund and every refund Mirakl asks for; record the decisions."""
        summary = BatchSummary(WORKFLOW, "plan", dry_run=dry_run)
        types = self._enabled_types()
        if not types:
            summary.notes.append("product and service refunds are both disabled")
            return summary
        started = self.ledger.get_checkpoint(FIRST_RUN_KEY)
        self.go_live.require(WORKFLOW, FIRST_RUN_KEY, started, "refund")
        wanted = set(order_ids or ())
        clock = self._clock(BACKLOG_NAME)
        backlog = clock.start(scheduled=not wanted and not dry_run)
        if backlog.sweep:
            seen: set[str] = set()
            for rows in self.ledger.iter_refunds(statuses=RETRIABLE_REFUND, batch_size=CHUNK_SIZE):
                rows = [r for r in rows if r.type in types and wanted_refund(r, wanted)]
                seen.update(r.mirakl_refund_id for r in rows)
                self._decide_and_record(rows, summary, dry_run=dry_run)
        else:
            assert backlog.since is not None
            seen = self._plan_changed(types, summary, since=backlog.since, dry_run=dry_run)
        if backlog.scheduled:
            summary.notes.append(backlog.note("refund backlog"))
        for refund_type in types:
            for chunk in chunked(self._pending_refunds(refund_type, summary), CHUNK_SIZE):
                fresh = [
                    r for r in chunk if r.mirakl_refund_id not in seen and wanted_refund(r, wanted)
                ]
                existing = self.ledger.get_refunds(r.mirakl_refund_id for r in fresh)
                rows = []
                for row in fresh:
                    known = existing.get(row.mirakl_refund_id)
                    if known is None:
                        rows.append(row)
                    elif known.status in RETRIABLE_REFUND and backlog.sweep:
                        rows.append(known)  # listed again after the backlog pass: decide once
                    # Between sweeps a waiting refund PA12 lists again is left alone: PA12 says
                    # nothing new about it (its amount is fixed), what it waits for is ours.
                    seen.add(row.mirakl_refund_id)
                self._decide_and_record(rows, summary, dry_run=dry_run)
        if started is None and not dry_run:
            self.ledger.set_checkpoint(FIRST_RUN_KEY, datetime.now(UTC).isoformat())
        clock.finish(backlog)
        log.info("%s", summary.describe())
        return summary

    def _clock(self, name: str) -> BacklogClock:
        return BacklogClock(
            self.ledger, name, sweep_hours=self.settings.backlog_full_sweep_hours, now=self._now
        )

    def _plan_changed(
        self,
        types: Sequence[RefundType],
        summary: BatchSummary,
        *,
        since: datetime,
        dry_run: bool,
    ) -> set[str]:
        """Re-decide only the waiting refunds whose cause may have changed since ``since``.

        A refund ON_HOLD waits for its payment: the payment's id (the order transfer the split
        makes, the payment mapping payment validation or a charge event records) or the
        payment's capture (recorded on the payment mapping). So: the ON_HOLD refunds of the
        orders whose transfer changed and of the commercial orders whose payment mapping
        changed, those a person released from a hold, plus every FAILED refund (the failures
        the report names, few). PA12 cannot be
        asked what changed (it has no filter): it is still read in full for new refunds.
        """
        seen: set[str] = set()

        def decide(rows: list[RefundRecord]) -> None:
            rows = [r for r in rows if r.type in types and r.mirakl_refund_id not in seen]
            seen.update(r.mirakl_refund_id for r in rows)
            self._decide_and_record(rows, summary, dry_run=dry_run)

        orders = {
            mirakl_id.removesuffix(TAX_SUFFIX)
            for mirakl_id in self.ledger.transfer_ids_changed_since(
                types=ORDER_TRANSFER_TYPES, since=since
            )
        }
        commercial = self.ledger.commercial_ids_with_payments_changed_since(since)
        for rows in self.ledger.iter_refunds_of_orders(
            statuses=[RefundStatus.ON_HOLD],
            order_ids=orders,
            commercial_ids=commercial,
            batch_size=CHUNK_SIZE,
        ):
            decide(rows)
        released = released_since(self.ledger, "refund", since)
        decide([r for r in released if r.status in RETRIABLE_REFUND])
        for rows in self.ledger.iter_refunds(statuses=[RefundStatus.FAILED], batch_size=CHUNK_SIZE):
            decide(rows)
        return seen

    def _pending_refunds(
        self, refund_type: RefundType, summary: BatchSummary
    ) -> Iterator[RefundRecord]:
        if refund_type is RefundType.PRODUCT_ORDER:
            raws: Iterable[Any] = self.mirakl.iter_pending_refunds()
            parse = refund_from_pa12
        else:
            raws = self.mirakl.iter_service_refunds()
            parse = refund_from_spa12
        for raw in raws:
            try:
                yield parse(raw)
            except InvalidItemError as exc:
                summary.add(
                    ItemOutcome(
                        exc.item_id or "<refund>", "FAILED", f"invalid data: {exc.reason}", True
                    )
                )

    # -- refund ----------------------------------------------------------------------------

    def refund(
        self,
        *,
        order_ids: Sequence[str] | None = None,
        dry_run: bool = False,
        shard: int | None = None,
        shards: int | None = None,
    ) -> BatchSummary:
        """Refund every PENDING row in Stripe (exactly once), then validate it in Mirakl; with
        ``shard``/``shards``, only that shard's rows."""
        summary, part = start_sharded_step(
            WORKFLOW, "refund", dry_run=dry_run, shard=shard, shards=shards
        )
        wanted = set(order_ids or ())
        types = self._enabled_types()
        for rows in self.ledger.iter_refunds(
            statuses=[RefundStatus.PENDING], batch_size=CHUNK_SIZE, shard=part
        ):
            rows = [r for r in rows if r.type in types and wanted_refund(r, wanted)]
            rows, refused = refuse_claimed_before_sending(
                self.ledger,
                STRIPE,
                ClaimKind.REFUND,
                rows,
                document_of=lambda r: r.mirakl_refund_id,
                shop_of=lambda r: None,
                untouched=lambda r: not r.stripe_refund_id and r.attempted_at is None,
                refuse=lambda r, reason: replace(
                    r, status=RefundStatus.ABORTED, status_reason=reason
                ),
                save=partial(self.ledger.save_refunds, run_id=self.run_id),
                workflow=WORKFLOW,
                run_id=self.run_id,
                dry_run=dry_run,
            )
            for row in refused:
                summary.add(refund_outcome(row))
            if dry_run:
                for row in rows:
                    summary.add(refund_outcome(replace(row, status_reason="would be refunded")))
                continue
            refunded: list[RefundRecord] = []

            def handle(
                row: RefundRecord, refunded: list[RefundRecord] = refunded
            ) -> ItemOutcome | list[ItemOutcome]:
                outcome, row = self._refund_in_stripe(row)
                if row.stripe_refund_id:
                    refunded.append(row)
                    return []  # counted once Mirakl has answered
                return outcome

            run_batch(rows, handle, item_id=lambda r: r.mirakl_refund_id, summary=summary)
            for outcome in self._validate_in_mirakl(refunded):
                summary.add(outcome)
        log.info("%s", summary.describe())
        return summary

    # -- reverse ---------------------------------------------------------------------------

    def reverse(
        self,
        *,
        order_ids: Sequence[str] | None = None,
        dry_run: bool = False,
        shard: int | None = None,
        shards: int | None = None,
    ) -> BatchSummary:
        """Decide the reversal rows, then reverse every PENDING one from the order transfer;
        with ``shard``/``shards``, only that shard's rows (deciding included)."""
        summary, part = start_sharded_step(
            WORKFLOW, "reverse", dry_run=dry_run, shard=shard, shards=shards
        )
        wanted = set(order_ids or ())
        name = REVERSALS_BACKLOG_NAME
        if part is not None:
            name += f"_{part.index}_of_{part.count}"
        clock = self._clock(name)
        backlog = clock.start(scheduled=not wanted and not dry_run)
        if backlog.scheduled:
            summary.notes.append(backlog.note("reversal backlog"))
        waiting = (
            self.ledger.iter_transfers(
                types=[TransferType.REFUND],
                statuses=RETRIABLE_TRANSFER,
                batch_size=CHUNK_SIZE,
                shard=part,
            )
            if backlog.sweep
            else self._changed_reversals(backlog.since, part)
        )
        pending: list[TransferRecord] = []
        for rows in waiting:
            decided = self._decide_reversals(rows, wanted, summary, dry_run=dry_run)
            if not dry_run:
                self.ledger.save_transfers(decided, run_id=self.run_id)
            pending += [r for r in decided if r.status is TransferStatus.PENDING]
        if not dry_run:
            pending = []  # re-read below: PENDING rows from this and earlier runs alike
            for rows in self.ledger.iter_transfers(
                types=[TransferType.REFUND],
                statuses=[TransferStatus.PENDING],
                batch_size=CHUNK_SIZE,
                shard=part,
            ):
                refunds = self.ledger.get_refunds(refund_id_of(r.mirakl_id) for r in rows)
                rows = [
                    r for r in rows if wanted_refund(refunds.get(refund_id_of(r.mirakl_id)), wanted)
                ]
                run_batch(rows, self._reverse, item_id=lambda r: r.mirakl_id, summary=summary)
        else:
            for row in pending:
                summary.add(transfer_outcome(replace(row, status_reason="would be reversed")))
        clock.finish(backlog)
        log.info("%s", summary.describe())
        return summary


def build(resources: Resources, config: Mapping[str, Any], run_id: str | None) -> PaymentRefund:
    """Registry entry: the job wired to ``config["payment_refund"]`` and the split's tax switch."""
    split = PaymentSplitSettings.from_mapping(config.get("payment_split"))
    return PaymentRefund(
        mirakl=resources.get("mirakl"),
        stripe=resources.get("stripe"),
        ledger=resources.get("ledger"),
        settings=PaymentRefundSettings.from_mapping(config.get("payment_refund")),
        tax_split=split.tax_split_enabled,
        run_id=run_id,
        go_live=GoLive(go_live_from_config(config)),
        providers=shop_providers(config, resources.get("mirakl")),
    )
