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
``airflow_db`` fixture. PostgreSQL tests use ``postgres_url`` (or :func:`postgres_url_or_skip`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
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

DEFAULT_TEST_PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def postgres_url_or_skip() -> str:
    """Return the test PostgreSQL URL when the server answers; skip otherwise (fail under CI).

    The URL is ``MIRAKL_CONNECTOR_TEST_PG_URL`` (default ``postgresql+psycopg2://postgres@
    127.0.0.1:5432/test``). A developer without PostgreSQL gets a skip with the reason; CI must
    run these tests, so there an unreachable server is a failure, not a silent skip.
    """
    url = os.environ.get("MIRAKL_CONNECTOR_TEST_PG_URL", DEFAULT_TEST_PG_URL)
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))
    except Exception as exc:
        reason = (
            f"PostgreSQL not reachable at {engine.url.render_as_string(hide_password=True)}: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        )
        if _in_ci():
            pytest.fail(f"{reason} (CI=true: PostgreSQL tests must run)", pytrace=False)
        pytest.skip(reason)
    finally:
        engine.dispose()
    return url


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The test PostgreSQL URL (see :func:`postgres_url_or_skip`)."""
    return postgres_url_or_skip()


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
