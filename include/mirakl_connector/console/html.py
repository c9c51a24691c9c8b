"""Server-rendered HTML of the payments console: tables and inline SVG bar charts.

Self-contained: no script, no stylesheet or font fetched from anywhere (the page is shown inside
the Airflow UI, possibly without internet access). Every value from the ledger is escaped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import date, datetime
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from mirakl_connector.console.actions import allowed_actions
from mirakl_connector.core.money import from_minor
from mirakl_connector.ledger.manual_actions import ActionRecord
from mirakl_connector.ledger.manual_rules import WHY_MAX
from mirakl_connector.ledger.queries import (
    CATEGORIES,
    PROVIDERS,
    WORKFLOWS,
    Category,
    DateRange,
    HistoryEvent,
    Item,
    ItemFilters,
    MovedRow,
    Page,
    ReasonGroup,
    totals,
)

STRIPE_DASHBOARD = "https://dashboard.stripe.com"

CATEGORY_TITLES = {
    "waiting": "What waits (on hold)",
    "failed": "What failed",
    "in_doubt": "What is in doubt (sent, answer unknown)",
}

#: Charts drawn at most (one per currency, the largest first); the table always has them all.
MAX_CHARTS = 6

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:16px;color:#1a202c}
h1{font-size:1.4em;margin:0 0 8px}h2{font-size:1.15em;margin:24px 0 8px}
table{border-collapse:collapse;margin:4px 0 12px;font-size:.9em}
th,td{border:1px solid #cbd5e0;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#edf2f7}td.num{text-align:right;font-variant-numeric:tabular-nums}
form{margin:6px 0}label{margin-right:10px}input,select{font-size:.9em}
.charts{display:flex;flex-wrap:wrap;gap:16px}.chart{border:1px solid #e2e8f0;padding:6px}
.muted{color:#718096}.tabs a{margin-right:12px}.tabs a.on{font-weight:bold}
form.action{border:1px solid #e2e8f0;padding:6px;margin:6px 0;max-width:60em}
.refused{color:#9b2c2c;font-weight:bold}.done{color:#276749;font-weight:bold}
svg text{font-size:10px;fill:#4a5568}
"""


@dataclass(frozen=True)
class PageData:
    period: DateRange
    moved: list[MovedRow]
    summaries: dict[Category, list[ReasonGroup]]
    category: Category | None  # None: every item (e.g. those of one run)
    filters: ItemFilters
    items: Page
    now: datetime
    #: rows imported at cutover in the range (they moved at the incumbent), by import day
    imported: list[MovedRow] = dataclass_field(default_factory=list)
    #: the newest console actions
    recent_actions: list[ActionRecord] = dataclass_field(default_factory=list)
    #: the console takes actions (the shop mapping form is shown)
    actions: bool = False
    #: the "Awaiting approval" section, rendered by :mod:`.approvals` ('' without approvals)
    approvals: str = ""


def money(amount: int | None, currency: str | None) -> str:
    """``12.34 EUR`` from minor units (the currency's own exponent; Decimal, never float)."""
    if amount is None:
        return ""
    if not currency:
        return str(amount)
    try:
        return f"{from_minor(amount, currency)} {currency}"
    except Exception:  # noqa: BLE001 - unknown code: the raw minor units
        return f"{amount} (minor units) {currency}"


def provider_links(item: Item) -> dict[str, str]:
    """Stripe dashboard links of an item's objects, where their ids are known."""
    links: dict[str, str] = {}
    if item.provider != "stripe":
        return links
    if item.account and item.account.startswith("acct_"):
        links["account"] = f"{STRIPE_DASHBOARD}/connect/accounts/{quote(item.account)}"
    obj = item.provider_object_id or ""
    for prefix, path in (("tr_", "transfers"), ("po_", "payouts"), ("re_", "refunds")):
        if obj.startswith(prefix):
            links["object"] = f"{STRIPE_DASHBOARD}/{path}/{quote(obj)}"
    return links


