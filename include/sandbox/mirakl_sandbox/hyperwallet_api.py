"""Hyperwallet REST v4 as the sandbox answers it, under ``/rest/v4``, plus its admin routes.

What is simulated (the calls the connector makes):

* ``/users`` (create, get, update, list by ``clientUserId`` / ``programToken`` / ``email`` /
  ``createdAfter`` / ``createdBefore``); ``clientUserId`` is unique per program.
* ``/users/{u}/bank-accounts``: create, get, update, list. Numbers come back masked
  (``****6726``); a country/currency/type Hyperwallet does not support is refused with
  ``EXTERNAL_ACCOUNT_TYPE_NOT_SUPPORTED``; ``transferMethodCountry`` and ``type`` cannot change
  on update; the same account twice is ``DUPLICATE_EXTERNAL_ACCOUNT_CREATION``.
* ``/users/{u}/business-stakeholders``: create, update, list; unknown fields, non-boolean roles,
  genders / id types outside the enums, malformed dates and countries are refused.
* Verification documents: multipart ``PUT /users/{u}`` and ``PUT /users/{u}/business-
  stakeholders/{stk}`` (form field ``data`` + ``<type>_front``/``_back`` files); stored on the
  user or stakeholder with status ``NEW`` (the admin's user status call sets VALID / INVALID).
* ``/payments``: create (the destination must be a known ``trm-``/``usr-`` token), get, list
  by ``clientPaymentId``. Whether Hyperwallet refuses a reused ``clientPaymentId`` is not
  documented (docs.hyperwallet.com, Payments, is silent on it); by default the simulator refuses
  one among the
  payments that did not fail (the stricter choice), and a scenario's
  ``hyperwallet.refuse_duplicate_client_payment_ids: false`` turns that off, so that tests prove
  the connector itself never sends a payment twice.
* ``/webhook-notifications``: get by token, list; ``/programs/{token}``.
* Lists use v4 cursor paging (``limit``, ``after``; ``links`` with ``rel=next``); an empty list
  is ``204``. Errors are ``{"errors": [{"code", "fieldName", "message"}]}``. Auth is HTTP Basic
  (``hyperwallet.username`` / ``hyperwallet.password`` of the scenario).

Notifications (the webhooks Hyperwallet sends) are made by the admin API: a payment's status
change (``POST /_sandbox/hyperwallet/payments/{token}/status``), a user's or stakeholder's
verification change, or any notification. Each is stored (``GET /webhook-notifications/{t}``)
and POSTed as JSON to the configured URL: at once, twice (``duplicate``), or held until
``/flush`` (``reverse`` delivers newest first: out of order). Deliveries run in a worker
thread of the admin call, so the call returns once they are done.

Payload encryption (a scenario's ``hyperwallet.encryption``: ``{"client_jwks": <our public JWK
set>}`` or ``{"client_jwks_url": <our /hyperwallet/jwks.json>}``), as Hyperwallet does for a
program that has it on (its SDKs' ``HyperwalletEncryption``, github.com/hyperwallet/java-sdk,
and the PayPal connector's ``HYPERWALLET_ENCRYPTION_*`` settings): request bodies must be
``application/jose+json``,
a JWE to the simulator's key (served at ``GET /jwkset`` like ``https://api.paylution.com/jwkset``)
holding a JWS by the client with an unexpired critical ``exp``; a plain JSON body, a body that does
not decrypt or verify is refused with 400 (Hyperwallet's documentation is silent on the code for
a plain body: the stricter choice, never silently accepted). Every answer with a body, errors
included, comes back signed and encrypted to the client's key, and notifications are POSTed the
same way. The call log keeps the decrypted body and ``encrypted: true``.

Fault rules with ``"target": "hyperwallet"`` apply (``lost_response`` does the work, then
answers 500).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import email.parser
import email.policy
import hmac
import json
import re
import threading
import uuid
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import requests
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from mirakl_connector.hyperwallet.currency_selection import account_type_of
from mirakl_connector.hyperwallet.encryption import (
    CONTENT_TYPE as JOSE_CONTENT_TYPE,
)
from mirakl_connector.hyperwallet.encryption import (
    JoseError,
    PayloadEncryption,
    fetch_key_set,
    generate_key_set,
    is_jose,
)
from mirakl_sandbox.dates import DateParseError, parse_iso, to_timestamp
from mirakl_sandbox.scenario import ScenarioError

if TYPE_CHECKING:
    from mirakl_sandbox.app import Sandbox

DEFAULT_USERNAME = "sandbox-hw-user"
DEFAULT_PASSWORD = "sandbox-hw-password"
PREFIX = "/rest/v4"
DEFAULT_PAGE = 10
MAX_PAGE = 100
PAYMENT_FAILURE_STATUSES = frozenset(
    {"FAILED", "RECALLED", "RETURNED", "EXPIRED", "UNCLAIMED", "CANCELLED"}
)
_AMOUNT = re.compile(r"^\d+(\.\d+)?$")


class HyperwalletError(Exception):
    """An error answer ``{"errors": [...]}``."""

    def __init__(
        self, status: int, code: str, message: str, field: str | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        entry: dict[str, Any] = {"code": code, "message": message}
        if field:
            entry["fieldName"] = field
        entry.update(extra)
        self.body = {"errors": [entry]}


def _required(body: dict[str, Any], *names: str) -> None:
    for name in names:
        if body.get(name) in (None, ""):
            raise HyperwalletError(400, "CONSTRAINT_VIOLATIONS", f"{name} is required", field=name)


class HyperwalletData:
    """Everything the Hyperwallet simulator stores (one per sandbox state)."""

    def __init__(self) -> None:
        self.username = DEFAULT_USERNAME
        self.password = DEFAULT_PASSWORD
        self.programs: dict[str, dict[str, Any]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.bank_accounts: dict[str, dict[str, Any]] = {}
        self.stakeholders: dict[str, dict[str, Any]] = {}
        self.payments: dict[str, dict[str, Any]] = {}
        self.notifications: dict[str, dict[str, Any]] = {}
        self.calls: list[dict[str, Any]] = []
        self.webhook: dict[str, Any] = {}
        #: refuse a reused clientPaymentId (undocumented at Hyperwallet: see the module doc)
        self.refuse_duplicate_client_payment_ids = True
        self.held: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []
        self.delivery_lock = threading.Lock()
        self._counters: dict[str, int] = {}
        #: payload encryption (None: plain JSON), see the module doc
        self.encryption: PayloadEncryption | None = None
        self._jose_keys: dict[str, Any] | None = None

    def jose_keys(self) -> dict[str, Any]:
        """The simulator's own key pair (made once): RS256 to sign, RSA-OAEP-256 to decrypt."""
        if self._jose_keys is None:
            self._jose_keys = generate_key_set("sandbox-hw")
        return self._jose_keys

    def _load_encryption(self, section: Any) -> None:
        if section in (None, False):
            self.encryption = None
            return
        if not isinstance(section, dict):
            raise ScenarioError("hyperwallet.encryption must be an object or null")
        client = section.get("client_jwks") or (
            fetch_key_set(str(section["client_jwks_url"]))
            if section.get("client_jwks_url")
            else None
        )
        if client is None:
            raise ScenarioError("hyperwallet.encryption needs client_jwks or client_jwks_url")
        try:
            self.encryption = PayloadEncryption(self.jose_keys(), client)
        except JoseError as exc:
            raise ScenarioError(f"hyperwallet.encryption: {exc}") from None

    def new_token(self, prefix: str) -> str:
        """``usr-00000000-0000-0000-0000-000000000001``: uuid-shaped and reproducible."""
        value = self._counters.get(prefix, 0) + 1
        self._counters[prefix] = value
        return f"{prefix}-{uuid.UUID(int=value)}"

    # -- scenario ---------------------------------------------------------------------------
    def load(self, section: Any, now: float) -> None:
        """Merge a scenario's ``hyperwallet`` section (checked first, then applied)."""
        if section is None:
            return
        if not isinstance(section, dict):
            raise ScenarioError("hyperwallet must be a JSON object")
        lists = ("programs", "users", "bank_accounts", "stakeholders", "payments")
        for name in lists:
            items = section.get(name) or []
            if not isinstance(items, list):
                raise ScenarioError(f"hyperwallet.{name} must be a list")
            for index, item in enumerate(items):
                where = f"hyperwallet.{name}[{index}]"
                if not isinstance(item, dict) or not item.get("token"):
                    raise ScenarioError(f"{where}: missing 'token'")
                if name in ("bank_accounts", "stakeholders") and not item.get("userToken"):
                    raise ScenarioError(f"{where}: missing 'userToken'")
        for key in ("username", "password"):
            if key in section:
                setattr(self, key, str(section[key]))
        refuse = section.get("refuse_duplicate_client_payment_ids")
        if refuse is not None:
            if not isinstance(refuse, bool):
                raise ScenarioError("hyperwallet.refuse_duplicate_client_payment_ids: a boolean")
            self.refuse_duplicate_client_payment_ids = refuse
        stamp = _hw_time(now)
        for program in section.get("programs") or []:
            self.programs[program["token"]] = dict(program)
        for user in section.get("users") or []:
            self.users[user["token"]] = {"status": "ACTIVATED", "createdOn": stamp, **user}
        for account in section.get("bank_accounts") or []:
            stored = {"status": "ACTIVATED", "type": "BANK_ACCOUNT", "createdOn": stamp, **account}
            stored["_bankAccountId"] = str(account.get("bankAccountId") or "")
            self.bank_accounts[account["token"]] = stored
        for stakeholder in section.get("stakeholders") or []:
            self.stakeholders[stakeholder["token"]] = {"createdOn": stamp, **stakeholder}
        for payment in section.get("payments") or []:
            self.payments[payment["token"]] = {"status": "CREATED", "createdOn": stamp, **payment}
        if isinstance(section.get("webhook"), dict):
            self.webhook = dict(section["webhook"])
        if "encryption" in section:
            self._load_encryption(section["encryption"])

    def snapshot(self) -> dict[str, Any]:
        return {
            "programs": list(self.programs.values()),
            "users": list(self.users.values()),
            "bank_accounts": [_public_account(a) for a in self.bank_accounts.values()],
            "stakeholders": list(self.stakeholders.values()),
            "payments": list(self.payments.values()),
            "notifications": list(self.notifications.values()),
            "calls": len(self.calls),
            "deliveries": list(self.deliveries),
            "held": len(self.held),
        }


