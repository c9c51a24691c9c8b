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
from mirakl_connector.core.errors import InvalidItemError, MiraklApiError, PaymentProviderError
from mirakl_connector.core.money import from_minor
from mirakl_connector.core.registry import Resources
from mirakl_connector.core.settings import checked_values
from mirakl_connector.core.shards import DEFAULT_SHARDS, Shard, shard_count, start_sharded_step
from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.claims import ClaimKind
from mirakl_connector.ledger.manual_rules import is_held_record
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
from mirakl_connector.mirakl.orders import (
    MiraklOrder,
    RefundPart,
    parse_mirakl_datetime,
    parse_product_order,
    parse_service_order,
)
from mirakl_connector.mirakl.spa02 import REFUSED as SPA02_REFUSED
from mirakl_connector.mirakl.spa02 import VALIDATED as SPA02_VALIDATED
from mirakl_connector.mirakl.spa02 import spa02_results
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
from mirakl_connector.stripe.charge_prefetch import ChargePrefetch
from mirakl_connector.stripe.exactly_once import write_once
from mirakl_connector.stripe.gateway import (
    CreatedObject,
    PaymentState,
    StripeGateway,
    idempotency_key,
)
from mirakl_connector.stripe.lookups import find_refund, find_reversal
from mirakl_connector.stripe.payment_split import PaymentSplitSettings
from mirakl_connector.stripe.refund_decisions import (
    decide_refund,
    decide_reversal,
    needs_refund_part,
    refund_from_pa12,
    refund_from_spa12,
)
from mirakl_connector.stripe.specs import PAYMENT_REFUND

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

_ORDER_TYPE = {
    RefundType.PRODUCT_ORDER: TransferType.PRODUCT_ORDER,
    RefundType.SERVICE_ORDER: TransferType.SERVICE_ORDER,
}


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
        values = checked_values(cls, values, "payment_refund", elsewhere=tax_split)
        shards = values.get("execute_shards", cls.execute_shards)
        shard_count(shards, "payment_refund.execute_shards")
        check_sweep_hours(
            values.get("backlog_full_sweep_hours", cls.backlog_full_sweep_hours),
            "payment_refund.backlog_full_sweep_hours",
        )
        return cls(**values)


