"""Is this request really from the provider? Stripe signatures and Hyperwallet shared secrets.

Stripe signs ``"<t>.<raw body>"`` with HMAC-SHA256 and the endpoint's ``whsec_`` secret and sends
``Stripe-Signature: t=<unix time>,v1=<hex>[,v1=<hex>...]`` (several ``v1`` while a secret is being
rolled). The check uses the official SDK (:class:`stripe.WebhookSignature`) on the exact bytes
received: re-serialised JSON would not match. A timestamp older than the tolerance (300 s by
default, as Stripe recommends) is refused, which stops a captured request being replayed later;
a replay inside the window is harmless because the inbox stores each event id once.

Hyperwallet does not sign notifications, so its endpoint is protected by a secret the operator
puts in the notification URL it registers, plus an optional source-IP allow list.

Error texts never contain a secret or the signature: they are returned to the caller.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import stripe

from mirakl_connector.mirakl.orders import LATEST

#: Stripe ``created`` values at or after this (year 3000, as for Mirakl dates) are refused as
#: impossible: a huge one cannot be turned into a date, and no real event has one.
LATEST_CREATED = int(LATEST.timestamp())

#: Seconds a Stripe signature stays valid (Stripe's own default).
DEFAULT_TOLERANCE = 300


class WebhookRejected(Exception):
    """The request is not an acceptable provider event; answer 400 (or 401) and store nothing."""

    def __init__(self, reason: str, *, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def verify_stripe_event(
    payload: bytes,
    signature_header: str | None,
    secrets: Sequence[str],
    *,
    tolerance: int = DEFAULT_TOLERANCE,
) -> dict[str, Any]:
    """Check the signature of a Stripe webhook and return the event it carries.

    :param payload: the raw request body, byte for byte.
    :param secrets: the endpoint signing secrets to accept (one per Stripe endpoint sending
        here, e.g. the platform and the Connect endpoint, plus an old one while rolling).
    :raises WebhookRejected: unsigned, forged, stale, or not a Stripe event.
    """
    if not secrets:
        raise WebhookRejected("no Stripe webhook secret is configured", status=503)
    if not signature_header:
        raise WebhookRejected("missing Stripe-Signature header")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRejected("payload is not UTF-8") from None
    last_error = "no signature matches"
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(text, signature_header, secret, tolerance)
        except stripe.SignatureVerificationError as exc:
            # The SDK's messages name the failure (no match, stale timestamp, bad header),
            # never the secret.
            last_error = str(exc.user_message or exc) or last_error
            continue
        return _parse_stripe_event(text)
    raise WebhookRejected(f"invalid signature: {last_error}")


def _parse_stripe_event(text: str) -> dict[str, Any]:
    try:
        event = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise WebhookRejected("payload is not JSON (or is nested too deep)") from None
    if not isinstance(event, dict):
        raise WebhookRejected("payload is not a JSON object")
    event_id = event.get("id")
    if not isinstance(event_id, str) or not event_id.startswith("evt_"):
        raise WebhookRejected("payload has no Stripe event id (evt_...)")
    if not isinstance(event.get("type"), str) or not event["type"]:
        raise WebhookRejected(f"event {event_id} has no type")
    created = event.get("created")
    if isinstance(created, bool) or not isinstance(created, int):
        raise WebhookRejected(f"event {event_id} has no creation time")
    if not 0 <= created < LATEST_CREATED:
        raise WebhookRejected(f"event {event_id} has an impossible creation time: {created}")
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise WebhookRejected(f"event {event_id} has no data.object")
    return event


def stripe_signature_header(payload: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` value Stripe would send for ``payload`` (sandbox, tests)."""
    stamp = int(time.time()) if timestamp is None else int(timestamp)
    signed = f"{stamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def shared_secret_matches(presented: str | None, expected: Iterable[str]) -> bool:
    """Constant-time check of a secret presented in a URL or header against the configured ones."""
    if not presented:
        return False
    given = presented.encode()
    return any(hmac.compare_digest(given, secret.encode()) for secret in expected if secret)


def ip_allowed(client_ip: str | None, allow_list: Sequence[str]) -> bool:
    """True when ``allow_list`` is empty or ``client_ip`` falls in one of its networks.

    Entries are addresses or CIDR networks (``203.0.113.0/24``); a malformed entry is a
    configuration error raised at start-up by :func:`parse_allow_list`, not here.
    """
    if not allow_list:
        return True
    if not client_ip:
        return False
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    # A dual-stack server reports an IPv4 client as ::ffff:1.2.3.4; compare it as the IPv4
    # address it is, or it never matches an IPv4 allow list.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in ipaddress.ip_network(net, strict=False) for net in allow_list)


def parse_allow_list(value: Any) -> tuple[str, ...]:
    """Normalise an allow list (list or comma-separated string); refuse malformed entries."""
    if value in (None, ""):
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    nets = tuple(str(item).strip() for item in items if str(item).strip())
    for net in nets:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise ValueError(f"not an IP address or network: {net!r}") from None
    return nets


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup for plain dicts (Starlette's headers already are)."""
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None
