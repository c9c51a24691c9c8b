"""The console's CSV exports as text: cells made safe for spreadsheets, lines written fast.

An export of the lists can hold tens of thousands of rows and must be downloaded in well under a
second: ``csv.writer`` costs about 3.5 µs a line of 17 cells (it inspects every character), more
than the database spends reading the row. :func:`item_csv_chunks` writes a line as one
f-string instead, and hands it to ``csv.writer`` only when one of its cells holds a comma, a
quote or a line break: the output is byte for byte what ``csv.writer`` writes (minimal quoting,
CRLF line ends), which the tests check.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from mirakl_connector.core.money import from_minor

#: Columns of the items export.
ITEM_CSV_HEADER = (
    "entity", "id", "provider", "workflow", "mirakl_id", "shop_id", "account", "status",
    "reason", "amount_minor", "currency", "amount", "provider_object_id", "attempts",
    "attempted_at", "created_at", "updated_at",
)  # fmt: skip

#: Lines per piece of a streamed CSV answer.
CHUNK_LINES = 2000

_FORMULA_START = frozenset("=+-@\t\r")
_SEPARATORS = len(ITEM_CSV_HEADER) - 1


def neutralise(value: Any) -> Any:
    """Neutralise spreadsheet formulas: a provider's error text could start with ``=``."""
    if value and isinstance(value, str) and value[0] in _FORMULA_START:
        return "'" + value
    return value


def amount_text(amount: int | None, currency: str | None) -> str:
    """Minor units as a decimal string (``Decimal``, never float); '' when unknown."""
    if amount is None or not currency:
        return ""
    try:
        return str(from_minor(amount, currency))
    except Exception:  # noqa: BLE001 - an unknown currency code: show the minor units
        return str(amount)


def item_cells(row: Sequence[Any]) -> tuple[Any, ...]:
    """The cells of one item row (columns of ``ConsoleQueries._select_items``, timestamps as
    text). Cells that come from outside (ids, reasons, codes) are neutralised; the entity,
    provider, workflow, numbers and timestamps are ours."""
    (entity, row_id, provider, workflow, mirakl_id, shop_id, account, status, reason, amount,
     currency, object_id, attempts, attempted_at, created_at, updated_at) = row  # fmt: skip
    return (
        entity, row_id, provider, workflow, neutralise(mirakl_id), shop_id, neutralise(account),
        neutralise(status), neutralise(reason), amount, neutralise(currency),
        amount_text(amount, currency), neutralise(object_id), attempts or 0,
        attempted_at, created_at, updated_at,
    )  # fmt: skip


def item_csv_chunks(rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """The items export (header first), :data:`CHUNK_LINES` lines a piece."""
    spare = io.StringIO()
    writer = csv.writer(spare)  # for the lines that need quoting, and the reference
    writer.writerow(ITEM_CSV_HEADER)
    lines = [spare.getvalue()]
    start = _FORMULA_START
    for row in rows:
        (entity, row_id, provider, workflow, mirakl_id, shop_id, account, status, reason,
         amount, currency, object_id, attempts, attempted_at, created_at,
         updated_at) = row  # fmt: skip
        # the text cells from outside, neutralised inline (as ``neutralise``: the same rule)
        if mirakl_id and mirakl_id[0] in start:
            mirakl_id = "'" + mirakl_id
        if account and account[0] in start:
            account = "'" + account
        if reason and reason[0] in start:
            reason = "'" + reason
        if object_id and object_id[0] in start:
            object_id = "'" + object_id
        if status and status[0] in start:
            status = "'" + status
        shown_currency = "'" + currency if currency and currency[0] in start else currency
        line = (
            f"{entity},{row_id},{provider},{workflow},{mirakl_id},"
            f"{'' if shop_id is None else shop_id},{account or ''},{status},{reason or ''},"
            f"{'' if amount is None else amount},{shown_currency or ''},"
            f"{amount_text(amount, currency)},{object_id or ''},{attempts or 0},"
            f"{attempted_at or ''},{created_at},{updated_at}\r\n"
        )
        # no cell to quote: as many commas as cells apart, no quote, one line break at the end
        if (
            line.count(",") != _SEPARATORS
            or '"' in line
            or line.count("\n") != 1
            or line.count("\r") != 1
        ):
            spare.seek(0)
            spare.truncate()
            writer.writerow(item_cells(row))
            line = spare.getvalue()
        lines.append(line)
        if len(lines) >= CHUNK_LINES:
            yield "".join(lines)
            lines = []
    if lines:
        yield "".join(lines)


def csv_chunks(header: Sequence[str], lines: Iterable[Sequence[Any]]) -> Iterator[str]:
    """A small export through ``csv.writer``; cells must be neutralised already (``None`` is
    written as an empty cell)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for n, line in enumerate(lines, start=1):
        writer.writerow(line)
        if n % CHUNK_LINES == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