def age(since: datetime, now: datetime) -> str:
    seconds = max(0, int((now - since).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {rest // 60} min"
    return f"{rest // 60} min"


# -- the page -------------------------------------------------------------------------------


def render_page(data: PageData, base: str, query: dict[str, str]) -> str:
    parts = [
        "<h1>Payments</h1>",
        "<p class=\"muted\">From the connector's ledger; times in UTC. Actions (on each item's "
        "page, and the shop mapping below) need a reason and are recorded.</p>"
        if data.actions
        else '<p class="muted">From the connector\'s ledger; times in UTC. Read-only.</p>',
        _reconciliation_link(data, base),
        _filter_form(data, base),
        f"<h2>Money moved {data.period.start.isoformat()} to {data.period.end.isoformat()}</h2>",
        _moved_section(data, base, query),
        "<h2>Overview</h2>",
        _summaries(data),
        data.approvals,
        _items_section(data, base, query),
        render_actions_section(data.recent_actions, base, actions=data.actions),
    ]
    return _document("Payments", "".join(parts))


def _reconciliation_link(data: PageData, base: str) -> str:
    """Link to the Reconciliation section (of the run shown, when the page is one run's)."""
    run = data.filters.run_id
    target = _url(base, "/reconciliation", {"run": run} if run else {})
    label = f"Reconciliation of run {run}" if run else "Reconciliation (per run and per day)"
    return f'<p><a href="{escape(target)}">{escape(label)}</a></p>'


def _filter_form(data: PageData, base: str) -> str:
    f = data.filters

    def select_of(name: str, values: tuple[str, ...], current: str | None) -> str:
        options = ['<option value="">any</option>'] + [
            f'<option value="{escape(v)}"{" selected" if v == current else ""}>{escape(v)}</option>'
            for v in values
        ]
        return f'<select name="{name}">{"".join(options)}</select>'

    def field(name: str, value: Any, size: int = 10, kind: str = "text") -> str:
        shown = "" if value is None else escape(str(value))
        return f'<input type="{kind}" name="{name}" value="{shown}" size="{size}">'

    return (
        f'<form method="get" action="{escape(base)}/">'
        f"<label>From {field('start', data.period.start.isoformat(), kind='date')}</label>"
        f"<label>to {field('end', data.period.end.isoformat(), kind='date')}</label>"
        f"<label>Currency {field('currency', f.currency, 4)}</label>"
        f"<label>Provider {select_of('provider', PROVIDERS, f.provider)}</label>"
        f"<label>Workflow {select_of('workflow', WORKFLOWS, f.workflow)}</label>"
        f"<br><label>List {select_of('category', (*CATEGORIES, 'all'), data.category or 'all')}"
        "</label>"
        f"<label>Status {field('status', f.status, 18)}</label>"
        f"<label>Shop {field('shop', f.shop_id, 6)}</label>"
        f"<label>Id {field('id', f.text_id, 18)}</label>"
        f"<label>Run {field('run', f.run_id, 24)}</label>"
        '<button type="submit">Show</button></form>'
    )


def _moved_section(data: PageData, base: str, query: dict[str, str]) -> str:
    return _moved_table(data, base, query) + _imported_note(data.imported)


def _imported_note(rows: list[MovedRow]) -> str:
    """Rows imported at cutover: they moved at the incumbent, so never in the figures above."""
    if not rows:
        return ""
    total = totals(rows)
    summary = ", ".join(money(a, c) for c, a in total.by_currency.items())
    return (
        f'<p class="muted">Imported at cutover in this range (moved at the old connector, not '
        f"counted above): {total.count} rows, {escape(summary)}.</p>"
    )


def _moved_table(data: PageData, base: str, query: dict[str, str]) -> str:
    if not data.moved:
        return '<p class="muted">Nothing moved in this range.</p>'
    total = totals(data.moved)
    summary = ", ".join(money(a, c) for c, a in total.by_currency.items())
    charts = _charts(data.moved, data.period)
    rows = "".join(
        f"<tr><td>{r.day.isoformat()}</td><td>{escape(r.currency)}</td>"
        f"<td>{escape(r.provider)}</td><td>{escape(r.workflow)}</td>"
        f'<td class="num">{r.count}</td><td class="num">{escape(money(r.amount, r.currency))}</td>'
        "</tr>"
        for r in data.moved
    )
    export = _url(base, "/export/moved.csv", _keep(query, ("start", "end", "currency",
                                                           "provider", "workflow")))  # fmt: skip
    return (
        f"<p>{total.count} movements: {escape(summary)}. "
        f'<a href="{escape(export)}">Export CSV</a></p>'
        f'<div class="charts">{charts}</div>'
        "<table><tr><th>Day</th><th>Currency</th><th>Provider</th><th>Workflow</th>"
        f"<th>Movements</th><th>Amount</th></tr>{rows}</table>"
    )


def _charts(rows: list[MovedRow], period: DateRange) -> str:
    per_currency: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        per_currency[r.currency][r.day] += r.amount
    biggest = sorted(per_currency, key=lambda c: -len(per_currency[c]))[:MAX_CHARTS]
    return "".join(_bar_chart(c, per_currency[c], period) for c in sorted(biggest))


def _bar_chart(currency: str, by_day: dict[date, int], period: DateRange) -> str:
    """Daily totals of one currency as an inline SVG bar chart (a <title> per bar)."""
    days = period.days()
    width, height, pad = 420, 120, 18
    bar = max(1.0, (width - 2 * pad) / len(days))
    top = max(by_day.values()) or 1
    bars = []
    for i, day in enumerate(days):
        amount = by_day.get(day, 0)
        if amount <= 0:
            continue
        h = max(1.0, (height - 2 * pad) * amount / top)
        x = pad + i * bar
        y = height - pad - h
        label = escape(f"{day.isoformat()}: {money(amount, currency)}")
        bars.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(1.0, bar - 1):.1f}" height="{h:.1f}" '
            f'fill="#3182ce"><title>{label}</title></rect>'
        )
    return (
        f'<div class="chart"><b>{escape(currency)}</b> per day (max '
        f"{escape(money(top, currency))})<br>"
        f'<svg width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(currency)} moved per day">'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        'stroke="#a0aec0"/>'
        f'<text x="{pad}" y="{height - 4}">{days[0].isoformat()}</text>'
        f'<text x="{width - pad}" y="{height - 4}" text-anchor="end">{days[-1].isoformat()}</text>'
        f"{''.join(bars)}</svg></div>"
    )


def _summaries(data: PageData) -> str:
    out = []
    for category in CATEGORIES:
        groups = data.summaries.get(category, [])
        count = sum(g.count for g in groups)
        title = f"{CATEGORY_TITLES[category]}: {count}"
        if not groups:
            out.append(f"<p><b>{escape(title)}</b> <span class='muted'>nothing</span></p>")
            continue
        rows = "".join(
            f"<tr><td>{escape(g.workflow)}</td><td>{escape(g.reason or '')}</td>"
            f'<td class="num">{g.count}</td><td>{escape(age(g.oldest, data.now))}</td>'
            f"<td>{g.latest.strftime('%Y-%m-%d %H:%M')}</td></tr>"
            for g in groups
        )
        out.append(
            f"<p><b>{escape(title)}</b></p><table><tr><th>Workflow</th><th>Reason</th>"
            f"<th>Items</th><th>Oldest (age)</th><th>Last change</th></tr>{rows}</table>"
        )
    return "".join(out)


def _items_section(data: PageData, base: str, query: dict[str, str]) -> str:
    tabs = "".join(
        f'<a class="{"on" if c == data.category else ""}" '
        f'href="{escape(_url(base, "/", {**query, "category": c, "page": "1"}))}">'
        f"{escape(CATEGORY_TITLES[c])}</a>"
        for c in CATEGORIES
    )
    page = data.items
    export = _url(base, "/export/items.csv", {k: v for k, v in query.items() if k not in
                                              ("page", "size", "start", "end")})  # fmt: skip
    if data.category is None:  # every item (a run's): the export says so too
        export = _url(base, "/export/items.csv", {
            **{k: v for k, v in query.items() if k not in ("page", "size", "start", "end")},
            "category": "all"})  # fmt: skip
    title = CATEGORY_TITLES[data.category] if data.category else "Every item"
    if data.filters.run_id:
        title += f" of run {data.filters.run_id}"
    head = (
        f"<h2>{escape(title)}</h2><p class='tabs'>{tabs}</p>"
        f"<p>{page.total} items, page {page.page} of {page.pages}. "
        f'<a href="{escape(export)}">Export CSV</a></p>'
    )
    if not page.items:
        return head + "<p class='muted'>No item matches.</p>"
    rows = "".join(_item_row(i, base, data.now) for i in page.items)
    nav = _pager(base, "/", query, page.page, page.pages)
    return (
        head + "<table><tr><th>Item</th><th>Workflow</th><th>Mirakl id</th><th>Shop</th>"
        "<th>Amount</th><th>Status</th><th>Reason</th><th>Attempts</th><th>Last attempt</th>"
        f"<th>Age</th><th>Provider</th></tr>{rows}</table><p>{nav}</p>"
    )


def _item_row(item: Item, base: str, now: datetime) -> str:
    links = provider_links(item)
    provider = []
    if item.account:
        provider.append(_maybe_link(item.account, links.get("account")))
    if item.provider_object_id:
        provider.append(_maybe_link(item.provider_object_id, links.get("object")))
    detail = f"{base}/items/{item.entity}/{item.id}"
    attempted = item.attempted_at.strftime("%Y-%m-%d %H:%M") if item.attempted_at else ""
    return (
        f'<tr><td><a href="{escape(detail)}">{escape(item.key)}</a></td>'
        f"<td>{escape(item.workflow)}</td><td>{escape(item.mirakl_id)}</td>"
        f"<td>{'' if item.shop_id is None else item.shop_id}</td>"
        f'<td class="num">{escape(money(item.amount, item.currency))}</td>'
        f"<td>{escape(item.status)}</td><td>{escape(item.reason or '')}</td>"
        f'<td class="num">{item.attempts}</td><td>{attempted}</td>'
        f"<td>{escape(age(item.created_at, now))}</td><td>{' '.join(provider)}</td></tr>"
    )


def _maybe_link(text: str, href: str | None) -> str:
    if not href:
        return escape(text)
    return f'<a href="{escape(href)}" target="_blank" rel="noopener">{escape(text)}</a>'


# -- one item -------------------------------------------------------------------------------


def render_item(
    item: Item,
    history: list[HistoryEvent],
    base: str,
    *,
    audit: Sequence[ActionRecord] = (),
    actions: bool = False,
    done: ActionRecord | None = None,
    error: str | None = None,
    form: Mapping[str, Any] | None = None,
) -> str:
    """One item: its fields, its history (status events), what people did to it on the console
    (the audit) and, with ``actions``, the forms of the actions its state allows.

    :param done: the action just done (the page after Post/Redirect/Get says so).
    :param error: why the action just posted was refused (``form`` holds what was typed).
    """
    links = provider_links(item)
    fields = [
        ("Item", item.key),
        ("Provider", item.provider),
        ("Workflow", item.workflow),
        ("Mirakl id", item.mirakl_id),
        ("Shop", "" if item.shop_id is None else str(item.shop_id)),
        ("Amount", money(item.amount, item.currency)),
        ("Status", item.status),
        ("Reason", item.reason or ""),
        ("Attempts", str(item.attempts)),
        ("Last attempt", item.attempted_at.isoformat() if item.attempted_at else ""),
        ("Created", item.created_at.isoformat()),
        ("Updated", item.updated_at.isoformat()),
    ]
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in fields)
    rows += (
        f"<tr><th>Account</th><td>{_maybe_link(item.account or '', links.get('account'))}</td></tr>"
        f"<tr><th>Provider object</th><td>"
        f"{_maybe_link(item.provider_object_id or '', links.get('object'))}</td></tr>"
    )
    events = "".join(
        f"<tr><td>{e.at.isoformat()}</td><td>{escape(e.old_status or '')}</td>"
        f"<td>{escape(e.new_status)}</td><td>{escape(e.reason or '')}</td>"
        f"<td>{escape(e.run_id or '')}</td></tr>"
        for e in history
    )
    banner = ""
    if error:
        banner = f'<p class="refused" role="alert">Refused, nothing changed: {escape(error)}</p>'
    elif done is not None:
        banner = (
            f'<p class="done" role="status">Done ({escape(done.action)} by '
            f"{escape(done.user)}): {escape(done.detail or '')}</p>"
        )
    body = (
        f'<p><a href="{escape(base)}/">← Payments</a></p>'
        f"<h1>{escape(item.workflow)} {escape(item.mirakl_id)}</h1>{banner}<table>{rows}</table>"
        + (_action_forms(item, base, form or {}) if actions else "")
        + "<h2>History</h2><table><tr><th>At (UTC)</th><th>From</th><th>To</th><th>Reason</th>"
        f"<th>Run</th></tr>{events}</table>"
        '<h2 id="actions">Console actions</h2>' + _audit_table(audit, with_item=False)
    )
    return _document(f"Payments: {item.key}", body)