# -- formats ----------------------------------------------------------------------------------
def _hw_time(now: float, *, millis: bool = False) -> str:
    moment = datetime.fromtimestamp(now, UTC)
    if millis:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def _mask(number: str) -> str:
    text = re.sub(r"\s+", "", number or "")
    return "****" + text[-4:] if text else ""


def _public_account(account: dict[str, Any]) -> dict[str, Any]:
    """What Hyperwallet shows of a bank account: the number masked, no internal keys."""
    out = {k: v for k, v in account.items() if not k.startswith("_")}
    out["bankAccountId"] = _mask(account.get("_bankAccountId") or "")
    return out


def _link(base: str, path: str) -> list[dict[str, Any]]:
    return [{"params": {"rel": "self"}, "href": f"{base}{PREFIX}{path}"}]


# -- request handling -------------------------------------------------------------------------
class _Call:
    def __init__(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        body: Any,
        base: str,
        files: dict[str, tuple[str, bytes]] | None = None,
    ) -> None:
        self.method = method
        self.path = path  # relative to /rest/v4
        self.query = query
        self.body = body
        self.base = base  # scheme://host:port
        self.files = files  # a multipart call's file parts (name → (file name, bytes))

    def first(self, name: str) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return None


def _page(call: _Call, items: list[dict[str, Any]], path: str) -> tuple[int, Any]:
    """Cursor page: items after ``after`` (a token), ``limit`` of them; 204 when empty."""
    try:
        limit = min(max(int(call.first("limit") or DEFAULT_PAGE), 1), MAX_PAGE)
    except ValueError:
        raise HyperwalletError(400, "CONSTRAINT_VIOLATIONS", "limit is invalid", "limit") from None
    after = call.first("after")
    start = 0
    if after:
        tokens = [i.get("token") for i in items]
        if after not in tokens:
            raise HyperwalletError(400, "CONSTRAINT_VIOLATIONS", "after is invalid", "after")
        start = tokens.index(after) + 1
    page = items[start : start + limit]
    if not page:
        return 204, None
    has_next = start + limit < len(items)
    filters = [(k, v) for k, v in call.query if k not in ("after", "limit")]
    links = _link(call.base, path + ("?" + urlencode(call.query) if call.query else ""))
    if has_next:
        query = urlencode([*filters, ("after", page[-1]["token"]), ("limit", str(limit))])
        links.append({"params": {"rel": "next"}, "href": f"{call.base}{PREFIX}{path}?{query}"})
    return 200, {
        "hasNextPage": has_next,
        "hasPreviousPage": start > 0,
        "limit": limit,
        "data": page,
        "links": links,
    }


