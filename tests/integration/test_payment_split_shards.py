"""Sharded execute: the mapped create_transfers tasks split the PENDING rows without overlap.

Several Celery workers run ``execute(shard=i, shards=n)`` at the same time; the rows of one shard
must never be sent by another, and together the shards must send every row exactly once.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC as _UTC
from datetime import datetime as _dt

import pytest

from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.core.shards import Shard, shard_plan
from mirakl_connector.ledger.records import AccountMapping, TransferStatus, TransferType
from mirakl_connector.operations.first_run import GoLive
from mirakl_connector.stripe.payment_split import PaymentSplit, PaymentSplitSettings

# concurrent shards: the inner loop leaves them out (README "Two commands")
pytestmark = pytest.mark.slow

#: Tests move money from any date: an explicit go-live instant far in the past.
TEST_GO_LIVE = GoLive(_dt(2000, 1, 1, tzinfo=_UTC))


@pytest.fixture
def generated(sandbox, mirakl, stripe_gateway, workflow_ledger):
    """60 paid orders over 5 shops, their account mappings, and a planned (PENDING) ledger."""
    sandbox.generate(orders=60, shops=5, currency="EUR", seed=3)
    for account in sandbox.accounts():
        workflow_ledger.upsert_account_mapping(
            AccountMapping(
                mirakl_shop_id=int(account["metadata"]["miraklShopId"]),
                stripe_account_id=account["id"],
                payouts_enabled=True,
                charges_enabled=True,
                kyc_status="APPROVED",
            )
        )
    split = PaymentSplit(
        mirakl=mirakl,
        stripe=stripe_gateway,
        ledger=workflow_ledger,
        go_live=TEST_GO_LIVE,
        settings=PaymentSplitSettings(),
        run_id="run-shards",
    )
    planned = split.plan()
    assert planned.counts["TRANSFER_PENDING"] == 60
    return split


def pending_ids(ledger) -> list[int]:
    rows = ledger.iter_transfers(
        types=[TransferType.PRODUCT_ORDER], statuses=[TransferStatus.PENDING]
    )
    return [r.id for batch in rows for r in batch]


def test_shards_send_every_row_exactly_once(generated, sandbox, workflow_ledger):
    ids = pending_ids(workflow_ledger)
    expected = {i: sum(1 for row_id in ids if row_id % 3 == i) for i in range(3)}

    created = {}
    for shard in range(3):
        summary = generated.execute(shard=shard, shards=3)
        created[shard] = summary.counts.get("TRANSFER_CREATED", 0)
        assert summary.notes == [f"shard {shard} of 3"]
        assert summary.failed_total == 0
    assert created == expected and all(n > 0 for n in created.values())

    transfers = sandbox.transfers()
    per_order = Counter(t["metadata"]["miraklId"] for t in transfers)
    assert len(transfers) == 60 and set(per_order.values()) == {1}
    assert pending_ids(workflow_ledger) == []

    # Re-running a shard (a cleared mapped task) or the unsharded step sends nothing more.
    assert generated.execute(shard=1, shards=3).total == 0
    assert generated.execute().total == 0
    assert len(sandbox.transfers()) == 60


def test_a_shard_leaves_the_other_shards_rows_pending(generated, sandbox, workflow_ledger):
    before = pending_ids(workflow_ledger)
    generated.execute(shard=0, shards=2)
    after = pending_ids(workflow_ledger)
    assert after == [row_id for row_id in before if row_id % 2 == 1]
    sent = {t["metadata"]["miraklId"] for t in sandbox.transfers()}
    rows = workflow_ledger.get_transfers(TransferType.PRODUCT_ORDER, sorted(sent))
    assert {row.id % 2 for row in rows.values()} == {0}
    assert {row.status for row in rows.values()} == {TransferStatus.CREATED}


def test_dry_run_shard_lists_only_its_rows(generated, sandbox, workflow_ledger):
    ids = pending_ids(workflow_ledger)
    summary = generated.execute(shard=2, shards=4, dry_run=True)
    assert summary.total == sum(1 for row_id in ids if row_id % 4 == 2)
    assert sandbox.transfers() == []


@pytest.mark.parametrize(
    "shard, shards, message",
    [
        (0, None, "give both or neither"),
        (None, 2, "give both or neither"),
        (2, 2, "from 0 to 1"),
        (-1, 2, "from 0 to 1"),
        (0, 0, "positive integer"),
        (True, 2, "from 0 to 1"),
    ],
)
def test_bad_shard_arguments_are_refused(shard, shards, message):
    with pytest.raises(ConfigurationError, match=message):
        Shard.of(shard, shards)


def test_shards_deal_ids_round_robin():
    assert [Shard.of(1, 3).holds(i) for i in range(6)] == [False, True, False, False, True, False]
    assert Shard.of(None, None) is None  # unsharded: every row


def test_shard_plan_follows_the_setting():
    default = PaymentSplitSettings().execute_shards
    assert shard_plan(default) == [{"shard": i, "shards": 4} for i in range(4)]
    one = PaymentSplitSettings.from_mapping({"execute_shards": 1})
    assert shard_plan(one.execute_shards) == [{"shard": 0, "shards": 1}]
    for bad in (0, 65, "4", 2.0, True):
        with pytest.raises(ConfigurationError, match="execute_shards"):
            PaymentSplitSettings.from_mapping({"execute_shards": bad})
