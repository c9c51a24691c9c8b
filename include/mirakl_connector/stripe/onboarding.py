"""Seller onboarding: every Mirakl shop gets a Stripe Express account and a link to finish it.

One step, ``sync``, one Airflow task. For the shops updated in Mirakl (S20) since the checkpoint,
plus the shops of the retry queue:

1. get or create the shop's Express account (metadata ``miraklShopId``) and its account mapping
   in the ledger (payouts/charges enabled, disabled reason);
2. copy the shop's "ignored" additional field (``stripe-ignored`` = ``"true"``) to the mapping;
3. when the shop's link field (``stripe-url``) is empty or still holds a legacy OAuth link,
   create a Stripe account link and write it to the field with S07 (100 shops a call).

Deliberate changes from the Stripe connector:

* The account is created with an idempotency key derived from the shop id, and the shop is put
  in the retry queue *before* the Stripe call: a crash between Stripe's answer and the ledger
  write is replayed with the same key (Stripe returns the same account) within 23 h, and after
  that the account is looked up by its ``miraklShopId`` metadata before anything is created.
* A shop whose Stripe or Mirakl call failed goes to the ledger's retry queue with the reason,
  and is retried every run until it succeeds (the incumbent forgot it until the shop changed).
  Only its first failure counts as a failed item (which turns the run red and e-mails); later
  failed retries are counted as ``RETRY_PENDING`` so a stuck shop does not e-mail every minute.
* The checkpoint (newest ``last_updated_date``, compared as instants) is saved only after the
  whole batch is recorded; shops that failed are safe in the retry queue, so it may move on.
  A manual run (``since``, ``shop_ids``) never moves it: it did not read every shop updated
  after the checkpoint, and moving past them would leave them never onboarded.

A dry run decides and reports: no account, no link, no S07, no ledger write.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from mirakl_connector.core.batch import BatchSummary, ItemOutcome, chunked
from mirakl_connector.core.errors import (
    ConfigurationError,
    InvalidItemError,
    MiraklApiError,
    MiraklConnectorError,
    PaymentProviderError,
)
from mirakl_connector.core.ids import is_ascii_digits, parse_int_id
from mirakl_connector.core.registry import Resources
from mirakl_connector.core.settings import checked_values
from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.records import AccountMapping
from mirakl_connector.mirakl.client import MiraklClient
from mirakl_connector.mirakl.orders import parse_mirakl_datetime
from mirakl_connector.mirakl.shops import shop_errors
from mirakl_connector.operations.payout_provider import STRIPE, PayoutProviderRule
from mirakl_connector.operations.retry_queue import RETRY_QUEUED, RetryQueue
from mirakl_connector.stripe.gateway import REPLAY_WINDOW, StripeGateway, idempotency_key
from mirakl_connector.stripe.kyc_rules import kyc_status
from mirakl_connector.stripe.specs import SELLER_ONBOARDING

log = logging.getLogger(__name__)

WORKFLOW = SELLER_ONBOARDING.name
CHECKPOINT_KEY = "seller_onboarding_checkpoint"
CHUNK_SIZE = 100
#: The legacy Connect OAuth link some shops still carry: replaced by an account link.
LEGACY_OAUTH_MARKER = "express/oauth/authorize"
#: Reason stored in the retry queue while an account creation is under way (crash = in doubt).
CREATING_REASON = "creating the Stripe account (if this stays, the creation is in doubt)"

# Outcome statuses of one shop (the summary's counts).
ACCOUNT_CREATED = "ACCOUNT_CREATED"
LINK_SENT = "LINK_SENT"
UPDATED = "UPDATED"
UNCHANGED = "UNCHANGED"
#: A shop another payout provider pays (see mirakl_connector.operations.payout_provider): left
#: alone.
NOT_STRIPE_SHOP = "NOT_STRIPE_SHOP"


@dataclass(frozen=True)
class OnboardingSettings:
    """The ``seller_onboarding`` section of the connector configuration.

    :param refresh_base_url: public base of the connector's web endpoint; Stripe sends a seller
        whose link expired to ``<refresh_base_url>/onboarding/refresh?token=<token>``.
    :param return_url: where Stripe sends the seller after onboarding; ``None`` = the shop page
        of the Mirakl back office (``<mirakl base>/mmp/shop/account/shop``).
    """

    enabled: bool = True
    prefill: bool = False
    ignored_field: str = "stripe-ignored"
    link_field: str = "stripe-url"
    refresh_base_url: str = "http://127.0.0.1:8080/mirakl-connector"
    return_url: str | None = None

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> OnboardingSettings:
        values = checked_values(cls, values, "seller_onboarding")
        for name in ("ignored_field", "link_field", "refresh_base_url"):
            if name in values and (not isinstance(values[name], str) or not values[name]):
                raise ConfigurationError(f"seller_onboarding.{name} must be a non-empty string")
        return cls(**values)

    def refresh_url(self, token: str) -> str:
        return f"{self.refresh_base_url.rstrip('/')}/onboarding/refresh?token={token}"

    def return_url_for(self, mirakl_base_url: str) -> str:
        return self.return_url or f"{mirakl_base_url.rstrip('/')}/mmp/shop/account/shop"


# -- pure decisions over a shop ------------------------------------------------------------


def shop_id_of(shop: object) -> int:
    """The shop's integer id; :class:`InvalidItemError` when it has none we can use."""
    raw = shop.get("shop_id") if isinstance(shop, Mapping) else None
    number = parse_int_id(raw, field="shop_id", optional=False)
    assert number is not None
    return number


