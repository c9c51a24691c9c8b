"""The library core must import without Airflow: only ``mirakl_connector.airflow`` may use it."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import mirakl_connector

INCLUDE = Path(mirakl_connector.__file__).resolve().parent.parent


def core_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(mirakl_connector.__path__, "mirakl_connector."):
        if info.name.startswith("mirakl_connector.airflow") or info.name.endswith("__main__"):
            continue
        names.append(info.name)
    return names


def test_core_modules_import_with_airflow_blocked():
    modules = core_modules()
    assert "mirakl_connector.stripe.payment_split" in modules
    script = (
        "import sys, importlib\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'airflow' or name.startswith('airflow.'):\n"
        "            raise ImportError('the core imported ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "print('ok', len(sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(INCLUDE), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("ok")
