"""The ledger side of reconciliation: schema step, rows of a run or a day, stored results."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, inspect, select, text

from mirakl_connector.ledger import Ledger, TransferRecord, TransferType
from mirakl_connector.ledger import reconciliation as store
from mirakl_connector.ledger.migrations import STEPS
from mirakl_connector.ledger.records import (
    PayoutRecord,
    PayoutStatus,
    RefundRecord,
    RefundStatus,
    TransferStatus,
)
from mirakl_connector.ledger.schema import reconciliation_items, reconciliations

STEP = next(s for s in STEPS if "reconciliation" in s.description)
TABLES = ("reconciliations", "reconciliation_items")
SPLIT = (store.RowSource("transfer", (TransferType.PRODUCT_ORDER,)),)


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_step_adds_the_tables_to_a_database_of_the_previous_version(ledger_url):
    Ledger(ledger_url).dispose()
    engine = create_engine(ledger_url)
    with engine.begin() as conn:
        for table in TABLES[::-1]:
            conn.execute(text(f"DROP TABLE {table}"))
        conn.execute(text("UPDATE schema_version SET version = :v"), {"v": STEP.version - 1})
    engine.dispose()
    assert not set(TABLES) & _tables(ledger_url)

    reopened = Ledger(ledger_url)  # migrates on open
    try:
        assert set(TABLES) <= _tables(ledger_url)
        assert reopened.schema_version >= STEP.version
    finally:
        reopened.dispose()


def _transfer(mirakl_id: str, **fields) -> TransferRecord:
    return TransferRecord(type=TransferType.PRODUCT_ORDER, mirakl_id=mirakl_id, currency="EUR",
                          amount=1000, **fields)  # fmt: skip


def test_rows_of_a_run_are_those_whose_status_it_changed(ledger_url):
    with Ledger(ledger_url) as ledger:
        ledger.save_transfers([_transfer("A-1", status=TransferStatus.ON_HOLD)], run_id="run-1")
        ledger.save_transfers(
            [_transfer("A-1", status=TransferStatus.CREATED, transfer_id="tr_1")], run_id="run-2"
        )
        ledger.save_transfers([_transfer("B-1", status=TransferStatus.PENDING)], run_id="run-2")
        ledger.save_transfers(
            [TransferRecord(TransferType.REFUND, "R-1", status=TransferStatus.PENDING)],
            run_id="run-2",
        )  # another flow's type: not the split's
        ledger.save_refunds([RefundRecord("R-9", status=RefundStatus.ON_HOLD)], run_id="run-2")

        rows = store.rows_of_run(ledger, "run-2", SPLIT)
        assert sorted(r.mirakl_id for r in rows) == ["A-1", "B-1"]
        assert store.rows_of_run(ledger, "run-3", SPLIT) == []
        refunds = store.rows_of_run(ledger, "run-2", (store.RowSource("refund"),))
        assert [r.mirakl_refund_id for r in refunds] == ["R-9"]


def test_rows_of_a_day_moved_or_sent_that_day(ledger_url):
    with Ledger(ledger_url) as ledger:
        ledger.save_transfers(
            [_transfer("A-1", status=TransferStatus.CREATED, transfer_id="tr_1")], run_id="r"
        )
        ledger.save_transfers([_transfer("B-1", status=TransferStatus.PENDING)], run_id="r")
        row = ledger.get_transfer(TransferType.PRODUCT_ORDER, "B-1")
        ledger.mark_transfer_attempt(row, "key-b", run_id="r")  # sent, answer lost: in doubt
        ledger.save_transfers([_transfer("C-1", status=TransferStatus.ON_HOLD)], run_id="r")
        today = datetime.now(UTC).date()

        rows = store.rows_of_day(ledger, today, SPLIT)
        assert sorted(r.mirakl_id for r in rows) == ["A-1", "B-1"]
        assert store.rows_of_day(ledger, today - timedelta(days=1), SPLIT) == []


def test_known_provider_ids_across_the_money_tables(ledger_url):
    with Ledger(ledger_url) as ledger:
        ledger.save_transfers(
            [_transfer("A-1", status=TransferStatus.CREATED, transfer_id="tr_1")], run_id="r"
        )
        ledger.save_payouts(
            [PayoutRecord("9001", status=PayoutStatus.CREATED, payout_id="po_1", amount=5,
                          currency="EUR")], run_id="r",
        )  # fmt: skip
        assert store.known_provider_ids(ledger, ["tr_1", "po_1", "tr_2", "re_3"]) == {
            "tr_1",
            "po_1",
        }
        assert store.known_provider_ids(ledger, []) == set()


def _header(**fields) -> store.ReconciliationHeader:
    values = {
        "flow": "payment_split", "scope": store.SCOPE_RUN, "scope_key": "run-1",
        "run_id": "run-1", "day": "2026-11-21", "reconciled_at": datetime.now(UTC),
        "window_start": None, "window_end": None, "matched": 1, "mismatched": 1,
        "provider_calls": 1, "mirakl_calls": 1,
    }  # fmt: skip
    return store.ReconciliationHeader(**{**values, **fields})


def _item(kind: str, reason: str = "why") -> dict:
    return {"kind": kind, "item": "TRANSFER_PRODUCT_ORDER A-1", "provider": "stripe",
            "reason": reason, "ledger_amount": 1000, "currency": "EUR"}  # fmt: skip


def test_a_reconciliation_replaces_the_previous_result_of_its_run(ledger_url):
    with Ledger(ledger_url) as ledger:
        store.save_reconciliation(ledger, _header(), [_item("MATCHED"), _item("AMOUNT_MISMATCH")])
        other = store.save_reconciliation(
            ledger, _header(scope_key="run-2", run_id="run-2"), [_item("MATCHED")]
        )
        again = store.save_reconciliation(
            ledger, _header(matched=1, mismatched=0), [_item("MATCHED", "x" * 5000)]
        )
        with ledger.engine.connect() as conn:
            heads = conn.execute(select(reconciliations.c.id, reconciliations.c.scope_key)).all()
            items = conn.execute(
                select(reconciliation_items.c.reconciliation_id, reconciliation_items.c.kind,
                       reconciliation_items.c.reason, reconciliation_items.c.day)
            ).all()  # fmt: skip
        assert sorted(key for _, key in heads) == ["run-1", "run-2"]
        assert sorted((rid, kind) for rid, kind, _, _ in items) == sorted(
            [(other, "MATCHED"), (again, "MATCHED")]
        )
        long_reason = next(reason for rid, _, reason, _ in items if rid == again)
        assert len(long_reason) == 1024 and long_reason.endswith("…")  # cut, not refused
        assert {day for *_, day in items} == {"2026-11-21"}
