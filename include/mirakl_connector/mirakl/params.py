"""The query parameters of Mirakl list calls: dates as Mirakl reads them, id filters in chunks.

Id filters are sent in chunks of :data:`ID_CHUNK_SIZE` (100, the most Mirakl accepts in one
request), comma-separated (OR11, S20) or as a repeated key (``order_id=A&order_id=B``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from mirakl_connector.core.batch import chunked

# The client's logger: what these helpers warn about was always logged under the client.
log = logging.getLogger("mirakl_connector.mirakl.client")

ID_CHUNK_SIZE = 100  # Mirakl answers 400 past 100 ids in one filter (connector issue #89)

DateFilter = str | datetime | None


def format_date(value: str | datetime) -> str:
    """A date for Mirakl: the instant in UTC with ``Z`` (``2023-04-18T12:41:42Z``).

    As the Mirakl Java SDK sends it (``Instant.toString()``, e.g. the Hyperwallet connector's
    ``updated_since=2023-04-18T12:41:42Z`` in its delta jobs, hmc-jobsystem):
    no ``+00:00`` offset, whose ``+`` a careless proxy or client turns into a space.
    Milliseconds are kept when present (microseconds when finer). A string with an offset (a
    checkpoint Mirakl returned) is converted the same way; one without an offset, or that is not
    a date-time, is sent verbatim (its zone is not ours to guess).
    """
    if isinstance(value, str):
        parsed = aware_instant(value)
        if parsed is None:
            return value
        value = parsed
    if not isinstance(value, datetime):
        raise TypeError(f"expected str or datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"datetime {value.isoformat()} has no timezone; Mirakl needs an offset")
    utc = value.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        micros = f"{utc.microsecond:06d}"
        text += "." + (micros[:3] if utc.microsecond % 1000 == 0 else micros)
    return text + "Z"


def aware_instant(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None and parsed.utcoffset() is not None else None


def date_params(**dates: DateFilter) -> dict[str, Any]:
    return {name: format_date(value) for name, value in dates.items() if value is not None}


def unique(ids: Iterable[Any]) -> list[str]:
    """Ids as strings, duplicates removed, first-seen order kept."""
    return list(dict.fromkeys(str(i) for i in ids))


def id_chunks(**filters: Iterable[Any] | None) -> Iterator[tuple[str, list[str]]] | None:
    """The (param name, ids chunk) pairs of the one id filter given, or None without filter."""
    given = {name: ids for name, ids in filters.items() if ids is not None}
    if not given:
        return None
    if len(given) > 1:
        raise ValueError(f"filter by one of {sorted(given)} at a time")
    [(name, ids)] = given.items()
    if isinstance(ids, str):
        raise TypeError(f"{name} must be a collection of ids, not a string")
    return ((name, chunk) for chunk in chunked(unique(ids), ID_CHUNK_SIZE))


def csv_id_filters(**filters: Iterable[Any] | None) -> Iterator[dict[str, Any]]:
    """Query params per request for comma-separated id filters (OR11, S20)."""
    pairs = id_chunks(**filters)
    if pairs is None:
        yield {}
        return
    for name, chunk in pairs:
        # An id holding a comma cannot be asked for in a comma-separated list: "A,B" would ask
        # for orders A and B. It is left out (the caller reports it as not returned), and a
        # chunk left empty is not sent at all: an empty filter would mean "every order".
        safe = [i for i in chunk if "," not in i]
        if len(safe) < len(chunk):
            log.warning("%s: ids with a comma left out: %s", name, [i for i in chunk if "," in i])
        if safe:
            yield {name: ",".join(safe)}


def repeated_id_filters(**filters: Iterable[Any] | None) -> Iterator[dict[str, Any]]:
    """Query params per request for repeated-key id filters (``order_id=A&order_id=B``)."""
    pairs = id_chunks(**filters)
    if pairs is None:
        yield {}
        return
    for name, chunk in pairs:
        yield {name: chunk}  # requests repeats the key for a list value, without brackets