#: What each action form says it does.
_ACTION_HELP = {
    "retry": "Trigger its DAG now for this item (as you, with your reason as the run's note).",
    "hold": "Keep every run from deciding or sending it until it is released.",
    "release": "Release the hold: the next run decides it again.",
    "resolve-found": (
        "You found the provider object: its id is checked at the provider (amount, currency, "
        "destination) and recorded."
    ),
    "resolve-not-found": (
        "Nothing was made: after the console's own lookup finds nothing too, the next run "
        "sends it once with a new idempotency key."
    ),
}
_ACTION_TITLES = {
    "retry": "Retry now",
    "hold": "Hold",
    "release": "Release",
    "resolve-found": "Resolve: found",
    "resolve-not-found": "Resolve: not found",
}


def _action_forms(item: Item, base: str, typed: Mapping[str, Any]) -> str:
    """One small form per allowed action; each needs a reason (``why``)."""
    allowed = allowed_actions(item)
    if not allowed:
        return "<h2>Actions</h2><p class='muted'>No action applies to this item as it is.</p>"
    forms = []
    why = escape(str(typed.get("why") or ""))
    for action in allowed:
        extra = ""
        if action == "resolve-found":
            shown = escape(str(typed.get("object_id") or ""))
            extra = (
                f'<label>Object id <input name="object_id" value="{shown}" required '
                'size="28" maxlength="255"></label>'
            )
        if action.startswith("resolve"):
            extra += f'<input type="hidden" name="attempts" value="{item.attempts}">'
        url = f"{base}/items/{item.entity}/{item.id}/{action}"
        forms.append(
            f'<form method="post" action="{escape(url)}" class="action">'
            f"<b>{escape(_ACTION_TITLES[action])}</b> "
            f'<span class="muted">{escape(_ACTION_HELP[action])}</span><br>{extra}'
            f'<label>Why <input name="why" value="{why}" required size="48" '
            f'maxlength="{WHY_MAX}"></label>'
            f'<button type="submit">{escape(_ACTION_TITLES[action])}</button></form>'
        )
    return (
        "<h2>Actions</h2><p class='muted'>Each action needs Airflow's permission to edit DAG "
        "runs and a reason; it is recorded with your name below and in the history.</p>"
        + "".join(forms)
    )


