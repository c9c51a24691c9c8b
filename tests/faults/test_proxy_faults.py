"""Every money-moving write behind a proxy that answers instead of Stripe after Stripe did the work.

A real HTTP proxy (:class:`~mirakl_sandbox.proxy.FaultyProxy`) sits between the
connector and the sandbox and carries all of a DAG's calls. For chosen writes it lets the sandbox
do the work, then throws the answer away and sends its own: a 408, an HTML 502 page, a 200 whose
body is not JSON, or JSON cut in half, for both tries of the call, so the item ends its run in
doubt. On top of that the sandbox saves a server error for one write of each kind (with and
without the work done), as Stripe does for a 500 of an executing request. The DAG is rerun until
the audit is clean: each object exactly once, and the ledger says what the sandbox holds.

Before the fix these answers read as Stripe refusing the request, the row was FAILED and sent
again with a new key: one more transfer, refund, reversal or payout for each of them.
"""

from __future__ import annotations

import pytest
from mirakl_sandbox.fault_audit import (
    audit_order_transfers,
    audit_refunds,
    audit_settlement,
    problems,
    rule,
)
from mirakl_sandbox.generate import add_line_refunds, generate_invoices

from mirakl_connector.core.retry import RetryPolicy
from mirakl_connector.ledger.records import PaymentMapping, PaymentMappingStatus
from mirakl_connector.mirakl.client import MiraklClient
from mirakl_connector.stripe.gateway import StripeGateway
from mirakl_connector.stripe.payment_validation import PaymentValidation, PaymentValidationSettings

#: what a proxy or load balancer answers when it fails after forwarding the request
MODES = ("408", "html_502", "non_json_200", "truncated_json")


def mangle(proxy, path: str, **match) -> int:
    """Replace both tries of one call per mode to ``POST path``; returns the answers replaced."""
    for mode in MODES:
        proxy.add("POST", path, mode, times=2, **match)
    return 2 * len(MODES)


def saved_errors(admin, *paths: str) -> None:
    """The sandbox saves a 500 for the key of the next call to each path (once without doing
    the work, once after doing it), and replays it to that key."""
    rules = [
        rule("stripe", "POST", path, action)
        for path in paths
        for action in ("saved_error", "error_after_work")
    ]
    admin.set_faults({"seed": 1, "rules": rules})


def spent(admin) -> int:
    return sum(
        r.get("fault") in ("saved_error", "error_after_work") for r in admin.stripe_requests()
    )


@pytest.mark.slow
def test_split_transfers_behind_a_misbehaving_proxy_are_made_once(
    admin, fault_ledger, map_accounts, proxy, via_proxy
):
    admin.generate(orders=16, shops=4, currency="EUR", seed=2)
    map_accounts(admin, fault_ledger)
    replaced = mangle(proxy, "/v1/transfers")
    saved_errors(admin, "/v1/transfers")

    run = via_proxy("payment_split")
    assert run.rerun_until(lambda: not problems([audit_order_transfers(admin, fault_ledger)]))

    assert proxy.replaced_count() == replaced and spent(admin) == 2
    audit = audit_order_transfers(admin, fault_ledger)
    assert (audit.problems, audit.found) == ([], 16)


@pytest.mark.slow
def test_refunds_and_reversals_behind_a_misbehaving_proxy_are_made_once(
    admin, paid_orders, fault_ledger, proxy, via_proxy
):
    orders = paid_orders(12)
    admin.put_orders(add_line_refunds(orders, len(orders), seed=4))
    replaced = mangle(proxy, "/v1/refunds") + mangle(proxy, "/v1/transfers/*/reversals")
    saved_errors(admin, "/v1/refunds", "/v1/transfers/*")

    run = via_proxy("payment_refund")
    assert run.rerun_until(lambda: not problems(audit_refunds(admin, fault_ledger)))

    assert proxy.replaced_count() == replaced and spent(admin) == 4
    assert [a.found for a in audit_refunds(admin, fault_ledger)][:1] == [12]
    assert problems(audit_refunds(admin, fault_ledger)) == []
    assert len(admin.refunds()) == len(admin.reversals()) == 12


