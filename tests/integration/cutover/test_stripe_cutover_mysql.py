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
from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.records import PayoutStatus, TransferStatus, TransferType

MYSQL_URL = (
    os.environ.get("MIRAKL_CONNECTOR_TEST_MYSQL_URL") or "mysql+pymysql://root@127.0.0.1:3306"
)

SCHEMA = [
    "CREATE TABLE account_mapping (id INT NOT NULL PRIMARY KEY, mirakl_shop_id INT NOT NULL, "
    "stripe_account_id VARCHAR(255) NOT NULL, payout_enabled TINYINT(1) DEFAULT 0 NOT NULL, "
    "payin_enabled TINYINT(1) DEFAULT 0 NOT NULL, disabled_reason VARCHAR(255) DEFAULT NULL, "
    "creation_datetime DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL, "
    "modification_datetime DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL, "
    "onboarding_token VARCHAR(255) DEFAULT NULL, ignored TINYINT(1) DEFAULT 0 NOT NULL, "
    "UNIQUE INDEX UNIQ_80CD38C2F5FD776E (mirakl_shop_id))",
    "CREATE TABLE stripe_transfer (id INT NOT NULL PRIMARY KEY, account_mapping_id INT DEFAULT "
    "NULL, mirakl_id VARCHAR(255) NOT NULL, type VARCHAR(255) NOT NULL, transfer_id VARCHAR(255) "
    "DEFAULT NULL, transaction_id VARCHAR(255) DEFAULT NULL, amount INT DEFAULT NULL, "
    "status VARCHAR(255) NOT NULL, status_reason VARCHAR(1024) DEFAULT NULL, "
    "currency VARCHAR(255) DEFAULT NULL, mirakl_created_date DATETIME DEFAULT NULL, "
    "UNIQUE INDEX transfer (type, mirakl_id))",
    "CREATE TABLE stripe_payout (id INT NOT NULL PRIMARY KEY, account_mapping_id INT DEFAULT "
    "NULL, amount INT DEFAULT NULL, currency VARCHAR(255) DEFAULT NULL, mirakl_invoice_id INT "
    "NOT NULL, payout_id VARCHAR(255) DEFAULT NULL, status VARCHAR(255) NOT NULL, "
    "status_reason VARCHAR(1024) DEFAULT NULL, mirakl_created_date DATETIME DEFAULT NULL)",
    "CREATE TABLE config (id INT NOT NULL PRIMARY KEY, `key` VARCHAR(255) NOT NULL, "
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
