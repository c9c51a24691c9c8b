"""Fixtures of the Hyperwallet extract tests: the simulator's admin, a real client, shops."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from mirakl_sandbox.hyperwallet_admin import (
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
    HyperwalletSandboxAdmin,
)

from mirakl_connector.hyperwallet.client import HyperwalletClient

USERS_PROGRAM = "prg-users-eu"
PAYMENTS_PROGRAM = "prg-payments-eu"

HYPERWALLET_CONFIG: dict[str, Any] = {
    "programs": [
        {"name": "EUROPE", "user_token": USERS_PROGRAM, "payment_token": PAYMENTS_PROGRAM,
         "bank_account_token": "trm-operator"},
        {"name": "OTHER", "ignored": True},
    ],
}  # fmt: skip


@pytest.fixture
def hw_admin(sandbox) -> Iterator[HyperwalletSandboxAdmin]:
    """Admin of the (emptied) Hyperwallet simulator, with the two programs known."""
    admin = HyperwalletSandboxAdmin(sandbox.url)
    admin.load({"programs": [{"token": USERS_PROGRAM}, {"token": PAYMENTS_PROGRAM}]})
    yield admin
    admin.close()


@pytest.fixture
def hyperwallet(sandbox_server, fast_retry, hw_admin) -> HyperwalletClient:
    return HyperwalletClient(
        sandbox_server.url, DEFAULT_USERNAME, DEFAULT_PASSWORD, retry=fast_retry, timeout=(2, 5)
    )


def make_shop(shop_id: int, *, payment_info: dict | None = None, professional: bool = False,
              currency: str = "EUR", program: str | None = "EUROPE", consent: bool = True,
              updated: str = "2026-11-20T10:00:00Z", fields: dict | None = None,
              **top: Any) -> dict[str, Any]:  # fmt: skip
    """A Mirakl S20 shop the way the Hyperwallet jobs read it."""
    extra = dict(fields or {})
    if program is not None:
        extra.setdefault("hw-program", program)
    if consent:
        extra.setdefault("hw-terms-consent", "true")
    shop = {
        "shop_id": shop_id,
        "shop_name": f"Shop {shop_id}",
        "shop_state": "OPEN",
        "is_professional": professional,
        "currency_iso_code": currency,
        "last_updated_date": updated,
        "contact_informations": {
            "firstname": "Fake", "lastname": f"Seller{shop_id}", "email": f"s{shop_id}@example.com",
            "street1": "30 King Street", "street2": None, "city": "Valencia",
            "zip_code": "46001", "country": "ESP",
        },
        "default_billing_information": {
            "corporate_information": {"company_registration_name": f"Company {shop_id} SL",
                                      "company_registration_number": f"B{shop_id}"},
            "default_language": "en",
        },
        "shop_additional_fields": [{"code": c, "value": v} for c, v in extra.items()],
    }  # fmt: skip
    if payment_info is not None:
        shop["payment_info"] = payment_info
    shop.update(top)
    return shop


def fields_of(shop: dict[str, Any]) -> dict[str, Any]:
    return {f["code"]: f.get("value") for f in shop.get("shop_additional_fields") or []}


class RecordingMailer:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, *, to, subject, html) -> None:
        self.sent.append({"to": list(to), "subject": subject, "html": html})


@pytest.fixture
def shop_factory():
    """``make_shop(shop_id, payment_info=..., professional=..., fields=...)``."""
    return make_shop


@pytest.fixture
def connector_config() -> dict[str, Any]:
    """The connector configuration the jobs are built from (a fresh copy per test)."""
    import copy

    return {"hyperwallet": copy.deepcopy(HYPERWALLET_CONFIG),
            "alerts": {"email_to": ["payouts-ops@example.com"]}}  # fmt: skip


@pytest.fixture
def mailer() -> RecordingMailer:
    return RecordingMailer()


@pytest.fixture
def shop_fields():
    """``fields_of(shop)``: a shop's additional fields as a dict."""
    return fields_of
