"""Issue 16 pt 1: business stakeholders through the seller extract DAG, against the sandbox.

A professional shop's ``hw-stakeholder-<attr>-<n>`` blocks become Hyperwallet business
stakeholders (as the PayPal connector's ``BusinessStakeholdersExtractBatchJob`` makes them) and
their tokens are written back to
``hw-stakeholder-token-<n>``; a rerun creates none again; bad stakeholder data fails that shop
with its reason and the other shops go on.
"""

from __future__ import annotations

import pytest

from tests.integration.hyperwallet_extract.test_extract_dags import (
    airflow_env as airflow_env,  # the fixture: connections and Variable of the DAG runs
)
from tests.integration.hyperwallet_extract.test_extract_dags import run_dag

pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.usefixtures("airflow_env")]

TASKS = ["extract_sellers", "report"]


def stakeholder_fields(n: int, first: str, email: str | None, **extra: str) -> dict[str, str]:
    fields = {
        f"hw-stakeholder-first-name-{n}": first,
        f"hw-stakeholder-last-name-{n}": "Garcia",
        f"hw-stakeholder-director-{n}": "true",
        f"hw-stakeholder-business-contact-{n}": "false",
        f"hw-stakeholder-dob-{n}": "1990-10-10T08:00:00Z",
        f"hw-stakeholder-nationality-{n}": "ESP",
        f"hw-stakeholder-gender-{n}": "FEMALE",
        f"hw-stakeholder-government-id-type-{n}": "PASSPORT",
    }
    if email:
        fields[f"hw-stakeholder-email-{n}"] = email
    fields.update(extra)
    return fields


def stakeholders(hw_admin):
    return hw_admin.state()["stakeholders"]


def test_professional_seller_gets_its_stakeholders_and_tokens_once(
    sandbox, hw_admin, shop_factory, shop_fields
):
    pro_fields = {
        **stakeholder_fields(1, "Angela", "angela@example.com"),
        **stakeholder_fields(2, "Bruno", None),
        # an empty block is ignored, as the PayPal connector does
        "hw-stakeholder-first-name-3": None,
    }
    sandbox.put_shops(
        [
            shop_factory(1),
            shop_factory(2, professional=True, fields=pro_fields),
            shop_factory(
                3, professional=True, fields={**stakeholder_fields(1, "Carla", "c@example.com"),
                                             "hw-stakeholder-shoe-size-1": "42"},
            ),
            shop_factory(
                4, professional=True,
                fields=stakeholder_fields(1, "Dora", "d@example.com",
                                          **{"hw-stakeholder-gender-1": "OTHER"}),
            ),
        ]
    )  # fmt: skip
    run, xcoms = run_dag("hyperwallet_seller_extract", TASKS)

    assert run.state == "failed"  # the report fails the run: shops 3 and 4 failed
    summary = xcoms["extract_sellers"]
    assert summary["counts"] == {"CREATED": 2, "FAILED": 2}
    reasons = {f["id"]: f["reason"] for f in summary["failed"]}
    assert reasons == {
        "3": "invalid data: hw-stakeholder-shoe-size-1: unknown stakeholder attribute 'shoe-size'",
        "4": "invalid data: hw-stakeholder-gender-1 'OTHER' is not one of FEMALE, MALE",
    }
    users = {u["clientUserId"]: u for u in hw_admin.users()}
    assert set(users) == {"1", "2"}  # bad data is refused before any write
    created = stakeholders(hw_admin)
    assert sorted(s["firstName"] for s in created) == ["Angela", "Bruno"]
    assert {s["userToken"] for s in created} == {users["2"]["token"]}
    angela = next(s for s in created if s["firstName"] == "Angela")
    assert angela["profileType"] == "INDIVIDUAL"
    assert (angela["isDirector"], angela["isBusinessContact"]) == (True, False)
    assert (angela["dateOfBirth"], angela["countryOfNationality"]) == ("1990-10-10", "ES")
    assert (angela["gender"], angela["governmentIdType"]) == ("FEMALE", "PASSPORT")
    fields = {s["shop_id"]: shop_fields(s) for s in sandbox.shops()}
    by_name = {s["firstName"]: s["token"] for s in created}
    assert fields[2]["hw-stakeholder-token-1"] == by_name["Angela"]
    assert fields[2]["hw-stakeholder-token-2"] == by_name["Bruno"]
    assert "hw-stakeholder-token-3" not in fields[2]
    assert not any(k.startswith("hw-stakeholder-token") for k in fields[1])

    # Rerun (the window overlaps): the shop has its tokens, stakeholders are PUT, none created.
    hw_admin.clear_calls()
    run_dag("hyperwallet_seller_extract", TASKS, shop_ids=["2"])
    assert len(stakeholders(hw_admin)) == 2
    posts = hw_admin.calls(path=f"/rest/v4/users/{users['2']['token']}/business-stakeholders",
                           method="POST")  # fmt: skip
    assert posts == []
    puts = [c for c in hw_admin.calls(method="PUT") if "/business-stakeholders/" in c["path"]]
    assert sorted(c["path"].rsplit("/", 1)[1] for c in puts) == sorted(by_name.values())


def test_a_crash_before_the_token_write_back_is_healed_without_a_second_stakeholder(
    sandbox, hw_admin, shop_factory, shop_fields
):
    fields = {**stakeholder_fields(1, "Angela", "angela@example.com"),
              **stakeholder_fields(2, "Bruno", None)}  # fmt: skip
    sandbox.put_shops([shop_factory(2, professional=True, fields=fields)])
    run_dag("hyperwallet_seller_extract", TASKS)
    first = {s["firstName"]: s["token"] for s in stakeholders(hw_admin)}
    # As if the S07 of the tokens had been lost: Mirakl has the user token, no stakeholder token.
    shop = next(s for s in sandbox.shops() if s["shop_id"] == 2)
    shop["shop_additional_fields"] = [
        f
        for f in shop["shop_additional_fields"]
        if not f["code"].startswith("hw-stakeholder-token")
    ]
    sandbox.put_shops([shop])

    run, xcoms = run_dag("hyperwallet_seller_extract", TASKS, shop_ids=["2"])

    assert run.state == "success"
    assert xcoms["extract_sellers"]["counts"] == {"UPDATED": 1}
    assert {s["firstName"]: s["token"] for s in stakeholders(hw_admin)} == first
    written = shop_fields(next(s for s in sandbox.shops() if s["shop_id"] == 2))
    assert written["hw-stakeholder-token-1"] == first["Angela"]  # matched by e-mail
    assert written["hw-stakeholder-token-2"] == first["Bruno"]  # by name and date of birth
