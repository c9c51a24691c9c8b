"""Wake the event processing DAG when the ledger's inbox has something to do (AssetWatcher).

Edge-triggered, as the Airflow 3.3 verification showed necessary: the trigger fires when an
event *newer* than the last one it signalled is waiting (the highest inbox id grows), not "while
events are waiting" (that fired up to five runs per webhook). The watermark is kept in the asset
state store when the triggerer provides one (survives a triggerer restart), else in memory.
``rearm_after`` fires again when events are *still* waiting that long after the last fire (a
failed run, a retry whose back-off came due), so nothing waits forever and nothing loops.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from mirakl_connector.airflow.triggers._sync import off_loop


def _pending(ledger_conn_id: str, source: str | None) -> tuple[int, int]:
    from mirakl_connector.airflow.hooks.ledger import LedgerHook

    ledger = _LEDGERS.get(ledger_conn_id)
    if ledger is None:
        ledger = _LEDGERS[ledger_conn_id] = LedgerHook(ledger_conn_id).get_ledger()
    return ledger.inbox_pending(source=source)


_LEDGERS: dict[str, Any] = {}


class InboxTrigger(BaseEventTrigger):
    """Fire when new inbox events wait (see the module docstring).

    :param ledger_conn_id: the ledger connection.
    :param source: only events of this source (``stripe``), or all.
    :param poll_interval: seconds between two looks at the inbox.
    :param rearm_after: seconds after which still-waiting events fire again (0: never).
    """

    WATERMARK_KEY = "inbox_watermark"

    def __init__(
        self,
        ledger_conn_id: str = "mirakl_connector_db",
        source: str | None = "stripe",
        poll_interval: float = 5.0,
        rearm_after: float = 300.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.ledger_conn_id = ledger_conn_id
        self.source = source
        self.poll_interval = poll_interval
        self.rearm_after = rearm_after

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "ledger_conn_id": self.ledger_conn_id,
                "source": self.source,
                "poll_interval": self.poll_interval,
                "rearm_after": self.rearm_after,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        watermark = await self._load_watermark()
        last_fire = float("-inf")
        while True:
            count, highest = await off_loop(_pending, self.ledger_conn_id, self.source)
            if count:
                new = highest > watermark
                rearm = bool(self.rearm_after) and time.monotonic() - last_fire >= self.rearm_after
                if new or rearm:
                    if new:
                        watermark = highest
                        await self._save_watermark(watermark)
                    last_fire = time.monotonic()
                    self.log.info(
                        "inbox: %d waiting (highest id %d): waking the DAG", count, highest
                    )
                    yield TriggerEvent({"waiting": count, "highest_id": highest})
            await asyncio.sleep(self.poll_interval)

    async def _load_watermark(self) -> int:
        store = getattr(self, "asset_state_store", None)
        if store is not None:
            try:
                return int(await store.aget(self.WATERMARK_KEY, 0) or 0)
            except Exception:  # noqa: BLE001 - fall back to memory; worst case one extra run
                self.log.warning("asset state store unavailable; watermark kept in memory")
        return 0

    async def _save_watermark(self, value: int) -> None:
        store = getattr(self, "asset_state_store", None)
        if store is not None:
            try:
                await store.aset(self.WATERMARK_KEY, value)
            except Exception:  # noqa: BLE001
                self.log.warning("could not persist the inbox watermark")
