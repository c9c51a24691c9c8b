"""Payload encryption (issue 16 point 4): JWS inside JWE as Hyperwallet's SDKs do it, the
client's jose+json requests and answers, and the connection-extra configuration."""

from __future__ import annotations

import json
import time

import pytest
import responses
from jwcrypto import jwe, jwk, jws
from jwcrypto.common import JWSEHeaderParameter

from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.core.retry import RetryPolicy
from mirakl_connector.hyperwallet.client import HyperwalletClient
from mirakl_connector.hyperwallet.encryption import (
    JoseError,
    PayloadEncryption,
    encryption_from_extra,
    generate_key_set,
    public_key_set,
)
from mirakl_connector.hyperwallet.errors import HyperwalletServerError

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"}


@pytest.fixture(scope="module")
def keys() -> tuple[dict, dict]:
    return generate_key_set("ours"), generate_key_set("hw")


@pytest.fixture
def pair(keys):
    """(our side, Hyperwallet's side): each encrypts to the other."""
    ours, theirs = keys
    return (
        PayloadEncryption(ours, public_key_set(theirs)),
        PayloadEncryption(theirs, public_key_set(ours)),
    )


def test_request_is_a_jws_signed_by_us_inside_a_jwe_to_hyperwallet(keys, pair):
    ours, theirs = keys
    us, _ = pair
    token = us.encrypt('{"amount":"12.30"}')
    outer = jwe.JWE()
    outer.deserialize(token, key=jwk.JWK(**theirs["keys"][1]))
    header = json.loads(outer.objects["protected"])
    assert header == {"alg": "RSA-OAEP-256", "enc": "A256CBC-HS512", "kid": "hw-enc"}
    # ``exp`` is critical: a verifier that does not know it must refuse (RFC 7515 §4.1.11)
    with pytest.raises(jws.InvalidJWSSignature, match="critical"):
        strict = jws.JWS()
        strict.deserialize(outer.payload.decode())
        strict.verify(jwk.JWK(**ours["keys"][0]))
    known = {"exp": JWSEHeaderParameter("expiry", True, True, None)}
    inner = jws.JWS(header_registry=known)
    inner.deserialize(outer.payload.decode())
    inner.verify(jwk.JWK(**ours["keys"][0]))
    signed = inner.jose_header
    assert signed["alg"] == "RS256" and signed["kid"] == "ours-sig"
    assert signed["crit"] == ["exp"]
    assert 290 <= signed["exp"] - time.time() <= 300  # five minutes, epoch seconds
    assert inner.payload == b'{"amount":"12.30"}'


def test_round_trip_and_refusals(keys, pair):
    us, them = pair
    assert them.decrypt(us.encrypt(b'{"a":1}')) == b'{"a":1}'
    assert us.decrypt(them.encrypt("{}")) == b"{}"
    with pytest.raises(JoseError, match="decrypted"):
        us.decrypt(us.encrypt("{}"))  # encrypted to Hyperwallet, not to us
    forger = PayloadEncryption(generate_key_set("forger"), public_key_set(keys[0]))
    with pytest.raises(JoseError, match="does not verify"):
        us.decrypt(forger.encrypt("{}"))  # right recipient, wrong signer
    stale = PayloadEncryption(*[keys[1], public_key_set(keys[0])], clock=lambda: time.time() - 600)
    with pytest.raises(JoseError, match="expired"):
        us.decrypt(stale.encrypt("{}"))
    with pytest.raises(JoseError, match="compact JWE"):
        us.decrypt('{"token": "plain json"}')


def test_public_key_set_never_carries_private_parts(keys):
    ours, _ = keys
    published = public_key_set(ours)
    assert sorted(k["kid"] for k in published["keys"]) == ["ours-enc", "ours-sig"]
    for key in published["keys"]:
        assert not PRIVATE_MEMBERS & set(key)
    assert ours["keys"][0]["d"] not in json.dumps(published)


def test_configuration_from_the_connection_extra(keys):
    ours, theirs = keys
    assert encryption_from_extra({}, where="c") is None
    assert encryption_from_extra({"encryption": "false"}, where="c") is None
    on = encryption_from_extra(
        {"encryption": True, "private_jwks": json.dumps(ours), "hyperwallet_jwks": theirs},
        where="c",
    )
    assert on is not None and on.sign_algorithm == "RS256"
    with pytest.raises(ConfigurationError, match="private_jwks"):
        encryption_from_extra({"encryption": True, "hyperwallet_jwks": theirs}, where="c")
    only_public = {
        "encryption": True,
        "private_jwks": public_key_set(ours),
        "hyperwallet_jwks": theirs,
    }
    with pytest.raises(ConfigurationError, match="no private key") as error:
        encryption_from_extra(only_public, where="c")
    assert ours["keys"][0]["n"] not in str(error.value)
    assert "private_keys" not in repr(on) and ours["keys"][0]["d"] not in repr(on)


@responses.activate
def test_client_sends_jose_json_and_reads_the_encrypted_answer(pair):
    us, them = pair
    client = HyperwalletClient(
        "https://hw.test", "user", "secret-pass", retry=RetryPolicy.no_wait(), encryption=us
    )

    def answer(request):
        assert request.headers["Content-Type"] == "application/jose+json"
        assert request.headers["Accept"] == "application/jose+json"
        body = json.loads(them.decrypt(request.body))
        assert body == {"clientPaymentId": "1", "amount": "10.00"}
        reply = them.encrypt(json.dumps({"token": "pmt-1", "amount": "10.00"}))
        return 201, {"Content-Type": "application/jose+json"}, reply

    responses.add_callback(responses.POST, "https://hw.test/rest/v4/payments", callback=answer)
    created = client.create_payment({"clientPaymentId": "1", "amount": "10.00"})
    assert created == {"token": "pmt-1", "amount": "10.00"}


@responses.activate
def test_client_refuses_a_plain_success_answer_when_encryption_is_on(pair):
    us, _ = pair
    client = HyperwalletClient(
        "https://hw.test", "user", "secret-pass", retry=RetryPolicy.no_wait(), encryption=us
    )
    responses.add(responses.GET, "https://hw.test/rest/v4/payments/pmt-1", json={"token": "pmt-1"})
    with pytest.raises(HyperwalletServerError, match="not application/jose"):
        client.get_payment("pmt-1")
