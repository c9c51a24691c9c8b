"""Bring the ledger database to the schema this code expects, automatically, on connect.

Why not Alembic: the ledger is a handful of tables shipped inside a DAG package, opened by every
Airflow task; operators should never have to run a migration command by hand. So the schema
carries one number (table ``schema_version``, one row) and this module holds the ordered steps
that lead from one number to the next. Each step runs in its own transaction together with the
version bump, so a failed step leaves the database at the previous version, never half-way.

Several task processes may open a fresh database at the same moment. Each transaction here first
takes a lock (PostgreSQL: ``pg_advisory_xact_lock``; SQLite: ``BEGIN IMMEDIATE``, see
:mod:`.engine`) and then re-reads the version, so the second process finds the work done.

Adding a step: append ``MigrationStep(n + 1, ...)`` whose function alters the schema (never edit a
released step: databases in the field already ran it), and update :mod:`.schema` to match.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, Table, inspect, select, text
from sqlalchemy.schema import CreateColumn

from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.ledger import moved_daily, schema
from mirakl_connector.ledger.engine import writer

#: Key of the PostgreSQL advisory lock serialising migrations ("MCLD" in ASCII).
ADVISORY_LOCK_KEY = 0x4D434C44


@dataclass(frozen=True)
class MigrationStep:
    """One schema change; ``apply`` runs inside the transaction that records ``version``."""

    version: int
    description: str
    apply: Callable[[Connection], None]


def _create_tables_v1(conn: Connection) -> None:
    schema.Base.metadata.create_all(conn, tables=list(schema.DATA_TABLES), checkfirst=True)


#: Tables and columns added by step 2 (KYC report state, payment capture attempts, retry queue,
#: notification outbox, alert cooldowns).
_V2_TABLES = (schema.pending_items, schema.notifications, schema.alert_cooldowns)
_V2_COLUMNS = {
    schema.account_mappings: ("kyc_status", "kyc_reported_status"),
    schema.payment_mappings: (
        "captured_amount",
        "mirakl_validated_at",
        "idempotency_key",
        "attempted_at",
        "attempts",
    ),
}


def _add_v2_tables_and_columns(conn: Connection) -> None:
    # Step 1 builds from the current metadata, so a database created by this version already
    # has all of it: only what is missing is added (a database created by the first release).
    schema.Base.metadata.create_all(conn, tables=list(_V2_TABLES), checkfirst=True)
    for table, names in _V2_COLUMNS.items():
        add_missing_columns(conn, table, names)


#: Tables added by step 3 (provider event inbox, out-of-order guard).
_V3_TABLES = (schema.webhook_inbox, schema.applied_object_events)


def _add_v3_inbox_tables(conn: Connection) -> None:
    schema.Base.metadata.create_all(conn, tables=list(_V3_TABLES), checkfirst=True)


def _add_v4_hyperwallet_payments(conn: Connection) -> None:
    schema.Base.metadata.create_all(conn, tables=[schema.hyperwallet_payments], checkfirst=True)


#: Tables that gain the ``imported_from`` / ``imported_id`` markers in step 5.
_V5_IMPORTED_TABLES = (
    schema.account_mappings,
    schema.payment_mappings,
    schema.transfers,
    schema.refunds,
    schema.payouts,
    schema.hyperwallet_payments,
)


def _add_v5_import_markers(conn: Connection) -> None:
    for table in _V5_IMPORTED_TABLES:
        add_missing_columns(conn, table, ("imported_from", "imported_id"))


def _add_v6_payment_claims(conn: Connection) -> None:
    schema.Base.metadata.create_all(conn, tables=[schema.payment_claims], checkfirst=True)


#: Indexes added by step 7 (the payments console's reads; see ``schema``).
_V7_INDEXES = (
    (schema.ledger_events, "ix_ledger_events_entity_status_at"),
    (schema.transfers, "ix_transfers_status_created"),
    (schema.transfers, "ix_transfers_destination_account"),
    (schema.payouts, "ix_payouts_stripe_account_id"),
)


def _add_v7_console_indexes(conn: Connection) -> None:
    for table, name in _V7_INDEXES:
        index = next(i for i in table.indexes if i.name == name)
        index.create(conn, checkfirst=True)  # a database made by step 1 of this code has it


#: Tables that gain ``amount_residue`` in step 8 (Stripe's currency rounding, README "Currencies").
_V8_RESIDUE_TABLES = (schema.transfers, schema.refunds, schema.payouts)


def _add_v8_amount_residue(conn: Connection) -> None:
    for table in _V8_RESIDUE_TABLES:
        add_missing_columns(conn, table, ("amount_residue",))


#: Indexes added by step 9 (the console's run filter and its lists / exports in index order).
_V9_INDEXES = (
    (schema.ledger_events, "ix_ledger_events_run"),
    (schema.refunds, "ix_refunds_status_created"),
    (schema.payouts, "ix_payouts_status_created"),
    (schema.hyperwallet_payments, "ix_hyperwallet_payments_status_created"),
)


def _add_moved_daily(conn: Connection) -> None:
    schema.Base.metadata.create_all(conn, tables=[schema.moved_daily], checkfirst=True)
    moved_daily.rebuild(conn)
    for table, name in _V9_INDEXES:
        index = next(i for i in table.indexes if i.name == name)
        index.create(conn, checkfirst=True)  # a database made by step 1 of this code has it


#: Columns added by step 10 (one sender per Hyperwallet payment; see ``schema``).
_V10_HW_SEND_CLAIM = ("send_claimed_until", "send_claimed_by")


def _add_v10_hyperwallet_send_claims(conn: Connection) -> None:
    add_missing_columns(conn, schema.hyperwallet_payments, _V10_HW_SEND_CLAIM)


def _add_v11_console_actions(conn: Connection) -> None:
    schema.Base.metadata.create_all(conn, tables=[schema.console_actions], checkfirst=True)


#: Partial indexes added by step 12: the rows the payments console shows as in doubt.
_V12_IN_DOUBT_TABLES = (
    schema.transfers,
    schema.refunds,
    schema.payouts,
    schema.hyperwallet_payments,
)


def _add_v12_in_doubt_indexes(conn: Connection) -> None:
    for table in _V12_IN_DOUBT_TABLES:
        index = next(i for i in table.indexes if i.name == f"ix_{table.name}_in_doubt")
        index.create(conn, checkfirst=True)  # a database made by step 1 of this code has it


#: Tables added by step 14 (reconciliation results; see ``ledger.reconciliation``).
_V14_TABLES = (schema.reconciliations, schema.reconciliation_items)


def _add_v14_reconciliation(conn: Connection) -> None:
    schema.Base.metadata.create_all(conn, tables=list(_V14_TABLES), checkfirst=True)


def _add_v15_approvals(conn: Connection) -> None:
    """The approval gate's decisions, and the index its "first payout to this bank account?"
    reads (see ``mirakl_connector.operations.approval_gate``)."""
    schema.Base.metadata.create_all(conn, tables=[schema.approvals], checkfirst=True)
    table = schema.hyperwallet_payments
    index = next(i for i in table.indexes if i.name == "ix_hyperwallet_payments_destination_token")
    index.create(conn, checkfirst=True)  # a database made by step 1 of this code has it


def add_missing_columns(conn: Connection, table: Table, names: Sequence[str]) -> list[str]:
    """``ALTER TABLE ... ADD COLUMN`` for each of ``names`` the live table lacks; return them.

    The column definition comes from ``table`` (the metadata). A NOT NULL column needs a server
    default there, or the database refuses to add it to a table that has rows.
    """
    present = {column["name"] for column in inspect(conn).get_columns(table.name)}
    added = [name for name in names if name not in present]
    preparer = conn.dialect.identifier_preparer
    for name in added:
        definition = CreateColumn(table.c[name]).compile(dialect=conn.dialect)
        conn.execute(text(f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN {definition}"))
    return added


#: Indexes added by step 13 (the backlogs' reads of what changed since the previous run).
_V13_INDEXES = (
    (schema.transfers, "ix_transfers_updated_at"),
    (schema.payment_mappings, "ix_payment_mappings_updated_at"),
    (schema.refunds, "ix_refunds_updated_at"),
    (schema.refunds, "ix_refunds_mirakl_order_id"),
    (schema.refunds, "ix_refunds_mirakl_commercial_order_id"),
)


def _add_v13_change_indexes(conn: Connection) -> None:
    for table, name in _V13_INDEXES:
        index = next(i for i in table.indexes if i.name == name)
        index.create(conn, checkfirst=True)  # a database made by step 1 of this code has it


STEPS: tuple[MigrationStep, ...] = (
    MigrationStep(1, "create the ledger tables", _create_tables_v1),
    MigrationStep(
        2, "KYC, capture attempts, retry queue, outbox, cooldowns", _add_v2_tables_and_columns
    ),
    MigrationStep(3, "provider event inbox and out-of-order guard", _add_v3_inbox_tables),
    MigrationStep(4, "Hyperwallet payments", _add_v4_hyperwallet_payments),
    MigrationStep(5, "cutover import markers (imported_from, imported_id)", _add_v5_import_markers),
    MigrationStep(6, "payment claims: one provider per Mirakl document", _add_v6_payment_claims),
    MigrationStep(7, "payments console indexes", _add_v7_console_indexes),
    MigrationStep(8, "amount residue left by Stripe's currency rounding", _add_v8_amount_residue),
    MigrationStep(9, "console: money moved per day (moved_daily), events by run", _add_moved_daily),
    MigrationStep(
        10, "Hyperwallet payments: one sender at a time", _add_v10_hyperwallet_send_claims
    ),
    MigrationStep(11, "payments console: audit of manual actions", _add_v11_console_actions),
    MigrationStep(12, "console: partial indexes of the rows in doubt", _add_v12_in_doubt_indexes),
    MigrationStep(13, "backlogs: indexes to read what changed", _add_v13_change_indexes),
    MigrationStep(14, "reconciliation results per run and per day", _add_v14_reconciliation),
    MigrationStep(15, "approval gate: decisions (approvals)", _add_v15_approvals),
)

#: The schema version this code writes and reads.
LATEST_VERSION = STEPS[-1].version


def migrate(engine: Engine, *, steps: Sequence[MigrationStep] = STEPS, url: str = "") -> int:
    """Apply the missing ``steps`` to the database of ``engine``; return its version after.

    :param url: the (password-masked) URL, only used to name the database in errors.
    :raises ConfigurationError: when the database is at a version newer than ``steps`` know
        (the code is older than the data; running it could corrupt rows it does not understand).
    """
    _check_steps(steps)
    latest = steps[-1].version if steps else 0
    write_engine = writer(engine)

    with write_engine.begin() as conn:
        _lock(conn)
        schema.schema_version.create(conn, checkfirst=True)
        current = read_version(conn)
    _refuse_newer(current, latest, url)

    for step in steps:
        if step.version <= current:
            continue
        with write_engine.begin() as conn:
            _lock(conn)
            current = read_version(conn)  # another process may have applied it meanwhile
            if step.version <= current:
                continue
            step.apply(conn)
            _write_version(conn, step.version)
            current = step.version
    return current


def read_version(conn: Connection) -> int:
    """The version recorded in ``schema_version``; 0 when the row (or table) is missing."""
    if not conn.dialect.has_table(conn, schema.schema_version.name):
        return 0
    version = conn.execute(select(schema.schema_version.c.version)).scalar_one_or_none()
    return int(version) if version is not None else 0


def _write_version(conn: Connection, version: int) -> None:
    table = schema.schema_version
    now = datetime.now(UTC)
    updated = conn.execute(table.update().values(version=version, updated_at=now)).rowcount
    if not updated:
        conn.execute(table.insert().values(id=1, version=version, updated_at=now))


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
    # SQLite: the write engine's BEGIN IMMEDIATE already holds the database write lock.


def _refuse_newer(current: int, latest: int, url: str) -> None:
    if current > latest:
        where = f" at {url}" if url else ""
        raise ConfigurationError(
            f"The ledger database{where} has schema version {current}, newer than version "
            f"{latest} known to this mirakl_connector; upgrade the package on every worker "
            "before running it against this database"
        )


def _check_steps(steps: Sequence[MigrationStep]) -> None:
    for expected, step in enumerate(steps, start=1):
        if step.version != expected:
            raise ValueError(
                f"migration steps must be numbered 1, 2, 3...; step {step.description!r} "
                f"has version {step.version}, expected {expected}"
            )
