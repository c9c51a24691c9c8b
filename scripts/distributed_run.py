"""The payment split on CeleryExecutor, natively: two workers, PostgreSQL, Redis, a big batch.

Starts the same components as ``docker-compose.yaml``, as processes on this machine:

* PostgreSQL (the server already running at ``--pg-url``): a fresh Airflow metadata database
  (``airflow_dist``) and a fresh ledger database (``ledger_dist``);
* Redis (already running at ``--redis-url``, its own DB number) as the Celery broker; the Celery
  result backend is the metadata database;
* the Mirakl/Stripe sandbox with ``--orders`` generated paid orders;
* ``airflow api-server``, ``scheduler``, ``dag-processor``, ``triggerer`` and two
  ``airflow celery worker`` processes (``w1``, ``w2``), each with its own hostname so the task
  instances show which worker ran them;

then triggers ``stripe_payment_split`` through the REST API with ``execute_shards`` mapped
``create_transfers`` tasks, waits for the run, and checks:

* every PENDING row planned became exactly one Stripe transfer (sandbox transfer count equals the
  plan's PENDING count and the orders; one transfer per ``miraklId``);
* the ledger holds every row as CREATED (nothing PENDING, FAILED or in doubt);
* the mapped ``create_transfers`` tasks ran on both workers, in the ``stripe_api`` pool.

Prints a JSON result (also written to ``<workdir>/result.json``); exit status 0 when every check
passed. Everything it started is stopped at the end (by process group, never by name). Usage::

    scripts/distributed_run.sh [--orders 3000] [--shards 8] [--workdir DIR] [--keep-running]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

REPO_ROOT = Path(__file__).resolve().parent.parent
DAG_ID = "stripe_payment_split"
WORKERS = ("w1", "w2")
MIRAKL_KEY = "sandbox-mirakl-key"
STRIPE_KEY = "sk_test_sandbox"

#: commands started in the background that end by themselves
ONE_SHOT = frozenset({"db-migrate", "create-pools"})

HOSTNAME_MODULE = '''"""Worker-aware hostname of task instances (written by distributed_run.py)."""

import os
import socket


def hostname():
    return f"{socket.getfqdn()}--{os.environ.get('DIST_WORKER_NAME', 'main')}"
'''


def log(message: str) -> None:
    print(f"[distributed_run {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    """Call ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except ProcessDied:
            raise
        except Exception as exc:  # noqa: BLE001 - not ready yet; remembered for the message
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"{what}: not ready after {timeout:.0f}s (last error: {last_error!r})")


class ProcessDied(RuntimeError):
    """A component exited while we waited for it."""


class Processes:
    """Processes started here, each in its own process group; stopped in reverse order."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        out = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        out.close()
        self.started.append((name, proc))
        log(f"started {name} (pid {proc.pid})")
        return proc

    def check_alive(self) -> None:
        """Raise when a component exited (one-shot commands may exit, but only with 0)."""
        for name, proc in self.started:
            code = proc.poll()
            if code is not None and not (name in ONE_SHOT and code == 0):
                tail = (self.log_dir / f"{name}.log").read_text(errors="replace")[-3000:]
                raise ProcessDied(f"{name} exited with {proc.returncode}:\n{tail}")

    def stop_all(self, grace: float = 20.0) -> None:
        for _, proc in reversed(self.started):
            if proc.poll() is None:
                _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for name, proc in reversed(self.started):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log(f"{name} did not stop in time; killing its process group")
                _signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=10)
        self.started.clear()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # the group we created (start_new_session): pgid == pid
    except ProcessLookupError:
        pass


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def recreate_database(server_url: str, name: str) -> str:
    """Drop and create database ``name`` on the server; return its psycopg2 SQLAlchemy URL."""
    base = make_url(server_url)
    admin = create_engine(
        base.set(drivername="postgresql+psycopg2", database="postgres"),
        isolation_level="AUTOCOMMIT",
    )
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return base.set(drivername="postgresql+psycopg2", database=name).render_as_string(
        hide_password=False
    )


def clear_queue(redis_url: str, queue: str) -> None:
    """Drop what an interrupted run left in our Celery queue (other queues are not touched)."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_connect_timeout=3)
    try:
        client.delete(queue)
    finally:
        client.close()


def drop_database(server_url: str, name: str) -> None:
    admin = create_engine(
        make_url(server_url).set(drivername="postgresql+psycopg2", database="postgres"),
        isolation_level="AUTOCOMMIT",
    )
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


