from __future__ import annotations

import pytest

from mirakl_connector.airflow.sensors.mirakl import MiraklApiSensor, MiraklAuthenticationError
from mirakl_connector.core.errors import (
    MiraklClientError,
    MiraklRateLimitError,
    MiraklServerError,
    MiraklTransportError,
)


class FakeClient:
    def __init__(self, outcome) -> None:
        self.outcome = outcome
        self.calls = 0

    def version(self):
        self.calls += 1
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


def _sensor(outcome) -> tuple[MiraklApiSensor, FakeClient]:
    client = FakeClient(outcome)
    sensor = MiraklApiSensor(task_id="wait_for_mirakl", mirakl_conn_id="mirakl_test")
    sensor.get_client = lambda: client
    return sensor, client


def test_true_when_mirakl_answers() -> None:
    sensor, client = _sensor({"version": "3.210"})
    assert sensor.poke({}) is True
    assert client.calls == 1


@pytest.mark.parametrize(
    "error",
    [
        MiraklTransportError("V01", "connection refused"),
        MiraklServerError("V01", "maintenance", http_status=503),
        MiraklRateLimitError("V01", "slow down", http_status=429),
        MiraklClientError("V01", "odd", http_status=429),
    ],
)
def test_waits_on_unavailability(error) -> None:
    sensor, _ = _sensor(error)
    assert sensor.poke({}) is False


@pytest.mark.parametrize("status", [401, 403])
def test_fails_fast_on_a_refused_key(status: int) -> None:
    sensor, _ = _sensor(MiraklClientError("V01", "Unauthorized", http_status=status))
    with pytest.raises(MiraklAuthenticationError, match=f"'mirakl_test'.*HTTP {status}"):
        sensor.poke({})


def test_other_client_errors_propagate() -> None:
    sensor, _ = _sensor(MiraklClientError("V01", "Not found", http_status=404))
    with pytest.raises(MiraklClientError):
        sensor.poke({})
