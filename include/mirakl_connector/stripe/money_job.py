"""What a money-moving Stripe job is built with: the clients, its settings, the run, its rules.

The payment split and the seller settlement take the same arguments and keep them the same way;
this base holds them once. (The refunds take a tax-split flag and no approval gate, the
onboarding moves no money: each keeps its own constructor.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Generic, Self, TypeVar

from mirakl_connector.core.registry import Resources
from mirakl_connector.ledger import Ledger
from mirakl_connector.mirakl.client import MiraklClient
from mirakl_connector.operations.approval_gate import ApprovalSettings
from mirakl_connector.operations.first_run import GoLive, go_live_from_config
from mirakl_connector.operations.payout_provider import ShopProviders
from mirakl_connector.operations.provider_guard import default_providers, shop_providers
from mirakl_connector.stripe.charge_prefetch import ChargePrefetch
from mirakl_connector.stripe.gateway import StripeGateway

S = TypeVar("S")


class MoneyJob(Generic[S]):
    """The job's clients, ``settings`` (its section of the configuration) and rules."""

    def __init__(
        self,
        *,
        mirakl: MiraklClient,
        stripe: StripeGateway,
        ledger: Ledger,
        settings: S,
        run_id: str | None = None,
        go_live: GoLive | None = None,
        providers: ShopProviders | None = None,
        now: Callable[[], datetime] | None = None,
        approval: ApprovalSettings | None = None,
    ) -> None:
        self.mirakl = mirakl
        self.stripe = stripe
        self.ledger = ledger
        self.settings = settings
        self.run_id = run_id
        self._now = now or (lambda: datetime.now(UTC))
        #: the charges of the orders read, listed in bulk (see .charge_prefetch)
        self._charges = ChargePrefetch(stripe)
        #: which rows wait for a person's approval (see mirakl_connector.operations.approval_gate)
        self.approval = approval or ApprovalSettings()
        #: first run without checkpoint: nothing created before this moves (see first_run)
        self.go_live = go_live or GoLive()
        #: which provider pays each shop (see mirakl_connector.operations.payout_provider)
        self.providers = providers or default_providers(mirakl)

    @classmethod
    def wired(
        cls,
        resources: Resources,
        config: Mapping[str, Any],
        run_id: str | None,
        *,
        section: str,
        parse: Callable[[Any], S],
    ) -> Self:
        """The job of one run (its registry entry): the run's clients, its settings parsed by
        ``parse`` from ``config[section]``, and the shared go-live, payout-provider and approval
        settings."""
        return cls(
            mirakl=resources.get("mirakl"),
            stripe=resources.get("stripe"),
            ledger=resources.get("ledger"),
            settings=parse(config.get(section)),
            run_id=run_id,
            go_live=GoLive(go_live_from_config(config)),
            providers=shop_providers(config, resources.get("mirakl")),
            approval=ApprovalSettings.from_mapping(config.get("approval")),
        )
