"""Every DAG file imports cleanly and follows the project's conventions."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.exceptions import ParamValidationError

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
PAYMENT_SPLIT = "stripe_payment_split"


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=str(DAGS_DIR))


def _load_dag_file(path: Path):
    """Execute a DAG file as a fresh module (so env changes are seen) and return its DAGs."""
    spec = importlib.util.spec_from_file_location(f"dagfile_{uuid.uuid4().hex}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from airflow.sdk import DAG

    return {obj.dag_id: obj for obj in vars(module).values() if isinstance(obj, DAG)}


def test_no_import_errors(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}
    assert PAYMENT_SPLIT in dagbag.dag_ids


def test_every_dag_follows_conventions(dagbag: DagBag) -> None:
    assert dagbag.dags, "no DAG found"
    for dag_id, dag in dagbag.dags.items():
        assert dag.doc_md and len(dag.doc_md) > 200, f"{dag_id}: doc_md missing or thin"
        assert dag.tags, f"{dag_id}: no tags"
        assert dag.catchup is False, f"{dag_id}: catchup must be False"
        assert dag.default_args.get("retries", 0) >= 1, f"{dag_id}: retries not set"
        for task in dag.tasks:
            assert task.owner not in (None, "", "airflow"), f"{dag_id}.{task.task_id}: owner"
            assert task.on_failure_callback, f"{dag_id}.{task.task_id}: no failure notifier"


def test_payment_split_structure(dagbag: DagBag) -> None:
    dag = dagbag.dags[PAYMENT_SPLIT]
    assert set(dag.tags) == {"mirakl", "stripe", "payments"}
    assert dag.max_active_runs == 1
    assert dag.task_dict["wait_for_mirakl"].downstream_task_ids == {"plan_transfers"}
    assert dag.task_dict["plan_transfers"].downstream_task_ids == {"shard_transfers"}
    assert dag.task_dict["shard_transfers"].downstream_task_ids == {"create_transfers"}
    assert dag.task_dict["create_transfers"].downstream_task_ids == {"reconcile"}
    assert dag.task_dict["reconcile"].downstream_task_ids == {"report"}
    assert dag.task_dict["report"].downstream_task_ids == set()
    assert dag.task_dict["report"].summary_task_ids[-1] == "reconcile"
    reconcile = dag.task_dict["reconcile"]
    assert (reconcile.workflow, reconcile.step) == ("reconciliation", "reconcile")
    assert reconcile.step_kwargs == {"flow": "payment_split"}
    assert dag.task_dict["plan_transfers"].step == "plan"
    # mapped over shards: one create_transfers task per {"shard": i, "shards": n}
    create = dag.task_dict["create_transfers"]
    assert create.partial_kwargs["step"] == "execute"
    assert set(create.expand_input.value) == {"step_kwargs"}
    sensor = dag.task_dict["wait_for_mirakl"]
    assert sensor.mode == "reschedule"
    assert sensor.poke_interval == 30
    assert sensor.timeout == 600
    plan = dag.task_dict["plan_transfers"]
    assert plan.retries == 2
    assert plan.retry_exponential_backoff == 2.0
    assert plan.retry_delay.total_seconds() == 60


def test_payment_split_params(dagbag: DagBag) -> None:
    params = dagbag.dags[PAYMENT_SPLIT].params
    assert params.get_param("since").schema == {
        **params.get_param("since").schema,
        "type": ["null", "string"],
        "format": "date-time",
    }
    assert params.get_param("order_ids").schema["type"] == ["null", "array"]
    assert params.get_param("order_ids").schema["items"] == {"type": "string"}
    assert params.get_param("dry_run").schema["type"] == ["null", "boolean"]
    assert params.get_param("since").resolve("2026-03-01T00:00:00+00:00")
    with pytest.raises(ParamValidationError):
        params.get_param("since").resolve("not-a-date")
    with pytest.raises(ParamValidationError):
        params.get_param("dry_run").resolve("yes")


def _form_marks_required(schema: dict) -> bool:
    """Airflow 3.3's trigger form (ui/src/components/FlexibleForm): a param is shown as required
    when its schema has a ``type`` that does not include ``"null"``."""
    kind = schema.get("type")
    return bool(kind) and (not isinstance(kind, list) or "null" not in kind)


def test_connector_dags_trigger_forms_have_no_required_field(dagbag: DagBag) -> None:
    """Every param of a connector DAG is optional (a scheduled run uses the defaults): the form
    must not mark "Only these orders" or "Dry run" as required."""
    required = [
        f"{dag_id}.{name}"
        for dag_id, dag in dagbag.dags.items()
        if not dag_id.startswith("example_")
        for name in dag.params
        if _form_marks_required(dag.params.get_param(name).schema)
    ]
    assert required == []


def test_schedule_default_and_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    path = DAGS_DIR / f"{PAYMENT_SPLIT}.py"
    default = _load_dag_file(path)[PAYMENT_SPLIT]
    assert default.schedule == "1-59/5 * * * *"

    monkeypatch.setenv("AIRFLOW_VAR_STRIPE_PAYMENT_SPLIT__SCHEDULE", "15 7 * * *")
    assert _load_dag_file(path)[PAYMENT_SPLIT].schedule == "15 7 * * *"

    monkeypatch.setenv("AIRFLOW_VAR_STRIPE_PAYMENT_SPLIT__SCHEDULE", "none")
    assert _load_dag_file(path)[PAYMENT_SPLIT].schedule is None


_PARSE_WITHOUT_IO = r"""
import importlib.util, json, socket, sqlite3, sys
import airflow.sdk  # the framework may set itself up; the DAG files may not do I/O

