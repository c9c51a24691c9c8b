"""A misbehaving HTTP proxy between a client and the sandbox: the answer Stripe never sent.

Between the connector and Stripe there can be a corporate proxy, a TLS-terminating load balancer
or an egress gateway. When one of them times out or fails *after* Stripe did the work, the client
gets that hop's answer instead of Stripe's: a 408, an HTML error page, a 200 with a body that is
not JSON, or JSON cut short. None of these says whether the money moved.

:class:`FaultyProxy` forwards every request to ``upstream`` (the sandbox, so Stripe really does
the work) and, for the requests matching one of its rules, throws the real answer away and
answers with the rule's ``mode`` instead (:data:`MODES`). Rules are consumed like the sandbox's
fault rules: ``times`` matching requests each. Anything else passes through unchanged, so one
proxy can carry a whole workflow's traffic (Mirakl, Stripe and the admin API).

Used by the tests (``with FaultyProxy(server.url) as proxy: ...``); standard library only.
"""

from __future__ import annotations

import fnmatch
import http.client
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

_HTML = (
    "<html><head><title>{status} {reason}</title></head><body><center><h1>{status} {reason}"
    "</h1></center><hr><center>nginx</center></body></html>"
)

#: mode -> what the proxy answers instead of the upstream's answer
MODES = ("408", "html_502", "html_400", "non_json_200", "truncated_json", "empty_json_200")

_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass
class ProxyRule:
    """Answer ``mode`` to the next ``times`` requests matching ``method`` and ``path``.

    ``path`` is a glob (``/v1/transfers/*/reversals``); ``with_account`` matches only requests
    with (``True``) or without (``False``) a ``Stripe-Account`` header, ``None`` both.
    """

    method: str
    path: str
    mode: str
    times: int = 1
    with_account: bool | None = None

    def matches(self, method: str, path: str, account: str | None) -> bool:
        if self.times <= 0 or method.upper() != self.method.upper():
            return False
        if self.with_account is not None and bool(account) != self.with_account:
            return False
        return fnmatch.fnmatchcase(path, self.path)


class FaultyProxy:
    """A threaded forwarding proxy on ``127.0.0.1`` that replaces chosen answers."""

    def __init__(self, upstream: str, *, timeout: float = 30.0) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._timeout = timeout
        self._lock = threading.Lock()
        self.rules: list[ProxyRule] = []
        #: (mode, method, path) of every answer the proxy replaced
        self.replaced: Counter[tuple[str, str, str]] = Counter()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, method: str, path: str, mode: str, times: int = 1, **kw: Any) -> ProxyRule:
        """Add a rule (see :class:`ProxyRule`); returns it."""
        if mode not in MODES:
            raise ValueError(f"unknown proxy mode {mode!r}; one of {', '.join(MODES)}")
        rule = ProxyRule(method, path, mode, times, **kw)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.replaced.clear()

    def replaced_count(self, mode: str | None = None) -> int:
        with self._lock:
            return sum(n for (m, _, _), n in self.replaced.items() if mode in (None, m))

    def start(self) -> FaultyProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultyProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- per request ------------------------------------------------------------------------
    def _take(self, method: str, path: str, account: str | None) -> str | None:
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path, account):
                    rule.times -= 1
                    self.replaced[(rule.mode, method, path)] += 1
                    return rule.mode
        return None

    def _forward(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(*self._upstream, timeout=self._timeout)
        try:
            conn.request(method, target, body=body or None, headers=headers)
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()


def _replacement(mode: str, body: bytes) -> tuple[int, str, bytes]:
    """Status, content type and body of what the proxy answers in ``mode``."""
    if mode == "408":
        return 408, "text/html", _HTML.format(status=408, reason="Request Time-out").encode()
    if mode == "html_502":
        return 502, "text/html", _HTML.format(status=502, reason="Bad Gateway").encode()
    if mode == "html_400":
        return 400, "text/html", _HTML.format(status=400, reason="Bad Request").encode()
    if mode == "non_json_200":
        return 200, "text/plain", b"OK"
    if mode == "truncated_json":
        return 200, "application/json", body[: max(1, len(body) // 2)]
    return 200, "application/json", b"{}"  # empty_json_200


def _handler(proxy: FaultyProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            return

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
            path = urlsplit(self.path).path
            # The upstream always gets the request: Stripe does the work, whatever we answer.
            status, upstream_headers, content = proxy._forward(
                self.command, self.path, headers, body
            )
            mode = proxy._take(self.command, path, self.headers.get("Stripe-Account"))
            if mode is None:
                self.send_response(status)
                for key, value in upstream_headers:
                    if key.lower() not in _HOP_HEADERS:
                        self.send_header(key, value)
            else:
                status, content_type, content = _replacement(mode, content)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Server", "nginx")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return Handler
