"""Take over from PayPal's Mirakl-Hyperwallet connector (cutover).

The incumbent keeps little of value in its own database (an H2 file of job tracking and caches,
"regenerable" by its docs): what matters lives at Mirakl and Hyperwallet. So the cutover needs:

**Its last job dates → our extraction windows.** Each extract job reads Mirakl "since the start
of the last run that extracted something" (its ``BATCH_JOB_TRACK_INFO_ENTITY`` rows, also served
by its ``GET /batchjob-audit/?from=…&to=…``). The ``job_dates`` given (that list as JSON, or
``{"InvoicesExtractBatchJob": "2026-11-20T00:00:01", …}``) become our window checkpoints:

=================================  ============================================================
incumbent job (``batchJobType``)   our checkpoint
=================================  ============================================================
``IndividualSellersExtractBatchJob``, ``ProfessionalSellersExtractBatchJob`` (the earlier)
                                   ``hyperwallet_seller_extract_window_start``
``BankAccountExtractBatchJob``     ``hyperwallet_bank_account_extract_window_start``
``InvoicesExtractBatchJob``        ``hyperwallet_invoice_payments_window_start``
=================================  ============================================================

From a list, the newest run per job that finished (``FINISHED``/``FINISHED_WITH_FAILURES``) is
taken; its start time is UTC (the incumbent records ``LocalDateTime`` in UTC). Checkpoints only
move forward.

**Its payments, by ``clientPaymentId``.** It paid each invoice with ``clientPaymentId`` = the
IV01 ``invoice_id`` (≤ 5.2) or the SBC11 billing cycle ``id`` (5.3+), and the operator's
commission with ``<id>-operatorFee``, the convention our invoice payments use too. For every
Mirakl document in the window (IV01 or SBC11 as ``hyperwallet_payments.invoice_source`` says,
paid or not), both ids are looked up at Hyperwallet; what is found is imported into the ledger's
``hyperwallet_payments`` (marked ``imported_from = hyperwallet-mirakl-connector``, the payment
token as old id), the live payment preferred (COMPLETED, else the newest non-failed one, as its
de-duplication did). Our invoice payments look a payment up by ``clientPaymentId`` before any
creation anyway; the import makes it visible in the ledger and in reports.

**Its tokens in Mirakl's shop fields.** ``hw-user-token``, ``hw-bankaccount-token`` and
``hw-program`` are read where it wrote them; nothing to copy. The check reports Hyperwallet shops
whose program is not configured here (they could not be paid) and those missing a token (the
extracts look the user and bank account up before creating any).

**Paid at Hyperwallet, unpaid in Mirakl.** Every invoice or billing cycle whose seller payment is
COMPLETED at Hyperwallet while Mirakl still shows it unpaid (IV01 ``payment.state`` not PAID,
SBC11 pay-out state not PAID) is listed as a failure to settle by hand: confirm it in Mirakl
(IV07 / SBC07); it must never be paid again. Payments still in flight are reported too.

Dry run by default; a second run over the same data changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from mirakl_connector.core.batch import BatchSummary, ItemOutcome
from mirakl_connector.core.errors import ConfigurationError, InvalidItemError, MiraklConnectorError
from mirakl_connector.core.money import normalize_currency, parse_amount, to_minor
from mirakl_connector.cutover import HYPERWALLET_CONNECTOR, text_or_none
from mirakl_connector.cutover.claims import claim_imported
from mirakl_connector.hyperwallet.invoice_payments import (
    SETTINGS_SECTION,
    HyperwalletPaymentSettings,
)
from mirakl_connector.hyperwallet.payment_decisions import (
    ACCEPTED,
    FAILURE,
    SBC11,
    ShopTokens,
    classify_status,
    invoice_id_of,
    is_operator_fee,
    ledger_status,
    live_payment,
    mirakl_paid,
    operator_fee_id,
    parse_invoice,
    raw_invoice_id,
    shop_tokens,
)
from mirakl_connector.hyperwallet.programs import HyperwalletSettings
from mirakl_connector.ledger import (
    HyperwalletPayment,
    HyperwalletPaymentKind,
    HyperwalletPaymentStatus,
    Ledger,
    LedgerConflictError,
)
from mirakl_connector.operations.payout_provider import HYPERWALLET

log = logging.getLogger(__name__)

WORKFLOW = "hyperwallet_connector_cutover"

#: Our window checkpoint ← the incumbent's job types (the earliest of several wins).
JOB_CHECKPOINTS: dict[str, tuple[str, ...]] = {
    "hyperwallet_seller_extract_window_start": (
        "IndividualSellersExtractBatchJob",
        "ProfessionalSellersExtractBatchJob",
    ),
    "hyperwallet_bank_account_extract_window_start": ("BankAccountExtractBatchJob",),
    "hyperwallet_invoice_payments_window_start": ("InvoicesExtractBatchJob",),
}
#: Audit statuses of a run that went through (its start bounds what it read).
FINISHED = frozenset({"FINISHED", "FINISHED_WITH_FAILURES"})
#: How far back the payments are looked up when no ``since`` is given.
DEFAULT_LOOKBACK = timedelta(days=90)


def last_job_starts(job_dates: Any) -> dict[str, datetime]:
    """``{job type: start (UTC)}`` from a mapping or from the incumbent's audit entries.

    :raises ConfigurationError: naming the entry that cannot be read.
    """
    if job_dates in (None, "", [], {}):
        return {}
    starts: dict[str, datetime] = {}
    if isinstance(job_dates, Mapping):
        for job, value in job_dates.items():
            starts[str(job)] = _utc(value, f"job_dates[{job!r}]")
        return starts
    if not isinstance(job_dates, list | tuple):
        raise ConfigurationError(
            "job_dates must be an object {job type: start time} or the list the Hyperwallet "
            "connector's GET /batchjob-audit/ returns"
        )
    for index, entry in enumerate(job_dates):
        if not isinstance(entry, Mapping) or not entry.get("batchJobType"):
            raise ConfigurationError(f"job_dates[{index}] has no batchJobType")
        status = str(entry.get("status") or "FINISHED").upper()
        if status not in FINISHED:
            continue
        job = str(entry["batchJobType"])
        start = _utc(entry.get("startTime"), f"job_dates[{index}].startTime")
        if job not in starts or start > starts[job]:
            starts[job] = start
    return starts


def _utc(value: Any, name: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise ConfigurationError(f"{name} is not an ISO-8601 date-time: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class _Document:
    """A Mirakl invoice or billing cycle of the window, and whether Mirakl shows it paid."""

    invoice_id: str
    source: str
    paid_in_mirakl: bool
    shop_id: int | None
    currency: str | None
    created_date: str | None


class HyperwalletCutover:
    """The cutover from the Mirakl-Hyperwallet connector; see the module docstring."""

    def __init__(
        self,
        *,
        mirakl: Any,
        hyperwallet: Any,
        ledger: Ledger,
        settings: HyperwalletSettings,
        payments: HyperwalletPaymentSettings,
        run_id: str | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.mirakl = mirakl
        self.hyperwallet = hyperwallet
        self.ledger = ledger
        self.settings = settings
        self.payments = payments
        self.run_id = run_id or "hyperwallet-cutover"
        self._now = now or (lambda: datetime.now(UTC))

    @classmethod
    def from_config(
        cls,
        *,
        mirakl: Any,
        hyperwallet: Any,
        ledger: Ledger,
        config: Mapping[str, Any],
        run_id: str | None = None,
    ) -> HyperwalletCutover:
        return cls(
            mirakl=mirakl,
            hyperwallet=hyperwallet,
            ledger=ledger,
            settings=HyperwalletSettings.from_config(config),
            payments=HyperwalletPaymentSettings.from_mapping(config.get(SETTINGS_SECTION)),
            run_id=run_id,
        )

    def run(
        self,
        *,
        dry_run: bool = True,
        job_dates: Any = None,
        since: datetime | None = None,
        invoice_ids: Sequence[str] | None = None,
    ) -> BatchSummary:
        """Checkpoints, shop tokens, payments, and the paid-but-unpaid check; the report."""
        summary = BatchSummary(WORKFLOW, "import", dry_run=dry_run)
        self._checkpoints(last_job_starts(job_dates), summary, dry_run=dry_run)
        shops = self._shops(summary)
        start = since or (self._now() - DEFAULT_LOOKBACK)
        documents = list(self._documents(start, invoice_ids, summary))
        self._payments(documents, shops, summary, dry_run=dry_run)
        summary.notes.append(
            f"{len(documents)} {self.payments.invoice_source} document(s) since "
            f"{start.isoformat()} looked up at Hyperwallet by clientPaymentId"
        )
        log.info("%s", summary.describe())
        return summary

    # -- job dates --------------------------------------------------------------------------

    def _checkpoints(
        self, starts: Mapping[str, datetime], summary: BatchSummary, *, dry_run: bool
    ) -> None:
        known = {job for jobs in JOB_CHECKPOINTS.values() for job in jobs}
        for job in sorted(set(starts) - known):
            summary.notes.append(f"job {job}: not needed here (no checkpoint of ours follows it)")
        for key, jobs in JOB_CHECKPOINTS.items():
            item = f"checkpoint {key}"
            found = [starts[j] for j in jobs if j in starts]
            if not found:
                summary.add(
                    ItemOutcome(
                        item,
                        "CHECKPOINT_NOT_SET",
                        f"no finished run of {' or '.join(jobs)} given: our first run reads "
                        f"the last {self.settings.extraction_max_days} days (extraction_max_days)",
                    )
                )
                continue
            value = min(found)
            current = self.ledger.get_checkpoint(key)
            current_at = _window(current)
            if current_at is not None and current_at >= value:
                summary.add(
                    ItemOutcome(item, "CHECKPOINT_UNCHANGED", f"ours ({current}) is not older")
                )
                continue
            if not dry_run:
                self.ledger.set_checkpoint(key, value.isoformat())
            status = "CHECKPOINT_IMPORTED" if current is None else "CHECKPOINT_UPDATED"
            summary.add(ItemOutcome(item, status, f"{current or 'none'} → {value.isoformat()}"))

    # -- shops -------------------------------------------------------------------------------

    def _shops(self, summary: BatchSummary) -> dict[int, ShopTokens]:
        shops: dict[int, ShopTokens] = {}
        outside = 0
        for raw in self.mirakl.iter_shops():
            try:
                tokens = shop_tokens(raw)
            except (KeyError, TypeError, ValueError):
                summary.add(
                    ItemOutcome(
                        f"shop {raw.get('shop_id') if isinstance(raw, Mapping) else '?'}",
                        "SHOP_NOT_MAPPED",
                        "S20 entry without a numeric shop_id",
                        failed=True,
                    )
                )
                continue
            shops[tokens.shop_id] = tokens
            if not tokens.program:
                outside += 1
                continue
            summary.add(self._shop_outcome(tokens))
        summary.notes.append(f"{outside} shop(s) without hw-program (not paid through Hyperwallet)")
        return shops

    def _shop_outcome(self, tokens: ShopTokens) -> ItemOutcome:
        item = f"shop {tokens.shop_id}"
        program = self.settings.program(tokens.program)
        if program is None:
            return ItemOutcome(
                item,
                "SHOP_PROGRAM_UNKNOWN",
                f"hw-program {tokens.program!r} is not configured here (hyperwallet.programs): "
                "its invoices cannot be paid",
                failed=True,
            )
        if program.ignored:
            return ItemOutcome(item, "SHOP_PROGRAM_IGNORED", f"program {program.name} is ignored")
        missing = [
            name
            for name, value in (
                ("hw-user-token", tokens.user_token),
                ("hw-bankaccount-token", tokens.bank_account_token),
            )
            if not value
        ]
        if missing:
            return ItemOutcome(
                item,
                "SHOP_TOKENS_MISSING",
                f"no {' and no '.join(missing)}: the extracts look them up at Hyperwallet "
                "(clientUserId, bank accounts) before creating any; its invoices wait until then",
            )
        return ItemOutcome(item, "SHOP_TOKENS_OK")

    # -- Mirakl documents ----------------------------------------------------------------------

    def _documents(
        self, start: datetime, invoice_ids: Sequence[str] | None, summary: BatchSummary
    ) -> Iterator[_Document]:
        source = self.payments.invoice_source
        wanted = set(invoice_ids or ())
        if source == SBC11:
            raws: Iterable[Any] = self.mirakl.iter_billing_cycles(
                start_date=start, pay_out_states=None
            )
        else:
            raws = self.mirakl.iter_invoices(start_date=start)
        for raw in raws:
            invoice_id = raw_invoice_id(raw, source)
            if not invoice_id or (wanted and invoice_id not in wanted):
                continue
            try:
                parsed = parse_invoice(raw, source, include_paid=True)
            except InvalidItemError as exc:
                summary.add(
                    ItemOutcome(
                        f"{source} {invoice_id}", "DOCUMENT_NOT_MAPPED", exc.reason, failed=True
                    )
                )
                continue
            if isinstance(parsed, str):
                continue  # not a document the incumbent paid (draft, manual credit...)
            yield _Document(
                invoice_id=invoice_id,
                source=source,
                paid_in_mirakl=_paid_in_mirakl(raw, source),
                shop_id=parsed.shop_id,
                currency=parsed.currency,
                created_date=parsed.created_date,
            )

    # -- payments ------------------------------------------------------------------------------

    def _payments(
        self,
        documents: list[_Document],
        shops: Mapping[int, ShopTokens],
        summary: BatchSummary,
        *,
        dry_run: bool,
    ) -> None:
        for document in documents:
            ids = [document.invoice_id]
            if self.payments.operator_commissions:
                ids.append(operator_fee_id(document.invoice_id))
            for client_payment_id in ids:
                try:
                    found = self.hyperwallet.find_payments(client_payment_id)
                except MiraklConnectorError as exc:
                    summary.add(
                        ItemOutcome(
                            f"payment {client_payment_id}",
                            "PAYMENT_LOOKUP_FAILED",
                            f"Hyperwallet lookup failed: {exc}; run the cutover again",
                            failed=True,
                        )
                    )
                    continue
                if not found:
                    if not is_operator_fee(client_payment_id) and not document.paid_in_mirakl:
                        summary.add(
                            ItemOutcome(
                                f"{document.source} {document.invoice_id}",
                                "DOCUMENT_NOT_PAID_YET",
                                "no payment at Hyperwallet: our invoice payments will pay it",
                            )
                        )
                    continue
                chosen = live_payment(found) or max(
                    found, key=lambda p: str(p.get("createdOn") or "")
                )
                self._import_payment(client_payment_id, chosen, document, shops, summary, dry_run)
                if not is_operator_fee(client_payment_id):
                    self._check_paid(document, chosen, summary)

    def _import_payment(
        self,
        client_payment_id: str,
        payment: Mapping[str, Any],
        document: _Document,
        shops: Mapping[int, ShopTokens],
        summary: BatchSummary,
        dry_run: bool,
    ) -> None:
        item = f"payment {client_payment_id}"
        try:
            record = self._record(client_payment_id, payment, document, shops)
        except InvalidItemError as exc:
            summary.add(ItemOutcome(item, "PAYMENT_NOT_MAPPED", exc.reason, failed=True))
            return
        ours = self.ledger.get_hyperwallet_payment(client_payment_id)
        amount, currency = record.amount, record.currency
        if ours is not None:
            if ours.payment_token == record.payment_token:
                summary.add(ItemOutcome(item, "PAYMENT_UNCHANGED", None, amount, currency))
                return
            if ours.payment_token and classify_status(ours.hw_status) != FAILURE:
                summary.add(
                    ItemOutcome(
                        item,
                        "PAYMENT_CONFLICT",
                        f"ledger has {ours.payment_token}, Hyperwallet also "
                        f"{record.payment_token} for this clientPaymentId: check both",
                        amount,
                        currency,
                        failed=True,
                    )
                )
                return
            record = replace(
                record,
                idempotency_key=ours.idempotency_key,
                attempted_at=ours.attempted_at,
                attempts=ours.attempts,
                confirmed_at=ours.confirmed_at or record.confirmed_at,
            )
        status = "PAYMENT_IMPORTED" if ours is None else "PAYMENT_UPDATED"
        if not dry_run:
            try:
                self.ledger.save_imported(
                    "hyperwallet_payment",
                    [record],
                    source=HYPERWALLET_CONNECTOR,
                    old_ids=[record.payment_token],
                    run_id=self.run_id,
                )
            except LedgerConflictError as exc:
                summary.add(ItemOutcome(item, "PAYMENT_CONFLICT", str(exc), failed=True))
                return
            # Paid through Hyperwallet by the incumbent: never payable through Stripe.
            claim_imported(self.ledger, HYPERWALLET, [record], source=HYPERWALLET_CONNECTOR)
        summary.add(ItemOutcome(item, status, f"{record.hw_status}", amount, currency))

    def _record(
        self,
        client_payment_id: str,
        payment: Mapping[str, Any],
        document: _Document,
        shops: Mapping[int, ShopTokens],
    ) -> HyperwalletPayment:
        token = str(payment.get("token") or "")
        if not token:
            raise InvalidItemError("Hyperwallet payment without a token", item_id=client_payment_id)
        currency = normalize_currency(str(payment.get("currency") or document.currency or ""))
        amount = to_minor(parse_amount(payment.get("amount")), currency)
        hw_status = str(payment.get("status") or "").upper() or None
        status = ledger_status(hw_status)
        shop = shops.get(document.shop_id) if document.shop_id is not None else None
        confirmed = (
            self._now()
            if document.paid_in_mirakl and status is HyperwalletPaymentStatus.COMPLETED
            else None
        )
        return HyperwalletPayment(
            client_payment_id=client_payment_id,
            invoice_id=invoice_id_of(client_payment_id),
            kind=HyperwalletPaymentKind.OPERATOR_FEE
            if is_operator_fee(client_payment_id)
            else HyperwalletPaymentKind.SELLER,
            status=status,
            status_reason="Imported from the Hyperwallet connector",
            hw_status=hw_status,
            payment_token=token,
            amount=amount,
            currency=currency,
            program=shop.program if shop else None,
            shop_id=document.shop_id,
            destination_token=_text(payment.get("destinationToken")),
            invoice_source=document.source,
            invoice_created_date=document.created_date,
            hw_created_on=_text(payment.get("createdOn")),
            confirmed_at=confirmed,
        )

    def _check_paid(
        self, document: _Document, payment: Mapping[str, Any], summary: BatchSummary
    ) -> None:
        if document.paid_in_mirakl:
            return
        item = f"{document.source} {document.invoice_id}"
        kind = classify_status(payment.get("status"))
        token = payment.get("token")
        if kind == ACCEPTED:
            summary.add(
                ItemOutcome(
                    item,
                    "PAID_AT_HYPERWALLET_UNPAID_IN_MIRAKL",
                    f"Hyperwallet payment {token} is COMPLETED (created "
                    f"{payment.get('createdOn')}) but Mirakl shows the {document.source} "
                    "document unpaid: confirm it in Mirakl "
                    f"({'SBC07' if document.source == SBC11 else 'IV07'}); never pay it again",
                    failed=True,
                )
            )
        elif kind != FAILURE:
            summary.add(
                ItemOutcome(
                    item,
                    "IN_FLIGHT_AT_HYPERWALLET",
                    f"Hyperwallet payment {token} is {payment.get('status')}: it is confirmed in "
                    "Mirakl when Hyperwallet notifies it COMPLETED; not paid again",
                )
            )


def _paid_in_mirakl(raw: Mapping[str, Any], source: str) -> bool:
    """Any known field marks it PAID: IV01 ``payment.state`` (published schema) or a top-level
    ``payment_status`` (the incumbent's mocks); SBC11 ``pay_out.state``."""
    return mirakl_paid(raw, source) is not None


def _window(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


_text = text_or_none
