"""A safe first run: the go-live instant below which no workflow moves money.

With no checkpoint, a workflow that reads Mirakl by date would read everything Mirakl has. On a
new marketplace that is nothing; on a marketplace switching from the Stripe Connector for Mirakl
or the Hyperwallet connector it is years of orders and invoices the old connector already paid,
and our idempotency keys cannot know that. So every workflow that moves money (payment split,
refunds, settlement, Hyperwallet invoice payments) follows one rule:

* ``go_live`` (top-level key of the connector configuration, an RFC 3339 date-time with a zone)
  set: a document created before it is never moved by a run that reads it from Mirakl. It is
  counted in the run's summary as ``BEFORE_GO_LIVE`` (amount included) and not recorded in the
  ledger. Rows already in the ledger (the backlog, and what an import of the old connector's
  history recorded) are not affected: they were put there on purpose.
* no ``go_live`` but a checkpoint: the checkpoint alone decides (as before).
* neither: the run fails before reading anything, with :func:`missing_go_live_message`, which
  says what to set and why.

Pure: no Airflow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mirakl_connector.core.batch import ItemOutcome
from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.operations.payout_provider import parse_instant

GO_LIVE_KEY = "go_live"


class FirstRunRefused(ConfigurationError):
    """A first run with neither checkpoint nor go-live instant: retrying cannot help (the
    Airflow operator fails the task at once instead of retrying it)."""


BEFORE_GO_LIVE = "BEFORE_GO_LIVE"


def go_live_from_config(config: Mapping[str, Any] | None) -> datetime | None:
    """``config["go_live"]`` as an aware datetime (``None`` when not set)."""
    value = (config or {}).get(GO_LIVE_KEY)
    if value in (None, ""):
        return None
    return parse_instant(value, f"mirakl_connector_config.{GO_LIVE_KEY}")


def missing_go_live_message(workflow: str, checkpoint: str, documents: str) -> str:
    return (
        f"{workflow}: this is a first run (no checkpoint {checkpoint!r} in the ledger) and no "
        f'go-live instant is configured, so nothing was moved. Set "{GO_LIVE_KEY}" in the '
        f"Airflow Variable mirakl_connector_config to the RFC 3339 instant from which this "
        f'deployment pays (for example "{GO_LIVE_KEY}": "2026-12-01T00:00:00Z"). Without it '
        f"this run would read every {documents} Mirakl has and pay them again, including those "
        "a previous connector already paid; with it, the older ones are counted in the summary "
        f"({BEFORE_GO_LIVE}) and never moved. (Importing the previous connector's history and "
        "checkpoints first also sets the checkpoint.)"
    )


@dataclass(frozen=True)
class GoLive:
    """The go-live instant of a workflow (``None``: not configured)."""

    instant: datetime | None = None

    def require(
        self, workflow: str, checkpoint_key: str, checkpoint: str | None, docs: str
    ) -> None:
        """Fail the run (before anything is read) on a first run without a go-live instant."""
        if checkpoint is None and self.instant is None:
            raise FirstRunRefused(missing_go_live_message(workflow, checkpoint_key, docs))

    def before(self, created_at: datetime | None) -> bool:
        """True when a document created ``created_at`` lies before the go-live instant."""
        return self.instant is not None and created_at is not None and created_at < self.instant

    def outcome(
        self,
        item_id: str,
        created: str | datetime | None,
        *,
        amount: int | None = None,
        currency: str | None = None,
    ) -> ItemOutcome:
        shown = created.isoformat() if isinstance(created, datetime) else created
        assert self.instant is not None
        return ItemOutcome(
            item_id,
            BEFORE_GO_LIVE,
            f"created {shown}, before go_live {self.instant.isoformat()}: not moved",
            amount,
            currency,
        )
