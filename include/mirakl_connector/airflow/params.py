"""The trigger-form parameters shared by the connector's DAGs, and their parsing in a task.

A scheduled run leaves all three at their defaults (new orders since the last checkpoint, real
transfers). An operator triggering by hand can narrow the run to some orders, re-read everything
since a date, or rehearse it with ``dry_run`` (decide and report, record and transfer nothing).

``since`` is validated as RFC 3339 by the form and the REST API only because ``rfc3339-validator``
is installed (pinned in requirements.txt). :meth:`RunParams.from_context` checks it again (and
insists on a time zone), so an install without the validator cannot let a bad date reach Mirakl.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from airflow.sdk import Param

from mirakl_connector.errors import ConfigurationError


def run_params() -> dict[str, Param]:
    """Fresh ``Param`` objects for a DAG's ``params=`` (one set per DAG; Params are mutable)."""
    return {
        "since": Param(
            None,
            type=["null", "string"],
            format="date-time",
            title="Orders created since",
            description="Re-read Mirakl orders created at or after this instant (RFC 3339, with "
            "a time zone). Empty: continue from the last checkpoint.",
        ),
        "order_ids": Param(
            [],
            type="array",
            items={"type": "string"},
            title="Only these orders",
            description="Mirakl order ids to (re)process, one per line. Empty: all orders.",
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Decide and report only: no ledger change, no Stripe call.",
        ),
    }


@dataclass(frozen=True)
class RunParams:
    """The three run parameters, parsed and checked."""

    since: datetime | None = None
    order_ids: list[str] = field(default_factory=list)
    dry_run: bool = False

    @classmethod
    def from_mapping(cls, params: Mapping[str, Any]) -> RunParams:
        """Parse raw values; raise :class:`ConfigurationError` naming the bad param."""
        return cls(
            since=_parse_since(params.get("since")),
            order_ids=_parse_order_ids(params.get("order_ids")),
            dry_run=_parse_dry_run(params.get("dry_run", False)),
        )

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> RunParams:
        """Parse ``context["params"]`` (the run's values: defaults merged with the trigger conf)."""
        return cls.from_mapping(context.get("params") or {})


def _parse_since(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ConfigurationError(
                f"param 'since': {value!r} is not an RFC 3339 date-time "
                "(e.g. 2026-03-01T00:00:00+00:00)"
            ) from None
    else:
        raise ConfigurationError(f"param 'since': expected a date-time string, got {value!r}")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ConfigurationError(
            f"param 'since': {value!r} has no time zone; add one (e.g. +00:00 or Z)"
        )
    return parsed


def _parse_order_ids(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence) or isinstance(value, bytes):
        raise ConfigurationError(f"param 'order_ids': expected a list of strings, got {value!r}")
    ids: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise ConfigurationError(f"param 'order_ids': {item!r} is not a string")
        item = item.strip()
        if item and item not in ids:
            ids.append(item)
    return ids


def _parse_dry_run(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ConfigurationError(f"param 'dry_run': expected true or false, got {value!r}")
