"""What a person may do from the payments console, checked with the providers and audited.

* **retry** an item now: its DAG is triggered for its ids (:func:`retry_target`), as the user;
* **hold** an item not sent yet, and **release** it (the next run decides it again);
* **resolve** an item *in doubt* (sent, answer unknown) after checking the provider by hand:
  *found* attaches the object, once Stripe (or Hyperwallet) confirms it exists and matches the
  item's amount, currency and destination; *not found* lets the next run send it once with a
  new idempotency key, once the console's own lookup (the workflow's, by metadata) finds
  nothing;
* **map a shop** to an existing Stripe account (what the Stripe connector's
  ``POST /api/mappings`` does), once Mirakl has the shop, Stripe the account, and neither is
  mapped.

The ledger writes, their status events and the audit records are
:mod:`mirakl_connector.ledger.manual_actions`; a refused action is audited too (who tried what,
why it was refused). Nothing here knows Airflow: the run trigger is given
(:class:`ActionServices.trigger`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from mirakl_connector.core.errors import MiraklApiError, PaymentProviderError
from mirakl_connector.core.ids import is_ascii_digits
from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger import manual_rules as rules
from mirakl_connector.ledger.manual_actions import (
    ACCOUNT_MAPPING,
    ActionRecord,
    ActionRefused,
    ManualActions,
)
from mirakl_connector.ledger.records import (
    HyperwalletPayment,
    PayoutRecord,
    RefundRecord,
    TransferRecord,
    TransferType,
)

log = logging.getLogger(__name__)

#: The DAGs an item's retry triggers (the ids of :mod:`dags`).
SPLIT_DAG = "stripe_payment_split"
REFUND_DAG = "stripe_payment_refund"
SETTLEMENT_DAG = "stripe_seller_settlement"
HYPERWALLET_DAG = "hyperwallet_invoice_payments"
#: The Hyperwallet workflow whose retry queue a released payment's invoice goes back to.
HYPERWALLET_WORKFLOW = "hyperwallet_invoice_payments"

#: The id prefixes of the object a person may attach to a row (the provider's own prefixes).
OBJECT_PREFIXES: dict[str, tuple[str, ...]] = {
    "transfer": ("tr_",),
    "reversal": ("trr_",),
    "refund": ("re_", "pyr_"),
    "payout": ("po_",),
    "hyperwallet_payment": ("pmt-",),
}
_ACCOUNT_ID = re.compile(r"^acct_[A-Za-z0-9]+$")
_OBJECT_ID = re.compile(r"^[A-Za-z0-9_-]{4,255}$")


@dataclass(frozen=True)
class Actor:
    """Who acts: the user's name as the auth manager gives it (and its own user object)."""

    name: str
    #: the auth manager's user (the trigger asks it whether the user may trigger the DAG)
    raw: Any = field(default=None, compare=False, repr=False)
    #: ``ui`` (the page, a session cookie) or ``api`` (a Bearer token)
    via: str = "ui"


@dataclass(frozen=True)
class TriggeredRun:
    dag_id: str
    run_id: str
    #: the DAG is paused: the run waits in the queue until it is unpaused
    paused: bool = False


class TriggerRun(Protocol):
    """Create a DAG run with ``conf`` as ``actor``; raise :class:`ActionRefused` if not allowed."""

    def __call__(
        self, dag_id: str, conf: Mapping[str, Any], *, actor: Actor, note: str
    ) -> TriggeredRun: ...


@dataclass
class ActionServices:
    """Where the actions write and whom they ask (factories: built on first use)."""

    ledger: Callable[[], Ledger]
    trigger: TriggerRun
    stripe: Callable[[], Any] | None = None  # a StripeGateway
    mirakl: Callable[[], Any] | None = None  # a MiraklClient
    hyperwallet: Callable[[], Any] | None = None  # a HyperwalletClient


@dataclass(frozen=True)
class RetryTarget:
    dag_id: str
    conf: dict[str, Any]


