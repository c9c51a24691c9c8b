"""Payment refund, ``reverse``: decide the reversal rows, and reverse one PENDING row once.

A ``TRANSFER_REFUND`` row moves once its refund is done and the order's transfer exists: reverse
refund − refunded commission (− refunded tax with the tax split; the tax goes back from the
``_TAX`` transfer in its own row), with an idempotency key; a row in doubt is replayed with the
same key or looked up with ``find_reversal`` (:func:`.exactly_once.write_once`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import Any

from mirakl_connector.core.batch import BatchSummary, ItemOutcome, chunked, run_batch
from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.core.shards import Shard
from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.manual_rules import is_held_record
from mirakl_connector.ledger.records import (
    ORDER_TRANSFER_TYPES,
    RETRIABLE_TRANSFER,
    TAX_SUFFIX,
    RefundRecord,
    RefundType,
    TransferRecord,
    TransferStatus,
    TransferType,
)
from mirakl_connector.mirakl.client import MiraklClient
from mirakl_connector.mirakl.orders import (
    MiraklOrder,
    RefundPart,
    parse_product_order,
    parse_service_order,
)
from mirakl_connector.operations.backlog import (
    released_since,
)
from mirakl_connector.operations.send_once import (
    Recording,
    Unknown,
    record_in_doubt,
)
from mirakl_connector.stripe.exactly_once import lacking, write_and_record
from mirakl_connector.stripe.gateway import (
    CreatedObject,
    StripeGateway,
)
from mirakl_connector.stripe.idempotency import attempt_key
from mirakl_connector.stripe.lookups import find_reversal
from mirakl_connector.stripe.refund_decisions import (
    decide_reversal,
    needs_refund_part,
)
from mirakl_connector.stripe.refund_rows import (
    ORDER_TYPE,
    refund_id_of,
    wanted_refund,
)
from mirakl_connector.stripe.sendable import present
from mirakl_connector.stripe.split_sending import TransferRecording, transfer_outcome

#: rows (and refunds) read from the ledger in one call
CHUNK_SIZE = 100


class ReversalMaking(TransferRecording):
    """The ``reverse`` step's deciding and per-row send (mixed into
    :class:`.refunds.PaymentRefund`)."""

    mirakl: MiraklClient
    stripe: StripeGateway
    ledger: Ledger
    run_id: str | None
    tax_split: bool

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
        refunds = self.ledger.get_refunds(refund_id_of(r.mirakl_id) for r in rows)
        rows = [r for r in rows if wanted_refund(refunds.get(refund_id_of(r.mirakl_id)), wanted)]
        for held in [r for r in rows if is_held_record(r)]:
            summary.add(transfer_outcome(held))  # a person holds it: not decided until released
        rows = [r for r in rows if not is_held_record(r)]
        if not rows:
            return []
        order_transfers: dict[tuple[TransferType, str], TransferRecord] = {}
        order_ids: dict[RefundType, set[str]] = {t: set() for t in RefundType}
        for row in rows:
            refund = refunds.get(refund_id_of(row.mirakl_id))
            if refund is None or not refund.mirakl_order_id:
                continue
            order_ids[refund.type].add(refund.mirakl_order_id)
        for refund_type, ids in order_ids.items():
            if not ids:
                continue
            transfer_type = ORDER_TYPE[refund_type]
            keys = sorted(ids) + sorted(i + TAX_SUFFIX for i in ids)
            for mirakl_id, transfer in self.ledger.get_transfers(transfer_type, keys).items():
                order_transfers[(transfer_type, mirakl_id)] = transfer
        # The refunded orders of the rows that may move now, no Mirakl read for the others.
        ready: set[str] = set()
        for row in rows:
            refund = refunds.get(refund_id_of(row.mirakl_id))
            if refund is None or not refund.mirakl_order_id:
                continue
            is_tax_row = row.mirakl_id.endswith(TAX_SUFFIX)
            source_id = refund.mirakl_order_id + (TAX_SUFFIX if is_tax_row else "")
            if needs_refund_part(
                row,
                refund=refund,
                order_transfer=order_transfers.get((ORDER_TYPE[refund.type], source_id)),
                is_tax_row=is_tax_row,
                tax_split=self.tax_split,
            ):
                ready.add(refund.mirakl_refund_id)
        orders = self._fetch_orders(refunds.values(), ready)

        decided: list[TransferRecord] = []

        def handle(row: TransferRecord) -> ItemOutcome | list[ItemOutcome]:
            is_tax_row = row.mirakl_id.endswith(TAX_SUFFIX)
            refund = refunds.get(refund_id_of(row.mirakl_id))
            order_transfer = None
            part: RefundPart | None = None
            if refund is not None and refund.mirakl_order_id:
                transfer_type = ORDER_TYPE[refund.type]
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
                    return transfer_outcome(decided[-1])
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
            return transfer_outcome(result)

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
        return write_and_record(
            row,
            recorded=row.transfer_id,
            lacks=lacking(
                "PENDING reversal lacks transfer or amount", row.transaction_id, row.amount
            ),
            new_key=attempt_key(row.attempts, "reversal", row.mirakl_id),
            find=self._find_reversal,
            mark=partial(self.ledger.mark_transfer_attempt, run_id=self.run_id),
            create=self._create_reversal,
            recording=Recording(
                created=lambda r, written: self._record(
                    replace(r, transfer_id=written.object_id), TransferStatus.CREATED, None
                ),
                refused=lambda r, refused: self._record(r, TransferStatus.FAILED, refused.message),
                unknown=self._reversal_unknown,
            ),
        )

    def _reversal_unknown(self, row: TransferRecord, unknown: Unknown) -> ItemOutcome:
        save = partial(self.ledger.save_transfers, run_id=self.run_id)
        return record_in_doubt(row, unknown.reason, item_id=row.mirakl_id, save=save)

    def _create_reversal(self, row: TransferRecord, key: str) -> CreatedObject:
        item = row.mirakl_id
        return self.stripe.create_reversal(
            present(row.transaction_id, "transfer", item),
            amount=present(row.amount, "amount", item),
            currency=present(row.currency, "currency", item),
            idempotency_key=key,
            metadata={"miraklId": row.mirakl_id},
        )

    def _find_reversal(self, row: TransferRecord) -> str | None:
        return find_reversal(self.stripe, row)


def _parse(parser: Callable[[Any], MiraklOrder], raw: Any) -> MiraklOrder | InvalidItemError:
    try:
        return parser(raw)
    except InvalidItemError as exc:
        return exc
