from __future__ import annotations

import pytest

from mirakl_connector.airflow.schedules import (
    normalize_schedule,
    schedule_from_variable,
    schedule_variable_name,
)


def test_variable_name_scheme() -> None:
    assert schedule_variable_name("stripe_payment_split") == "stripe_payment_split__schedule"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1-59/5 * * * *", "1-59/5 * * * *"),
        ("  0  6 * *   1-5 ", "0 6 * * 1-5"),
        ("@Daily", "@daily"),
        ("none", None),
        ("None", None),
        ("", None),
    ],
)
def test_normalize_accepts_cron_presets_and_none(value: str, expected: str | None) -> None:
    assert normalize_schedule(value, name="x__schedule") == expected


@pytest.mark.parametrize("value", ["every 5 minutes", "* * * *", "@sometimes", "*/5 * * * * *"])
def test_normalize_rejects_anything_else_naming_the_variable(value: str) -> None:
    with pytest.raises(ValueError, match="x__schedule"):
        normalize_schedule(value, name="x__schedule")


def test_schedule_from_variable_env_wins_over_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert schedule_from_variable("my_dag", default="1-59/5 * * * *") == "1-59/5 * * * *"
    assert schedule_from_variable("my_dag", default=None) is None
    monkeypatch.setenv("AIRFLOW_VAR_MY_DAG__SCHEDULE", "@hourly")
    assert schedule_from_variable("my_dag", default="1-59/5 * * * *") == "@hourly"
    monkeypatch.setenv("AIRFLOW_VAR_MY_DAG__SCHEDULE", "none")
    assert schedule_from_variable("my_dag", default="1-59/5 * * * *") is None
