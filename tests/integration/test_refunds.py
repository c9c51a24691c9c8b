"""Payment refunds and seller reversals against the sandbox, on SQLite and PostgreSQL.

Each test checks the money that moved (Stripe refunds and reversals), what Mirakl received
(PA02 / SPA02 bodies) and what the ledger says.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from datetime import UTC as _UTC
from datetime import datetime as _dt

import pytest

from mirakl_connector.ledger.records import (
    AccountMapping,
    PaymentMapping,
    RefundStatus,
    TransferRecord,
    TransferStatus,
    TransferType,
)
from mirakl_connector.operations.first_run import GoLive
from mirakl_connector.stripe.refunds import PaymentRefund, PaymentRefundSettings

#: Tests move money from any date: an explicit go-live instant far in the past.
TEST_GO_LIVE = GoLive(_dt(2000, 1, 1, tzinfo=_UTC))

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def iso(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def product_order(order_id="A-1", *, refunds=None, line_tax="2.00"):
    return {
        "order_id": order_id, "commercial_id": order_id.rsplit("-", 1)[0],
        "created_date": iso(3), "last_updated_date": iso(1), "customer_debited_date": iso(2),
        "currency_iso_code": "EUR", "order_state": "SHIPPED", "order_tax_mode": "TAX_EXCLUDED",
        "shop_id": 1, "total_commission": "10.00", "total_price": "100.00",
        "customer": {"customer_id": "cust"},
        "order_lines": [{
            "order_line_id": f"{order_id}-L1", "order_line_state": "SHIPPED",
            "total_price": "100.00", "shipping_taxes": [],
            "taxes": [{"amount": "8.00", "code": "VAT"}],
            "refunds": refunds if refunds is not None else [
                {"id": "R1", "amount": "30.00", "commission_total_amount": "3.00",
                 "shipping_taxes": [], "taxes": [{"amount": line_tax, "code": "VAT"}]}],
        }],
    }  # fmt: skip


def service_order(order_id="S-1"):
    return {
        "id": order_id, "commercial_order_id": "S", "date_created": iso(3),
        "currency_code": "EUR", "state": "ORDER_ACCEPTED", "order_tax_mode": "TAX_INCLUDED",
        "shop": {"id": 1}, "customer": {"id": "cust"},
        "commission": {"amount_including_taxes": "5.00"},
        "price": {"amount": "50.00", "options": [], "taxes": []},
        "refunds": [{"id": "SR1", "amount": "20.00",
                     "commission": {"amount_including_taxes": "2.00"}}],
    }  # fmt: skip


def load(sandbox, orders=(), service_orders=()):
    sandbox.reset({
        "mirakl": {"api_key": "sandbox-mirakl-key", "orders": list(orders),
                   "service_orders": list(service_orders)},
        "stripe": {
            "api_key": "sk_test_sandbox", "platform_account": {"id": "acct_platform"},
            "accounts": [{"id": "acct_s1", "charges_enabled": True, "payouts_enabled": True},
                         {"id": "acct_tax", "charges_enabled": True, "payouts_enabled": True}],
            "charges": [{"id": "ch_paid", "amount": 20000, "currency": "eur", "status": "succeeded",
                         "captured": True, "refunded": False}],
            "platform_balance": {"eur": 1_000_000},
        },
    })  # fmt: skip


@pytest.fixture
def ledger(workflow_ledger):
    workflow_ledger.upsert_account_mapping(
        AccountMapping(1, "acct_s1", True, True, kyc_status="APPROVED")
    )
    return workflow_ledger


@pytest.fixture
def make_job(mirakl, stripe_gateway, ledger):
    def make(tax_split=False, **settings):
        return PaymentRefund(
            mirakl=mirakl,
            stripe=stripe_gateway,
            ledger=ledger,
            go_live=TEST_GO_LIVE,
            settings=PaymentRefundSettings(**settings),
            tax_split=tax_split,
            run_id="run-1",
        )

    return make


def split_done(
    ledger,
    stripe_gateway,
    order_id="A-1",
    amount=9000,
    *,
    transfer_type=None,
    destination="acct_s1",
    source="ch_paid",
    currency="EUR",
):
    """Record the order transfer as the payment split would have made it (a real transfer)."""
    transfer_type = transfer_type or TransferType.PRODUCT_ORDER
    made = stripe_gateway.create_transfer(
        amount=amount,
        currency=currency,
        destination=destination,
        source_transaction=source,
        idempotency_key=f"test:{order_id}",
        metadata={"miraklId": order_id},
    )
    ledger.save_transfers([TransferRecord(
        type=transfer_type, mirakl_id=order_id, status=TransferStatus.CREATED,
        mirakl_shop_id=1, destination_account=destination, transaction_id=source,
        transfer_id=made.id, amount=amount, currency=currency,
    )])  # fmt: skip
    return made.id


def run_all(job, **kwargs):
    return job.plan(**kwargs), job.refund(**kwargs), job.reverse(**kwargs)


def body_of(call):
    return json.loads(call["body"]) if isinstance(call["body"], str) else call["body"]


def test_refund_pa02_and_reversal_net_of_commission(sandbox, make_job, ledger, stripe_gateway):
    load(sandbox, [product_order()])
    tr = split_done(ledger, stripe_gateway)

    planned, refunded, reversed_ = run_all(make_job())

    assert planned.counts == {"REFUND_PENDING": 1}
    assert refunded.counts == {"REFUND_CREATED": 1}
    [re] = sandbox.refunds()
    assert (re["charge"], re["amount"], re["metadata"]["miraklRefundId"]) == ("ch_paid", 3000, "R1")
    [pa02] = sandbox.mirakl_calls("PA02")
    assert body_of(pa02) == {"refunds": [{"refund_id": "R1", "amount": 30.00,
                                          "currency_iso_code": "EUR", "payment_status": "OK",
                                          "transaction_number": re["id"]}]}  # fmt: skip
    assert reversed_.counts == {"TRANSFER_CREATED": 1}
    [trr] = sandbox.reversals()
    assert (trr["transfer"], trr["amount"], trr["metadata"]["miraklId"]) == (tr, 2700, "R1")
    row = ledger.get_refunds(["R1"])["R1"]
    assert (row.status, row.stripe_refund_id) == (RefundStatus.CREATED, re["id"])
    assert row.mirakl_validated_at is not None

    # Rerunning every step moves nothing more.
    again = run_all(make_job())
    assert [s.counts.get("REFUND_CREATED", 0) for s in again[:2]] == [0, 0]
    assert len(sandbox.refunds()) == 1 and len(sandbox.reversals()) == 1


def test_kwd_refund_and_reversal_round_down_to_stripes_tens(
    sandbox, make_job, ledger, stripe_gateway
):
    """KWD: Stripe takes three decimals with a last digit of 0 (docs.stripe.com/currencies).
    30.005 KWD is refunded as 30.000, the seller's 27.005 reversed as 27.000; each residue is
    on its row, and Mirakl is told its own refund amount."""
    order = product_order(refunds=[{"id": "R1", "amount": "30.005",
                                    "commission_total_amount": "3.000", "shipping_taxes": [],
                                    "taxes": []}])  # fmt: skip
    order.update(currency_iso_code="KWD", total_price="100.000", total_commission="10.000")
    order["order_lines"][0]["taxes"] = []
    load(sandbox, [order])
    sandbox.put_charges(
        [
            {
                "id": "ch_paid",
                "amount": 100000,
                "currency": "kwd",
                "status": "succeeded",
                "captured": True,
                "refunded": False,
            }
        ]
    )
    split_done(ledger, stripe_gateway, amount=90000, currency="KWD")

    run_all(make_job())

    [re] = sandbox.refunds()
    assert (re["amount"], re["currency"]) == (30000, "kwd")
    [trr] = sandbox.reversals()
    assert trr["amount"] == 27000
    refund = ledger.get_refunds(["R1"])["R1"]
    assert (refund.status, refund.amount, refund.amount_residue) == (RefundStatus.CREATED, 30000, 5)
    reversal = ledger.get_transfer(TransferType.REFUND, "R1")
    assert (reversal.amount, reversal.amount_residue) == (27000, 5)
    [pa02] = sandbox.mirakl_calls("PA02")
    assert body_of(pa02)["refunds"][0]["amount"] == 30.005


def test_tax_split_reverses_seller_and_tax_separately(sandbox, make_job, ledger, stripe_gateway):
    load(sandbox, [product_order()])
    tr = split_done(ledger, stripe_gateway, amount=8200)
    tr_tax = split_done(ledger, stripe_gateway, "A-1_TAX", amount=800, destination="acct_tax")

    run_all(make_job(tax_split=True))

    got = {r["metadata"]["miraklId"]: (r["transfer"], r["amount"]) for r in sandbox.reversals()}
    assert got == {"R1": (tr, 2500), "R1_TAX": (tr_tax, 200)}
    # A later run re-deciding nothing keeps both amounts (the seller row is never priced as tax).
    run_all(make_job(tax_split=True))
    rows = ledger.get_transfers(TransferType.REFUND, ["R1", "R1_TAX"])
    assert {k: (r.status, r.amount) for k, r in rows.items()} == {
        "R1": (TransferStatus.CREATED, 2500),
        "R1_TAX": (TransferStatus.CREATED, 200),
    }


def test_reversal_of_nothing_is_aborted_with_reason(sandbox, make_job, ledger, stripe_gateway):
    refunds = [{"id": "R1", "amount": "3.00", "commission_total_amount": "3.00",
                "shipping_taxes": [], "taxes": []}]  # fmt: skip
    load(sandbox, [product_order(refunds=refunds)])
    split_done(ledger, stripe_gateway)

    _, _, reversed_ = run_all(make_job())

    assert reversed_.counts == {"TRANSFER_ABORTED": 1}
    row = ledger.get_transfer(TransferType.REFUND, "R1")
    assert row.status_reason == "Amount must be positive, input was: 0.00 EUR"
    assert sandbox.reversals() == []
    assert len(sandbox.refunds()) == 1  # the customer is refunded all the same


def test_reversal_waits_for_the_order_transfer(sandbox, make_job, ledger, stripe_gateway):
    load(sandbox, [product_order()])
    ledger.upsert_payment_mapping(PaymentMapping("ch_paid", "A", stripe_amount=10800))

    run_all(make_job())

    assert ledger.get_refunds(["R1"])["R1"].transaction_id == "ch_paid"  # from the mapping
    row = ledger.get_transfer(TransferType.REFUND, "R1")
    assert (row.status, row.status_reason) == (
        TransferStatus.ON_HOLD,
        "Payment split has to occur before the transfer can be reversed for a refund",
    )
    tr = split_done(ledger, stripe_gateway)

    make_job().reverse()

    [trr] = sandbox.reversals()
    assert (trr["transfer"], trr["amount"]) == (tr, 2700)


def test_refund_without_known_payment_waits(sandbox, make_job, ledger):
    load(sandbox, [product_order()])

    planned = make_job().plan()

    assert planned.counts == {"REFUND_ON_HOLD": 1}
    row = ledger.get_refunds(["R1"])["R1"]
    assert row.status_reason == "Cannot find the ID of the payment to be refunded"


def test_pa02_failure_never_refunds_twice_and_the_retry_only_validates(
    sandbox, make_job, ledger, stripe_gateway
):
    load(sandbox, [product_order()])
    split_done(ledger, stripe_gateway)
    sandbox.set_faults({"rules": [{"target": "mirakl", "method": "PUT",
                                   "path": "/api/payment/refund", "times": 50,
                                   "action": "error"}]})  # fmt: skip

    job = make_job()
    job.plan()
    first = job.refund()

    assert first.counts == {"REFUND_FAILED": 1}
    row = ledger.get_refunds(["R1"])["R1"]
    assert row.status is RefundStatus.FAILED and row.stripe_refund_id
    assert "Mirakl validation failed" in row.status_reason
    assert len(sandbox.refunds()) == 1

    # Retry while Mirakl is still down: still one refund.
    job.plan()
    job.refund()
    assert len(sandbox.refunds()) == 1

    # Meanwhile someone validates it in Mirakl: PA12 no longer lists it, the ledger still
    # retries it (the Stripe connector forgot it) and Mirakl's "already validated" 400 closes it.
    sandbox.clear_faults()
    order = copy.deepcopy(sandbox.order("A-1"))
    order["order_lines"][0]["refunds"][0]["refund_state"] = "REFUNDED"
    sandbox.patch_order("A-1", order_lines=order["order_lines"])
    sandbox.clear_mirakl_calls()

    job.plan()
    last = job.refund()

    assert last.counts == {"REFUND_CREATED": 1}
    assert "already validated" in ledger.get_refunds(["R1"])["R1"].status_reason
    assert len(sandbox.refunds()) == 1
    assert len(sandbox.mirakl_calls("PA02")) == 1
    assert [r["path"] for r in sandbox.stripe_requests(method="POST")].count("/v1/refunds") == 1


def test_spa02_bare_array_for_service_refunds(sandbox, make_job, ledger, stripe_gateway):
    load(sandbox, service_orders=[service_order()])
    tr = split_done(ledger, stripe_gateway, "S-1", 4500, transfer_type=TransferType.SERVICE_ORDER)

    planned, refunded, reversed_ = run_all(make_job(product_enabled=False, service_enabled=True))

    [re] = sandbox.refunds()
    assert re["amount"] == 2000
    [spa02] = sandbox.mirakl_calls("SPA02")
    assert body_of(spa02) == [{"id": "SR1", "order_id": "S-1", "amount": 20.00,
                               "currency_code": "EUR", "state": "OK",
                               "transaction_number": re["id"]}]  # fmt: skip
    assert refunded.counts == {"REFUND_CREATED": 1}
    assert ledger.get_refunds(["SR1"])["SR1"].mirakl_commercial_order_id == "S"
    [trr] = sandbox.reversals()
    assert (trr["transfer"], trr["amount"]) == (tr, 1800)


def test_lost_refund_and_reversal_answers_are_recovered_not_repeated(
    sandbox, make_job, ledger, stripe_gateway
):
    load(sandbox, [product_order()])
    split_done(ledger, stripe_gateway)
    rules = []
    for path in ("/v1/refunds", "/v1/transfers/*"):
        rules += [
            {"target": "stripe", "method": "POST", "path": path, "times": 1,
             "action": "lost_response"},
            {"target": "stripe", "method": "POST", "path": path, "times": 10, "action": "error"},
        ]  # fmt: skip
    job = make_job()
    job.plan()
    sandbox.set_faults({"rules": rules[:2]})

    assert job.refund().counts == {"IN_DOUBT": 1}
    assert ledger.get_refunds(["R1"])["R1"].stripe_refund_id is None
    sandbox.clear_faults()
    job.plan()
    assert job.refund().counts == {"REFUND_CREATED": 1}
    assert len(sandbox.refunds()) == 1

    sandbox.set_faults({"rules": rules[2:]})
    assert job.reverse().counts == {"IN_DOUBT": 1}
    sandbox.clear_faults()
    # Past Stripe's idempotency window the row is looked up by metadata, not re-created.
    row = ledger.get_transfer(TransferType.REFUND, "R1")
    ledger.save_transfers(
        [TransferRecord(**{**row.__dict__, "attempted_at": row.attempted_at - timedelta(days=2)})]
    )
    assert job.reverse().counts == {"TRANSFER_CREATED": 1}
    assert len(sandbox.reversals()) == 1
    assert (
        ledger.get_transfer(TransferType.REFUND, "R1").transfer_id == sandbox.reversals()[0]["id"]
    )


def test_refund_key_reused_with_other_params_is_looked_up_not_made_again(
    sandbox, make_job, ledger, stripe_gateway
):
    """Stripe's idempotency_error says the key's first request got there: find that refund."""
    load(sandbox, [product_order()])
    split_done(ledger, stripe_gateway)
    job = make_job()
    job.plan()
    key = "mirakl-connector:refund:R1"
    ledger.mark_refund_attempt(ledger.get_refunds(["R1"])["R1"], key)
    # The first attempt reached Stripe with other parameters (here: another amount), then the
    # process died before the refund id was stored.
    first = stripe_gateway.create_refund(
        payment_id="ch_paid",
        amount=2900,
        currency="EUR",
        idempotency_key=key,
        metadata={"miraklRefundId": "R1"},
    )

    assert job.refund().counts == {"REFUND_CREATED": 1}

    assert ledger.get_refunds(["R1"])["R1"].stripe_refund_id == first.id
    assert [r["id"] for r in sandbox.refunds()] == [first.id]
    [replay] = [r for r in sandbox.stripe_requests(method="POST") if r["path"] == "/v1/refunds"][1:]
    assert replay["status"] == 400  # the replay was refused; nothing was created twice


def test_requires_capture_intent_is_cancelled_and_refund_waits(sandbox, make_job, ledger):
    load(sandbox, [product_order()])
    sandbox.put_payment_intents(
        [{"id": "pi_open", "amount": 10800, "currency": "eur", "status": "requires_capture"}]
    )
    ledger.upsert_payment_mapping(PaymentMapping("pi_open", "A", stripe_amount=10800))

    planned = make_job().plan()

    assert planned.counts == {"REFUND_ON_HOLD": 1}
    assert sandbox.payment_intents()[0]["status"] == "canceled"
    # Next run: the cancelled payment aborts the refund for good.
    assert make_job().plan().counts == {"REFUND_ABORTED": 1}
    assert make_job().reverse().counts == {"TRANSFER_ABORTED": 1}


def test_dry_run_writes_nothing(sandbox, make_job, ledger, stripe_gateway):
    load(sandbox, [product_order()])
    split_done(ledger, stripe_gateway)

    planned, _, _ = run_all(make_job(), dry_run=True)

    assert planned.counts == {"REFUND_PENDING": 1}
    assert ledger.get_refunds(["R1"]) == {}
    assert sandbox.refunds() == [] and sandbox.mirakl_calls("PA02") == []


def test_sharded_steps_refund_and_reverse_each_exactly_once(
    sandbox, make_job, ledger, stripe_gateway
):
    """Mapped refund and reverse tasks: disjoint rows, every refund and reversal once."""
    orders = [
        product_order(
            f"A-{n}",
            refunds=[{"id": f"R{n}", "amount": "30.00", "commission_total_amount": "3.00",
                      "shipping_taxes": [], "taxes": [{"amount": "2.00", "code": "VAT"}]}],
        )
        for n in range(1, 7)
    ]  # fmt: skip
    load(sandbox, orders)
    sandbox.put_charges(
        [{"id": f"ch_{n}", "amount": 20000, "currency": "eur", "status": "succeeded",
          "captured": True, "refunded": False} for n in range(1, 7)]
    )  # fmt: skip
    transfers = {f"A-{n}": split_done(ledger, stripe_gateway, f"A-{n}", source=f"ch_{n}")
                 for n in range(1, 7)}  # fmt: skip
    job = make_job(execute_shards=2)
    assert job.plan().counts == {"REFUND_PENDING": 6}

    refunded = [job.refund(shard=i, shards=2) for i in range(2)]
    assert [s.notes for s in refunded] == [["shard 0 of 2"], ["shard 1 of 2"]]
    assert [s.counts["REFUND_CREATED"] for s in refunded] == [3, 3]
    reversed_ = [job.reverse(shard=i, shards=2) for i in range(2)]
    assert sum(s.counts["TRANSFER_CREATED"] for s in reversed_) == 6
    assert all(s.counts["TRANSFER_CREATED"] > 0 for s in reversed_)

    refunds = sandbox.refunds()
    assert sorted((r["metadata"]["miraklRefundId"], r["charge"], r["amount"]) for r in refunds) == [
        (f"R{n}", f"ch_{n}", 3000) for n in range(1, 7)
    ]
    assert sorted((t["metadata"]["miraklId"], t["transfer"], t["amount"])
                  for t in sandbox.reversals()) == [
        (f"R{n}", transfers[f"A-{n}"], 2700) for n in range(1, 7)
    ]  # fmt: skip
    # Each shard validated its own refunds in Mirakl: every refund once, in one PA02 per shard.
    validated = [
        e["refund_id"] for c in sandbox.mirakl_calls("PA02") for e in body_of(c)["refunds"]
    ]
    assert sorted(validated) == [f"R{n}" for n in range(1, 7)]
    # Cleared shard tasks find nothing left.
    assert job.refund(shard=1, shards=2).total == 0 and job.reverse(shard=0, shards=2).total == 0
    assert len(sandbox.refunds()) == 6 and len(sandbox.reversals()) == 6


def test_plan_reads_the_chunks_charges_in_one_list_call(sandbox, make_job, ledger, stripe_gateway):
    """The refunded charges are listed around their orders' dates, not retrieved one by one; a
    charge refunded meanwhile is still seen as refunded."""
    orders = [
        product_order(f"A-{n}", refunds=[{"id": f"R{n}", "amount": "30.00",
                                          "commission_total_amount": "3.00",
                                          "shipping_taxes": [], "taxes": []}])
        for n in range(1, 6)
    ]  # fmt: skip
    load(sandbox, orders)
    placed = int((NOW - timedelta(days=3)).timestamp())
    sandbox.put_charges(
        [{"id": f"ch_{n}", "amount": 20000, "currency": "eur", "status": "succeeded",
          "captured": True, "refunded": n == 5, "created": placed + n} for n in range(1, 6)]
    )  # fmt: skip
    ledger.save_transfers([
        TransferRecord(type=TransferType.PRODUCT_ORDER, mirakl_id=f"A-{n}",
                       status=TransferStatus.CREATED, mirakl_shop_id=1,
                       destination_account="acct_s1", transaction_id=f"ch_{n}",
                       transfer_id=f"tr_{n}", amount=9000, currency="EUR",
                       mirakl_created_date=iso(3))
        for n in range(1, 6)
    ])  # fmt: skip
    stripe_gateway.call_counts.clear()

    planned = make_job().plan()

    assert planned.counts == {"REFUND_PENDING": 4, "REFUND_ABORTED": 1}
    assert stripe_gateway.call_counts == {"charges.list": 1}
    rows = ledger.get_refunds([f"R{n}" for n in range(1, 6)])
    assert [rows[f"R{n}"].transaction_id for n in range(1, 5)] == ["ch_1", "ch_2", "ch_3", "ch_4"]
    assert "ch_5" in rows["R5"].status_reason


def test_first_run_needs_a_go_live_instant_and_skips_refunds_of_older_orders(
    sandbox, mirakl, stripe_gateway, ledger
):
    """Refunds have no checkpoint: the first plan run needs go_live; a refund of an order
    created before it (which a previous connector may have refunded) is counted, not moved."""
    from mirakl_connector.core.errors import ConfigurationError
    from mirakl_connector.stripe.refunds import FIRST_RUN_KEY

    old = product_order("OLD-1", refunds=[
        {"id": "R-OLD", "amount": "10.00", "commission_total_amount": "1.00",
         "shipping_taxes": [], "taxes": []}])  # fmt: skip
    old["created_date"] = "2026-10-01T00:00:00Z"
    load(sandbox, orders=[old, product_order("A-1")])
    # the old order's payment is known: without go_live its refund would go out
    ledger.upsert_payment_mapping(PaymentMapping("ch_paid", "OLD", status="captured"))

    def job(go_live=None):
        return PaymentRefund(
            mirakl=mirakl, stripe=stripe_gateway, ledger=ledger, go_live=GoLive(go_live)
        )

    with pytest.raises(ConfigurationError, match=f"no checkpoint '{FIRST_RUN_KEY}'"):
        job().plan()
    assert ledger.get_refunds(["R-OLD", "R1"]) == {}

    live = job(_dt(2026, 11, 1, tzinfo=_UTC))
    plan = live.plan()
    assert plan.counts["BEFORE_GO_LIVE"] == 1
    assert "R-OLD" not in ledger.get_refunds(["R-OLD"])
    live.refund()
    assert "R-OLD" not in {r["metadata"]["miraklRefundId"] for r in sandbox.refunds()}
    assert ledger.get_checkpoint(FIRST_RUN_KEY) is not None
    job().plan()  # no longer a first run


def test_spa02_refusal_in_the_published_shape_is_never_recorded_validated(
    sandbox, make_job, ledger, stripe_gateway, mirakl, monkeypatch
):
    """Issue 19 pt 5: Mirakl's ``SPA02_Response_200`` requires only ``errors`` and each error's
    ``refund_errors``; ``refund_id`` and ``success`` are optional. A refusal without a
    ``refund_id`` must not read as "not refused"; an answer naming the refund nowhere is unknown."""
    load(sandbox, service_orders=[service_order()])
    split_done(ledger, stripe_gateway, "S-1", 4500, transfer_type=TransferType.SERVICE_ORDER)
    answers = [
        {"errors": [{"refund_errors": [{"code": "INVALID_AMOUNT", "message": "amount refused"}]}]},
        {"errors": []},
    ]
    sent = []

    def spa02(refunds):
        sent.append(list(refunds))
        return answers.pop(0)

    monkeypatch.setattr(mirakl, "validate_service_refunds", spa02)
    job = make_job(product_enabled=False, service_enabled=True)
    job.plan()

    refused = job.refund()
    row = ledger.get_refunds(["SR1"])["SR1"]
    assert refused.counts == {"REFUND_FAILED": 1}
    assert (row.status, row.mirakl_validated_at) == (RefundStatus.FAILED, None)
    assert "amount refused" in row.status_reason

    # Once more with an answer that names the refund nowhere (another refund run).
    ledger.save_refunds([replace(row, status=RefundStatus.PENDING)], run_id="again")
    unknown = job.refund()
    row = ledger.get_refunds(["SR1"])["SR1"]
    assert unknown.counts == {"MIRAKL_UNCONFIRMED": 1}
    assert (row.status, row.mirakl_validated_at) == (RefundStatus.PENDING, None)
    assert len(sent) == 2 and len(sandbox.refunds()) == 1  # Stripe refunded once
