"""Fixtures for the Mirakl client tests: a client on a fake host whose retries never sleep."""

from __future__ import annotations

import pytest
import responses

from mirakl_connector.core.retry import RetryPolicy
from mirakl_connector.mirakl.client import MiraklClient

BASE = "https://mirakl.test"
API_KEY = "s3cr3t-operator-key-0123456789"


@pytest.fixture
def sleeps() -> list[float]:
    """Every wait the retry policy asked for, in order (nothing really sleeps)."""
    return []


@pytest.fixture
def policy(sleeps: list[float]) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=4, max_elapsed=60, base_delay=0.0, max_delay=30.0, sleep=sleeps.append
    )


@pytest.fixture
def client(policy: RetryPolicy) -> MiraklClient:
    return MiraklClient(BASE, API_KEY, retry=policy)


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps
