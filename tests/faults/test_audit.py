"""The fault tests' audit sees each kind of problem: a blind one would let them pass on anything."""

from __future__ import annotations

from mirakl_sandbox.fault_audit import compare


def obj(object_id: str, amount: int) -> dict:
    return {"id": object_id, "amount": amount, "status": "CREATED"}


def test_a_clean_run_has_no_problem():
    audit = compare("refund", [("R1", obj("re_1", 300))], {"R1": obj("re_1", 300)}, {"R1": 300})
    assert (audit.expected, audit.found, audit.problems) == (1, 1, [])


def test_duplicates_missing_and_every_difference_are_reported():
    objects = [
        ("R1", obj("re_1", 300)),
        ("R1", obj("re_2", 300)),  # paid twice; the ledger knows one of them
        ("R2", obj("re_3", 250)),  # the wrong amount, and the ledger agrees with it
        ("R3", obj("re_4", 100)),  # the ledger says something else
        ("R9", obj("re_9", 100)),  # nothing asked for it
    ]
    rows = {
        "R1": obj("re_1", 300),
        "R2": obj("re_3", 250),
        "R3": {**obj("re_4", 100), "status": "PENDING"},
        "R4": obj("re_8", 400),  # the ledger claims an object the provider does not have
    }
    expected = {"R1": 300, "R2": 200, "R3": 100, "R4": 400, "R5": 500}

    audit = compare("refund", objects, rows, expected)

    assert audit.found == 5
    assert audit.duplicates == {"R1": 2}
    assert audit.missing == ["R4", "R5"]
    assert [line.split(":")[0] for line in audit.mismatches] == ["R2", "R3", "R9", "R4"]
    assert "amount [250] instead of 200" in audit.mismatches[0]
    assert len(audit.problems) == 1 + 2 + 4
