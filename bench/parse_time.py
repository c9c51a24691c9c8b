"""Cold parse time of the DAG files, each in a fresh interpreter, and of the whole folder.

The scheduler's DAG processor re-parses every file about every 30 s; a file that imports heavy
modules at the top (SDKs, SQLAlchemy, our clients) pays that on every parse. Each measurement
starts a new Python process, imports Airflow's task SDK first (the processor has it loaded
already; its cost is printed apart), then times the DAG file alone.

    PYTHONPATH=include python bench/parse_time.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_table  # noqa: E402

DAGS = Path(__file__).resolve().parents[1] / "dags"

_PROBE = r"""
import importlib.util, json, sys, time
t0 = time.perf_counter()
import airflow.sdk  # what the DAG processor has loaded before it parses a file
t1 = time.perf_counter()
for n, path in enumerate(sys.argv[1:]):
    spec = importlib.util.spec_from_file_location(f"dagfile_{n}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
t2 = time.perf_counter()
print(json.dumps({"airflow": t1 - t0, "dags": t2 - t1}))
"""


def measure(paths: list[Path]) -> dict[str, float]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, *map(str, paths)],
        capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    files = sorted(p for p in DAGS.glob("*.py") if not p.name.startswith("_"))
    rows = []
    airflow_times = []
    for path in files:
        result = measure([path])
        airflow_times.append(result["airflow"])
        rows.append((path.name, result["dags"], ""))
    total = sum(r[1] for r in rows)
    folder = measure(files)
    rows += [
        ("sum of the files, each cold (s)", total, "<= 1.0"),
        ("whole folder in one process (s)", folder["dags"], "<= 1.0"),
        ("import airflow.sdk first, median (s)", sorted(airflow_times)[len(files) // 2], "apart"),
    ]
    print_table(f"DAG parse time, {len(files)} files, fresh interpreter each (seconds)", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
