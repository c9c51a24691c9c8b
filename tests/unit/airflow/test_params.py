from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from mirakl_connector.airflow.params import parse_run_params, run_params
from mirakl_connector.core.errors import ConfigurationError


def test_defaults_mean_a_normal_scheduled_run() -> None:
    defaults = {name: param.value for name, param in run_params().items()}
    assert parse_run_params(defaults) == {"since": None, "order_ids": None, "dry_run": False}
    assert parse_run_params({}) == {}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-03-01T10:00:00Z", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        (
            "2026-03-01T10:00:00+02:00",
            datetime(2026, 3, 1, 10, tzinfo=timezone(timedelta(hours=2))),
        ),
    ],
)
def test_since_is_parsed_as_an_aware_datetime(raw: str, expected: datetime) -> None:
    since = parse_run_params({"since": raw})["since"]
    assert since == expected and since.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"since": "yesterday"}, "param 'since'.*not an RFC 3339"),
        ({"since": "2026-03-01T10:00:00"}, "param 'since'.*no time zone"),
        ({"since": 12}, "param 'since'"),
        ({"order_ids": [1, 2]}, "param 'order_ids'.*1 is not a string"),
        ({"order_ids": {"a": 1}}, "param 'order_ids'"),
        ({"dry_run": "yes"}, "param 'dry_run'.*'yes'"),
        # issue 11 point 8: one entry "A,B" would ask Mirakl for orders A and B
        ({"order_ids": ["ORD-1,ORD-2"]}, "param 'order_ids': 'ORD-1,ORD-2' contains a separator"),
        ({"order_ids": "ORD-1;ORD-2"}, "param 'order_ids': 'ORD-1;ORD-2' contains a separator"),
        ({"shop_ids": ["１"]}, "param 'shop_ids': '１' is not a Mirakl shop id"),
    ],
)
def test_bad_values_name_the_param(params: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_run_params(params)


def test_order_ids_are_trimmed_and_deduplicated_in_order() -> None:
    params = parse_run_params({"order_ids": [" 1001-A ", "1002-A", "1001-A", ""]})
    assert params["order_ids"] == ["1001-A", "1002-A"]
    assert parse_run_params({"order_ids": "1003-B"})["order_ids"] == ["1003-B"]


def test_other_params_pass_through_and_until_is_a_date() -> None:
    parsed = parse_run_params({"shop_id": 12, "until": "2026-03-02T00:00:00Z"})
    assert parsed == {"shop_id": 12, "until": datetime(2026, 3, 2, tzinfo=UTC)}
    with pytest.raises(ConfigurationError, match="param 'until'"):
        parse_run_params({"until": "soon"})


def test_each_dag_gets_its_own_param_objects() -> None:
    first, second = run_params(), run_params()
    assert first["order_ids"] is not second["order_ids"]
    assert first["since"].schema["format"] == "date-time"
