"""Which payout provider pays a Mirakl shop: the one rule every workflow of both providers reads.

A marketplace may pay some sellers through Stripe Connect and others through PayPal Hyperwallet.
Each Mirakl order, refund and invoice must be paid by exactly one of them, so every workflow that
creates an account or moves money asks :meth:`PayoutProviderRule.provider` first, and the
ledger's payment claims (:mod:`mirakl_connector.ledger.claims`) make the answer stick.

The rule, first match wins (``payout_provider`` section of the connector configuration)::

    "payout_provider": {
      "default": "stripe",
      "hyperwallet_field": "hw-program",
      "shops": {
        "7": "stripe",
        "201": {"provider": "hyperwallet", "from": "2026-12-01T00:00:00Z"}
      }
    }

1. ``shops.<shop id>``: the operator's word for that shop. A plain provider pins it. An object
   with ``from`` moves it: documents (orders, refunds, invoices) created at or after ``from``
   belong to ``provider``, documents created before it to the *other* provider. Account
   creation (Stripe onboarding, Hyperwallet extracts) serves the shop from now on if it is the
   shop's provider now or will be after its move, so the new provider is ready on the day.
2. ``hyperwallet_field`` (default ``hw-program``, the Hyperwallet connector's own field): a shop
   where it is set is a Hyperwallet shop. It is read only when Hyperwallet programs are
   configured (a Stripe-only deployment never reads shops for this), and ``null`` turns it off.
3. ``default`` (``stripe``): every other shop. ``none`` leaves such shops to nobody: their
   money waits (counted with the reason) until the operator assigns them.

The Stripe connector had no such rule (it handled every shop); the Hyperwallet connector skipped
shops without ``hw-program``. Rule 2 is that same test, so both connectors' shops keep their
provider without any configuration; rule 1 is what a move or an exception needs.

Which date a document has: an order its creation date, an invoice its ``date_created``, a refund
the creation date of its order. Set ``from`` at a billing-cycle boundary (just after Mirakl
issued the cycle's invoices): the orders of a cycle and the invoice paying it then belong to the
same provider. Whatever the date, a document is claimed by one provider only, once.

Pure: no Airflow, no network. A workflow that needs shop fields passes the shops it has read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.core.settings import refuse_unknown

SECTION = "payout_provider"

STRIPE = "stripe"
HYPERWALLET = "hyperwallet"
NONE = "none"
PROVIDERS = (STRIPE, HYPERWALLET)
PROVIDER_NAMES = {STRIPE: "Stripe", HYPERWALLET: "Hyperwallet"}

DEFAULT_HYPERWALLET_FIELD = "hw-program"
_KNOWN_KEYS = {"default", "hyperwallet_field", "shops"}


def other(provider: str) -> str:
    """The provider that is not ``provider``."""
    return HYPERWALLET if provider == STRIPE else STRIPE


@dataclass(frozen=True)
class ShopAssignment:
    """``shops.<id>``: the shop's provider, from ``effective`` on when it is a move."""

    provider: str
    effective: datetime | None = None

    def at(self, when: datetime | None) -> str:
        if self.effective is None or when is None or when >= self.effective:
            return self.provider
        return other(self.provider)

    def describe(self, shop_id: int | None) -> str:
        if self.effective is None:
            return f"{SECTION}.shops.{shop_id}"
        return (
            f"{SECTION}.shops.{shop_id}: {other(self.provider)} before "
            f"{self.effective.isoformat()}, {self.provider} from then on"
        )


@dataclass(frozen=True)
class ProviderVerdict:
    """Which provider pays, and the rule that said so (shown in every refusal)."""

    provider: str  # stripe, hyperwallet or none
    rule: str

    def refusal(self, shop_id: int | None, provider: str) -> str | None:
        """Why ``provider`` must not pay this shop's document, or ``None`` when it may."""
        if self.provider == provider:
            return None
        owner = PROVIDER_NAMES.get(self.provider, "no provider")
        return f"Shop {shop_id} is paid by {owner}, not {PROVIDER_NAMES[provider]} ({self.rule})"


