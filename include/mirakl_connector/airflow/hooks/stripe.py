"""Stripe hook: an Airflow connection of type ``stripe`` → :class:`StripeGateway`.

Connection fields: ``password`` is the platform secret key (``sk_test_``, ``sk_live_`` or a
restricted ``rk_`` key); ``host`` optionally overrides the API base (the local sandbox). Extra:
``max_network_retries`` (default 2; safe because every money-moving call carries an idempotency
key derived from the ledger row).
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from mirakl_connector.airflow.hooks._extras import base_url_from, extra_value
from mirakl_connector.errors import ConfigurationError, PaymentProviderError

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from mirakl_connector.stripe_gateway import StripeGateway

_KEY_PREFIXES = ("sk_test_", "sk_live_", "rk_test_", "rk_live_")


class StripeHook(BaseHook):
    """Build a :class:`~mirakl_connector.stripe_gateway.StripeGateway` from a connection.

    :param stripe_conn_id: the Airflow connection to use.
    """

    conn_name_attr = "stripe_conn_id"
    default_conn_name = "stripe_default"
    conn_type = "stripe"
    hook_name = "Stripe Connect"

    def __init__(self, stripe_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stripe_conn_id = stripe_conn_id

    @cached_property
    def connection(self) -> Connection:
        return self.get_connection(self.stripe_conn_id)

    @property
    def api_base(self) -> str | None:
        """The API base override, or None for Stripe's own endpoint."""
        return base_url_from(self.connection.host, self.connection.port) or None

    @property
    def max_network_retries(self) -> int:
        return extra_value(
            self.connection.extra_dejson,
            "max_network_retries",
            conn_type=self.conn_type,
            conn_id=self.stripe_conn_id,
            default=2,
            cast=int,
        )

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
        from mirakl_connector.stripe_gateway import StripeGateway

        return StripeGateway(
            self.api_key,
            base_url=self.api_base,
            max_network_retries=self.max_network_retries,
        )

    def test_connection(self) -> tuple[bool, str]:
        """Check the key format and that Stripe accepts it (retrieves the platform account)."""
        try:
            gateway = self.get_gateway()
            check = getattr(gateway, "check_credentials", None)
            if check is None:
                return True, "Stripe key has a valid format (no live check available)"
            check()
        except (ConfigurationError, PaymentProviderError) as exc:
            return False, str(exc)
        return True, "Stripe accepted the key"
