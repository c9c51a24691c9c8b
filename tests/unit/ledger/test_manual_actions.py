"""The payments console's ledger writes (hold, release, resolve, retry record, shop mapping): each
with its status event and audit record in one transaction, each refused (nothing written) when
the row's state does not allow it; and a held row that no workflow save or attempt can touch.
SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, func, inspect, select, text

from mirakl_connector.ledger import (
    AccountMapping,
    HyperwalletPayment,
    HyperwalletPaymentStatus,
    Ledger,
    LedgerConflictError,
    PayoutRecord,
    PayoutStatus,
    TransferRecord,
    TransferStatus,
    TransferType,
    schema,
)
from mirakl_connector.ledger.manual_actions import ActionRefused, ManualActions
from mirakl_connector.ledger.migrations import STEPS
from mirakl_connector.ledger.queries import ConsoleQueries

P, S = TransferType.PRODUCT_ORDER, TransferStatus


def _transfer(ledger: Ledger, mirakl_id: str = "O-1", status: TransferStatus = S.PENDING, **kw):
    [row] = ledger.save_transfers(
        [TransferRecord(P, mirakl_id, status, kw.pop("status_reason", None), 1, "acct_1",
                        amount=1250, currency="EUR", **kw)],
        run_id="run_plan",
    )  # fmt: skip
    return row


def _audit_rows(ledger: Ledger) -> list[dict]:
    with ledger.engine.connect() as conn:
        rows = conn.execute(select(schema.console_actions).order_by(schema.console_actions.c.id))
        return [dict(r) for r in rows.mappings()]


def test_hold_writes_status_event_and_audit_in_one_go(ledger):
    row = _transfer(ledger)
    done = ManualActions(ledger).hold("transfer", row.id, user="alice", why="  fraud   check ")

    saved = ledger.get_transfer(P, "O-1")
    assert (saved.status, saved.status_reason) == (S.ON_HOLD, "held by alice: fraud check")
    last = ledger.events_for("transfer", row.id)[-1]
    assert (last.old_status, last.new_status, last.reason) == (
        "TRANSFER_PENDING", "TRANSFER_ON_HOLD", "held by alice: fraud check",
    )  # fmt: skip
    [audit] = _audit_rows(ledger)
    assert audit["user_name"] == "alice" and audit["action"] == "hold"
    assert (audit["entity"], audit["entity_id"], audit["item"]) == ("transfer", row.id, "O-1")
    assert (audit["why"], audit["result"]) == ("fraud check", "done")
    assert done.id == audit["id"] and "TRANSFER_PENDING → TRANSFER_ON_HOLD" in done.detail


def test_a_held_row_is_never_saved_over_nor_sent_until_released(ledger):
    row = _transfer(ledger, status=S.FAILED, status_reason="insufficient funds")
    actions = ManualActions(ledger)
    actions.hold("transfer", row.id, user="alice", why="seller disputes the order")

    # a run re-decides it PENDING: the ledger keeps the hold, and says so in what it returns
    [saved] = ledger.save_transfers([replace(row, status=S.PENDING, status_reason=None)])
    assert (saved.status, saved.status_reason) == (
        S.ON_HOLD,
        "held by alice: seller disputes the order",
    )
    assert ledger.get_transfer(P, "O-1").status is S.ON_HOLD
    with pytest.raises(LedgerConflictError, match="held by alice.*not sent until released"):
        ledger.mark_transfer_attempt(ledger.get_transfer(P, "O-1"), "key-1")
    assert ledger.get_transfer(P, "O-1").attempted_at is None

    actions.release("transfer", row.id, user="bob", why="dispute settled")
    released = ledger.get_transfer(P, "O-1")
    assert released.status is S.ON_HOLD
    assert (
        released.status_reason == "released by bob: dispute settled; decided again by the next run"
    )
    # no longer held: the next run decides and sends it as any waiting row
    [pending] = ledger.save_transfers([replace(released, status=S.PENDING, status_reason=None)])
    assert pending.status is S.PENDING
    assert ledger.mark_transfer_attempt(pending, "key-1").attempts == 1


def test_hold_and_release_refusals_write_nothing(ledger):
    actions = ManualActions(ledger)
    created = _transfer(ledger, "O-2", S.CREATED, transfer_id="tr_2")
    doubt = ledger.mark_transfer_attempt(_transfer(ledger, "O-3"), "key-3")
    pending = _transfer(ledger, "O-4")
    cases = [
        (lambda: actions.hold("transfer", created.id, user="a", why="x"), 409,
         "TRANSFER_CREATED: nothing is left to send"),
        (lambda: actions.hold("transfer", doubt.id, user="a", why="x"), 409,
         "answer is unknown \\(in doubt\\): resolve it first"),
        (lambda: actions.release("transfer", pending.id, user="a", why="x"), 409,
         "not held by anyone"),
        (lambda: actions.hold("transfer", 999_999, user="a", why="x"), 404, "no transfer 999999"),
        (lambda: actions.hold("invoice", pending.id, user="a", why="x"), 404, "unknown item kind"),
        (lambda: actions.hold("transfer", pending.id, user="a", why="   "), 422, "a reason"),
        (lambda: actions.hold("transfer", pending.id, user="a", why="x" * 501), 422, "at most 500"),
    ]  # fmt: skip
    for call, status, message in cases:
        with pytest.raises(ActionRefused, match=message) as refused:
            call()
        assert refused.value.status == status
    actions.hold("transfer", pending.id, user="a", why="first")
    with pytest.raises(ActionRefused, match="already held by a: first"):
        actions.hold("transfer", pending.id, user="b", why="second")
    assert [a["action"] for a in _audit_rows(ledger)] == ["hold"]  # only the one done
    assert ledger.get_transfer(P, "O-2").status is S.CREATED
    assert ledger.get_transfer(P, "O-3").in_doubt


def test_resend_settles_a_row_in_doubt_and_the_next_key_is_a_new_one(ledger):
    actions = ManualActions(ledger)
    doubt = ledger.mark_transfer_attempt(_transfer(ledger), "mirakl-connector:transfer:A")
    with pytest.raises(ActionRefused, match="changed since it was checked"):
        actions.allow_resend("transfer", doubt.id, attempts=0, lookup="-", user="a", why="x")

    done = actions.allow_resend(
        "transfer", doubt.id, attempts=1, lookup="Stripe searched: nothing", user="alice",
        why="checked the dashboard",
    )  # fmt: skip

    row = ledger.get_transfer(P, "O-1")
    assert row.status is S.PENDING and not row.in_doubt
    assert (row.attempts, row.idempotency_key) == (1, "mirakl-connector:transfer:A")
    assert "resolved by alice: nothing found at Stripe" in row.status_reason
    assert "attempt 2" in row.status_reason and "Stripe searched: nothing" in done.detail
    with pytest.raises(ActionRefused, match="not in doubt"):
        actions.allow_resend("transfer", doubt.id, attempts=1, lookup="-", user="a", why="x")


def test_found_object_is_recorded_once_and_counted_as_moved(ledger):
    actions = ManualActions(ledger)
    other = _transfer(ledger, "O-9", S.CREATED, transfer_id="tr_taken")
    doubt = ledger.mark_transfer_attempt(_transfer(ledger), "key")
    with pytest.raises(
        ActionRefused, match=f"tr_taken is already recorded on transfer row {other.id}"
    ):
        actions.attach_found("transfer", doubt.id, object_id="tr_taken", attempts=1, user="a",
                             why="x")  # fmt: skip

    actions.attach_found("transfer", doubt.id, object_id="tr_found", attempts=1, user="alice",
                         why="seen in the dashboard")  # fmt: skip

    row = ledger.get_transfer(P, "O-1")
    assert (row.status, row.transfer_id) == (S.CREATED, "tr_found")
    assert row.status_reason.startswith("resolved by alice: Stripe object tr_found found")
    today = datetime.now(UTC).date()
    moved = ConsoleQueries(ledger.engine).moved(_range(today))
    assert sum(m.amount for m in moved) == 1250 + 1250  # O-9 and O-1, each once


def _range(day):
    from mirakl_connector.ledger.queries import DateRange

    return DateRange(day, day)


def test_hyperwallet_payment_being_sent_cannot_be_held(ledger):
    [row] = ledger.save_hyperwallet_payments([HyperwalletPayment(
        "9001", "9001", status=HyperwalletPaymentStatus.PENDING, amount=100, currency="EUR",
        destination_token="trm-1",
    )])  # fmt: skip
    ledger.claim_hyperwallet_payment_send("9001", owner="run-a", lease=timedelta(minutes=15))
    with pytest.raises(ActionRefused, match="being sent by run run-a"):
        ManualActions(ledger).hold("hyperwallet_payment", row.id, user="a", why="x")
    ledger.release_hyperwallet_payment_send("9001", owner="run-a")
    ManualActions(ledger).hold("hyperwallet_payment", row.id, user="a", why="x")
    claim = ledger.claim_hyperwallet_payment_send("9001", owner="run-b", lease=timedelta(minutes=1))
    assert claim == "held by a: x: not sent until released on the payments console"


def test_retry_record_is_an_event_of_the_triggered_run(ledger):
    row = _transfer(ledger, status=S.FAILED, status_reason="Transfers disabled.")
    ManualActions(ledger).record_retry(
        "transfer", row.id, dag_id="stripe_payment_split", run_id="manual__1", user="alice",
        why="account fixed", paused=True,
    )  # fmt: skip
    saved = ledger.get_transfer(P, "O-1")
    assert (saved.status, saved.status_reason) == (S.FAILED, "Transfers disabled.")  # unchanged
    last = ledger.events_for("transfer", row.id)[-1]
    assert (last.old_status, last.new_status, last.run_id) == (
        "TRANSFER_FAILED", "TRANSFER_FAILED", "manual__1",
    )  # fmt: skip
    assert last.reason == (
        "retry requested by alice: account fixed; run manual__1 of stripe_payment_split"
    )
    [audit] = _audit_rows(ledger)
    assert "is paused" in audit["detail"]


def test_released_since_lists_the_rows_released_after_an_instant(ledger):
    actions = ManualActions(ledger)
    a, b = _transfer(ledger, "O-1"), _transfer(ledger, "O-2")
    before = datetime.now(UTC) - timedelta(seconds=1)
    for row in (a, b):
        actions.hold("transfer", row.id, user="u", why="x")
    actions.release("transfer", b.id, user="u", why="y")
    assert actions.released_since("transfer", before) == [b.id]
    assert actions.released_since("payout", before) == []
    assert actions.released_since("transfer", datetime.now(UTC) + timedelta(minutes=1)) == []


def test_map_shop_inserts_once_and_never_overwrites(ledger):
    actions = ManualActions(ledger)
    ledger.upsert_account_mapping(AccountMapping(7, "acct_seven"))
    mapping = AccountMapping(8, "acct_eight", payouts_enabled=True, kyc_status="APPROVED")
    done = actions.map_shop(mapping, user="alice", why="onboarded by phone")
    assert ledger.account_mappings_by_shop([8])[8].stripe_account_id == "acct_eight"
    assert (done.entity, done.entity_id, done.result) == ("account_mapping", 8, "done")
    with pytest.raises(ActionRefused, match="shop 8 is already mapped to acct_eight"):
        actions.map_shop(AccountMapping(8, "acct_other"), user="a", why="x")
    with pytest.raises(ActionRefused, match="acct_seven is already mapped to shop 7"):
        actions.map_shop(AccountMapping(9, "acct_seven"), user="a", why="x")
    assert ledger.account_mappings_by_shop([7, 8, 9]).keys() == {7, 8}


def test_refused_actions_are_audited_with_the_reason(ledger):
    row = _transfer(ledger)
    ManualActions(ledger).refused("hold", "transfer", row.id, user="eve", why="because",
                                  reason="it is TRANSFER_CREATED")  # fmt: skip
    [audit] = _audit_rows(ledger)
    assert (audit["result"], audit["item"], audit["detail"]) == (
        "refused", "O-1", "it is TRANSFER_CREATED",
    )  # fmt: skip


def test_payout_with_payout_id_cannot_be_held(ledger):
    [payout] = ledger.save_payouts([PayoutRecord("INV-1", PayoutStatus.FAILED, "failed at bank",
                                                 payout_id="po_1")])  # fmt: skip
    with pytest.raises(ActionRefused, match="already has Stripe object po_1"):
        ManualActions(ledger).hold("payout", payout.id, user="a", why="x")


STEP = next(s for s in STEPS if s.version == 11)


def test_step_11_adds_the_audit_table_to_a_database_of_the_previous_version(ledger_url):
    Ledger(ledger_url).dispose()
    engine = create_engine(ledger_url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE console_actions"))
        conn.execute(text("UPDATE schema_version SET version = :v"), {"v": STEP.version - 1})
    assert "console_actions" not in inspect(engine).get_table_names()

    reopened = Ledger(ledger_url)  # migrates on open
    try:
        assert "console_actions" in inspect(engine).get_table_names()
        row = _transfer(reopened)
        ManualActions(reopened).hold("transfer", row.id, user="a", why="x")
        with engine.connect() as conn:
            assert (
                conn.execute(select(func.count()).select_from(schema.console_actions)).scalar() == 1
            )
    finally:
        reopened.dispose()
        engine.dispose()