def additional_field(shop: Mapping[str, Any], code: str) -> Any:
    """The value of the shop's additional field ``code`` (``None`` when absent)."""
    for item in shop.get("shop_additional_fields") or []:
        if isinstance(item, Mapping) and item.get("code") == code:
            return item.get("value")
    return None


def is_ignored(shop: Mapping[str, Any], field_code: str) -> bool:
    """The operator flags a shop ignored with the string ``"true"`` in the field (any case)."""
    value = additional_field(shop, field_code)
    return str(value).strip().lower() == "true" if value is not None else False


def needs_onboarding_link(shop: Mapping[str, Any], field_code: str) -> bool:
    """True when the link field is empty or still holds a legacy Connect OAuth link."""
    value = additional_field(shop, field_code)
    text = str(value).strip() if value is not None else ""
    return not text or LEGACY_OAUTH_MARKER in text


def prefill_params(shop: Mapping[str, Any]) -> dict[str, Any]:
    """Account-creation parameters prefilled from the shop, so the seller types less.

    Empty values are left out: Stripe refuses empty strings for most of these fields.
    """
    contact = shop.get("contact_informations") or {}
    profile = {
        "name": shop.get("shop_name"),
        "url": contact.get("web_site"),
        "support_email": contact.get("email"),
        "support_phone": contact.get("phone"),
    }
    params: dict[str, Any] = {
        "business_type": "company" if _truthy(shop.get("is_professional")) else "individual"
    }
    profile = {k: str(v) for k, v in profile.items() if v not in (None, "")}
    if profile:
        params["business_profile"] = profile
    return params


def mapping_from_account(
    shop_id: int, account: Mapping[str, Any], existing: AccountMapping | None = None
) -> AccountMapping:
    """The account mapping of ``shop_id`` with Stripe's view of the account copied in."""
    requirements = account.get("requirements") or {}
    base = existing or AccountMapping(mirakl_shop_id=shop_id, stripe_account_id=account["id"])
    return replace(
        base,
        stripe_account_id=account["id"],
        payouts_enabled=bool(account.get("payouts_enabled")),
        charges_enabled=bool(account.get("charges_enabled")),
        disabled_reason=requirements.get("disabled_reason") or None,
        # Known from the start: a new account's transfers wait for verification (never "unknown").
        kyc_status=kyc_status(account) or base.kyc_status,
    )


def newest_date(dates: Iterable[str | None]) -> str | None:
    """The latest of Mirakl date strings, compared as instants (not as text), kept verbatim.

    Unparseable values are skipped: one bad shop date must not stop the checkpoint.
    """
    newest: tuple[datetime, str] | None = None
    for raw in dates:
        try:
            when = parse_mirakl_datetime(raw, field="last_updated_date")  # type: ignore[arg-type]
        except InvalidItemError:
            continue
        if newest is None or when > newest[0]:
            newest = (when, raw)  # type: ignore[assignment]
    return newest[1] if newest else None


#: How long a refresh token (the ``token`` of the refresh URL) may be used after it was issued.
#: The URL sits in the shop's link field and in Stripe's account links: a leaked one must not
#: hand out links to the seller's account for ever. A seller coming back later gets a new
#: link (and token) from the next onboarding or KYC monitor run that writes one.
REFRESH_TOKEN_TTL = timedelta(days=30)


def new_token(now: datetime | None = None) -> str:
    """A random token naming a shop in the refresh URL: 32 hex characters, ``.``, and the
    Unix time it was issued (so it can expire without a column of its own)."""
    issued = int((now or datetime.now(UTC)).timestamp())
    return f"{secrets.token_hex(16)}.{issued}"


