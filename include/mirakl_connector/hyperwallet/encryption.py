"""Hyperwallet payload encryption: JWS-signed then JWE-encrypted bodies (``jose+json``).

A Hyperwallet program with payload encryption turned on takes and gives every body this way,
requests, responses and webhook notifications alike. What is followed, from Hyperwallet's own SDKs
(Java ``com.hyperwallet.clientsdk.util.HyperwalletEncryption``, Python
``hyperwallet.utils.encryption``, Node ``Encryption``; github.com/hyperwallet/python-sdk and
github.com/hyperwallet/node-sdk):

* sending: sign the JSON with **our private key** (JWS compact, ``alg`` default ``RS256``,
  header ``kid`` = our key's id and ``exp`` = now + 5 minutes in epoch seconds, listed in
  ``crit``), then encrypt that JWS to **Hyperwallet's public key** (JWE compact, ``alg`` default
  ``RSA-OAEP-256``, ``enc`` default ``A256CBC-HS512``, ``kid`` = Hyperwallet's key id);
* receiving: decrypt with our private key, check ``exp`` (missing, not an integer or past: refused,
  as the Java SDK's ``verifySignatureExpirationDate``), verify the signature with Hyperwallet's
  public key;
* keys are picked from each JWK set by their ``alg`` (the SDKs' ``getKeyByAlgorithm``): our set
  needs a key for the signature algorithm and one for the key-encryption algorithm (it may be one
  key pair published twice), Hyperwallet's the same.

The library is ``jwcrypto`` (the one Hyperwallet's Python SDK uses). Errors never carry key
material or the plain body: a :class:`JoseError` says what failed, nothing more.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jwcrypto import jwe, jwk, jws  # type: ignore[import-untyped]  # no stubs published
from jwcrypto.common import (  # type: ignore[import-untyped]  # no stubs published
    JWException,
    JWSEHeaderParameter,
    json_encode,
)

CONTENT_TYPE = "application/jose+json"
DEFAULT_ENCRYPTION_ALGORITHM = "RSA-OAEP-256"
DEFAULT_ENCRYPTION_METHOD = "A256CBC-HS512"
DEFAULT_SIGN_ALGORITHM = "RS256"
DEFAULT_EXPIRATION_MINUTES = 5
#: Hyperwallet's public key sets (the PayPal connector's ``PAYPAL_HYPERWALLET_KEY_SET_LOCATION``).
HYPERWALLET_JWKS_URLS = {
    "production": "https://api.paylution.com/jwkset",
    "uat": "https://uat-api.paylution.com/jwkset",
}

_EXP = "exp"
# ``exp`` is a critical header (Java SDK ``criticalParams(EXPIRATION)``): jwcrypto must know it.
_HEADERS = {_EXP: JWSEHeaderParameter("Signature expiry (epoch seconds)", True, True, None)}


class JoseError(Exception):
    """A body could not be encrypted, decrypted or verified (the reason only, no key nor body)."""


def is_jose(content_type: str | None) -> bool:
    """True for ``application/jose+json`` (parameters such as ``charset`` ignored)."""
    return (content_type or "").split(";", 1)[0].strip().lower() == CONTENT_TYPE


def load_key_set(value: Any, *, what: str) -> jwk.JWKSet:
    """A JWK set from a mapping or its JSON text (``{"keys": [...]}``)."""
    try:
        text = value if isinstance(value, str) else json.dumps(value)
        keys = jwk.JWKSet.from_json(text)
    except (TypeError, ValueError, JWException):
        raise JoseError(f"{what} is not a JWK set") from None
    if not list(keys):
        raise JoseError(f"{what} has no keys")
    return keys


def generate_key_set(name: str, *, size: int = 2048) -> dict[str, Any]:
    """A new RSA key pair as a private JWK set for the defaults: published once for signing
    (``RS256``, kid ``<name>-sig``) and once for decrypting (``RSA-OAEP-256``, ``<name>-enc``).

    For operators creating their keys (README) and for the simulator's own keys.
    """
    private = jwk.JWK.generate(kty="RSA", size=size).export_private(as_dict=True)
    return {
        "keys": [
            {**private, "kid": f"{name}-sig", "alg": DEFAULT_SIGN_ALGORITHM, "use": "sig"},
            {**private, "kid": f"{name}-enc", "alg": DEFAULT_ENCRYPTION_ALGORITHM, "use": "enc"},
        ]
    }


def public_key_set(private_set: Any) -> dict[str, Any]:
    """The public parts only of a JWK set (what Hyperwallet is given to encrypt to us).

    Rebuilt key by key from ``export_public`` so that no private member (``d``, ``p``, ``q``,
    ``dp``, ``dq``, ``qi``, ``k``) can reach the page, whatever the input held.
    """
    keys = load_key_set(private_set, what="our JWK set")
    out = []
    for key in keys:
        if key.get("kty") == "oct":
            continue  # a symmetric key has no public part
        out.append(key.export_public(as_dict=True))
    return {"keys": out}


def _key_for(keys: jwk.JWKSet, algorithm: str, *, what: str, private: bool) -> jwk.JWK:
    for key in keys:
        if key.get("alg") == algorithm and (key.has_private or not private):
            return key
    need = "private key" if private else "key"
    raise JoseError(f"{what} has no {need} with alg {algorithm}")


@dataclass
class PayloadEncryption:
    """Encrypts our bodies to Hyperwallet and opens Hyperwallet's (one program's keys).

    :param private_keys: our JWK set with private parts (never logged, never returned).
    :param hyperwallet_keys: Hyperwallet's public JWK set, or a callable that loads it (the SDKs
        fetch it from the key-set URL; a callable lets the hook fetch and cache it).
    """

    private_keys: Any = field(repr=False)
    hyperwallet_keys: Any = field(repr=False)
    encryption_algorithm: str = DEFAULT_ENCRYPTION_ALGORITHM
    encryption_method: str = DEFAULT_ENCRYPTION_METHOD
    sign_algorithm: str = DEFAULT_SIGN_ALGORITHM
    expiration_minutes: int = DEFAULT_EXPIRATION_MINUTES
    clock: Callable[[], float] = field(default=time.time, repr=False)

    def __post_init__(self) -> None:
        self._ours = load_key_set(self.private_keys, what="our JWK set")
        # fail at configuration time, not on the first payment
        _key_for(self._ours, self.sign_algorithm, what="our JWK set", private=True)
        _key_for(self._ours, self.encryption_algorithm, what="our JWK set", private=True)
        if self.expiration_minutes < 1:
            raise JoseError("the signature lifetime must be at least one minute")

    def _theirs(self) -> jwk.JWKSet:
        source = self.hyperwallet_keys
        value = source() if callable(source) else source
        if isinstance(value, jwk.JWKSet):
            return value
        return load_key_set(value, what="Hyperwallet's JWK set")

    def public_jwks(self) -> dict[str, Any]:
        return public_key_set(self.private_keys)

    def encrypt(self, body: bytes | str) -> str:
        """Sign with our key, encrypt to Hyperwallet's: a JWE compact string."""
        signer = _key_for(self._ours, self.sign_algorithm, what="our JWK set", private=True)
        recipient = _key_for(
            self._theirs(), self.encryption_algorithm, what="Hyperwallet's JWK set", private=False
        )
        return seal(
            body,
            signer=signer,
            recipient=recipient,
            sign_algorithm=self.sign_algorithm,
            encryption_algorithm=self.encryption_algorithm,
            encryption_method=self.encryption_method,
            expires=int(self.clock()) + 60 * self.expiration_minutes,
        )

    def decrypt(self, token: bytes | str) -> bytes:
        """Open a body Hyperwallet encrypted to us; its signature and expiry must hold."""
        decrypter = _key_for(
            self._ours, self.encryption_algorithm, what="our JWK set", private=True
        )
        verifier = _key_for(
            self._theirs(), self.sign_algorithm, what="Hyperwallet's JWK set", private=False
        )
        return open_sealed(
            token,
            decrypter=decrypter,
            verifier=verifier,
            sign_algorithm=self.sign_algorithm,
            encryption_algorithm=self.encryption_algorithm,
            encryption_method=self.encryption_method,
            now=self.clock(),
        )


