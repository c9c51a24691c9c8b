"""What each flow reads (stand-in clients record their calls); how rows become entries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from mirakl_connector.ledger.records import (
    HyperwalletPayment,
    HyperwalletPaymentKind,
    PayoutRecord,
    PayoutStatus,
    RefundRecord,
    TransferRecord,
    TransferStatus,
    TransferType,
)
from mirakl_connector.reconciliation import flows
from mirakl_connector.reconciliation.compare import Unit
from mirakl_connector.reconciliation.readers import Window

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
WINDOW = Window(T0, T0 + timedelta(hours=1))


class FakeStripe:
    def __init__(self, objects=None):
        self.calls: list[tuple] = []
        self.objects = objects or {}

    def iter_created_between(self, resource, *, since, until, on_account=None, filters=None):
        self.calls.append((resource, on_account, tuple(sorted((filters or {}).items()))))
        return iter(self.objects.get((resource, on_account), []))


class FakeMirakl:
    def __init__(self, orders=(), invoices=()):
        self.calls: list[tuple] = []
        self.orders, self.invoices = list(orders), list(invoices)

    def iter_orders(self, *, order_ids):
        self.calls.append(("OR11", tuple(order_ids)))
        return iter(o for o in self.orders if o["order_id"] in order_ids)

    def iter_service_orders(self, *, order_ids):
        self.calls.append(("SOR11", tuple(order_ids)))
        return iter(())

    def iter_invoices(self, *, start_date, end_date, doc_type=None):
        self.calls.append(("IV01", start_date, end_date, doc_type))
        return iter(self.invoices)


def clients(stripe=None, mirakl=None, refunds=None):
    return flows.Clients(
        stripe=lambda: stripe,
        mirakl=lambda: mirakl,
        hyperwallet=lambda: None,
        refunds=lambda ids: {i: refunds[i] for i in ids if i in (refunds or {})},
    )


def transfer(mirakl_id, **fields):
    values = {"status": TransferStatus.CREATED, "amount": 1000, "currency": "EUR",
              "attempted_at": T0, "created_at": T0, "id": 1, "transfer_id": "tr_1"}  # fmt: skip
    values.update(fields)
    return TransferRecord(fields.pop("type", TransferType.PRODUCT_ORDER), mirakl_id, **{
        k: v for k, v in values.items() if k != "type"})  # fmt: skip


def test_rows_become_entries_only_when_they_hold_or_may_hold_an_object():
    created = transfer("A-1", amount_residue=5)
    entry = flows.to_entry(created)
    assert (entry.entity, entry.unit, entry.provider_id, entry.owed) == (
        "transfer", Unit.STRIPE_TRANSFER, "tr_1", 1005,
    )  # fmt: skip
    assert entry.match_key == "TRANSFER_PRODUCT_ORDER:A-1"
    in_doubt = flows.to_entry(transfer("A-2", transfer_id=None))
    assert in_doubt.provider_id is None and in_doubt.match_key
    assert flows.to_entry(transfer("A-3", transfer_id=None, attempted_at=None)) is None
    reversal = flows.to_entry(transfer("R-1", type=TransferType.REFUND, transfer_id="trr_1"))
    assert (reversal.unit, reversal.match_key) == (Unit.STRIPE_REVERSAL, None)
    payout = flows.to_entry(PayoutRecord("9001", PayoutStatus.CREATED, id=3, payout_id="po_1",
                                         amount=10, currency="huf", attempted_at=T0))  # fmt: skip
    assert (payout.unit, payout.currency, payout.match_key) == (
        Unit.STRIPE_PAYOUT, "HUF", "payout:9001",
    )  # fmt: skip


def test_the_window_covers_the_first_call_and_a_found_payments_own_date():
    rows = [transfer("A-1", attempted_at=T0), transfer("A-2", attempted_at=T0 + timedelta(hours=2))]
    window = flows.provider_window(rows, since=None, until=T0 + timedelta(hours=3))
    assert window.since == T0 - flows.CLOCK_SKEW
    assert window.until == T0 + timedelta(hours=3) + flows.CLOCK_SKEW
    found = HyperwalletPayment("9001", "9001", id=4, payment_token="pmt-1", created_at=T0,
                               hw_created_on="2026-11-01T08:00:00")  # fmt: skip
    window = flows.provider_window([found], since=None, until=T0)
    assert window.since == datetime(2026, 11, 1, 8, tzinfo=UTC) - flows.CLOCK_SKEW


def test_a_run_without_objects_reads_nothing():
    stripe, mirakl = FakeStripe(), FakeMirakl()
    held = transfer("A-1", status=TransferStatus.ON_HOLD, transfer_id=None, attempted_at=None)
    inputs = flows.gather(flows.PAYMENT_SPLIT, [held], clients(stripe, mirakl), window=WINDOW,
                          tax_split=False)  # fmt: skip
    assert inputs.entries == [] and stripe.calls == [] and mirakl.calls == []


def test_the_split_reads_one_transfer_list_and_its_orders_by_id():
    stripe = FakeStripe({("transfers", None): [
        {"id": "tr_1", "amount": 1000, "currency": "eur",
         "metadata": {"miraklId": "A-1", "miraklTransferType": "TRANSFER_PRODUCT_ORDER"}},
        {"id": "tr_9", "amount": 5, "currency": "eur",  # another workflow's: left out
         "metadata": {"miraklId": "9001", "miraklTransferType": "TRANSFER_EXTRA_CREDITS"}},
    ]})  # fmt: skip
    mirakl = FakeMirakl()
    rows = [transfer("A-1"), transfer("A-1_TAX", id=2, transfer_id="tr_2")]
    inputs = flows.gather(flows.PAYMENT_SPLIT, rows, clients(stripe, mirakl), window=WINDOW,
                          tax_split=True)  # fmt: skip
    assert stripe.calls == [("transfers", None, ())]
    assert [o.object_id for o in inputs.objects] == ["tr_1"]
    assert mirakl.calls == [("OR11", ("A-1",))]  # the _TAX row's order once, by id
    assert inputs.mirakl == {("transfer", 1): None, ("transfer", 2): None}  # not in Mirakl


def test_refunds_read_the_refund_list_and_reversals_as_balance_transactions():
    stripe = FakeStripe({("balance_transactions", None): [
        {"id": "txn_1", "amount": 270, "currency": "eur", "source": "trr_1"},
    ]})  # fmt: skip
    refund = RefundRecord("R-1", id=7, stripe_refund_id="re_1", amount=300, currency="EUR",
                          mirakl_order_id="A-1", attempted_at=T0, created_at=T0)  # fmt: skip
    reversal = transfer("R-1", type=TransferType.REFUND, id=8, transfer_id="trr_1", amount=270)
    mirakl = FakeMirakl()
    both = clients(stripe, mirakl, {"R-1": refund})
    inputs = flows.gather(flows.PAYMENT_REFUND, [reversal], both, window=WINDOW, tax_split=False)
    assert stripe.calls == [
        ("refunds", None, ()),
        ("balance_transactions", None, (("type", "transfer_refund"),)),
    ]
    [obj] = inputs.objects
    assert (obj.object_id, obj.unit, obj.amount, obj.match_key) == (
        "trr_1", Unit.STRIPE_REVERSAL, 270, None,
    )  # fmt: skip
    assert mirakl.calls == [("OR11", ("A-1",))]  # the reversal's order, through its refund


def test_settlement_lists_only_the_accounts_of_its_rows_and_invoices_by_date_window():
    stripe, mirakl = FakeStripe(), FakeMirakl()
    rows = [
        transfer("9001", type=TransferType.SUBSCRIPTION, source_account="acct_s1",
                 mirakl_created_date="2026-11-20T01:00:00Z"),
        PayoutRecord("9001", PayoutStatus.CREATED, id=5, stripe_account_id="acct_s1",
                     payout_id="po_1", amount=100, currency="EUR", attempted_at=T0,
                     mirakl_created_date="2026-11-20T01:00:00Z"),
        PayoutRecord("9002", PayoutStatus.CREATED, id=6, stripe_account_id="acct_s2",
                     payout_id="po_2", amount=100, currency="EUR", attempted_at=T0,
                     mirakl_created_date="2026-11-19T01:00:00Z"),
    ]  # fmt: skip
    flows.gather(flows.SELLER_SETTLEMENT, rows, clients(stripe, mirakl), window=WINDOW,
                 tax_split=False)  # fmt: skip
    assert stripe.calls == [
        ("transfers", None, ()),
        ("transfers", "acct_s1", ()),
        ("payouts", "acct_s1", ()),
        ("payouts", "acct_s2", ()),
    ]
    [(code, start, end, doc_type)] = mirakl.calls
    assert code == "IV01" and doc_type is None
    assert start == datetime(2026, 11, 19, 1, tzinfo=UTC) - flows.DOCUMENT_MARGIN
    assert end == datetime(2026, 11, 20, 1, tzinfo=UTC) + flows.DOCUMENT_MARGIN


def test_hyperwallet_payments_by_window_dead_ones_never_missing():
    class FakeHyperwallet:
        calls: list = []

        def iter_payments(self, *, created_after, created_before):
            self.calls.append((created_after, created_before))
            return iter([
                {"token": "pmt-1", "amount": "12.34", "currency": "EUR", "status": "RETURNED",
                 "clientPaymentId": "9001"},
            ])  # fmt: skip

    hw = FakeHyperwallet()
    c = flows.Clients(stripe=lambda: None, mirakl=lambda: FakeMirakl(), hyperwallet=lambda: hw)
    row = HyperwalletPayment("9001", "9001", kind=HyperwalletPaymentKind.SELLER, id=9,
                             payment_token="pmt-1", amount=1234, currency="EUR",
                             attempted_at=T0)  # fmt: skip
    inputs = flows.gather(flows.HYPERWALLET_INVOICE_PAYMENTS, [row], c, window=WINDOW,
                          tax_split=False)  # fmt: skip
    assert hw.calls == [(WINDOW.since, WINDOW.until)]
    [obj] = inputs.objects
    assert (obj.amount, obj.live, obj.match_key) == (Decimal("12.34"), False, "hw:9001")
    assert "no Mirakl document date" in inputs.notes[0]  # not checked against Mirakl
