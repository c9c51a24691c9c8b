"""Lenient ISO-8601 parsing for Mirakl query parameters and payload dates.

Clients send dates in several shapes: ``Z``, ``+01:00``, ``+0100``, with or without milliseconds,
and a ``+`` that was not URL-encoded arrives as a space. Mirakl accepts them all, so must we.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_COMPACT_OFFSET = re.compile(r"([+-])(\d{2})(\d{2})$")
_SPACE_OFFSET = re.compile(r" (\d{2}:?\d{2})$")


class DateParseError(ValueError):
    """A value that is not an ISO-8601 date or date-time."""


def parse_iso(value: str) -> datetime:
    """Parse ``value`` into an aware datetime (naive values are taken as UTC).

    :raises DateParseError: when the text is not a date we can read.
    """
    if not isinstance(value, str) or not value.strip():
        raise DateParseError(f"not a date: {value!r}")
    try:  # fast path: Python 3.11 reads "Z", "+01:00", "+0100" and fractions itself
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is not None:
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    text = value.strip()
    text = _SPACE_OFFSET.sub(r"+\1", text)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    text = _COMPACT_OFFSET.sub(r"\1\2:\3", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise DateParseError(f"not an ISO-8601 date: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def to_timestamp(value: str) -> float:
    """Unix seconds of an ISO-8601 text."""
    return parse_iso(value).timestamp()


def format_iso(timestamp: float) -> str:
    """Format Unix seconds the way Mirakl emits dates: ``2026-11-22T10:00:00Z`` (UTC)."""
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