def _created_filter(call: _Call, item: dict[str, Any]) -> bool:
    for name, keep in (("createdAfter", lambda t, b: t > b), ("createdBefore", lambda t, b: t < b)):
        raw = call.first(name)
        if not raw:
            continue
        try:
            bound = parse_iso(raw).timestamp()
        except DateParseError:
            message = f"{name} is invalid"
            raise HyperwalletError(400, "CONSTRAINT_VIOLATIONS", message, name) from None
        if not keep(to_timestamp(item["createdOn"]), bound):
            return False
    return True


def _check_program(data: HyperwalletData, token: Any) -> None:
    if not isinstance(token, str) or not token.startswith("prg-"):
        raise HyperwalletError(
            400, "CONSTRAINT_VIOLATIONS", "Please enter a valid programToken", "programToken"
        )
    if data.programs and token not in data.programs:
        raise HyperwalletError(
            400, "CONSTRAINT_VIOLATIONS", "Please enter a valid programToken", "programToken"
        )


def _user(data: HyperwalletData, token: str) -> dict[str, Any]:
    user = data.users.get(token)
    if user is None:
        raise HyperwalletError(404, "NOT_FOUND", f"User {token} was not found")
    return user


def handle(data: HyperwalletData, now: float, call: _Call) -> tuple[int, Any]:  # noqa: C901
    """Answer one REST call: ``(status, body)``; raises :class:`HyperwalletError`."""
    parts = [p for p in call.path.split("/") if p]
    method = call.method
    body = call.body if isinstance(call.body, dict) else {}
    if call.files is not None:
        if parts[:1] == ["users"] and len(parts) == 2 and method == "PUT":
            return 200, _upload_documents(data, now, _user(data, parts[1]), body, call.files)
        if parts[:1] == ["users"] and len(parts) == 4 and parts[2] == "business-stakeholders":
            _user(data, parts[1])
            stakeholder = data.stakeholders.get(parts[3])
            if stakeholder is None or stakeholder.get("userToken") != parts[1] or method != "PUT":
                raise HyperwalletError(404, "NOT_FOUND", f"Stakeholder {parts[3]} was not found")
            return 200, _upload_documents(data, now, stakeholder, body, call.files)
        raise HyperwalletError(400, "INVALID_REQUEST", "multipart is only for document uploads")
    if method in ("POST", "PUT") and not isinstance(call.body, dict):
        raise HyperwalletError(400, "INVALID_REQUEST", "The request body must be a JSON object")

    if parts[:1] == ["programs"] and len(parts) == 2 and method == "GET":
        program = data.programs.get(parts[1])
        if program is None and (data.programs or not parts[1].startswith("prg-")):
            raise HyperwalletError(404, "NOT_FOUND", f"Program {parts[1]} was not found")
        return 200, program or {"token": parts[1], "name": "Sandbox program"}

    if parts == ["users"]:
        if method == "GET":
            users = [
                u
                for u in data.users.values()
                if all(
                    call.first(f) in (None, "") or str(u.get(f)) == call.first(f)
                    for f in ("clientUserId", "programToken", "email", "status")
                )
                and _created_filter(call, u)
            ]
            return _page(call, users, "/users")
        if method == "POST":
            _required(body, "clientUserId", "profileType", "programToken")
            _check_program(data, body["programToken"])
            if body["profileType"] not in ("INDIVIDUAL", "BUSINESS"):
                raise HyperwalletError(
                    400, "CONSTRAINT_VIOLATIONS", "profileType is invalid", "profileType"
                )
            _required(body, "addressLine1", "city", "country", "email")
            if body["profileType"] == "INDIVIDUAL":
                _required(body, "firstName", "lastName")
            else:
                _required(body, "businessName")
            for other in data.users.values():
                if (
                    other.get("clientUserId") == str(body["clientUserId"])
                    and other.get("programToken") == body["programToken"]
                ):
                    raise HyperwalletError(
                        400,
                        "DUPLICATE_CLIENT_USER_ID",
                        "clientUserId has already been used",
                        "clientUserId",
                        relatedResources=[other["token"]],
                    )
            token = data.new_token("usr")
            business = body["profileType"] == "BUSINESS"
            user = {
                **body,
                "token": token,
                "clientUserId": str(body["clientUserId"]),
                "status": "PRE_ACTIVATED",
                "verificationStatus": "NOT_REQUIRED",
                "businessStakeholderVerificationStatus": "NOT_REQUIRED" if business else None,
                "letterOfAuthorizationStatus": "NOT_REQUIRED" if business else None,
                "createdOn": _hw_time(now),
                "links": _link(call.base, f"/users/{token}"),
            }
            data.users[token] = {k: v for k, v in user.items() if v is not None}
            return 201, data.users[token]
    if parts[:1] == ["users"] and len(parts) == 2:
        user = _user(data, parts[1])
        if method == "GET":
            return 200, user
        if method == "PUT":
            if "clientUserId" in body and str(body["clientUserId"]) != user.get("clientUserId"):
                raise HyperwalletError(
                    400, "CONSTRAINT_VIOLATIONS", "clientUserId cannot be changed", "clientUserId"
                )
            user.update({k: v for k, v in body.items() if k not in ("token", "links", "status")})
            return 200, user

    if parts[:1] == ["users"] and len(parts) >= 3 and parts[2] == "bank-accounts":
        user = _user(data, parts[1])
        path = f"/users/{parts[1]}/bank-accounts"
        if len(parts) == 3 and method == "GET":
            accounts = [
                _public_account(a)
                for a in data.bank_accounts.values()
                if a.get("userToken") == parts[1]
            ]
            return _page(call, accounts, path)
        if len(parts) == 3 and method == "POST":
            return 201, _create_bank_account(data, now, call, user, body)
        if len(parts) == 4:
            account = data.bank_accounts.get(parts[3])
            if account is None or account.get("userToken") != parts[1]:
                raise HyperwalletError(404, "NOT_FOUND", f"Bank account {parts[3]} was not found")
            if method == "GET":
                return 200, _public_account(account)
            if method == "PUT":
                return 200, _update_bank_account(data, account, body)

    if parts[:1] == ["users"] and len(parts) >= 3 and parts[2] == "business-stakeholders":
        _user(data, parts[1])
        path = f"/users/{parts[1]}/business-stakeholders"
        if len(parts) == 3 and method == "GET":
            found = [s for s in data.stakeholders.values() if s.get("userToken") == parts[1]]
            return _page(call, found, path)
        if len(parts) == 3 and method == "POST":
            _check_stakeholder(body)
            _required(body, "firstName", "lastName")
            token = data.new_token("stk")
            stakeholder = {
                "profileType": "INDIVIDUAL",
                "status": "ACTIVATED",
                "verificationStatus": "NOT_REQUIRED",
                **body,
                "token": token,
                "userToken": parts[1],
                "createdOn": _hw_time(now),
            }
            data.stakeholders[token] = stakeholder
            return 201, stakeholder
        if len(parts) == 4:
            stakeholder = data.stakeholders.get(parts[3])
            if stakeholder is None or stakeholder.get("userToken") != parts[1]:
                raise HyperwalletError(404, "NOT_FOUND", f"Stakeholder {parts[3]} was not found")
            if method == "GET":
                return 200, stakeholder
            if method == "PUT":
                _check_stakeholder(body)
                changes = {k: v for k, v in body.items() if k not in ("token", "userToken")}
                stakeholder.update(changes)
                return 200, stakeholder

    if parts == ["payments"]:
        if method == "GET":
            found = [
                p
                for p in data.payments.values()
                if (not call.first("clientPaymentId")
                    or p.get("clientPaymentId") == call.first("clientPaymentId"))
                and _created_filter(call, p)
            ]  # fmt: skip
            return _page(call, found, "/payments")
        if method == "POST":
            return 201, _create_payment(data, now, call, body)
    if parts[:1] == ["payments"] and len(parts) == 2 and method == "GET":
        # GET /payments/{token} (REST v4, Java model HyperwalletPayment): the current status.
        payment = data.payments.get(parts[1])
        if payment is None:
            raise HyperwalletError(404, "NOT_FOUND", f"Payment {parts[1]} was not found")
        return 200, payment

    if parts == ["webhook-notifications"] and method == "GET":
        found = [
            n
            for n in data.notifications.values()
            if (not call.first("type") or n["type"] == call.first("type"))
            and _created_filter(call, n)
        ]
        return _page(call, found, "/webhook-notifications")
    if parts[:1] == ["webhook-notifications"] and len(parts) == 2 and method == "GET":
        # GET /webhook-notifications/{token} (Hyperwallet REST v4; SDKs getWebhookNotification):
        # only what Hyperwallet itself sent is known; anything else is a 404.
        notification = data.notifications.get(parts[1])
        if notification is None:
            raise HyperwalletError(404, "NOT_FOUND", f"Notification {parts[1]} was not found")
        return 200, notification

    raise HyperwalletError(404, "NOT_FOUND", f"No endpoint {method} {PREFIX}{call.path}")


