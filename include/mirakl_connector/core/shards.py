"""Sharding a step's PENDING rows, so that several tasks can send them at once, none twice.

A step that writes to a provider (create transfers, refunds, reversals, payouts), declared
``sharded`` in its workflow's spec (:class:`~mirakl_connector.core.workflow_spec.StepSpec`),
runs as ``n`` mapped Airflow tasks, task ``i`` taking the ledger rows whose id is ``i`` modulo
``n``. Ledger ids never change and rows are never deleted, so the shards are disjoint, together
cover every row, and come out about the same size (ids are mostly consecutive); and since a
row's shard never changes, a retried or cleared shard task sees exactly the rows it saw before.
The ledger applies the filter in SQL (``Ledger.iter_transfers(shard=...)``), so each task reads
only its own rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mirakl_connector.core.batch import BatchSummary
from mirakl_connector.core.errors import ConfigurationError

#: at most this many mapped tasks per step (Airflow's ``max_map_length`` is 1024; more shards
#: than pool slots only queue)
MAX_SHARDS = 64
#: mapped tasks per step unless the workflow's ``execute_shards`` setting says otherwise
DEFAULT_SHARDS = 4


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count``: the rows with ``id % count == index``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ConfigurationError(f"shards must be a positive integer, got {self.count!r}")
        if (
            isinstance(self.index, bool)
            or not isinstance(self.index, int)
            or not 0 <= self.index < self.count
        ):
            raise ConfigurationError(
                f"shard must be an integer from 0 to {self.count - 1}, got {self.index!r}"
            )

    @classmethod
    def of(cls, shard: int | None, shards: int | None) -> Shard | None:
        """The step params ``shard``/``shards`` as a Shard; ``None`` (every row) when both are
        missing. One without the other is a configuration error, not a guess."""
        if shard is None and shards is None:
            return None
        if shard is None or shards is None:
            raise ConfigurationError("shard and shards go together: give both or neither")
        return cls(shard, shards)

    def holds(self, row_id: int | None) -> bool:
        """Whether ledger row ``row_id`` belongs to this shard."""
        if row_id is None:
            raise ConfigurationError("a ledger row without id cannot be sharded")
        return row_id % self.count == self.index

    def describe(self) -> str:
        return f"shard {self.index} of {self.count}"


def shard_count(value: Any, setting: str) -> int:
    """Validate a ``…execute_shards`` setting: an integer from 1 to :data:`MAX_SHARDS`."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SHARDS:
        raise ConfigurationError(
            f"{setting} must be an integer from 1 to {MAX_SHARDS}, got {value!r}"
        )
    return value


def start_sharded_step(
    workflow: str, step: str, *, dry_run: bool, shard: int | None, shards: int | None
) -> tuple[BatchSummary, Shard | None]:
    """The summary of a write step and its shard, checked before anything is read; the summary
    notes which shard it covers, so the report of a mapped step says which task did what."""
    part = Shard.of(shard, shards)
    summary = BatchSummary(workflow, step, dry_run=dry_run)
    if part is not None:
        summary.notes.append(part.describe())
    return summary, part


def shards_from_config(config: Mapping[str, Any], section: str) -> list[dict[str, int]]:
    """The mapped tasks' ``step_kwargs`` for ``config[section]["execute_shards"]`` (default 4)."""
    value = (config.get(section) or {}).get("execute_shards", DEFAULT_SHARDS)
    return shard_plan(shard_count(value, f"{section}.execute_shards"))


def shard_plan(count: int) -> list[dict[str, int]]:
    """The ``step_kwargs`` of each mapped task: ``[{"shard": 0, "shards": n}, ...]``."""
    shard_count(count, "execute_shards")
    return [{"shard": i, "shards": count} for i in range(count)]
