"""The catalogue of every workflow's spec, by name.

It sits in the ``airflow`` package because it is the one layer above every provider (the layers
forbid ``core`` or ``stripe`` from knowing about ``hyperwallet``); it imports no Airflow and no
SDK, only the providers' light ``specs`` modules, so the DAG files, the pool definitions and the
sandbox's runners can all read it. The operator looks a mapped task's workflow up here by name
(a mapped task's arguments are serialised, so they carry the name, not the spec).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.core.workflow_spec import WorkflowSpec
from mirakl_connector.hyperwallet import specs as hyperwallet_specs
from mirakl_connector.operations import specs as operations_specs
from mirakl_connector.reconciliation.specs import RECONCILIATION
from mirakl_connector.stripe import specs as stripe_specs


def _by_name(*specs: WorkflowSpec[Any]) -> dict[str, WorkflowSpec[Any]]:
    catalogue: dict[str, WorkflowSpec[Any]] = {}
    for spec in specs:
        if spec.name in catalogue:
            raise ConfigurationError(f"two workflows are named {spec.name!r}")
        catalogue[spec.name] = spec
    return catalogue


#: every workflow the DAGs can run, by name
SPECS: Mapping[str, WorkflowSpec[Any]] = _by_name(
    *stripe_specs.SPECS,
    *hyperwallet_specs.SPECS,
    *operations_specs.SPECS,
    RECONCILIATION,
)


def spec_named(name: str) -> WorkflowSpec[Any]:
    """The spec of workflow ``name``; :class:`ConfigurationError` lists the known ones."""
    try:
        return SPECS[name]
    except KeyError:
        known = ", ".join(sorted(SPECS))
        raise ConfigurationError(f"unknown workflow {name!r} (known: {known})") from None
