"""The console's answers: the JSON of its API (amounts in minor units with their currency, and
as a decimal string) and its CSV downloads, shared by the read routes and the action routes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from fastapi.responses import StreamingResponse

from mirakl_connector.console import html as pages
from mirakl_connector.console.actions import allowed_actions
from mirakl_connector.console.csv_export import amount_text
from mirakl_connector.ledger.manual_actions import ActionRecord
from mirakl_connector.ledger.queries import HistoryEvent, Item, MovedRow, ReasonGroup, aware_utc


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def moved_json(row: MovedRow) -> dict[str, Any]:
    return {
        "day": row.day.isoformat(),
        "currency": row.currency,
        "provider": row.provider,
        "workflow": row.workflow,
        "count": row.count,
        "amount_minor": row.amount,
        "amount": amount_text(row.amount, row.currency),
    }


def group_json(group: ReasonGroup, now: datetime) -> dict[str, Any]:
    return {
        "workflow": group.workflow,
        "reason": group.reason,
        "count": group.count,
        "oldest": group.oldest.isoformat(),
        "oldest_age_seconds": int((now - group.oldest).total_seconds()),
        "latest": group.latest.isoformat(),
    }


def item_json(item: Item) -> dict[str, Any]:
    return {
        "key": item.key,
        "entity": item.entity,
        "id": item.id,
        "provider": item.provider,
        "workflow": item.workflow,
        "mirakl_id": item.mirakl_id,
        "shop_id": item.shop_id,
        "account": item.account,
        "status": item.status,
        "reason": item.reason,
        "amount_minor": item.amount,
        "currency": item.currency,
        "amount": amount_text(item.amount, item.currency),
        "provider_object_id": item.provider_object_id,
        "attempts": item.attempts,
        "attempted_at": iso(item.attempted_at),
        "created_at": iso(item.created_at),
        "updated_at": iso(item.updated_at),
        "links": pages.provider_links(item),
    }


def event_json(event: HistoryEvent) -> dict[str, Any]:
    return {
        "old_status": event.old_status,
        "new_status": event.new_status,
        "reason": event.reason,
        "run_id": event.run_id,
        "at": event.at.isoformat(),
    }


def action_json(action: ActionRecord) -> dict[str, Any]:
    return {
        "id": action.id,
        "at": iso(aware_utc(action.at)),
        "user": action.user,
        "action": action.action,
        "entity": action.entity,
        "entity_id": action.entity_id,
        "item": action.item,
        "why": action.why,
        "result": action.result,
        "detail": action.detail,
    }


def item_detail_json(
    item: Item, history: list[HistoryEvent], audit: list[ActionRecord]
) -> dict[str, Any]:
    return {
        "item": item_json(item),
        "history": [event_json(h) for h in history],
        "actions": [action_json(a) for a in audit],
        "allowed_actions": allowed_actions(item),
    }


def csv_response(name: str, chunks: Iterator[str]) -> StreamingResponse:
    return StreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