def usable_token(
    token: str | None, now: datetime | None = None, *, accept_legacy: bool = True
) -> str | None:
    """``token`` while it is younger than :data:`REFRESH_TOKEN_TTL`, else ``None``.

    A token without its time was issued before tokens expired: the refresh URL still accepts
    it (``accept_legacy``), so no seller is cut off mid-onboarding by the upgrade, but a
    workflow writing a new link replaces it (``accept_legacy=False``), so it does not live on.
    """
    if not token:
        return None
    _, dot, issued = token.rpartition(".")
    if not dot:
        return token if accept_legacy else None
    if not is_ascii_digits(issued) or len(issued) > 12:
        return None
    age = (now or datetime.now(UTC)) - datetime.fromtimestamp(int(issued), UTC)
    return token if timedelta(0) <= age <= REFRESH_TOKEN_TTL else None


# -- the job -------------------------------------------------------------------------------


@dataclass
class _ShopWork:
    """One shop in hand: what was done so far and what remains to write to Mirakl."""

    shop_id: int
    shop: Mapping[str, Any]
    retrying: bool  # already in the retry queue before this run
    mapping: AccountMapping | None = None
    created: bool = False
    ignored_changed: bool = False
    link: str | None = None
    token: str | None = None
    token_is_new: bool = False
    notes: list[str] = field(default_factory=list)