def seal(
    body: bytes | str,
    *,
    signer: jwk.JWK,
    recipient: jwk.JWK,
    sign_algorithm: str,
    encryption_algorithm: str,
    encryption_method: str,
    expires: int,
) -> str:
    """JWS (``alg``, ``kid``, critical ``exp``) inside a JWE (``alg``, ``enc``, ``kid``)."""
    payload = body.encode("utf-8") if isinstance(body, str) else body
    try:
        signed = jws.JWS(payload, header_registry=_HEADERS)
        header = {"alg": sign_algorithm, "kid": signer.get("kid"), _EXP: expires, "crit": [_EXP]}
        signed.add_signature(signer, alg=sign_algorithm, protected=json_encode(header))
        inner = signed.serialize(compact=True)
        protected = {
            "alg": encryption_algorithm,
            "enc": encryption_method,
            "kid": recipient.get("kid"),
        }
        sealed = jwe.JWE(
            inner.encode("ascii"),
            protected=json_encode(protected),
            algs=[encryption_algorithm, encryption_method],
        )
        sealed.add_recipient(recipient)
        compact: str = sealed.serialize(compact=True)
        return compact
    except (JWException, ValueError, TypeError) as exc:
        raise JoseError(f"could not sign and encrypt the body ({type(exc).__name__})") from None


