"""Reading typed values out of a connection's ``extra`` JSON.

The UI may store custom fields as ``extra__<conn_type>__<name>`` (older forms) or as plain
``<name>``; both are accepted, plain first. A value that cannot be coerced is a configuration error
naming the connection and the field, never silently replaced by the default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from mirakl_connector.core.errors import ConfigurationError

T = TypeVar("T")


def extra_value(
    extra: Mapping[str, Any],
    name: str,
    *,
    conn_type: str,
    conn_id: str,
    default: T,
    cast: Callable[[Any], T],
) -> T:
    """Return ``extra[name]`` coerced with ``cast``, or ``default`` when absent or empty."""
    value = extra.get(name)
    if value in (None, ""):
        value = extra.get(f"extra__{conn_type}__{name}")
    if value in (None, ""):
        return default
    try:
        return cast(value)
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"connection {conn_id!r}: extra {name!r} must be a {cast.__name__}, got {value!r}"
        ) from None


def base_url_from(host: str | None, port: int | None, *, default_scheme: str = "https") -> str:
    """Build a base URL from the connection's host (which may already carry a scheme) and port."""
    host = (host or "").strip().rstrip("/")
    if not host:
        return ""
    if "://" not in host:
        host = f"{default_scheme}://{host}"
    if port and not _has_port(host):
        # after the host, before any path (``https://x.mirakl.net/api`` + 443)
        scheme, rest = host.split("://", 1)
        netloc, slash, path = rest.partition("/")
        host = f"{scheme}://{netloc}:{port}{slash}{path}"
    return host


def _has_port(url: str) -> bool:
    netloc = url.split("://", 1)[1].split("/", 1)[0]
    return ":" in netloc.rsplit("]", 1)[-1]
