"""One typed description of each workflow: its name, settings, builder and steps.

A workflow used to be described in four string tables (the registry's ``"module:build"``, the
sharded steps, the pools, the module's own name constants) that had to agree by hand. Each
workflow now declares one :class:`WorkflowSpec`, in a light ``specs`` module next to it (no SDK,
no SQLAlchemy: the DAG files import the specs when they are parsed); the registry, the sharding,
the pools, the Airflow operator and the DAGs all read it. The builder is a small typed function
that imports the workflow module when it is called, so parsing a DAG never loads a workflow.

A step is named by its job's method (``"plan"``, ``"execute"``); a unit test checks every spec's
steps against the class its builder returns, and its pools against the pools Airflow creates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, TypeVar

from mirakl_connector.core.errors import ConfigurationError

if TYPE_CHECKING:
    from mirakl_connector.core.registry import Resources

#: Airflow pools a step can run in (sized in :mod:`mirakl_connector.airflow.pools`).
PoolName = Literal["stripe_api", "mirakl_api", "hyperwallet_api", "default_pool"]
#: a step that writes to Stripe (its Mirakl calls, if any, are few)
STRIPE_POOL: Final = "stripe_api"
#: a step that only calls Mirakl (and perhaps reads a few Stripe objects)
MIRAKL_POOL: Final = "mirakl_api"
#: a step that writes to Hyperwallet
HYPERWALLET_POOL: Final = "hyperwallet_api"
#: a step that calls no provider (e-mail, the operator's own webhook, the ledger)
DEFAULT_POOL: Final = "default_pool"

JobT = TypeVar("JobT", covariant=True)

#: ``builder(resources, config, run_id)``: the job of one run, wired to its clients and settings
Builder = Callable[["Resources", Mapping[str, Any], "str | None"], JobT]


@dataclass(frozen=True)
class StepSpec:
    """One step of a workflow: the job's method ``name``, the pool it runs in, and whether it
    runs as one mapped task per shard of its PENDING rows (:mod:`mirakl_connector.core.shards`).
    """

    name: str
    pool: PoolName
    sharded: bool = False

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name.startswith("_"):
            raise ConfigurationError(f"a step is a public method name, got {self.name!r}")


@dataclass(frozen=True)
class WorkflowSpec(Generic[JobT]):
    """Everything the connector needs to know about one workflow, declared once.

    :param name: the workflow's name (summaries, ledger run ids, the DAGs' tasks).
    :param section: its section of the ``mirakl_connector_config`` Variable (``execute_shards``
        of a sharded workflow lives there); ``None`` when it reads only shared sections.
    :param settings: returns the settings class parsed from ``section`` (imported on call).
    :param builder: builds the job of one run (imports the workflow module on call).
    :param steps: the job's steps the DAGs may run, each with its pool.
    """

    name: str
    section: str | None
    settings: Callable[[], type[Any]] | None
    builder: Builder[JobT]
    steps: tuple[StepSpec, ...]

    def __post_init__(self) -> None:
        names = [step.name for step in self.steps]
        if not names or len(set(names)) != len(names):
            raise ConfigurationError(f"workflow {self.name!r} needs distinct steps, got {names}")
        if any(step.sharded for step in self.steps) and self.section is None:
            raise ConfigurationError(f"sharded workflow {self.name!r} needs a settings section")

    def step(self, name: str) -> StepSpec:
        """The step ``name``; :class:`ConfigurationError` (at DAG parse time) if undeclared."""
        for step in self.steps:
            if step.name == name:
                return step
        known = ", ".join(s.name for s in self.steps)
        raise ConfigurationError(f"workflow {self.name!r} has no step {name!r} (steps: {known})")

    @property
    def settings_section(self) -> str:
        """:attr:`section`, for a workflow that has one (:class:`ConfigurationError` if not)."""
        if self.section is None:
            raise ConfigurationError(f"workflow {self.name!r} has no settings section")
        return self.section

    @property
    def sharded_steps(self) -> tuple[StepSpec, ...]:
        return tuple(step for step in self.steps if step.sharded)

    def build(self, resources: Resources, config: Mapping[str, Any], run_id: str | None) -> JobT:
        """The job of one run of this workflow."""
        return self.builder(resources, config, run_id)
