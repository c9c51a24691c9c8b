"""Poll a Stripe list (charges, refunds, events) for objects newer than a cursor.

The cursor is ``{"created": <unix seconds>, "ids": [ids seen at that second]}``: Stripe's
``created`` has one-second resolution, so objects of the cursor's own second are told apart by id.
Each poll lists ``created >= cursor`` page by page (``starting_after``) and fires once, with every
new object and the advanced cursor, as soon as there is one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from mirakl_connector.airflow.triggers._sync import off_loop


def new_objects(
    objects: Iterable[Mapping[str, Any]], cursor: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Objects after ``cursor`` (oldest first) and the cursor after them (pure)."""
    since = int(cursor.get("created") or 0)
    seen = set(cursor.get("ids") or ())
    fresh = [
        dict(o)
        for o in objects
        if int(o.get("created") or 0) > since
        or (int(o.get("created") or 0) == since and o.get("id") not in seen)
    ]
    fresh.sort(key=lambda o: (int(o.get("created") or 0), str(o.get("id"))))
    if not fresh:
        return [], {"created": since, "ids": sorted(seen)}
    newest = int(fresh[-1]["created"])
    ids = {str(o["id"]) for o in fresh if int(o["created"]) == newest}
    if newest == since:
        ids |= seen
    return fresh, {"created": newest, "ids": sorted(ids)}


def list_new(
    stripe_conn_id: str, resource: str, cursor: Mapping[str, Any], types: list[str] | None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One poll: list the resource since the cursor and keep what is new (blocking)."""
    from mirakl_connector.airflow.hooks.stripe import StripeHook

    gateway = StripeHook(stripe_conn_id).get_gateway()
    listed = gateway.list_created_since(
        resource, created_gte=int(cursor.get("created") or 0), types=types
    )
    return new_objects(listed, cursor)


class StripeNewObjectsTrigger(BaseTrigger):
    """Fire with the objects of ``resource`` created after ``cursor``.

    :param resource: ``charges``, ``refunds`` or ``events``.
    :param cursor: see the module docstring.
    :param types: event types (``events`` only).
    :param poll_interval: seconds between polls (the generic sensors' "polling frequency").
    """

    def __init__(
        self,
        *,
        stripe_conn_id: str,
        resource: str,
        cursor: dict[str, Any],
        types: list[str] | None = None,
        poll_interval: float = 15.0,
    ) -> None:
        super().__init__()
        self.stripe_conn_id = stripe_conn_id
        self.resource = resource
        self.cursor = dict(cursor)
        self.types = list(types) if types else None
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "stripe_conn_id": self.stripe_conn_id,
                "resource": self.resource,
                "cursor": self.cursor,
                "types": self.types,
                "poll_interval": self.poll_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            try:
                found, cursor = await off_loop(
                    list_new, self.stripe_conn_id, self.resource, self.cursor, self.types
                )
            except Exception as exc:  # noqa: BLE001 - reported to the sensor, which fails the task
                yield TriggerEvent({"status": "error", "message": str(exc)})
                return
            if found:
                yield TriggerEvent({"status": "success", "objects": found, "cursor": cursor})
                return
            await asyncio.sleep(self.poll_interval)
