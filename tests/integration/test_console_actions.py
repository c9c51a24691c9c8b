"""The console's actions against the sandbox, with the payment split that runs after them.

* a held transfer is skipped by every run (scheduled or naming it), and paid once after release;
* an item in doubt resolved *found*: the id is checked at Stripe (a wrong or another item's
  transfer is refused), recorded, and no run sends it again: one transfer in the end;
* resolved *not found*: refused while Stripe has a transfer made for it; otherwise the next run
  sends it once, with a new idempotency key: one transfer in the end;
* a shop mapped by hand, with the checks of the Stripe connector's ``POST /api/mappings`` and
  those it lacked (the shop in Mirakl).

SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest

from mirakl_connector.console.actions import ActionServices, Actor, ConsoleActions
from mirakl_connector.ledger import AccountMapping, TransferStatus, TransferType
from mirakl_connector.ledger.manual_actions import ActionRefused
from mirakl_connector.stripe.payment_split import PaymentSplit, PaymentSplitSettings

from .test_payment_split import TEST_GO_LIVE, order, scenario

P = TransferType.PRODUCT_ORDER
KEY_A1 = "mirakl-connector:transfer:TRANSFER_PRODUCT_ORDER:A-1"
ALICE = Actor("alice")


@pytest.fixture
def ledger(workflow_ledger):
    for shop, account in ((1, "acct_s1"), (2, "acct_s2")):
        workflow_ledger.upsert_account_mapping(
            AccountMapping(shop, account, True, True, kyc_status="APPROVED")
        )
    return workflow_ledger


@pytest.fixture
def actions(ledger, stripe_gateway, mirakl):
    def no_trigger(*args, **kwargs):
        raise AssertionError("no run is triggered here")

    return ConsoleActions(
        ActionServices(
            ledger=lambda: ledger,
            trigger=no_trigger,
            stripe=lambda: stripe_gateway,
            mirakl=lambda: mirakl,
        )
    )


@pytest.fixture
def make_split(mirakl, stripe_gateway, ledger):
    def make() -> PaymentSplit:
        return PaymentSplit(
            mirakl=mirakl,
            stripe=stripe_gateway,
            ledger=ledger,
            go_live=TEST_GO_LIVE,
            settings=PaymentSplitSettings(),
            run_id="run",
        )

    return make


def run(split: PaymentSplit, **kwargs):
    return split.plan(**kwargs), split.execute(order_ids=kwargs.get("order_ids"))


def transfers_of(sandbox, mirakl_id: str) -> list[dict]:
    return [t for t in sandbox.transfers() if t["metadata"]["miraklId"] == mirakl_id]


def test_held_transfer_is_skipped_by_every_run_and_paid_once_after_release(
    sandbox, make_split, ledger, actions
):
    sandbox.reset(scenario([order("A-1"), order("B-1", shop=2)]))
    make_split().plan()  # the first scheduled run: full sweep, checkpoints set
    row = ledger.get_transfer(P, "A-1")
    assert row.status is TransferStatus.PENDING

    actions.hold("transfer", row.id, actor=ALICE, why="customer disputes the order")

    executed = make_split().execute()
    assert executed.counts == {"TRANSFER_CREATED": 1}  # B-1 only
    named, named_exec = run(make_split(), order_ids=["A-1"])  # a manual run naming it
    assert named.counts == {"TRANSFER_ON_HOLD": 1}
    assert named.to_dict()["reasons"] == [
        {"status": "TRANSFER_ON_HOLD", "reason": "held by alice: customer disputes the order",
         "count": 1}
    ]  # fmt: skip
    assert named_exec.total == 0
    scheduled, scheduled_exec = run(make_split())  # a scheduled run (changes only)
    assert scheduled_exec.total == 0
    assert transfers_of(sandbox, "A-1") == []
    assert ledger.get_transfer(P, "A-1").status_reason.startswith("held by alice")

    actions.release("transfer", row.id, actor=Actor("bob"), why="dispute closed")
    # The next scheduled run re-reads only what changed since its last look: the release is
    # such a change (the order itself has not changed in Mirakl).
    planned, executed = run(make_split())

    assert planned.counts == {"TRANSFER_PENDING": 1}
    assert executed.counts == {"TRANSFER_CREATED": 1}
    [paid] = transfers_of(sandbox, "A-1")
    assert paid["amount"] == 9000 and paid["destination"] == "acct_s1"
    again = run(make_split())
    assert again[1].total == 0 and len(transfers_of(sandbox, "A-1")) == 1
    reasons = [e.reason for e in ledger.events_for("transfer", row.id)]
    assert "held by alice: customer disputes the order" in reasons
    assert "released by bob: dispute closed; decided again by the next run" in reasons


def _in_doubt_with_transfer_made(sandbox, make_split, ledger):
    """Stripe made A-1's transfer; its answer was lost and every retry failed: in doubt."""
    sandbox.reset(scenario([order("A-1"), order("B-1", shop=2)]))
    make_split().plan()
    sandbox.set_faults({"rules": [
        {"target": "stripe", "method": "POST", "path": "/v1/transfers", "times": 1,
         "action": "lost_response"},
        {"target": "stripe", "method": "POST", "path": "/v1/transfers", "times": 10,
         "action": "error"},
    ]})  # fmt: skip
    assert make_split().execute(order_ids=["A-1"]).counts == {"IN_DOUBT": 1}
    sandbox.clear_faults()
    row = ledger.get_transfer(P, "A-1")
    assert row.in_doubt and len(transfers_of(sandbox, "A-1")) == 1
    return row


