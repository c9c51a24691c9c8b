"""``SandboxAdmin``: a thin ``requests`` wrapper over the ``/_sandbox`` admin API."""

from __future__ import annotations

from typing import Any

import requests


class SandboxAdminError(RuntimeError):
    """The admin API refused a call (the message carries its explanation)."""


class SandboxAdmin:
    """One method per admin endpoint.

    :param url: the sandbox base URL (``SandboxServer.url``).
    """

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()

    def _call(
        self, method: str, endpoint: str, body: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        response = self._session.request(
            method,
            f"{self.url}/_sandbox{endpoint}",
            json=body,
            params={k: v for k, v in (params or {}).items() if v is not None} or None,
            timeout=self.timeout,
        )
        if response.status_code >= 400:
            raise SandboxAdminError(
                f"{method} /_sandbox{endpoint}: HTTP {response.status_code} {response.text[:500]}"
            )
        return response.json() if response.content else None

    # lifecycle
    def reset(self, scenario: dict[str, Any] | None = None) -> None:
        self._call("POST", "/reset", scenario)

    def load(self, scenario: dict[str, Any]) -> None:
        """Merge more data into the current state."""
        self._call("POST", "/scenario", scenario)

    def state(self) -> dict[str, Any]:
        return self._call("GET", "/state")

    def generate(
        self,
        orders: int = 10_000,
        shops: int = 20,
        currency: str = "EUR",
        seed: int = 1,
        service_orders: int = 0,
        **extra: Any,
    ) -> dict[str, Any]:
        body = {
            "orders": orders,
            "shops": shops,
            "currency": currency,
            "seed": seed,
            "service_orders": service_orders,
            **extra,
        }
        return self._call("POST", "/generate", body)

    def clock(self) -> dict[str, float]:
        return self._call("GET", "/clock")

    def advance_clock(self, seconds: float) -> dict[str, float]:
        return self._call("POST", "/clock", {"advance_seconds": seconds})

    def set_clock(self, timestamp: float) -> dict[str, float]:
        return self._call("POST", "/clock", {"now": timestamp})

    # faults
    def set_faults(self, config: dict[str, Any]) -> dict[str, Any]:
        return self._call("PUT", "/faults", config)

    def faults(self) -> dict[str, Any]:
        return self._call("GET", "/faults")

    def clear_faults(self) -> dict[str, Any]:
        return self._call("DELETE", "/faults")

    # Mirakl
    def mirakl_calls(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        return self._call("GET", "/mirakl/calls", params={"endpoint": endpoint})

    def clear_mirakl_calls(self) -> None:
        self._call("DELETE", "/mirakl/calls")

    def orders(self) -> list[dict[str, Any]]:
        return self._call("GET", "/mirakl/orders")

    def order(self, order_id: str) -> dict[str, Any]:
        return self._call("GET", f"/mirakl/orders/{order_id}")

    def put_orders(self, orders: list[dict[str, Any]]) -> None:
        self._call("POST", "/mirakl/orders", {"orders": orders})

    def patch_order(self, order_id: str, **fields: Any) -> dict[str, Any]:
        return self._call("PATCH", f"/mirakl/orders/{order_id}", fields)

    def shops(self) -> list[dict[str, Any]]:
        return self._call("GET", "/mirakl/shops")

    def put_shops(self, shops: list[dict[str, Any]]) -> None:
        self._call("POST", "/mirakl/shops", {"shops": shops})

    def service_orders(self) -> list[dict[str, Any]]:
        return self._call("GET", "/mirakl/service_orders")

    def invoices(self) -> list[dict[str, Any]]:
        return self._call("GET", "/mirakl/invoices")

    # Stripe
    def transfers(self) -> list[dict[str, Any]]:
        return self._call("GET", "/stripe/transfers")

    def reversals(self) -> list[dict[str, Any]]:
        return self._call("GET", "/stripe/reversals")

    def payouts(self) -> list[dict[str, Any]]:
        return self._call("GET", "/stripe/payouts")

    def refunds(self) -> list[dict[str, Any]]:
        return self._call("GET", "/stripe/refunds")

    def accounts(self) -> list[dict[str, Any]]:
        return self._call("GET", "/stripe/accounts")

    def charges(self) -> list[dict[str, Any]]:
        return self._call("GET", "/stripe/charges")

    def payment_intents(self) -> list[dict[str, Any]]:
        return self._call("GET", "/stripe/payment_intents")

    def events(self) -> list[dict[str, Any]]:
        return self._call("GET", "/stripe/events")

    def balance(self) -> dict[str, int]:
        return self._call("GET", "/stripe/balance")

    def stripe_requests(self, path: str | None = None, method: str | None = None) -> list[Any]:
        return self._call("GET", "/stripe/requests", params={"path": path, "method": method})

    def clear_stripe_requests(self) -> None:
        self._call("DELETE", "/stripe/requests")

    def put_charges(self, charges: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self._call("POST", "/stripe/charges", {"charges": charges})

    def put_payment_intents(self, intents: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self._call("POST", "/stripe/payment_intents", {"payment_intents": intents})

    def put_accounts(self, accounts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self._call("POST", "/stripe/accounts", {"accounts": accounts})

    def patch_account(self, account_id: str, **fields: Any) -> dict[str, Any]:
        return self._call("PATCH", f"/stripe/accounts/{account_id}", fields)

    def set_payout_status(self, payout_id: str, status: str, **fields: Any) -> dict[str, Any]:
        return self._call("POST", f"/stripe/payouts/{payout_id}", {"status": status, **fields})

    def emit_event(
        self,
        event_type: str,
        obj: dict[str, Any],
        account: str | None = None,
        previous_attributes: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        body = {
            "type": event_type,
            "object": obj,
            "account": account,
            "previous_attributes": previous_attributes,
        }
        return self._call("POST", "/stripe/events", body)

    def set_webhooks(self, config: dict[str, Any] | None) -> dict[str, Any]:
        """Configure webhook emission (url, secret, types, drop, duplicate, hold)."""
        return self._call("PUT", "/webhooks", config or {})

    def webhooks(self) -> dict[str, Any]:
        return self._call("GET", "/webhooks")

    def flush_webhooks(self, *, reverse: bool = False) -> int:
        return self._call("POST", "/webhooks/flush", {"reverse": reverse})["flushed"]

    def close(self) -> None:
        self._session.close()
