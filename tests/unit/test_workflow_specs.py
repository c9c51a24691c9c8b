"""Every workflow's spec against its job: the steps exist, the settings parse, the names agree.

The specs are what the DAGs, the pools and the sharding read; a spec naming a step its job does
not have would only fail when that task ran, so it fails here.
"""

from __future__ import annotations

import inspect
import json
import typing
from pathlib import Path
from unittest import mock

import pytest

from mirakl_connector.airflow import pools
from mirakl_connector.airflow.workflows import SPECS
from mirakl_connector.core.registry import Resources
from mirakl_connector.core.workflow_spec import StepSpec, WorkflowSpec

DEMO_CONFIG = Path(__file__).resolve().parents[2] / "scripts" / "demo-config.json"
SPEC_LIST = sorted(SPECS.values(), key=lambda spec: spec.name)


def _job_class(spec: WorkflowSpec[typing.Any]) -> type:
    """The class ``spec.builder`` returns, read from the workflow module's own ``build``
    annotation (the builder imports that module when called)."""
    module = inspect.getmodule(spec.builder)
    assert module is not None
    hints = typing.get_type_hints(spec.builder, globalns=_checking_namespace(module))
    job = hints["return"]
    assert inspect.isclass(job), (spec.name, job)
    return job


def _checking_namespace(module: typing.Any) -> dict[str, typing.Any]:
    """The spec module's names plus those it imports only for type checking."""
    namespace = dict(vars(module))
    source = inspect.getsource(module)
    block = source.split("if TYPE_CHECKING:", 1)[1].split("\n\n", 1)[0]
    exec(block.replace("\n    ", "\n").strip(), namespace)  # noqa: S102 - our own imports
    return namespace


@pytest.mark.parametrize("spec", SPEC_LIST, ids=lambda spec: spec.name)
def test_every_step_is_a_public_method_of_the_job(spec):
    job = _job_class(spec)
    for step in spec.steps:
        method = getattr(job, step.name, None)
        assert callable(method), f"{job.__name__} has no step {step.name!r}"
        if step.sharded:
            assert "shard" in inspect.signature(method).parameters, (spec.name, step.name)


@pytest.mark.parametrize("spec", SPEC_LIST, ids=lambda spec: spec.name)
def test_the_builder_returns_the_job_it_is_typed_with(spec):
    """Each builder builds the class its annotation names (checked with fake clients)."""
    config = json.loads(DEMO_CONFIG.read_text(encoding="utf-8"))
    resources = Resources(
        mirakl=mock.MagicMock,
        stripe=mock.MagicMock,
        ledger=mock.MagicMock,
        mailer=mock.MagicMock,
        http=mock.MagicMock,
        hyperwallet=mock.MagicMock,
    )
    job = spec.build(resources, config, "spec-check")
    assert isinstance(job, _job_class(spec))


@pytest.mark.parametrize("spec", SPEC_LIST, ids=lambda spec: spec.name)
def test_the_settings_class_parses_its_section(spec):
    if spec.settings is None:
        assert spec.section is None or spec.name == "hyperwallet_documents_extract"
        return
    settings = spec.settings()
    assert callable(getattr(settings, "from_mapping", None)), settings


@pytest.mark.parametrize("spec", SPEC_LIST, ids=lambda spec: spec.name)
def test_the_workflow_module_names_itself_after_its_spec(spec):
    module = inspect.getmodule(_job_class(spec))
    assert module.WORKFLOW == spec.name


def test_every_pool_a_spec_names_is_created():
    created = {pool.name for pool in pools.pool_specs("live")} | {pools.DEFAULT_POOL}
    for spec in SPEC_LIST:
        for step in spec.steps:
            assert step.pool in created, (spec.name, step.name, step.pool)


def test_a_spec_checks_its_own_shape():
    def builder(resources, config, run_id):
        return None

    with pytest.raises(Exception, match="distinct steps"):
        WorkflowSpec("w", "w", None, builder, (StepSpec("a", "stripe_api"),) * 2)
    with pytest.raises(Exception, match="needs a settings section"):
        WorkflowSpec("w", None, None, builder, (StepSpec("a", "stripe_api", sharded=True),))


def test_the_three_money_moving_workflows_are_sharded_on_their_writes():
    sharded = {(s.name, step.name) for s in SPEC_LIST for step in s.sharded_steps}
    assert sharded == {
        ("payment_split", "execute"),
        ("payment_refund", "refund"),
        ("payment_refund", "reverse"),
        ("seller_settlement", "transfer"),
        ("seller_settlement", "payout"),
    }