class Api:
    """The Airflow REST API with a token from the simple auth manager."""

    def __init__(self, base_url: str, airflow_home: Path) -> None:
        self.base_url = base_url
        self.airflow_home = airflow_home
        self.session = requests.Session()

    def login(self) -> None:
        passwords = self.airflow_home / "simple_auth_manager_passwords.json.generated"
        password = json.loads(passwords.read_text())["admin"]
        answer = self.session.post(
            f"{self.base_url}/auth/token",
            json={"username": "admin", "password": password},
            timeout=10,
        )
        answer.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"

    def get(self, path: str, **params: Any) -> Any:
        answer = self.session.get(f"{self.base_url}/api/v2{path}", params=params, timeout=15)
        answer.raise_for_status()
        return answer.json()

    def send(self, method: str, path: str, body: dict[str, Any]) -> Any:
        answer = self.session.request(
            method, f"{self.base_url}/api/v2{path}", json=body, timeout=15
        )
        answer.raise_for_status()
        return answer.json()

    def xcom(self, run_id: str, task_id: str, map_index: int = -1) -> Any:
        entry = self.get(
            f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value",
            map_index=map_index,
            deserialize="true",
            stringify="false",
        )
        value = entry.get("value")
        return json.loads(value) if isinstance(value, str) else value


def airflow_env(args: argparse.Namespace, home: Path, meta_url: str, ledger_url: str) -> dict:
    """The environment every Airflow component shares (as the compose file's common env)."""
    api_url = f"http://127.0.0.1:{args.api_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__"))}
    bin_dir = str(Path(sys.executable).parent)
    meta = make_url(meta_url)
    # psycopg2 named explicitly: SQLAlchemy 2.1's plain "postgresql" means psycopg 3.
    result_backend = "db+" + meta.set(drivername="postgresql+psycopg2").render_as_string(False)
    env.update(
        {
            "PATH": os.pathsep.join([bin_dir, env.get("PATH", "")]),
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "include"), str(home / "lib")]),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__PARALLELISM": "16",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "dist_hostname.hostname",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__FERNET_KEY": "",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": meta_url,
            "AIRFLOW__CELERY__BROKER_URL": args.redis_url,
            # A queue of this run's own: two runs on one Redis never take each other's tasks.
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": args.queue,
            "AIRFLOW__CELERY__RESULT_BACKEND": result_backend,
            # One secret for every component: the scheduler signs each task's token, the
            # api-server checks it (a mismatch fails every task with "Invalid auth token").
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(args.api_port),
            "AIRFLOW__API__BASE_URL": api_url,
            "AIRFLOW__API__WORKERS": "2",
            # Workers reach the api-server here (the default assumes localhost:8080).
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            # The connector's connections and configuration, as in production (env, not the DB).
            "AIRFLOW_CONN_MIRAKL_DEFAULT": json.dumps(
                {"conn_type": "mirakl", "host": args.sandbox_url, "password": MIRAKL_KEY}
            ),
            "AIRFLOW_CONN_STRIPE_DEFAULT": json.dumps(
                {"conn_type": "stripe", "host": args.sandbox_url, "password": STRIPE_KEY}
            ),
            "AIRFLOW_CONN_MIRAKL_CONNECTOR_DB": json.dumps(
                {"conn_type": "postgres", "extra": {"sqlalchemy_url": ledger_url}}
            ),
            "AIRFLOW_VAR_MIRAKL_CONNECTOR_CONFIG": json.dumps(
                {
                    "payment_split": {
                        "product_enabled": True,
                        "service_enabled": False,
                        "execute_shards": args.shards,
                    },
                    # a first run: the generated orders are all after this go-live instant
                    "go_live": "2000-01-01T00:00:00Z",
                }
            ),
            # Manual runs only: a scheduled run must not take the batch before ours.
            "AIRFLOW_VAR_STRIPE_PAYMENT_SPLIT__SCHEDULE": "none",
        }
    )
    return env


def seed_sandbox_and_ledger(args: argparse.Namespace, ledger_url: str) -> int:
    """Generate the paid orders in the sandbox; map every generated shop in the ledger."""
    from mirakl_sandbox.client import SandboxAdmin

    from mirakl_connector.ledger import Ledger
    from mirakl_connector.ledger.records import AccountMapping

    admin = SandboxAdmin(args.sandbox_url, timeout=120)
    try:
        admin.reset({})
        summary = admin.generate(orders=args.orders, shops=args.shops, currency="EUR", seed=11)
        accounts = admin.accounts()
    finally:
        admin.close()
    ledger = Ledger(ledger_url)
    try:
        for account in accounts:
            ledger.upsert_account_mapping(
                AccountMapping(
                    mirakl_shop_id=int(account["metadata"]["miraklShopId"]),
                    stripe_account_id=account["id"],
                    payouts_enabled=True,
                    charges_enabled=True,
                    kyc_status="APPROVED",
                )
            )
    finally:
        ledger.dispose()
    return int(summary["orders"])


