"""Reconciliation results in a ledger, as the reconcile steps write them (console tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger import reconciliation as store

NOW = datetime.now(UTC)
TODAY = NOW.date()
YESTERDAY = TODAY - timedelta(days=1)
RUN = "scheduled__split_1"


def _item(kind: str, item: str, reason: str, **fields) -> dict:
    return {"kind": kind, "item": item, "provider": "stripe", "reason": reason, **fields}


def fill_reconciliation(ledger: Ledger) -> dict[str, int]:
    """A split run today with one match and one mismatch; yesterday's day, clean (JPY)."""
    ids = {}
    ids["run"] = store.save_reconciliation(
        ledger,
        store.ReconciliationHeader(
            flow="payment_split", scope=store.SCOPE_RUN, scope_key=RUN, run_id=RUN,
            day=TODAY.isoformat(), reconciled_at=NOW, window_start=NOW - timedelta(hours=1),
            window_end=NOW, matched=1, mismatched=1, provider_calls=1, mirakl_calls=1,
            note="Does not reconcile: payment_split of this run has 1 mismatch(es)",
        ),
        [
            _item("MATCHED", "TRANSFER_PRODUCT_ORDER ORD-1-A", "12.34 EUR = Stripe tr_1",
                  entity="transfer", row_id=1, mirakl_id="ORD-1-A", provider_object_id="tr_1",
                  currency="EUR", ledger_amount=1234, provider_amount=1234,
                  provider_amount_raw="1234", mirakl_amount=1234),
            _item("AMOUNT_MISMATCH", "TRANSFER_PRODUCT_ORDER ORD-2-A",
                  "=HYPERLINK(ledger 10.00 EUR, Stripe tr_2 9.99 EUR)",
                  entity="transfer", row_id=2, mirakl_id="ORD-2-A", provider_object_id="tr_2",
                  currency="EUR", ledger_amount=1000, provider_amount=999,
                  provider_amount_raw="999", mirakl_amount=1000),
        ],
    )  # fmt: skip
    ids["day"] = store.save_reconciliation(
        ledger,
        store.ReconciliationHeader(
            flow="payment_split", scope=store.SCOPE_DAY, scope_key=YESTERDAY.isoformat(),
            run_id=None, day=YESTERDAY.isoformat(), reconciled_at=NOW, window_start=None,
            window_end=None, matched=1, mismatched=0, provider_calls=1, mirakl_calls=1,
            note="Reconciles: payment_split of this day: 1 ledger row(s) agree",
        ),
        [_item("MATCHED", "TRANSFER_PRODUCT_ORDER ORD-3-A", "1500 JPY = Stripe tr_3",
               entity="transfer", row_id=3, mirakl_id="ORD-3-A", provider_object_id="tr_3",
               currency="JPY", ledger_amount=1500, provider_amount=1500,
               provider_amount_raw="1500", mirakl_amount=1500)],
    )  # fmt: skip
    return ids