@pytest.mark.slow
def test_settlement_transfers_both_ways_and_payouts_behind_a_misbehaving_proxy_are_made_once(
    admin, fault_ledger, map_accounts, proxy, via_proxy
):
    admin.generate(orders=0, shops=4, currency="EUR", seed=1)
    map_accounts(admin, fault_ledger)
    admin.load({"mirakl": {"invoices": generate_invoices(8, 4, seed=6)}})
    replaced = (
        mangle(proxy, "/v1/transfers", with_account=True)  # seller → platform
        + mangle(proxy, "/v1/transfers", with_account=False)  # platform → seller
        + mangle(proxy, "/v1/payouts")
    )
    saved_errors(admin, "/v1/transfers", "/v1/payouts")

    run = via_proxy("seller_settlement")
    assert run.rerun_until(lambda: not problems(audit_settlement(admin, fault_ledger)))

    assert proxy.replaced_count() == replaced and spent(admin) == 4
    transfers, payouts = audit_settlement(admin, fault_ledger)
    assert (transfers.found, payouts.found) == (3 * 8, 8)
    assert problems([transfers, payouts]) == []


def shipped_order(commercial_id: str, total: str) -> dict:
    line = {"order_line_id": f"{commercial_id}-A-1", "order_line_state": "SHIPPING",
            "total_price": total, "shipping_taxes": [], "taxes": []}  # fmt: skip
    return {
        "order_id": f"{commercial_id}-A", "commercial_id": commercial_id,
        "created_date": "2026-11-20T10:00:00Z", "last_updated_date": "2026-11-20T10:00:00Z",
        "customer_debited_date": "2026-11-20T11:00:00Z", "currency_iso_code": "EUR",
        "order_state": "SHIPPING", "order_tax_mode": "TAX_EXCLUDED", "shop_id": 1,
        "total_commission": "1.00", "total_price": total, "order_lines": [line],
    }  # fmt: skip


@pytest.mark.slow
def test_captures_behind_a_misbehaving_proxy_capture_each_authorisation_once(
    admin, fault_server, fault_ledger, proxy, via_proxy
):
    # Four payment intents and four charges, authorised; their orders all shipped.
    payments = [(f"pi_c{i}", f"C{i}") for i in range(4)] + [(f"ch_c{i}", f"D{i}") for i in range(4)]
    admin.reset({
        "mirakl": {"api_key": "sandbox-mirakl-key",
                   "orders": [shipped_order(c, "10.00") for _p, c in payments]},
        "stripe": {
            "api_key": "sk_test_sandbox", "platform_account": {"id": "acct_platform"},
            "payment_intents": [{"id": p, "amount": 1000, "currency": "eur",
                                 "status": "requires_capture"} for p, _c in payments[:4]],
            "charges": [{"id": p, "amount": 1000, "currency": "eur", "captured": False}
                        for p, _c in payments[4:]],
        },
    })  # fmt: skip
    for payment, commercial in payments:
        fault_ledger.upsert_payment_mapping(
            PaymentMapping(
                payment, commercial, status=PaymentMappingStatus.TO_CAPTURE, stripe_amount=1000
            )  # fmt: skip
        )
    replaced = mangle(proxy, "/v1/payment_intents/*/capture") + mangle(
        proxy, "/v1/charges/*/capture"
    )
    saved_errors(admin, "/v1/payment_intents/*")
    via_proxy("payment_validation")  # SPENT_KEY_SETTLE as for the other writes
    retry = RetryPolicy(max_attempts=2, max_elapsed=10, base_delay=0.01, max_delay=0.05)

    def captured() -> dict[str, PaymentMappingStatus]:
        return {p: fault_ledger.get_payment_mapping(p).status for p, _c in payments}

    for attempt in range(6):
        PaymentValidation(
            mirakl=MiraklClient(proxy.url, "sandbox-mirakl-key", retry=retry, timeout=(1, 5)),
            stripe=StripeGateway("sk_test_sandbox", base_url=proxy.url, retry=retry, timeout=5),
            ledger=fault_ledger,
            settings=PaymentValidationSettings(),
            run_id=f"capture-{attempt}",
        ).capture()
        if set(captured().values()) == {PaymentMappingStatus.CAPTURED}:
            break

    assert proxy.replaced_count() == replaced and spent(admin) == 2
    assert captured() == {p: PaymentMappingStatus.CAPTURED for p, _c in payments}
    done = [
        r["path"]
        for r in admin.stripe_requests(method="POST")
        if r["path"].endswith("/capture") and r["status"] == 200 and not r["replayed"]
    ]
    assert sorted(done) == sorted(
        f"/v1/{'payment_intents' if p.startswith('pi_') else 'charges'}/{p}/capture"
        for p, _c in payments
    )  # each authorisation captured by exactly one request
    intents = {i["id"]: i for i in admin.payment_intents()}
    charges = {c["id"]: c for c in admin.charges()}
    assert all(intents[p]["amount_received"] == 1000 for p, _c in payments[:4])
    assert all(charges[p]["amount_captured"] == 1000 for p, _c in payments[4:])
