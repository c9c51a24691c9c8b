"""The Stripe connector import from a MySQL/MariaDB install (Doctrine's MySQL column types:
TINYINT(1) booleans, DATETIME, the quoted ``key`` column), through the connection's URL."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from mirakl_connector.airflow.operators.cutover import source_url_from_connection
from mirakl_connector.cutover.stripe_connector import import_stripe_connector
from mirakl_connector.cutover.stripe_rollback import rollback_sql
from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.records import (
    AccountMapping,
    PayoutRecord,
    PayoutStatus,
    TransferRecord,
    TransferStatus,
    TransferType,
)

MYSQL_URL = (
    os.environ.get("MIRAKL_CONNECTOR_TEST_MYSQL_URL") or "mysql+pymysql://root@127.0.0.1:3306"
)

SCHEMA = [
    "CREATE TABLE account_mapping (id INT AUTO_INCREMENT NOT NULL PRIMARY KEY, "
    "mirakl_shop_id INT NOT NULL, "
    "stripe_account_id VARCHAR(255) NOT NULL, payout_enabled TINYINT(1) DEFAULT 0 NOT NULL, "
    "payin_enabled TINYINT(1) DEFAULT 0 NOT NULL, disabled_reason VARCHAR(255) DEFAULT NULL, "
    "creation_datetime DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL, "
    "modification_datetime DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL, "
    "onboarding_token VARCHAR(255) DEFAULT NULL, ignored TINYINT(1) DEFAULT 0 NOT NULL, "
    "UNIQUE INDEX UNIQ_80CD38C2F5FD776E (mirakl_shop_id))",
    "CREATE TABLE stripe_transfer (id INT AUTO_INCREMENT NOT NULL PRIMARY KEY, "
    "account_mapping_id INT DEFAULT "
    "NULL, mirakl_id VARCHAR(255) NOT NULL, type VARCHAR(255) NOT NULL, transfer_id VARCHAR(255) "
    "DEFAULT NULL, transaction_id VARCHAR(255) DEFAULT NULL, amount INT DEFAULT NULL, "
    "status VARCHAR(255) NOT NULL, status_reason VARCHAR(1024) DEFAULT NULL, "
    "currency VARCHAR(255) DEFAULT NULL, mirakl_created_date DATETIME DEFAULT NULL, "
    "UNIQUE INDEX transfer (type, mirakl_id))",
    "CREATE TABLE stripe_payout (id INT AUTO_INCREMENT NOT NULL PRIMARY KEY, "
    "account_mapping_id INT DEFAULT "
    "NULL, amount INT DEFAULT NULL, currency VARCHAR(255) DEFAULT NULL, mirakl_invoice_id INT "
    "NOT NULL, payout_id VARCHAR(255) DEFAULT NULL, status VARCHAR(255) NOT NULL, "
    "status_reason VARCHAR(1024) DEFAULT NULL, mirakl_created_date DATETIME DEFAULT NULL)",
    "CREATE TABLE config (id INT AUTO_INCREMENT NOT NULL PRIMARY KEY, `key` VARCHAR(255) NOT NULL, "
    "value VARCHAR(255) DEFAULT NULL, UNIQUE INDEX UNIQ_84CED2B33EFA2266 (`key`))",
    "INSERT INTO account_mapping (id, mirakl_shop_id, stripe_account_id, payout_enabled, "
    "payin_enabled, onboarding_token) VALUES (1, 41, 'acct_mysql', 1, 1, 'secret-token')",
    "INSERT INTO stripe_transfer VALUES (1, 1, 'M-1-A', 'TRANSFER_PRODUCT_ORDER', 'tr_m1', "
    "'ch_m1', 1250, 'TRANSFER_CREATED', NULL, 'eur', '2026-10-01 12:00:00')",
    "INSERT INTO stripe_transfer VALUES (2, 1, 'M-2-A', 'TRANSFER_PRODUCT_ORDER', NULL, "
    "'ch_m2', 990, 'TRANSFER_PENDING', NULL, 'eur', '2026-10-02 12:00:00')",
    "INSERT INTO stripe_payout VALUES (1, 1, 5000, 'eur', 501, 'po_m1', 'PAYOUT_CREATED', NULL, "
    "'2026-10-03 00:00:00')",
    "INSERT INTO config VALUES (1, 'product_payment_split_checkpoint', '2026-10-02T12:00:00+0000')",
]


@pytest.fixture
def mysql_db() -> Iterator[str]:
    admin = create_engine(MYSQL_URL, connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to connect means "not reachable"
        admin.dispose()
        if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
            pytest.fail(f"MySQL not reachable: {type(exc).__name__}", pytrace=False)
        pytest.skip(f"MySQL not reachable: {type(exc).__name__}")
    name = f"old_stripe_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE DATABASE `{name}`"))
        url = f"{MYSQL_URL}/{name}"
        engine = create_engine(url)
        with engine.begin() as conn:
            for statement in SCHEMA:
                conn.execute(text(statement))
        engine.dispose()
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


def test_import_from_mysql(mysql_db, tmp_path):
    ledger = Ledger(Ledger.default_sqlite_url(tmp_path))
    try:
        summary = import_stripe_connector(mysql_db, ledger, dry_run=False)
        again = import_stripe_connector(mysql_db, ledger, dry_run=False)
    finally:
        ledger.dispose()
    assert summary.counts == {
        "ACCOUNT_MAPPING_IMPORTED": 1,
        "TRANSFER_IMPORTED": 1,
        "TRANSFER_HELD": 1,
        "PAYOUT_IMPORTED": 1,
        "CHECKPOINT_IMPORTED": 1,
        "CHECKPOINT_NOT_SET": 3,
    }
    assert "table payment_mapping not found" in "\n".join(summary.notes)
    assert "secret-token" not in json.dumps(summary.to_dict())
    assert again.counts["TRANSFER_UNCHANGED"] == 1 and again.counts["PAYOUT_UNCHANGED"] == 1
    ledger = Ledger(Ledger.default_sqlite_url(tmp_path))
    try:
        moved = ledger.get_transfer(TransferType.PRODUCT_ORDER, "M-1-A")
        assert (moved.status, moved.transfer_id, moved.destination_account) == (
            TransferStatus.CREATED,
            "tr_m1",
            "acct_mysql",
        )
        assert ledger.get_payouts(["501"])["501"].status is PayoutStatus.CREATED
        mapping = ledger.account_mappings_by_shop([41])[41]
        assert (mapping.payouts_enabled, mapping.onboarding_token) == (True, "secret-token")
    finally:
        ledger.dispose()


def test_the_rollback_sql_runs_on_mysql_twice_and_records_our_moves(mysql_db, tmp_path):
    ledger = Ledger(Ledger.default_sqlite_url(tmp_path))
    try:
        import_stripe_connector(mysql_db, ledger, dry_run=False)
        ledger.upsert_account_mapping(
            AccountMapping(mirakl_shop_id=42, stripe_account_id="acct_new")
        )
        ledger.save_transfers(
            [
                TransferRecord(
                    type=TransferType.PRODUCT_ORDER, mirakl_id="M-3-A",
                    status=TransferStatus.CREATED, transfer_id="tr_ours", amount=700,
                    currency="EUR", destination_account="acct_new", mirakl_shop_id=42,
                    mirakl_created_date="2026-10-05T10:00:00+02:00",
                )
            ]
        )  # fmt: skip
        ledger.save_payouts(
            [
                PayoutRecord(
                    mirakl_invoice_id="502", status=PayoutStatus.CREATED, payout_id="po_ours",
                    amount=800, currency="EUR", stripe_account_id="acct_mysql",
                )
            ]
        )  # fmt: skip
        statements, summary = rollback_sql(ledger, dialect="mysql")
    finally:
        ledger.dispose()
    assert summary.counts["ROLLBACK_TRANSFER"] == 2  # ours and the imported one (a no-op there)
    engine = create_engine(mysql_db)
    try:
        for _ in range(2):
            with engine.begin() as conn:
                for statement in statements[1:-1]:
                    conn.exec_driver_sql(statement)
        with engine.connect() as conn:
            transfers = conn.exec_driver_sql(
                "SELECT mirakl_id, transfer_id, status, mirakl_created_date, "
                "(SELECT stripe_account_id FROM account_mapping a WHERE a.id = account_mapping_id) "
                "FROM stripe_transfer ORDER BY mirakl_id"
            ).all()
            payouts = conn.exec_driver_sql(
                "SELECT mirakl_invoice_id, payout_id FROM stripe_payout ORDER BY 1"
            ).all()
            shops = conn.exec_driver_sql("SELECT mirakl_shop_id FROM account_mapping").all()
    finally:
        engine.dispose()
    assert [tuple(t[:3]) for t in transfers] == [
        ("M-1-A", "tr_m1", "TRANSFER_CREATED"),
        ("M-2-A", None, "TRANSFER_PENDING"),  # held here: left for a human there too
        ("M-3-A", "tr_ours", "TRANSFER_CREATED"),
    ]
    assert str(transfers[2][3]) == "2026-10-05 08:00:00" and transfers[2][4] == "acct_new"
    assert [tuple(p) for p in payouts] == [(501, "po_m1"), (502, "po_ours")]
    assert sorted(s[0] for s in shops) == [41, 42]


def test_the_connection_becomes_a_driver_url():
    from airflow.sdk import Connection

    mysql = Connection(
        conn_id="stripe_connector_db", conn_type="mysql", host="db", port=3306,
        login="reader", password="p@ss/word", schema="symfony",
    )  # fmt: skip
    assert (
        source_url_from_connection(mysql) == "mysql+pymysql://reader:p%40ss%2Fword@db:3306/symfony"
    )
    pg = Connection(conn_id="x", conn_type="postgres", host="db", schema="symfony")
    assert source_url_from_connection(pg) == "postgresql+psycopg2://db/symfony"
    explicit = Connection(
        conn_id="x", conn_type="generic", extra=json.dumps({"sqlalchemy_url": "sqlite://"})
    )
    assert source_url_from_connection(explicit) == "sqlite://"
