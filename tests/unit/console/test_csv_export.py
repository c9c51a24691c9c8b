"""The items export's fast line writer writes exactly what ``csv.writer`` writes, formulas
neutralised; and the export through the app matches the JSON API item for item."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from mirakl_connector.console.csv_export import (
    ITEM_CSV_HEADER,
    amount_text,
    item_cells,
    item_csv_chunks,
    neutralise,
)

TIME = "2026-05-01T12:34:56.000000+00:00"


def _reference(rows: list[tuple]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(ITEM_CSV_HEADER)
    writer.writerows(item_cells(row) for row in rows)
    return buffer.getvalue()


def _row(**changes) -> tuple:
    base = {
        "entity": "transfer", "id": 7, "provider": "stripe", "workflow": "split",
        "mirakl_id": "ORD-1-A", "shop_id": 2001, "account": "acct_1", "status": "TRANSFER_FAILED",
        "reason": "insufficient funds", "amount": 123456, "currency": "EUR",
        "provider_object_id": None, "attempts": 1, "attempted_at": TIME, "created_at": TIME,
        "updated_at": TIME,
    }  # fmt: skip
    assert set(changes) <= set(base), set(changes) - set(base)
    base.update(changes)
    return tuple(base.values())


def test_plain_and_awkward_lines_are_written_as_csv_writer_writes_them():
    rows = [
        _row(),
        _row(reason='Stripe said "no", twice\r\nthen again', account=None, shop_id=None),
        _row(reason='=HYPERLINK("http://x")', mirakl_id="+1", provider_object_id=None),
        _row(mirakl_id="@SUM(A1)", reason="-2+3", currency=None, amount=None, attempts=0),
        _row(amount=-5, currency="KWD", attempted_at=None, reason=""),
        _row(reason="a,b", amount=0, currency="JPY"),
        _row(reason="line\nbreak"),
        _row(reason="tab\tinside", mirakl_id="\tstarts with a tab"),
    ]
    text = "".join(item_csv_chunks(rows))
    assert text == _reference(rows)
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert parsed[0]["amount"] == "1234.56" and parsed[0]["amount_minor"] == "123456"
    assert parsed[1]["reason"] == 'Stripe said "no", twice\r\nthen again'
    assert parsed[2]["reason"] == '\'=HYPERLINK("http://x")' and parsed[2]["mirakl_id"] == "'+1"
    assert parsed[3]["mirakl_id"] == "'@SUM(A1)" and parsed[3]["reason"] == "'-2+3"
    assert parsed[3]["amount"] == "" and parsed[3]["attempts"] == "0"
    # a negative amount stays a number; KWD has 3 decimals, JPY none
    assert parsed[4]["amount"] == "-0.005" and parsed[4]["attempted_at"] == ""
    assert parsed[5]["amount"] == "0" and parsed[5]["reason"] == "a,b"
    assert parsed[7]["mirakl_id"] == "'\tstarts with a tab"
    assert datetime.fromisoformat(parsed[0]["created_at"]).utcoffset().total_seconds() == 0


_text = st.one_of(st.none(), st.text(alphabet=st.characters(codec="utf-8"), max_size=12))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(_text, st.one_of(st.none(), st.integers(-(10**15), 10**15)), _text, _text),
        max_size=5,
    )
)
def test_any_cells_are_written_as_csv_writer_writes_them(values):
    rows = [
        _row(mirakl_id=m or "M", amount=a, reason=r, account=acc, currency="EUR")
        for m, a, r, acc in values
    ]
    assert "".join(item_csv_chunks(rows)) == _reference(rows)


def test_many_lines_come_in_pieces_and_the_header_once():
    rows = [_row(id=i) for i in range(4500)]
    chunks = list(item_csv_chunks(rows))
    assert len(chunks) == 3
    assert "".join(chunks) == _reference(rows)
    assert "".join(chunks).count("entity,id,provider") == 1


def test_cells_from_outside_are_neutralised_and_amounts_are_exact():
    assert neutralise("=1+1") == "'=1+1" and neutralise("ok") == "ok" and neutralise(None) is None
    assert neutralise("") == "" and neutralise(12) == 12
    assert amount_text(10**17 + 1, "EUR") == "1000000000000000.01"
    assert amount_text(5, "XYZ") == "5" and amount_text(None, "EUR") == ""
