"""Webhook emission: the sandbox POSTs each new event, signed like Stripe, to a configured URL.

Configured through ``PUT /_sandbox/webhooks`` (``SandboxAdmin.set_webhooks``)::

    {"url": "http://127.0.0.1:8080/mirakl-connector/webhooks/stripe", "secret": "whsec_...",
     "types": ["account.updated"],      # optional filter (default: every event)
     "drop": 1,                         # do not deliver the next N matching events
     "duplicate": true,                 # deliver every event twice
     "hold": true}                      # queue deliveries until POST /_sandbox/webhooks/flush

``POST /_sandbox/webhooks/flush {"reverse": true}`` delivers the held events, newest first when
``reverse`` (out-of-order delivery). Deliveries run on a background thread so a Stripe call never
waits for the webhook; ``GET /_sandbox/webhooks`` lists them (event id, status code or error).
"""

from __future__ import annotations

import json
import queue
import threading
from typing import Any

import requests

from mirakl_connector.webhooks.signature import stripe_signature_header


class WebhookEmitter:
    """Delivers events to one endpoint; thread-safe."""

    def __init__(self, clock_now: Any) -> None:
        self._now = clock_now
        self._lock = threading.Lock()
        self._config: dict[str, Any] = {}
        self._held: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def configure(self, config: dict[str, Any] | None) -> dict[str, Any]:
        with self._lock:
            self._config = dict(config or {})
            self._held = []
            self.deliveries = []  # a new configuration starts a new delivery log
            return dict(self._config)

    def config(self) -> dict[str, Any]:
        with self._lock:
            shown = dict(self._config)
        if shown.get("secret"):
            shown["secret"] = "***"
        return {"config": shown, "held": len(self._held), "deliveries": list(self.deliveries)}

    def emit(self, event: dict[str, Any]) -> None:
        """Called for every new event (under the state lock: never blocks on the network)."""
        with self._lock:
            cfg = self._config
            if not cfg.get("url"):
                return
            types = cfg.get("types")
            if types and event["type"] not in types:
                return
            if cfg.get("drop", 0) > 0:
                cfg["drop"] -= 1
                self.deliveries.append({"event_id": event["id"], "dropped": True})
                return
            copies = 2 if cfg.get("duplicate") else 1
            if cfg.get("hold"):
                self._held.extend([event] * copies)
                return
        for _ in range(copies):
            self._enqueue(event)

    def flush(self, *, reverse: bool = False) -> int:
        with self._lock:
            held, self._held = self._held, []
        for event in reversed(held) if reverse else held:
            self._enqueue(event)
        return len(held)

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Block until queued deliveries are done (tests)."""
        done = threading.Event()
        self._queue.put({"_marker": done})
        self._ensure_thread()
        done.wait(timeout)

    def _enqueue(self, event: dict[str, Any]) -> None:
        with self._lock:
            target = {"url": self._config.get("url"), "secret": self._config.get("secret", "")}
        self._queue.put({"event": event, **target})
        self._ensure_thread()

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="sandbox-webhooks", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            if "_marker" in job:
                job["_marker"].set()
                continue
            event = job["event"]
            body = json.dumps(event).encode()
            header = stripe_signature_header(body, job["secret"], timestamp=int(self._now()))
            record: dict[str, Any] = {"event_id": event["id"], "type": event["type"]}
            try:
                reply = requests.post(
                    job["url"],
                    data=body,
                    headers={"Content-Type": "application/json", "Stripe-Signature": header},
                    timeout=10,
                )
                record["status"] = reply.status_code
            except requests.RequestException as exc:
                record["error"] = type(exc).__name__
            self.deliveries.append(record)
