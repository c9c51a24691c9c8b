"""Fixtures for workflow tests: a live sandbox, real clients against it, a ledger per backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mirakl_connector.ledger import Ledger
from mirakl_connector.mirakl.client import MiraklClient
from mirakl_connector.retry import RetryPolicy
from mirakl_connector.sandbox.client import SandboxAdmin
from mirakl_connector.sandbox.server import SandboxServer
from mirakl_connector.stripe_gateway import StripeGateway

MIRAKL_KEY = "sandbox-mirakl-key"
STRIPE_KEY = "sk_test_sandbox"


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    server = SandboxServer(seed=7).start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> Iterator[SandboxAdmin]:
    """Admin client on an emptied sandbox; faults cleared after the test."""
    admin = SandboxAdmin(sandbox_server.url)
    admin.reset({})
    admin.clear_faults()
    yield admin
    admin.clear_faults()
    admin.close()


@pytest.fixture
def fast_retry() -> RetryPolicy:
    """Real retries, tiny waits: fault tests stay fast."""
    return RetryPolicy(max_attempts=6, max_elapsed=30, base_delay=0.01, max_delay=0.05)


@pytest.fixture
def mirakl(sandbox_server: SandboxServer, fast_retry: RetryPolicy) -> MiraklClient:
    return MiraklClient(sandbox_server.url, MIRAKL_KEY, retry=fast_retry, timeout=(2, 5))


@pytest.fixture
def stripe_gateway(sandbox_server: SandboxServer, fast_retry: RetryPolicy) -> StripeGateway:
    return StripeGateway(STRIPE_KEY, base_url=sandbox_server.url, retry=fast_retry, timeout=5)


@pytest.fixture
def workflow_ledger(ledger_url: str) -> Iterator[Ledger]:
    ledger = Ledger(ledger_url)
    yield ledger
    ledger.dispose()


"""Ledger fixtures: every test runs on SQLite (a tmp file) and on PostgreSQL (its own schema).

Reusable as is from a higher conftest: ``ledger_url_params()`` gives the backend parameters,
``ledger_url`` a fresh empty database URL per test, ``ledger`` an open :class:`Ledger` on it.

PostgreSQL comes from ``MIRAKL_CONNECTOR_TEST_PG_URL`` (default: the local trust-auth server).
When it cannot be reached the PostgreSQL variants are skipped with the reason, except under
``CI=true`` where a missing database must fail the build rather than hide the coverage.
"""


import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from mirakl_connector.ledger import Ledger

PG_URL_ENV = "MIRAKL_CONNECTOR_TEST_PG_URL"
DEFAULT_PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


def ledger_url_params() -> list:
    """The backends every ledger test runs on, as ``pytest.param`` values."""
    return [
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]


def postgres_base_url() -> str:
    return os.environ.get(PG_URL_ENV) or DEFAULT_PG_URL


@cache
def _postgres_problem(url: str) -> str | None:
    """``None`` when PostgreSQL answers at ``url``, else the error (checked once a session)."""
    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to connect means "not reachable"
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
    finally:
        engine.dispose()
    return None


def require_postgres() -> str:
    """The PostgreSQL base URL; skip (fail under ``CI=true``) when it is not reachable."""
    url = postgres_base_url()
    problem = _postgres_problem(url)
    if problem is not None:
        masked = make_url(url).render_as_string(hide_password=True)
        message = f"PostgreSQL not reachable at {masked}: {problem}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return url


@contextmanager
def postgres_schema_url() -> Iterator[str]:
    """A URL whose ``search_path`` is a new, empty schema, dropped (with its tables) after."""
    base = require_postgres()
    schema = f"mc_ledger_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=ledger_url_params())
def ledger_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """URL of an empty ledger database on the parametrised backend."""
    if request.param == "sqlite":
        yield Ledger.default_sqlite_url(tmp_path)
    else:
        with postgres_schema_url() as url:
            yield url


@pytest.fixture
def open_ledger(ledger_url: str) -> Iterator[Callable[[], Ledger]]:
    """Open more ledgers on the test's database (another "process"); all disposed after."""
    opened: list[Ledger] = []

    def _open() -> Ledger:
        ledger = Ledger(ledger_url)
        opened.append(ledger)
        return ledger

    yield _open
    for ledger in opened:
        ledger.dispose()


@pytest.fixture
def ledger(open_ledger: Callable[[], Ledger]) -> Ledger:
    """An open, migrated ledger on an empty database."""
    return open_ledger()
