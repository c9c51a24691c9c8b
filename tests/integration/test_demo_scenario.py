"""The demo marketplace, end to end: every workflow's steps in DAG order against the sandbox.

``scripts/demo.sh`` runs these jobs from Airflow; here they run directly (same registry, same
configuration file, real clients, a real ledger on both backends, a real SMTP server), so the
story the demo tells is pinned in seconds: shops get accounts and links, KYC problems are
reported and hold transfers, debits are validated and authorisations captured, orders are paid
out to sellers, refunds are refunded and reversed, invoices are settled and paid out. A second
pass over the same state must move nothing.
"""

from __future__ import annotations

import json
import smtplib
from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import requests
from mirakl_sandbox.demo_run import (
    DEMO,
    DEMO_HYPERWALLET,
    IN_DOUBT_ORDER,
    load_demo,
    read_json,
    run_pass,
)
from mirakl_sandbox.hyperwallet_admin import HyperwalletSandboxAdmin

from mirakl_connector.airflow.demo import seed_ledger
from mirakl_connector.core.errors import PaymentProviderError
from mirakl_connector.core.registry import Resources
from mirakl_connector.hyperwallet.client import HyperwalletClient
from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.claims import ClaimKind, find_claims
from mirakl_connector.ledger.records import PaymentMappingStatus, PayoutStatus, TransferType
from mirakl_connector.operations.approval_gate import Decision
from mirakl_connector.operations.approvals import record_decision

# the whole demo marketplace: the inner loop leaves it out (README "Two commands")
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO / "scripts/demo-config.json"
NEW_SHOPS = {5, 6, 8, 9}  # no Stripe account in the scenario
HW_SHOPS = {101, 102, 103, 104, 105, 106, 107, 108}  # hw-program set: Hyperwallet pays them


class SmtpLibMailer:
    """The core's Mailer over plain smtplib, to the test's SMTP server."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    def send(self, *, to: Sequence[str], subject: str, html: str) -> None:
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = "connector@example.com"
        message["To"] = ", ".join(to)
        message.set_content(html, subtype="html")
        with smtplib.SMTP(self.host, self.port, timeout=5) as smtp:
            smtp.send_message(message)


@pytest.fixture
def demo(sandbox, sandbox_server, ledger_url, mirakl, stripe_gateway, smtp_server, fast_retry):
    """The demo scenario in the sandbox (faults too), its ledger section seeded, and a runner of
    one pass."""
    load_demo(sandbox)
    hw_scenario = read_json(DEMO_HYPERWALLET)
    hyperwallet = HyperwalletClient(
        sandbox_server.url,
        hw_scenario["hyperwallet"]["username"],
        hw_scenario["hyperwallet"]["password"],
        retry=fast_retry,
        timeout=(2, 5),
    )
    seed_ledger(DEMO, url=ledger_url)
    ledger = Ledger(ledger_url)
    config = json.loads(DEMO_CONFIG.read_text(encoding="utf-8"))
    host, port, _inbox = smtp_server

    def resources() -> Resources:
        return Resources(
            mirakl=lambda: mirakl,
            stripe=lambda: stripe_gateway,
            ledger=lambda: ledger,
            mailer=lambda: SmtpLibMailer(host, port),
            http=lambda: None,  # no operator endpoint, as in the demo
            hyperwallet=lambda: hyperwallet,
        )

    yield ledger, lambda name: run_pass(resources, config, name)
    ledger.dispose()


def moved(sandbox) -> dict[str, int]:
    """How many money movements and accounts exist in the sandbox's Stripe."""
    return {
        "transfers": len(sandbox.transfers()),
        "reversals": len(sandbox.reversals()),
        "refunds": len(sandbox.refunds()),
        "payouts": len(sandbox.payouts()),
        "accounts": len(sandbox.accounts()),
    }


def by_mirakl_id(objects: list[dict[str, Any]], key: str = "miraklId") -> dict[str, Any]:
    return {o["metadata"][key]: o for o in objects}


