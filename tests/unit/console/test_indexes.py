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
    from mirakl_connector.ledger import Ledger
    from mirakl_connector.ledger.queries import ConsoleQueries, DateRange

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


IN_DOUBT_INDEXES = {
    "transfers": "ix_transfers_in_doubt",
    "refunds": "ix_refunds_in_doubt",
    "payouts": "ix_payouts_in_doubt",
    "hyperwallet_payments": "ix_hyperwallet_payments_in_doubt",
}


def _plans(engine, call) -> list[str]:
    """The plan of every statement ``call`` runs (EXPLAIN on PostgreSQL with sequential scans
    priced out: the plan then shows whether a partial index *can* answer the query)."""
    from sqlalchemy import event

    captured: list[tuple[str, object]] = []

    def _capture(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", _capture)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", _capture)
    plans = []
    with engine.connect() as conn:
        postgres = engine.dialect.name == "postgresql"
        if postgres:
            conn.exec_driver_sql("SET enable_seqscan = off")
        for statement, parameters in captured:
            prefix = "EXPLAIN " if postgres else "EXPLAIN QUERY PLAN "
            rows = conn.exec_driver_sql(prefix + statement, parameters)
            plans.append(" ".join(str(row[-1]) for row in rows))
    return plans


def test_step_12_adds_the_in_doubt_indexes_and_the_in_doubt_queries_read_them(ledger_url):
    """Rows in doubt are a handful among a million: the list, its count and its summary read
    the partial index of each table (schema step 12), never the status or provider id index."""
    from mirakl_connector.ledger.queries import ConsoleQueries

    engine = create_ledger_engine(ledger_url)
    try:
        assert migrate(engine, steps=STEPS[:11]) == 11
        # step 1 builds today's tables: drop the indexes to stand for a ledger made at version 11
        with engine.begin() as conn:
            for name in IN_DOUBT_INDEXES.values():
                conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
        insp = inspect(engine)
        assert not any(
            i["name"] == name for t, name in IN_DOUBT_INDEXES.items() for i in insp.get_indexes(t)
        )
        assert migrate(engine) == STEPS[-1].version
        insp = inspect(engine)
        for table, name in IN_DOUBT_INDEXES.items():
            assert name in {i["name"] for i in insp.get_indexes(table)}, (table, name)

        queries = ConsoleQueries(engine)
        for call in (
            lambda: queries.items("in_doubt"),
            lambda: queries.summary("in_doubt"),
            lambda: list(queries.iter_rows("in_doubt")),
        ):
            plans = " | ".join(_plans(engine, call))
            for name in IN_DOUBT_INDEXES.values():
                assert name in plans, (name, plans)
            assert "status_created" not in plans and "transfer_id" not in plans, plans
    finally:
        engine.dispose()
