"""What the two Hyperwallet shop extracts share: the window, the filters, the retry queue, the log.

The seller extract (:mod:`.hyperwallet_sellers`) and the bank account extract
(:mod:`.hyperwallet_bank_accounts`) both read the shops changed in Mirakl (S20) and handle them
one by one. A subclass says what to do with one eligible shop; this base decides which shops:

* **Window**: the shops updated since the start of the last run that completed and read at
  least one shop (the incumbent's rule: a run that read nothing does not move the window, and
  the overlap of one run is harmless because every write is idempotent), never further back than
  ``hyperwallet.extraction_max_days`` (30). The ``since`` param replaces the window for one run
  and does not move it; ``shop_ids`` reads exactly those shops.
* **Retries**: the failed shops that are due (:mod:`mirakl_connector.operations.retry_queue`) are
  re-read by id and processed in the same run.
* **Filters**: terminated, program-less, ignored-program and no-consent shops are skipped with
  their reason; a shop naming an unknown program fails (see :mod:`...hyperwallet.sellers`).

A shop's failure is recorded against it (retry queue, summary, ``[BATCHJOBITEM] Failed ...``) and
the batch goes on. Only the first failure of a shop is a *failed* item of the run (turning it red
and e-mailing); a failed retry is counted as ``RETRY_PENDING``, and the exhaustion of the retries
is e-mailed once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from mirakl_connector.core.batch import BatchSummary, ItemOutcome
from mirakl_connector.core.errors import (
    ConfigurationError,
    InvalidItemError,
    MiraklApiError,
    MiraklConnectorError,
)
from mirakl_connector.hyperwallet.batchlog import BatchLog
from mirakl_connector.hyperwallet.client import HyperwalletClient
from mirakl_connector.hyperwallet.errors import HyperwalletApiError
from mirakl_connector.hyperwallet.programs import HyperwalletSettings
from mirakl_connector.hyperwallet.sellers import (
    Eligibility,
    eligibility,
    is_professional,
    shop_id_of,
)
from mirakl_connector.mirakl.client import MiraklClient
from mirakl_connector.mirakl.shops import shop_errors
from mirakl_connector.operations.payout_provider import HYPERWALLET, NONE, PayoutProviderRule
from mirakl_connector.operations.retry_queue import FAILED, RetryQueue

log = logging.getLogger(__name__)

#: The shop is paid by Stripe (mirakl_connector.operations.payout_provider): no Hyperwallet user
#: for it.
SKIPPED_OTHER_PROVIDER = "SKIPPED_OTHER_PROVIDER"


class ShopExtract:
    """Base of the Hyperwallet shop extracts; subclasses implement :meth:`_handle`.

    :param now: the clock (tests move it to make retries due).
    """

    WORKFLOW = ""
    ITEM_TYPE = "Shop"
    require_consent = True

    def __init__(
        self,
        *,
        mirakl: MiraklClient,
        hyperwallet: HyperwalletClient,
        ledger: Any,
        settings: HyperwalletSettings,
        mailer: Any = None,
        email_to: Sequence[str] = (),
        run_id: str | None = None,
        now: Callable[[], datetime] | None = None,
        providers: PayoutProviderRule | None = None,
    ) -> None:
        #: which provider pays each shop (see mirakl_connector.operations.payout_provider): a shop
        #: Stripe
        #: pays (now and after any configured move) is skipped with the rule as its reason
        self.providers = providers or PayoutProviderRule(
            default="none", hyperwallet_configured=True
        )
        self.mirakl = mirakl
        self.hyperwallet = hyperwallet
        self.ledger = ledger
        self.settings = settings
        self.run_id = run_id
        self._now = now or (lambda: datetime.now(UTC))
        self.queue = RetryQueue(
            ledger,
            self.WORKFLOW,
            max_retries=settings.max_item_retries,
            delay=settings.item_retry_delay,
            mailer=mailer,
            email_to=email_to,
            now=self._now,
        )

    @property
    def checkpoint_key(self) -> str:
        return f"{self.WORKFLOW}_window_start"

    # -- steps ---------------------------------------------------------------------------------

    def check(self) -> BatchSummary:
        """Check the credentials and every configured program token against Hyperwallet."""
        return check_programs(self.hyperwallet, self.settings, self.WORKFLOW)

    def sync(
        self,
        *,
        since: datetime | None = None,
        shop_ids: Sequence[str] | None = None,
        dry_run: bool = False,
    ) -> BatchSummary:
        """Process the shops changed since the window start (or ``since``) and the due retries.

        :param shop_ids: only these shops (window, checkpoint and other retries untouched).
        """
        summary = BatchSummary(self.WORKFLOW, "sync", dry_run=dry_run)
        started = self._now()
        blog = BatchLog()
        blog.started()
        self.queue.load()
        try:
            if shop_ids:
                wanted = [str(i) for i in shop_ids]
                blog.retrieving_ids(wanted)
                changed = self._read(shop_ids=wanted)
                self._log_retrieved(blog, changed)
                retry_ids: list[str] = []
            else:
                start = since or self._window_start()
                blog.retrieving_since(start)
                changed = self._read(updated_since=start)
                self._log_retrieved(blog, changed)
                seen = {_raw_id(s) for s in changed}
                retry_ids = [i for i in self.queue.due_ids() if i not in seen]
            retried: list[Mapping[str, Any]] = []
            if retry_ids:
                blog.retrieving_ids(retry_ids)
                retried = self._read(shop_ids=retry_ids)
                blog.shops_retrieved(_raw_id(s) for s in retried)
        except Exception:
            blog.crashed()
            raise
        missing = sorted(set(retry_ids) - {_raw_id(s) for s in retried})
        blog.retrieved(len(changed) + len(retried) + len(missing))
        for shop in changed:
            self._one(shop, summary, blog, dry_run=dry_run, changed=True)
        for shop in retried:
            self._one(shop, summary, blog, dry_run=dry_run, changed=False)
        for shop_id in missing:
            blog.processing(self.ITEM_TYPE, shop_id)
            reason = f"shop {shop_id} is not returned by Mirakl (S20)"
            summary.add(self._failure(shop_id, reason, dry_run=dry_run, changed=False))
            blog.processed(self.ITEM_TYPE, shop_id, success=False)
        blog.finished()

        exhausted = self.queue.exhausted_ids()
        if exhausted:
            summary.notes.append(
                f"{len(exhausted)} shop(s) out of retries (processed again when they change in "
                f"Mirakl or by a run naming them): {', '.join(sorted(exhausted)[:20])}"
            )
        if not dry_run and not shop_ids and since is None and changed:
            self.ledger.set_checkpoint(self.checkpoint_key, started.isoformat())
            summary.notes.append(f"next window starts at {started.isoformat()}")
        log.info("%s", summary.describe())
        return summary

    def retry(self, *, dry_run: bool = False) -> BatchSummary:
        """Process only the due retries (for a frequent retry schedule)."""
        summary = BatchSummary(self.WORKFLOW, "retry", dry_run=dry_run)
        blog = BatchLog()
        blog.started()
        self.queue.load()
        due = self.queue.due_ids()
        shops: list[Mapping[str, Any]] = []
        if due:
            blog.retrieving_ids(due)
            shops = self._read(shop_ids=due)
            blog.shops_retrieved(_raw_id(s) for s in shops)
        missing = sorted(set(due) - {_raw_id(s) for s in shops})
        blog.retrieved(len(shops) + len(missing))
        for shop in shops:
            self._one(shop, summary, blog, dry_run=dry_run, changed=False)
        for shop_id in missing:
            reason = f"shop {shop_id} is not returned by Mirakl (S20)"
            summary.add(self._failure(shop_id, reason, dry_run=dry_run, changed=False))
            blog.processed(self.ITEM_TYPE, shop_id, success=False)
        blog.finished()
        return summary

    # -- one shop ------------------------------------------------------------------------------

    def _handle(
        self, shop: Mapping[str, Any], shop_id: str, program: Any, *, dry_run: bool
    ) -> ItemOutcome:
        raise NotImplementedError

    def _item_type(self, shop: Mapping[str, Any]) -> str:
        return self.ITEM_TYPE

    def _redact(self, shop: Mapping[str, Any], text: str) -> str:
        """Hook to mask data that must not reach a log or summary (account numbers)."""
        return text

    def _one(
        self,
        shop: Mapping[str, Any],
        summary: BatchSummary,
        blog: BatchLog,
        *,
        dry_run: bool,
        changed: bool,
    ) -> None:
        try:
            shop_id = shop_id_of(shop)
        except InvalidItemError as exc:
            summary.add(ItemOutcome("<shop without id>", FAILED, exc.reason, failed=True))
            return
        kind = self._item_type(shop)
        blog.processing(kind, shop_id)
        try:
            decision = eligibility(shop, self.settings, require_consent=self.require_consent)
            verdict = self.providers.serves(
                HYPERWALLET, _int_id(shop_id), shop=shop, now=self._now()
            )
            if decision.eligible and verdict.provider not in (HYPERWALLET, NONE):
                reason = verdict.refusal(_int_id(shop_id), HYPERWALLET) or ""
                decision = Eligibility(None, SKIPPED_OTHER_PROVIDER, reason)
            if not decision.eligible:
                blog.validation_failed(kind, shop_id, decision.reason or "")
                if not dry_run:
                    self.queue.record_success(shop_id)
                outcome = ItemOutcome(shop_id, decision.status or "SKIPPED", decision.reason)
            else:
                outcome = self._handle(shop, shop_id, decision.program, dry_run=dry_run)
                if not dry_run:
                    self.queue.record_success(shop_id)
        except ConfigurationError:
            raise
        except (InvalidItemError, MiraklConnectorError) as exc:
            reason = self._redact(shop, _reason(exc))
            if isinstance(exc, InvalidItemError):
                blog.validation_failed(kind, shop_id, reason)
            summary.add(self._failure(shop_id, reason, dry_run=dry_run, changed=changed))
            blog.processed(kind, shop_id, success=False)
            return
        except Exception as exc:  # noqa: BLE001 - one bad shop must not stop the batch
            log.exception("Unexpected error on shop %s", shop_id)
            reason = self._redact(shop, f"unexpected error: {exc!r}")
            summary.add(self._failure(shop_id, reason, dry_run=dry_run, changed=changed))
            blog.processed(kind, shop_id, success=False)
            return
        summary.add(outcome)
        blog.processed(kind, shop_id, success=True)

    def _failure(self, shop_id: str, reason: str, *, dry_run: bool, changed: bool) -> ItemOutcome:
        """Queue the failure; only a first failure or an exhaustion is a failed item."""
        if dry_run:
            return ItemOutcome(shop_id, FAILED, reason, failed=True)
        return self.queue.fail(shop_id, reason, changed=changed)

    # -- Mirakl --------------------------------------------------------------------------------

    def _window_start(self) -> datetime:
        floor = self._now() - timedelta(days=self.settings.extraction_max_days)
        stored = self.ledger.get_checkpoint(self.checkpoint_key)
        if stored:
            try:
                value = datetime.fromisoformat(stored)
            except ValueError:
                value = None
            if value is not None:
                value = value if value.tzinfo else value.replace(tzinfo=UTC)
                return max(value, floor)
        return floor

    def _read(
        self, *, updated_since: datetime | None = None, shop_ids: Sequence[str] | None = None
    ) -> list[Mapping[str, Any]]:
        # As the incumbent reads them: ``updated_since``/``shop_ids`` with ``paginate=false``.
        return list(
            self.mirakl.iter_shops(updated_since=updated_since, shop_ids=shop_ids, paginate=False)
        )

    def _log_retrieved(self, blog: BatchLog, shops: Sequence[Mapping[str, Any]]) -> None:
        """Individuals then professionals, as the incumbent's two S20 reads logged them."""
        blog.shops_retrieved(_raw_id(s) for s in shops if not is_professional(s))
        blog.shops_retrieved(_raw_id(s) for s in shops if is_professional(s))

    def write_fields(self, shop_id: str, values: Mapping[str, str | None]) -> None:
        """S07 the shop's additional fields (``None`` removes the value); raises on refusal.

        A removal is sent as the field with a ``null`` value, as the Hyperwallet connector does
        (its S07 of ``hw-bankaccount-token`` on a bank-account change); Mirakl's published
        ``S07_Request_Shops_ShopAdditionalFields`` removes the value when ``value`` is absent and
        declares the structure nullable, so both forms clear it.
        """
        try:
            numeric_id = int(shop_id)
        except ValueError:
            raise InvalidItemError(f"shop id {shop_id!r} is not a number") from None
        fields = [
            {"code": code, "value": None if value in (None, "") else value}
            for code, value in values.items()
        ]
        returns = self.mirakl.update_shops(
            [{"shop_id": numeric_id, "shop_additional_fields": fields}]
        )
        errors = shop_errors([numeric_id], returns)
        if errors:
            raise MiraklApiError(
                "S07", errors[numeric_id], http_status=200, method="PUT", path="/api/shops"
            )