def test_every_workflow_moves_the_demo_then_a_second_pass_moves_nothing(demo, sandbox, smtp_server):
    ledger, run_pass = demo
    inbox = smtp_server[2]

    first = run_pass("first")

    assert {k: s["failed_total"] for k, s in first.items() if s["failed_total"]} == {
        "payment_split.execute": 1,  # ORD-1016-A's transfer: made, its answer lost (in doubt)
        "hyperwallet_bank_account_extract.sync": 1,  # shop 105: IBAN with wrong check digits
        "hyperwallet_invoice_payments.pay": 1,  # 9103's operator fee is negative: refused
    }
    assert first["payment_split.execute"]["ids"]["IN_DOUBT"] == [IN_DOUBT_ORDER]

    # Onboarding: every shop without an account gets one, mapped, with a link in stripe-url.
    accounts = {a["metadata"].get("miraklShopId"): a for a in sandbox.accounts()}
    mappings = {m.mirakl_shop_id: m for m in ledger.list_account_mappings()}
    shops = {s["shop_id"]: s for s in sandbox.shops()}
    for shop_id in NEW_SHOPS:
        account = accounts[str(shop_id)]
        assert mappings[shop_id].stripe_account_id == account["id"]
        assert account["business_profile"]["name"] == shops[shop_id]["shop_name"]  # prefill
        link = next(f["value"] for f in shops[shop_id]["shop_additional_fields"]
                    if f["code"] == "stripe-url")  # fmt: skip
        assert f"/_sandbox/onboarding/{account['id']}" in link  # legacy OAuth link of 9 replaced
    assert mappings[6].ignored is True
    assert first["seller_onboarding.sync"]["counts"] == {
        "ACCOUNT_CREATED": 4,
        "UNCHANGED": 5,
        "NOT_STRIPE_SHOP": 8,  # the Hyperwallet shops (hw-program set), terminated 107 included
    }
    # No Stripe account, no mapping and no Stripe link for a shop Hyperwallet pays.
    assert not {str(i) for i in HW_SHOPS} & set(accounts)
    assert not HW_SHOPS & set(mappings)
    for shop_id in HW_SHOPS:
        codes = {f["code"] for f in shops[shop_id]["shop_additional_fields"]}
        assert "stripe-url" not in codes
    assert {f["value"] for f in shops[1]["shop_additional_fields"]} == {
        "https://connect.stripe.com/express/acct_demo_lumiere"  # a working link is kept
    }

    # KYC: verified accounts APPROVED, the others reported once, by one e-mail, and to Mirakl.
    assert {m.mirakl_shop_id: m.kyc_status for m in mappings.values()} == {
        1: "APPROVED", 2: "APPROVED", 3: "APPROVED", 4: "APPROVED",
        **{shop_id: "PENDING_SUBMISSION" for shop_id in (*NEW_SHOPS, 7)},
    }  # fmt: skip
    kyc_mails = [m for m in inbox.messages if m["Subject"] == "[Mirakl connector] KYC required"]
    assert len(kyc_mails) == 1
    body = kyc_mails[0].get_content()
    assert "acct_demo_berlin" in body and "external_account" in body
    assert all(accounts[str(i)]["id"] in body for i in NEW_SHOPS)
    assert kyc_mails[0]["X-Rcpt-To"] == "payments-ops@demo.test"
    assert all(shops[i]["kyc"]["status"] == "PENDING_SUBMISSION" for i in NEW_SHOPS)

    # Validation: ONE PA01 call confirms the three debits Mirakl waits for.
    [pa01] = sandbox.mirakl_calls("PA01")
    confirmed = {(e["order_id"], e["transaction_number"], e["amount"])
                 for e in pa01["body"]["orders"]}  # fmt: skip
    assert confirmed == {
        ("ORD-1006-A", "pi_demo_1006", 15.3),
        ("ORD-1015-A", "ch_demo_1015", 144),
        ("ORD-1016-A", "pi_demo_1016", 106.8),
    }
    assert {sandbox.order(o)["order_state"] for o, _, _ in confirmed} == {"SHIPPING"}

    # Capture: the authorisation less the refused order (180.00 - 36.00), intents in full.
    charges = {c["id"]: c for c in sandbox.charges()}
    assert charges["ch_demo_1015"]["amount_captured"] == 14400
    assert charges["ch_demo_1007"]["amount_captured"] == 7760
    intents = {p["id"]: p for p in sandbox.payment_intents()}
    assert intents["pi_demo_1016"]["status"] == intents["pi_demo_1006"]["status"] == "succeeded"
    payments = ledger.payment_mappings_by_commercial_id(
        ["ORD-1006", "ORD-1007", "ORD-1015", "ORD-1016"]
    )
    assert {cid: (p.status, p.captured_amount) for cid, p in payments.items()} == {
        "ORD-1006": (PaymentMappingStatus.CAPTURED, 15300),
        "ORD-1007": (PaymentMappingStatus.CAPTURED, 7760),
        "ORD-1015": (PaymentMappingStatus.CAPTURED, 14400),
        "ORD-1016": (PaymentMappingStatus.CAPTURED, 10680),
    }

    # Split: the captured orders are paid to their sellers; KYC and unmapped shops wait.
    transfers = by_mirakl_id(sandbox.transfers())
    assert (transfers["ORD-1015-A"]["amount"], transfers["ORD-1015-A"]["destination"]) == (
        12960,  # 120.00 + 24.00 VAT - 14.40 commission
        "acct_demo_lumiere",
    )
    assert transfers["ORD-1016-A"]["amount"] == 9612
    kwd = transfers["ORD-1006-A"]
    assert (kwd["amount"], kwd["currency"]) == (13770, "kwd")  # 12.750 + 2.550 - 1.530
    assert transfers["ORD-1007-A"]["amount"] == 6992
    # The demo's fault: Stripe made ORD-1016-A's transfer, every answer to us was lost or an
    # error; the ledger has no id for it and says it is in doubt (the console's job).
    in_doubt = ledger.get_transfer(TransferType.PRODUCT_ORDER, IN_DOUBT_ORDER)
    assert in_doubt.in_doubt and in_doubt.transfer_id is None
    assert "ORD-1017-A" not in transfers  # Berlin: KYC requirements due
    assert "ORD-1012-A" not in transfers  # shop 5: its new account is not verified yet
    assert "ORD-1015-B" not in transfers  # refused

    # Refunds: customers refunded, Mirakl told (PA02 / SPA02), sellers' share reversed.
    refunds = by_mirakl_id(sandbox.refunds(), "miraklRefundId")
    assert {i: (r["amount"], r["charge"]) for i, r in refunds.items()} == {
        "R-3001": (2000, "ch_demo_1014"),
        "R-3002": (4900, "ch_demo_1002"),
        "SR-4001": (2200, "ch_demo_2002"),
    }
    line_refunds = {
        r["id"]: r["refund_state"]
        for o in ("ORD-1014-A", "ORD-1002-A")
        for line in sandbox.order(o)["order_lines"]
        for r in line.get("refunds") or []
    }
    assert line_refunds == {"R-3001": "REFUNDED", "R-3002": "REFUNDED"}
    service_refund = next(o for o in sandbox.service_orders() if o["id"] == "SRV-2002-A")
    assert service_refund["refunds"][0]["state"] == "OK"
    reversals = by_mirakl_id(sandbox.reversals())
    assert {i: (r["amount"], r["transfer"]) for i, r in reversals.items()} == {
        "R-3001": (1760, transfers["ORD-1014-A"]["id"]),  # 20.00 - 2.40 commission
        "R-3002": (4312, transfers["ORD-1002-A"]["id"]),  # 49.00 - 5.88
        "SR-4001": (1870, transfers["SRV-2002-A"]["id"]),  # 22.00 - 3.30
    }

    # Settlement: fees collected from sellers, credits paid, then the payouts.
    invoice_transfers = sorted(
        (t["metadata"]["miraklId"], t["amount"], t["currency"], t["sandbox_account"])
        for t in sandbox.transfers()
        if t["metadata"]["miraklId"].startswith("900")
    )
    assert invoice_transfers == [
        ("9001", 500, "eur", "acct_demo_lumiere"),  # extra invoices, seller → platform
        ("9001", 999, "eur", "acct_demo_lumiere"),  # subscription, seller → platform
        ("9001", 1000, "eur", None),  # extra credits, platform → seller
        ("9002", 1999, "eur", "acct_demo_bois"),
        ("9003", 500, "jpy", "acct_demo_tokyo"),
        ("9003", 1500, "jpy", "acct_demo_tokyo"),
        ("9004", 999, "eur", "acct_demo_berlin"),
    ]
    payouts = sorted((p["amount"], p["currency"], p["sandbox_account"]) for p in sandbox.payouts())
    assert payouts == [
        (15025, "eur", "acct_demo_lumiere"),
        (32000, "eur", "acct_demo_bois"),
    ]
    held = ledger.get_payouts(["9004"])["9004"]
    assert (held.status, held.status_reason) == (
        PayoutStatus.ON_HOLD,
        "Payouts are disabled for shop ID 7",
    )
    # The demo's approval gate: 9003's 48,000 JPY is above approval.payout_above (40,000 JPY).
    awaiting_payout = ledger.get_payouts(["9003"])["9003"]
    assert (awaiting_payout.status, awaiting_payout.status_reason) == (
        PayoutStatus.ON_HOLD,
        "awaiting approval: 48000 JPY is above approval.payout_above 40000 JPY",
    )

    # Invoice 9101 (and every Hyperwallet invoice) is paid once, by Hyperwallet only: the Stripe
    # settlement refused it by the rule, and the claim binds it to Hyperwallet.
    hw_admin = HyperwalletSandboxAdmin(sandbox.url)
    hw_paid = [p["clientPaymentId"] for p in hw_admin.payments()]
    hw_admin.close()
    assert sorted(hw_paid) == [
        "9101", "9101-operatorFee", "9102", "9102-operatorFee", "9103", "9104",
    ]  # fmt: skip
    stripe_ids = {t["metadata"]["miraklId"] for t in sandbox.transfers()}
    payout_ids = {p["metadata"]["invoiceId"] for p in sandbox.payouts()}
    assert payout_ids == {"9001", "9002"}  # 9003 awaits approval
    stripe_ids |= payout_ids
    assert not stripe_ids & {"9101", "9102", "9103", "9104", "9108"}
    refused = ledger.get_payouts(["9101"])["9101"]
    assert (refused.status, refused.status_reason) == (
        PayoutStatus.ABORTED,
        "Shop 101 is paid by Hyperwallet, not Stripe (shop field hw-program is set)",
    )
    claims = find_claims(ledger, ClaimKind.INVOICE, ["9001", "9002", "9003", "9101", "9102"])
    assert {i: c.provider for i, c in claims.items()} == {
        "9001": "stripe", "9002": "stripe", "9003": "stripe",
        "9101": "hyperwallet", "9102": "hyperwallet",
    }  # fmt: skip
    assert first["seller_settlement.plan"]["counts"]["PAYOUT_ABORTED"] == 5  # 9101-9104, 9108
    assert first["hyperwallet_invoice_payments.pay"]["counts"] == {
        "PAID": 6,
        "REFUSED": 1,  # 9103-operatorFee: negative commission
        "SKIPPED": 5,  # 9001-9004: Stripe shops (no hw-program); 9108: ignored program
    }

    # Nothing failed; the daily alert names what needs a human on either provider: the refused
    # operator commission and the item in a Hyperwallet retry queue.
    assert first["failed_operations.alert"]["counts"] == {
        "OPERATOR_FEE_REFUSED": 1, "RETRY_QUEUED": 1,
    }  # fmt: skip
    subjects = [m["Subject"] for m in inbox.messages]
    assert subjects == ["[Mirakl connector] KYC required", "[Mirakl connector] Failed operations"]
    alert_body = inbox.messages[1].get_body().get_content()
    assert "9103-operatorFee" in alert_body and "Retry queues" in alert_body

    after_first = moved(sandbox)
    assert after_first == {
        "transfers": 19, "reversals": 3, "refunds": 3, "payouts": 2, "accounts": 9,
    }  # fmt: skip
    stripe_writes = len(sandbox.stripe_requests(method="POST"))
    mirakl_writes = {e: len(sandbox.mirakl_calls(e)) for e in ("PA01", "PA02", "SPA02", "S07")}

    second = run_pass("second")

    assert moved(sandbox) == after_first
    # Not even a replay, but for the transfer in doubt: asked again with its key, every answer
    # lost again (the fault stays until a person resolves it on the console).
    replays = sandbox.stripe_requests(method="POST")[stripe_writes:]
    assert replays and {(r["idempotency_key"], r["fault"]) for r in replays} == {
        (in_doubt.idempotency_key, "error")
    }
    assert {e: len(sandbox.mirakl_calls(e)) for e in mirakl_writes} == mirakl_writes
    kyc = [m for m in inbox.messages if m["Subject"] == "[Mirakl connector] KYC required"]
    assert len(kyc) == 1  # the same KYC problems are not e-mailed again
    assert {k: s["failed_total"] for k, s in second.items() if s["failed_total"]} == {
        "payment_split.execute": 1  # still in doubt
    }
    assert second["payment_split.plan"]["counts"] == {"TRANSFER_ON_HOLD": 4}
    assert second["seller_settlement.plan"]["counts"] == {"PAYOUT_ON_HOLD": 2}  # 9004, 9003


