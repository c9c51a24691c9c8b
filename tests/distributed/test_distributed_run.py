"""The payment split on CeleryExecutor with two workers: every transfer made exactly once.

Runs ``scripts/distributed_run.sh`` (the same script a developer runs) on free ports, in the
test's tmp dir, and asserts on the JSON it prints. Needs PostgreSQL and Redis on loopback: when
either is missing the test is skipped with the reason, except under ``CI=true`` where it fails.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "distributed_run.sh"
ORDERS = 3000
SHARDS = 8
BUDGET_S = 300

pytestmark = [pytest.mark.distributed, pytest.mark.slow]


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _require(service: str, port: int) -> None:
    if _listening(port):
        return
    message = f"{service} is not listening on 127.0.0.1:{port}"
    if _in_ci():
        pytest.fail(f"{message} (CI=true: the distributed run must run; .ci/run starts it)")
    pytest.skip(f"{message}: the CeleryExecutor run needs it (start it to run this test)")


@pytest.mark.timeout(BUDGET_S + 60)
def test_payment_split_on_two_celery_workers(tmp_path):
    _require("Redis", 6379)
    _require("PostgreSQL", 5432)
    env = {**os.environ, "PYTHON": sys.executable}
    # The stack is configured by the script alone: nothing of the test session's Airflow.
    for name in [n for n in env if n.startswith(("AIRFLOW_", "AIRFLOW__"))]:
        del env[name]
    options = {
        "--orders": ORDERS,
        "--shards": SHARDS,
        "--workdir": tmp_path / "run",
        "--api-port": _free_port(),
        "--sandbox-port": _free_port(),
        "--run-timeout": 200,
        # Databases (and so the Celery queue) of this test's own: another suite running on
        # this machine at the same time is left alone; both are dropped at the end.
        "--meta-db": f"airflow_dist_t{os.getpid()}",
        "--ledger-db": f"ledger_dist_t{os.getpid()}",
    }
    argv = [str(SCRIPT), "--drop-databases"]
    for option, value in options.items():
        argv += [option, str(value)]
    started = time.monotonic()
    completed = subprocess.run(
        argv,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUDGET_S,
    )
    elapsed = time.monotonic() - started
    assert completed.stdout, f"no result; stderr:\n{completed.stderr[-4000:]}"
    result = json.loads(completed.stdout)
    print(f"\ndistributed run: {elapsed:.0f}s, timings {result.get('timings_s')}")
    print(f"shards by worker: {result.get('shards_by_worker')}; logs: {result.get('logs')}")
    assert "error" not in result, result["error"]
    failed = [name for name, ok in result["checks"].items() if not ok]
    assert failed == [], f"failed checks {failed}: {json.dumps(result, indent=1)[:3000]}"
    # The numbers behind the checks: every planned row paid exactly once, on both workers.
    assert result["planned_pending"] == result["stripe_transfers"] == ORDERS
    assert result["ledger_statuses"] == {"TRANSFER_CREATED": ORDERS}
    by_worker = result["shards_by_worker"]
    assert set(by_worker) == {"w1", "w2"} and all(by_worker.values())
    assert sorted(i for shards in by_worker.values() for i in shards) == list(range(SHARDS))
    assert completed.returncode == 0
