"""An Airflow for the browser test: the four components, the sandbox, and Debian's Chromium.

The stack is what ``airflow standalone`` starts (api-server, scheduler with the LocalExecutor,
dag-processor, triggerer, SQLite metadata DB) but started one by one so the log servers can be
switched off (``--skip-serve-logs``): standalone always binds them on 0.0.0.0:8793/8794, which a
developer's ``demo.sh`` on the same machine already holds. Everything listens on loopback, on
free ports, in the test's tmp dir; teardown stops the process groups it started.

Chromium is Debian's ``/usr/bin/chromium`` (``.ci/run`` installs it with apt-get); Playwright
never downloads a browser. Without Chromium or Playwright the tests are skipped with the reason,
except under ``CI=true`` where that is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.records import AccountMapping
from mirakl_connector.sandbox.client import SandboxAdmin
from mirakl_connector.sandbox.server import SandboxServer

REPO_ROOT = Path(__file__).resolve().parents[2]
MIRAKL_KEY = "sandbox-mirakl-key"
CHROMIUM = os.environ.get("MIRAKL_CONNECTOR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STARTUP_TIMEOUT_S = 180


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _skip_or_fail(message: str) -> None:
    if _in_ci():
        pytest.fail(f"{message} (CI=true: the browser test must run; .ci/run installs it)")
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class AirflowUI:
    base_url: str
    password: str
    sandbox: SandboxAdmin
    home: Path


def _start(name: str, argv: list[str], env: dict, log_dir: Path) -> subprocess.Popen:
    with open(log_dir / f"{name}.log", "wb") as out:
        return subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _log_tails(log_dir: Path) -> str:
    return "\n".join(
        f"--- {path.name}\n{path.read_text(errors='replace')[-1500:]}"
        for path in sorted(log_dir.glob("*.log"))
    )


@pytest.fixture(scope="session")
def chromium_path() -> str:
    try:
        import playwright  # noqa: F401
    except ImportError:
        _skip_or_fail("playwright is not installed (pip install -r requirements.txt)")
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)):
        _skip_or_fail(f"{CHROMIUM} not found (apt-get install -y chromium)")
    return CHROMIUM


@pytest.fixture(scope="module")
def airflow_ui(chromium_path: str) -> Iterator[AirflowUI]:
    """A running Airflow (4 components) whose connections point at a generated sandbox."""
    home = Path(tempfile.mkdtemp(prefix="mirakl-connector-ui-"))
    log_dir = home / "component-logs"
    log_dir.mkdir()
    sandbox_server = SandboxServer(seed=3).start()
    admin = SandboxAdmin(sandbox_server.url)
    admin.reset({})
    admin.generate(orders=12, shops=3, currency="EUR", seed=5)
    ledger_url = Ledger.default_sqlite_url(home)
    ledger = Ledger(ledger_url)
    for account in admin.accounts():
        ledger.upsert_account_mapping(
            AccountMapping(
                mirakl_shop_id=int(account["metadata"]["miraklShopId"]),
                stripe_account_id=account["id"],
                payouts_enabled=True,
                charges_enabled=True,
                kyc_status="APPROVED",
            )
        )
    ledger.dispose()

    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
            "PYTHONPATH": str(REPO_ROOT / "include"),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": base_url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": "browser-test-jwt-secret",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW_CONN_MIRAKL_DEFAULT": json.dumps(
                {"conn_type": "mirakl", "host": sandbox_server.url, "password": MIRAKL_KEY}
            ),
            "AIRFLOW_CONN_STRIPE_DEFAULT": json.dumps(
                {"conn_type": "stripe", "host": sandbox_server.url, "password": "sk_test_sandbox"}
            ),
            "AIRFLOW_CONN_MIRAKL_CONNECTOR_DB": json.dumps(
                {"conn_type": "sqlite", "extra": {"sqlalchemy_url": ledger_url}}
            ),
            "AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG": json.dumps(
                {
                    "payment_split": {"product_enabled": True, "execute_shards": 2},
                    "go_live": "2000-01-01T00:00:00Z",
                }
            ),
            # Manual runs only: unpausing must not start a scheduled run next to ours.
            "AIRFLOW_VAR_STRIPE_PAYMENT_SPLIT__SCHEDULE": "none",
        }
    )
    airflow = str(Path(sys.executable).parent / "airflow")
    procs: list[subprocess.Popen] = []
    try:
        subprocess.run(
            [airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=180
        )
        subprocess.run(
            [str(REPO_ROOT / "scripts/create_pools.sh")],
            env={**env, "PYTHON": sys.executable},
            check=True,
            capture_output=True,
            timeout=120,
        )
        for name, argv in [
            ("api-server", [airflow, "api-server"]),
            ("scheduler", [airflow, "scheduler", "--skip-serve-logs"]),
            ("dag-processor", [airflow, "dag-processor"]),
            ("triggerer", [airflow, "triggerer", "--skip-serve-logs"]),
        ]:
            procs.append(_start(name, argv, env, log_dir))
        _wait_ready(base_url, home, procs, log_dir)
        password = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())[
            "admin"
        ]
        yield AirflowUI(base_url=base_url, password=password, sandbox=admin, home=home)
    finally:
        _stop(procs)
        admin.close()
        sandbox_server.stop()
        shutil.rmtree(home, ignore_errors=True)


def _wait_ready(base_url: str, home: Path, procs: list, log_dir: Path) -> None:
    """Health 200 with every component healthy, then the payment split DAG known to the API."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    token = None
    while time.monotonic() < deadline:
        dead = [p for p in procs if p.poll() is not None]
        if dead:
            pytest.fail(f"an Airflow component exited:\n{_log_tails(log_dir)}", pytrace=False)
        try:
            health = requests.get(f"{base_url}/api/v2/monitor/health", timeout=3).json()
            if token is None and all(
                (health.get(part) or {}).get("status") == "healthy"
                for part in ("metadatabase", "scheduler", "dag_processor", "triggerer")
            ):
                passwords = home / "simple_auth_manager_passwords.json.generated"
                password = json.loads(passwords.read_text())["admin"]
                answer = requests.post(
                    f"{base_url}/auth/token",
                    json={"username": "admin", "password": password},
                    timeout=5,
                )
                answer.raise_for_status()
                token = answer.json()["access_token"]
            if token is not None:
                dag = requests.get(
                    f"{base_url}/api/v2/dags/stripe_payment_split",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=5,
                )
                if dag.status_code == 200:
                    return
        except (requests.RequestException, OSError, ValueError, KeyError):
            pass
        time.sleep(1)
    pytest.fail(f"Airflow not ready in {STARTUP_TIMEOUT_S}s:\n{_log_tails(log_dir)}", pytrace=False)
