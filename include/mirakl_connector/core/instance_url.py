"""The Mirakl instance address an operator configures, in either of its two documented forms.

Every Mirakl operator endpoint lives under ``https://<instance>.mirakl.net/api/...``
(Mirakl's operator API, developer.mirakl.com: "All requests must use the HTTPS protocol"). The two
incumbents are configured differently: the Stripe
connector takes the instance root (``MIRAKL_HOST_NAME=https://mymarketplace.mirakl.net``, its
client adds ``/api/...``), the Hyperwallet connector takes the root *with* ``/api``
(``PAYPAL_MIRAKL_OPERATOR_URL``-style setting ``https://yourCompany.mirakl.net/api``, because the
Mirakl Java SDK appends the rest). An operator copying either setting must get a working
connection, so both are accepted; anything else is refused here, at connection test time and
when a client is built, rather than as a 404 on every call (``/api/api/version``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from mirakl_connector.core.errors import ConfigurationError

#: Paths accepted after the host: none (the root) or the API prefix the Hyperwallet connector uses.
ACCEPTED_PATHS = ("", "/api")

_FORMS = "https://<instance>.mirakl.net or https://<instance>.mirakl.net/api"


def mirakl_instance_url(value: str) -> str:
    """The instance root (``scheme://host[:port]``) of a configured Mirakl URL.

    ``https://x.mirakl.net``, ``https://x.mirakl.net/``, ``https://x.mirakl.net/api`` and
    ``https://x.mirakl.net/api/`` all give ``https://x.mirakl.net``.

    :raises ConfigurationError: not http(s), no host, a user or password in the URL, a query or
        fragment, or a path other than none or ``/api``. The message never repeats a query,
        user or password (they may hold the API key).
    """
    text = (value or "").strip()
    try:
        parts = urlsplit(text)
        port = parts.port  # raises on a malformed port
    except ValueError as exc:
        raise ConfigurationError(f"Mirakl URL is malformed ({exc}); expected {_FORMS}") from None
    shown = f"{parts.scheme}://{parts.hostname or ''}{parts.path}" if parts.scheme else text
    if parts.scheme not in ("http", "https"):
        raise ConfigurationError(
            f"Mirakl URL {shown!r} must start with https://; expected {_FORMS}"
        )
    if not parts.hostname:
        raise ConfigurationError(f"Mirakl URL {shown!r} has no host; expected {_FORMS}")
    if parts.username is not None or parts.password is not None:
        raise ConfigurationError(
            "Mirakl URL must not carry a user or password (the API key goes in the connection's "
            f"password); expected {_FORMS}"
        )
    if parts.query or parts.fragment:
        raise ConfigurationError(
            f"Mirakl URL {shown!r} must not have a query or fragment; expected {_FORMS}"
        )
    path = parts.path.rstrip("/")
    if path not in ACCEPTED_PATHS:
        raise ConfigurationError(
            f"Mirakl URL {shown!r} has the path {parts.path!r}: only none or /api is accepted "
            f"(every call adds /api/...); expected {_FORMS}"
        )
    host = parts.hostname
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")
