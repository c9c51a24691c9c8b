"""Seller extract against the sandbox with the real Mirakl and Hyperwallet clients."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from mirakl_connector.hyperwallet.programs import HyperwalletSettings
from mirakl_connector.hyperwallet.seller_sync import SellerExtract, SellerExtractSettings
from mirakl_connector.ledger import Ledger

BATCH_LOGGER = "mirakl_connector.hyperwallet.batch"


@pytest.fixture
def ledger(tmp_path):
    with Ledger(Ledger.default_sqlite_url(tmp_path)) as ledger:
        yield ledger


def job(mirakl, hyperwallet, ledger, config, *, mailer=None, now=None):
    return SellerExtract(
        mirakl=mirakl,
        hyperwallet=hyperwallet,
        ledger=ledger,
        settings=HyperwalletSettings.from_config(config),
        seller_settings=SellerExtractSettings(),
        mailer=mailer,
        email_to=config["alerts"]["email_to"],
        now=now,
    )


def users_by_client_id(hw_admin):
    return {u["clientUserId"]: u for u in hw_admin.users()}


def test_creates_individual_and_business_users_writes_tokens_and_skips_with_reasons(
    sandbox, hw_admin, mirakl, hyperwallet, ledger, connector_config, shop_factory, shop_fields,
    caplog,
):  # fmt: skip
    sandbox.put_shops(
        [
            shop_factory(1),
            shop_factory(2, professional=True, fields={"hw-business-type": "CORPORATION"}),
            shop_factory(3, shop_state="TERMINATED"),
            shop_factory(4, program=None),
            shop_factory(5, program="OTHER"),
            shop_factory(6, consent=False),
            shop_factory(7, program="ASIA"),
        ]
    )
    caplog.set_level(logging.INFO, logger=BATCH_LOGGER)
    summary = job(mirakl, hyperwallet, ledger, connector_config).sync().to_dict()

    assert summary["counts"] == {
        "CREATED": 2, "FAILED": 1, "SKIPPED_IGNORED_PROGRAM": 1, "SKIPPED_NO_CONSENT": 1,
        "SKIPPED_NO_PROGRAM": 1, "SKIPPED_TERMINATED": 1,
    }  # fmt: skip
    assert summary["failed"] == [
        {"id": "7", "reason": "invalid data: hw-program 'ASIA' is not a configured Hyperwallet "
                              "program (known: EUROPE, OTHER)"}
    ]  # fmt: skip
    users = users_by_client_id(hw_admin)
    assert set(users) == {"1", "2"}
    assert (
        users["1"]["profileType"] == "INDIVIDUAL" and users["1"]["programToken"] == "prg-users-eu"
    )
    assert users["2"]["profileType"] == "BUSINESS"
    assert (users["2"]["businessName"], users["2"]["businessOperatingName"]) == (
        "Shop 2", "Company 2 SL",
    )  # fmt: skip
    tokens = {s["shop_id"]: shop_fields(s).get("hw-user-token") for s in sandbox.shops()}
    assert tokens[1] == users["1"]["token"] and tokens[2] == users["2"]["token"]
    assert all(tokens[i] is None for i in (3, 4, 5, 6, 7))
    assert [i.item_id for i in ledger.pending_items("hyperwallet_seller_extract")] == ["7"]
    lines = [r.getMessage() for r in caplog.records if r.name == BATCH_LOGGER]
    assert "[BATCHJOB] Shops retrieved [1,3,4,5,6,7]" in lines
    assert "[BATCHJOB] Shops retrieved [2]" in lines
    assert "[BATCHJOB] Retrieved the following number of items to be processed: 7" in lines
    assert "[BATCHJOBITEM] Processing item of type ProfessionalSeller with id: 2" in lines
    assert "[BATCHJOBITEM] Seller created for seller with clientUserId [1]" in lines
    assert "[BATCHJOBITEM] Failed processing item of type IndividualSeller with id: 7" in lines
    assert (
        "[BATCHJOBITEM] 6 items processed successfully. 1 items failed. 0 items remaining" in lines
    )


def test_rerun_updates_and_a_lost_token_is_found_by_client_user_id(
    sandbox, hw_admin, mirakl, hyperwallet, ledger, connector_config, shop_factory, shop_fields
):
    sandbox.put_shops([shop_factory(1), shop_factory(2)])
    extract = job(mirakl, hyperwallet, ledger, connector_config)
    assert extract.sync().counts == {"CREATED": 2}
    # A crash after POST /users, before S07: the user exists, the shop has no token.
    sandbox.put_shops([shop_factory(2, updated="2026-12-01T00:00:00Z")])
    hw_admin.clear_calls()
    summary = extract.sync(since=datetime(2026, 1, 1, tzinfo=UTC))
    assert summary.counts == {"UPDATED": 2}
    assert len(hw_admin.users()) == 2  # never a second user
    assert [
        c["method"] for c in hw_admin.calls(path="/rest/v4/users") if c["method"] == "POST"
    ] == []
    shop2 = next(s for s in sandbox.shops() if s["shop_id"] == 2)
    assert shop_fields(shop2)["hw-user-token"] == users_by_client_id(hw_admin)["2"]["token"]
    assert "found by clientUserId" in next(
        r for (status, r) in summary.reasons if status == "UPDATED" and "found" in r
    )


def test_dry_run_writes_nothing(
    sandbox, hw_admin, mirakl, hyperwallet, ledger, connector_config, shop_factory
):
    sandbox.put_shops([shop_factory(1)])
    summary = job(mirakl, hyperwallet, ledger, connector_config).sync(dry_run=True)
    assert summary.counts == {"WOULD_CREATE": 1}
    assert hw_admin.users() == [] and sandbox.mirakl_calls("S07") == []
    assert ledger.get_checkpoint("hyperwallet_seller_extract_window_start") is None


def test_window_moves_to_the_run_start_only_when_shops_were_read(
    sandbox, hw_admin, mirakl, hyperwallet, ledger, connector_config, shop_factory
):
    key = "hyperwallet_seller_extract_window_start"
    first = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    sandbox.put_shops([shop_factory(1, updated="2026-11-19T00:00:00Z")])
    job(mirakl, hyperwallet, ledger, connector_config, now=lambda: first).sync()
    assert ledger.get_checkpoint(key) == first.isoformat()
    # the next run asks S20 for shops updated since the previous start
    sandbox.clear_mirakl_calls()
    later = first + timedelta(days=1)
    assert job(mirakl, hyperwallet, ledger, connector_config, now=lambda: later).sync().total == 1
    assert sandbox.mirakl_calls("S20")[0]["query"]["updated_since"].startswith("2026-11-20T12:00")
    # (the S07 token write bumped the shop's last_updated_date: read again, harmless)
    assert ledger.get_checkpoint(key) == later.isoformat()
    # an explicit since does not move the window
    job(mirakl, hyperwallet, ledger, connector_config).sync(since=datetime(2020, 1, 1, tzinfo=UTC))
    assert ledger.get_checkpoint(key) == later.isoformat()


def test_failed_shop_is_retried_five_times_then_one_email_and_no_more(
    sandbox, hw_admin, mirakl, hyperwallet, workflow_ledger, connector_config, shop_factory,
    mailer,
):  # fmt: skip
    # Mirakl refuses the token write of shop 9 for good; shop 1 is fine.
    sandbox.put_shops([shop_factory(1), shop_factory(9, sandbox_s07_error="shop is locked")])
    clock = {"now": datetime.now(UTC)}
    extract = job(mirakl, hyperwallet, workflow_ledger, connector_config, mailer=mailer,
                  now=lambda: clock["now"])  # fmt: skip
    statuses = []
    for _ in range(7):
        summary = extract.sync()
        statuses.append({o: n for o, n in summary.counts.items() if o != "UPDATED"})
        clock["now"] += timedelta(hours=3)  # every retry is due
    assert statuses[0] == {"CREATED": 1, "FAILED": 1}
    assert statuses[1:5] == [{"RETRY_PENDING": 1}] * 4
    assert statuses[5] == {"RETRIES_EXHAUSTED": 1}
    assert statuses[6] == {}  # out of retries: left alone
    [queued] = workflow_ledger.pending_items("hyperwallet_seller_extract")
    assert (queued.item_id, queued.attempts) == ("9", 6)
    assert "shop is locked" in queued.reason
    assert [m["subject"] for m in mailer.sent] == [
        "Max retry attempts reached when processing item [9]"
    ]
    assert mailer.sent[0]["to"] == ["payouts-ops@example.com"]
    assert len(hw_admin.users()) == 2  # the retries found the user, never created another
    # A manual run naming the shop processes it again, with a fresh budget.
    manual = job(mirakl, hyperwallet, workflow_ledger, connector_config).sync(shop_ids=["9"])
    assert manual.counts == {"FAILED": 1}
    [queued] = workflow_ledger.pending_items("hyperwallet_seller_extract")
    assert queued.attempts == 1


def test_hyperwallet_refusal_fails_the_shop_and_the_retry_succeeds(
    sandbox, hw_admin, mirakl, hyperwallet, ledger, connector_config, shop_factory
):
    sandbox.put_shops([shop_factory(1), shop_factory(2)])
    # One 500 on POST /users: not re-sent (it may have worked), so shop 1 fails this run.
    rule = {"target": "hyperwallet", "method": "POST", "path": "/rest/v4/users", "times": 1,
            "action": "error"}  # fmt: skip
    sandbox.set_faults({"rules": [rule]})
    extract = job(mirakl, hyperwallet, ledger, connector_config,
                  now=lambda: datetime.now(UTC) + timedelta(hours=1))  # fmt: skip
    summary = extract.sync()
    assert summary.counts == {"CREATED": 1, "FAILED": 1}
    assert "HTTP 500" in summary.failed[0]["reason"]
    assert extract.retry().counts == {"CREATED": 1}
    assert ledger.pending_items("hyperwallet_seller_extract") == []
    assert sorted(users_by_client_id(hw_admin)) == ["1", "2"]