def check_programs(
    hyperwallet: HyperwalletClient, settings: HyperwalletSettings, workflow: str
) -> BatchSummary:
    """Call ``GET /programs/{token}`` for every configured token; raise on the first refusal.

    A wrong password or program token fails the task that runs this, with a message naming the
    program, instead of failing every shop of the run one by one.
    """
    summary = BatchSummary(workflow, "check")
    checked: set[str] = set()
    for program in settings.active_programs:
        for kind, token in (("users", program.user_token), ("payments", program.payment_token)):
            if not token or token in checked:
                continue
            checked.add(token)
            try:
                hyperwallet.get_program(token)
            except HyperwalletApiError as exc:
                raise ConfigurationError(
                    f"Hyperwallet refused the {kind} program token of program "
                    f"{program.name!r} ({token}): {exc}"
                ) from None
            summary.add(ItemOutcome(f"{program.name}:{kind}", "PROGRAM_OK", token))
    return summary


def _reason(exc: Exception) -> str:
    if isinstance(exc, InvalidItemError):
        return f"invalid data: {exc.reason}"
    if isinstance(exc, MiraklApiError):
        return f"Mirakl {exc.endpoint} error: {exc.message}"
    return str(exc)


def _raw_id(shop: object) -> str:
    return str(shop.get("shop_id")) if isinstance(shop, Mapping) else ""


def _int_id(shop_id: str) -> int | None:
    return int(shop_id) if shop_id.isdigit() else None