def retry_target(
    entity: str, row: Any, refund_of: Callable[[str], Any] | None = None
) -> RetryTarget:
    """The DAG run that decides and sends ``row`` again: its DAG, narrowed to its ids.

    * an order transfer: the payment split for its order (``order_ids``; a manual run with ids
      re-reads those orders, held rows excepted);
    * a refund, or the reversal of one: the refund DAG for the refund's order (``order_ids``);
    * an invoice transfer or a payout: the settlement for the shop (``shop_id``: that shop's
      invoices only, the checkpoint unchanged); a row without shop: a plain run (its backlog);
    * a Hyperwallet payment: the invoice payments DAG for its invoice (``invoice_ids``, which also
      re-pays a payment Hyperwallet reported failed).
    """
    if entity == "transfer":
        if row.type in (TransferType.PRODUCT_ORDER, TransferType.SERVICE_ORDER):
            order_id = row.mirakl_id.removesuffix("_TAX")
            return RetryTarget(SPLIT_DAG, {"order_ids": [order_id]})
        if row.type is TransferType.REFUND:
            refund = refund_of(row.mirakl_id.removesuffix("_TAX")) if refund_of else None
            order = getattr(refund, "mirakl_order_id", None)
            return RetryTarget(REFUND_DAG, {"order_ids": [order]} if order else {})
        return _settlement(row.mirakl_shop_id)
    if entity == "refund":
        order = row.mirakl_order_id
        return RetryTarget(REFUND_DAG, {"order_ids": [order]} if order else {})
    if entity == "payout":
        return _settlement(row.mirakl_shop_id)
    return RetryTarget(HYPERWALLET_DAG, {"invoice_ids": [row.invoice_id]})


def _settlement(shop_id: int | None) -> RetryTarget:
    return RetryTarget(SETTLEMENT_DAG, {"shop_id": shop_id} if shop_id is not None else {})


def allowed_actions(item: Any) -> list[str]:
    """The actions an item's state allows now (a console ``Item``; the page shows their forms)."""
    state = rules.RowState(
        item.entity, item.status, item.reason, item.provider_object_id, item.attempted_at,
        item.attempts,
    )  # fmt: skip
    allowed = []
    if rules.retry_refusal(state) is None:
        allowed.append("retry")
    if rules.hold_refusal(state) is None:
        allowed.append("hold")
    if rules.release_refusal(state) is None:
        allowed.append("release")
    if rules.resolve_refusal(state, found=True) is None:
        allowed.append("resolve-found")
    if rules.resolve_refusal(state, found=False) is None:
        allowed.append("resolve-not-found")
    return allowed


