"""The Hyperwallet simulator with payload encryption on: what an encrypted program does
(refuses plain JSON, opens our JWE/JWS, answers and notifies encrypted to our key)."""

from __future__ import annotations

import pytest
import requests
from mirakl_sandbox.hyperwallet_admin import (
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
    HyperwalletSandboxAdmin,
)

from mirakl_connector.core.retry import RetryPolicy
from mirakl_connector.hyperwallet.client import HyperwalletClient
from mirakl_connector.hyperwallet.encryption import (
    PayloadEncryption,
    fetch_key_set,
    generate_key_set,
    public_key_set,
)
from mirakl_connector.hyperwallet.errors import HyperwalletClientError


@pytest.fixture(scope="module")
def ours() -> dict:
    return generate_key_set("c")


@pytest.fixture
def encrypted(sandbox, admin, ours):
    hw_admin = HyperwalletSandboxAdmin(sandbox.url)
    hw_admin.load(
        {
            "programs": [{"token": "prg-1"}],
            "encryption": {"client_jwks": public_key_set(ours)},
        }
    )
    yield hw_admin
    hw_admin.load({"encryption": None})
    hw_admin.close()


def _client(url: str, encryption=None) -> HyperwalletClient:
    return HyperwalletClient(
        url, DEFAULT_USERNAME, DEFAULT_PASSWORD, retry=RetryPolicy.no_wait(1), encryption=encryption
    )


def test_plain_json_is_refused_and_encrypted_calls_work(sandbox, encrypted, ours):
    body = {
        "clientUserId": "42",
        "programToken": "prg-1",
        "profileType": "INDIVIDUAL",
        "firstName": "Ana",
        "lastName": "Ruiz",
        "email": "ana@example.com",
        "addressLine1": "Calle 1",
        "city": "Madrid",
        "country": "ES",
    }
    with pytest.raises(HyperwalletClientError) as refused:
        _client(sandbox.url).create_user(body)
    assert refused.value.http_status == 400
    assert "application/jose+json expected" in str(refused.value)
    assert encrypted.state()["users"] == []

    raw = requests.get(
        f"{sandbox.url}/rest/v4/programs/prg-1", auth=(DEFAULT_USERNAME, DEFAULT_PASSWORD)
    )
    assert raw.headers["Content-Type"] == "application/jose+json"
    assert raw.text.count(".") == 4  # a compact JWE, not JSON

    ours_side = PayloadEncryption(ours, fetch_key_set(f"{sandbox.url}/jwkset"))
    client = _client(sandbox.url, ours_side)
    user = client.create_user(body)
    assert user["clientUserId"] == "42" and user["token"].startswith("usr-")
    assert client.get_user(user["token"])["token"] == user["token"]
    last = encrypted.calls(path="/rest/v4/users", method="POST")[-1]
    assert last["encrypted"] is True and last["body"]["clientUserId"] == "42"


def test_jwkset_is_public_only(sandbox, encrypted):
    served = requests.get(f"{sandbox.url}/jwkset").json()
    assert {k["alg"] for k in served["keys"]} == {"RS256", "RSA-OAEP-256"}
    assert all("d" not in k and "p" not in k for k in served["keys"])
