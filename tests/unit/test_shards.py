"""The shard plan of a mapped write step, read from the connector configuration at run time."""

from __future__ import annotations

import pytest

from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.core.shards import shards_from_config


def test_default_and_configured_shards() -> None:
    assert shards_from_config({}, "seller_settlement") == [
        {"shard": i, "shards": 4} for i in range(4)
    ]
    config = {"payment_refund": {"execute_shards": 2}, "seller_settlement": {"payouts": False}}
    assert shards_from_config(config, "payment_refund") == [
        {"shard": 0, "shards": 2},
        {"shard": 1, "shards": 2},
    ]
    assert len(shards_from_config(config, "seller_settlement")) == 4


@pytest.mark.parametrize("bad", [0, 65, "8", 2.5, True])
def test_a_bad_shard_count_names_the_setting(bad) -> None:
    with pytest.raises(ConfigurationError, match="payment_refund.execute_shards"):
        shards_from_config({"payment_refund": {"execute_shards": bad}}, "payment_refund")