class ConsoleActions:
    """The actions, one method each; every one returns the audit record of what was done, or
    raises :class:`ActionRefused` after recording the refusal."""

    def __init__(self, services: ActionServices) -> None:
        self.services = services

    @property
    def manual(self) -> ManualActions:
        return ManualActions(self.services.ledger())

    # -- actions -----------------------------------------------------------------------------

    def hold(self, entity: str, row_id: int, *, actor: Actor, why: str) -> ActionRecord:
        return self._audited(
            rules.HOLD, entity, row_id, actor, why,
            lambda: self.manual.hold(entity, row_id, user=actor.name, why=why),
        )  # fmt: skip

    def release(self, entity: str, row_id: int, *, actor: Actor, why: str) -> ActionRecord:
        def release() -> ActionRecord:
            done = self.manual.release(entity, row_id, user=actor.name, why=why)
            if entity == "hyperwallet_payment":
                self._requeue_invoice(row_id, done)
            return done

        return self._audited(rules.RELEASE, entity, row_id, actor, why, release)

    def retry(self, entity: str, row_id: int, *, actor: Actor, why: str) -> ActionRecord:
        def retry() -> ActionRecord:
            why_text = _why(why)
            manual = self.manual
            row = _record(manual, entity, row_id)
            _refuse(rules.retry_refusal(rules.RowState.of(entity, row)))
            ledger = self.services.ledger()
            target = retry_target(
                entity, row, lambda refund_id: ledger.get_refunds([refund_id]).get(refund_id)
            )
            note = (
                f"Payments console: retry of {entity} {_item(entity, row)} requested by "
                f"{actor.name}: {why_text}"
            )
            run = self.services.trigger(target.dag_id, target.conf, actor=actor, note=note)
            return manual.record_retry(
                entity, row_id, dag_id=run.dag_id, run_id=run.run_id, paused=run.paused,
                user=actor.name, why=why,
            )  # fmt: skip

        return self._audited(rules.RETRY, entity, row_id, actor, why, retry)

    def resolve(
        self,
        entity: str,
        row_id: int,
        *,
        actor: Actor,
        why: str,
        found: bool,
        object_id: str | None = None,
        attempts: int | None = None,
    ) -> ActionRecord:
        """Settle a row in doubt: ``found`` with ``object_id``, or not found.

        :param attempts: the row's attempt count the user looked at (the page sends it): when
            a run sent the row again since, the user decided on stale facts and is refused.
        """
        action = rules.RESOLVE_FOUND if found else rules.RESOLVE_NOT_FOUND

        def resolve() -> ActionRecord:
            _why(why)
            manual = self.manual
            row = _record(manual, entity, row_id)
            state = rules.RowState.of(entity, row)
            _refuse(rules.resolve_refusal(state, found=found))
            if attempts is not None and attempts != state.attempts:
                raise ActionRefused(
                    f"the item changed since the page was shown (attempt {attempts}, now "
                    f"{state.attempts}): reload it and check again"
                )
            if found:
                return self._attach(manual, entity, row, state, object_id, actor, why)
            return self._allow_resend(manual, entity, row, state, actor, why)

        return self._audited(action, entity, row_id, actor, why, resolve)

    def map_shop(
        self, shop_id: Any, stripe_account_id: Any, *, actor: Actor, why: str
    ) -> ActionRecord:
        """Map a Mirakl shop to an existing Stripe connected account, as the Stripe connector's
        ``POST /api/mappings``, with more checks: the shop must exist in Mirakl, the account at
        Stripe (and not be the platform's own), and neither may be mapped already."""
        shop_text = str(shop_id if shop_id is not None else "").strip()
        entity_id = int(shop_text) if is_ascii_digits(shop_text) else None
        account = str(stripe_account_id or "").strip()

        def map_shop() -> ActionRecord:
            _why(why)
            if entity_id is None:
                raise ActionRefused(f"{shop_text!r} is not a Mirakl shop id", status=422)
            if not _ACCOUNT_ID.match(account):
                raise ActionRefused(
                    f"{account!r} is not a Stripe account id (acct_...)", status=422
                )
            manual = self.manual
            existing = manual.mapping_of_shop(entity_id)
            if existing is not None:
                raise ActionRefused(
                    f"shop {entity_id} is already mapped to {existing.stripe_account_id}"
                )
            owner = self.services.ledger().account_mapping_by_stripe_account(account)
            if owner is not None:
                raise ActionRefused(
                    f"Stripe account {account} is already mapped to shop {owner.mirakl_shop_id}"
                )
            self._require_shop(entity_id)
            stripe_account = self._require_account(account)
            from mirakl_connector.stripe.onboarding import mapping_from_account

            mapping = mapping_from_account(entity_id, stripe_account)
            return manual.map_shop(mapping, user=actor.name, why=why)

        return self._audited(
            rules.MAP_SHOP, ACCOUNT_MAPPING, entity_id, actor, why, map_shop,
            item=f"shop {shop_text} → {account}",
        )  # fmt: skip

    # -- resolution ----------------------------------------------------------------------------

    def _attach(
        self,
        manual: ManualActions,
        entity: str,
        row: Any,
        state: rules.RowState,
        object_id: str | None,
        actor: Actor,
        why: str,
    ) -> ActionRecord:
        object_id = (object_id or "").strip()
        row_id: int = row.id  # read from the ledger (``_record``): it has its id
        kind = _object_kind(entity, row)
        prefixes = OBJECT_PREFIXES[kind]
        if not _OBJECT_ID.match(object_id) or not object_id.startswith(prefixes):
            raise ActionRefused(
                f"{object_id!r} is not the id of a {kind} ({' or '.join(prefixes)}...)",
                status=422,
            )
        if isinstance(row, HyperwalletPayment):
            payment = self._hyperwallet_payment(object_id)
            from mirakl_connector.hyperwallet.payment_checks import hyperwallet_payment_problems
            from mirakl_connector.hyperwallet.payment_decisions import ledger_status

            _mismatch(object_id, hyperwallet_payment_problems(payment, row))
            hw_status = str(payment.get("status") or "CREATED").upper()
            return manual.attach_found(
                entity, row_id, object_id=object_id, attempts=state.attempts,
                user=actor.name, why=why, status=ledger_status(hw_status).value,
                extra={"hw_status": hw_status, "hw_created_on": payment.get("createdOn")},
            )  # fmt: skip
        from mirakl_connector.stripe.lookups import stripe_object_problems

        try:
            problems = stripe_object_problems(self._stripe(), row, object_id)
        except PaymentProviderError as exc:
            raise _provider_refusal("Stripe", object_id, exc) from exc
        _mismatch(object_id, problems)
        # A refund found at Stripe still has to be validated in Mirakl (PA02/SPA02): it stays
        # PENDING with its id, and the refund step's next run validates it, as after a refund
        # it made itself.
        status = state.rules.pending if isinstance(row, RefundRecord) else None
        return manual.attach_found(
            entity, row_id, object_id=object_id, attempts=state.attempts,
            user=actor.name, why=why, status=status,
        )  # fmt: skip

    def _allow_resend(
        self,
        manual: ManualActions,
        entity: str,
        row: Any,
        state: rules.RowState,
        actor: Actor,
        why: str,
    ) -> ActionRecord:
        """Nothing was made: confirmed by the workflow's own lookup before the row may be sent
        with a new key (a person's "not found" alone could pay twice)."""
        from mirakl_connector.stripe.exactly_once import lookup_since
        from mirakl_connector.stripe.lookups import find_stripe_object

        try:
            found = find_stripe_object(self._stripe(), row)
        except PaymentProviderError as exc:
            raise ActionRefused(
                f"Stripe could not be searched ({exc.message}); nothing changed, try again",
                status=502,
            ) from exc
        since = lookup_since(row)
        if found:
            raise ActionRefused(
                f"Stripe has {found}, made for this item (found by its metadata since "
                f"{since:%Y-%m-%d %H:%M} UTC): resolve it as found with that id"
            )
        lookup = f"Stripe searched by metadata since {since:%Y-%m-%d %H:%M} UTC: nothing"
        return manual.allow_resend(
            entity, row.id, attempts=state.attempts, lookup=lookup, user=actor.name, why=why
        )

    # -- providers -----------------------------------------------------------------------------

    def _stripe(self) -> Any:
        if self.services.stripe is None:
            raise ActionRefused("no Stripe connection is configured for the console", status=503)
        return self.services.stripe()

    def _hyperwallet_payment(self, token: str) -> Mapping[str, Any]:
        if self.services.hyperwallet is None:
            raise ActionRefused(
                "no Hyperwallet connection is configured for the console", status=503
            )
        try:
            return self.services.hyperwallet().get_payment(token)
        except PaymentProviderError as exc:
            raise _provider_refusal("Hyperwallet", token, exc) from exc

    def _require_shop(self, shop_id: int) -> None:
        if self.services.mirakl is None:
            raise ActionRefused("no Mirakl connection is configured for the console", status=503)
        try:
            shops = list(self.services.mirakl().iter_shops(shop_ids=[shop_id]))
        except MiraklApiError as exc:
            raise ActionRefused(
                f"Mirakl could not be asked ({exc}); nothing changed", status=502
            ) from exc
        if not any(str(s.get("shop_id")) == str(shop_id) for s in shops if isinstance(s, dict)):
            raise ActionRefused(f"Mirakl has no shop {shop_id} (S20)", status=404)

    def _require_account(self, account: str) -> dict[str, Any]:
        stripe = self._stripe()
        try:
            found = stripe.retrieve_account(account)
        except PaymentProviderError as exc:
            raise _provider_refusal("Stripe", account, exc) from exc
        try:
            platform = stripe.platform_account_id()
        except PaymentProviderError:
            platform = None
        if found.get("id") == platform:
            raise ActionRefused(f"{account} is the platform's own account, not a seller's")
        return dict(found)

    def _requeue_invoice(self, row_id: int, done: ActionRecord) -> None:
        """A released Hyperwallet payment: its invoice back in the workflow's retry queue, so
        the next run (or ``hyperwallet_retries``) reads it again (the window moved past it)."""
        ledger = self.services.ledger()
        row = self.manual.record("hyperwallet_payment", row_id)
        if row is None:
            return
        ledger.clear_pending_item(HYPERWALLET_WORKFLOW, row.invoice_id)
        ledger.record_pending_item(HYPERWALLET_WORKFLOW, row.invoice_id, done.detail)

    # -- machinery ------------------------------------------------------------------------------

    def _audited(
        self,
        action: str,
        entity: str,
        entity_id: int | None,
        actor: Actor,
        why: str,
        run: Callable[[], ActionRecord],
        *,
        item: str | None = None,
    ) -> ActionRecord:
        """Run ``run``; a refusal is recorded in the audit (unless the request itself was
        malformed: no reason given) and raised again."""
        try:
            return run()
        except ActionRefused as exc:
            if exc.status != 422 or _has_why(why):
                try:
                    self.manual.refused(
                        action, entity, entity_id, user=actor.name,
                        why=" ".join(str(why or "").split()) or "(none given)",
                        reason=exc.reason, item=item,
                    )  # fmt: skip
                except Exception:  # noqa: BLE001 - the refusal is still answered
                    log.exception("Could not record the refused %s of %s %s", action, entity,
                                  entity_id)  # fmt: skip
            raise


