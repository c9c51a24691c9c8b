"""The Stripe connector's database, as its Doctrine migrations leave it, with a realistic history.

The DDL below is written from the incumbent's migrations (``src/Migrations``, up to
``Version20221031140741``): the tables and columns it has today, in PostgreSQL's dialect (the
incumbent's documented database). The history is the one the demo marketplace
(``scenarios/demo.json``) would have had if the incumbent had run on it until 2026-11-20: some
orders transferred, one transfer failed, one on hold, one handed to its worker and never
confirmed (PENDING), refunds and payouts in several statuses, payment mappings, and its four
checkpoints.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_URL_ENV = "MIRAKL_CONNECTOR_TEST_PG_URL"
DEFAULT_PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"

#: Doctrine's id sequences (PostgreSQL), under their names after the renames of 2020-2021.
SEQUENCES = {
    "account_mapping": "account_mapping_id_seq",
    "stripe_transfer": "stripe_transfer_id_seq",
    "stripe_payout": "stripe_payout_id_seq",
    "stripe_refund": "stripe_refund_id_seq",
    "payment_mapping": "payment_mapping_id_seq",
    "config": "config_id_seq",
}

#: The incumbent's tables today (PostgreSQL), one statement each.
OLD_SCHEMA = [
    *[f"CREATE SEQUENCE {name} INCREMENT BY 1 MINVALUE 1 START 1" for name in SEQUENCES.values()],
    """CREATE TABLE account_mapping (
        id INT NOT NULL PRIMARY KEY, mirakl_shop_id INT NOT NULL,
        stripe_account_id VARCHAR(255) NOT NULL,
        payout_enabled BOOLEAN DEFAULT 'false' NOT NULL,
        payin_enabled BOOLEAN DEFAULT 'false' NOT NULL, disabled_reason VARCHAR(255) DEFAULT NULL,
        creation_datetime TIMESTAMP(0) WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL,
        modification_datetime TIMESTAMP(0) WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL,
        onboarding_token VARCHAR(255), ignored BOOLEAN DEFAULT 'false' NOT NULL)""",
    "CREATE UNIQUE INDEX UNIQ_80CD38C2F5FD776E ON account_mapping (mirakl_shop_id)",
    "CREATE UNIQUE INDEX UNIQ_80CD38C2E065F932 ON account_mapping (stripe_account_id)",
    """CREATE TABLE stripe_transfer (
        id INT NOT NULL PRIMARY KEY, account_mapping_id INT DEFAULT NULL
            REFERENCES account_mapping (id),
        mirakl_id VARCHAR(255) NOT NULL, type VARCHAR(255) NOT NULL,
        transfer_id VARCHAR(255) DEFAULT NULL, amount INT DEFAULT NULL,
        status VARCHAR(255) NOT NULL, status_reason VARCHAR(1024) DEFAULT NULL,
        currency VARCHAR(255) DEFAULT NULL,
        mirakl_created_date TIMESTAMP(0) WITHOUT TIME ZONE DEFAULT NULL,
        creation_datetime TIMESTAMP(0) WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL,
        modification_datetime TIMESTAMP(0) WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL,
        transaction_id VARCHAR(255) DEFAULT NULL)""",
    "CREATE UNIQUE INDEX transfer ON stripe_transfer (type, mirakl_id)",
    """CREATE TABLE stripe_payout (
        id INT NOT NULL PRIMARY KEY, account_mapping_id INT DEFAULT NULL
            REFERENCES account_mapping (id),
        amount INT DEFAULT NULL, currency VARCHAR(255) DEFAULT NULL,
        mirakl_created_date TIMESTAMP(0) WITHOUT TIME ZONE NOT NULL,
        mirakl_invoice_id INT NOT NULL, payout_id VARCHAR(255) DEFAULT NULL,
        status VARCHAR(255) NOT NULL, status_reason VARCHAR(1024) DEFAULT NULL,
        creation_datetime TIMESTAMP(0) WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL,
        modification_datetime TIMESTAMP(0) WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL)""",
    "CREATE UNIQUE INDEX UNIQ_E663D43E16A17787 ON stripe_payout (mirakl_invoice_id)",
    """CREATE TABLE stripe_refund (
        id INT NOT NULL PRIMARY KEY, amount INT NOT NULL, currency VARCHAR(255) NOT NULL,
        mirakl_refund_id VARCHAR(255) NOT NULL, mirakl_order_id VARCHAR(255) NOT NULL,
        stripe_refund_id VARCHAR(255) DEFAULT NULL, status VARCHAR(255) NOT NULL,
        status_reason VARCHAR(1024) NULL,
        mirakl_validation_time TIMESTAMP(0) WITHOUT TIME ZONE NULL,
        creation_datetime TIMESTAMP(0) WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL,
        modification_datetime TIMESTAMP(0) WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL,
        mirakl_order_line_id VARCHAR(255), transaction_id VARCHAR(255) DEFAULT NULL,
        type VARCHAR(255) NOT NULL DEFAULT 'REFUND_PRODUCT_ORDER',
        mirakl_commercial_order_id VARCHAR(255))""",
    "CREATE UNIQUE INDEX UNIQ_F36169648518A673 ON stripe_refund (mirakl_refund_id)",
    """CREATE TABLE payment_mapping (
        id INT NOT NULL PRIMARY KEY, mirakl_commercial_order_id VARCHAR(255) DEFAULT NULL,
        stripe_charge_id VARCHAR(255) NOT NULL, status VARCHAR(255) NOT NULL,
        creation_datetime TIMESTAMP(0) WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL,
        modification_datetime TIMESTAMP(0) WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL,
        stripe_amount INT NOT NULL)""",
    "CREATE UNIQUE INDEX UNIQ_42EFB5F77FCD0533 ON payment_mapping (stripe_charge_id)",
    """CREATE TABLE config (id INT NOT NULL PRIMARY KEY, "key" VARCHAR(255) NOT NULL,
        value VARCHAR(255) DEFAULT NULL)""",
    'CREATE UNIQUE INDEX UNIQ_84CED2B33EFA2266 ON config ("key")',
]

#: (id, shop, account, payout_enabled, payin_enabled, disabled_reason, onboarding_token, ignored)
ACCOUNT_MAPPINGS = [
    (1, 1, "acct_demo_lumiere", True, True, None, None, False),
    (2, 2, "acct_demo_bois", True, True, None, None, False),
    (3, 3, "acct_demo_tokyo", True, True, None, None, False),
    (4, 4, "acct_demo_gulf", True, True, None, None, False),
    (
        5,
        7,
        "acct_demo_berlin",
        False,
        False,
        "requirements.past_due",
        "9f1c0e5d7a2b4c6e8d0f1a3b5c7d9e1f",
        False,
    ),
]

#: (id, type, mirakl_id, mapping id, transfer_id, transaction_id, amount, currency, status,
#:  status_reason, mirakl_created_date)
TRANSFERS = [
    (1, "TRANSFER_PRODUCT_ORDER", "ORD-1001-A", 1, "tr_old_1001", "ch_demo_1001", 5500, "eur",
     "TRANSFER_CREATED", None, "2026-11-14 09:15:00"),
    (2, "TRANSFER_PRODUCT_ORDER", "ORD-1002-A", 2, "tr_old_1002", "pi_demo_1002", 9000, "eur",
     "TRANSFER_CREATED", None, "2026-11-15 10:15:00"),
    (3, "TRANSFER_PRODUCT_ORDER", "ORD-1003-A", 1, None, None, None, None, "TRANSFER_ABORTED",
     "Order cannot be processed, status is REFUSED", "2026-11-15 11:15:00"),
    (4, "TRANSFER_PRODUCT_ORDER", "ORD-1004-A", 2, None, None, None, None, "TRANSFER_ABORTED",
     "Order cannot be processed, status is CANCELED", "2026-11-16 12:15:00"),
    (5, "TRANSFER_PRODUCT_ORDER", "ORD-1007-A", 2, "tr_old_1007", "ch_demo_1007", 6000, "eur",
     "TRANSFER_CREATED", None, "2026-11-17 15:15:00"),
    (6, "TRANSFER_PRODUCT_ORDER", "ORD-1008-A", 1, None, "ch_demo_1008", 4000, "eur",
     "TRANSFER_FAILED", "Transfers disabled.", "2026-11-17 16:15:00"),
    (7, "TRANSFER_PRODUCT_ORDER", "ORD-1009-A", 2, None, "ch_demo_1009", 4200, "eur",
     "TRANSFER_PENDING", None, "2026-11-18 17:15:00"),
    (8, "TRANSFER_PRODUCT_ORDER", "ORD-1010-A", 3, "tr_old_1010", "ch_demo_1010", 300000, "jpy",
     "TRANSFER_CREATED", None, "2026-11-18 08:15:00"),
    (9, "TRANSFER_PRODUCT_ORDER", "ORD-1011-A", 4, None, None, None, None, "TRANSFER_ON_HOLD",
     "Payment ch_demo_1011 is not ready yet, status is pending", "2026-11-19 09:15:00"),
    (10, "TRANSFER_PRODUCT_ORDER", "ORD-1012-A", None, None, None, None, None,
     "TRANSFER_ON_HOLD", "Cannot find Stripe account for shop ID 5", "2026-11-19 10:15:00"),
    (11, "TRANSFER_PRODUCT_ORDER", "ORD-1014-A", 1, "tr_old_1014", "ch_demo_1014", 7000, "eur",
     "TRANSFER_CREATED", None, "2026-11-12 12:15:00"),
    (12, "TRANSFER_SERVICE_ORDER", "SRV-2001-A", 2, "tr_old_2001", "ch_demo_srv_2001", 8000,
     "eur", "TRANSFER_CREATED", None, "2026-11-16 10:00:00"),
    (13, "TRANSFER_SERVICE_ORDER", "SRV-2002-A", 1, "tr_old_2002", "ch_demo_srv_2002", 5000,
     "eur", "TRANSFER_CREATED", None, "2026-11-17 10:00:00"),
    (14, "TRANSFER_REFUND", "R-3001", 1, "trr_old_3001", "tr_old_1014", 1500, "eur",
     "TRANSFER_CREATED", None, None),
    (15, "TRANSFER_REFUND", "R-3002", None, None, None, None, None, "TRANSFER_ON_HOLD",
     "Refund R-3002 has yet to be validated", None),
    (16, "TRANSFER_SUBSCRIPTION", "9001", 1, "tr_old_sub_9001", None, 999, "eur",
     "TRANSFER_CREATED", None, "2026-11-20 00:00:00"),
    (17, "TRANSFER_EXTRA_CREDITS", "9001", 1, "tr_old_cred_9001", None, 1000, "eur",
     "TRANSFER_CREATED", None, "2026-11-20 00:00:00"),
    (18, "TRANSFER_EXTRA_INVOICES", "9001", 1, "tr_old_inv_9001", None, 500, "eur",
     "TRANSFER_CREATED", None, "2026-11-20 00:00:00"),
    # Rows no ledger status can express: reported, never guessed.
    (19, "TRANSFER_PRODUCT_ORDER", "ORD-0999-A", 1, None, None, 100, "eur", "TRANSFER_QUEUED",
     None, "2026-11-01 00:00:00"),
    (20, "TRANSFER_MYSTERY", "ORD-0998-A", 1, None, None, 100, "eur", "TRANSFER_CREATED", None,
     "2026-11-01 00:00:00"),
]  # fmt: skip

#: (id, type, mirakl_refund_id, order id, line id, commercial id, transaction_id,
#:  stripe_refund_id, amount, currency, status, status_reason, mirakl_validation_time)
REFUNDS = [
    (1, "REFUND_PRODUCT_ORDER", "R-3001", "ORD-1014-A", "ORD-1014-A-1", "ORD-1014",
     "ch_demo_1014", "re_old_3001", 2000, "eur", "REFUND_CREATED", None, "2026-11-19 08:00:00"),
    (2, "REFUND_PRODUCT_ORDER", "R-3002", "ORD-1002-A", "ORD-1002-A-1", "ORD-1002",
     "pi_demo_1002", None, 4900, "eur", "REFUND_FAILED", "Request rate limit exceeded.", None),
    (3, "REFUND_SERVICE_ORDER", "SR-4001", "SRV-2002-A", None, "SRV-2002", "ch_demo_srv_2002",
     "re_old_4001", 2200, "eur", "REFUND_PENDING", None, None),
]  # fmt: skip

#: (id, mapping id, invoice id, payout_id, amount, currency, status, reason, created)
PAYOUTS = [
    (1, 1, 9001, "po_old_9001", 15025, "eur", "PAYOUT_CREATED", None, "2026-11-20 00:00:00"),
    (2, 2, 8998, None, 12000, "eur", "PAYOUT_PENDING", None, "2026-11-10 00:00:00"),
    (3, 5, 8999, None, 5000, "eur", "PAYOUT_ON_HOLD", "Payouts are disabled shop ID 7",
     "2026-11-10 00:00:00"),
]  # fmt: skip

#: (id, commercial id, charge, status, amount)
PAYMENT_MAPPINGS = [
    (1, "ORD-1006", "pi_demo_1006", "to_capture", 15300),
    (2, "ORD-1007", "ch_demo_1007", "captured", 7760),
    (3, "ORD-1015", "ch_demo_1015", "to_capture", 18000),
    (4, "ORD-1016", "pi_demo_1016", "to_capture", 10680),
    (5, "ORD-0990", "ch_demo_0990", "authorised_maybe", 100),
]

#: The incumbent's config table: its checkpoints as it stored them (raw Mirakl strings).
CONFIG = [
    (1, "product_payment_split_checkpoint", "2026-11-19T10:15:00+0000"),
    (2, "service_payment_split_checkpoint", "2026-11-17T11:00:00.000+01:00"),
    (3, "seller_settlement_checkpoint", "2026-11-20T00:00:00+0000"),
    (4, "seller_onboarding_checkpoint", None),
]

#: What moved at the incumbent: the sandbox must never see these again.
MOVED_TRANSFERS = {"ORD-1001-A", "ORD-1002-A", "ORD-1007-A", "ORD-1010-A", "ORD-1014-A",
                   "SRV-2001-A", "SRV-2002-A", "9001"}  # fmt: skip
MOVED_REVERSALS = {"R-3001"}
MOVED_REFUNDS = {"R-3001", "SR-4001"}
MOVED_PAYOUTS = {"9001"}
#: Handed to the incumbent's worker without an outcome: never sent from here.
IN_DOUBT = {"ORD-1009-A", "8998"}


def fill_history(url: str) -> None:
    """Create the incumbent's tables at ``url`` and insert its history."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in OLD_SCHEMA:
                conn.execute(text(statement))
            conn.execute(
                text(
                    "INSERT INTO account_mapping (id, mirakl_shop_id, stripe_account_id, "
                    "payout_enabled, payin_enabled, disabled_reason, onboarding_token, ignored) "
                    "VALUES (:a, :b, :c, :d, :e, :f, :g, :h)"
                ),
                [dict(zip("abcdefgh", row, strict=True)) for row in ACCOUNT_MAPPINGS],
            )
            conn.execute(
                text(
                    "INSERT INTO stripe_transfer (id, type, mirakl_id, account_mapping_id, "
                    "transfer_id, transaction_id, amount, currency, status, status_reason, "
                    "mirakl_created_date) VALUES (:a, :b, :c, :d, :e, :f, :g, :h, :i, :j, :k)"
                ),
                [dict(zip("abcdefghijk", row, strict=True)) for row in TRANSFERS],
            )
            conn.execute(
                text(
                    "INSERT INTO stripe_refund (id, type, mirakl_refund_id, mirakl_order_id, "
                    "mirakl_order_line_id, mirakl_commercial_order_id, transaction_id, "
                    "stripe_refund_id, amount, currency, status, status_reason, "
                    "mirakl_validation_time) "
                    "VALUES (:a, :b, :c, :d, :e, :f, :g, :h, :i, :j, :k, :l, :m)"
                ),
                [dict(zip("abcdefghijklm", row, strict=True)) for row in REFUNDS],
            )
            conn.execute(
                text(
                    "INSERT INTO stripe_payout (id, account_mapping_id, mirakl_invoice_id, "
                    "payout_id, amount, currency, status, status_reason, mirakl_created_date) "
                    "VALUES (:a, :b, :c, :d, :e, :f, :g, :h, :i)"
                ),
                [dict(zip("abcdefghi", row, strict=True)) for row in PAYOUTS],
            )
            conn.execute(
                text(
                    "INSERT INTO payment_mapping (id, mirakl_commercial_order_id, "
                    "stripe_charge_id, status, stripe_amount) VALUES (:a, :b, :c, :d, :e)"
                ),
                [dict(zip("abcde", row, strict=True)) for row in PAYMENT_MAPPINGS],
            )
            conn.execute(
                text('INSERT INTO config (id, "key", value) VALUES (:a, :b, :c)'),
                [dict(zip("abc", row, strict=True)) for row in CONFIG],
            )
            for table, sequence in SEQUENCES.items():  # as Doctrine's inserts leave them
                conn.execute(text(f"SELECT setval('{sequence}', (SELECT max(id) FROM {table}))"))
    finally:
        engine.dispose()


def _postgres_url() -> str:
    url = os.environ.get(PG_URL_ENV) or DEFAULT_PG_URL
    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to connect means "not reachable"
        message = f"PostgreSQL not reachable: {type(exc).__name__}"
        if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
            pytest.fail(f"{message} (CI=true: PostgreSQL tests must run)", pytrace=False)
        pytest.skip(message)
    finally:
        engine.dispose()
    return url


@pytest.fixture
def old_stripe_db() -> Iterator[str]:
    """URL of the incumbent's database: a PostgreSQL schema of its own, dropped after."""
    base = _postgres_url()
    schema = f"old_stripe_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        rendered = url.render_as_string(hide_password=False)
        fill_history(rendered)
        yield rendered
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def old_history() -> dict[str, set[str]]:
    """What the incumbent moved, and what it left in doubt (see the constants above)."""
    return {
        "transfers": set(MOVED_TRANSFERS),
        "reversals": set(MOVED_REVERSALS),
        "refunds": set(MOVED_REFUNDS),
        "payouts": set(MOVED_PAYOUTS),
        "in_doubt": set(IN_DOUBT),
    }