def test_finished_onboarding_releases_the_held_transfer(demo, sandbox):
    """The demo's KYC story: the seller completes onboarding, the next runs pay the order."""
    ledger, run_pass = demo
    run_pass("first")
    assert "ORD-1017-A" not in by_mirakl_id(sandbox.transfers())

    # What the seller's click on the onboarding link does in the sandbox.
    response = requests.get(f"{sandbox.url}/_sandbox/onboarding/acct_demo_berlin", timeout=5)
    assert response.status_code == 200

    run_pass("second")

    transfer = by_mirakl_id(sandbox.transfers())["ORD-1017-A"]
    assert (transfer["amount"], transfer["destination"]) == (6344, "acct_demo_berlin")
    assert ledger.account_mappings_by_shop([7])[7].kyc_status == "APPROVED"


def test_approved_payout_is_paid_once_by_the_next_run(demo, sandbox):
    """The demo's approval story: 9003's payout waits; approved as the console does it, the
    next settlement pays it once, and a later pass sends nothing more."""
    ledger, run_pass = demo
    run_pass("first")
    row = ledger.get_payouts(["9003"])["9003"]
    assert row.status is PayoutStatus.ON_HOLD
    assert not [p for p in sandbox.payouts() if p["sandbox_account"] == "acct_demo_tokyo"]

    record_decision(
        ledger,
        entity="payout",
        row_id=row.id,
        decision=Decision.APPROVED,
        seen={"amount": 48000, "currency": "JPY", "destination": "acct_demo_tokyo"},
        by="alice",
        why="checked with the seller",
    )
    run_pass("second")
    run_pass("third")

    [paid] = [p for p in sandbox.payouts() if p["sandbox_account"] == "acct_demo_tokyo"]
    assert (paid["amount"], paid["currency"], paid["metadata"]["invoiceId"]) == (
        48000,
        "jpy",
        "9003",
    )
    saved = ledger.get_payouts(["9003"])["9003"]
    assert (saved.status, saved.payout_id) == (PayoutStatus.CREATED, paid["id"])