def forbidden(what):
    def _raise(*args, **kwargs):
        raise AssertionError(f"{what} called while parsing a DAG file")
    return _raise

socket.socket.connect = forbidden("socket.connect")
sqlite3.connect = forbidden("sqlite3.connect")
import sqlalchemy
sqlalchemy.create_engine = forbidden("sqlalchemy.create_engine")

parsed = {}
for i, path in enumerate(json.loads(sys.argv[1])):
    spec = importlib.util.spec_from_file_location(f"dag_under_test_{i}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    parsed[path] = sorted(
        obj.dag_id for obj in vars(module).values() if isinstance(obj, airflow.sdk.DAG)
    )
# The providers' packages load only their light parts: the workflows' specs (whose builders
# import the workflow when a task runs), the Stripe rate limits the pools are sized from, the
# event types the webhook trigger filters on and the alert recipients the notifier reads.
heavy = ("mirakl_connector.ledger", "mirakl_connector.mirakl", "mirakl_connector.hyperwallet",
         "mirakl_connector.stripe", "mirakl_connector.operations",
         "mirakl_connector.reconciliation", "mirakl_sandbox")
light = {*heavy, "mirakl_connector.stripe.limits", "mirakl_connector.stripe.event_types",
         "mirakl_connector.operations.mail"}
parsed["__heavy_modules__"] = sorted(
    m for m in sys.modules
    if m.split(".")[0] == "stripe"
    or (m.startswith(heavy) and m not in light and not m.endswith(".specs"))
)
print(json.dumps(parsed))
"""


def test_dag_files_do_no_io_at_parse_time() -> None:
    files = sorted(str(p) for p in DAGS_DIR.glob("*.py"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_VAR_")}
    env["AIRFLOW_VAR_STRIPE_PAYMENT_SPLIT__SCHEDULE"] = "*/10 * * * *"
    result = subprocess.run(
        [sys.executable, "-c", _PARSE_WITHOUT_IO, json.dumps(files)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    parsed = json.loads(result.stdout.strip().splitlines()[-1])
    # The DAG processor re-imports our modules on every parse of every file (it pre-imports
    # only airflow.*): the SDKs, the ledger and the workflows load when a task runs, not here.
    assert parsed.pop("__heavy_modules__") == []
    assert all(parsed[f] for f in files), parsed


def test_the_mapped_write_steps_are_exactly_the_sharded_steps(dagbag: DagBag) -> None:
    """Each sharded step is mapped in its DAG, and no other workflow step is: a step mapped
    without taking ``shard`` would have every mapped task send every row."""
    from mirakl_connector.airflow.workflows import SPECS

    mapped = set()
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            kwargs = getattr(task, "partial_kwargs", None)
            if kwargs and "workflow" in kwargs:
                mapped.add((kwargs["workflow"], kwargs["step"]))
                assert kwargs["pool"] == "stripe_api", task.task_id
    assert mapped == {(w.name, s.name) for w in SPECS.values() for s in w.sharded_steps}
    assert mapped  # the three money-moving DAGs map their write steps
