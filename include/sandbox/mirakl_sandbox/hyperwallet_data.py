"""What the Hyperwallet simulator stores (users, bank accounts, stakeholders, payments,
notifications, the call log), its error envelope and the formats its answers use (times,
masked account numbers, links). What is simulated and why: :mod:`mirakl_sandbox.hyperwallet_api`."""

from __future__ import annotations

import re
import threading
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mirakl_connector.hyperwallet.encryption import (
    JoseError,
    PayloadEncryption,
    fetch_key_set,
    generate_key_set,
)
from mirakl_sandbox.scenario import ScenarioError

if TYPE_CHECKING:
    pass


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
