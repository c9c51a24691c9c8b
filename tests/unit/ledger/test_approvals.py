"""The approval gate's ledger side (table ``approvals``, schema step 15), on SQLite and PostgreSQL:
decisions checked against the held row and recorded with an audit event, the reads the
workflows and the console make."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, inspect, select, text

from mirakl_connector.ledger import (
    HyperwalletPayment,
    HyperwalletPaymentStatus,
    Ledger,
    PayoutRecord,
    PayoutStatus,
    TransferRecord,
    TransferStatus,
    TransferType,
    schema,
)
from mirakl_connector.ledger.migrations import STEPS
from mirakl_connector.operations.approval_gate import ApprovalSettings, Decision, transfer_item
from mirakl_connector.operations.approvals import (
    ApprovalRefused,
    awaiting,
    decisions_of,
    gate_for,
    items_decided_since,
    latest_decisions,
    paid_destinations,
    record_decision,
    released_invoices,
)

HELD = "awaiting approval: 200.00 EUR is above approval.transfer_above 100.00 EUR"
RULES = ApprovalSettings.from_mapping({"transfer_above": {"EUR": "100.00"}})


def _held_transfer(ledger: Ledger, mirakl_id: str = "ORD-1-A", **changes) -> TransferRecord:
    values = {
        "type": TransferType.PRODUCT_ORDER, "mirakl_id": mirakl_id,
        "status": TransferStatus.ON_HOLD, "status_reason": HELD, "amount": 20_000,
        "currency": "EUR", "destination_account": "acct_seller", "mirakl_shop_id": 1,
    }  # fmt: skip
    values.update(changes)
    (saved,) = ledger.save_transfers([TransferRecord(**values)], run_id="run_plan")
    return saved


SEEN = {"amount": "20000", "currency": "EUR", "destination": "acct_seller"}


def _decide(ledger, row_id, decision=Decision.APPROVED, seen=SEEN, why="seller confirmed", **kw):
    return record_decision(
        ledger, entity="transfer", row_id=row_id, decision=decision, seen=seen,
        by="alice", why=why, **kw,
    )  # fmt: skip


def _audit(ledger: Ledger) -> list[dict]:
    table = schema.console_actions
    with ledger.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(table).order_by(table.c.id)).mappings()]


def test_a_decision_is_recorded_with_an_audit_event_in_the_items_history(ledger):
    row = _held_transfer(ledger)

    recorded = _decide(ledger, row.id)

    assert (recorded.decision, recorded.decided_by, recorded.why) == (
        Decision.APPROVED,
        "alice",
        "seller confirmed",
    )
    assert (recorded.item, recorded.amount, recorded.destination) == (
        "TRANSFER_PRODUCT_ORDER:ORD-1-A",
        20_000,
        "acct_seller",
    )
    history = ledger.events_for("transfer", row.id)
    assert [(e.old_status, e.new_status) for e in history] == [
        (None, "TRANSFER_ON_HOLD"),
        ("TRANSFER_ON_HOLD", "TRANSFER_ON_HOLD"),
    ]
    assert history[-1].reason == (
        "approved by alice: seller confirmed (200.00 EUR to acct_seller); sent by the next run"
    )
    assert decisions_of(ledger.engine, "transfer", recorded.item) == [recorded]
    (audit,) = _audit(ledger)  # the console's audit, as for its other actions
    assert (audit["action"], audit["result"], audit["entity"], audit["entity_id"]) == (
        "approve",
        "done",
        "transfer",
        row.id,
    )
    assert (audit["user_name"], audit["why"], audit["item"]) == (
        "alice",
        "seller confirmed",
        "TRANSFER_PRODUCT_ORDER:ORD-1-A",
    )
    assert audit["detail"] == "200.00 EUR to acct_seller; sent by the next run"
    # the row itself is untouched: the next run decides it
    assert ledger.get_transfer(TransferType.PRODUCT_ORDER, "ORD-1-A").status is (
        TransferStatus.ON_HOLD
    )


@pytest.mark.parametrize(
    ("seen", "why", "status", "message"),
    [
        (
            {**SEEN, "amount": "19999"},
            "ok",
            409,
            "changed since it was shown: it is now 200.00 EUR",
        ),
        ({**SEEN, "destination": "acct_evil"}, "ok", 409, "changed since it was shown"),
        ({**SEEN, "currency": "USD"}, "ok", 409, "changed since it was shown"),
        ({"currency": "EUR", "destination": "acct_seller"}, "ok", 422, "are required"),
        ({**SEEN, "amount": "200.00"}, "ok", 422, "minor units"),
        (SEEN, "   ", 422, "a reason (why) is required"),
        (SEEN, "x" * 501, 422, "at most 500"),
    ],
)
def test_a_decision_on_something_else_than_what_was_shown_is_refused(
    ledger, seen, why, status, message
):
    row = _held_transfer(ledger)
    with pytest.raises(ApprovalRefused) as refused:
        _decide(ledger, row.id, seen=seen, why=why)
    assert refused.value.status == status and message in refused.value.message
    assert decisions_of(ledger.engine, "transfer", "TRANSFER_PRODUCT_ORDER:ORD-1-A") == []
    assert len(ledger.events_for("transfer", row.id)) == 1  # no history event either
    # a refusal of the item's state is audited as the console's other actions are; bad input
    # (no reason, no values) is refused before anything is asked of the ledger
    audit = _audit(ledger)
    if status == 409:
        assert [(a["action"], a["result"], a["user_name"]) for a in audit] == [
            ("approve", "refused", "alice")
        ]
        assert message in audit[0]["detail"]
    else:
        assert audit == []


def test_only_rows_waiting_for_a_decision_can_be_decided(ledger):
    kyc = _held_transfer(ledger, "ORD-2-A", status_reason="Stripe account acct_seller is not …")
    sent = _held_transfer(ledger, "ORD-3-A", status=TransferStatus.CREATED, transfer_id="tr_1",
                          status_reason=None)  # fmt: skip
    for row in (kyc, sent):
        with pytest.raises(ApprovalRefused) as refused:
            _decide(ledger, row.id)
        assert refused.value.status == 409 and "is not waiting for an approval" in str(
            refused.value
        )
    with pytest.raises(ApprovalRefused) as missing:
        _decide(ledger, 999_999)
    assert missing.value.status == 404
    with pytest.raises(ApprovalRefused) as unknown:
        record_decision(ledger, entity="refund", row_id=1, decision=Decision.APPROVED,
                        seen=SEEN, by="alice", why="x")  # fmt: skip
    assert unknown.value.status == 404


def test_a_rejected_row_can_still_be_approved_and_the_latest_decision_counts(ledger):
    row = _held_transfer(ledger)
    _decide(ledger, row.id, Decision.REJECTED, why="looks like a duplicate")
    _decide(ledger, row.id, Decision.APPROVED, why="not a duplicate after all")

    latest = latest_decisions(ledger.engine, "transfer", ["TRANSFER_PRODUCT_ORDER:ORD-1-A", "x"])
    assert list(latest) == [("transfer", "TRANSFER_PRODUCT_ORDER:ORD-1-A")]
    assert latest[("transfer", "TRANSFER_PRODUCT_ORDER:ORD-1-A")].why == "not a duplicate after all"
    gate = gate_for(ledger.engine, RULES, "transfer", ["TRANSFER_PRODUCT_ORDER:ORD-1-A"])
    assert gate.hold(transfer_item(row)) is None


def test_gate_reads_nothing_when_no_rule_is_on(ledger):
    assert gate_for(ledger.engine, ApprovalSettings(), "transfer", ["a"]) is None


def test_items_decided_since(ledger):
    row = _held_transfer(ledger)
    before = datetime.now(UTC) - timedelta(seconds=1)
    _decide(ledger, row.id)
    assert items_decided_since(ledger.engine, "transfer", before) == [
        "TRANSFER_PRODUCT_ORDER:ORD-1-A"
    ]
    assert items_decided_since(ledger.engine, "transfer", datetime.now(UTC) + timedelta(1)) == []
    assert items_decided_since(ledger.engine, "payout", before) == []


def _hw(payment_id: str, **values) -> HyperwalletPayment:
    return HyperwalletPayment(payment_id, payment_id, **values)


def test_paid_destinations_count_only_payouts_that_went_out(ledger):
    ledger.save_payouts([
        PayoutRecord("1", PayoutStatus.CREATED, payout_id="po_1", stripe_account_id="acct_paid"),
        PayoutRecord("2", PayoutStatus.FAILED, payout_id="po_2", stripe_account_id="acct_bounced"),
        PayoutRecord("3", PayoutStatus.ON_HOLD, stripe_account_id="acct_new"),
    ])  # fmt: skip
    assert paid_destinations(
        ledger.engine, "payout", ["acct_paid", "acct_bounced", "acct_new", "acct_other"]
    ) == {"acct_paid"}
    S = HyperwalletPaymentStatus
    ledger.save_hyperwallet_payments([
        _hw("10", status=S.COMPLETED, payment_token="pmt-1", destination_token="trm-a"),
        _hw("11", status=S.CREATED, payment_token="pmt-2", destination_token="trm-b"),
        _hw("12", status=S.FAILED, payment_token="pmt-3", destination_token="trm-c"),
        _hw("13", status=S.PENDING, destination_token="trm-d"),
    ])  # fmt: skip
    tokens = ["trm-a", "trm-b", "trm-c", "trm-d"]
    assert paid_destinations(ledger.engine, "hyperwallet_payment", tokens) == {"trm-a", "trm-b"}


def test_released_invoices_are_the_approved_ones_or_those_no_longer_held(ledger):
    S = HyperwalletPaymentStatus
    held = "awaiting approval: 4545.20 EUR is above approval.payout_above 1000.00 EUR"
    seller = {"amount": 454_520, "currency": "EUR", "destination_token": "trm-seller"}
    ledger.save_hyperwallet_payments([
        _hw("1", status=S.ON_HOLD, status_reason=held, **seller),
        _hw("2", status=S.ON_HOLD, status_reason=held, **seller),
        _hw("3", status=S.ON_HOLD, status_reason="shop 2001 has no hw-bankaccount-token yet",
            amount=454_520, currency="EUR"),
    ])  # fmt: skip
    rules = ApprovalSettings.from_mapping({"payout_above": {"EUR": "1000.00"}})
    assert released_invoices(ledger.engine, rules) == []
    row = ledger.get_hyperwallet_payment("2")
    record_decision(ledger, entity="hyperwallet_payment", row_id=row.id,
                    decision=Decision.APPROVED, by="bob", why="known seller",
                    seen={"amount": 454_520, "currency": "EUR",
                          "destination": "trm-seller"})  # fmt: skip
    assert released_invoices(ledger.engine, rules) == ["2"]
    # the rule switched off: every payment it held may go (the other hold is not the gate's)
    assert released_invoices(ledger.engine, ApprovalSettings()) == ["1", "2"]


def test_awaiting_lists_the_held_rows_of_every_table_oldest_first(ledger):
    first = _held_transfer(ledger)
    ledger.save_payouts([PayoutRecord("9001", PayoutStatus.ON_HOLD,
                                      "awaiting approval: first payout to acct_new",
                                      amount=500, currency="EUR", stripe_account_id="acct_new",
                                      mirakl_shop_id=7)])  # fmt: skip
    _held_transfer(ledger, "ORD-9-A", status_reason="Order is not ready yet, status is STAGING")
    _decide(ledger, first.id, Decision.REJECTED, why="wait")

    items, total = awaiting(ledger.engine)

    assert total == 2
    assert [(i.entity, i.item.item) for i in items] == [
        ("transfer", "TRANSFER_PRODUCT_ORDER:ORD-1-A"),
        ("payout", "9001"),
    ]
    assert items[0].latest.decision is Decision.REJECTED and items[1].latest is None
    assert (items[1].shop_id, items[1].item.destination) == (7, "acct_new")
    assert awaiting(ledger.engine, limit=1)[1] == 2


def test_step_creates_the_table_on_a_database_of_the_previous_version(ledger_url):
    step = next(s for s in STEPS if "approval" in s.description)
    Ledger(ledger_url).dispose()
    engine = create_engine(ledger_url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE approvals"))
        conn.execute(text("DROP INDEX ix_hyperwallet_payments_destination_token"))
        conn.execute(text("UPDATE schema_version SET version = :v"), {"v": step.version - 1})
    assert "approvals" not in inspect(engine).get_table_names()
    engine.dispose()

    reopened = Ledger(ledger_url)
    try:
        inspector = inspect(reopened.engine)
        assert "approvals" in inspector.get_table_names()
        indexes = {i["name"] for i in inspector.get_indexes("hyperwallet_payments")}
        assert "ix_hyperwallet_payments_destination_token" in indexes
        assert reopened.schema_version == step.version
    finally:
        reopened.dispose()