@dataclass(frozen=True)
class PayoutProviderRule:
    """The ``payout_provider`` section, typed; see the module docstring."""

    default: str = STRIPE
    hyperwallet_field: str | None = DEFAULT_HYPERWALLET_FIELD
    shops: Mapping[int, ShopAssignment] = field(default_factory=dict)
    #: False when no Hyperwallet program is configured: the field is then not read at all.
    hyperwallet_configured: bool = False

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> PayoutProviderRule:
        """Parse ``config["payout_provider"]``; every error names the key and the reason."""
        config = config or {}
        values = config.get(SECTION)
        values = {} if values is None else values
        if not isinstance(values, Mapping):
            raise ConfigurationError(f"{SECTION} must be an object")
        refuse_unknown(values, _KNOWN_KEYS, SECTION)
        default = values.get("default", STRIPE)
        if default not in (*PROVIDERS, NONE):
            raise ConfigurationError(
                f"{SECTION}.default must be one of stripe, hyperwallet, none; got {default!r}"
            )
        hw_field = values.get("hyperwallet_field", DEFAULT_HYPERWALLET_FIELD)
        if hw_field is not None and (not isinstance(hw_field, str) or not hw_field.strip()):
            raise ConfigurationError(
                f"{SECTION}.hyperwallet_field must be a Mirakl shop field code or null, "
                f"got {hw_field!r}"
            )
        raw_shops = values.get("shops") or {}
        if not isinstance(raw_shops, Mapping):
            raise ConfigurationError(f"{SECTION}.shops must be an object: shop id → provider")
        shops = {}
        for key, value in raw_shops.items():
            shop_id = _shop_key(key)
            shops[shop_id] = _assignment(shop_id, value)
        hw = config.get("hyperwallet") or {}
        configured = isinstance(hw, Mapping) and bool(hw.get("programs") or hw.get("program_names"))
        return cls(
            default=default,
            hyperwallet_field=hw_field.strip() if isinstance(hw_field, str) else None,
            shops=shops,
            hyperwallet_configured=configured,
        )

    # -- the rule ---------------------------------------------------------------------------

    @property
    def reads_shop_fields(self) -> bool:
        """True when the rule needs the shop's Mirakl fields (S20) for shops not in ``shops``."""
        return self.hyperwallet_configured and self.hyperwallet_field is not None

    def needs_shop(self, shop_id: int | None) -> bool:
        return shop_id is not None and shop_id not in self.shops and self.reads_shop_fields

    def provider(
        self,
        shop_id: int | None,
        *,
        shop: Mapping[str, Any] | None = None,
        at: datetime | None = None,
    ) -> ProviderVerdict:
        """Who pays ``shop_id``'s document created ``at`` (``None``: now, for accounts).

        :param shop: the shop as S20 returns it; needed when :meth:`needs_shop` is true
            (without it, a shop the rule cannot place is paid by nobody, with that reason).
        """
        assignment = self.shops.get(shop_id) if shop_id is not None else None
        if assignment is not None:
            return ProviderVerdict(assignment.at(at), assignment.describe(shop_id))
        if self.reads_shop_fields:
            if shop is None:
                return ProviderVerdict(
                    NONE, f"shop {shop_id} not returned by Mirakl (S20): provider unknown"
                )
            if _field_set(shop, self.hyperwallet_field):
                return ProviderVerdict(HYPERWALLET, f"shop field {self.hyperwallet_field} is set")
            return ProviderVerdict(
                self.default, f"{SECTION}.default (no {self.hyperwallet_field} on the shop)"
            )
        return ProviderVerdict(self.default, f"{SECTION}.default")

    def serves(
        self,
        provider: str,
        shop_id: int | None,
        *,
        shop: Mapping[str, Any] | None = None,
        now: datetime,
    ) -> ProviderVerdict:
        """For account creation: the verdict naming ``provider`` when it pays the shop now or
        after a configured move still to come; otherwise the shop's current verdict."""
        verdict = self.provider(shop_id, shop=shop, at=now)
        if verdict.provider == provider:
            return verdict
        assignment = self.shops.get(shop_id) if shop_id is not None else None
        if (
            assignment is not None
            and assignment.provider == provider
            and assignment.effective is not None
        ):
            return ProviderVerdict(provider, assignment.describe(shop_id) + " (move to come)")
        return verdict