def _audit_table(audit: Sequence[ActionRecord], *, with_item: bool) -> str:
    if not audit:
        return "<p class='muted'>None.</p>"
    head = "<th>Item</th>" if with_item else ""
    rows = "".join(_audit_row(a, with_item=with_item) for a in audit)
    return (
        f"<table><tr><th>At (UTC)</th><th>User</th><th>Action</th>{head}<th>Why</th>"
        f"<th>Result</th><th>Detail</th></tr>{rows}</table>"
    )


def _audit_row(action: ActionRecord, *, with_item: bool) -> str:
    cells = [
        action.at.strftime("%Y-%m-%d %H:%M:%S"),
        action.user,
        action.action,
        *([f"{action.entity} {action.item or action.entity_id or ''}"] if with_item else []),
        action.why,
        action.result,
        action.detail or "",
    ]
    return "<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in cells) + "</tr>"


def render_actions_section(recent: Sequence[ActionRecord], base: str, *, actions: bool) -> str:
    """The main page's last console actions and, with ``actions``, the shop mapping form."""
    form = ""
    if actions:
        form = (
            f'<form method="post" action="{escape(base)}/mappings" class="action">'
            "<b>Map a shop to an existing Stripe account</b> <span class='muted'>The shop must "
            "exist in Mirakl, the account at Stripe, and neither be mapped yet.</span><br>"
            '<label>Shop <input name="shop_id" required size="8" inputmode="numeric"></label>'
            '<label>Stripe account <input name="stripe_account_id" required size="24" '
            'placeholder="acct_..."></label>'
            f'<label>Why <input name="why" required size="40" maxlength="{WHY_MAX}"></label>'
            '<button type="submit">Map</button></form>'
        )
    return '<h2 id="actions">Console actions</h2>' + form + _audit_table(recent, with_item=True)


