"""The backlog clock (issue 15): when a run sweeps every waiting row, and what it moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.operations.backlog import CHANGE_OVERLAP, BacklogClock, check_sweep_hours

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


class Checkpoints(dict):
    """The two ledger methods the clock uses, in memory."""

    def get_checkpoint(self, key):
        return self.get(key)

    def set_checkpoint(self, key, value):
        self[key] = value


def clock_at(store, now, hours=24):
    return BacklogClock(store, "demo", sweep_hours=hours, now=lambda: now)


def test_the_first_run_sweeps_and_sets_both_checkpoints():
    store = Checkpoints()
    clock = clock_at(store, T0)
    first = clock.start(scheduled=True)
    assert (first.sweep, first.since) == (True, None)
    clock.finish(first)
    assert store == {"demo_backlog_checked": T0.isoformat(), "demo_full_sweep": T0.isoformat()}


def test_between_sweeps_a_run_reads_changes_since_its_previous_look_less_the_overlap():
    store = Checkpoints(demo_backlog_checked=T0.isoformat(), demo_full_sweep=T0.isoformat())
    later = T0 + timedelta(minutes=5)
    clock = clock_at(store, later)
    second = clock.start(scheduled=True)
    assert (second.sweep, second.since) == (False, T0 - CHANGE_OVERLAP)
    assert "changes since" in second.note("x")
    clock.finish(second)
    assert store["demo_backlog_checked"] == later.isoformat()
    assert store["demo_full_sweep"] == T0.isoformat()  # no sweep: unchanged


@pytest.mark.parametrize(
    ("after", "sweeps"),
    [
        (timedelta(hours=23, minutes=49), False),
        # a daily DAG starting a few seconds early still sweeps daily
        (timedelta(hours=23, minutes=59, seconds=55), True),
        (timedelta(hours=24), True),
    ],
)
def test_the_sweep_is_due_its_cadence_after_the_previous_one_less_the_overlap(after, sweeps):
    store = Checkpoints(demo_backlog_checked=T0.isoformat(), demo_full_sweep=T0.isoformat())
    assert clock_at(store, T0 + after).start(scheduled=True).sweep is sweeps


@pytest.mark.parametrize("why", ["manual", "always", "unreadable"])
def test_manual_runs_and_unaskable_backlogs_sweep_and_move_nothing(why):
    store = Checkpoints(demo_backlog_checked=T0.isoformat(), demo_full_sweep=T0.isoformat())
    if why == "unreadable":
        store["demo_backlog_checked"] = "yesterday"
    later = T0 + timedelta(minutes=5)
    clock = clock_at(store, later)
    run = clock.start(scheduled=why != "manual", always_sweep=why == "always")
    assert run.sweep and run.since is None
    before = dict(store)
    clock.finish(run)
    if why == "manual":
        assert store == before
    else:
        assert store["demo_full_sweep"] == later.isoformat()


@pytest.mark.parametrize("hours", [0, -3, 1.5, "6", True, None])
def test_the_cadence_is_a_whole_number_of_hours(hours):
    with pytest.raises(ConfigurationError, match=r"x\.backlog_full_sweep_hours"):
        check_sweep_hours(hours, "x.backlog_full_sweep_hours")
    check_sweep_hours(1, "x")  # the shortest cadence
