"""When a waiting row is looked at again: when what it waits for changed, and on a slow sweep.

A backlog row (a transfer, refund, payout or Hyperwallet payment left ON_HOLD or FAILED) waits
for something: its Mirakl document to change, a seller's account to be mapped or verified, a
payment to be captured, funds to arrive. Re-deciding every waiting row on every run costs what
waits, not what changed (issue 15). So each workflow keeps two checkpoints per backlog:

* ``<…>_backlog_checked``: when a scheduled run last looked for changes. The next one reads
  what changed since then, minus :data:`CHANGE_OVERLAP` (clock skew between Mirakl and us, a
  change committed late with an earlier date), and re-decides only the rows it concerns;
* ``<…>_full_sweep``: when every waiting row was last re-decided. Each workflow's
  ``backlog_full_sweep_hours`` (default 24) later the next scheduled run sweeps them all again:
  the safety net for a change the cheap read missed (an update date left in the past, a change
  made outside what the connector watches).

Manual runs (dry run, ids, windows) and the first run always sweep and move neither
checkpoint: a run that reads a different window must not tell the next scheduled run that the
changes in between were seen. The checkpoints hold our clock's ISO instants.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.core.settings import checked_values
from mirakl_connector.core.shards import shard_count
from mirakl_connector.ledger.manual_actions import ManualActions

#: changes are read from this long before the previous look (see the module docstring)
CHANGE_OVERLAP = timedelta(minutes=10)
#: hours between two full sweeps unless a workflow's ``backlog_full_sweep_hours`` says otherwise
DEFAULT_SWEEP_HOURS = 24


def check_sweep_hours(value: Any, setting: str) -> None:
    """Validate a ``…backlog_full_sweep_hours`` setting: a whole number of hours, at least 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{setting} must be a whole number of hours >= 1, got {value!r}")


def sharded_backlog_values(
    cls: type,
    values: Mapping[str, Any] | None,
    section: str,
    *,
    elsewhere: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The settings of a sharded backlog workflow, checked: :func:`checked_values`, then its
    ``execute_shards`` and ``backlog_full_sweep_hours`` (defaults on ``cls``), named
    ``<section>.<key>`` in the error."""
    values = checked_values(cls, values, section, elsewhere=elsewhere)
    checks: dict[str, Callable[[Any, str], object]] = {
        "execute_shards": shard_count,
        "backlog_full_sweep_hours": check_sweep_hours,
    }
    for key, check in checks.items():
        check(values.get(key, getattr(cls, key)), f"{section}.{key}")
    return values


@dataclass(frozen=True)
class BacklogPass:
    """What one run does with a backlog: sweep it all, or look at what changed since ``since``."""

    sweep: bool
    #: changes since this instant (``None`` when sweeping)
    since: datetime | None
    #: the run's clock when it started looking (the next ``checked`` value)
    now: datetime
    #: a scheduled run: it moves the checkpoints when it is done
    scheduled: bool

    def note(self, what: str) -> str:
        """One line for the run summary saying which way ``what`` was read."""
        if self.sweep:
            return f"{what}: full sweep"
        assert self.since is not None
        return f"{what}: changes since {self.since.isoformat()}"


class BacklogClock:
    """The two checkpoints of one backlog (see the module docstring).

    :param ledger: reads and writes the checkpoints (``get_checkpoint`` / ``set_checkpoint``).
    :param name: the checkpoints' prefix: ``<name>_backlog_checked``, ``<name>_full_sweep``.
    :param sweep_hours: hours between two full sweeps.
    """

    def __init__(
        self,
        ledger: Any,
        name: str,
        *,
        sweep_hours: int,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.ledger = ledger
        self.checked_key = f"{name}_backlog_checked"
        self.sweep_key = f"{name}_full_sweep"
        self.every = timedelta(hours=sweep_hours)
        self._now = now or (lambda: datetime.now(UTC))

    def start(self, *, scheduled: bool, always_sweep: bool = False) -> BacklogPass:
        """This run's pass: a sweep when it is not scheduled, when ``always_sweep`` (a backlog
        whose changes cannot be asked for), on the first run, and when the sweep is due;
        otherwise the changes since the previous look.

        A sweep is due :attr:`every` after the previous one, less :data:`CHANGE_OVERLAP`: a DAG
        scheduled on the same cadence (a daily settlement, a daily sweep) sweeps on every run
        instead of every other one when a run starts a few seconds early.
        """
        now = self._now()
        checked = _instant(self.ledger.get_checkpoint(self.checked_key))
        swept = _instant(self.ledger.get_checkpoint(self.sweep_key))
        sweep = (
            always_sweep
            or not scheduled
            or checked is None
            or swept is None
            or now - swept >= self.every - CHANGE_OVERLAP
        )
        since = None if sweep or checked is None else checked - CHANGE_OVERLAP
        return BacklogPass(sweep=sweep, since=since, now=now, scheduled=scheduled)

    def finish(self, backlog: BacklogPass) -> None:
        """Record that a scheduled pass is done (nothing for a manual one)."""
        if not backlog.scheduled:
            return
        if backlog.sweep:
            self.ledger.set_checkpoint(self.sweep_key, backlog.now.isoformat())
        self.ledger.set_checkpoint(self.checked_key, backlog.now.isoformat())


def released_since(ledger: Any, entity: str, since: datetime) -> list[Any]:
    """The ``entity`` rows (``transfer``, ``refund``, ``payout``, ``hyperwallet_payment``) a
    person released from a hold on the payments console since ``since``, as they are now.

    A release is a change every backlog reads: the row's cause (its order, mapping, funds) may
    have changed while it was held, and no other change would bring it back.
    """
    actions = ManualActions(ledger)
    rows = (actions.record(entity, i) for i in actions.released_since(entity, since))
    return [r for r in rows if r is not None]


def _instant(value: str | None) -> datetime | None:
    """A checkpoint as an aware instant; ``None`` when missing or unreadable (then: sweep)."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