def test_resolve_found_checks_the_transfer_at_stripe_and_nothing_is_sent_again(
    sandbox, make_split, ledger, actions
):
    row = _in_doubt_with_transfer_made(sandbox, make_split, ledger)
    made = transfers_of(sandbox, "A-1")[0]["id"]
    assert make_split().execute(order_ids=["B-1"]).counts == {"TRANSFER_CREATED": 1}
    other = transfers_of(sandbox, "B-1")[0]["id"]  # another seller's transfer

    refusals = {
        "tr_nope": "Stripe has no tr_nope",
        other: f"{other} does not match this item: its destination is acct_s2, not acct_s1",
    }
    for object_id, message in refusals.items():
        with pytest.raises(ActionRefused, match=message):
            actions.resolve("transfer", row.id, actor=ALICE, why="checked", found=True,
                            object_id=object_id)  # fmt: skip
    with pytest.raises(ActionRefused, match="changed since the page was shown"):
        actions.resolve("transfer", row.id, actor=ALICE, why="x", found=True, object_id=made,
                        attempts=row.attempts - 1)  # fmt: skip
    with pytest.raises(ActionRefused, match=f"Stripe has {made}, made for this item"):
        actions.resolve("transfer", row.id, actor=ALICE, why="not in the dashboard", found=False)

    actions.resolve("transfer", row.id, actor=ALICE, why="found in the dashboard", found=True,
                    object_id=made, attempts=row.attempts)  # fmt: skip

    saved = ledger.get_transfer(P, "A-1")
    assert (saved.status, saved.transfer_id) == (TransferStatus.CREATED, made)
    planned, executed = run(make_split())
    assert executed.total == 0
    assert [t["id"] for t in transfers_of(sandbox, "A-1")] == [made]  # exactly one


def test_resolve_not_found_lets_the_next_run_send_it_once_with_a_new_key(
    sandbox, make_split, ledger, actions
):
    sandbox.reset(scenario([order("A-1")]))
    make_split().plan()
    # Every try failed before Stripe did anything: nothing made, the row is in doubt.
    sandbox.set_faults({"rules": [{"target": "stripe", "method": "POST", "path": "/v1/transfers",
                                   "times": 10, "action": "error"}]})  # fmt: skip
    assert make_split().execute().counts == {"IN_DOUBT": 1}
    sandbox.clear_faults()
    row = ledger.get_transfer(P, "A-1")
    assert row.in_doubt and row.idempotency_key == KEY_A1 and sandbox.transfers() == []
    sandbox.clear_stripe_requests()

    done = actions.resolve("transfer", row.id, actor=ALICE, why="no trace at Stripe",
                           found=False)  # fmt: skip

    assert "Stripe searched by metadata since" in done.detail
    settled = ledger.get_transfer(P, "A-1")
    assert not settled.in_doubt and settled.status is TransferStatus.PENDING
    listed = sandbox.stripe_requests(path="/v1/transfers", method="GET")
    assert listed, "the console looked the transfer up at Stripe before accepting"
    planned, executed = run(make_split())
    assert executed.counts == {"TRANSFER_CREATED": 1}
    [made] = transfers_of(sandbox, "A-1")
    posts = sandbox.stripe_requests(path="/v1/transfers", method="POST")
    assert {p["idempotency_key"] for p in posts} == {f"{KEY_A1}:retry1"}
    assert run(make_split())[1].total == 0 and len(transfers_of(sandbox, "A-1")) == 1
    assert ledger.get_transfer(P, "A-1").transfer_id == made["id"]


def test_map_a_shop_by_hand(sandbox, ledger, actions):
    sandbox.reset(scenario([]))  # Mirakl shops 1, 2, 3; Stripe acct_s1, acct_s2, acct_tax
    done = actions.map_shop("3", "acct_tax", actor=ALICE, why="onboarded outside the connector")
    mapping = ledger.account_mappings_by_shop([3])[3]
    assert (mapping.stripe_account_id, mapping.payouts_enabled, mapping.charges_enabled) == (
        "acct_tax", True, True,
    )  # fmt: skip
    assert done.detail.startswith("shop 3 mapped to acct_tax")
    cases = {
        ("3", "acct_s2"): "shop 3 is already mapped to acct_tax",
        ("99", "acct_nope"): "Mirakl has no shop 99",
        ("2", "acct_nope"): "shop 2 is already mapped to acct_s2",
    }
    for (shop, account), message in cases.items():
        with pytest.raises(ActionRefused, match=message):
            actions.map_shop(shop, account, actor=ALICE, why="x")
    sandbox.put_shops([*sandbox.shops(), {"shop_id": 4, "shop_name": "Shop 4"}])
    with pytest.raises(ActionRefused, match="Stripe has no acct_nope"):
        actions.map_shop("4", "acct_nope", actor=ALICE, why="x")
    with pytest.raises(ActionRefused, match="acct_s1 is already mapped to shop 1"):
        actions.map_shop("4", "acct_s1", actor=ALICE, why="x")
    with pytest.raises(ActionRefused, match="platform's own account"):
        actions.map_shop("4", "acct_platform", actor=ALICE, why="x")
    assert 4 not in ledger.account_mappings_by_shop([4])
