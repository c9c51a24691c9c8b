"""Server-rendered HTML of the console's Reconciliation page (self-contained, every value escaped).

Top to bottom: the filter form; the last days at a glance (reconciliations, matched,
mismatches, each day a link); the reconciliations of the filter (each run or day: whether it
reconciles, its counts, the calls it read with); the items, mismatches first, each linked to its
ledger row's history and to the provider's dashboard where the id allows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import quote

from mirakl_connector.console.html import (
    STRIPE_DASHBOARD,
    _document,
    _maybe_link,
    _pager,
    _url,
)
from mirakl_connector.console.reconciliation import (
    KINDS,
    MISMATCHES,
    SCOPES,
    DayTotal,
    Filters,
    ItemPage,
    ReconciliationRun,
)
from mirakl_connector.reconciliation.flows import FLOWS

Decimal = Callable[[int | None, str | None], str]


@dataclass(frozen=True)
class ReconciliationPage:
    filters: Filters
    days: list[DayTotal]
    runs: list[ReconciliationRun]
    items: ItemPage


def render(data: ReconciliationPage, base: str, query: dict[str, str], decimal: Decimal) -> str:
    f = data.filters
    if f.run_id:
        title = f"Reconciliation of run {f.run_id}"
    else:
        title = f"Reconciliation of {f.day.isoformat() if f.day else 'every day'}"
    verdict = _verdict(data.runs)
    parts = [
        f'<p><a href="{escape(base)}/">← Payments</a></p>',
        f"<h1>{escape(title)}</h1>",
        '<p class="muted">Ledger ↔ provider (Stripe, Hyperwallet) ↔ Mirakl, as the '
        "<code>reconcile</code> task of each money-moving DAG and the "
        "<code>payments_reconciliation</code> DAG recorded it; times in UTC. Read-only.</p>",
        _form(f, base),
        f"<p><b>{escape(verdict)}</b></p>",
        "<h2>Last days</h2>",
        _days(data.days, base),
        "<h2>Reconciliations</h2>",
        _runs(data.runs, base),
        _items(data.items, f, base, query, decimal),
    ]
    return _document(title, "".join(parts))


def _verdict(runs: list[ReconciliationRun]) -> str:
    if not runs:
        return "Nothing reconciled for this filter yet."
    bad = [r for r in runs if not r.reconciles]
    if not bad:
        return f"Reconciles: {len(runs)} reconciliation(s), every item matched."
    mismatches = sum(r.mismatched for r in bad)
    return (
        f"Does not reconcile: {mismatches} mismatch(es) in {len(bad)} of {len(runs)} "
        "reconciliation(s)."
    )


def _form(f: Filters, base: str) -> str:
    def select_of(name: str, values: tuple[str, ...], current: str | None, empty: str) -> str:
        options = [f'<option value="">{escape(empty)}</option>'] if empty else []
        options += [
            f'<option value="{escape(v)}"{" selected" if v == current else ""}>{escape(v)}</option>'
            for v in values
        ]
        return f'<select name="{name}">{"".join(options)}</select>'

    day = f.day.isoformat() if f.day else ""
    return (
        f'<form method="get" action="{escape(base)}/reconciliation">'
        f'<label>Day <input type="date" name="day" value="{escape(day)}"></label>'
        f'<label>Run <input type="text" name="run" value="{escape(f.run_id or "")}" '
        'size="28"></label>'
        f"<label>Workflow {select_of('flow', FLOWS, f.flow, 'any')}</label>"
        f"<label>Scope {select_of('scope', SCOPES, f.scope, 'any')}</label>"
        f"<label>Items {select_of('kind', (MISMATCHES, 'all', *KINDS), f.kind, '')}</label>"
        '<button type="submit">Show</button></form>'
    )


def _days(days: list[DayTotal], base: str) -> str:
    if not days:
        return '<p class="muted">No reconciliation in the last days.</p>'
    rows = "".join(
        f'<tr><td><a href="{escape(_url(base, "/reconciliation", {"day": d.day}))}">'
        f'{escape(d.day)}</a></td><td class="num">{d.reconciliations}</td>'
        f'<td class="num">{d.matched}</td><td class="num">{d.mismatched}</td>'
        f"<td>{'yes' if d.mismatched == 0 else '<b>no</b>'}</td></tr>"
        for d in days
    )
    return (
        "<table><tr><th>Day</th><th>Reconciliations</th><th>Matched</th><th>Mismatches</th>"
        f"<th>Reconciles</th></tr>{rows}</table>"
    )


def _runs(runs: list[ReconciliationRun], base: str) -> str:
    if not runs:
        return '<p class="muted">None.</p>'
    rows = []
    for r in runs:
        if r.run_id:
            target = _url(base, "/reconciliation", {"run": r.run_id, "flow": r.flow})
            scope = f'run <a href="{escape(target)}">{escape(r.run_id)}</a>'
            items = _url(base, "/", {"run": r.run_id, "category": "all"})
            scope += f' (<a href="{escape(items)}">its items</a>)'
        else:
            target = _url(base, "/reconciliation", {"day": r.day, "scope": "day"})
            scope = f'day <a href="{escape(target)}">{escape(r.day)}</a>'
        window = ""
        if r.window_start and r.window_end:
            window = (
                f"{r.window_start.strftime('%Y-%m-%d %H:%M')} → "
                f"{r.window_end.strftime('%Y-%m-%d %H:%M')}"
            )
        rows.append(
            f"<tr><td>{escape(r.flow)}</td><td>{scope}</td>"
            f"<td>{r.reconciled_at.strftime('%Y-%m-%d %H:%M:%S')}</td>"
            f"<td>{'yes' if r.reconciles else '<b>no</b>'}</td>"
            f'<td class="num">{r.matched}</td><td class="num">{r.mismatched}</td>'
            f'<td class="num">{r.provider_calls} / {r.mirakl_calls}</td>'
            f"<td>{escape(window)}</td><td>{escape(r.headline)}</td></tr>"
        )
    return (
        "<table><tr><th>Workflow</th><th>Of</th><th>Reconciled at</th><th>Reconciles</th>"
        "<th>Matched</th><th>Mismatches</th><th>Calls (provider / Mirakl)</th>"
        f"<th>Provider window</th><th>Summary</th></tr>{''.join(rows)}</table>"
    )


def _items(page: ItemPage, f: Filters, base: str, query: dict[str, str], decimal: Decimal) -> str:
    what = {"all": "Every item", MISMATCHES: "Mismatches"}.get(f.kind, f.kind)
    export = _url(
        base,
        "/export/reconciliation.csv",
        {k: v for k, v in query.items() if k not in ("page", "size")},
    )
    head = (
        f"<h2>{escape(what)}</h2><p>{page.total} items, page {page.page} of {page.pages}. "
        f'<a href="{escape(export)}">Export CSV</a></p>'
    )
    if not page.items:
        return head + '<p class="muted">No item matches.</p>'
    rows = "".join(_item_row(i, base, decimal) for i in page.items)
    nav = _pager(base, "/reconciliation", query, page.page, page.pages)
    return (
        head + "<table><tr><th>Kind</th><th>Workflow</th><th>Item</th><th>Mirakl id</th>"
        "<th>Provider object</th><th>Ledger</th><th>Provider</th><th>Mirakl</th><th>Reason</th>"
        f"</tr>{rows}</table><p>{nav}</p>"
    )


def _item_row(row: dict[str, Any], base: str, decimal: Decimal) -> str:
    cur = row["currency"]

    def amount(value: int | None) -> str:
        shown = decimal(value, cur)
        return escape(f"{shown} {cur}" if shown and cur else shown)

    item = escape(row["item"])
    if row["entity"] and row["row_id"] is not None:
        target = f"{base}/items/{quote(row['entity'])}/{int(row['row_id'])}"
        item = f'<a href="{escape(target)}">{item}</a>'
    obj = row["provider_object_id"] or ""
    link = None
    if row["provider"] == "stripe":
        for prefix, path in (("tr_", "transfers"), ("po_", "payouts"), ("re_", "refunds")):
            if obj.startswith(prefix):
                link = f"{STRIPE_DASHBOARD}/{path}/{quote(obj)}"
    provider = amount(row["provider_amount"])
    if row["provider_amount_raw"]:
        provider += f' <span class="muted">({escape(row["provider_amount_raw"])} as sent)</span>'
    kind = escape(row["kind"])
    if row["kind"] != "MATCHED":
        kind = f"<b>{kind}</b>"
    return (
        f"<tr><td>{kind}</td><td>{escape(row['flow'])}</td><td>{item}</td>"
        f"<td>{escape(row['mirakl_id'] or '')}</td><td>{_maybe_link(obj, link)}</td>"
        f'<td class="num">{amount(row["ledger_amount"])}</td>'
        f'<td class="num">{provider}</td><td class="num">{amount(row["mirakl_amount"])}</td>'
        f"<td>{escape(row['reason'])}</td></tr>"
    )
