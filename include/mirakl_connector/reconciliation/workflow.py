"""Reconciliation step: does what a run (or a day) moved agree with the provider and Mirakl?

Two steps of workflow ``reconciliation``, each with ``flow`` (``payment_split``,
``payment_refund``, ``seller_settlement``, ``hyperwallet_invoice_payments``):

``reconcile``
    The last step of each money-moving DAG, before its report: the ledger rows whose status the
    run changed and that hold a provider object (or whose call's answer was lost), compared with
    the provider's objects listed over the rows' creation window and with their Mirakl documents
    (:mod:`mirakl_connector.reconciliation`). A run that recorded no provider object reads
    nothing.
``reconcile_day``
    The same over one UTC day (``day``, default yesterday): the rows whose money moved that day,
    and every object of ours the provider created that day, so an object no run recorded (a
    second transfer for one order, one made by hand with the connector's metadata) is found too.

The step completes whenever it could compare (a provider or Mirakl that cannot be read fails it,
and its retries read again): each mismatch is a *failed item* of its summary, so the DAG's
``report`` task fails naming it and the failure e-mail goes out, the way a failed transfer is
reported; the summary's note says "Reconciles" or "Does not reconcile". Every result is kept in
the ledger (``reconciliations``, ``reconciliation_items``), per run and per day, for the
payments console; running the step again for the same run replaces its result. A dry run moved
nothing: the step says so and reads and records nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from mirakl_connector.core.batch import BatchSummary, ItemOutcome
from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.core.registry import Resources
from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger import reconciliation as store
from mirakl_connector.reconciliation import flows
from mirakl_connector.reconciliation.compare import Kind, ReconItem, reconcile
from mirakl_connector.reconciliation.specs import RECONCILIATION

log = logging.getLogger(__name__)

WORKFLOW = RECONCILIATION.name
_PROVIDER_NAMES = {"stripe": "Stripe", "hyperwallet": "Hyperwallet"}


class Reconciliation:
    """Reconcile one flow's run or day; see the module docstring."""

    def __init__(
        self,
        *,
        ledger: Callable[[], Ledger],
        clients: Callable[[Ledger], flows.Clients],
        tax_split: bool,
        hyperwallet_configured: bool,
        run_id: str | None,
        built_clients: Callable[[], Mapping[str, Any]] = dict,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._ledger = ledger
        self._clients = clients
        self.tax_split = tax_split
        self.hyperwallet_configured = hyperwallet_configured
        self.run_id = run_id
        self._built_clients = built_clients
        self._now = now

    # -- steps ------------------------------------------------------------------------------

    def reconcile(self, *, flow: str, dry_run: bool = False) -> BatchSummary:
        """Reconcile what this DAG run moved for ``flow``."""
        _check_flow(flow)
        summary = BatchSummary(WORKFLOW, "reconcile", dry_run=dry_run)
        if dry_run:
            summary.headline = (
                "DRY RUN — nothing moved: nothing to reconcile (nothing read, nothing recorded)"
            )
            return summary
        if not self.run_id:
            raise ConfigurationError("reconcile needs the DAG run's id (run_id)")
        ledger = self._ledger()
        now = self._now()
        records = store.rows_of_run(ledger, self.run_id, flows.SOURCES[flow])
        window = flows.provider_window(records, since=None, until=None, now=now)
        return self._run(
            summary,
            flow,
            records,
            window,
            scope=store.SCOPE_RUN,
            scope_key=self.run_id,
            day=now.date(),
            list_empty_window=False,
        )

    def reconcile_day(
        self, *, flow: str, day: str | date | None = None, dry_run: bool = False
    ) -> BatchSummary:
        """Reconcile what moved for ``flow`` on ``day`` (UTC; default: yesterday)."""
        _check_flow(flow)
        which = _day(day, self._now())
        summary = BatchSummary(WORKFLOW, "reconcile_day", dry_run=dry_run)
        if dry_run:
            summary.headline = f"DRY RUN — {flow} on {which}: nothing read, nothing recorded"
            return summary
        if flows.PROVIDERS[flow] == "hyperwallet" and not self.hyperwallet_configured:
            summary.headline = (
                f"{flow} on {which}: Hyperwallet is not configured here, nothing to reconcile"
            )
            return summary
        ledger = self._ledger()
        start = datetime.combine(which, time(0), tzinfo=UTC)
        records = store.rows_of_day(ledger, which, flows.SOURCES[flow])
        if (
            flows.PROVIDERS[flow] == "stripe"
            and not records
            and not store.has_stripe_accounts(ledger)
        ):
            summary.headline = (
                f"{flow} on {which}: Stripe is not used here (no Stripe account in the ledger), "
                "nothing to reconcile"
            )
            return summary
        window = flows.provider_window(records, since=start, until=start + timedelta(days=1))
        return self._run(
            summary,
            flow,
            records,
            window,
            scope=store.SCOPE_DAY,
            scope_key=which.isoformat(),
            day=which,
            list_empty_window=True,
        )

    # -- the comparison ---------------------------------------------------------------------

    def _run(
        self,
        summary: BatchSummary,
        flow: str,
        records: list[Any],
        window: Any,
        *,
        scope: str,
        scope_key: str,
        day: date,
        list_empty_window: bool,
    ) -> BatchSummary:
        ledger = self._ledger()
        inputs = flows.gather(
            flow,
            records,
            self._clients(ledger),
            window=window,
            tax_split=self.tax_split,
            list_empty_window=list_empty_window,
        )
        entry_ids = {e.provider_id for e in inputs.entries if e.provider_id}
        others = {o.object_id for o in inputs.objects} - entry_ids
        known = store.known_provider_ids(ledger, others)
        items = reconcile(inputs.entries, inputs.objects, inputs.mirakl, known_provider_ids=known)
        provider = flows.PROVIDERS[flow]
        provider_calls, mirakl_calls = self._calls(provider)

        for item in items:
            summary.add(_outcome(item))
        summary.notes.extend(inputs.notes)
        verdict = _verdict(
            flow, items, provider, provider_calls, mirakl_calls, bool(inputs.entries), scope
        )
        summary.headline = verdict
        matched = sum(1 for i in items if i.kind is Kind.MATCHED)
        header = store.ReconciliationHeader(
            flow=flow,
            scope=scope,
            scope_key=scope_key,
            run_id=self.run_id if scope == store.SCOPE_RUN else None,
            day=day.isoformat(),
            reconciled_at=self._now(),
            window_start=window.since if (inputs.entries or list_empty_window) else None,
            window_end=window.until if (inputs.entries or list_empty_window) else None,
            matched=matched,
            mismatched=len(items) - matched,
            provider_calls=provider_calls,
            mirakl_calls=mirakl_calls,
            note="\n".join([verdict, *summary.notes]),
        )
        store.save_reconciliation(ledger, header, [_row(i) for i in items])
        log.info("%s", verdict)
        return summary

    def _calls(self, provider: str) -> tuple[int, int]:
        """Calls made by the clients this step built: (``provider``'s, Mirakl's)."""
        built = self._built_clients()

        def calls(name: str) -> int:
            return sum((getattr(built.get(name), "call_counts", None) or {}).values())

        return calls(provider), calls("mirakl")


# -- building -------------------------------------------------------------------------------------


def build(resources: Resources, config: Mapping[str, Any], run_id: str | None) -> Reconciliation:
    """Registry entry: the job wired to the run's clients (built only when a read needs them)."""
    from mirakl_connector.stripe.payment_split import PaymentSplitSettings

    built: dict[str, Any] = {}

    def client(name: str) -> Callable[[], Any]:
        def get() -> Any:
            if name not in built:
                built[name] = resources.get(name)
            return built[name]

        return get

    def clients(ledger: Ledger) -> flows.Clients:
        return flows.Clients(
            stripe=client("stripe"),
            mirakl=client("mirakl"),
            hyperwallet=client("hyperwallet"),
            refunds=lambda ids: ledger.get_refunds(ids),
        )

    return Reconciliation(
        ledger=lambda: resources.get("ledger"),
        clients=clients,
        tax_split=PaymentSplitSettings.from_mapping(config.get("payment_split")).tax_split_enabled,
        hyperwallet_configured=config.get("hyperwallet") is not None,
        run_id=run_id,
        built_clients=lambda: dict(built),
    )


# -- helpers --------------------------------------------------------------------------------------


def _check_flow(flow: str) -> None:
    if flow not in flows.SOURCES:
        raise ConfigurationError(
            f"reconciliation: unknown flow {flow!r} (known: {', '.join(flows.FLOWS)})"
        )


def _day(value: str | date | None, now: datetime) -> date:
    if value is None or value == "":
        return (now - timedelta(days=1)).date()
    if isinstance(value, datetime):
        return value.astimezone(UTC).date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ConfigurationError(
            f"reconciliation: day must be a date (YYYY-MM-DD), got {value!r}"
        ) from None


def _outcome(item: ReconItem) -> ItemOutcome:
    ident = item.item
    if item.provider_object_id and item.provider_object_id not in ident:
        ident = f"{ident} ({item.provider_object_id})"
    mismatch = item.is_mismatch
    return ItemOutcome(
        item_id=ident,
        status=str(item.kind),
        reason=f"{item.kind}: {item.reason}" if mismatch else None,
        amount=item.ledger_amount if item.ledger_amount is not None else item.provider_amount,
        currency=item.currency,
        failed=mismatch,
    )


def _row(item: ReconItem) -> dict[str, Any]:
    return {
        "kind": str(item.kind),
        "item": item.item,
        "entity": item.entity,
        "row_id": item.row_id,
        "mirakl_id": item.mirakl_id,
        "provider": item.provider,
        "provider_object_id": item.provider_object_id,
        "currency": item.currency,
        "ledger_amount": item.ledger_amount,
        "provider_amount": item.provider_amount,
        "provider_amount_raw": item.provider_amount_raw,
        "mirakl_amount": item.mirakl_amount,
        "reason": item.reason,
    }


def _verdict(
    flow: str,
    items: list[ReconItem],
    provider: str,
    provider_calls: int,
    mirakl_calls: int,
    had_entries: bool,
    scope: str,
) -> str:
    name = _PROVIDER_NAMES[provider]
    reads = f"{provider_calls} {name} call(s), {mirakl_calls} Mirakl call(s)"
    what = "this run" if scope == store.SCOPE_RUN else "this day"
    mismatches = Counter(str(i.kind) for i in items if i.is_mismatch)
    matched = sum(1 for i in items if not i.is_mismatch)
    if mismatches:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(mismatches.items()))
        return (
            f"Does not reconcile: {flow} of {what} has {sum(mismatches.values())} mismatch(es) "
            f"({kinds}); {matched} row(s) agree ({reads})"
        )
    if not had_entries and not items:
        return (
            f"Reconciles: {flow} of {what} recorded no {name} object, nothing to compare ({reads})"
        )
    return (
        f"Reconciles: {flow} of {what}: {matched} ledger row(s) agree with {name} and Mirakl "
        f"({reads})"
    )
