"""A local, stateful simulator of the Mirakl operator API and the Stripe API.

One FastAPI app on one loopback port serves Mirakl under ``/api``, Stripe under ``/v1`` and an admin
API under ``/_sandbox``. The real clients (``requests`` for Mirakl, the official ``stripe``
SDK) talk to it unchanged, so the demo, the tests and the benchmarks exercise the same code
as production.
FastAPI and uvicorn are only needed here (the ``sandbox`` extra), never by the connector core.
"""

from __future__ import annotations

from mirakl_sandbox.client import SandboxAdmin
from mirakl_sandbox.generate import generate_scenario
from mirakl_sandbox.scenario import ScenarioError, load_scenario, validate_scenario
from mirakl_sandbox.server import SandboxServer

__all__ = [
    "SandboxAdmin",
    "SandboxServer",
    "ScenarioError",
    "generate_scenario",
    "load_scenario",
    "validate_scenario",
]