class SellerOnboarding:
    """The seller onboarding job; see the module docstring.

    :param now: the clock deciding whether an in-doubt account creation is still inside Stripe's
        idempotency window (tests move it forward).
    """

    def __init__(
        self,
        *,
        mirakl: MiraklClient,
        stripe: StripeGateway,
        ledger: Ledger,
        settings: OnboardingSettings,
        run_id: str | None = None,
        now: Callable[[], datetime] | None = None,
        providers: PayoutProviderRule | None = None,
    ) -> None:
        self.mirakl = mirakl
        self.stripe = stripe
        self.ledger = ledger
        self.settings = settings
        self.run_id = run_id
        self._now = now or (lambda: datetime.now(UTC))
        #: which shops Stripe pays (see mirakl_connector.operations.payout_provider): only those
        #: onboard
        self.providers = providers or PayoutProviderRule()
        #: retried every run until done; a shop's first failure is RETRY_QUEUED (alerted on)
        self.queue = RetryQueue(ledger, WORKFLOW, first_status=RETRY_QUEUED, now=self._now)

    def sync(
        self,
        *,
        since: datetime | None = None,
        shop_ids: Sequence[str] | None = None,
        dry_run: bool = False,
    ) -> BatchSummary:
        """Onboard the shops updated since the checkpoint (or ``since``) and the retry queue.

        :param since: read the shops updated since then instead (the checkpoint does not move).
        :param shop_ids: only these shops (the checkpoint does not move).
        """
        summary = BatchSummary(WORKFLOW, "sync", dry_run=dry_run)
        if not self.settings.enabled:
            summary.notes.append("seller onboarding is disabled (seller_onboarding.enabled)")
            return summary

        queued = dict(self.queue.load())  # as at the start: a failure in this run is a first
        wanted = [str(i) for i in shop_ids] if shop_ids else None
        start: datetime | str | None = None
        if not wanted:
            start = since or self.ledger.get_checkpoint(CHECKPOINT_KEY)

        seen: set[str] = set()
        newest: str | None = None

        def updated_shops() -> Iterator[Mapping[str, Any]]:
            nonlocal newest
            for shop in self.mirakl.iter_shops(updated_since=start, shop_ids=wanted):
                newest = newest_date([newest, _get(shop, "last_updated_date")])
                yield shop

        for chunk in chunked(updated_shops(), CHUNK_SIZE):
            seen.update(_raw_id(shop) for shop in chunk)
            self._process(chunk, queued, summary, dry_run=dry_run)

        retry_ids = [i for i in queued if i not in seen and (wanted is None or i in wanted)]
        for ids in chunked(retry_ids, CHUNK_SIZE):
            shops = list(self.mirakl.iter_shops(shop_ids=ids))
            returned = {_raw_id(shop) for shop in shops}
            self._process(shops, queued, summary, dry_run=dry_run)
            for missing in ids:
                if missing not in returned:
                    reason = f"Shop {missing} is not returned by Mirakl (S20)"
                    self._fail(missing, reason, queued, summary, dry_run=dry_run)
        if queued:
            summary.notes.append(f"{len(queued)} shop(s) were in the retry queue at the start")

        if newest is not None and not dry_run and not wanted and since is None:
            # a manual run (since, shop_ids) did not read every shop after the checkpoint
            current = self.ledger.get_checkpoint(CHECKPOINT_KEY)
            if current is None or parse_mirakl_datetime(newest) > _instant(current):
                self.ledger.set_checkpoint(CHECKPOINT_KEY, newest)
                summary.notes.append(f"{CHECKPOINT_KEY} moved to {newest}")
        log.info("%s", summary.describe())
        return summary

    # -- one chunk ---------------------------------------------------------------------------

    def _process(
        self,
        shops: Sequence[Mapping[str, Any]],
        queued: Mapping[str, Any],
        summary: BatchSummary,
        *,
        dry_run: bool,
    ) -> None:
        work: list[_ShopWork] = []
        for shop in shops:
            try:
                shop_id = shop_id_of(shop)
            except InvalidItemError as exc:
                summary.add(ItemOutcome("<shop without id>", "FAILED", exc.reason, failed=True))
                continue
            verdict = self.providers.serves(STRIPE, shop_id, shop=shop, now=self._now())
            if verdict.provider != STRIPE:
                # Another provider pays this shop: no Stripe account, no link written to it.
                if str(shop_id) in queued and not dry_run:
                    self.queue.clear(str(shop_id))
                reason = verdict.refusal(shop_id, STRIPE)
                summary.add(ItemOutcome(str(shop_id), NOT_STRIPE_SHOP, reason))
                continue
            work.append(_ShopWork(shop_id, shop, retrying=str(shop_id) in queued))
        if not work:
            return
        mappings = self.ledger.account_mappings_by_shop(w.shop_id for w in work)

        ready: list[_ShopWork] = []
        for item in work:
            try:
                self._prepare(item, mappings.get(item.shop_id), queued, dry_run=dry_run)
            except ConfigurationError:
                raise
            except (MiraklConnectorError, InvalidItemError) as exc:
                self._fail(str(item.shop_id), _reason(exc), queued, summary, dry_run=dry_run)
                continue
            ready.append(item)

        to_link = [w for w in ready if w.link]
        failures: dict[int, str] = {}
        if to_link and not dry_run:
            failures = self._write_links(to_link)
        for item in ready:
            if item.shop_id in failures:
                reason = failures[item.shop_id]
                self._fail(str(item.shop_id), reason, queued, summary, dry_run=dry_run)
                continue
            if item.link and item.token_is_new and not dry_run and item.mapping is not None:
                item.mapping = self.ledger.upsert_account_mapping(
                    replace(item.mapping, onboarding_token=item.token)
                )
            if item.retrying and not dry_run:
                self.queue.clear(str(item.shop_id))
            summary.add(_outcome(item, link_field=self.settings.link_field, dry_run=dry_run))

    def _prepare(
        self,
        item: _ShopWork,
        mapping: AccountMapping | None,
        queued: Mapping[str, Any],
        *,
        dry_run: bool,
    ) -> None:
        """Account, mapping, ignored flag and (when due) the account link of one shop."""
        shop = item.shop
        if mapping is None:
            if dry_run:
                item.notes.append("would create a Stripe Express account")
            else:
                account = self._get_or_create_account(item, queued)
                mapping = self.ledger.upsert_account_mapping(
                    mapping_from_account(item.shop_id, account)
                )
                if not item.retrying:
                    # The creation mark only guarded the Stripe call; a later failure of this
                    # shop is recorded afresh, as its first.
                    self.queue.clear(str(item.shop_id))
                item.created = True
                item.notes.append(f"Stripe account {mapping.stripe_account_id} created")

        ignored = is_ignored(shop, self.settings.ignored_field)
        if mapping is not None and mapping.ignored != ignored:
            item.ignored_changed = True
            item.notes.append("flagged ignored" if ignored else "no longer ignored")
            mapping = replace(mapping, ignored=ignored)
            if not dry_run:
                mapping = self.ledger.upsert_account_mapping(mapping)
        item.mapping = mapping

        if not needs_onboarding_link(shop, self.settings.link_field):
            return
        if mapping is None:  # dry run of a new shop
            item.link = "(dry run)"
            item.notes.append(f"would write an onboarding link to {self.settings.link_field}")
            return
        current = usable_token(mapping.onboarding_token, self._now(), accept_legacy=False)
        item.token = current or new_token(self._now())
        item.token_is_new = item.token != mapping.onboarding_token
        if dry_run:
            item.link = "(dry run)"
            item.notes.append(f"would write an onboarding link to {self.settings.link_field}")
            return
        item.link = self.stripe.create_account_link(
            mapping.stripe_account_id,
            refresh_url=self.settings.refresh_url(item.token),
            return_url=self.settings.return_url_for(self.mirakl.base_url),
        )

    def _get_or_create_account(self, item: _ShopWork, queued: Mapping[str, Any]) -> dict[str, Any]:
        """Create the shop's Express account exactly once, whatever crashed before.

        The shop enters the retry queue before the call; if the process dies after Stripe
        answered, the next run finds the shop there without a mapping: within the replay window
        the same idempotency key returns the same account, after it the account is looked up
        by its ``miraklShopId`` metadata first.
        """
        shop_id = item.shop_id
        pending = queued.get(str(shop_id))
        first_try = pending.first_failed_at if pending is not None else None
        if first_try is not None and self._now() - _aware(first_try) >= REPLAY_WINDOW:
            found = self._find_account(shop_id)
            if found is not None:
                log.info("Shop %s: found its Stripe account %s by metadata", shop_id, found["id"])
                return found
        if pending is None:
            self.queue.mark(str(shop_id), CREATING_REASON)
        prefill = prefill_params(item.shop) if self.settings.prefill else None
        account = self.stripe.create_express_account(
            shop_id=shop_id, idempotency_key=idempotency_key("account", shop_id), prefill=prefill
        )
        return account

    def _find_account(self, shop_id: int) -> dict[str, Any] | None:
        for account in self.stripe.iter_accounts():
            if (account.get("metadata") or {}).get("miraklShopId") == str(shop_id):
                return dict(account)
        return None

    def _write_links(self, items: Sequence[_ShopWork]) -> dict[int, str]:
        """S07 the links (100 shops a call); return the reason of every shop not updated."""
        code = self.settings.link_field
        payload = [
            {
                "shop_id": w.shop_id,
                "shop_additional_fields": [{"code": code, "value": w.link}],
            }
            for w in items
        ]
        try:
            returns = self.mirakl.update_shops(payload)
        except ConfigurationError:
            raise
        except MiraklApiError as exc:
            reason = f"Mirakl S07 failed: {exc.message}"
            return {w.shop_id: reason for w in items}
        return shop_errors([w.shop_id for w in items], returns)

    def _fail(
        self,
        shop_id: str,
        reason: str,
        queued: Mapping[str, Any],
        summary: BatchSummary,
        *,
        dry_run: bool,
    ) -> None:
        """Queue the shop for the next run; only a new entry is a failure to alert on."""
        outcome = self.queue.fail(shop_id, reason, first=shop_id not in queued, dry_run=dry_run)
        log.warning("Shop %s: %s (queued for retry)", shop_id, reason)
        summary.add(outcome)


