"""Run the sandbox in a background thread (tests, the demo) on a loopback port."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn

from mirakl_sandbox.app import build_app
from mirakl_sandbox.faults import FaultInjector
from mirakl_sandbox.state import SandboxState


class SandboxServer:
    """A uvicorn server for the sandbox app in a daemon thread.

    :param scenario: data to load at start (``None`` = empty state).
    :param port: TCP port; ``0`` picks a free one (read it back from :attr:`url`).
    :param host: interface to bind; keep it on loopback, the admin API has no auth.
    :param seed: fault-injection seed.
    :param stripe_rate_limit: Stripe requests per second (``None`` = unlimited).
    :param latency_ms: latency added to every Mirakl and Stripe call.
    :param stripe_documented_limits: enforce Stripe's documented rate limits
        (:class:`~.faults.DocumentedLimits`): ``True`` in each API key's mode (by its prefix),
        ``"live"`` or ``"test"`` in that mode whatever the key.
    """

    def __init__(
        self,
        scenario: dict[str, Any] | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        *,
        seed: int = 0,
        stripe_rate_limit: float | None = None,
        latency_ms: float = 0.0,
        stripe_documented_limits: bool | str = False,
    ) -> None:
        self.host = host
        self.port = port
        self.state = SandboxState(seed=seed)
        if scenario:
            self.state.reset(scenario)
        self.faults = FaultInjector(
            seed, stripe_rate_limit, latency_ms, stripe_documented_limits=stripe_documented_limits
        )
        self.app = build_app(self.state, self.faults)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8765`` (valid after :meth:`start`)."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> SandboxServer:
        """Bind, start serving and return once connections are accepted."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", timeout_keep_alive=30
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="sandbox", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"sandbox did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Ask uvicorn to exit and wait for the thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._server = None
        self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
