"""The payments console's writes to the ledger, each with its audit record, in one transaction.

A person acting on the console (hold, release, resolve an item in doubt, record a run they
triggered, map a shop) changes a row only here. Every change:

* locks the row and checks it again (:mod:`.manual_rules`): what the page showed may be stale,
  and a run may have sent the row meanwhile. Checks that need the provider (does the object
  exist? was nothing made?) run before, outside any lock; the transaction then also insists
  that the row's ``attempts`` is still the one checked, so a run that sent it in between makes
  the action refused rather than wrong;
* writes the row, a status event (``ledger_events``, the item's history) whose reason names the
  user and why, and a ``console_actions`` row (who, when, what, which item, why, result) in the
  same transaction: the audit trail holds exactly what was committed.

A refusal raises :class:`ActionRefused` and writes nothing; :meth:`ManualActions.refused` records
it in the audit on its own. No provider is called from this module.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, insert, select, update
from sqlalchemy.exc import IntegrityError

from mirakl_connector.core.errors import MiraklConnectorError
from mirakl_connector.ledger import manual_rules as rules
from mirakl_connector.ledger import schema
from mirakl_connector.ledger.engine import writer
from mirakl_connector.ledger.entities import IMPORTABLE, plain_values, to_record
from mirakl_connector.ledger.entities import now as _now
from mirakl_connector.ledger.records import AccountMapping
from mirakl_connector.ledger.repositories.mappings import account_mapping
from mirakl_connector.ledger.sql import event, insert_events, one
from mirakl_connector.ledger.store import Ledger

log = logging.getLogger(__name__)

#: ``console_actions.entity`` of a shop mapping (``entity_id`` is the shop id).
ACCOUNT_MAPPING = "account_mapping"


class ActionRefused(MiraklConnectorError):
    """The action is not allowed on the row as it is now; nothing was written.

    :param status: the HTTP status the console answers with (404: no such item; 409: the item's
        state does not allow it; 422: what the user gave is wrong).
    """

    def __init__(self, reason: str, *, status: int = 409) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class ActionRecord:
    """One ``console_actions`` row."""

    at: datetime
    user: str
    action: str
    entity: str
    entity_id: int | None
    item: str | None
    why: str
    result: str
    detail: str | None
    id: int | None = None


class ManualActions:
    """The console's writes on one ledger (its write engine; the ledger stays open by its owner)."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._writer = writer(ledger.engine)

    # -- reads ---------------------------------------------------------------------------------

    def record(self, entity: str, row_id: int) -> Any | None:
        """The ledger record (``TransferRecord``...) of ``entity`` row ``row_id``, or ``None``."""
        spec = _spec(entity)
        with self._ledger.engine.connect() as conn:
            row = one(conn, select(spec.table).where(spec.table.c.id == row_id))
        return to_record(spec, row) if row is not None else None

    def released_since(self, entity: str, since: datetime) -> list[int]:
        """Row ids of ``entity`` released from a hold at or after ``since``.

        A workflow that re-decides only what changed reads these too: a release is a change,
        and its cause (the order, the mapping) may have changed while the row was held.
        """
        table = schema.console_actions
        stmt = (
            select(table.c.entity_id)
            .where(
                table.c.action == rules.RELEASE,
                table.c.at >= since,
                table.c.entity == entity,
                table.c.result == rules.DONE,
            )
            .distinct()
        )
        with self._ledger.engine.connect() as conn:
            return sorted(int(r[0]) for r in conn.execute(stmt) if r[0] is not None)

    # -- item actions -----------------------------------------------------------------------

    def hold(self, entity: str, row_id: int, *, user: str, why: str) -> ActionRecord:
        """Put a row not sent yet ON_HOLD with ``held by <user>: <why>``."""
        why = _why(why)

        def change(
            state: rules.RowState, row: RowMapping, conn: Connection
        ) -> tuple[dict[str, Any], str]:
            _refuse_if(rules.hold_refusal(state))
            claimed = row.get("send_claimed_until")
            if claimed is not None and _aware(claimed) > _now():
                raise ActionRefused(
                    f"it is being sent by run {row.get('send_claimed_by')} right now; "
                    "look again in a few minutes"
                )
            reason = rules.hold_reason(user, why)
            return {"status": state.rules.on_hold, "status_reason": reason}, (
                f"{state.status} → {state.rules.on_hold} ({reason})"
            )

        return self._change(rules.HOLD, entity, row_id, user, why, change)

    def release(self, entity: str, row_id: int, *, user: str, why: str) -> ActionRecord:
        """Release a held row: ON_HOLD with ``released by …``, decided again by the next run."""
        why = _why(why)

        def change(
            state: rules.RowState, row: RowMapping, conn: Connection
        ) -> tuple[dict[str, Any], str]:
            _refuse_if(rules.release_refusal(state))
            reason = rules.release_reason(user, why)
            detail = f"{state.status} → {state.rules.on_hold}: decided again by the next run"
            return {"status": state.rules.on_hold, "status_reason": reason}, detail

        return self._change(rules.RELEASE, entity, row_id, user, why, change)

    def attach_found(
        self,
        entity: str,
        row_id: int,
        *,
        object_id: str,
        attempts: int,
        user: str,
        why: str,
        status: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> ActionRecord:
        """Record the provider object a person found for a row in doubt (already checked at the
        provider by the caller): the row takes its id and the status ``status`` (default: the
        entity's CREATED).

        :param attempts: the row's ``attempts`` when it was checked; refused if it changed.
        :param extra: other columns to write (a Hyperwallet payment's ``hw_status``).
        """
        why = _why(why)
        spec = _spec(entity)

        def change(
            state: rules.RowState, row: RowMapping, conn: Connection
        ) -> tuple[dict[str, Any], str]:
            _refuse_if(rules.resolve_refusal(state, found=True))
            _refuse_if_changed(state, attempts)
            with_id = spec.table.c[state.rules.provider_id] == object_id
            other = one(conn, select(spec.table.c.id).where(with_id, spec.table.c.id != row_id))
            if other is not None:
                raise ActionRefused(
                    f"{state.rules.provider} object {object_id} is already recorded on "
                    f"{entity} row {other['id']}",
                    status=409,
                )
            new_status = status or state.rules.created
            reason = rules.found_reason(user, why, state.rules.provider, object_id)
            values = {
                "status": new_status,
                "status_reason": reason,
                state.rules.provider_id: object_id,
                **dict(extra or {}),
            }
            return values, f"{state.status} → {new_status} with {object_id}"

        return self._change(rules.RESOLVE_FOUND, entity, row_id, user, why, change)

    def allow_resend(
        self, entity: str, row_id: int, *, attempts: int, lookup: str, user: str, why: str
    ) -> ActionRecord:
        """Settle a row in doubt as "nothing was made": the next run sends it with a new key.

        ``attempted_at`` is cleared, so the workflow no longer replays or looks up the old key;
        ``attempts`` is kept, so the next key (``…:retry<attempts>``) is one never sent before.
        The old key stays in ``idempotency_key`` until that run marks the new one.

        :param lookup: what the caller checked at the provider (kept in the audit).
        """
        why = _why(why)

        def change(
            state: rules.RowState, row: RowMapping, conn: Connection
        ) -> tuple[dict[str, Any], str]:
            _refuse_if(rules.resolve_refusal(state, found=False))
            _refuse_if_changed(state, attempts)
            reason = rules.not_found_reason(user, why, state.rules.provider, state.attempts)
            values = {"attempted_at": None, "status_reason": reason}
            first = row["attempted_at"]
            since = first.isoformat() if isinstance(first, datetime) else first
            return values, (
                f"attempt {state.attempts} (first sent {since}) settled as not made ({lookup}); "
                f"next attempt {state.attempts + 1} uses a new key"
            )

        return self._change(rules.RESOLVE_NOT_FOUND, entity, row_id, user, why, change)

    def record_retry(
        self,
        entity: str,
        row_id: int,
        *,
        dag_id: str,
        run_id: str,
        user: str,
        why: str,
        paused: bool = False,
    ) -> ActionRecord:
        """Record a run a person triggered for the row: a status event (status unchanged) under
        the run's id, so the item shows in that run's list, and the audit entry."""
        why = _why(why)

        def change(
            state: rules.RowState, row: RowMapping, conn: Connection
        ) -> tuple[dict[str, Any], str]:
            reason = rules.retry_reason(user, why, dag_id, run_id)
            detail = f"run {run_id} of {dag_id} triggered"
            if paused:
                detail += f" ({dag_id} is paused: the run waits until it is unpaused)"
            values = {"status": state.status, "status_reason": row["status_reason"]}
            return {**values, "_event_reason": reason}, detail

        return self._change(rules.RETRY, entity, row_id, user, why, change, run_id=run_id)

    def refused(
        self,
        action: str,
        entity: str,
        entity_id: int | None,
        *,
        user: str,
        why: str,
        reason: str,
        item: str | None = None,
    ) -> ActionRecord:
        """Record a refused action in the audit (nothing else is written)."""
        if item is None and entity in IMPORTABLE and entity_id is not None:
            found = self.record(entity, entity_id)
            item = _item_of(entity, found) if found is not None else None
        record = ActionRecord(
            at=_now(),
            user=user,
            action=action,
            entity=entity,
            entity_id=entity_id,
            item=item,
            why=schema.truncate_reason(why) or "",
            result=rules.REFUSED,
            detail=schema.truncate_reason(reason),
        )
        with self._writer.begin() as conn:
            return _audit(conn, record)

    # -- shop mapping ---------------------------------------------------------------------------

    def map_shop(self, mapping: AccountMapping, *, user: str, why: str) -> ActionRecord:
        """Insert a new shop ↔ Stripe account mapping; refused when either side is mapped.

        The caller has checked that the shop exists in Mirakl and the account at Stripe, and
        filled the mapping from the account (:func:`~mirakl_connector.stripe.onboarding.
        mapping_from_account`). Never an update: a mapping changed by hand would redirect money.
        """
        why = _why(why)
        table = schema.account_mappings
        shop, account = mapping.mirakl_shop_id, mapping.stripe_account_id
        now = _now()
        values = plain_values(mapping, exclude=("id", "created_at", "updated_at"))
        detail = (
            f"shop {shop} mapped to {account} (payouts enabled: {mapping.payouts_enabled}, "
            f"charges enabled: {mapping.charges_enabled}, KYC: {mapping.kyc_status or 'unknown'})"
        )
        try:
            with self._writer.begin() as conn:
                by_shop = one(conn, select(table).where(table.c.mirakl_shop_id == shop))
                if by_shop is not None:
                    raise ActionRefused(
                        f"shop {shop} is already mapped to {by_shop['stripe_account_id']}"
                    )
                by_account = one(conn, select(table).where(table.c.stripe_account_id == account))
                if by_account is not None:
                    raise ActionRefused(
                        f"Stripe account {account} is already mapped to shop "
                        f"{by_account['mirakl_shop_id']}"
                    )
                conn.execute(insert(table).values(**values, created_at=now, updated_at=now))
                return _audit(
                    conn,
                    ActionRecord(now, user, rules.MAP_SHOP, ACCOUNT_MAPPING, shop,
                                 f"shop {shop}", why, rules.DONE, detail),
                )  # fmt: skip
        except IntegrityError as exc:  # mapped meanwhile by another process
            raise ActionRefused(
                f"shop {shop} or Stripe account {account} was mapped meanwhile; reload the page"
            ) from exc

    def mapping_of_shop(self, shop_id: int) -> AccountMapping | None:
        table = schema.account_mappings
        with self._ledger.engine.connect() as conn:
            row = one(conn, select(table).where(table.c.mirakl_shop_id == shop_id))
        return account_mapping(row) if row is not None else None

    # -- machinery ------------------------------------------------------------------------------

    def _change(
        self,
        action: str,
        entity: str,
        row_id: int,
        user: str,
        why: str,
        change: Any,
        *,
        run_id: str | None = None,
    ) -> ActionRecord:
        """Lock the row, let ``change`` check it and say what to write, write it with its event
        and audit record. ``change`` raises :class:`ActionRefused` to refuse."""
        spec = _spec(entity)
        table = spec.table
        now = _now()
        with self._writer.begin() as conn:
            row = one(conn, select(table).where(table.c.id == row_id).with_for_update())
            if row is None:
                raise ActionRefused(f"no {entity} {row_id} in the ledger", status=404)
            state = rules.RowState.of(entity, row)
            values, detail = change(state, row, conn)
            event_reason = values.pop("_event_reason", None)
            values["status_reason"] = schema.truncate_reason(values.get("status_reason"))
            written = {k: v for k, v in values.items() if row[k] != v}
            if written:
                conn.execute(
                    update(table).where(table.c.id == row_id).values(**written, updated_at=now)
                )
            event_values = {**dict(row), **values}
            if event_reason is not None:
                event_values["status_reason"] = schema.truncate_reason(event_reason)
            insert_events(conn, [event(entity, row_id, row["status"], event_values, run_id, now)])
            item = _item_of(entity, to_record(spec, {**dict(row), **values}))
            record = ActionRecord(
                at=now,
                user=user,
                action=action,
                entity=entity,
                entity_id=row_id,
                item=item,
                why=why,
                result=rules.DONE,
                detail=schema.truncate_reason(detail),
            )
            saved = _audit(conn, record)
        log.info("Console: %s %s %s by %s: %s (%s)", action, entity, item, user, why, detail)
        return saved


def _aware(stamp: datetime) -> datetime:
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp


def _spec(entity: str) -> Any:
    if entity not in rules.ENTITIES:
        raise ActionRefused(f"unknown item kind {entity!r}", status=404)
    return IMPORTABLE[entity]


def _why(why: str) -> str:
    try:
        return rules.clean_why(why)
    except ValueError as exc:
        raise ActionRefused(str(exc), status=422) from None


def _refuse_if(reason: str | None) -> None:
    if reason is not None:
        raise ActionRefused(reason)


def _refuse_if_changed(state: rules.RowState, attempts: int) -> None:
    if state.attempts != attempts:
        raise ActionRefused(
            f"the item changed since it was checked (attempt {attempts}, now {state.attempts}): "
            "a run sent it meanwhile; reload the page and check again"
        )


def _item_of(entity: str, record: Any) -> str:
    """The id a person reads: the Mirakl id of the row (its natural key)."""
    spec = IMPORTABLE[entity]
    return "/".join(str(getattr(record, k)) for k in spec.key[-1:])


def _audit(conn: Connection, record: ActionRecord) -> ActionRecord:
    values = {
        "at": record.at,
        "user_name": record.user[:255],
        "action": record.action,
        "entity": record.entity,
        "entity_id": record.entity_id,
        "item": (record.item or None) and record.item[:255],
        "why": record.why,
        "result": record.result,
        "detail": record.detail,
    }
    table = schema.console_actions
    new_id = conn.execute(insert(table).values(**values).returning(table.c.id)).scalar_one()
    return replace(record, id=int(new_id))
