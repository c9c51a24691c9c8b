"""Encrypted Hyperwallet notifications and our public JWK set (issue 16 point 4).

The app decrypts and verifies ``application/jose+json`` notifications of an encrypted program and
refuses plain or forged ones; the plugin serves the public parts of the keys in connection
``hyperwallet_default``'s extra at ``/hyperwallet/jwks.json`` and nothing private.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mirakl_connector.hyperwallet.encryption import (
    PayloadEncryption,
    generate_key_set,
    public_key_set,
)
from mirakl_connector.webhooks.app import WebhookAppConfig, create_app

from .conftest import HW_SECRET  # noqa: TID252

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "mirakl_connector_webhooks.py"
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"}
NOTE = {
    "token": "wbh-enc-1",
    "type": "PAYMENTS.UPDATED.STATUS.COMPLETED",
    "createdOn": "2026-12-01T10:00:00.000",
    "object": {"token": "pmt-1", "status": "COMPLETED"},
}
JOSE = {"Content-Type": "application/jose+json"}


@pytest.fixture(scope="module")
def keys() -> tuple[dict, dict]:
    return generate_key_set("ours"), generate_key_set("hw")


def _app(ledger, encryption):
    return TestClient(
        create_app(
            WebhookAppConfig(
                ledger=lambda: ledger,
                stripe_secrets=lambda: ["whsec_x"],
                hyperwallet_secrets=lambda: [HW_SECRET],
                hyperwallet_encryption=lambda: encryption,
            )
        )
    )


def test_encrypted_notification_is_decrypted_verified_and_stored(keys, wh_ledger):
    ours, theirs = keys
    client = _app(wh_ledger, PayloadEncryption(ours, public_key_set(theirs)))
    hyperwallet = PayloadEncryption(theirs, public_key_set(ours))
    url = f"/webhooks/hyperwallet/{HW_SECRET}"

    plain = client.post(url, json=NOTE)
    assert plain.status_code == 400 and "jose+json" in plain.json()["error"]
    forged = PayloadEncryption(generate_key_set("forger"), public_key_set(ours)).encrypt(
        json.dumps(NOTE)
    )
    refused = client.post(url, content=forged, headers=JOSE)
    assert refused.status_code == 400 and "does not verify" in refused.json()["error"]
    assert wh_ledger.get_inbox_event("hyperwallet", "wbh-enc-1") is None

    ok = client.post(url, content=hyperwallet.encrypt(json.dumps(NOTE)), headers=JOSE)
    assert ok.status_code == 200, ok.text
    assert wh_ledger.get_inbox_event("hyperwallet", "wbh-enc-1").object_id == "pmt-1"


def test_encrypted_notification_without_encryption_configured_is_refused(keys, wh_ledger):
    ours, theirs = keys
    client = _app(wh_ledger, None)
    body = PayloadEncryption(theirs, public_key_set(ours)).encrypt(json.dumps(NOTE))
    response = client.post(f"/webhooks/hyperwallet/{HW_SECRET}", content=body, headers=JOSE)
    assert response.status_code == 400
    assert client.get("/hyperwallet/jwks.json").status_code == 404


def _plugin(monkeypatch, tmp_path, extra):
    from mirakl_connector.ledger import Ledger

    conns = {
        "hyperwallet_default": {
            "conn_type": "hyperwallet",
            "host": "https://hw.invalid",
            "login": "u",
            "password": "p",
            "extra": extra,
        },
        "mirakl_connector_db": {
            "conn_type": "sqlite",
            "extra": {"sqlalchemy_url": Ledger.default_sqlite_url(tmp_path)},
        },
    }
    for conn_id, fields in conns.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))
    spec = importlib.util.spec_from_file_location("mirakl_connector_webhooks_jwks", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plugin_serves_only_the_public_parts_of_our_key_set(keys, monkeypatch, tmp_path):
    ours, theirs = keys
    extra = {"encryption": True, "private_jwks": ours, "hyperwallet_jwks": public_key_set(theirs)}
    module = _plugin(monkeypatch, tmp_path, extra)
    try:
        response = TestClient(module.app).get("/hyperwallet/jwks.json")
        assert response.status_code == 200
        served = response.json()
        assert sorted(k["kid"] for k in served["keys"]) == ["ours-enc", "ours-sig"]
        for key in served["keys"]:
            assert not PRIVATE_MEMBERS & set(key)
            assert key["n"] == ours["keys"][0]["n"]
        for member in ("d", "p", "q", "dp", "dq", "qi"):
            assert ours["keys"][0][member] not in response.text
    finally:
        module._ledger_instance().dispose()


def test_plugin_without_encryption_serves_no_key_set(monkeypatch, tmp_path):
    module = _plugin(monkeypatch, tmp_path, {})
    try:
        assert TestClient(module.app).get("/hyperwallet/jwks.json").status_code == 404
    finally:
        module._ledger_instance().dispose()