#: Verification document categories and types (Hyperwallet Java SDK ``HyperwalletDocument``
#: enums as the connector uses them, github.com/paypal/mirakl-hyperwallet-connector, hmc-kyc).
DOCUMENT_TYPES: dict[str, frozenset[str]] = {
    "IDENTIFICATION": frozenset({"GOVERNMENT_ID", "DRIVERS_LICENSE", "PASSPORT"}),
    "ADDRESS": frozenset({"PASSPORT", "BANK_STATEMENT", "CREDIT_CARD_STATEMENT",
                          "OFFICIAL_GOVERNMENT_LETTER", "PROPERTY_TAX_ASSESSMENT", "TAX_RETURN",
                          "UTILITY_BILL"}),
    "BUSINESS": frozenset({"INCORPORATION", "BUSINESS_REGISTRATION", "OPERATING_AGREEMENT"}),
}  # fmt: skip


def _upload_documents(
    data: HyperwalletData,
    now: float,
    # or a business stakeholder (the PayPal connector's DocumentsExtractJob: same multipart shape)
    user: dict[str, Any],
    form: dict[str, Any],
    files: dict[str, tuple[str, bytes]],
) -> dict[str, Any]:
    """Multipart ``PUT /users/{token}``: form field ``data`` = ``{"documents": [...]}`` and one
    file part ``<type>_front`` (and ``_back``) per document, as the Java SDK's
    ``uploadUserDocuments`` sends them. Each document is stored with status ``NEW`` (the
    statuses Hyperwallet reports later: VALID / INVALID, as the PayPal connector's hmc-kyc handles
    them) and the user answered.
    Where the references are silent the simulator is strict: an unknown category or type, an
    IDENTIFICATION document without an alpha-2 ``country``, a document without its front file,
    an empty file or a file part no document names is refused.
    """
    documents = form.get("documents")
    if not isinstance(documents, list) or not documents:
        raise HyperwalletError(400, "CONSTRAINT_VIOLATIONS", "documents is required", "documents")
    used: set[str] = set()
    stored = []
    for doc in documents:
        category = doc.get("category") if isinstance(doc, dict) else None
        kind = doc.get("type") if isinstance(doc, dict) else None
        if category not in DOCUMENT_TYPES or kind not in DOCUMENT_TYPES[category]:
            raise HyperwalletError(
                400, "CONSTRAINT_VIOLATIONS", f"document {category}/{kind} is invalid", "type"
            )
        country = doc.get("country")
        if category == "IDENTIFICATION" and not re.fullmatch(r"[A-Z]{2}", str(country or "")):
            raise HyperwalletError(
                400, "CONSTRAINT_VIOLATIONS", "country is required (alpha-2)", "country"
            )
        front, back = f"{kind.lower()}_front", f"{kind.lower()}_back"
        if front not in files:
            raise HyperwalletError(400, "CONSTRAINT_VIOLATIONS", f"{front} is required", front)
        used.update(name for name in (front, back) if name in files)
        stored.append({"category": category, "type": kind, "country": country,
                       "status": "NEW", "createdOn": _hw_time(now)})  # fmt: skip
    for name, (_filename, content) in files.items():
        if name not in used:
            raise HyperwalletError(400, "CONSTRAINT_VIOLATIONS", f"{name} is not expected", name)
        if not content:
            raise HyperwalletError(400, "CONSTRAINT_VIOLATIONS", f"{name} is empty", name)
    user["documents"] = [*(user.get("documents") or []), *stored]
    return user