def check_outcome(
    args: argparse.Namespace,
    api: Api,
    run_id: str,
    ledger_url: str,
    orders: int,
) -> dict[str, Any]:
    """Compare what Stripe (the sandbox) got, what the ledger says and where the tasks ran."""
    from mirakl_sandbox.client import SandboxAdmin

    from mirakl_connector.ledger import Ledger

    plan = api.xcom(run_id, "plan_transfers")
    report = api.xcom(run_id, "report")
    tis = api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", limit=200)["task_instances"]
    mapped = [ti for ti in tis if ti["task_id"] == "create_transfers"]
    by_worker: dict[str, list[int]] = {}
    for ti in mapped:
        worker = (ti.get("hostname") or "?").rsplit("--", 1)[-1]
        by_worker.setdefault(worker, []).append(ti["map_index"])

    admin = SandboxAdmin(args.sandbox_url, timeout=120)
    try:
        transfers = admin.transfers()
    finally:
        admin.close()
    per_order = Counter(t["metadata"]["miraklId"] for t in transfers)
    ledger = Ledger(ledger_url)
    try:
        statuses = {k: v for k, v in ledger.count_transfers_by_status().items() if v}
    finally:
        ledger.dispose()

    pending_planned = (plan.get("counts") or {}).get("TRANSFER_PENDING", 0)
    checks = {
        "run_succeeded": True,
        "planned_every_order": pending_planned == orders,
        "one_transfer_per_pending_row": len(transfers) == pending_planned,
        "no_duplicate_mirakl_id": bool(per_order) and max(per_order.values()) == 1,
        "ledger_all_created": statuses == {"TRANSFER_CREATED": orders},
        "report_without_failures": report.get("failed_count") == 0,
        "every_shard_succeeded": len(mapped) == args.shards
        and all(ti["state"] == "success" for ti in mapped),
        "shards_in_stripe_pool": all(ti.get("pool") == "stripe_api" for ti in mapped),
        "both_workers_ran_shards": set(WORKERS) <= set(by_worker),
    }
    return {
        "ok": all(checks.values()),
        "checks": checks,
        "orders": orders,
        "planned_pending": pending_planned,
        "stripe_transfers": len(transfers),
        "ledger_statuses": statuses,
        "shards": len(mapped),
        "shards_by_worker": {k: sorted(v) for k, v in sorted(by_worker.items())},
        "report_steps": report.get("steps"),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    timings: dict[str, float] = {}
    started = time.monotonic()

    def mark(name: str) -> None:
        timings[name] = round(time.monotonic() - started, 1)

    workdir = Path(args.workdir).resolve()
    if workdir.exists():
        shutil.rmtree(workdir)
    home = workdir / "airflow_home"
    log_dir = workdir / "logs"
    for folder in (home / "lib", log_dir):
        folder.mkdir(parents=True)
    (home / "lib" / "dist_hostname.py").write_text(HOSTNAME_MODULE)
    for port in (args.api_port, args.sandbox_port):
        if not port_is_free(port):
            raise RuntimeError(f"port {port} is in use: pick another (--api-port/--sandbox-port)")
    args.sandbox_url = f"http://127.0.0.1:{args.sandbox_port}"

    meta_url = recreate_database(args.pg_url, args.meta_db)
    ledger_url = recreate_database(args.pg_url, args.ledger_db)
    clear_queue(args.redis_url, args.queue)
    mark("databases_and_broker_ready")

    env = airflow_env(args, home, meta_url, ledger_url)
    processes = Processes(log_dir)
    with ExitStack() as stack:
        if not args.keep_running:
            stack.callback(processes.stop_all)
        airflow = str(Path(sys.executable).parent / "airflow")
        # The metadata DB migrates while the sandbox starts and the batch is generated.
        migrate = processes.start("db-migrate", [airflow, "db", "migrate"], env)
        processes.start(
            "sandbox",
            [sys.executable, "-m", "mirakl_sandbox", "--port", str(args.sandbox_port)],
            env,
        )
        wait_for(
            "sandbox",
            lambda: requests.get(f"{args.sandbox_url}/_sandbox/state", timeout=2).ok,
            30,
        )
        orders = seed_sandbox_and_ledger(args, ledger_url)
        mark("sandbox_seeded")
        log(f"sandbox: {orders} paid orders over {args.shops} shops")

        if migrate.wait(timeout=180) != 0:
            tail = (log_dir / "db-migrate.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"airflow db migrate failed:\n{tail}")
        processes.started.remove(("db-migrate", migrate))
        mark("metadata_db_migrated")
        # The pools are created while the components start (tasks wait for their pool).
        pools = processes.start(
            "create-pools",
            [str(REPO_ROOT / "scripts/create_pools.sh")],
            {**env, "PYTHON": sys.executable},
        )
        processes.start("api-server", [airflow, "api-server"], env)
        processes.start("scheduler", [airflow, "scheduler", "--skip-serve-logs"], env)
        processes.start("dag-processor", [airflow, "dag-processor"], env)
        processes.start("triggerer", [airflow, "triggerer", "--skip-serve-logs"], env)
        for name in WORKERS:
            node = f"{name}.{os.getpid()}@%h"  # unique even when two runs share the host
            worker = ["celery", "worker", "-H", node, "-q", args.queue, "--concurrency", "2"]
            processes.start(
                f"worker-{name}",
                [airflow, *worker, "--skip-serve-logs"],
                {**env, "DIST_WORKER_NAME": name},
            )

        base_url = f"http://127.0.0.1:{args.api_port}"
        api = Api(base_url, home)

        def healthy() -> bool:
            processes.check_alive()
            health = requests.get(f"{base_url}/api/v2/monitor/health", timeout=3).json()
            return all(
                (health.get(part) or {}).get("status") == "healthy"
                for part in ("metadatabase", "scheduler", "dag_processor", "triggerer")
            )

        wait_for("Airflow components", healthy, 180, interval=1)
        pools_log = log_dir / "create-pools.log"
        if pools.wait(timeout=120) != 0:
            raise RuntimeError(f"create_pools.sh failed:\n{pools_log.read_text()[-2000:]}")
        processes.started.remove(("create-pools", pools))
        log(pools_log.read_text().strip().splitlines()[-1])

        def workers_ready() -> bool:
            processes.check_alive()
            return all(
                " ready." in (log_dir / f"worker-{name}.log").read_text(errors="replace")
                for name in WORKERS
            )

        wait_for("Celery workers", workers_ready, 120, interval=1)
        mark("stack_ready")
        api.login()
        wait_for("the DAG to be parsed", lambda: api.get(f"/dags/{DAG_ID}"), 120, interval=1)
        api.send("PATCH", f"/dags/{DAG_ID}", {"is_paused": False})
        run_id = api.send("POST", f"/dags/{DAG_ID}/dagRuns", {"logical_date": None, "conf": {}})[
            "dag_run_id"
        ]
        log(f"triggered {run_id}")

        def finished() -> str | None:
            processes.check_alive()
            state = api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}")["state"]
            return state if state in ("success", "failed") else None

        state = wait_for("the DAG run", finished, args.run_timeout, interval=2)
        mark("run_finished")
        log(f"run {run_id}: {state}")
        if state != "success":
            tis = api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances", limit=200)
            states = [(t["task_id"], t["map_index"], t["state"]) for t in tis["task_instances"]]
            result = {"ok": False, "checks": {"run_succeeded": False}, "task_states": states}
        else:
            result = check_outcome(args, api, run_id, ledger_url, orders)
        mark("checked")
        if args.keep_running:
            log(f"left running: api {base_url} (admin password in {home}), logs in {log_dir}")
    result.update({"run_id": run_id, "timings_s": timings, "logs": str(log_dir)})
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--shops", type=int, default=20)
    parser.add_argument("--shards", type=int, default=8, help="mapped create_transfers tasks")
    parser.add_argument("--workdir", default=str(REPO_ROOT / ".distributed_run"))
    parser.add_argument("--api-port", type=int, default=8091)
    parser.add_argument("--sandbox-port", type=int, default=8775)
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("DIST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432"),
        help="PostgreSQL server (user allowed to create databases)",
    )
    parser.add_argument("--meta-db", default="airflow_dist", help="recreated at the start")
    parser.add_argument("--ledger-db", default="ledger_dist", help="recreated at the start")
    parser.add_argument("--drop-databases", action="store_true", help="drop both at the end")
    parser.add_argument(
        "--redis-url", default=os.environ.get("DIST_REDIS_URL", "redis://127.0.0.1:6379/5")
    )
    parser.add_argument("--run-timeout", type=float, default=240)
    parser.add_argument("--keep-running", action="store_true", help="leave the stack up")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.queue = f"mirakl_connector_{args.meta_db}"
    # A TERM (a test's timeout, CI cancelling) must still stop what was started: exit cleanly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        result = run(args)
    except Exception as exc:  # noqa: BLE001 - reported as the result, with the logs' place
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    if args.drop_databases and not args.keep_running:
        for name in (args.meta_db, args.ledger_db):
            try:
                drop_database(args.pg_url, name)
            except Exception as exc:  # noqa: BLE001 - the result matters more than the cleanup
                log(f"could not drop database {name}: {exc}")
    out = Path(args.workdir).resolve() / "result.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0 if result.get("ok") else 1


if __name__ == "__main__":
    sys.path.insert(0, str(REPO_ROOT / "include"))
    raise SystemExit(main())
