"""What Mirakl's S07 (update shops) answered, shop by shop.

Both providers' onboarding write the account id back to Mirakl with S07, and both must learn
which shops Mirakl did not update: S07 answers 200 with a ``shop_returns`` entry per shop, some
of them errors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def shop_errors(shop_ids: Sequence[int], returns: Sequence[Mapping[str, Any]]) -> dict[int, str]:
    """The reason of every shop of an S07 call that it did not update.

    ``returns`` is S07's ``shop_returns`` (same order as the request); a shop that has neither a
    ``shop_updated`` nor a ``shop_error`` entry is reported too: nothing may be assumed done.
    """
    updated: set[int] = set()
    errors: dict[int, str] = {}
    for position, entry in enumerate(returns):
        if not isinstance(entry, Mapping):
            continue
        if "shop_error" in entry:
            error = entry.get("shop_error") or {}
            shop_id = _int((error.get("input") or {}).get("shop_id"))
            if shop_id is None and position < len(shop_ids):
                shop_id = shop_ids[position]
            messages = [
                str(e.get("message") or e.get("code") or e)
                for e in error.get("errors") or []
                if isinstance(e, Mapping)
            ]
            if shop_id is not None:
                detail = "; ".join(messages) or "no detail"
                errors[shop_id] = f"Mirakl refused the S07 update: {detail}"
        elif "shop_updated" in entry:
            shop_id = _int((entry.get("shop_updated") or {}).get("shop_id"))
            if shop_id is None and position < len(shop_ids):
                shop_id = shop_ids[position]
            if shop_id is not None:
                updated.add(shop_id)
    for shop_id in shop_ids:
        if shop_id not in updated and shop_id not in errors:
            errors[shop_id] = "Mirakl did not confirm the S07 update"
    return errors


def _int(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None
