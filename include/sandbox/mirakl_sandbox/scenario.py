"""Load and validate a sandbox scenario (the JSON that seeds Mirakl and Stripe data).

Validation is deliberately shallow: it checks what the simulator itself relies on (ids, dates it
sorts or filters by, integer Stripe amounts) and names the offending entry, e.g.
``mirakl.orders[3]: missing 'order_id'``. Unknown keys are kept so that scenarios can carry data
for later features (``ledger``, ``hyperwallet``) without the sandbox rejecting them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mirakl_connector.core.errors import ConfigurationError
from mirakl_sandbox.dates import DateParseError, parse_iso

DEFAULT_MIRAKL_API_KEY = "sandbox-mirakl-key"
DEFAULT_STRIPE_API_KEY = "sk_test_sandbox"
DEFAULT_PLATFORM_ACCOUNT = "acct_platform"

MIRAKL_LISTS = ("shops", "orders", "service_orders", "service_debits", "invoices", "billing_cycles")
STRIPE_LISTS = ("accounts", "charges", "payment_intents")

# list name -> (id field, date fields that must parse)
_MIRAKL_RULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "shops": ("shop_id", ()),
    "orders": ("order_id", ("created_date",)),
    "service_orders": ("id", ("date_created",)),
    "service_debits": ("order_id", ()),
    "invoices": ("invoice_id", ("date_created",)),
    "billing_cycles": ("id", ("date_created",)),
}


class ScenarioError(ConfigurationError):
    """A scenario that the sandbox cannot load; the message names the bad entry."""


def load_scenario(path: str | Path) -> dict[str, Any]:
    """Read a scenario file and validate it."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"scenario {path} is not valid JSON: {exc}") from None
    return validate_scenario(data)


def validate_scenario(data: Any) -> dict[str, Any]:
    """Check a scenario and return it unchanged.

    :raises ScenarioError: naming the first bad entry.
    """
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ScenarioError("scenario must be a JSON object")
    mirakl = _section(data, "mirakl")
    stripe = _section(data, "stripe")
    for name, (id_field, date_fields) in _MIRAKL_RULES.items():
        for where, item in _entries(mirakl, "mirakl", name):
            _require(item, id_field, where)
            for field in date_fields:
                _require(item, field, where)
                _check_date(item[field], f"{where}.{field}")
    for key in ("api_key",):
        if key in mirakl and not isinstance(mirakl[key], str):
            raise ScenarioError(f"mirakl.{key} must be a string")
    for where, account in _entries(stripe, "stripe", "accounts"):
        _require(account, "id", where)
        if not str(account["id"]).startswith("acct_"):
            raise ScenarioError(f"{where}: id {account['id']!r} must start with 'acct_'")
    for list_name in ("charges", "payment_intents"):
        for where, obj in _entries(stripe, "stripe", list_name):
            _require(obj, "id", where)
            for field in ("amount", "currency"):
                _require(obj, field, where)
            _check_int(obj["amount"], f"{where}.amount")
    balance = stripe.get("platform_balance", {})
    if not isinstance(balance, dict):
        raise ScenarioError("stripe.platform_balance must be an object {currency: minor units}")
    for currency, amount in balance.items():
        _check_int(amount, f"stripe.platform_balance.{currency}")
    seeded = stripe.get("balances", {})
    if not isinstance(seeded, dict):
        raise ScenarioError("stripe.balances must be an object {account id: {currency: amount}}")
    for account_id, funds in seeded.items():
        if not isinstance(funds, dict):
            raise ScenarioError(f"stripe.balances.{account_id} must be {{currency: minor units}}")
        for currency, amount in funds.items():
            _check_int(amount, f"stripe.balances.{account_id}.{currency}")
    delay = stripe.get("funds_available_after_days", 0)
    if isinstance(delay, bool) or not isinstance(delay, int) or delay < 0:
        raise ScenarioError("stripe.funds_available_after_days must be a whole number of days")
    platform = stripe.get("platform_account")
    if platform is not None and (not isinstance(platform, dict) or "id" not in platform):
        raise ScenarioError("stripe.platform_account must be an object with an 'id'")
    return data


def _section(data: dict[str, Any], name: str) -> dict[str, Any]:
    section = data.get(name) or {}
    if not isinstance(section, dict):
        raise ScenarioError(f"{name} must be a JSON object")
    return section


def _entries(section: dict[str, Any], prefix: str, name: str):
    items = section.get(name) or []
    if not isinstance(items, list):
        raise ScenarioError(f"{prefix}.{name} must be a list")
    for index, item in enumerate(items):
        where = f"{prefix}.{name}[{index}]"
        if not isinstance(item, dict):
            raise ScenarioError(f"{where}: must be an object")
        yield where, item


def _require(item: dict[str, Any], field: str, where: str) -> None:
    if item.get(field) in (None, ""):
        raise ScenarioError(f"{where}: missing '{field}'")


def _check_date(value: Any, where: str) -> None:
    try:
        parse_iso(value)
    except DateParseError as exc:
        raise ScenarioError(f"{where}: {exc}") from None


def _check_int(value: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScenarioError(f"{where}: must be an integer amount in minor units, got {value!r}")
