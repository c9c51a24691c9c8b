"""Issue 11 point 5: every settings section is checked by type; ``"false"`` is not true.

The cases are built from the dataclasses themselves, so a setting added later is covered too.
"""

from __future__ import annotations

import dataclasses
import typing

import pytest

from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.hyperwallet.currency_selection import CurrencySettings
from mirakl_connector.hyperwallet.invoice_payments import HyperwalletPaymentSettings
from mirakl_connector.hyperwallet.notifications import (
    NotificationSettings as HyperwalletNotificationSettings,
)
from mirakl_connector.hyperwallet.seller_sync import SellerExtractSettings
from mirakl_connector.operations.approval_gate import ApprovalSettings
from mirakl_connector.operations.operator_notifications import NotificationSettings
from mirakl_connector.stripe.events import StripeEventsSettings
from mirakl_connector.stripe.kyc_monitor import KycMonitorSettings
from mirakl_connector.stripe.onboarding import OnboardingSettings
from mirakl_connector.stripe.payment_split import PaymentSplitSettings
from mirakl_connector.stripe.payment_validation import PaymentValidationSettings
from mirakl_connector.stripe.refunds import PaymentRefundSettings
from mirakl_connector.stripe.settlement import SettlementSettings

CLASSES = {
    "payment_split": PaymentSplitSettings,
    "payment_refund": PaymentRefundSettings,
    "payment_validation": PaymentValidationSettings,
    "seller_settlement": SettlementSettings,
    "seller_onboarding": OnboardingSettings,
    "kyc_monitor": KycMonitorSettings,
    "operator_notifications": NotificationSettings,
    "stripe_events": StripeEventsSettings,
    "hyperwallet_payments": HyperwalletPaymentSettings,
    "hyperwallet_notifications": HyperwalletNotificationSettings,
    "hyperwallet_seller_extract": SellerExtractSettings,
    "hyperwallet.bank_accounts": CurrencySettings,
    "approval": ApprovalSettings,
}


def parse(section, values):
    if CLASSES[section] is CurrencySettings:
        return CurrencySettings.from_mapping(values, where=section)
    return CLASSES[section].from_mapping(values)


#: A wrong value of each type, as an operator would type it in the UI.
WRONG = {bool: ["false", "true", 0, 1, None], int: ["4", 4.0, True], float: ["40", False],
         str: [1, True, ["a"]]}  # fmt: skip


def _cases():
    for section, cls in CLASSES.items():
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            expected = hints[field.name]
            for value in WRONG.get(expected, []):
                yield pytest.param(
                    section, field.name, value, id=f"{section}.{field.name}={value!r}"
                )


@pytest.mark.parametrize(("section", "key", "value"), list(_cases()))
def test_a_value_of_the_wrong_type_is_refused_naming_the_key(section, key, value):
    with pytest.raises(ConfigurationError) as err:
        parse(section, {key: value})
    assert f"{section}.{key}" in str(err.value)
    assert repr(value) in str(err.value)


def test_the_string_false_no_longer_enables_the_product_split():
    with pytest.raises(ConfigurationError, match=r"payment_split\.product_enabled must be true or"):
        PaymentSplitSettings.from_mapping({"product_enabled": "false"})
    assert PaymentSplitSettings.from_mapping({"product_enabled": False}).product_enabled is False


@pytest.mark.parametrize("section", list(CLASSES))
def test_defaults_and_real_json_values_are_accepted(section):
    cls = CLASSES[section]
    defaults = {
        f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
        for f in dataclasses.fields(cls)
    }
    defaults = {k: list(v) if isinstance(v, tuple) else v for k, v in defaults.items()}
    assert parse(section, defaults) == parse(section, None) == parse(section, {})


@pytest.mark.parametrize("section", list(CLASSES))
def test_a_section_that_is_not_an_object_is_refused(section):
    with pytest.raises(ConfigurationError, match=section.replace(".", r"\.")):
        parse(section, ["product_enabled"])


SWEEPING = ("payment_split", "payment_refund", "seller_settlement", "hyperwallet_payments")


@pytest.mark.parametrize("section", SWEEPING)
@pytest.mark.parametrize("hours", [0, -1, "24", 1.5, True])
def test_the_backlog_full_sweep_cadence_is_a_whole_number_of_hours(section, hours):
    """Issue 15: each backlog's safety-net sweep cadence is typed; a sweep every 0 hours is
    refused, naming the section."""
    cls = CLASSES[section]
    with pytest.raises(ConfigurationError, match=f"{section}.backlog_full_sweep_hours"):
        cls.from_mapping({"backlog_full_sweep_hours": hours})
    assert cls.from_mapping({}).backlog_full_sweep_hours == 24
    assert cls.from_mapping({"backlog_full_sweep_hours": 6}).backlog_full_sweep_hours == 6
