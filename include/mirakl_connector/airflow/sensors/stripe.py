"""Deferrable Stripe sensors: new charges, new refunds, and the event healing sensor.

"New charge" and "New refund" are the generic triggers of the MuleSoft Stripe connector: poll
every ``poll_interval`` seconds (15 by default) and return the objects created since the last one
seen. The last one seen is kept in an Airflow Variable (one per DAG and task unless named), so
each run continues where the previous one stopped; the first run starts at ``since`` (default:
now). Deferred, the polling runs in the triggerer and holds no worker slot.

:class:`StripeEventsHealingSensor` feeds the inbox: Stripe's Events API for the handled types,
since the healing cursor in the ledger (at most 30 days back), every event the inbox lacks is
stored exactly as if its webhook had arrived. The first look is a full catch-up in the worker;
then the sensor defers until Stripe has a newer event.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from mirakl_connector.airflow.pools import STRIPE_POOL, set_default_pool
from mirakl_connector.airflow.triggers.stripe import StripeNewObjectsTrigger, list_new

if TYPE_CHECKING:
    from airflow.sdk import Context


class StripeNewObjectsSensor(BaseSensorOperator):
    """Wait for Stripe objects of :attr:`resource` created after the last one seen; return them.

    :param stripe_conn_id: the Stripe connection.
    :param poll_interval: seconds between two polls (default 15).
    :param since: Unix time to start from on the very first run (default: now); templated,
        e.g. ``"{{ dag_run.start_date.timestamp() | int }}"``.
    :param cursor_variable: Variable keeping the last seen object (default: per DAG and task).
    :param deferrable: poll in the triggerer (default) instead of a worker slot.
    :param types: event types to wait for (the events sensor only: Stripe's charges and refunds
        lists have no such filter, and refuse the parameter).
    """

    resource: ClassVar[str] = ""
    template_fields: Sequence[str] = ("stripe_conn_id", "cursor_variable", "since")

    def __init__(
        self,
        *,
        stripe_conn_id: str = "stripe_default",
        poll_interval: float = 15.0,
        since: int | str | None = None,
        cursor_variable: str | None = None,
        deferrable: bool = True,
        types: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be positive, got {poll_interval}")
        if types and self.resource != "events":
            # Only the Events list takes ``types`` (docs.stripe.com/api/events/list); Stripe
            # refuses it on charges and refunds ("Received unknown parameter: types").
            raise ValueError(f"types filters events only; {self.resource} have no types")
        # Stripe calls count against the account's rate limit; deferred, no slot is held.
        set_default_pool(kwargs, STRIPE_POOL)
        super().__init__(poke_interval=poll_interval, **kwargs)
        self.stripe_conn_id = stripe_conn_id
        self.poll_interval = poll_interval
        self.since = since
        self.cursor_variable = cursor_variable
        self.deferrable = deferrable
        self.types = types
        self._cursor: dict[str, Any] | None = None

    # -- cursor ----------------------------------------------------------------------------
    def _variable_name(self) -> str:
        return self.cursor_variable or f"stripe_cursor__{self.dag_id}__{self.task_id}"

    def load_cursor(self, context: Context) -> dict[str, Any]:
        from airflow.sdk import Variable

        raw = Variable.get(self._variable_name(), default=None)
        if raw:
            return json.loads(raw)
        start = time.time() if self.since in (None, "") else float(self.since)
        return {"created": int(start), "ids": []}

    def save_cursor(self, cursor: dict[str, Any], context: Context) -> None:
        from airflow.sdk import Variable

        Variable.set(self._variable_name(), json.dumps(cursor))

    def on_found(self, objects: list[dict[str, Any]], context: Context) -> Any:
        """What the task returns (XCom): the new objects, oldest first."""
        return objects

    # -- flow ------------------------------------------------------------------------------
    def execute(self, context: Context) -> Any:
        self._cursor = self.load_cursor(context)
        if not self.deferrable:
            return super().execute(context)
        found, cursor = list_new(self.stripe_conn_id, self.resource, self._cursor, self.types)
        if found:
            return self._finish(found, cursor, context)
        self.log.info("No new %s since %s; deferring", self.resource, self._cursor["created"])
        self.defer(
            trigger=StripeNewObjectsTrigger(
                stripe_conn_id=self.stripe_conn_id,
                resource=self.resource,
                cursor=self._cursor,
                types=self.types,
                poll_interval=self.poll_interval,
            ),
            method_name="execute_complete",
            # The sensor's own timeout still applies while deferred (else it waits forever and,
            # with max_active_runs=1, blocks every later run).
            timeout=timedelta(seconds=self.timeout),
        )
        return None

    def poke(self, context: Context) -> PokeReturnValue:
        cursor = self._cursor if self._cursor is not None else self.load_cursor(context)
        found, new_cursor = list_new(self.stripe_conn_id, self.resource, cursor, self.types)
        if not found:
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=self._finish(found, new_cursor, context))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        if event.get("status") != "success":
            raise RuntimeError(f"polling Stripe {self.resource} failed: {event.get('message')}")
        return self._finish(event["objects"], event["cursor"], context)

    def _finish(self, found: list[dict[str, Any]], cursor: dict[str, Any], context: Context) -> Any:
        self.log.info("%d new %s", len(found), self.resource)
        result = self.on_found(found, context)
        self.save_cursor(cursor, context)  # after the work: a crash re-delivers, never skips
        return result


class StripeNewChargeSensor(StripeNewObjectsSensor):
    """ "New charge": the charges created since the last one seen."""

    resource = "charges"


class StripeNewRefundSensor(StripeNewObjectsSensor):
    """ "New refund": the refunds created since the last one seen."""

    resource = "refunds"


class StripeEventsHealingSensor(StripeNewObjectsSensor):
    """Store in the inbox every handled Stripe event whose webhook never arrived.

    Returns the healing summary (``HEALED`` / ``ALREADY_STORED`` counts). The cursor lives in the
    ledger (checkpoint ``stripe_events_healing_cursor``), next to the inbox it describes.

    :param ledger_conn_id: the ledger connection.
    """

    resource = "events"
    template_fields: Sequence[str] = ("stripe_conn_id", "ledger_conn_id")

    def __init__(self, *, ledger_conn_id: str = "mirakl_connector_db", **kwargs: Any) -> None:
        from mirakl_connector.stripe.event_types import HANDLED_STRIPE_TYPES

        kwargs.setdefault("types", list(HANDLED_STRIPE_TYPES))
        super().__init__(**kwargs)
        self.ledger_conn_id = ledger_conn_id

    def _job(self, context: Context) -> Any:
        from mirakl_connector.airflow.config import load_connector_config
        from mirakl_connector.airflow.hooks.ledger import LedgerHook
        from mirakl_connector.airflow.hooks.stripe import StripeHook
        from mirakl_connector.core.registry import Resources
        from mirakl_connector.stripe.specs import STRIPE_EVENTS

        resources = Resources(
            mirakl=lambda: None,
            stripe=lambda: StripeHook(self.stripe_conn_id).get_gateway(),
            ledger=lambda: LedgerHook(self.ledger_conn_id).get_ledger(),
        )
        return STRIPE_EVENTS.build(resources, load_connector_config(), context.get("run_id"))

    def execute(self, context: Context) -> Any:
        job = self._job(context)
        summary = job.heal()  # full catch-up (30-day window) in the worker, then wait for more
        if summary.counts.get("HEALED"):
            self.log.info("Healed: %s", dict(summary.counts))
            return summary.to_dict()
        return super().execute(context)

    def load_cursor(self, context: Context) -> dict[str, Any]:
        cursor = self._job(context).healing_cursor()
        return {"created": int(cursor if cursor else time.time()), "ids": []}

    def save_cursor(self, cursor: dict[str, Any], context: Context) -> None:
        from mirakl_connector.stripe.events import HEALING_CURSOR_KEY

        self._job(context).ledger.set_checkpoint(HEALING_CURSOR_KEY, str(cursor["created"]))

    def on_found(self, objects: list[dict[str, Any]], context: Context) -> Any:
        summary = self._job(context).store_missing(objects)
        self.log.info("Healing: %s", dict(summary.counts))
        return summary.to_dict()