#: The business-stakeholder fields (the body the PayPal connector's
#: ``BusinessStakeholdersExtractBatchJob`` sends, github.com/paypal/mirakl-hyperwallet-connector,
#: and the Java SDK's ``HyperwalletBusinessStakeholder``): anything else is refused, the stricter
#: choice
#: where the published pages we hold do not list the schema.
STAKEHOLDER_FIELDS = frozenset(
    "token profileType isBusinessContact isDirector isUltimateBeneficialOwner "
    "isSeniorManagingOfficial firstName middleName lastName dateOfBirth countryOfBirth "
    "countryOfNationality gender phoneNumber mobileNumber email governmentId governmentIdType "
    "governmentIdCountry driversLicenseId driversLicenseCountry addressLine1 addressLine2 city "
    "stateProvince country postalCode".split()
)
_STAKEHOLDER_ENUMS = {
    # the PayPal connector's stakeholder mapping: gender MALE/FEMALE, governmentIdType
    # PASSPORT/NATIONAL_ID_CARD; profileType
    # as Hyperwallet's profiles (INDIVIDUAL/BUSINESS, docs.hyperwallet.com, Users)
    "gender": frozenset({"MALE", "FEMALE"}),
    "governmentIdType": frozenset({"PASSPORT", "NATIONAL_ID_CARD"}),
    "profileType": frozenset({"INDIVIDUAL", "BUSINESS"}),
}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _check_stakeholder(body: dict[str, Any]) -> None:
    """Refuse what the stakeholder schema does not allow (``CONSTRAINT_VIOLATIONS``)."""
    for key, value in body.items():
        if key not in STAKEHOLDER_FIELDS:
            raise HyperwalletError(400, "CONSTRAINT_VIOLATIONS", f"{key} is not allowed", key)
        if value is None:
            continue
        if key.startswith("is") and not isinstance(value, bool):
            raise HyperwalletError(400, "CONSTRAINT_VIOLATIONS", f"{key} must be a boolean", key)
        if key in _STAKEHOLDER_ENUMS and value not in _STAKEHOLDER_ENUMS[key]:
            raise HyperwalletError(400, "CONSTRAINT_VIOLATIONS", f"{key} is invalid", key)
        if key == "dateOfBirth" and not _DATE.match(str(value)):
            raise HyperwalletError(
                400, "CONSTRAINT_VIOLATIONS", "dateOfBirth must be yyyy-MM-dd", key
            )
        if key.startswith("country") or key.endswith("Country") or key == "country":
            if not re.fullmatch(r"[A-Z]{2}", str(value)):
                raise HyperwalletError(
                    400, "CONSTRAINT_VIOLATIONS", f"{key} must be an ISO alpha-2 code", key
                )