class PaymentRefund:
    """The payment refund job; see the module docstring for what each step does."""

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

    # -- plan -------------------------------------------------------------------------------

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
                rows = [r for r in rows if r.type in types and _wanted(r, wanted)]
                seen.update(r.mirakl_refund_id for r in rows)
                self._decide_and_record(rows, summary, dry_run=dry_run)
        else:
            assert backlog.since is not None
            seen = self._plan_changed(types, summary, since=backlog.since, dry_run=dry_run)
        if backlog.scheduled:
            summary.notes.append(backlog.note("refund backlog"))
        for refund_type in types:
            for chunk in chunked(self._pending_refunds(refund_type, summary), CHUNK_SIZE):
                fresh = [r for r in chunk if r.mirakl_refund_id not in seen and _wanted(r, wanted)]
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

    def _decide_and_record(
        self, rows: list[RefundRecord], summary: BatchSummary, *, dry_run: bool
    ) -> None:
        for held in [r for r in rows if is_held_record(r)]:
            summary.add(_refund_outcome(held))  # a person holds it: not decided until released
        rows = [r for r in rows if not is_held_record(r)]
        if not rows:
            return
        transfers: dict[str, TransferRecord] = {}
        for refund_type, transfer_type in _ORDER_TYPE.items():
            ids = [r.mirakl_order_id for r in rows if r.type is refund_type and r.mirakl_order_id]
            if ids:
                for order_id, transfer in self.ledger.get_transfers(transfer_type, ids).items():
                    transfers[f"{refund_type}:{order_id}"] = transfer
        mappings = self.ledger.payment_mappings_by_commercial_id(
            r.mirakl_commercial_order_id for r in rows if r.mirakl_commercial_order_id
        )
        payments = self._charges.fetch(_order_charges(transfers.values()))
        orders = self._order_facts(rows, transfers)
        self.providers.prefetch(shop for shop, _ in orders.values())

        def lookup(payment_id: str) -> PaymentState:
            if payment_id not in payments:
                payments[payment_id] = self.stripe.retrieve_payment(payment_id)
            return payments[payment_id]

        decided: list[RefundRecord] = []

        def handle(row: RefundRecord) -> ItemOutcome | list[ItemOutcome]:
            transfer = transfers.get(f"{row.type}:{row.mirakl_order_id}")
            mapping = mappings.get(row.mirakl_commercial_order_id or "")
            shop_id, created = orders.get(f"{row.type}:{row.mirakl_order_id}", (None, None))
            if row.id is None and self.go_live.before(created):
                # A refund of an order from before go-live: a previous connector's to make.
                return self.go_live.outcome(
                    row.mirakl_refund_id, created, amount=row.amount, currency=row.currency
                )
            refusal = (
                None if row.stripe_refund_id else self.providers.refusal(shop_id, created, STRIPE)
            )
            if refusal is not None:
                decided.append(replace(row, status=RefundStatus.ABORTED, status_reason=refusal))
                return []
            verdict = decide_refund(
                row,
                transfer_payment_id=transfer.transaction_id if transfer else None,
                mapping_payment_id=mapping.stripe_charge_id if mapping else None,
                lookup_payment=lookup,
            )
            problem = self.ledger.unrecordable_reason(verdict.row)
            if problem is not None:  # fail this refund alone (Mirakl lists it again), not the chunk
                raise InvalidItemError(problem, item_id=row.mirakl_refund_id[:80])
            if verdict.cancel_intent and not dry_run:
                self._cancel_intent(verdict.cancel_intent)
            decided.append(verdict.row)
            return []  # counted below, once the claims are settled

        run_batch(rows, handle, item_id=lambda r: r.mirakl_refund_id, summary=summary)
        # One provider per refund: claim the refunds about to be paid back.
        decided = claim_pending(
            self.ledger,
            STRIPE,
            ClaimKind.REFUND,
            decided,
            is_pending=lambda r: r.status is RefundStatus.PENDING,
            document_of=lambda r: r.mirakl_refund_id,
            shop_of=lambda r: orders.get(f"{r.type}:{r.mirakl_order_id}", (None, None))[0],
            refuse=lambda r, reason: replace(r, status=RefundStatus.ABORTED, status_reason=reason),
            workflow=WORKFLOW,
            run_id=self.run_id,
            dry_run=dry_run,
        )
        for row in decided:
            summary.add(_refund_outcome(row))
        if dry_run or not decided:
            return
        self.ledger.save_refunds(decided, run_id=self.run_id)
        self._ensure_reversal_rows(decided)

    def _needs_order_facts(self) -> bool:
        rule = self.providers.rule
        return (
            self.go_live.instant is not None
            or bool(rule.shops)
            or rule.reads_shop_fields
            or rule.default != STRIPE
        )

    def _order_facts(
        self, rows: Sequence[RefundRecord], transfers: Mapping[str, TransferRecord]
    ) -> dict[str, tuple[int | None, datetime | None]]:
        """``"<type>:<order id>"`` → (shop id, creation instant) of each refund's order.

        From the order's transfer row when the split recorded one, else read from Mirakl (OR11 /
        SOR11 by id, 100 a call) for refunds new to the ledger: the go-live instant and the
        payout provider rule both need the order's date and shop.
        """
        facts: dict[str, tuple[int | None, datetime | None]] = {}
        unknown: dict[RefundType, set[str]] = {}
        for row in rows:
            key = f"{row.type}:{row.mirakl_order_id}"
            transfer = transfers.get(key)
            if transfer is not None and transfer.mirakl_created_date:
                facts[key] = (
                    transfer.mirakl_shop_id,
                    _instant_or_none(transfer.mirakl_created_date),
                )
            elif row.id is None and row.mirakl_order_id and self._needs_order_facts():
                unknown.setdefault(row.type, set()).add(row.mirakl_order_id)
        for refund_type, ids in unknown.items():
            for chunk in chunked(sorted(ids), CHUNK_SIZE):
                if refund_type is RefundType.PRODUCT_ORDER:
                    raws = self.mirakl.iter_orders(order_ids=chunk)
                    id_key, date_key = "order_id", "created_date"
                else:
                    raws = self.mirakl.iter_service_orders(order_ids=chunk)
                    id_key, date_key = "id", "date_created"
                for raw in raws:
                    if not isinstance(raw, Mapping) or not raw.get(id_key):
                        continue
                    shop = raw.get("shop_id")
                    if shop is None and isinstance(raw.get("shop"), Mapping):
                        shop = raw["shop"].get("id")
                    facts[f"{refund_type}:{raw[id_key]}"] = (
                        int(shop) if str(shop or "").isdigit() else None,
                        _instant_or_none(raw.get(date_key)),
                    )
        return facts

    def _cancel_intent(self, intent_id: str) -> None:
        """Release an intent still waiting for confirmation (the incumbent's side effect, #131)."""
        try:
            self.stripe.cancel_payment(
                intent_id, idempotency_key=idempotency_key("cancel", intent_id)
            )
            log.info("Payment %s cancelled: a refund was asked before it was confirmed", intent_id)
        except PaymentProviderError as exc:
            if not exc.permanent:
                raise
            log.warning("Payment %s could not be cancelled: %s", intent_id, exc.message)

    def _ensure_reversal_rows(self, refunds: list[RefundRecord]) -> None:
        """Give each refund its ``TRANSFER_REFUND`` row(s), ON_HOLD until ``reverse`` decides."""
        ids = [r.mirakl_refund_id for r in refunds]
        if self.tax_split:
            ids += [i + TAX_SUFFIX for i in ids]
        existing = self.ledger.get_transfers(TransferType.REFUND, ids)
        new = [
            TransferRecord(
                type=TransferType.REFUND,
                mirakl_id=mirakl_id,
                status=TransferStatus.ON_HOLD,
                status_reason=f"Refund {mirakl_id.removesuffix(TAX_SUFFIX)} has yet to be "
                "validated",
            )
            for mirakl_id in ids
            if mirakl_id not in existing
        ]
        self.ledger.save_transfers(new, run_id=self.run_id)

    # -- refund -------------------------------------------------------------------------------

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
            rows = [r for r in rows if r.type in types and _wanted(r, wanted)]
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
                summary.add(_refund_outcome(row))
            if dry_run:
                for row in rows:
                    summary.add(_refund_outcome(replace(row, status_reason="would be refunded")))
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

    def _refund_in_stripe(self, row: RefundRecord) -> tuple[ItemOutcome, RefundRecord]:
        """Create (or recover) the Stripe refund of one row; store its id at once."""
        if row.stripe_refund_id:
            return _refund_outcome(row), row
        if not row.transaction_id or not row.amount:
            row = self._save_refund(
                row, RefundStatus.FAILED, "PENDING refund lacks payment or amount"
            )
            return _refund_outcome(row), row
        result, row = write_once(
            row,
            new_key=_refund_key(row),
            find=self._find_refund,
            mark=partial(self.ledger.mark_refund_attempt, run_id=self.run_id),
            create=self._create_refund,
        )
        recording = Recording(
            created=self._refund_created, refused=self._refund_refused, unknown=self._refund_unknown
        )
        return recording.record(row, result)

    def _refund_created(
        self, row: RefundRecord, written: Written
    ) -> tuple[ItemOutcome, RefundRecord]:
        # Stored before Mirakl hears of it: whatever happens next, it is never re-made.
        row = self._save_refund(
            replace(row, stripe_refund_id=written.object_id), RefundStatus.PENDING, None
        )
        return _refund_outcome(row), row

    def _refund_refused(
        self, row: RefundRecord, refused: Refused
    ) -> tuple[ItemOutcome, RefundRecord]:
        row = self._save_refund(row, RefundStatus.FAILED, refused.message)
        return _refund_outcome(row), row

    def _refund_unknown(
        self, row: RefundRecord, unknown: Unknown
    ) -> tuple[ItemOutcome, RefundRecord]:
        save = partial(self.ledger.save_refunds, run_id=self.run_id)
        return record_in_doubt(row, unknown.reason, item_id=row.mirakl_refund_id, save=save), row

    def _create_refund(self, row: RefundRecord, key: str) -> CreatedObject:
        return self.stripe.create_refund(
            payment_id=row.transaction_id,
            amount=row.amount,
            currency=row.currency,
            idempotency_key=key,
            metadata={"miraklRefundId": row.mirakl_refund_id},
        )

    def _find_refund(self, row: RefundRecord) -> str | None:
        return find_refund(self.stripe, row)

    def _validate_in_mirakl(self, rows: list[RefundRecord]) -> list[ItemOutcome]:
        """PA02 / SPA02 for refunded rows; CREATED on success, FAILED with Mirakl's reason."""
        outcomes: list[ItemOutcome] = []
        product = [r for r in rows if r.type is RefundType.PRODUCT_ORDER]
        service = [r for r in rows if r.type is RefundType.SERVICE_ORDER]
        if product:
            outcomes += self._validate_products(product)
        if service:
            outcomes += self._validate_services(service)
        return outcomes

    def _validate_products(self, rows: list[RefundRecord]) -> list[ItemOutcome]:
        """One PA02 call; if Mirakl refuses the batch (all-or-nothing 400), one call per refund
        so a single refund it rejects cannot hold the others back."""
        try:
            self.mirakl.validate_refunds([_pa02_entry(r) for r in rows])
            return self._all_validated(rows)
        except MiraklApiError as exc:
            if len(rows) == 1 or exc.http_status is None or exc.http_status >= 500:
                return [self._mirakl_refused(r, exc) for r in rows]
        outcomes = []
        for row in rows:
            try:
                self.mirakl.validate_refunds([_pa02_entry(row)])
            except MiraklApiError as exc:
                outcomes.append(self._mirakl_refused(row, exc))
                continue
            outcomes.append(self._validated(row))
        return outcomes

    def _validate_services(self, rows: list[RefundRecord]) -> list[ItemOutcome]:
        """SPA02, read as Mirakl publishes it (:mod:`mirakl_connector.mirakl.spa02`): only a
        refund Mirakl confirms is validated; one it refuses is FAILED with its message; one its
        answer does not name stays PENDING (validated again next run) and is reported."""
        try:
            answer = self.mirakl.validate_service_refunds([_spa02_entry(r) for r in rows])
        except MiraklApiError as exc:
            return [self._mirakl_refused(r, exc) for r in rows]
        results = spa02_results([r.mirakl_refund_id for r in rows], answer)
        outcomes = []
        for row in rows:
            result = results[row.mirakl_refund_id]
            if result.outcome == SPA02_VALIDATED:
                outcomes.append(self._validated(row))
            elif result.outcome == SPA02_REFUSED and "already validated" in result.message:
                # A validation whose answer was lost reached Mirakl (as PA02's 400 below).
                outcomes.append(
                    self._validated(row, f"Mirakl already had it validated: {result.message}")
                )
            elif result.outcome == SPA02_REFUSED:
                outcomes.append(
                    self._failed_validation(row, f"Mirakl SPA02 refused: {result.message}")
                )
            else:
                saved = self._save_refund(
                    row,
                    RefundStatus.PENDING,
                    f"Refunded in Stripe ({row.stripe_refund_id}); "
                    f"Mirakl validation unknown: {result.message}; validated again next run",
                )
                outcomes.append(
                    replace(_refund_outcome(saved), status="MIRAKL_UNCONFIRMED", failed=True)
                )
        return outcomes

    def _mirakl_refused(self, row: RefundRecord, exc: MiraklApiError) -> ItemOutcome:
        # "<id> already validated": a previous validation whose answer was lost (timeout) did
        # reach Mirakl. Our refund exists and Mirakl has it: the refund is done.
        if exc.http_status == 400 and "already validated" in exc.message:
            return self._validated(row, f"Mirakl already had it validated: {exc.message}")
        return self._failed_validation(row, str(exc))

    def _validated(self, row: RefundRecord, reason: str | None = None) -> ItemOutcome:
        row = replace(row, mirakl_validated_at=datetime.now(UTC))
        return _refund_outcome(self._save_refund(row, RefundStatus.CREATED, reason))

    def _all_validated(self, rows: list[RefundRecord]) -> list[ItemOutcome]:
        """CREATED for every row of a batch Mirakl validated, in one ledger transaction: PA02
        validated them all at once, and one commit instead of one per row keeps the shard
        sending refunds at its pace."""
        now = datetime.now(UTC)
        validated = [
            replace(r, mirakl_validated_at=now, status=RefundStatus.CREATED, status_reason=None)
            for r in rows
        ]
        return [_refund_outcome(r) for r in self.ledger.save_refunds(validated, run_id=self.run_id)]

    def _failed_validation(self, row: RefundRecord, reason: str) -> ItemOutcome:
        reason = f"Refunded in Stripe ({row.stripe_refund_id}); Mirakl validation failed: {reason}"
        return _refund_outcome(self._save_refund(row, RefundStatus.FAILED, reason))

    def _save_refund(
        self, row: RefundRecord, status: RefundStatus, reason: str | None
    ) -> RefundRecord:
        row = replace(row, status=status, status_reason=reason)
        [saved] = self.ledger.save_refunds([row], run_id=self.run_id)
        return saved

    # -- reverse -------------------------------------------------------------------------------

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
                refunds = self.ledger.get_refunds(_refund_id(r.mirakl_id) for r in rows)
                rows = [r for r in rows if _wanted(refunds.get(_refund_id(r.mirakl_id)), wanted)]
                run_batch(rows, self._reverse, item_id=lambda r: r.mirakl_id, summary=summary)
        else:
            for row in pending:
                summary.add(_transfer_outcome(replace(row, status_reason="would be reversed")))
        clock.finish(backlog)
        log.info("%s", summary.describe())
        return summary

    def _changed_reversals(
        self, since: datetime | None, part: Shard | None
    ) -> Iterator[list[TransferRecord]]:
        """The waiting reversal rows (of shard ``part``) whose cause may have changed since
        ``since``: their refund changed (refunded, validated, aborted: the refund step of this
        very run included), or their order's transfer did (the split made it), or a person
        released them from a hold; plus every FAILED row."""
        assert since is not None
        refund_ids = set(self.ledger.refund_ids_changed_since(since))
        orders = {
            mirakl_id.removesuffix(TAX_SUFFIX)
            for mirakl_id in self.ledger.transfer_ids_changed_since(
                types=ORDER_TRANSFER_TYPES, since=since
            )
        }
        for refunds in self.ledger.iter_refunds_of_orders(statuses=None, order_ids=orders):
            refund_ids.update(r.mirakl_refund_id for r in refunds)
        seen: set[str] = set()

        def fresh(rows: Iterable[TransferRecord]) -> list[TransferRecord]:
            found = [
                r
                for r in rows
                if r.mirakl_id not in seen
                and r.status in RETRIABLE_TRANSFER
                and (part is None or part.holds(r.id))
            ]
            seen.update(r.mirakl_id for r in found)
            return found

        released = released_since(self.ledger, "transfer", since)
        if released := fresh(r for r in released if r.type is TransferType.REFUND):
            yield released
        for chunk in chunked(sorted(refund_ids), CHUNK_SIZE // 2):
            keys = [*chunk, *(i + TAX_SUFFIX for i in chunk)]
            rows = fresh(self.ledger.get_transfers(TransferType.REFUND, keys).values())
            if rows:
                yield sorted(rows, key=lambda r: r.id or 0)
        for rows in self.ledger.iter_transfers(
            types=[TransferType.REFUND],
            statuses=[TransferStatus.FAILED],
            batch_size=CHUNK_SIZE,
            shard=part,
        ):
            rows = fresh(rows)
            if rows:
                yield rows

    def _decide_reversals(
        self, rows: list[TransferRecord], wanted: set[str], summary: BatchSummary, *, dry_run: bool
    ) -> list[TransferRecord]:
        """Decide ``rows``; PENDING ones are counted by the execution that follows, not here."""
        refunds = self.ledger.get_refunds(_refund_id(r.mirakl_id) for r in rows)
        rows = [r for r in rows if _wanted(refunds.get(_refund_id(r.mirakl_id)), wanted)]
        for held in [r for r in rows if is_held_record(r)]:
            summary.add(_transfer_outcome(held))  # a person holds it: not decided until released
        rows = [r for r in rows if not is_held_record(r)]
        if not rows:
            return []
        order_transfers: dict[tuple[TransferType, str], TransferRecord] = {}
        order_ids: dict[RefundType, set[str]] = {t: set() for t in RefundType}
        for row in rows:
            refund = refunds.get(_refund_id(row.mirakl_id))
            if refund is None or not refund.mirakl_order_id:
                continue
            order_ids[refund.type].add(refund.mirakl_order_id)
        for refund_type, ids in order_ids.items():
            if not ids:
                continue
            transfer_type = _ORDER_TYPE[refund_type]
            keys = sorted(ids) + sorted(i + TAX_SUFFIX for i in ids)
            for mirakl_id, transfer in self.ledger.get_transfers(transfer_type, keys).items():
                order_transfers[(transfer_type, mirakl_id)] = transfer
        # The refunded orders of the rows that may move now, no Mirakl read for the others.
        ready: set[str] = set()
        for row in rows:
            refund = refunds.get(_refund_id(row.mirakl_id))
            if refund is None or not refund.mirakl_order_id:
                continue
            is_tax_row = row.mirakl_id.endswith(TAX_SUFFIX)
            source_id = refund.mirakl_order_id + (TAX_SUFFIX if is_tax_row else "")
            if needs_refund_part(
                row,
                refund=refund,
                order_transfer=order_transfers.get((_ORDER_TYPE[refund.type], source_id)),
                is_tax_row=is_tax_row,
                tax_split=self.tax_split,
            ):
                ready.add(refund.mirakl_refund_id)
        orders = self._fetch_orders(refunds.values(), ready)

        decided: list[TransferRecord] = []

        def handle(row: TransferRecord) -> ItemOutcome | list[ItemOutcome]:
            is_tax_row = row.mirakl_id.endswith(TAX_SUFFIX)
            refund = refunds.get(_refund_id(row.mirakl_id))
            order_transfer = None
            part: RefundPart | None = None
            if refund is not None and refund.mirakl_order_id:
                transfer_type = _ORDER_TYPE[refund.type]
                source_id = refund.mirakl_order_id + (TAX_SUFFIX if is_tax_row else "")
                order_transfer = order_transfers.get((transfer_type, source_id))
                order = orders.get((refund.type, refund.mirakl_order_id))
                if isinstance(order, InvalidItemError):
                    decided.append(
                        replace(
                            row,
                            status=TransferStatus.FAILED,
                            status_reason=f"invalid data: {order.reason}",
                        )  # fmt: skip
                    )
                    return _transfer_outcome(decided[-1])
                if order is not None:
                    try:
                        part = order.refund(refund.mirakl_refund_id)
                    except InvalidItemError as exc:
                        if "not found" not in exc.reason:
                            raise
            result = decide_reversal(
                row,
                refund=refund,
                order_transfer=order_transfer,
                refund_part=part,
                is_tax_row=is_tax_row,
                tax_split=self.tax_split,
            )
            problem = self.ledger.unrecordable_reason(result)
            if problem is not None:  # the row as it was, FAILED: it is decided again next run
                reason = f"invalid data: {problem}"
                result = replace(row, status=TransferStatus.FAILED, status_reason=reason)
            decided.append(result)
            if result.status is TransferStatus.PENDING and not dry_run:
                return []
            return _transfer_outcome(result)

        run_batch(rows, handle, item_id=lambda r: r.mirakl_id, summary=summary)
        return decided

    def _fetch_orders(
        self, refunds: Iterable[RefundRecord], needed: set[str]
    ) -> dict[tuple[RefundType, str], MiraklOrder | InvalidItemError]:
        """The orders of the ``needed`` refunds (those whose reversal may move now)."""
        by_type: dict[RefundType, set[str]] = {t: set() for t in RefundType}
        for refund in refunds:
            if refund.mirakl_refund_id in needed and refund.mirakl_order_id:
                by_type[refund.type].add(refund.mirakl_order_id)
        found: dict[tuple[RefundType, str], MiraklOrder | InvalidItemError] = {}
        if by_type[RefundType.PRODUCT_ORDER]:
            for raw in self.mirakl.iter_orders(order_ids=sorted(by_type[RefundType.PRODUCT_ORDER])):
                order_id = str(raw.get("order_id") or "")
                found[(RefundType.PRODUCT_ORDER, order_id)] = _parse(parse_product_order, raw)
        if by_type[RefundType.SERVICE_ORDER]:
            for raw in self.mirakl.iter_service_orders(
                order_ids=sorted(by_type[RefundType.SERVICE_ORDER])
            ):
                order_id = str(raw.get("id") or "")
                found[(RefundType.SERVICE_ORDER, order_id)] = _parse(
                    lambda r: parse_service_order(r, None), raw
                )
        return found

    def _reverse(self, row: TransferRecord) -> ItemOutcome:
        """Create (or recover) the Stripe reversal of one PENDING row, and record it."""
        if row.transfer_id:
            return self._record(row, TransferStatus.CREATED, None)
        if not row.transaction_id or not row.amount:
            return self._record(
                row, TransferStatus.FAILED, "PENDING reversal lacks transfer or amount"
            )
        result, row = write_once(
            row,
            new_key=_reversal_key(row),
            find=self._find_reversal,
            mark=partial(self.ledger.mark_transfer_attempt, run_id=self.run_id),
            create=self._create_reversal,
        )
        recording = Recording(
            created=lambda r, written: self._record(
                replace(r, transfer_id=written.object_id), TransferStatus.CREATED, None
            ),
            refused=lambda r, refused: self._record(r, TransferStatus.FAILED, refused.message),
            unknown=self._reversal_unknown,
        )
        return recording.record(row, result)

    def _reversal_unknown(self, row: TransferRecord, unknown: Unknown) -> ItemOutcome:
        save = partial(self.ledger.save_transfers, run_id=self.run_id)
        return record_in_doubt(row, unknown.reason, item_id=row.mirakl_id, save=save)

    def _create_reversal(self, row: TransferRecord, key: str) -> CreatedObject:
        return self.stripe.create_reversal(
            row.transaction_id,
            amount=row.amount,
            currency=row.currency,
            idempotency_key=key,
            metadata={"miraklId": row.mirakl_id},
        )

    def _find_reversal(self, row: TransferRecord) -> str | None:
        return find_reversal(self.stripe, row)

    def _record(
        self, row: TransferRecord, status: TransferStatus, reason: str | None
    ) -> ItemOutcome:
        row = replace(row, status=status, status_reason=reason)
        self.ledger.save_transfers([row], run_id=self.run_id)
        return _transfer_outcome(row)


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


def _order_charges(transfers: Iterable[TransferRecord]) -> dict[str, datetime]:
    """Charge id → creation time of its order, for the order transfers that know both (the
    window :class:`.ChargePrefetch` lists)."""
    found: dict[str, datetime] = {}
    for transfer in transfers:
        if not transfer.transaction_id or not transfer.mirakl_created_date:
            continue
        try:
            found[transfer.transaction_id] = parse_mirakl_datetime(transfer.mirakl_created_date)
        except InvalidItemError:
            continue  # no date, no window: the charge is retrieved on its own
    return found


def _wanted(refund: RefundRecord | None, wanted: set[str]) -> bool:
    if not wanted:
        return True
    return refund is not None and refund.mirakl_order_id in wanted


def _refund_id(mirakl_id: str) -> str:
    return mirakl_id.removesuffix(TAX_SUFFIX)


def _refund_key(row: RefundRecord) -> str:
    """``…:refund:<mirakl refund id>``, ``…:retry<n>`` after a definite Stripe refusal."""
    parts: list[object] = ["refund", row.mirakl_refund_id]
    if row.attempts:
        parts.append(f"retry{row.attempts}")
    return idempotency_key(*parts)


def _reversal_key(row: TransferRecord) -> str:
    parts: list[object] = ["reversal", row.mirakl_id]
    if row.attempts:
        parts.append(f"retry{row.attempts}")
    return idempotency_key(*parts)


def _mirakl_amount(row: RefundRecord) -> Any:
    """Mirakl's own refund amount: what Stripe refunded plus the residue its rounding left
    (README "Currencies"), as PA01 confirms PA11's own amount. The residue stays on the row."""
    assert row.amount is not None and row.currency
    return from_minor(row.amount + (row.amount_residue or 0), row.currency)


def _pa02_entry(row: RefundRecord) -> dict[str, Any]:
    assert row.amount is not None and row.currency
    return {
        "refund_id": row.mirakl_refund_id,
        "amount": _mirakl_amount(row),
        "currency_iso_code": row.currency,
        "payment_status": "OK",
        "transaction_number": row.stripe_refund_id,
    }


def _spa02_entry(row: RefundRecord) -> dict[str, Any]:
    assert row.amount is not None and row.currency
    return {
        "id": row.mirakl_refund_id,
        "order_id": row.mirakl_order_id,
        "amount": _mirakl_amount(row),
        "currency_code": row.currency,
        "state": "OK",
        "transaction_number": row.stripe_refund_id,
    }


def _parse(parser: Any, raw: Any) -> MiraklOrder | InvalidItemError:
    try:
        return parser(raw)
    except InvalidItemError as exc:
        return exc


def _refund_outcome(row: RefundRecord) -> ItemOutcome:
    return ItemOutcome(
        item_id=row.mirakl_refund_id,
        status=str(row.status),
        reason=row.status_reason,
        amount=row.amount,
        currency=row.currency,
        failed=row.status is RefundStatus.FAILED,
        residue=row.amount_residue,
    )


def _transfer_outcome(row: TransferRecord) -> ItemOutcome:
    return ItemOutcome(
        item_id=row.mirakl_id,
        status=str(row.status),
        reason=row.status_reason,
        amount=row.amount,
        currency=row.currency,
        failed=row.status is TransferStatus.FAILED,
        residue=row.amount_residue,
    )


def _instant_or_none(value: Any) -> datetime | None:
    try:
        return parse_mirakl_datetime(value) if isinstance(value, str) else None
    except InvalidItemError:
        return None
