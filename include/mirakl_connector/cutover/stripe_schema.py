"""The Stripe Connector for Mirakl's database, as the cutover import reads it.

The incumbent keeps its state in a Doctrine database (PostgreSQL, or MySQL for some installs).
Its schema, as its migrations leave it (``src/Migrations/Version2019…`` to ``Version20221031…``):

``account_mapping`` (was ``mirakl_stripe_mapping`` before ``Version20200929100110``)
    ``id``, ``mirakl_shop_id``, ``stripe_account_id``, ``payout_enabled``, ``payin_enabled``,
    ``disabled_reason``, ``onboarding_token`` (``Version20220201185936``), ``ignored``
    (``Version20221031140741``).
``stripe_transfer`` (``Version20191007085721``)
    ``id``, ``mirakl_id``, ``type``, ``account_mapping_id`` (was ``mirakl_stripe_mapping_id``),
    ``transfer_id``, ``transaction_id`` (``Version20191008133232``), ``amount``, ``currency``,
    ``status``, ``status_reason`` (was ``failed_reason``), ``mirakl_created_date`` (was
    ``mirakl_update_time``; both renamed in ``Version20201216133324``); unique
    ``(type, mirakl_id)``.
``stripe_refund`` (was ``mirakl_refund``, ``Version20200329141302`` / ``Version20200929091654``)
    ``id``, ``type`` (``Version20201601191812``), ``amount``, ``currency``, ``mirakl_refund_id``,
    ``mirakl_order_id``, ``mirakl_order_line_id``, ``mirakl_commercial_order_id``,
    ``transaction_id``, ``stripe_refund_id``, ``status``, ``status_reason``,
    ``mirakl_validation_time``.
``stripe_payout`` (``Version20191007085721``)
    ``id``, ``account_mapping_id``, ``amount``, ``currency``, ``mirakl_invoice_id``, ``payout_id``
    (was ``stripe_payout_id``), ``status``, ``status_reason`` (was ``failed_reason``),
    ``mirakl_created_date`` (was ``mirakl_update_time``).
``payment_mapping`` (was ``stripe_payment`` then ``stripe_charge``)
    ``id``, ``mirakl_commercial_order_id`` (was ``mirakl_order_id``), ``stripe_charge_id`` (was
    ``stripe_payment_id``), ``status``, ``stripe_amount``.
``config`` (``Version20201216133324``)
    ``key``, ``value``: the checkpoints ``product_payment_split_checkpoint``,
    ``service_payment_split_checkpoint``, ``seller_settlement_checkpoint``,
    ``seller_onboarding_checkpoint`` (before ``Version20201601191812``:
    ``process_transfer_checkpoint`` and ``process_payout_checkpoint``).

Tables and columns are reflected, and each logical column is looked up under its current name,
then its older names: an older install is read as well, and what it lacks is reported.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, MetaData, Table, create_engine, func, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError, StatementError

from mirakl_connector.core.errors import ConfigurationError

#: Rows read per batch (the import maps and saves them a batch at a time).
CHUNK_SIZE = 500

# -- the incumbent's schema: logical name → table names, columns → names (newest first) -------


@dataclass(frozen=True)
class OldTable:
    """A table of the incumbent, by its current name and older ones, with the columns we read."""

    name: str
    names: tuple[str, ...]
    columns: Mapping[str, tuple[str, ...]]
    required: frozenset[str]


def _columns(*names: str | tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """``{logical column: its names, newest first}``, in the order given: a plain name is a
    column the incumbent never renamed, a tuple its current name then its older ones."""
    return {(n if isinstance(n, str) else n[0]): ((n,) if isinstance(n, str) else n) for n in names}


ACCOUNT_MAPPING = OldTable(
    "account_mapping",
    ("account_mapping", "mirakl_stripe_mapping"),
    _columns(
        "id",
        "mirakl_shop_id",
        "stripe_account_id",
        "payout_enabled",
        "payin_enabled",
        "disabled_reason",
        "onboarding_token",
        "ignored",
    ),
    frozenset({"id", "mirakl_shop_id", "stripe_account_id"}),
)
STRIPE_TRANSFER = OldTable(
    "stripe_transfer",
    ("stripe_transfer",),
    _columns(
        "id",
        "mirakl_id",
        "type",
        "status",
        ("account_mapping_id", "mirakl_stripe_mapping_id"),
        "transfer_id",
        "transaction_id",
        "amount",
        "currency",
        ("status_reason", "failed_reason"),
        ("mirakl_created_date", "mirakl_update_time"),
    ),
    frozenset({"id", "mirakl_id", "type", "status"}),
)
STRIPE_REFUND = OldTable(
    "stripe_refund",
    ("stripe_refund", "mirakl_refund"),
    _columns(
        "id",
        "mirakl_refund_id",
        "type",
        "status",
        "amount",
        "currency",
        "mirakl_order_id",
        "mirakl_order_line_id",
        "mirakl_commercial_order_id",
        "transaction_id",
        "stripe_refund_id",
        ("status_reason", "failed_reason"),
        "mirakl_validation_time",
        "modification_datetime",
    ),
    frozenset({"id", "mirakl_refund_id", "status"}),
)
STRIPE_PAYOUT = OldTable(
    "stripe_payout",
    ("stripe_payout",),
    _columns(
        "id",
        "mirakl_invoice_id",
        "status",
        ("account_mapping_id", "mirakl_stripe_mapping_id"),
        ("payout_id", "stripe_payout_id"),
        "amount",
        "currency",
        ("status_reason", "failed_reason"),
        ("mirakl_created_date", "mirakl_update_time"),
    ),
    frozenset({"id", "mirakl_invoice_id", "status"}),
)
PAYMENT_MAPPING = OldTable(
    "payment_mapping",
    ("payment_mapping", "stripe_charge", "stripe_payment"),
    _columns(
        "id",
        ("stripe_charge_id", "stripe_payment_id"),
        ("mirakl_commercial_order_id", "mirakl_order_id"),
        "status",
        "stripe_amount",
    ),
    frozenset({"id", "stripe_charge_id", "status"}),
)
CONFIG = OldTable(
    "config",
    ("config",),
    _columns("key", "value"),
    frozenset({"key"}),
)
OLD_TABLES = (ACCOUNT_MAPPING, STRIPE_TRANSFER, STRIPE_REFUND, STRIPE_PAYOUT, PAYMENT_MAPPING)

#: Our checkpoint ← the incumbent's config keys (current name first, pre-2.0 name after).
CHECKPOINTS: dict[str, tuple[str, ...]] = {
    "product_payment_split_checkpoint": (
        "product_payment_split_checkpoint",
        "process_transfer_checkpoint",
    ),
    "service_payment_split_checkpoint": ("service_payment_split_checkpoint",),
    "seller_settlement_checkpoint": ("seller_settlement_checkpoint", "process_payout_checkpoint"),
    "seller_onboarding_checkpoint": ("seller_onboarding_checkpoint",),
}


# -- reading the incumbent's database ---------------------------------------------------------


class OldConnectorDatabase:
    """Read-only access to the incumbent's tables, whatever version of its schema they are at.

    :param url: SQLAlchemy URL (contains the password: never logged; :attr:`url` is masked).
    :param timezone: the zone of its ``TIMESTAMP WITHOUT TIME ZONE`` values (PHP's default
        zone on the incumbent's servers; UTC unless they changed it).
    """

    def __init__(self, url: str, *, timezone: str = "UTC") -> None:
        self._url = make_url(url)
        try:
            self.timezone: tzinfo = ZoneInfo(timezone)
        except Exception:  # noqa: BLE001 - any unknown zone name
            raise ConfigurationError(
                f"unknown time zone {timezone!r} for the old database"
            ) from None
        self._engine: Engine = create_engine(self._url, pool_pre_ping=True)
        self.notes: list[str] = []
        try:
            self._table_names = set(inspect(self._engine).get_table_names())
        except SQLAlchemyError as exc:
            self._engine.dispose()
            # Only driver errors (StatementError and its DBAPIError subclasses) wrap an ``orig``.
            cause = (exc.orig if isinstance(exc, StatementError) else None) or exc
            raise ConfigurationError(
                f"Cannot read the Stripe connector's database {self.url}: "
                f"{type(cause).__name__}: {first_line(cause)}"
            ) from None
        self._tables: dict[str, tuple[Table, dict[str, str]] | None] = {}

    @property
    def url(self) -> str:
        return self._url.render_as_string(hide_password=True)

    def dispose(self) -> None:
        self._engine.dispose()

    def _resolve(self, spec: OldTable) -> tuple[Table, dict[str, str]] | None:
        """The reflected table of ``spec`` and ``{logical column: actual column}``; None: absent."""
        if spec.name in self._tables:
            return self._tables[spec.name]
        name = next((n for n in spec.names if n in self._table_names), None)
        if name is None:
            self.notes.append(
                f"table {spec.name} not found (looked for {', '.join(spec.names)}): nothing "
                "imported from it"
            )
            self._tables[spec.name] = None
            return None
        if name != spec.name:
            self.notes.append(f"table {spec.name} read from its older name {name}")
        table = Table(name, MetaData(), autoload_with=self._engine)
        present = {c.name for c in table.columns}
        columns: dict[str, str] = {}
        for logical, candidates in spec.columns.items():
            actual = next((c for c in candidates if c in present), None)
            if actual is None:
                if logical in spec.required:
                    raise ConfigurationError(
                        f"table {name} of the Stripe connector has no {logical} column: this "
                        "is not a schema we know (looked for "
                        f"{', '.join(candidates)})"
                    )
                self.notes.append(
                    f"{name}.{logical} missing (older connector version): read as empty"
                )
                continue
            if actual != logical:
                self.notes.append(f"{name}.{logical} read from its older name {actual}")
            columns[logical] = actual
        self._tables[spec.name] = (table, columns)
        return self._tables[spec.name]

    def count(self, spec: OldTable) -> int:
        resolved = self._resolve(spec)
        if resolved is None:
            return 0
        table, _ = resolved
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    def rows(self, spec: OldTable) -> Iterator[dict[str, Any]]:
        """Every row of ``spec`` as ``{logical column: value}`` (missing columns: None), by id."""
        resolved = self._resolve(spec)
        if resolved is None:
            return
        table, columns = resolved
        selected = [table.c[actual].label(logical) for logical, actual in columns.items()]
        stmt = select(*selected)
        if "id" in columns:
            stmt = stmt.order_by(table.c[columns["id"]])
        with self._engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=CHUNK_SIZE).execute(stmt)
            for row in result.mappings():
                values = {logical: None for logical in spec.columns}
                values.update(row)
                yield values

    def config(self) -> dict[str, str | None]:
        """The incumbent's ``config`` table as ``{key: value}``."""
        return {str(r["key"]): r["value"] for r in self.rows(CONFIG)}

    def aware(self, value: Any) -> datetime | None:
        """A stored timestamp as an aware UTC datetime (naive ones are in :attr:`timezone`)."""
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.timezone)
        return value.astimezone(UTC)


def first_line(error: object) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