def test_partial_capture_leaves_the_captured_amount_transferable(sandbox, stripe_gateway):
    """Sandbox: a partially captured charge funds transfers up to its captured amount; a refund
    does not reduce that (the refunded share is reversed from the seller afterwards)."""
    sandbox.load(
        {
            "stripe": {
                "accounts": [{"id": "acct_s", "type": "express"}],
                "charges": [
                    {"id": "ch_auth", "amount": 10000, "currency": "eur", "captured": False,
                     "amount_captured": 0}
                ],
            }
        }
    )  # fmt: skip
    stripe_gateway.capture_payment("ch_auth", amount=6000, currency="EUR", idempotency_key="cap")
    charge = next(c for c in sandbox.charges() if c["id"] == "ch_auth")
    assert (charge["amount_captured"], charge["amount_refunded"]) == (6000, 4000)

    def transfer(amount: int, key: str) -> Any:
        return stripe_gateway.create_transfer(
            amount=amount,
            currency="EUR",
            destination="acct_s",
            source_transaction="ch_auth",
            metadata={"miraklId": key},
            idempotency_key=key,
        )

    transfer(5000, "t1")
    stripe_gateway.create_refund(
        payment_id="ch_auth",
        amount=500,
        currency="EUR",
        idempotency_key="r1",
        metadata={"miraklRefundId": "r1"},
    )
    with pytest.raises(PaymentProviderError, match="exceeds the available amount"):
        transfer(1001, "t2")  # 6000 captured - 5000 transferred = 1000 left
    transfer(1000, "t3")
