"""The cutover import: rows an incumbent connector made, marked with where they came from."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import select, update

from mirakl_connector.core.batch import chunked
from mirakl_connector.ledger import schema
from mirakl_connector.ledger.base import LedgerStore
from mirakl_connector.ledger.entities import IMPORTABLE, record_reader
from mirakl_connector.ledger.sql import IN_CHUNK


class ImportRepository(LedgerStore):
    """Writes and reads of the ``imported_from`` / ``imported_id`` markers of every table."""

    def save_imported(
        self,
        kind: str,
        records: Sequence[Any],
        *,
        source: str,
        old_ids: Sequence[str | None],
        run_id: str | None = None,
    ) -> list[Any]:
        """Insert or update rows imported from an incumbent connector, marked as imported.

        ``kind`` is ``transfer``, ``refund``, ``payout``, ``payment_mapping`` or
        ``hyperwallet_payment``; ``old_ids[i]`` is the incumbent's id of ``records[i]``, stored
        in ``imported_id`` with ``imported_from=source``. The same guards as ``save_*`` apply
        (a saved provider id is never replaced) and the audit trail gets the rows with
        ``run_id``, but no failure notification is queued: the incumbent already reported its
        failures, and importing one is not a new failure.
        """
        try:
            entity = IMPORTABLE[kind]
        except KeyError:
            raise ValueError(f"cannot import {kind!r} rows (known: {sorted(IMPORTABLE)})") from None
        if len(old_ids) != len(records):
            raise ValueError("one old id per imported record is required")
        return self._save(entity, records, run_id, imported=(source, old_ids))

    def mark_account_mapping_imported(self, shop_id: int, *, source: str, old_id: str) -> None:
        """Mark the mapping of ``shop_id`` as imported from ``source`` (incumbent id ``old_id``)."""
        table = schema.account_mappings
        with self._writer.begin() as conn:
            conn.execute(
                update(table)
                .where(table.c.mirakl_shop_id == shop_id)
                .values(imported_from=source, imported_id=old_id)
            )

    def imported_ids(self, kind: str, keys: Iterable[str]) -> dict[str, tuple[str, str | None]]:
        """``{key: (imported_from, imported_id)}`` of the imported rows among ``keys``.

        The key is the row's natural key as text (``<type>/<mirakl id>`` for transfers); rows
        this connector made itself are left out. Lets another workflow recognise a Mirakl
        document the incumbent already moved.
        """
        entity = IMPORTABLE[kind]
        wanted = list(dict.fromkeys(keys))
        key_columns = [entity.table.c[k] for k in entity.key]
        found: dict[str, tuple[str, str | None]] = {}
        table = entity.table
        with self._engine.connect() as conn:
            for chunk in chunked(wanted, IN_CHUNK):
                chunk_keys = set(chunk)
                last = key_columns[-1]
                last_parts = [k.split("/", len(key_columns) - 1)[-1] for k in chunk]
                stmt = select(*key_columns, table.c.imported_from, table.c.imported_id).where(
                    table.c.imported_from.is_not(None), last.in_(last_parts)
                )
                for row in conn.execute(stmt):
                    key = "/".join(str(part) for part in row[: len(key_columns)])
                    if key in chunk_keys:
                        found[key] = (row[-2], row[-1])
        return found

    def iter_moved(self, kind: str, *, batch_size: int = 500) -> Iterator[Any]:
        """Every row of ``kind`` whose money moved (it has a provider id), whoever moved it.

        What an incumbent must be told before it runs again (a rollback after a cutover).
        """
        entity = IMPORTABLE[kind]
        if entity.provider_id is None:
            raise ValueError(f"{kind} rows have no provider id")
        table = entity.table
        where = [table.c[entity.provider_id].is_not(None)]
        for batch in self._iter(table, where, batch_size, record_reader(entity)):
            yield from batch
