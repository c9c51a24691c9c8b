"""The demo marketplace: its files, loading it into a sandbox, and one pass of every workflow.

``scripts/demo.sh`` starts the sandbox with ``demo.json`` and then runs ``python -m
mirakl_sandbox.demo_run load-extras SANDBOX_URL``: the Hyperwallet part
(``demo_hyperwallet.json``) is merged in and the demo's faults (``demo_faults.json``: one
transfer whose answer is lost, so that an item is *in doubt* on the payments console) are set.
Airflow's DAGs then run the workflows on their schedules.

The tests tell the same story without Airflow (seconds instead of minutes): :func:`load_demo`
puts the same data and faults in a sandbox, and :func:`run_pass` runs every workflow's steps once
in the order the DAGs' tasks run them, with real clients and a real ledger
(``tests/integration/test_demo_scenario.py`` pins what each step does; the browser test of the
payments console looks at the ledger such a pass leaves).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mirakl_sandbox.client import SandboxAdmin
from mirakl_sandbox.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
DEMO = SCENARIOS / "demo.json"
#: The Hyperwallet shops 101-108 and invoices 9101-9108, merged next to demo.json.
DEMO_HYPERWALLET = SCENARIOS / "demo_hyperwallet.json"
#: The demo's deliberate fault (a sandbox ``PUT /_sandbox/faults`` body).
DEMO_FAULTS = SCENARIOS / "demo_faults.json"
#: The order whose transfer the demo's fault leaves in doubt.
IN_DOUBT_ORDER = "ORD-1016-A"

#: (workflow, step) in the order the DAGs' tasks run them.
PIPELINE: tuple[tuple[str, str], ...] = (
    ("seller_onboarding", "sync"),
    ("kyc_monitor", "monitor"),
    ("payment_validation", "validate"),
    ("payment_validation", "capture"),
    ("payment_split", "plan"),
    ("payment_split", "execute"),
    ("payment_refund", "plan"),
    ("payment_refund", "refund"),
    ("payment_refund", "reverse"),
    ("seller_settlement", "plan"),
    ("seller_settlement", "transfer"),
    ("seller_settlement", "payout"),
    ("hyperwallet_seller_extract", "sync"),
    ("hyperwallet_bank_account_extract", "sync"),
    ("hyperwallet_invoice_payments", "pay"),
    ("failed_operations", "alert"),
    ("operator_notifications", "deliver"),
)


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def load_demo_extras(admin: SandboxAdmin) -> None:
    """Merge the Hyperwallet part into the sandbox's state and set the demo's faults."""
    admin.load(read_json(DEMO_HYPERWALLET))
    admin.set_faults(read_json(DEMO_FAULTS))


def load_demo(admin: SandboxAdmin) -> None:
    """The whole demo in a sandbox, as ``demo.sh`` leaves it before Airflow starts."""
    admin.reset(load_scenario(DEMO))
    load_demo_extras(admin)


def run_pass(
    resources: Callable[[], Any],
    config: Mapping[str, Any],
    name: str,
    steps: Sequence[tuple[str, str] | tuple[str, str, Mapping[str, Any]]] = PIPELINE,
) -> dict[str, dict[str, Any]]:
    """Every step of ``steps`` (by default :data:`PIPELINE`) once, each ``(workflow, step)`` or
    ``(workflow, step, params)``; each job gets fresh ``resources()`` (a
    :class:`~mirakl_connector.core.registry.Resources`) and the run id
    ``<name>-<workflow>``. Returns each step's summary, keyed ``workflow.step`` (then
    ``:<param values>`` when it has params)."""
    from mirakl_connector.airflow.workflows import spec_named
    from mirakl_connector.core.registry import run_step

    summaries = {}
    for workflow, step, *rest in steps:
        params = dict(rest[0]) if rest else {}
        spec = spec_named(workflow)
        job = spec.build(resources(), config, f"{name}-{workflow}")
        key = f"{workflow}.{step}" + (":" + ",".join(map(str, params.values())) if params else "")
        summaries[key] = run_step(job, spec.step(step), params).to_dict()
    return summaries


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mirakl_sandbox.demo_run")
    sub = parser.add_subparsers(dest="command", required=True)
    extras = sub.add_parser("load-extras", help="merge the Hyperwallet part, set the faults")
    extras.add_argument("sandbox_url")
    args = parser.parse_args(argv)
    admin = SandboxAdmin(args.sandbox_url)
    try:
        load_demo_extras(admin)
    finally:
        admin.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
