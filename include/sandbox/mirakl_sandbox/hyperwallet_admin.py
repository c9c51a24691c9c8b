"""``HyperwalletSandboxAdmin``: the Hyperwallet simulator's admin routes (tests, demo)."""

from __future__ import annotations

from typing import Any

import requests

from mirakl_sandbox.client import SandboxAdminError
from mirakl_sandbox.hyperwallet_data import DEFAULT_PASSWORD, DEFAULT_USERNAME

__all__ = ["DEFAULT_PASSWORD", "DEFAULT_USERNAME", "HyperwalletSandboxAdmin"]


class HyperwalletSandboxAdmin:
    """One method per admin route of the Hyperwallet simulator.

    :param url: the sandbox base URL (``SandboxServer.url``).
    """

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()

    def close(self) -> None:
        self._session.close()

    def _call(
        self, verb: str, endpoint: str, body: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        response = self._session.request(
            verb,
            f"{self.url}{endpoint}",
            json=body,
            params={k: v for k, v in (params or {}).items() if v is not None} or None,
            timeout=self.timeout,
        )
        if response.status_code >= 400:
            raise SandboxAdminError(
                f"{verb} {endpoint}: HTTP {response.status_code} {response.text[:500]}"
            )
        return response.json() if response.content else None

    # data
    def state(self) -> dict[str, Any]:
        return self._call("GET", "/_sandbox/hyperwallet/state")

    def load(self, section: dict[str, Any]) -> None:
        """Merge ``programs`` / ``users`` / ``bank_accounts`` / ``payments`` ... (by token)."""
        self._call("POST", "/_sandbox/hyperwallet/data", section)

    def users(self) -> list[dict[str, Any]]:
        return self.state()["users"]

    def bank_accounts(self) -> list[dict[str, Any]]:
        return self.state()["bank_accounts"]

    def payments(self) -> list[dict[str, Any]]:
        return self.state()["payments"]

    def notifications(self) -> list[dict[str, Any]]:
        return self.state()["notifications"]

    def calls(self, path: str | None = None, method: str | None = None) -> list[dict[str, Any]]:
        params = {"path": path, "method": method}
        return self._call("GET", "/_sandbox/hyperwallet/calls", params=params)

    def clear_calls(self) -> None:
        self._call("DELETE", "/_sandbox/hyperwallet/calls")

    # notifications
    def set_webhooks(
        self, url: str | None, *, duplicate: bool = False, hold: bool = False
    ) -> dict[str, Any]:
        config = {"url": url, "duplicate": duplicate, "hold": hold}
        return self._call("PUT", "/_sandbox/hyperwallet/webhooks", config)

    def webhooks(self) -> dict[str, Any]:
        return self._call("GET", "/_sandbox/hyperwallet/webhooks")

    def flush(self, *, reverse: bool = False) -> dict[str, Any]:
        """Deliver the held notifications (``reverse``: newest first, i.e. out of order)."""
        return self._call("POST", "/_sandbox/hyperwallet/webhooks/flush", {"reverse": reverse})

    def redeliver(self, token: str, times: int = 1) -> dict[str, Any]:
        body = {"token": token, "times": times}
        return self._call("POST", "/_sandbox/hyperwallet/webhooks/redeliver", body)

    def set_payment_status(
        self, token: str, status: str, *, created_on: str | None = None
    ) -> dict[str, Any]:
        """Move a payment to ``status`` and emit ``PAYMENTS.UPDATED.STATUS.<status>``."""
        body = {"status": status, "createdOn": created_on}
        return self._call("POST", f"/_sandbox/hyperwallet/payments/{token}/status", body)

    def set_user_status(self, token: str, **fields: Any) -> dict[str, Any]:
        """Change ``verificationStatus`` & co. and emit ``USERS.UPDATED.VERIFICATION_STATUS.*``."""
        return self._call("POST", f"/_sandbox/hyperwallet/users/{token}/status", fields)

    def set_stakeholder_status(self, token: str, **fields: Any) -> dict[str, Any]:
        return self._call("POST", f"/_sandbox/hyperwallet/stakeholders/{token}/status", fields)

    def emit(
        self, type_: str, obj: dict[str, Any], *, created_on: str | None = None
    ) -> dict[str, Any]:
        """Any notification (``type``, ``object``)."""
        body = {"type": type_, "object": obj, "createdOn": created_on}
        return self._call("POST", "/_sandbox/hyperwallet/notifications", body)

    # Mirakl billing cycles (SBC11/SBC07)
    def billing_cycles(self) -> list[dict[str, Any]]:
        return self._call("GET", "/_sandbox/mirakl/billing_cycles")

    def put_billing_cycles(self, cycles: list[dict[str, Any]]) -> None:
        self._call("POST", "/_sandbox/mirakl/billing_cycles", cycles)