def _why(why: str) -> str:
    try:
        return rules.clean_why(why)
    except ValueError as exc:
        raise ActionRefused(str(exc), status=422) from None


def _has_why(why: Any) -> bool:
    return bool(str(why or "").strip())


def _refuse(reason: str | None) -> None:
    if reason is not None:
        raise ActionRefused(reason)


def _record(manual: ManualActions, entity: str, row_id: int) -> Any:
    if entity not in rules.ENTITIES:
        raise ActionRefused(f"unknown item kind {entity!r}", status=404)
    row = manual.record(entity, row_id)
    if row is None:
        raise ActionRefused(f"no {entity} {row_id} in the ledger", status=404)
    return row


def _item(entity: str, row: Any) -> str:
    if isinstance(row, TransferRecord):
        return row.mirakl_id
    if isinstance(row, RefundRecord):
        return row.mirakl_refund_id
    if isinstance(row, PayoutRecord):
        return row.mirakl_invoice_id
    return row.client_payment_id


def _object_kind(entity: str, row: Any) -> str:
    if isinstance(row, TransferRecord) and row.type is TransferType.REFUND:
        return "reversal"
    return entity


def _mismatch(object_id: str, problems: list[str]) -> None:
    if problems:
        raise ActionRefused(f"{object_id} does not match this item: {'; '.join(problems)}")


def _provider_refusal(provider: str, object_id: str, exc: PaymentProviderError) -> ActionRefused:
    if exc.permanent and (exc.http_status == 404 or exc.code == "resource_missing"):
        return ActionRefused(f"{provider} has no {object_id}", status=404)
    if exc.permanent:
        return ActionRefused(f"{provider} refused to show {object_id}: {exc.message}", status=409)
    return ActionRefused(
        f"{provider} could not be asked about {object_id} ({exc.message}); nothing changed",
        status=502,
    )