def open_sealed(
    token: bytes | str,
    *,
    decrypter: jwk.JWK,
    verifier: jwk.JWK,
    sign_algorithm: str,
    encryption_algorithm: str,
    encryption_method: str,
    now: float,
) -> bytes:
    """The inverse of :func:`seal`; any failure is a :class:`JoseError` without details."""
    text = token.decode("ascii", "replace") if isinstance(token, bytes) else token
    text = text.strip()
    if text.count(".") != 4:
        raise JoseError("the body is not a compact JWE")
    try:
        sealed = jwe.JWE(algs=[encryption_algorithm, encryption_method])
        sealed.deserialize(text, key=decrypter)
        inner = sealed.payload.decode("ascii")
    except (JWException, ValueError, UnicodeDecodeError):
        raise JoseError("the body could not be decrypted with our key") from None
    try:
        signed = jws.JWS(header_registry=_HEADERS)
        signed.deserialize(inner)
        header = signed.jose_header
        expires = header.get(_EXP) if isinstance(header, Mapping) else None
    except (JWException, ValueError):
        raise JoseError("the decrypted body is not a JWS") from None
    if expires is None:
        raise JoseError("the signature has no exp header")
    if not isinstance(expires, int) or isinstance(expires, bool):
        raise JoseError("the signature's exp header is not an integer")
    if now > expires:
        raise JoseError("the signature has expired")
    try:
        signed.verify(verifier, alg=sign_algorithm)
    except (JWException, ValueError):
        raise JoseError("the signature does not verify with Hyperwallet's key") from None
    payload: bytes = signed.payload
    return payload


# ---------------------------------------------------------------------- configuration


def fetch_key_set(url: str, *, timeout: float = 10.0) -> Callable[[], jwk.JWKSet]:
    """A loader for Hyperwallet's public JWK set at ``url``, fetched once then kept.

    The SDKs fetch it on every call; one fetch per client (one task) is enough and spares
    Hyperwallet a request per API call. A failed fetch is retried on the next call.
    """
    import requests

    cache: list[jwk.JWKSet] = []

    def load() -> jwk.JWKSet:
        if not cache:
            try:
                reply = requests.get(url, timeout=timeout)
                reply.raise_for_status()
                cache.append(load_key_set(reply.text, what="Hyperwallet's JWK set"))
            except requests.RequestException as exc:
                raise JoseError(
                    f"could not fetch Hyperwallet's JWK set ({type(exc).__name__})"
                ) from None
        return cache[0]

    return load


def encryption_from_extra(extra: Mapping[str, Any], *, where: str) -> PayloadEncryption | None:
    """Payload encryption from a Hyperwallet connection's extra, or ``None`` when it is off.

    Fields: ``encryption`` (true to turn it on), ``private_jwks`` (our JWK set with its private
    parts), ``hyperwallet_jwks_url`` (Hyperwallet's public set: ``https://api.paylution.com/
    jwkset``, ``https://uat-api.paylution.com/jwkset``) or ``hyperwallet_jwks`` (the set itself),
    and optionally ``encryption_algorithm``, ``encryption_method``, ``sign_algorithm``,
    ``jws_expiration_minutes``. Errors name the field, never its value.
    """
    from mirakl_connector.core.errors import ConfigurationError

    flag = extra.get("encryption")
    if flag in (None, "", False) or str(flag).strip().lower() in ("false", "0", "no", "off"):
        return None
    if str(flag).strip().lower() not in ("true", "1", "yes", "on"):
        raise ConfigurationError(f"{where}: extra 'encryption' must be true or false")
    private = extra.get("private_jwks")
    if not private:
        raise ConfigurationError(f"{where}: extra 'private_jwks' (our JWK set) is required")
    theirs: Any = extra.get("hyperwallet_jwks")
    url = extra.get("hyperwallet_jwks_url")
    if not theirs and not url:
        raise ConfigurationError(
            f"{where}: extra 'hyperwallet_jwks_url' (or 'hyperwallet_jwks') is required"
        )
    try:
        minutes = int(extra.get("jws_expiration_minutes") or DEFAULT_EXPIRATION_MINUTES)
        return PayloadEncryption(
            private_keys=private,
            hyperwallet_keys=theirs or fetch_key_set(str(url)),
            encryption_algorithm=str(
                extra.get("encryption_algorithm") or DEFAULT_ENCRYPTION_ALGORITHM
            ),
            encryption_method=str(extra.get("encryption_method") or DEFAULT_ENCRYPTION_METHOD),
            sign_algorithm=str(extra.get("sign_algorithm") or DEFAULT_SIGN_ALGORITHM),
            expiration_minutes=minutes,
        )
    except (JoseError, ValueError, TypeError) as exc:
        reason = str(exc) if isinstance(exc, JoseError) else "invalid jws_expiration_minutes"
        raise ConfigurationError(f"{where}: payload encryption: {reason}") from None
