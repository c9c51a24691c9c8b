"""An Airflow for the browser tests: the four components, the sandbox, and Debian's Chromium.

The stack is what ``airflow standalone`` starts (api-server, scheduler with the LocalExecutor,
dag-processor, triggerer, SQLite metadata DB) but started one by one so the log servers can be
switched off (``--skip-serve-logs``): standalone always binds them on 0.0.0.0:8793/8794, which a
developer's ``demo.sh`` on the same machine already holds. Everything listens on loopback, on
free ports, in the test's tmp dir; teardown stops the process groups it started.

``demo_console`` is the demo instead (``scripts/demo.sh``'s sandbox, faults, settings and ledger)
after one pass of every demo workflow, with the API server only: it serves the UI and the
payments console.

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
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from mirakl_sandbox.client import SandboxAdmin
from mirakl_sandbox.demo_run import DEMO, DEMO_HYPERWALLET, PIPELINE, load_demo, read_json, run_pass
from mirakl_sandbox.server import SandboxServer

from mirakl_connector.airflow.demo import seed_ledger
from mirakl_connector.core.registry import Resources
from mirakl_connector.core.retry import RetryPolicy
from mirakl_connector.hyperwallet.client import HyperwalletClient
from mirakl_connector.ledger import Ledger
from mirakl_connector.ledger.records import AccountMapping
from mirakl_connector.mirakl.client import MiraklClient
from mirakl_connector.stripe.gateway import StripeGateway

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO_ROOT / "scripts/demo-config.json"
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


@dataclass
class DemoConsole(AirflowUI):
    """The demo's Airflow API server after one pass of the demo's workflows."""

    ledger_url: str = ""
    #: each step's summary of the pass, keyed ``workflow.step``
    summaries: dict = field(default_factory=dict)

    def run_steps(self, steps: list[tuple], name: str = "again") -> dict:
        """Some of the demo's steps once more (as their DAGs' next runs would)."""
        return _demo_pass(self.sandbox.url, self.ledger_url, steps=steps, name=name)


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


def _airflow_env(home: Path, port: int, connections: dict, variables: dict) -> dict[str, str]:
    """Environment of every Airflow command of a test stack: its home, loopback, this checkout."""
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
        }
    )
    env.update({f"AIRFLOW_CONN_{k.upper()}": json.dumps(v) for k, v in connections.items()})
    env.update({f"AIRFLOW_VAR_{k.upper()}": v for k, v in variables.items()})
    return env


#: The four components ``airflow standalone`` starts, without their log servers.
ALL_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
_COMMANDS = {
    "api-server": ["api-server"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}


@contextmanager
def running_airflow(
    home: Path,
    port: int,
    env: dict[str, str],
    *,
    components: tuple[str, ...] = ALL_COMPONENTS,
    configure: list[str] | None = None,
    ready_path: str = "/api/v2/dags/stripe_payment_split",
) -> Iterator[str]:
    """Migrate the metadata DB, create the pools, run ``configure`` (a command, as the demo
    does before Airflow starts), start ``components``; yield the admin's password once they
    are healthy and ``ready_path`` answers 200 to the admin. Stops them all on exit."""
    log_dir = home / "component-logs"
    log_dir.mkdir(exist_ok=True)
    base_url = f"http://127.0.0.1:{port}"
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
        if configure:
            subprocess.run(configure, env=env, check=True, capture_output=True, timeout=120)
        for name in components:
            procs.append(_start(name, [airflow, *_COMMANDS[name]], env, log_dir))
        _wait_ready(base_url, home, procs, log_dir, components, ready_path)
        yield json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())[
            "admin"
        ]
    finally:
        _stop(procs)


@pytest.fixture
def browser_context(chromium_path: str, tmp_path: Path):
    """``open(playwright, height=1000)``: a Chromium context of its own (profile in tmp_path),
    1400 px wide, UTC, en-US."""

    def open_context(pw, height: int = 1000):
        return pw.chromium.launch_persistent_context(
            tempfile.mkdtemp(dir=tmp_path),
            executable_path=chromium_path,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": height},
            timezone_id="UTC",
            locale="en-US",
        )

    return open_context


@pytest.fixture(scope="module")
def airflow_ui(chromium_path: str) -> Iterator[AirflowUI]:
    """A running Airflow (4 components) whose connections point at a generated sandbox."""
    home = Path(tempfile.mkdtemp(prefix="mirakl-connector-ui-"))
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
    env = _airflow_env(
        home,
        port,
        connections={
            "mirakl_default": {
                "conn_type": "mirakl",
                "host": sandbox_server.url,
                "password": MIRAKL_KEY,
            },
            "stripe_default": {
                "conn_type": "stripe",
                "host": sandbox_server.url,
                "password": "sk_test_sandbox",
            },
            "mirakl_connector_db": {"conn_type": "sqlite", "extra": {"sqlalchemy_url": ledger_url}},
        },
        variables={
            "mirakl_connector_config": json.dumps(
                {
                    "payment_split": {"product_enabled": True, "execute_shards": 2},
                    "go_live": "2000-01-01T00:00:00Z",
                }
            ),
            # Manual runs only: unpausing must not start a scheduled run next to ours.
            "stripe_payment_split__schedule": "none",
        },
    )
    try:
        with running_airflow(home, port, env) as password:
            yield AirflowUI(
                base_url=f"http://127.0.0.1:{port}", password=password, sandbox=admin, home=home
            )
    finally:
        admin.close()
        sandbox_server.stop()
        shutil.rmtree(home, ignore_errors=True)


def _wait_ready(
    base_url: str,
    home: Path,
    procs: list,
    log_dir: Path,
    components: tuple[str, ...],
    ready_path: str,
) -> None:
    """Health 200 with every component started healthy, then ``ready_path`` answering the admin
    (the DAG known to the API, or the plugin's page)."""
    parts = ["metadatabase"] + [
        c.replace("-", "_") for c in components if c in ("scheduler", "dag-processor", "triggerer")
    ]
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    token = None
    while time.monotonic() < deadline:
        dead = [p for p in procs if p.poll() is not None]
        if dead:
            pytest.fail(f"an Airflow component exited:\n{_log_tails(log_dir)}", pytrace=False)
        try:
            health = requests.get(f"{base_url}/api/v2/monitor/health", timeout=3).json()
            if token is None and all(
                (health.get(part) or {}).get("status") == "healthy" for part in parts
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
                ready = requests.get(
                    base_url + ready_path,
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=30,
                )
                if ready.status_code == 200:
                    return
        except (requests.RequestException, OSError, ValueError, KeyError):
            pass
        time.sleep(1)
    pytest.fail(f"Airflow not ready in {STARTUP_TIMEOUT_S}s:\n{_log_tails(log_dir)}", pytrace=False)


class _NoMail:
    """The pass's mailer: the e-mails are not this test's subject (the demo test reads them)."""

    def send(self, *, to, subject: str, html: str) -> None:
        pass


def _demo_pass(sandbox_url: str, ledger_url: str, *, steps=PIPELINE, name: str = "demo") -> dict:
    """The demo's workflows once, in DAG order, on the demo's settings (``demo.sh`` runs the
    same steps from Airflow on their schedules; here they run in the test's process)."""
    retry = RetryPolicy(max_attempts=4, max_elapsed=30, base_delay=0.01, max_delay=0.05)
    hw = read_json(DEMO_HYPERWALLET)["hyperwallet"]
    ledger = Ledger(ledger_url)
    clients = {
        "mirakl": MiraklClient(sandbox_url, MIRAKL_KEY, retry=retry, timeout=(2, 10)),
        "stripe": StripeGateway("sk_test_sandbox", base_url=sandbox_url, retry=retry, timeout=10),
        "hyperwallet": HyperwalletClient(
            sandbox_url, hw["username"], hw["password"], retry=retry, timeout=(2, 10)
        ),
    }

    def resources() -> Resources:
        return Resources(
            mirakl=lambda: clients["mirakl"],
            stripe=lambda: clients["stripe"],
            ledger=lambda: ledger,
            mailer=_NoMail,
            http=lambda: None,  # no operator endpoint, as in the demo
            hyperwallet=lambda: clients["hyperwallet"],
        )

    try:
        return run_pass(resources, read_json(DEMO_CONFIG), name, steps)
    finally:
        ledger.dispose()


@pytest.fixture(scope="module")
def demo_console(chromium_path: str) -> Iterator[DemoConsole]:
    """The demo as ``demo.sh`` sets it up (sandbox with the demo scenario and its faults, the
    ledger seeded, Airflow's connections, Variables and pools written by the demo's own
    ``configure-airflow``), after one pass of every workflow; then Airflow's API server, which
    serves the UI and the payments console. Only the API server: the console is its plugin, and
    the pass made every run this test looks at (the scheduler would start the demo's DAGs)."""
    home = Path(tempfile.mkdtemp(prefix="mirakl-connector-console-"))
    sandbox_server = SandboxServer(seed=3).start()
    admin = SandboxAdmin(sandbox_server.url)
    ledger_url = Ledger.default_sqlite_url(home)  # the demo's: the ledger hook's default
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    try:
        load_demo(admin)
        seed_ledger(DEMO, url=ledger_url)
        summaries = _demo_pass(sandbox_server.url, ledger_url)
        env = _airflow_env(home, port, connections={}, variables={})
        configure = [
            sys.executable, "-m", "mirakl_connector.airflow.demo", "configure-airflow",
            "--sandbox-url", sandbox_server.url, "--api-url", base_url, "--smtp-port", "8025",
            "--scenario", str(DEMO), "--hyperwallet-scenario", str(DEMO_HYPERWALLET),
            "--config-file", str(DEMO_CONFIG),
        ]  # fmt: skip
        with running_airflow(
            home,
            port,
            env,
            components=("api-server",),
            configure=configure,
            ready_path="/mirakl-connector-console/api/summary/in_doubt",
        ) as password:
            yield DemoConsole(
                base_url=base_url,
                password=password,
                sandbox=admin,
                home=home,
                ledger_url=ledger_url,
                summaries=summaries,
            )
    finally:
        admin.close()
        sandbox_server.stop()
        shutil.rmtree(home, ignore_errors=True)