def _create_bank_account(
    data: HyperwalletData, now: float, call: _Call, user: dict[str, Any], body: dict[str, Any]
) -> dict[str, Any]:
    _required(body, "transferMethodCountry", "transferMethodCurrency", "bankAccountId")
    kind = body.get("type") or "BANK_ACCOUNT"
    country, currency = body["transferMethodCountry"], body["transferMethodCurrency"]
    account_type = account_type_of(country, currency, kind)
    if account_type is None:
        raise HyperwalletError(
            400,
            "EXTERNAL_ACCOUNT_TYPE_NOT_SUPPORTED",
            f"The external account type {kind} is not supported for {country}/{currency}",
            "transferMethodCurrency",
        )
    number = re.sub(r"\s+", "", str(body["bankAccountId"]))
    if account_type == "IBAN" and number[:2].upper() != country:
        raise HyperwalletError(
            400,
            "CONSTRAINT_VIOLATIONS",
            "bankAccountId does not match transferMethodCountry",
            "bankAccountId",
        )
    if account_type in ("ABA", "CANADIAN"):
        _required(body, "branchId")
    if account_type in ("CANADIAN", "UK"):
        _required(body, "bankId")
    for other in data.bank_accounts.values():
        if (
            other.get("userToken") == user["token"]
            and other.get("status") != "DE_ACTIVATED"
            and other.get("_bankAccountId") == number
            and (other.get("transferMethodCountry"), other.get("transferMethodCurrency"))
            == (country, currency)
        ):
            raise HyperwalletError(
                400,
                "DUPLICATE_EXTERNAL_ACCOUNT_CREATION",
                "The external account has already been created",
                relatedResources=[other["token"]],
            )
    token = data.new_token("trm")
    first = not any(a.get("userToken") == user["token"] for a in data.bank_accounts.values())
    account = {
        **{k: v for k, v in body.items() if k not in ("token", "links")},
        "token": token,
        "type": kind,
        "status": "ACTIVATED",
        "userToken": user["token"],
        "createdOn": _hw_time(now),
        "isDefaultTransferMethod": first,
        "links": _link(call.base, f"/users/{user['token']}/bank-accounts/{token}"),
        "_bankAccountId": number,
    }
    data.bank_accounts[token] = account
    return _public_account(account)


def _update_bank_account(
    data: HyperwalletData, account: dict[str, Any], body: dict[str, Any]
) -> dict[str, Any]:
    for name, current in (
        ("transferMethodCountry", account.get("transferMethodCountry")),
        ("type", account.get("type") or "BANK_ACCOUNT"),
    ):
        if name in body and body[name] != current:
            raise HyperwalletError(400, "CONSTRAINT_VIOLATIONS", f"{name} cannot be changed", name)
    country = account.get("transferMethodCountry")
    currency = body.get("transferMethodCurrency") or account.get("transferMethodCurrency")
    if account_type_of(country, currency, account.get("type") or "BANK_ACCOUNT") is None:
        raise HyperwalletError(
            400,
            "EXTERNAL_ACCOUNT_TYPE_NOT_SUPPORTED",
            f"The external account type is not supported for {country}/{currency}",
            "transferMethodCurrency",
        )
    changes = {
        k: v
        for k, v in body.items()
        if k not in ("token", "links", "status", "userToken", "bankAccountId")
    }
    account.update(changes)
    if body.get("bankAccountId") and not str(body["bankAccountId"]).startswith("****"):
        account["_bankAccountId"] = re.sub(r"\s+", "", str(body["bankAccountId"]))
    return _public_account(account)


def _create_payment(
    data: HyperwalletData, now: float, call: _Call, body: dict[str, Any]
) -> dict[str, Any]:
    _required(body, "clientPaymentId", "amount", "currency", "destinationToken", "programToken")
    _check_program(data, body["programToken"])
    amount = str(body["amount"])
    try:
        valid = bool(_AMOUNT.match(amount)) and Decimal(amount) > 0
    except InvalidOperation:
        valid = False
    if not valid:
        raise HyperwalletError(
            400, "CONSTRAINT_VIOLATIONS", "Please enter a valid amount", "amount"
        )
    if not re.fullmatch(r"[A-Z]{3}", str(body["currency"])):
        raise HyperwalletError(
            400, "CONSTRAINT_VIOLATIONS", "Please enter a valid currency", "currency"
        )
    destination = str(body["destinationToken"])
    known = (destination.startswith("trm-") and destination in data.bank_accounts) or (
        destination.startswith("usr-") and destination in data.users
    )
    if not known:
        raise HyperwalletError(
            400,
            "CONSTRAINT_VIOLATIONS",
            "Please enter a valid destinationToken",
            "destinationToken",
        )
    client_id = str(body["clientPaymentId"])
    for other in data.payments.values() if data.refuse_duplicate_client_payment_ids else ():
        if other.get("clientPaymentId") == client_id and other.get("status") not in (
            PAYMENT_FAILURE_STATUSES
        ):
            raise HyperwalletError(
                400,
                "DUPLICATE_CLIENT_PAYMENT_ID",
                "clientPaymentId has already been used",
                "clientPaymentId",
                relatedResources=[other["token"]],
            )
    token = data.new_token("pmt")
    payment = {
        **{k: v for k, v in body.items() if k not in ("token", "links", "status")},
        "amount": amount,
        "clientPaymentId": client_id,
        "token": token,
        "status": "CREATED",
        "createdOn": _hw_time(now),
        "expiresOn": _hw_time(now + 180 * 86400),
        "links": _link(call.base, f"/payments/{token}"),
    }
    data.payments[token] = payment
    return payment


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


