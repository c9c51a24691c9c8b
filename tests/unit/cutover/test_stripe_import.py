"""The Stripe connector import on its own: older schemas, reruns after the incumbent moved on,
conflicts, checkpoints. The incumbent's database is a SQLite file here (SQLAlchemy reads it like
its PostgreSQL one; the PostgreSQL path runs in tests/integration/cutover); the ledger runs on
both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from mirakl_connector.cutover.stripe_connector import import_stripe_connector
from mirakl_connector.ledger.records import (
    PayoutStatus,
    RefundStatus,
    TransferRecord,
    TransferStatus,
    TransferType,
)

CURRENT = [
    "CREATE TABLE account_mapping (id INT PRIMARY KEY, mirakl_shop_id INT NOT NULL, "
    "stripe_account_id VARCHAR(255) NOT NULL, payout_enabled BOOLEAN NOT NULL DEFAULT 0, "
    "payin_enabled BOOLEAN NOT NULL DEFAULT 0, disabled_reason VARCHAR(255), "
    "onboarding_token VARCHAR(255), ignored BOOLEAN NOT NULL DEFAULT 0)",
    "CREATE TABLE stripe_transfer (id INT PRIMARY KEY, account_mapping_id INT, "
    "mirakl_id VARCHAR(255) NOT NULL, type VARCHAR(255) NOT NULL, transfer_id VARCHAR(255), "
    "amount INT, status VARCHAR(255) NOT NULL, status_reason VARCHAR(1024), "
    "currency VARCHAR(255), mirakl_created_date TIMESTAMP, transaction_id VARCHAR(255))",
    "CREATE TABLE config (id INT PRIMARY KEY, key VARCHAR(255) NOT NULL, value VARCHAR(255))",
]

#: As the incumbent's 1.x releases left it (before Version20200929100110 and
#: Version20201216133324): old table and column names, TRANSFER_ORDER, TRANSFER_INVALID_AMOUNT.
OLDER = [
    "CREATE TABLE mirakl_stripe_mapping (id INT PRIMARY KEY, mirakl_shop_id INT NOT NULL, "
    "stripe_account_id VARCHAR(255) NOT NULL, payout_enabled BOOLEAN NOT NULL DEFAULT 0, "
    "payin_enabled BOOLEAN NOT NULL DEFAULT 0, disabled_reason VARCHAR(255))",
    "CREATE TABLE stripe_transfer (id INT PRIMARY KEY, mirakl_stripe_mapping_id INT, "
    "mirakl_id VARCHAR(255) NOT NULL, type VARCHAR(255) NOT NULL, transfer_id VARCHAR(255), "
    "amount INT NOT NULL, status VARCHAR(255) NOT NULL, failed_reason VARCHAR(1024), "
    "currency VARCHAR(255) NOT NULL, mirakl_update_time TIMESTAMP NOT NULL, "
    "transaction_id VARCHAR(255))",
    "CREATE TABLE stripe_payout (id INT PRIMARY KEY, mirakl_stripe_mapping_id INT, "
    "amount INT NOT NULL, currency VARCHAR(255) NOT NULL, mirakl_update_time TIMESTAMP NOT NULL, "
    "mirakl_invoice_id INT NOT NULL, stripe_payout_id VARCHAR(255), status VARCHAR(255) NOT NULL, "
    "failed_reason VARCHAR(1024))",
    "CREATE TABLE mirakl_refund (id INT PRIMARY KEY, amount INT NOT NULL, "
    "currency VARCHAR(255) NOT NULL, mirakl_refund_id VARCHAR(255) NOT NULL, "
    "mirakl_order_id VARCHAR(255) NOT NULL, stripe_refund_id VARCHAR(255), "
    "stripe_reversal_id VARCHAR(255), status VARCHAR(255) NOT NULL, failed_reason VARCHAR(1024), "
    "mirakl_validation_time TIMESTAMP)",
    "CREATE TABLE stripe_payment (id INT PRIMARY KEY, mirakl_order_id VARCHAR(255), "
    "stripe_payment_id VARCHAR(255) NOT NULL, status VARCHAR(255) NOT NULL)",
]


def _old_db(tmp_path, statements, inserts=()):
    url = f"sqlite:///{tmp_path / 'old_connector.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        for statement in [*statements, *inserts]:
            conn.execute(text(statement))
    engine.dispose()
    return url


def _exec(url, *statements):
    engine = create_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    engine.dispose()


def test_an_older_schema_is_read_under_its_old_names_and_the_differences_are_reported(
    tmp_path, ledger
):
    url = _old_db(
        tmp_path,
        OLDER,
        [
            "INSERT INTO mirakl_stripe_mapping VALUES (1, 11, 'acct_old', 1, 1, NULL)",
            "INSERT INTO stripe_transfer VALUES (1, 1, 'O-1-A', 'TRANSFER_ORDER', 'tr_1', 1000, "
            "'TRANSFER_CREATED', NULL, 'eur', '2020-06-01 10:00:00', 'ch_1')",
            "INSERT INTO stripe_transfer VALUES (2, 1, 'O-2-A', 'TRANSFER_ORDER', NULL, 0, "
            "'TRANSFER_INVALID_AMOUNT', 'Amount must be positive, input was: 0', 'eur', "
            "'2020-06-02 10:00:00', NULL)",
            "INSERT INTO stripe_payout VALUES (1, 1, 5000, 'eur', '2020-06-03 00:00:00', 77, "
            "'po_1', 'PAYOUT_CREATED', NULL)",
            "INSERT INTO mirakl_refund VALUES (1, 300, 'eur', 'R-1', 'O-1-A', 're_1', 'trr_1', "
            "'REFUND_CREATED', NULL, '2020-06-04 00:00:00')",
            "INSERT INTO stripe_payment VALUES (1, 'O-1', 'ch_1', 'captured')",
        ],
    )

    summary = import_stripe_connector(url, ledger, dry_run=False, timezone="Europe/Paris")

    assert summary.counts == {
        "ACCOUNT_MAPPING_IMPORTED": 1,
        "PAYMENT_MAPPING_IMPORTED": 1,
        "TRANSFER_IMPORTED": 2,
        "REFUND_IMPORTED": 1,
        "PAYOUT_IMPORTED": 1,
        "CHECKPOINT_NOT_SET": 4,
    }
    notes = "\n".join(summary.notes)
    assert "table account_mapping read from its older name mirakl_stripe_mapping" in notes
    assert "stripe_transfer.status_reason read from its older name failed_reason" in notes
    assert (
        "stripe_transfer.mirakl_created_date read from its older name mirakl_update_time" in notes
    )
    assert "stripe_payout.payout_id read from its older name stripe_payout_id" in notes
    assert "table stripe_refund read from its older name mirakl_refund" in notes
    assert "mirakl_refund.type missing (older connector version): read as empty" in notes
    assert "table payment_mapping read from its older name stripe_payment" in notes
    assert "table config not found" in notes

    created = ledger.get_transfer(TransferType.PRODUCT_ORDER, "O-1-A")
    assert (created.status, created.transfer_id, created.amount, created.currency) == (
        TransferStatus.CREATED,
        "tr_1",
        1000,
        "EUR",
    )
    # 10:00 in Paris (summer time) is 08:00 UTC
    assert created.mirakl_created_date == "2020-06-01T08:00:00+00:00"
    assert created.destination_account == "acct_old" and created.mirakl_shop_id == 11
    assert ledger.get_transfer(TransferType.PRODUCT_ORDER, "O-2-A").status is TransferStatus.ABORTED
    payout = ledger.get_payouts(["77"])["77"]
    assert (payout.status, payout.payout_id, payout.stripe_account_id) == (
        PayoutStatus.CREATED,
        "po_1",
        "acct_old",
    )
    refund = ledger.get_refunds(["R-1"])["R-1"]
    assert refund.status is RefundStatus.CREATED and refund.mirakl_validated_at is not None
    assert ledger.get_payment_mapping("ch_1").mirakl_commercial_order_id == "O-1"


def _current_db(tmp_path):
    return _old_db(
        tmp_path,
        CURRENT,
        [
            "INSERT INTO account_mapping VALUES (1, 1, 'acct_1', 1, 1, NULL, 'tok', 0)",
            "INSERT INTO stripe_transfer VALUES (1, 1, 'A-1', 'TRANSFER_PRODUCT_ORDER', NULL, "
            "1000, 'TRANSFER_PENDING', NULL, 'eur', '2026-11-01 00:00:00', 'ch_a')",
            "INSERT INTO stripe_transfer VALUES (2, 1, 'B-1', 'TRANSFER_PRODUCT_ORDER', NULL, "
            "2000, 'TRANSFER_ON_HOLD', 'Order is not ready yet', 'eur', '2026-11-02 00:00:00', "
            "NULL)",
            "INSERT INTO stripe_transfer VALUES (3, 1, 'C-1', 'TRANSFER_PRODUCT_ORDER', NULL, "
            "3000, 'TRANSFER_ON_HOLD', 'Order is not ready yet', 'eur', '2026-11-03 00:00:00', "
            "NULL)",
            "INSERT INTO config VALUES (1, 'product_payment_split_checkpoint', "
            "'2026-11-03T00:00:00+0000')",
            "INSERT INTO config VALUES (2, 'seller_settlement_checkpoint', 'yesterday')",
        ],
    )


def test_a_rerun_takes_up_what_the_incumbent_moved_since_and_reports_conflicts(tmp_path, ledger):
    url = _current_db(tmp_path)

    first = import_stripe_connector(url, ledger, dry_run=False)

    assert first.counts["TRANSFER_HELD"] == 1 and first.counts["TRANSFER_IMPORTED"] == 2
    assert first.counts["CHECKPOINT_NOT_MAPPED"] == 1  # 'yesterday' is no date
    held = ledger.get_transfer(TransferType.PRODUCT_ORDER, "A-1")
    assert held.status is TransferStatus.ABORTED and "miraklId=A-1" in held.status_reason

    # This connector attempted C-1 (side by side, against the runbook); the incumbent then
    # finished A-1 and paid B-1 and C-1.
    row = ledger.get_transfer(TransferType.PRODUCT_ORDER, "C-1")
    ledger.save_transfers([TransferRecord(**{**row.__dict__, "status": TransferStatus.PENDING})])
    ledger.mark_transfer_attempt(
        ledger.get_transfer(TransferType.PRODUCT_ORDER, "C-1"), "mirakl-connector:test:C-1"
    )
    _exec(
        url,
        "UPDATE stripe_transfer SET status = 'TRANSFER_CREATED', transfer_id = 'tr_a' WHERE id = 1",
        "UPDATE stripe_transfer SET status = 'TRANSFER_CREATED', transfer_id = 'tr_b' WHERE id = 2",
        "UPDATE stripe_transfer SET status = 'TRANSFER_CREATED', transfer_id = 'tr_c' WHERE id = 3",
    )

    second = import_stripe_connector(url, ledger, dry_run=False)

    assert second.counts["TRANSFER_UPDATED"] == 2
    assert second.counts["TRANSFER_CONFLICT"] == 1
    assert ledger.get_transfer(TransferType.PRODUCT_ORDER, "A-1").transfer_id == "tr_a"
    assert ledger.get_transfer(TransferType.PRODUCT_ORDER, "B-1").status is TransferStatus.CREATED
    conflict = ledger.get_transfer(TransferType.PRODUCT_ORDER, "C-1")
    assert conflict.transfer_id is None and conflict.status is TransferStatus.PENDING
    [failure] = [f for f in second.failed if "C-1" in f["id"]]
    assert "tr_c" in failure["reason"] and "check Stripe" in failure["reason"]

    third = import_stripe_connector(url, ledger, dry_run=False)
    assert third.counts.get("TRANSFER_UPDATED", 0) == 0


def test_a_different_provider_id_is_a_conflict_and_is_never_overwritten(tmp_path, ledger):
    url = _current_db(tmp_path)
    ledger.save_transfers(
        [
            TransferRecord(
                type=TransferType.PRODUCT_ORDER,
                mirakl_id="B-1",
                status=TransferStatus.CREATED,
                transfer_id="tr_ours",
                amount=2000,
                currency="EUR",
            )
        ]
    )
    _exec(url, "UPDATE stripe_transfer SET transfer_id = 'tr_theirs' WHERE id = 2")

    summary = import_stripe_connector(url, ledger, dry_run=False)

    assert summary.counts["TRANSFER_CONFLICT"] == 1
    assert ledger.get_transfer(TransferType.PRODUCT_ORDER, "B-1").transfer_id == "tr_ours"


def test_checkpoints_only_move_forward_and_a_dry_run_writes_nothing(tmp_path, ledger):
    url = _current_db(tmp_path)
    ledger.set_checkpoint("product_payment_split_checkpoint", "2026-11-05T00:00:00Z")

    dry = import_stripe_connector(url, ledger, dry_run=True)
    assert dry.counts["TRANSFER_IMPORTED"] == 2
    assert ledger.get_transfer(TransferType.PRODUCT_ORDER, "B-1") is None
    assert ledger.list_account_mappings() == []

    summary = import_stripe_connector(url, ledger, dry_run=False)
    assert summary.counts["CHECKPOINT_UNCHANGED"] == 1
    assert ledger.get_checkpoint("product_payment_split_checkpoint") == "2026-11-05T00:00:00Z"
    assert ledger.imported_ids("transfer", ["TRANSFER_PRODUCT_ORDER/B-1"]) == {
        "TRANSFER_PRODUCT_ORDER/B-1": ("stripe-mirakl-connector", "2")
    }


def test_an_unreachable_database_names_it_without_its_password(ledger):
    from mirakl_connector.core.errors import ConfigurationError

    url = "postgresql+psycopg2://connector:s3cret-pw@127.0.0.1:1/stripe"
    with pytest.raises(ConfigurationError) as raised:
        import_stripe_connector(url, ledger)
    assert "s3cret-pw" not in str(raised.value)
    assert "127.0.0.1:1/stripe" in str(raised.value)


def test_a_held_refund_holds_its_reversal_until_the_incumbent_settles_it(tmp_path, ledger):
    url = _old_db(
        tmp_path,
        [
            *CURRENT,
            "CREATE TABLE stripe_refund (id INT PRIMARY KEY, amount INT NOT NULL, "
            "currency VARCHAR(255) NOT NULL, mirakl_refund_id VARCHAR(255) NOT NULL, "
            "mirakl_order_id VARCHAR(255) NOT NULL, stripe_refund_id VARCHAR(255), "
            "status VARCHAR(255) NOT NULL, status_reason VARCHAR(1024), "
            "mirakl_validation_time TIMESTAMP, mirakl_order_line_id VARCHAR(255), "
            "transaction_id VARCHAR(255), type VARCHAR(255) NOT NULL, "
            "mirakl_commercial_order_id VARCHAR(255))",
        ],
        [
            "INSERT INTO stripe_refund VALUES (1, 500, 'eur', 'R-9', 'A-1', NULL, "
            "'REFUND_PENDING', NULL, NULL, 'A-1-1', 'ch_a', 'REFUND_PRODUCT_ORDER', 'A')",
            "INSERT INTO stripe_transfer VALUES (1, NULL, 'R-9', 'TRANSFER_REFUND', NULL, NULL, "
            "'TRANSFER_ON_HOLD', 'Refund R-9 has yet to be validated', NULL, NULL, NULL)",
        ],
    )

    first = import_stripe_connector(url, ledger, dry_run=False)

    assert first.counts["REFUND_HELD"] == 1 and first.counts["TRANSFER_HELD"] == 1
    reversal = ledger.get_transfer(TransferType.REFUND, "R-9")
    assert (
        reversal.status is TransferStatus.ABORTED and "refund R-9 is held" in reversal.status_reason
    )

    _exec(
        url,
        "UPDATE stripe_refund SET status = 'REFUND_CREATED', stripe_refund_id = 're_9', "
        "mirakl_validation_time = '2026-11-20 10:00:00' WHERE id = 1",
    )
    second = import_stripe_connector(url, ledger, dry_run=False)

    assert second.counts["REFUND_UPDATED"] == 1 and second.counts["TRANSFER_UPDATED"] == 1
    assert ledger.get_refunds(["R-9"])["R-9"].stripe_refund_id == "re_9"
    released = ledger.get_transfer(TransferType.REFUND, "R-9")
    assert released.status is TransferStatus.ON_HOLD  # our refund step reverses it from here


def test_what_the_incumbent_paid_is_claimed_for_stripe_and_refused_to_hyperwallet(tmp_path, ledger):
    from mirakl_connector.ledger.claims import ClaimKind, claim_documents, find_claims

    url = _old_db(
        tmp_path,
        OLDER,
        [
            "INSERT INTO mirakl_stripe_mapping VALUES (1, 11, 'acct_old', 1, 1, NULL)",
            "INSERT INTO stripe_transfer VALUES (1, 1, 'O-1-A', 'TRANSFER_ORDER', 'tr_1', 1000, "
            "'TRANSFER_CREATED', NULL, 'eur', '2020-06-01 10:00:00', 'ch_1')",
            "INSERT INTO stripe_transfer VALUES (2, 1, 'O-1-A_TAX', 'TRANSFER_ORDER', 'tr_1t', "
            "200, 'TRANSFER_CREATED', NULL, 'eur', '2020-06-01 10:00:00', 'ch_1')",
            "INSERT INTO stripe_transfer VALUES (3, 1, 'O-2-A', 'TRANSFER_ORDER', NULL, 0, "
            "'TRANSFER_INVALID_AMOUNT', 'Amount must be positive, input was: 0', 'eur', "
            "'2020-06-02 10:00:00', NULL)",
            "INSERT INTO stripe_payout VALUES (1, 1, 5000, 'eur', '2020-06-03 00:00:00', 77, "
            "'po_1', 'PAYOUT_CREATED', NULL)",
            "INSERT INTO stripe_payout VALUES (2, 1, 900, 'eur', '2020-06-03 00:00:00', 78, "
            "NULL, 'PAYOUT_PENDING', NULL)",
            "INSERT INTO mirakl_refund VALUES (1, 300, 'eur', 'R-1', 'O-1-A', 're_1', 'trr_1', "
            "'REFUND_CREATED', NULL, '2020-06-04 00:00:00')",
        ],
    )

    import_stripe_connector(url, ledger, dry_run=False)
    import_stripe_connector(url, ledger, dry_run=False)  # a rerun claims nothing twice

    orders = find_claims(ledger, ClaimKind.ORDER, ["O-1-A", "O-1-A_TAX", "O-2-A"])
    assert set(orders) == {"O-1-A"}  # the tax transfer binds the same order; O-2-A moved nothing
    claim = orders["O-1-A"]
    assert (claim.provider, claim.origin, claim.shop_id) == ("stripe", "import", 11)
    assert claim.workflow == "stripe-mirakl-connector" and "tr_1" in claim.note
    assert set(find_claims(ledger, ClaimKind.INVOICE, ["77", "78"])) == {"77"}  # 78 is held
    assert find_claims(ledger, ClaimKind.REFUND, ["R-1"])["R-1"].provider == "stripe"

    # A Hyperwallet workflow that wants invoice 77 (a rule moved shop 11) finds it taken.
    held_by = claim_documents(ledger, "hyperwallet", ClaimKind.INVOICE, {"77": 11}, workflow="t")
    refusal = held_by["77"].refusal("hyperwallet")
    assert refusal is not None and "imported from the previous connector" in refusal


def test_amounts_are_read_in_stripes_unit_and_stored_in_iso_minor_units(tmp_path, ledger):
    """The incumbent stored Mirakl's amount x 100 whatever the currency, i.e. what it sent to
    Stripe: the ledger keeps what that moved at Stripe, in ISO 4217 minor units."""
    url = _old_db(
        tmp_path,
        OLDER,
        [
            "INSERT INTO mirakl_stripe_mapping VALUES (1, 11, 'acct_old', 1, 1, NULL)",
            # 5 ISK sent as 500 (Stripe takes ISK with two decimals): 5 ISK, ISO exponent 0.
            "INSERT INTO stripe_transfer VALUES (1, 1, 'O-ISK', 'TRANSFER_ORDER', 'tr_isk', 500, "
            "'TRANSFER_CREATED', NULL, 'isk', '2020-06-01 10:00:00', 'ch_1')",
            # 12 MGA sent as 1200: zero-decimal at Stripe, so 1200 MGA moved (ISO 120000).
            "INSERT INTO stripe_transfer VALUES (2, 1, 'O-MGA', 'TRANSFER_ORDER', 'tr_mga', 1200, "
            "'TRANSFER_CREATED', NULL, 'mga', '2020-06-01 10:00:00', 'ch_2')",
            "INSERT INTO stripe_transfer VALUES (3, 1, 'O-EUR', 'TRANSFER_ORDER', 'tr_eur', 1234, "
            "'TRANSFER_CREATED', NULL, 'eur', '2020-06-01 10:00:00', 'ch_3')",
            "INSERT INTO stripe_payout VALUES (1, 1, 700, 'isk', '2020-06-03 00:00:00', 77, "
            "'po_1', 'PAYOUT_CREATED', NULL)",
            "INSERT INTO mirakl_refund VALUES (1, 300, 'isk', 'R-1', 'O-ISK', 're_1', NULL, "
            "'REFUND_CREATED', NULL, '2020-06-04 00:00:00')",
        ],
    )

    import_stripe_connector(url, ledger, dry_run=False)

    amounts = {
        m: (t.amount, t.currency)
        for m in ("O-ISK", "O-MGA", "O-EUR")
        if (t := ledger.get_transfer(TransferType.PRODUCT_ORDER, m))
    }
    assert amounts == {"O-ISK": (5, "ISK"), "O-MGA": (120000, "MGA"), "O-EUR": (1234, "EUR")}
    assert ledger.get_payouts(["77"])["77"].amount == 7
    assert ledger.get_refunds(["R-1"])["R-1"].amount == 3
