"""Airflow pools that keep the connector's tasks inside the providers' rate limits.

A pool caps how many tasks run at once, across every DAG; that is the only place where Airflow can
enforce a limit shared by several workflow DAGs on several Celery workers. Each connector task
calls its provider sequentially (one request in flight), so the number of requests per second it
can make is bounded by the provider's latency, and the pool size follows from the budget::

    slots = floor(limit (requests/s) x share left for Airflow / requests/s one task can make)

* **Stripe** (the table of limits and its sources: :mod:`mirakl_connector.stripe.limits`):
  100 requests/s per account in live mode, 25 in test mode, and 25 requests/s on any one
  endpoint in both. A write (transfer, refund, payout, capture) takes about 200 ms, so one task
  makes at most about 5 requests/s. Airflow keeps 80 % of each limit (the rest is for the
  checkout, the webhook app, the dashboard and other integrations): live 100 x 0.8 / 5 = 16
  slots, test 25 x 0.8 / 5 = 4. A slot is worth 5 requests/s overall; a task paces itself to the
  slots it holds (``stripe_limits.task_pacing``). On one endpoint, 4 tasks at 5 requests/s fill
  the connector's 20 of its 25: a sharded step's shards each take ``shard_slots`` slots (live 2,
  so that its 4 shards hold half of the pool and the other DAGs keep the other half; test 1)
  and pace to 5 requests/s on their endpoint.
* **Mirakl**: no published number, but operators see HTTP 429 around 120 calls/min (2/s) per
  API key on the order and invoice lists (OR11, IV01). A paginated list call takes about 0.5 s,
  so one task alone can reach that budget: 2 slots leave room for two DAGs reading at once,
  each slowed by the ``Retry-After`` answers the clients already obey.
* **Hyperwallet**: no published limit either; 2 slots until one is known (the extracts are
  nightly batches, so throughput is not the constraint).

The pools are a first line of defence, not a guarantee: the clients still honour 429 and
``Retry-After`` (see :mod:`mirakl_connector.core.retry`), which is what keeps a burst correct.

Which pool a step uses is declared with the step, in its workflow's spec
(:class:`~mirakl_connector.core.workflow_spec.StepSpec`): a step that writes to Stripe takes a
``stripe_api`` slot (its Mirakl calls, if any, are few: one status update per batch); a step
that only calls Mirakl (and perhaps reads a few Stripe objects) takes a ``mirakl_api`` slot; a
step that calls neither (e-mail, the operator's own webhook, the ledger) runs in
``default_pool``. A step cannot be declared without a pool, so a new workflow that moves money
never runs unthrottled.

This module imports nothing from Airflow: ``python -m mirakl_connector.airflow.pools`` prints the
pool definitions as the JSON that ``airflow pools import`` reads (see ``scripts/create_pools.sh``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from typing import Any

from mirakl_connector.core.workflow_spec import (
    DEFAULT_POOL,
    HYPERWALLET_POOL,
    MIRAKL_POOL,
    STRIPE_POOL,
    StepSpec,
)
from mirakl_connector.stripe import limits as stripe_limits

__all__ = [
    "DEFAULT_POOL",
    "HYPERWALLET_POOL",
    "MIRAKL_POOL",
    "STRIPE_POOL",
    "pool_slots_for_step",
    "pool_specs",
    "set_default_pool",
]

#: ``live`` or ``test``: which Stripe rate limit the stripe_api pool is sized for.
STRIPE_MODE_ENV = "MIRAKL_CONNECTOR_STRIPE_MODE"

MIRAKL_LIMIT_PER_MINUTE = 120
MIRAKL_SLOTS = 2
HYPERWALLET_SLOTS = 2


@dataclass(frozen=True)
class PoolSpec:
    """One pool to create: name, slots and the description shown in the UI."""

    name: str
    slots: int
    description: str


def stripe_mode_from_env() -> str:
    """The Stripe mode the deployment sizes its pool for (``$MIRAKL_CONNECTOR_STRIPE_MODE``,
    default ``test``). Reading the environment is no I/O, so DAG files may call it."""
    return stripe_limits.check_mode(os.environ.get(STRIPE_MODE_ENV, "test"))


def stripe_slots(mode: str) -> int:
    """Slots of the ``stripe_api`` pool for Stripe's ``live`` or ``test`` rate limit."""
    return stripe_limits.pool_slots(mode)


def pool_specs(stripe_mode: str = "test") -> list[PoolSpec]:
    """The pools the connector's DAGs use, sized for ``stripe_mode``."""
    slots = stripe_slots(stripe_mode)
    overall, per_endpoint = stripe_limits.task_pacing(stripe_mode)
    share = stripe_limits.AIRFLOW_SHARE
    return [
        PoolSpec(
            STRIPE_POOL,
            slots,
            f"Tasks that write to Stripe. {stripe_limits.global_limit(stripe_mode):g} req/s"
            f" ({stripe_mode} mode) x {share:.0%} for Airflow"
            f" / ~{stripe_limits.REQUESTS_PER_TASK} req/s per task = {slots}; each slot paced to"
            f" {overall:g} req/s, each task to {per_endpoint:g} on one endpoint"
            f" ({stripe_limits.ENDPOINT_DEFAULT.rate(stripe_mode):g} req/s per endpoint); a"
            f" shard of a sharded step takes {stripe_limits.shard_slots(stripe_mode)} slot(s)",
        ),
        PoolSpec(
            MIRAKL_POOL,
            MIRAKL_SLOTS,
            f"Tasks that call Mirakl (but do not write to Stripe). ~{MIRAKL_LIMIT_PER_MINUTE}"
            " calls/min per API key; one task can use it all, 429 Retry-After paces the rest",
        ),
        PoolSpec(
            HYPERWALLET_POOL,
            HYPERWALLET_SLOTS,
            "Tasks that write to Hyperwallet (no published rate limit: kept small)",
        ),
    ]


def pool_slots_for_step(step: StepSpec, stripe_mode: str) -> int:
    """Slots one task of ``step`` takes: a shard of a sharded Stripe step takes
    :func:`~mirakl_connector.stripe.limits.shard_slots` (live 2, test 1), every other task 1."""
    if step.pool == STRIPE_POOL and step.sharded:
        return stripe_limits.shard_slots(stripe_mode)
    return 1


def set_default_pool(kwargs: dict[str, Any], pool: str) -> None:
    """Put ``pool`` into an operator's ``__init__`` kwargs unless the task or its DAG chose one.

    Airflow fills a subclass's ``**kwargs`` from ``default_args`` only in ``BaseOperator``'s own
    ``__init__`` (after ours), so a DAG-wide ``default_args={"pool": ...}`` is looked up here.
    """
    if "pool" not in kwargs and "pool" not in (kwargs.get("default_args") or {}):
        kwargs["pool"] = pool


def pools_import_json(stripe_mode: str = "test") -> str:
    """The pools in ``airflow pools import`` format."""
    return json.dumps(
        {
            spec.name: {
                "slots": spec.slots,
                "description": spec.description,
                "include_deferred": False,
            }
            for spec in pool_specs(stripe_mode)
        },
        indent=2,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--stripe-mode",
        choices=stripe_limits.MODES,
        default=os.environ.get(STRIPE_MODE_ENV, "test"),
        help=f"size stripe_api for this Stripe mode (default: ${STRIPE_MODE_ENV} or test)",
    )
    args = parser.parse_args(argv)
    sys.stdout.write(pools_import_json(args.stripe_mode) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