def render_outcome(title: str, message: str, base: str, *, error: bool = False) -> str:
    """A short page after a form that has no page of its own (the shop mapping)."""
    kind = "refused" if error else "done"
    body = (
        f'<p><a href="{escape(base)}/#actions">← Payments</a></p><h1>{escape(title)}</h1>'
        f'<p class="{kind}">{escape(message)}</p>'
    )
    return _document(f"Payments: {title}", body)


# -- helpers --------------------------------------------------------------------------------


def _document(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )


def _keep(query: dict[str, str], names: tuple[str, ...]) -> dict[str, str]:
    return {k: v for k, v in query.items() if k in names and v}


def _pager(base: str, path: str, query: dict[str, str], page: int, pages: int) -> str:
    """The links to the previous and the next page of a paged list (``page`` in the query)."""
    nav = []
    if page > 1:
        prev = _url(base, path, {**query, "page": str(page - 1)})
        nav.append(f'<a href="{escape(prev)}">← previous</a>')
    if page < pages:
        nxt = _url(base, path, {**query, "page": str(page + 1)})
        nav.append(f'<a href="{escape(nxt)}">next →</a>')
    return " ".join(nav)


def _url(base: str, path: str, query: dict[str, str]) -> str:
    clean = {k: v for k, v in query.items() if v not in (None, "")}
    return f"{base}{path}" + (f"?{urlencode(clean)}" if clean else "")
