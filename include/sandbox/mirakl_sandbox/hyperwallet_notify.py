"""Hyperwallet webhook notifications, simulated: made by the admin API, stored, and POSTed to
the configured URL (at once, twice, held until flushed, or newest first); and the multipart
bodies of verification document uploads."""

from __future__ import annotations

import copy
import email.parser
import email.policy
import json
from typing import TYPE_CHECKING, Any

import requests

from mirakl_connector.hyperwallet.encryption import (
    CONTENT_TYPE as JOSE_CONTENT_TYPE,
)

if TYPE_CHECKING:
    pass

from mirakl_sandbox.hyperwallet_data import HyperwalletData, _hw_time, _link


# -- notifications and their delivery ----------------------------------------------------------
def make_notification(
    data: HyperwalletData,
    now: float,
    base: str,
    type_: str,
    obj: dict[str, Any],
    created_on: str | None = None,
) -> dict[str, Any]:
    """Store a notification (``GET /webhook-notifications/{token}`` finds it) and return it.

    Hyperwallet keeps the notifications it sends and answers ``GET /webhook-notifications/
    {token}`` with the same object (Hyperwallet SDKs ``getWebhookNotification``; the incumbent
    re-reads every notification that way in its ``NotificationProcessJob``;
    its test mock answers 404 for one it does not know, as here). Shape as the documented sample
    (Hyperwallet Java SDK model ``HyperwalletWebhookNotification``): ``token``, ``type``,
    ``createdOn``
    with milliseconds and no zone, ``object`` = the resource without its own ``links``, and
    ``links`` to the notification. A notification made up by anyone else is not stored, so it
    cannot be re-read: that is how the connector tells it from Hyperwallet's.
    """
    token = data.new_token("wbh")
    hidden = ("links",)
    notification = {
        "token": token,
        "type": type_,
        "createdOn": created_on or _hw_time(now, millis=True),
        "object": copy.deepcopy(
            {k: v for k, v in obj.items() if not k.startswith("_") and k not in hidden}
        ),
        "links": _link(base, f"/webhook-notifications/{token}"),
    }
    data.notifications[token] = notification
    return notification


def deliver(data: HyperwalletData, notifications: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """POST each notification to the configured URL (blocking: call from a worker thread)."""
    url = data.webhook.get("url")
    results = []
    with data.delivery_lock:
        for notification in notifications:
            record: dict[str, Any] = {"token": notification["token"], "type": notification["type"]}
            if not url:
                record["error"] = "no webhook url configured"
            else:
                try:
                    body, media = json.dumps(notification), "application/json"
                    if data.encryption is not None:
                        body, media = data.encryption.encrypt(body), JOSE_CONTENT_TYPE
                    reply = requests.post(
                        url, data=body.encode(), headers={"Content-Type": media}, timeout=10
                    )
                    record["status"] = reply.status_code
                except requests.RequestException as exc:
                    record["error"] = type(exc).__name__
            data.deliveries.append(record)
            results.append(record)
    return results


def queue_or_send(data: HyperwalletData, notification: dict[str, Any]) -> list[dict[str, Any]]:
    """The copies to deliver now (none when held); ``duplicate`` sends each twice."""
    copies = 2 if data.webhook.get("duplicate") else 1
    if data.webhook.get("hold"):
        data.held.extend([notification] * copies)
        return []
    return [notification] * copies if data.webhook.get("url") else []


def parse_multipart(content_type: str, raw: bytes) -> tuple[Any, dict[str, tuple[str, bytes]]]:
    """A ``multipart/form-data`` body: the JSON of its ``data`` field, and its file parts."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw
    )
    if not message.is_multipart():
        raise ValueError("invalid multipart body")
    data: Any = None
    files: dict[str, tuple[str, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if name == "data" and part.get_filename() is None:
            try:
                data = json.loads(payload)
            except ValueError:
                raise ValueError("the data field is not JSON") from None
        elif name and part.get_filename() is not None:
            files[str(name)] = (str(part.get_filename()), payload)
    return data, files
