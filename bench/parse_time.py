"""Parse time of the DAG files as the DAG processor pays it, each in a fresh interpreter.

The DAG processor re-parses every file about every 30 s, each time in a child process forked
from itself. Before it forks, it has Airflow loaded and imports the ``airflow.*`` modules the file
names (``[dag_processor] parsing_pre_import_modules``, on by default), then freezes what it
has loaded out of the garbage collector's sight (``gc.freeze()``); everything else the file
imports (our ``mirakl_connector`` modules, SDKs) and builds (the DAG object) is paid again on
every parse. The probe does the same in a new process: it imports the DAG processor's module,
pre-imports the file's ``airflow.*`` imports the way the processor does (printed apart), then
times the DAG file alone. It also times the whole folder in one process (shared imports paid
once), and prints the cost of the Airflow preload.

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
import importlib, importlib.util, json, sys, time
t0 = time.perf_counter()
import airflow.dag_processing.processor  # what the DAG processor has loaded before it forks
from airflow.utils.file import iter_airflow_imports
for path in sys.argv[1:]:  # parsing_pre_import_modules: the file's airflow.* imports
    for name in iter_airflow_imports(path):
        importlib.import_module(name)
import gc
gc.freeze()  # as the DAG processor does before forking: the preload is never scanned again
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
        ("Airflow preload, median (s)", sorted(airflow_times)[len(files) // 2], "apart"),
    ]
    print_table(
        f"DAG parse time after the DAG processor's preload, {len(files)} files, a fresh "
        "interpreter each (seconds)",
        rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
