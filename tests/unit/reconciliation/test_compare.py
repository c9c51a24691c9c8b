"""The reconciliation's comparison, on plain values: each kind, and each provider's unit."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mirakl_connector.reconciliation.compare import (
    Kind,
    LedgerEntry,
    MiraklAmount,
    ProviderObject,
    Unit,
    from_provider_unit,
    reconcile,
    to_provider_unit,
)


def entry(
    row_id: int = 1,
    *,
    provider_id: str | None = "tr_1",
    amount: int | None = 1234,
    owed: int | None = None,
    currency: str = "EUR",
    unit: Unit = Unit.STRIPE_TRANSFER,
    mirakl_id: str = "ORD-1-A",
    entity: str = "transfer",
) -> LedgerEntry:
    return LedgerEntry(
        entity=entity,
        row_id=row_id,
        item=f"TRANSFER_PRODUCT_ORDER {mirakl_id}",
        mirakl_id=mirakl_id,
        unit=unit,
        provider_id=provider_id,
        match_key=f"TRANSFER_PRODUCT_ORDER:{mirakl_id}",
        amount=amount,
        owed=amount if owed is None else owed,
        currency=currency,
    )


def obj(
    object_id: str = "tr_1",
    amount: int | Decimal = 1234,
    currency: str = "EUR",
    *,
    unit: Unit = Unit.STRIPE_TRANSFER,
    key: str | None = "TRANSFER_PRODUCT_ORDER:ORD-1-A",
    live: bool = True,
) -> ProviderObject:
    return ProviderObject(object_id, unit, amount, currency, match_key=key, live=live)


def agreeing(e: LedgerEntry) -> dict:
    return {e.key: MiraklAmount("order ORD-1-A", e.owed, e.currency)}


def kinds(items) -> list[str]:
    return [str(i.kind) for i in items]


def test_ledger_provider_and_mirakl_agree():
    e = entry()
    [item] = reconcile([e], [obj()], agreeing(e))
    assert item.kind is Kind.MATCHED and not item.is_mismatch
    assert (item.ledger_amount, item.provider_amount, item.mirakl_amount) == (1234, 1234, 1234)
    assert item.provider_object_id == "tr_1" and item.row_id == 1
    assert "12.34 EUR" in item.reason and "Mirakl order ORD-1-A agrees" in item.reason


def test_an_object_the_provider_list_does_not_hold_is_missing_at_provider():
    e = entry(provider_id="tr_9")
    [item] = reconcile([e], [obj()], agreeing(e), known_provider_ids={"tr_1"})
    assert item.kind is Kind.MISSING_AT_PROVIDER
    assert item.provider_object_id == "tr_9"
    assert "tr_9" in item.reason and "12.34 EUR" in item.reason


def test_a_row_whose_mirakl_document_is_gone_is_missing_in_mirakl():
    e = entry()
    [item] = reconcile([e], [obj()], {e.key: None})
    assert item.kind is Kind.MISSING_IN_MIRAKL
    assert "ORD-1-A" in item.reason


def test_an_object_of_ours_the_ledger_does_not_know_is_missing_in_ledger():
    stray = obj("tr_2", 500, key="TRANSFER_PRODUCT_ORDER:ORD-7-A")
    [item] = reconcile([], [stray], {})
    assert item.kind is Kind.MISSING_IN_LEDGER
    assert item.provider_object_id == "tr_2" and item.mirakl_id == "ORD-7-A"
    assert item.provider_amount == 500 and item.entity is None
    assert "tr_2" in item.reason and "5.00 EUR" in item.reason


def test_objects_not_ours_dead_or_known_elsewhere_are_not_reported():
    objects = [
        obj("tr_x", key=None),  # no connector metadata: someone else's transfer
        obj("po_1", unit=Unit.STRIPE_PAYOUT, key="payout:9001", live=False),  # failed payout
        obj("tr_3", key="TRANSFER_PRODUCT_ORDER:ORD-3-A"),  # another run's row holds it
    ]
    assert reconcile([], objects, {}, known_provider_ids={"tr_3"}) == []


def test_a_second_object_for_one_document_is_reported_with_the_row_the_ledger_has():
    e = entry()
    duplicate = obj("tr_2")
    items = reconcile([e], [obj(), duplicate], agreeing(e))
    assert sorted(kinds(items)) == ["MATCHED", "MISSING_IN_LEDGER"]
    second = next(i for i in items if i.kind is Kind.MISSING_IN_LEDGER)
    assert second.provider_object_id == "tr_2" and second.row_id == 1
    assert "tr_1" in second.reason and "second object" in second.reason


def test_a_row_in_doubt_whose_object_exists_is_missing_in_ledger():
    e = entry(provider_id=None)
    [item] = reconcile([e], [obj("tr_5")], agreeing(e))
    assert item.kind is Kind.MISSING_IN_LEDGER
    assert item.provider_object_id == "tr_5" and item.row_id == 1
    assert "no provider id" in item.reason


def test_a_row_in_doubt_with_nothing_at_the_provider_is_not_a_finding():
    e = entry(provider_id=None)
    assert reconcile([e], [], agreeing(e)) == []


def test_amounts_that_differ_at_the_provider():
    e = entry()
    [item] = reconcile([e], [obj(amount=1230)], agreeing(e))
    assert item.kind is Kind.AMOUNT_MISMATCH
    assert (item.ledger_amount, item.provider_amount, item.provider_amount_raw) == (
        1234,
        1230,
        "1230",
    )
    assert "TRANSFER_PRODUCT_ORDER ORD-1-A" in item.reason and "tr_1" in item.reason
    assert "12.34 EUR" in item.reason and "12.30 EUR" in item.reason


def test_amounts_that_differ_in_mirakl_and_residues_owed():
    # Stripe moved 9.120 KWD; 0.005 stayed as the residue: the ledger owes 9.125, like Mirakl
    e = entry(amount=9120, owed=9125, currency="KWD")
    ok = {e.key: MiraklAmount("order ORD-1-A", 9125, "KWD")}
    assert kinds(reconcile([e], [obj(amount=9120, currency="kwd")], ok)) == ["MATCHED"]
    changed = {e.key: MiraklAmount("order ORD-1-A", 9500, "KWD")}
    [item] = reconcile([e], [obj(amount=9120, currency="KWD")], changed)
    assert item.kind is Kind.AMOUNT_MISMATCH and item.mirakl_amount == 9500
    assert "9.125 KWD" in item.reason and "9.500 KWD" in item.reason


def test_an_unreadable_mirakl_document_is_reported_with_its_reason():
    e = entry()
    bad = {e.key: MiraklAmount("order ORD-1-A", problem="total_price is missing")}
    [item] = reconcile([e], [obj()], bad)
    assert item.kind is Kind.AMOUNT_MISMATCH and "total_price is missing" in item.reason


def test_currencies_that_differ():
    e = entry()
    [item] = reconcile([e], [obj(currency="usd")], agreeing(e))
    assert item.kind is Kind.CURRENCY_MISMATCH and "EUR" in item.reason and "USD" in item.reason
    [item] = reconcile([e], [obj()], {e.key: MiraklAmount("order ORD-1-A", 1234, "GBP")})
    assert item.kind is Kind.CURRENCY_MISMATCH and "GBP" in item.reason


def test_several_findings_for_one_row_are_all_reported():
    e = entry()
    items = reconcile([e], [obj(amount=1)], {e.key: None})
    assert sorted(kinds(items)) == ["AMOUNT_MISMATCH", "MISSING_IN_MIRAKL"]


@pytest.mark.parametrize(
    ("currency", "unit", "ledger", "stripe"),
    [
        ("EUR", Unit.STRIPE_TRANSFER, 1234, 1234),
        ("JPY", Unit.STRIPE_TRANSFER, 1500, 1500),
        # MGA has 2 decimals in ISO 4217 and none at Stripe: 1,200.00 MGA is 1200
        ("MGA", Unit.STRIPE_TRANSFER, 120000, 1200),
        # ISK has none in ISO 4217, Stripe takes it with two: 5 ISK is 500
        ("ISK", Unit.STRIPE_REFUND, 5, 500),
        ("KWD", Unit.STRIPE_REVERSAL, 9120, 9120),
        # HUF payouts in whole forints, two-decimal form: 1,234.00 HUF is 123400
        ("HUF", Unit.STRIPE_PAYOUT, 123400, 123400),
        # UGX payouts keep the legacy two-decimal form: 1,000 UGX is 100000
        ("UGX", Unit.STRIPE_PAYOUT, 1000, 100000),
        ("UGX", Unit.STRIPE_TRANSFER, 1000, 1000),
    ],
)
def test_amounts_are_compared_in_stripes_unit(currency, unit, ledger, stripe):
    assert to_provider_unit(ledger, currency, unit) == stripe
    assert from_provider_unit(stripe, currency, unit) == ledger
    e = entry(amount=ledger, currency=currency, unit=unit)
    matched = reconcile([e], [obj(amount=stripe, currency=currency.lower(), unit=unit)], {})
    assert kinds(matched) == ["MATCHED"]
    if stripe != ledger:  # the ISO figure sent as is would be wrong by the unit's factor
        wrong = reconcile([e], [obj(amount=ledger, currency=currency, unit=unit)], {})
        assert kinds(wrong) == ["AMOUNT_MISMATCH"]


@pytest.mark.parametrize(
    ("currency", "unit", "ledger"),
    [
        ("KWD", Unit.STRIPE_TRANSFER, 9125),  # three decimals must end in 0 at Stripe
        ("HUF", Unit.STRIPE_PAYOUT, 123456),  # payouts in whole forints only
        ("MGA", Unit.STRIPE_TRANSFER, 120050),  # 1,200.50 MGA: Stripe has no decimals
        ("IRR", Unit.STRIPE_TRANSFER, 100),  # not a Stripe currency
    ],
)
def test_a_ledger_amount_stripe_cannot_express_is_a_mismatch(currency, unit, ledger):
    assert to_provider_unit(ledger, currency, unit) is None
    e = entry(amount=ledger, currency=currency, unit=unit)
    [item] = reconcile([e], [obj(amount=ledger, currency=currency, unit=unit)], {})
    assert item.kind is Kind.AMOUNT_MISMATCH and "not expressible" in item.reason


def test_hyperwallet_amounts_are_decimals_in_major_units():
    e = entry(provider_id="pmt-1", unit=Unit.HYPERWALLET, amount=1234)
    payment = obj("pmt-1", Decimal("12.34"), unit=Unit.HYPERWALLET)
    assert kinds(reconcile([e], [payment], {})) == ["MATCHED"]
    yen = entry(provider_id="pmt-2", unit=Unit.HYPERWALLET, amount=1500, currency="JPY")
    assert kinds(reconcile([yen], [obj("pmt-2", Decimal("1500"), "JPY", unit=Unit.HYPERWALLET)],
                           {})) == ["MATCHED"]  # fmt: skip
    same = obj("pmt-1", Decimal("12.340"), unit=Unit.HYPERWALLET)  # the same number
    assert kinds(reconcile([e], [same], {})) == ["MATCHED"]
    [item] = reconcile([e], [obj("pmt-1", Decimal("12.3"), unit=Unit.HYPERWALLET)], {})
    assert item.kind is Kind.AMOUNT_MISMATCH
    assert "12.34 EUR" in item.reason and "12.3 in Hyperwallet's decimal amount" in item.reason