def build(resources: Resources, config: Mapping[str, Any], run_id: str | None) -> SellerOnboarding:
    """Registry entry: the job wired to the run's clients and ``config["seller_onboarding"]``."""
    return SellerOnboarding(
        mirakl=resources.get("mirakl"),
        stripe=resources.get("stripe"),
        ledger=resources.get("ledger"),
        settings=OnboardingSettings.from_mapping(config.get("seller_onboarding")),
        run_id=run_id,
        providers=PayoutProviderRule.from_config(config),
    )


def _outcome(item: _ShopWork, *, link_field: str, dry_run: bool) -> ItemOutcome:
    """One line per shop: what was (or, in a dry run, would be) done, and the details."""
    if item.created or (dry_run and item.mapping is None):
        status = ACCOUNT_CREATED
    elif item.link:
        status = LINK_SENT
    elif item.ignored_changed:
        status = UPDATED
    else:
        status = UNCHANGED
    notes = list(item.notes)
    if item.link and not dry_run:
        notes.append(f"onboarding link written to {link_field}")
    if dry_run and status != UNCHANGED:
        status = {
            ACCOUNT_CREATED: "WOULD_CREATE_ACCOUNT",
            LINK_SENT: "WOULD_SEND_LINK",
            UPDATED: "WOULD_UPDATE",
        }[status]
    return ItemOutcome(str(item.shop_id), status, "; ".join(notes) or None)


def _reason(exc: Exception) -> str:
    if isinstance(exc, PaymentProviderError):
        return f"Stripe error: {exc.message}"
    if isinstance(exc, MiraklApiError):
        return f"Mirakl error: {exc.message}"
    if isinstance(exc, InvalidItemError):
        return f"invalid data: {exc.reason}"
    return str(exc)


def _get(shop: object, name: str) -> Any:
    return shop.get(name) if isinstance(shop, Mapping) else None


def _raw_id(shop: object) -> str:
    return str(_get(shop, "shop_id"))


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _instant(value: str) -> datetime:
    try:
        return parse_mirakl_datetime(value)
    except InvalidItemError:
        return datetime.min.replace(tzinfo=UTC)