# -- routers ----------------------------------------------------------------------------------
def _authorized(data: HyperwalletData, header: str | None) -> bool:
    if not header or not header.lower().startswith("basic "):
        return False
    try:
        decoded = base64.b64decode(header[6:].strip()).decode()
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, _, password = decoded.partition(":")
    expected = f"{data.username}:{data.password}".encode()
    return hmac.compare_digest(f"{user}:{password}".encode(), expected)


def _json(status: int, body: Any, encryption: PayloadEncryption | None = None) -> Response:
    if status == 204 or body is None:
        return Response(status_code=status)
    text = json.dumps(body, separators=(",", ":"), default=str)
    if encryption is not None:
        return Response(encryption.encrypt(text), status_code=status, media_type=JOSE_CONTENT_TYPE)
    return Response(text, status_code=status, media_type="application/json")


def _open_body(hw: HyperwalletData, raw: bytes, content_type: str | None) -> Any:
    """The request's JSON body, decrypted and verified when the program encrypts."""
    if hw.encryption is not None:
        if not is_jose(content_type):
            raise HyperwalletError(
                400, "INVALID_REQUEST", "payload encryption is on: application/jose+json expected"
            )
        try:
            raw = hw.encryption.decrypt(raw)
        except JoseError as exc:
            raise HyperwalletError(400, "INVALID_REQUEST", str(exc)) from None
    try:
        return json.loads(raw)
    except ValueError:
        raise HyperwalletError(400, "INVALID_REQUEST", "invalid JSON") from None


def build_hyperwallet_router(sandbox: Sandbox) -> APIRouter:  # noqa: C901 - a flat list of routes
    """``/rest/v4/...`` and the ``/_sandbox/hyperwallet/...`` admin routes."""
    router = APIRouter()
    state, faults = sandbox.state, sandbox.faults

    def data() -> HyperwalletData:
        return state.hyperwallet

    @router.api_route(
        PREFIX + "/{path:path}", methods=["GET", "POST", "PUT", "DELETE"], include_in_schema=False
    )
    async def rest(request: Request, path: str) -> Response:
        hw = data()
        raw = await request.body()
        body: Any = None
        files: dict[str, tuple[str, bytes]] | None = None
        status, payload, fault = 200, None, None
        answer_encrypted = hw.encryption is not None
        content_type = request.headers.get("content-type") or ""
        if raw and content_type.startswith("multipart/form-data"):
            try:
                body, files = parse_multipart(content_type, raw)
            except ValueError as exc:
                status = 400
                payload = {"errors": [{"code": "INVALID_REQUEST", "message": str(exc)}]}
        elif raw:
            try:
                body = _open_body(hw, raw, request.headers.get("content-type"))
            except HyperwalletError as exc:
                status, payload = exc.status, exc.body
                # a body we could not open: its sender may hold no keys, the refusal is plain
                # (not documented by Hyperwallet; the readable choice)
                answer_encrypted = False
        if payload is None and not _authorized(hw, request.headers.get("authorization")):
            status = 401
            payload = {"errors": [{"code": "UNAUTHORIZED", "message": "Authentication failed"}]}
        if payload is None:
            settings = faults.settings("hyperwallet")
            if settings.latency_ms:
                await asyncio.sleep(settings.latency_ms / 1000)
            fault = faults.decide("hyperwallet", request.method, request.url.path)
            if fault == "error":
                status = 500
                payload = {"errors": [{"code": "SERVER_ERROR", "message": "Internal error"}]}
            elif fault == "rate_limit":
                status = 429
                payload = {"errors": [{"code": "TOO_MANY_REQUESTS", "message": "Slow down"}]}
            elif fault == "timeout":
                await asyncio.sleep(settings.timeout_seconds)
                status, payload = 504, {"errors": [{"code": "TIMEOUT", "message": "Timeout"}]}
            else:
                call = _Call(
                    request.method,
                    "/" + path,
                    list(request.query_params.multi_items()),
                    body,
                    f"{request.url.scheme}://{request.url.netloc}",
                    files,
                )
                with state.lock:
                    try:
                        status, payload = handle(hw, state.clock.now(), call)
                    except HyperwalletError as exc:
                        status, payload = exc.status, exc.body
                if fault == "lost_response":
                    status = 500
                    payload = {"errors": [{"code": "SERVER_ERROR", "message": "Internal error"}]}
        with state.lock:
            hw.calls.append(
                {
                    "seq": len(hw.calls) + 1,
                    "method": request.method,
                    "path": request.url.path,
                    "query": dict(request.query_params),
                    "body": body,
                    "files": {k: len(v[1]) for k, v in (files or {}).items()} or None,
                    "status": status,
                    "fault": fault,
                    "encrypted": hw.encryption is not None,
                }
            )
        return _json(status, payload, hw.encryption if answer_encrypted else None)

    @router.get("/jwkset", include_in_schema=False)
    async def hw_jwkset() -> dict[str, Any]:
        """Hyperwallet's public JWK set (``https://api.paylution.com/jwkset``, the PayPal
        connector's ``PAYPAL_HYPERWALLET_KEY_SET_LOCATION``)."""
        from mirakl_connector.hyperwallet.encryption import public_key_set

        return public_key_set(data().jose_keys())

    # -- admin ------------------------------------------------------------------------------
    admin = "/_sandbox/hyperwallet"

    def base_of(request: Request) -> str:
        return f"{request.url.scheme}://{request.url.netloc}"

    async def body_of(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if not raw.strip():
            return {}
        value = json.loads(raw)
        if not isinstance(value, dict):
            raise ScenarioError("expected a JSON object")
        return value

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    async def emit(
        request: Request, type_: str, obj: dict[str, Any], created_on: str | None
    ) -> dict[str, Any]:
        hw = data()
        with state.lock:
            notification = make_notification(
                hw, state.clock.now(), base_of(request), type_, obj, created_on
            )
            batch = queue_or_send(hw, notification)
        results = await run_in_threadpool(deliver, hw, batch) if batch else []
        return {"notification": notification, "deliveries": results}

    @router.get(admin + "/state", include_in_schema=False)
    async def hw_state() -> dict[str, Any]:
        with state.lock:
            return data().snapshot()

    @router.post(admin + "/data", include_in_schema=False)
    async def hw_data(request: Request) -> Any:
        try:
            section = await body_of(request)
            with state.lock:
                data().load(section, state.clock.now())
        except (ScenarioError, ValueError) as exc:
            return error(400, str(exc))
        return {"ok": True}

    @router.get(admin + "/calls", include_in_schema=False)
    async def hw_calls(path: str | None = None, method: str | None = None) -> list[Any]:
        with state.lock:
            return [
                c
                for c in data().calls
                if (path is None or c["path"].startswith(path))
                and (method is None or c["method"] == method.upper())
            ]

    @router.delete(admin + "/calls", include_in_schema=False)
    async def hw_clear_calls() -> dict[str, Any]:
        with state.lock:
            data().calls.clear()
        return {"ok": True}

    @router.get(admin + "/webhooks", include_in_schema=False)
    async def hw_webhooks() -> dict[str, Any]:
        hw = data()
        return {"config": hw.webhook, "held": len(hw.held), "deliveries": list(hw.deliveries)}

    @router.put(admin + "/webhooks", include_in_schema=False)
    async def hw_set_webhooks(request: Request) -> Any:
        try:
            config = await body_of(request)
        except (ScenarioError, ValueError) as exc:
            return error(400, str(exc))
        with state.lock:
            data().webhook = config
            data().held = []
        return {"config": config}

    @router.post(admin + "/webhooks/flush", include_in_schema=False)
    async def hw_flush(request: Request) -> Any:
        options = await body_of(request)
        hw = data()
        with state.lock:
            held, hw.held = hw.held, []
        if options.get("reverse"):
            held.reverse()
        results = await run_in_threadpool(deliver, hw, held) if held else []
        return {"delivered": len(held), "deliveries": results}

    @router.post(admin + "/webhooks/redeliver", include_in_schema=False)
    async def hw_redeliver(request: Request) -> Any:
        options = await body_of(request)
        hw = data()
        notification = hw.notifications.get(str(options.get("token")))
        if notification is None:
            return error(404, f"unknown notification {options.get('token')!r}")
        batch = [notification] * int(options.get("times", 1))
        return {"deliveries": await run_in_threadpool(deliver, hw, batch)}

    @router.post(admin + "/payments/{token}/status", include_in_schema=False)
    async def hw_payment_status(token: str, request: Request) -> Any:
        options = await body_of(request)
        status = str(options.get("status") or "").upper()
        if not status:
            return error(400, "status is required")
        with state.lock:
            payment = data().payments.get(token)
            if payment is None:
                return error(404, f"unknown payment {token}")
            payment["status"] = status
            obj = dict(payment)
        kind = f"PAYMENTS.UPDATED.STATUS.{status}"
        return await emit(request, kind, obj, options.get("createdOn"))

    @router.post(admin + "/users/{token}/status", include_in_schema=False)
    async def hw_user_status(token: str, request: Request) -> Any:
        options = await body_of(request)
        keys = ("verificationStatus", "businessStakeholderVerificationStatus",
                "letterOfAuthorizationStatus", "status", "documents")  # fmt: skip
        with state.lock:
            user = data().users.get(token)
            if user is None:
                return error(404, f"unknown user {token}")
            user.update({k: v for k, v in options.items() if k in keys})
            obj = dict(user)
        kind = options.get("type") or (
            f"USERS.UPDATED.VERIFICATION_STATUS.{user.get('verificationStatus')}"
        )
        return await emit(request, kind, obj, options.get("createdOn"))

    @router.post(admin + "/stakeholders/{token}/status", include_in_schema=False)
    async def hw_stakeholder_status(token: str, request: Request) -> Any:
        options = await body_of(request)
        with state.lock:
            stakeholder = data().stakeholders.get(token)
            if stakeholder is None:
                return error(404, f"unknown stakeholder {token}")
            if options.get("verificationStatus"):
                stakeholder["verificationStatus"] = options["verificationStatus"]
            obj = dict(stakeholder)
        kind = options.get("type") or (
            "USERS.BUSINESS_STAKEHOLDERS.UPDATED.VERIFICATION_STATUS."
            f"{stakeholder.get('verificationStatus')}"
        )
        return await emit(request, kind, obj, options.get("createdOn"))

    @router.post(admin + "/notifications", include_in_schema=False)
    async def hw_notification(request: Request) -> Any:
        options = await body_of(request)
        if not options.get("type") or not isinstance(options.get("object"), dict):
            return error(400, "type and object are required")
        return await emit(request, options["type"], options["object"], options.get("createdOn"))

    @router.get("/_sandbox/mirakl/billing_cycles", include_in_schema=False)
    async def billing_cycles() -> list[dict[str, Any]]:
        with state.lock:
            return list(state.mirakl.billing_cycles)

    @router.post("/_sandbox/mirakl/billing_cycles", include_in_schema=False)
    async def put_billing_cycles(request: Request) -> Any:
        try:
            raw = json.loads(await request.body() or b"[]")
            cycles = raw if isinstance(raw, list) else [raw]
            state.merge({"mirakl": {"billing_cycles": cycles}})
        except (ScenarioError, ValueError) as exc:
            return error(400, str(exc))
        return {"ok": True, "count": len(cycles)}

    return router
