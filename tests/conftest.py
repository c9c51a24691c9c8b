"""Session set-up shared by every test: an isolated Airflow environment, built before any import.

Airflow reads its configuration when first imported, so the environment is set at the top of this
file (pytest imports conftest.py before collecting test modules):

* ``AIRFLOW_HOME`` is a fresh temporary directory per session (or
  ``MIRAKL_CONNECTOR_TEST_AIRFLOW_HOME``, which ``scripts/test.sh`` points at a freshly emptied
  ``.pytest_airflow_home`` so logs survive the run); the developer's ``~/airflow`` is never used;
* the DAG and plugin folders are the repository's, examples are off;
* ``AIRFLOW_CONN_*`` / ``AIRFLOW_VAR_*`` inherited from the shell (the demo exports some) are
  dropped, so a test sees exactly the connections and Variables it sets;
* ``include/`` is put on ``sys.path`` when ``mirakl_connector`` is not installed.

``AIRFLOW__CORE__UNIT_TEST_MODE`` is left unset: it swaps in Airflow's own unit-test config, which
we do not need.

The metadata DB is only migrated (``airflow db migrate``, a few seconds) for tests that ask for the
``airflow_db`` fixture.

Ledger tests run on SQLite (a tmp file) and on PostgreSQL (a schema of its own, dropped after):
the ``ledger_url`` fixture is parametrised over both. PostgreSQL comes from
``MIRAKL_CONNECTOR_TEST_PG_URL`` (default: the local trust-auth server); when it cannot be reached
those variants are skipped with the reason, except under ``CI=true`` where that is a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
INCLUDE_DIR = REPO_ROOT / "include"

for _name in [n for n in os.environ if n.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))]:
    del os.environ[_name]

_home = os.environ.get("MIRAKL_CONNECTOR_TEST_AIRFLOW_HOME") or tempfile.mkdtemp(
    prefix="mirakl-connector-airflow-home-"
)
Path(_home).mkdir(parents=True, exist_ok=True)
os.environ["AIRFLOW_HOME"] = _home
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO_ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO_ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
# The Stripe simulator keeps its contract refusals and checks its responses against the SDK's
# object classes (see stripe_contract_guard below).
os.environ["MIRAKL_SANDBOX_CONTRACT_AUDIT"] = "1"
os.environ.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)
os.environ.pop("AIRFLOW_CONFIG", None)

try:
    import mirakl_connector  # noqa: F401
except ImportError:
    sys.path.insert(0, str(INCLUDE_DIR))
# Subprocesses started by tests (DAG parsing, CLI) must find the package too.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(INCLUDE_DIR), os.environ.get("PYTHONPATH", "")) if p
)


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    return Path(os.environ["AIRFLOW_HOME"])


@pytest.fixture(scope="session")
def airflow_db(airflow_home: Path) -> Path:
    """Migrate the session's Airflow metadata DB once (only for tests that need it)."""
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        capture_output=True,
        text=True,
        timeout=240,
        env=os.environ.copy(),
    )
    if result.returncode != 0:
        pytest.fail(
            f"airflow db migrate failed ({result.returncode}):\n{result.stderr[-3000:]}",
            pytrace=False,
        )
    return airflow_home


# Imported after the environment above is set: they may import Airflow-adjacent modules.
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from mirakl_connector.ledger import Ledger  # noqa: E402


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


PG_URL_ENV = "MIRAKL_CONNECTOR_TEST_PG_URL"
DEFAULT_PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


def ledger_url_params() -> list:
    """The backends every ledger test runs on, as ``pytest.param`` values.

    The PostgreSQL run is also ``slow``: the fast inner loop (``-m "not slow"``) runs the ledger
    on SQLite only, the full suite on both.
    """
    return [
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=[pytest.mark.postgres, pytest.mark.slow]),
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
        if _in_ci():
            pytest.fail(f"{message} (CI=true: PostgreSQL tests must run)", pytrace=False)
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


# -- Stripe's contract over the whole suite's traffic ---------------------------------------------
@pytest.fixture(autouse=True)
def stripe_contract_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test in which the Stripe simulator refused a request for a contract reason (unknown
    parameter, wrong type or enum, missing parameter, unknown URL: the SDK's parameter types
    decide) or answered a field the SDK's object classes do not define, unless the test is marked
    ``stripe_contract_refusals`` (it sends such requests on purpose).

    The gateway turns Stripe's 400 into a ``PaymentProviderError`` that a workflow may record as
    one item's failure; a test expecting *some* failures would not notice a request Stripe would
    refuse outright. This guard makes every such refusal visible, wherever it comes from.
    """
    from mirakl_sandbox import stripe_contract

    refusals = len(stripe_contract.REFUSALS)
    violations = len(stripe_contract.RESPONSE_VIOLATIONS)
    yield
    new_refusals = stripe_contract.REFUSALS[refusals:]
    new_violations = stripe_contract.RESPONSE_VIOLATIONS[violations:]
    if new_refusals and request.node.get_closest_marker("stripe_contract_refusals") is None:
        listed = "; ".join(f"{m} {p}: {e.get('message')}" for m, p, e in new_refusals[:5])
        pytest.fail(f"the Stripe simulator refused {len(new_refusals)} request(s): {listed}")
    if new_violations:
        listed = "; ".join(f"{m} {p}: {', '.join(f[:5])}" for m, p, f in new_violations[:5])
        pytest.fail(f"the Stripe simulator answered fields the SDK does not define: {listed}")
