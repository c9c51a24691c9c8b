"""Stripe hook: an Airflow connection of type ``stripe`` → :class:`StripeGateway`.

Connection fields: ``password`` is the platform secret key (``sk_test_``, ``sk_live_`` or a
restricted ``rk_`` key); ``host`` optionally overrides the API base (the local sandbox). Extras:
``max_retries`` (default 2; the gateway's own retry policy, safe because every money-moving call
carries an idempotency key derived from the ledger row), ``timeout`` (seconds, default 30),
``max_requests_per_second`` and ``max_requests_per_endpoint`` (each task paces its calls to these
budgets, overall and on any one endpoint; see :mod:`mirakl_connector.core.throttle`). Left empty
against Stripe itself, they default to the task's share of Stripe's documented limits for the
key's mode and the pool slots the task holds (:func:`mirakl_connector.stripe.limits.task_pacing`:
5 requests/s per slot overall and 5 on one endpoint, in both modes); against a ``host`` override
(the sandbox) an empty extra means no pacing.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from mirakl_connector.airflow.hooks._extras import base_url_from, extra_value
from mirakl_connector.core.errors import ConfigurationError, PaymentProviderError

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from mirakl_connector.stripe.gateway import StripeGateway

#: Key prefix → the mode shown in logs (the only part of a key that is ever shown).
KEY_MODES = {
    "sk_test_": "test",
    "sk_live_": "live",
    "rk_test_": "restricted (test)",
    "rk_live_": "restricted (live)",
}
_KEY_PREFIXES = tuple(KEY_MODES)


def key_mode(key: str | None) -> str:
    """``test``, ``live``, ``restricted (test)`` or ``restricted (live)`` from the key's prefix;
    ``unknown`` for anything else. Pure, and safe to log: it never echoes the key."""
    for prefix, mode in KEY_MODES.items():
        if (key or "").strip().startswith(prefix):
            return mode
    return "unknown"


class StripeHook(BaseHook):
    """Build a :class:`~mirakl_connector.stripe.gateway.StripeGateway` from a connection.

    :param stripe_conn_id: the Airflow connection to use.
    :param pool_slots: the ``stripe_api`` pool slots the task holds: its default pace is that
        many slots' worth of the connector's share of Stripe's limits.
    """

    conn_name_attr = "stripe_conn_id"
    default_conn_name = "stripe_default"
    conn_type = "stripe"
    hook_name = "Stripe Connect"

    def __init__(
        self, stripe_conn_id: str = default_conn_name, pool_slots: int = 1, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.stripe_conn_id = stripe_conn_id
        self.pool_slots = pool_slots

    @cached_property
    def connection(self) -> Connection:
        return self.get_connection(self.stripe_conn_id)

    @property
    def api_base(self) -> str | None:
        """The API base override, or None for Stripe's own endpoint."""
        return base_url_from(self.connection.host, self.connection.port) or None

    def _extra(self, name: str, default: Any, cast: Any) -> Any:
        return extra_value(
            self.connection.extra_dejson,
            name,
            conn_type=self.conn_type,
            conn_id=self.stripe_conn_id,
            default=default,
            cast=cast,
        )

    @property
    def max_retries(self) -> int:
        return self._extra("max_retries", 2, int)

    @property
    def timeout(self) -> float:
        return self._extra("timeout", 30.0, float)

    @property
    def max_requests_per_second(self) -> float | None:
        return self._rate("max_requests_per_second", 0)

    @property
    def max_requests_per_endpoint(self) -> float | None:
        return self._rate("max_requests_per_endpoint", 1)

    def _rate(self, name: str, which: int) -> float | None:
        """An extra pacing budget, or the documented default against Stripe itself."""
        rate = self._extra(name, None, float)
        if rate is not None and not rate > 0:
            raise ConfigurationError(
                f"connection {self.stripe_conn_id!r}: extra {name!r} must be positive, got {rate!r}"
            )
        if rate is None and not self.api_base:
            from mirakl_connector.stripe import limits as stripe_limits

            mode = stripe_limits.key_mode(self.connection.password)
            return stripe_limits.task_pacing(mode, self.pool_slots)[which]
        return rate

    @property
    def mode(self) -> str:
        """The key's mode (see :func:`key_mode`); reading it never logs or returns the key."""
        return key_mode(self.connection.password)

    @property
    def api_key(self) -> str:
        key = (self.connection.password or "").strip()
        if not key:
            raise ConfigurationError(
                f"connection {self.stripe_conn_id!r}: password (the Stripe secret key) is empty"
            )
        if not key.startswith(_KEY_PREFIXES):
            # Say which kind of value it is, never the value itself.
            raise ConfigurationError(
                f"connection {self.stripe_conn_id!r}: password is not a Stripe secret key "
                "(expected sk_test_..., sk_live_... or rk_...)"
            )
        return key

    def get_conn(self) -> StripeGateway:
        return self.get_gateway()

    def get_gateway(self) -> StripeGateway:
        """Return the gateway configured from the connection."""
        from mirakl_connector.core.retry import RetryPolicy
        from mirakl_connector.stripe.gateway import StripeGateway

        key = self.api_key
        # Which account money moves on is the first thing to check in a run's log: say the mode,
        # never the key (not even a masked tail: restricted keys are long-lived).
        self.log.info(
            "Stripe connection %r: %s key%s",
            self.stripe_conn_id,
            key_mode(key),
            f", API base {self.api_base}" if self.api_base else "",
        )
        return StripeGateway(
            key,
            base_url=self.api_base,
            retry=RetryPolicy(max_attempts=self.max_retries + 1),
            timeout=self.timeout,
            max_requests_per_second=self.max_requests_per_second,
            max_requests_per_endpoint=self.max_requests_per_endpoint,
        )

    def test_connection(self) -> tuple[bool, str]:
        """Check the key format and that Stripe accepts it (retrieves the platform account)."""
        try:
            account = self.get_gateway().platform_account_id()
        except (ConfigurationError, PaymentProviderError) as exc:
            return False, str(exc)
        return True, f"Stripe accepted the key (platform account {account})"
