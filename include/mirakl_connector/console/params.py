"""The console's query parameters, read and checked (a bad one is a 400 naming what is wrong),
as the page, the JSON API and the CSV exports all take them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from fastapi import HTTPException, Request

from mirakl_connector.ledger.queries import (
    CATEGORIES,
    DEFAULT_DAYS,
    PROVIDERS,
    WORKFLOWS,
    Category,
    DateRange,
    ItemFilters,
)


def parse_period(start: str | None, end: str | None) -> DateRange:
    try:
        if not start and not end:
            return DateRange.last_days(DEFAULT_DAYS)
        end_day = date.fromisoformat(end) if end else datetime.now(UTC).date()
        start_day = date.fromisoformat(start) if start else end_day
        return DateRange(start_day, end_day)
    except ValueError as exc:
        raise HTTPException(400, f"bad date range: {exc}") from exc


def parse_category(value: str) -> Category | None:
    """One of :data:`CATEGORIES`, or ``all`` (``None``: every item, whatever its state)."""
    if value == "all":
        return None
    if value not in CATEGORIES:
        raise HTTPException(400, f"category must be all or one of {', '.join(CATEGORIES)}")
    return value  # type: ignore[return-value]


def parse_filters(
    status: str | None,
    workflow: str | None,
    currency: str | None,
    shop: str | None,
    text_id: str | None,
    provider: str | None,
    run_id: str | None,
) -> ItemFilters:
    if workflow and workflow not in WORKFLOWS:
        raise HTTPException(400, f"workflow must be one of {', '.join(WORKFLOWS)}")
    if provider and provider not in PROVIDERS:
        raise HTTPException(400, f"provider must be one of {', '.join(PROVIDERS)}")
    shop_id = None
    if shop:
        try:
            shop_id = int(shop)
        except ValueError:
            raise HTTPException(400, "shop must be a Mirakl shop id (a number)") from None
    return ItemFilters(
        status=status or None,
        workflow=workflow or None,
        currency=currency.strip().upper() if currency and currency.strip() else None,
        shop_id=shop_id,
        text_id=text_id.strip() if text_id and text_id.strip() else None,
        provider=provider or None,
        run_id=run_id.strip() if run_id and run_id.strip() else None,
    )


def base(request: Request) -> str:
    """The path the app is mounted at (``/mirakl-connector-console`` on the API server)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


@dataclass(frozen=True)
class ItemParams:
    """The item filters' query parameters as given (a FastAPI dependency: ``Depends(ItemParams)``).

    The page, ``/api/items`` and ``/export/items.csv`` take the same filters; each route checks
    them (:meth:`filters`) where it always did, after the parameters it reads first.
    """

    status: str | None = None
    workflow: str | None = None
    currency: str | None = None
    provider: str | None = None
    shop: str | None = None
    id: str | None = None  # noqa: A003 - the text id filter, as the page names it
    run: str | None = None

    def filters(self) -> ItemFilters:
        return parse_filters(
            self.status, self.workflow, self.currency, self.shop, self.id, self.provider, self.run
        )


@dataclass(frozen=True)
class MovedParams:
    """The money-moved query parameters as given (a FastAPI dependency: ``Depends(MovedParams)``),
    as ``/api/moved`` and ``/export/moved.csv`` take them."""

    start: str | None = None
    end: str | None = None
    currency: str | None = None
    provider: str | None = None
    workflow: str | None = None

    def period(self) -> DateRange:
        return parse_period(self.start, self.end)

    def filters(self) -> ItemFilters:
        return parse_filters(None, self.workflow, self.currency, None, None, self.provider, None)
