"""Decode Stripe's form encoding (``metadata[k]=v``, ``expand[]=x``, ``items[0][a]=b``) into dicts.

The Stripe SDK sends v1 bodies as ``application/x-www-form-urlencoded`` and list queries with the
same bracket nesting (``created[gte]=...``), so the simulator needs one decoder for both.
Numeric indexes and empty brackets build lists; every leaf stays a string, as on the wire, and the
endpoint decides how to coerce it.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

_KEY_PART = re.compile(r"\[([^\]]*)\]")


def split_key(key: str) -> list[str]:
    """Split ``a[b][0][]`` into ``["a", "b", "0", ""]``."""
    head, _, rest = key.partition("[")
    if not rest:
        return [key]
    return [head, *_KEY_PART.findall("[" + rest)]


def decode_pairs(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Turn ordered ``(key, value)`` pairs into a nested structure."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = split_key(key)
        _assign(root, parts, value)
    return _listify(root)


def decode_form(body: str | bytes) -> dict[str, Any]:
    """Decode a form-encoded body or query string."""
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    return decode_pairs(parse_qsl(body, keep_blank_values=True))


def _assign(node: dict[str, Any], parts: list[str], value: str) -> None:
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "":
            # ``a[]=x``: append; represented as a dict with a fresh integer key, listified later.
            part = str(_next_index(node))
        if last:
            node[part] = value
            return
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child


def _next_index(node: dict[str, Any]) -> int:
    numeric = [int(k) for k in node if k.isdigit()]
    return max(numeric) + 1 if numeric else 0


def _listify(node: Any) -> Any:
    """Dicts whose keys are all integers become lists (in index order)."""
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted
