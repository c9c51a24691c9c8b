"""The Hyperwallet REST v4 calls the connector makes, answered from :class:`HyperwalletData`:
users, bank accounts, business stakeholders, verification documents and payments, with v4
cursor paging. Which rules are simulated and where they are documented:
:mod:`mirakl_sandbox.hyperwallet_api`."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from mirakl_connector.hyperwallet.currency_selection import account_type_of
from mirakl_sandbox.dates import DateParseError, parse_iso, to_timestamp

if TYPE_CHECKING:
    pass

from mirakl_sandbox.hyperwallet_data import (
    _AMOUNT,
    DEFAULT_PAGE,
    MAX_PAGE,
    PAYMENT_FAILURE_STATUSES,
    PREFIX,
    HyperwalletData,
    HyperwalletError,
    _hw_time,
    _link,
    _public_account,
    _required,
)


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
