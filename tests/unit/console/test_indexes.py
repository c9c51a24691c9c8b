"""Schema step 7 adds the console's indexes to a ledger made before it, and the queries use them."""

from __future__ import annotations

from sqlalchemy import inspect, text

from mirakl_connector.ledger.engine import create_ledger_engine
from mirakl_connector.ledger.migrations import _V7_INDEXES, STEPS, migrate

V7_NAMES = {name for _, name in _V7_INDEXES}


def _index_names(engine) -> set[str]:
    insp = inspect(engine)
    names: set[str] = set()
    for table in ("ledger_events", "transfers", "payouts"):
        names |= {i["name"] for i in insp.get_indexes(table)}
    return names


def test_step_7_adds_the_console_indexes_to_an_older_ledger(ledger_url):
    engine = create_ledger_engine(ledger_url)
    try:
        assert migrate(engine, steps=STEPS[:6]) == 6
        # step 1 builds today's tables: drop the indexes to stand for a ledger made at version 6
        with engine.begin() as conn:
            for name in V7_NAMES:
                conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
        assert not V7_NAMES & _index_names(engine)
        assert migrate(engine) == STEPS[-1].version
        assert V7_NAMES <= _index_names(engine)
    finally:
        engine.dispose()


def test_moved_per_day_reads_the_daily_sums_through_their_index(tmp_path):
    from mirakl_connector.console.queries import ConsoleQueries, DateRange
    from mirakl_connector.ledger import Ledger

    url = Ledger.default_sqlite_url(tmp_path)
    Ledger(url).dispose()
    engine = create_ledger_engine(url)
    queries = ConsoleQueries(engine)
    captured: list[str] = []
    from sqlalchemy import event

    @event.listens_for(engine, "before_cursor_execute")
    def _capture(conn, cursor, statement, parameters, context, executemany):
        captured.append((statement, parameters))

    queries.moved(DateRange.last_days())
    statement, parameters = captured[-1]
    with engine.connect() as conn:
        plan = " ".join(
            str(row[-1])
            for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        )
    engine.dispose()
    # a range of days of moved_daily, never the million events
    assert "SEARCH moved_daily USING INDEX" in plan and "(day>? AND day<?)" in plan
    assert "ledger_events" not in plan