def shop_ids_needing_fields(rule: PayoutProviderRule, shop_ids: Iterable[int | None]) -> list[int]:
    """The shops whose S20 record :meth:`PayoutProviderRule.provider` needs, sorted."""
    return sorted({s for s in shop_ids if s is not None and rule.needs_shop(s)})


def _field_set(shop: Mapping[str, Any], code: str | None) -> bool:
    if code is None:
        return False
    for item in shop.get("shop_additional_fields") or []:
        if isinstance(item, Mapping) and item.get("code") == code:
            value = item.get("value")
            return value is not None and str(value).strip() != ""
    return False


def _shop_key(key: Any) -> int:
    text = str(key).strip()
    if not text.isdigit():
        raise ConfigurationError(f"{SECTION}.shops: key {key!r} is not a Mirakl shop id")
    return int(text)


def _assignment(shop_id: int, value: Any) -> ShopAssignment:
    where = f"{SECTION}.shops.{shop_id}"
    if isinstance(value, str):
        value = {"provider": value}
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"{where} must be a provider (stripe, hyperwallet) or an object "
            '{"provider": ..., "from": "<RFC 3339 date-time>"}'
        )
    refuse_unknown(value, ("provider", "from"), where)
    provider = value.get("provider")
    if provider not in PROVIDERS:
        raise ConfigurationError(
            f"{where}.provider must be stripe or hyperwallet, got {provider!r}"
        )
    effective = value.get("from")
    if effective is None:
        return ShopAssignment(provider)
    return ShopAssignment(provider, parse_instant(effective, f"{where}.from"))


def parse_instant(value: Any, key: str) -> datetime:
    """An RFC 3339 date-time with a zone; a clear error naming ``key`` otherwise."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{key} must be an RFC 3339 date-time with a zone, got {value!r}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigurationError(
            f"{key} must be an RFC 3339 date-time with a zone, got {value!r}"
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ConfigurationError(f"{key} has no time zone: {value!r} (add Z or +00:00)")
    return parsed


class ShopProviders:
    """The rule for workflows that know only shop ids (orders, invoices): the shops the rule
    needs are read from Mirakl (S20, by id, 100 a call) once per run and kept.

    :param read_shops: ``shop ids → shops`` (``MiraklClient.iter_shops(shop_ids=...)``).
    """

    def __init__(
        self,
        rule: PayoutProviderRule,
        read_shops: Callable[[list[int]], Iterable[Mapping[str, Any]]],
    ) -> None:
        self.rule = rule
        self._read = read_shops
        self._shops: dict[int, Mapping[str, Any] | None] = {}

    def prefetch(self, shop_ids: Iterable[int | None]) -> None:
        missing = [s for s in shop_ids_needing_fields(self.rule, shop_ids) if s not in self._shops]
        if not missing:
            return
        for shop in self._read(missing):
            raw = shop.get("shop_id") if isinstance(shop, Mapping) else None
            if raw is not None and str(raw).strip().isdigit():
                self._shops[int(str(raw).strip())] = shop
        for shop_id in missing:
            self._shops.setdefault(shop_id, None)

    def verdict(self, shop_id: int | None, at: datetime | None) -> ProviderVerdict:
        if self.rule.needs_shop(shop_id):
            self.prefetch([shop_id])
        shop = self._shops.get(shop_id) if shop_id is not None else None
        return self.rule.provider(shop_id, shop=shop, at=at)

    def refusal(self, shop_id: int | None, at: datetime | None, provider: str) -> str | None:
        """Why ``provider`` must not pay ``shop_id``'s document created ``at`` (None: it may)."""
        if shop_id is None:
            return None
        return self.verdict(shop_id, at).refusal(shop_id, provider)
