"""Import the history of the Stripe Connector for Mirakl into the ledger (cutover).

The incumbent's schema and how it is read: :mod:`.stripe_schema`; how one of its rows
becomes a ledger record: :mod:`.stripe_mapping`.

Statuses are the incumbent's own names (our ledger kept them), with three rules that protect the
money:

* a row with a provider id (``transfer_id``, ``stripe_refund_id``, ``payout_id``) is money that
  moved: it is imported with that id, so no workflow of ours sends it again;
* a row PENDING *without* a provider id was handed to the incumbent's worker, which may have
  called Stripe and died before writing the id (it sent no idempotency key, so nothing at Stripe
  can tell). It is imported *held*: ``*_ABORTED`` with a reason starting with
  :data:`HELD_PREFIX`, so no workflow sends it and Mirakl's copy of it is never picked up as new.
  It is reported as HELD (a failure the operator must settle); once the incumbent's row has an id
  or a final status, the next import replaces the held row;
* a refund the incumbent refunded in Stripe but did not validate in Mirakl keeps its ``re_`` id
  and stays PENDING: our refund step only validates it (PA02 / SPA02).

Re-running changes nothing: a row already in the ledger is left as it is (our workflows may have
moved it on), unless the incumbent has since moved the money (its row gained a provider id while
ours has none and was never attempted) or settled a held row. A provider id that differs from
ours is a CONFLICT, reported, never overwritten.

Checkpoints only move forward: the incumbent's value is taken when we have none or an older one.
A checkpoint the incumbent never wrote is reported (that workflow never ran there: the go-live
instant decides our first run).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from mirakl_connector.core.batch import BatchSummary, ItemOutcome, chunked
from mirakl_connector.core.errors import InvalidItemError
from mirakl_connector.cutover import STRIPE_CONNECTOR, text_or_none
from mirakl_connector.cutover.claims import claim_imported
from mirakl_connector.cutover.stripe_mapping import (
    HELD_PREFIX,
    NotMapped,
    is_held,
    map_account_mapping,
    map_payment_mapping,
    map_payout,
    map_refund,
    map_transfer,
)
from mirakl_connector.cutover.stripe_schema import (
    ACCOUNT_MAPPING,
    CHECKPOINTS,
    CHUNK_SIZE,
    PAYMENT_MAPPING,
    STRIPE_PAYOUT,
    STRIPE_REFUND,
    STRIPE_TRANSFER,
    OldConnectorDatabase,
    OldTable,
)
from mirakl_connector.ledger import Ledger, LedgerConflictError
from mirakl_connector.ledger.records import (
    TAX_SUFFIX,
    AccountMapping,
    RefundRecord,
    TransferRecord,
    TransferStatus,
    TransferType,
)
from mirakl_connector.mirakl.orders import parse_mirakl_datetime
from mirakl_connector.operations.payout_provider import STRIPE

log = logging.getLogger(__name__)

WORKFLOW = "stripe_connector_cutover"

# -- the import ---------------------------------------------------------------------------------


@dataclass
class _Kind:
    """How one incumbent table is imported."""

    label: str  # outcome prefix: TRANSFER, REFUND, PAYOUT, PAYMENT_MAPPING
    ledger_kind: str  # Ledger.save_imported kind
    provider_id: str | None
    table: OldTable
    key: Callable[[Any], str]
    existing: Callable[[Ledger, list[Any]], dict[str, Any]]
    item_id: Callable[[Any], str]
    raw_key: str  # the incumbent's column naming the item, for rows that cannot be mapped


class StripeConnectorImport:
    """Fill the ledger from the incumbent's database; see the module docstring.

    :param source: the incumbent's database.
    :param ledger: our ledger.
    :param run_id: written on the audit events of the imported rows.
    """

    def __init__(
        self, *, source: OldConnectorDatabase, ledger: Ledger, run_id: str | None = None
    ) -> None:
        self.source = source
        self.ledger = ledger
        self.run_id = run_id or "cutover-import"
        self._held_refunds: set[str] = set()

    def run(self, *, dry_run: bool = True) -> BatchSummary:
        """Import everything (or, in a dry run, say what would be imported); return the report."""
        summary = BatchSummary(WORKFLOW, "import", dry_run=dry_run)
        accounts = self._import_account_mappings(summary, dry_run=dry_run)
        aware = self.source.aware
        kinds = [
            (
                _Kind(
                    "PAYMENT_MAPPING",
                    "payment_mapping",
                    None,
                    PAYMENT_MAPPING,
                    lambda r: r.stripe_charge_id,
                    lambda ledger, keys: {
                        k: m for k in keys if (m := ledger.get_payment_mapping(k)) is not None
                    },
                    lambda r: f"payment mapping {r.stripe_charge_id}",
                    "stripe_charge_id",
                ),
                map_payment_mapping,
            ),
            (
                _Kind(
                    "REFUND",
                    "refund",
                    "stripe_refund_id",
                    STRIPE_REFUND,
                    lambda r: r.mirakl_refund_id,
                    lambda ledger, keys: ledger.get_refunds(keys),
                    lambda r: f"refund {r.mirakl_refund_id}",
                    "mirakl_refund_id",
                ),
                lambda row: self._note_held_refund(map_refund(row, aware)),
            ),
            (
                _Kind(
                    "TRANSFER",
                    "transfer",
                    "transfer_id",
                    STRIPE_TRANSFER,
                    lambda r: f"{r.type}/{r.mirakl_id}",
                    _existing_transfers,
                    lambda r: f"transfer {r.type} {r.mirakl_id}",
                    "mirakl_id",
                ),
                lambda row: self._hold_reversal_of_held_refund(map_transfer(row, accounts, aware)),
            ),
            (
                _Kind(
                    "PAYOUT",
                    "payout",
                    "payout_id",
                    STRIPE_PAYOUT,
                    lambda r: r.mirakl_invoice_id,
                    lambda ledger, keys: ledger.get_payouts(keys),
                    lambda r: f"payout of invoice {r.mirakl_invoice_id}",
                    "mirakl_invoice_id",
                ),
                lambda row: map_payout(row, accounts, aware),
            ),
        ]
        for kind, mapper in kinds:
            self._import_rows(kind, mapper, summary, dry_run=dry_run)
        self._import_checkpoints(summary, dry_run=dry_run)
        summary.notes.extend(self.source.notes)
        log.info("%s", summary.describe())
        return summary

    def _note_held_refund(self, refund: RefundRecord) -> RefundRecord:
        if is_held(refund):
            self._held_refunds.add(refund.mirakl_refund_id)
        return refund

    def _hold_reversal_of_held_refund(self, transfer: TransferRecord) -> TransferRecord:
        """A reversal whose refund is held is held too: deciding it now would abort it for good
        ("refund aborted") although the incumbent may have refunded the customer."""
        refund_id = transfer.mirakl_id.removesuffix(TAX_SUFFIX)
        if (
            transfer.type is TransferType.REFUND
            and transfer.transfer_id is None
            and refund_id in self._held_refunds
        ):
            reason = (
                f"{HELD_PREFIX}: its refund {refund_id} is held (PENDING at the Stripe connector "
                "without a refund id); imported again once that refund is settled there"
            )
            return replace(transfer, status=TransferStatus.ABORTED, status_reason=reason)
        return transfer

    # -- account mappings -----------------------------------------------------------------

    def _import_account_mappings(
        self, summary: BatchSummary, *, dry_run: bool
    ) -> dict[int, AccountMapping]:
        """Import the mappings; return every old mapping by its old row id (for the joins)."""
        by_old_id: dict[int, AccountMapping] = {}
        read = 0
        for rows in chunked(self.source.rows(ACCOUNT_MAPPING), CHUNK_SIZE):
            read += len(rows)
            mapped: list[tuple[dict[str, Any], AccountMapping]] = []
            for row in rows:
                item = f"account mapping of shop {row['mirakl_shop_id']} (old #{row['id']})"
                try:
                    mapping = map_account_mapping(row)
                except (NotMapped, InvalidItemError) as exc:
                    summary.add(_not_mapped("ACCOUNT_MAPPING", item, exc))
                    continue
                by_old_id[row["id"]] = mapping
                mapped.append((row, mapping))
            existing = self.ledger.account_mappings_by_shop(m.mirakl_shop_id for _, m in mapped)
            for row, mapping in mapped:
                item = f"account mapping of shop {mapping.mirakl_shop_id} (old #{row['id']})"
                ours = existing.get(mapping.mirakl_shop_id)
                if ours is not None:
                    if ours.stripe_account_id != mapping.stripe_account_id:
                        reason = (
                            f"shop {mapping.mirakl_shop_id} is mapped here to "
                            f"{ours.stripe_account_id}, at the Stripe connector to "
                            f"{mapping.stripe_account_id}: settle which account is the seller's"
                        )
                        summary.add(
                            ItemOutcome(item, "ACCOUNT_MAPPING_CONFLICT", reason, failed=True)
                        )
                    else:
                        summary.add(ItemOutcome(item, "ACCOUNT_MAPPING_UNCHANGED"))
                    continue
                if not dry_run:
                    try:
                        self.ledger.upsert_account_mapping(mapping)
                    except LedgerConflictError as exc:
                        summary.add(
                            ItemOutcome(item, "ACCOUNT_MAPPING_CONFLICT", str(exc), failed=True)
                        )
                        continue
                    self.ledger.mark_account_mapping_imported(
                        mapping.mirakl_shop_id, source=STRIPE_CONNECTOR, old_id=str(row["id"])
                    )
                summary.add(ItemOutcome(item, "ACCOUNT_MAPPING_IMPORTED"))
        summary.notes.append(f"{ACCOUNT_MAPPING.name}: {read} row(s) read")
        return by_old_id

    # -- transfers, refunds, payouts, payment mappings --------------------------------------

    def _import_rows(
        self,
        kind: _Kind,
        mapper: Callable[[Mapping[str, Any]], Any],
        summary: BatchSummary,
        *,
        dry_run: bool,
    ) -> None:
        read = 0
        for rows in chunked(self.source.rows(kind.table), CHUNK_SIZE):
            read += len(rows)
            mapped: list[tuple[str, Any]] = []  # (old id, record)
            seen: set[str] = set()
            for row in rows:
                old_id = str(row["id"])
                try:
                    record = mapper(row)
                except (NotMapped, InvalidItemError) as exc:
                    item = f"{kind.table.name} #{old_id} ({text_or_none(row[kind.raw_key]) or '?'})"
                    summary.add(_not_mapped(kind.label, item, exc))
                    continue
                key = kind.key(record)
                if key in seen:  # the incumbent's unique keys make this impossible; still
                    summary.add(
                        _not_mapped(
                            kind.label,
                            f"{kind.item_id(record)} (old #{old_id})",
                            NotMapped("the same key appears twice in the old table"),
                        )
                    )
                    continue
                seen.add(key)
                mapped.append((old_id, record))
            existing = kind.existing(self.ledger, [kind.key(r) for _, r in mapped])
            to_save: list[tuple[str, Any]] = []
            for old_id, record in mapped:
                item = f"{kind.item_id(record)} (old #{old_id})"
                outcome, write = _merge(kind, existing.get(kind.key(record)), record, item)
                summary.add(outcome)
                if write is not None:
                    to_save.append((old_id, write))
            if to_save and not dry_run:
                self._save(kind, to_save, summary)
        summary.notes.append(f"{kind.table.name}: {read} row(s) read")

    def _save(self, kind: _Kind, to_save: list[tuple[str, Any]], summary: BatchSummary) -> None:
        saved = [r for _, r in to_save]
        try:
            self.ledger.save_imported(
                kind.ledger_kind,
                saved,
                source=STRIPE_CONNECTOR,
                old_ids=[i for i, _ in to_save],
                run_id=self.run_id,
            )
        except LedgerConflictError:
            # Someone wrote meanwhile: one by one, so only the clashing rows are reported.
            saved = []
            for old_id, record in to_save:
                try:
                    self.ledger.save_imported(
                        kind.ledger_kind,
                        [record],
                        source=STRIPE_CONNECTOR,
                        old_ids=[old_id],
                        run_id=self.run_id,
                    )
                except LedgerConflictError as exc:
                    item = f"{kind.item_id(record)} (old #{old_id})"
                    summary.add(ItemOutcome(item, f"{kind.label}_CONFLICT", str(exc), failed=True))
                else:
                    saved.append(record)
        # What the incumbent paid is Stripe's for good: no rule can pay it through Hyperwallet.
        claim_imported(self.ledger, STRIPE, saved, source=STRIPE_CONNECTOR)

    # -- checkpoints ----------------------------------------------------------------------

    def _import_checkpoints(self, summary: BatchSummary, *, dry_run: bool) -> None:
        config = self.source.config()
        for ours, keys in CHECKPOINTS.items():
            value = next((config[k] for k in keys if config.get(k)), None)
            item = f"checkpoint {ours}"
            if not value:
                summary.add(
                    ItemOutcome(
                        item,
                        "CHECKPOINT_NOT_SET",
                        "the Stripe connector never wrote it (that job never ran or was "
                        "disabled there): our first run is bounded by the go-live instant",
                    )
                )
                continue
            try:
                old_at = parse_mirakl_datetime(value, field=ours)
            except InvalidItemError as exc:
                summary.add(_not_mapped("CHECKPOINT", item, exc))
                continue
            current = self.ledger.get_checkpoint(ours)
            current_at = _parse_or_none(current)
            if current_at is not None and current_at >= old_at:
                summary.add(
                    ItemOutcome(item, "CHECKPOINT_UNCHANGED", f"ours ({current}) is not older")
                )
                continue
            if current is not None and current_at is None:
                summary.add(
                    _not_mapped(
                        "CHECKPOINT",
                        item,
                        NotMapped(f"ours ({current!r}) is unreadable: fix it before importing"),
                    )
                )
                continue
            if not dry_run:
                self.ledger.set_checkpoint(ours, value)
            status = "CHECKPOINT_IMPORTED" if current is None else "CHECKPOINT_UPDATED"
            summary.add(ItemOutcome(item, status, f"{current or 'none'} → {value}"))


def _merge(kind: _Kind, ours: Any, theirs: Any, item: str) -> tuple[ItemOutcome, Any | None]:
    """What to do with an incumbent row given our row of the same key: (outcome, row to save)."""
    label = kind.label
    amount = getattr(theirs, "amount", None)
    currency = getattr(theirs, "currency", None)
    held = kind.provider_id is not None and is_held(theirs)

    def outcome(action: str, reason: str | None = None, failed: bool = False) -> ItemOutcome:
        return ItemOutcome(item, f"{label}_{action}", reason, amount, currency, failed)

    if ours is None:
        if held:
            return outcome("HELD", theirs.status_reason, failed=True), theirs
        return outcome("IMPORTED"), theirs
    if kind.provider_id is None:  # payment mappings: ours is the truth once it exists
        return outcome("UNCHANGED"), None
    our_id = getattr(ours, kind.provider_id)
    their_id = getattr(theirs, kind.provider_id)
    if our_id:
        if their_id and their_id != our_id:
            return outcome(
                "CONFLICT",
                f"ledger has {our_id}, the Stripe connector {their_id}: the money may have "
                "moved twice; check Stripe",
                failed=True,
            ), None
        return outcome("UNCHANGED"), None
    if their_id:
        if ours.attempted_at is not None:
            return outcome(
                "CONFLICT",
                f"the Stripe connector has {their_id} but this connector attempted it too "
                f"(key {ours.idempotency_key}): check Stripe before settling the row",
                failed=True,
            ), None
        return outcome("UPDATED", f"{ours.status} → {theirs.status} ({their_id})"), theirs
    if is_held(ours):
        if held:
            return outcome("HELD", ours.status_reason, failed=True), None
        return outcome("UPDATED", f"held row released as {theirs.status}"), theirs
    if held:
        return outcome(
            "UNCHANGED", f"kept ours ({ours.status}); the Stripe connector is PENDING"
        ), None
    return outcome("UNCHANGED"), None


def _existing_transfers(ledger: Ledger, keys: list[str]) -> dict[str, TransferRecord]:
    by_type: dict[str, list[str]] = {}
    for key in keys:
        transfer_type, mirakl_id = key.split("/", 1)
        by_type.setdefault(transfer_type, []).append(mirakl_id)
    found: dict[str, TransferRecord] = {}
    for transfer_type, ids in by_type.items():
        for mirakl_id, record in ledger.get_transfers(TransferType(transfer_type), ids).items():
            found[f"{transfer_type}/{mirakl_id}"] = record
    return found


def _not_mapped(label: str, item: str, exc: Exception) -> ItemOutcome:
    reason = exc.reason if isinstance(exc, InvalidItemError) else str(exc)
    return ItemOutcome(item, f"{label}_NOT_MAPPED", reason, failed=True)


def _parse_or_none(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parse_mirakl_datetime(value)
    except InvalidItemError:
        return None


def import_stripe_connector(
    source_url: str,
    ledger: Ledger,
    *,
    dry_run: bool = True,
    timezone: str = "UTC",
    run_id: str | None = None,
) -> BatchSummary:
    """Open the incumbent's database at ``source_url`` and import it into ``ledger``."""
    source = OldConnectorDatabase(source_url, timezone=timezone)
    try:
        return StripeConnectorImport(source=source, ledger=ledger, run_id=run_id).run(
            dry_run=dry_run
        )
    finally:
        source.dispose()


__all__: Sequence[str] = (
    "CHECKPOINTS",
    "HELD_PREFIX",
    "OldConnectorDatabase",
    "StripeConnectorImport",
    "import_stripe_connector",
    "is_held",
    "map_payout",
    "map_refund",
    "map_transfer",
)
