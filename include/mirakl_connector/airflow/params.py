"""The trigger-form parameters shared by the connector's DAGs, and their parsing in a task.

A scheduled run leaves all three at their defaults (new orders since the last checkpoint, real
transfers). An operator triggering by hand can narrow the run to some orders, re-read everything
since a date, or rehearse it with ``dry_run`` (decide and report, record and transfer nothing).

Every param here is optional, and says so to the trigger form: Airflow 3's form marks a param
*required* unless its JSON-schema ``type`` includes ``"null"`` (a plain ``"array"`` or
``"boolean"`` param shows a red asterisk), so each ``type`` lists ``"null"`` and the parsing below
reads ``null`` as the default (no id filter, not a dry run).

``since`` is validated as RFC 3339 by the form and the REST API only because ``rfc3339-validator``
is installed (pinned in requirements.txt). :meth:`RunParams.from_context` checks it again (and
insists on a time zone), so an install without the validator cannot let a bad date reach Mirakl.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from airflow.sdk import Param

from mirakl_connector.core.errors import ConfigurationError, InvalidItemError
from mirakl_connector.core.ids import check_id_list_entry, is_ascii_digits


def since_param(title: str = "Orders created since") -> Param:
    """Optional RFC 3339 instant overriding the checkpoint for one run."""
    return Param(
        None,
        type=["null", "string"],
        format="date-time",
        title=title,
        description="Re-read Mirakl data created at or after this instant (RFC 3339, with a "
        "time zone). Empty: continue from the last checkpoint.",
    )


def ids_param(title: str, description: str) -> Param:
    """Optional list of Mirakl ids restricting one run."""
    return Param(
        [],
        type=["null", "array"],
        items={"type": "string"},
        title=title,
        description=description,
    )


def dry_run_param() -> Param:
    return Param(
        False,
        type=["null", "boolean"],
        title="Dry run",
        description="Decide and report only: no ledger change, no provider call that writes.",
    )


def run_params() -> dict[str, Param]:
    """The payment split's trigger form (fresh ``Param`` objects: they are mutable)."""
    return {
        "since": since_param(),
        "order_ids": ids_param(
            "Only these orders", "Mirakl order ids to (re)process, one per line. Empty: all."
        ),
        "dry_run": dry_run_param(),
    }


def parse_run_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parse a run's params into a step's keyword arguments.

    Known names are checked and normalised (``since``/``until`` → aware datetimes, ``*_ids`` →
    de-duplicated lists, empty lists → ``None`` meaning "all", ``dry_run`` → bool); other params
    pass through unchanged. Raises :class:`ConfigurationError` naming the bad param.
    """
    parsed: dict[str, Any] = {}
    for name, value in params.items():
        if name in ("since", "until"):
            parsed[name] = _parse_since(value, name=name)
        elif name.endswith("_ids"):
            parsed[name] = _parse_order_ids(value, name=name) or None
        elif name == "dry_run":
            parsed[name] = _parse_dry_run(value)
        else:
            parsed[name] = value
    return parsed


def _parse_since(value: Any, *, name: str = "since") -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ConfigurationError(
                f"param '{name}': {value!r} is not an RFC 3339 date-time "
                "(e.g. 2026-03-01T00:00:00+00:00)"
            ) from None
    else:
        raise ConfigurationError(f"param '{name}': expected a date-time string, got {value!r}")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ConfigurationError(
            f"param '{name}': {value!r} has no time zone; add one (e.g. +00:00 or Z)"
        )
    return parsed


def _parse_order_ids(value: Any, *, name: str = "order_ids") -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence) or isinstance(value, bytes):
        raise ConfigurationError(f"param '{name}': expected a list of strings, got {value!r}")
    ids: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise ConfigurationError(f"param '{name}': {item!r} is not a string")
        item = item.strip()
        try:
            check_id_list_entry(item, field=f"param '{name}'")
        except InvalidItemError as exc:  # "A,B" would widen the run to A and B
            raise ConfigurationError(exc.reason) from None
        if name == "shop_ids" and item and not is_ascii_digits(item):
            raise ConfigurationError(f"param '{name}': {item!r} is not a Mirakl shop id")
        if item and item not in ids:
            ids.append(item)
    return ids


def _parse_dry_run(value: Any) -> bool:
    if value is None:  # the form's empty optional switch
        return False
    if isinstance(value, bool):
        return value
    raise ConfigurationError(f"param 'dry_run': expected true or false, got {value!r}")
