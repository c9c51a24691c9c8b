"""An unknown key is refused the same way in every section of the configuration.

``settings.refuse_unknown`` is the one check: the dataclass sections reach it through
``checked_values``, the sections parsed by hand (``hyperwallet``, ``payout_provider``, ``alerts``,
the objects inside them, the demo's ledger rows) call it directly. Each must fail with
``unknown <where> setting(s): <keys>``, naming every unknown key and only those.
"""

from __future__ import annotations

import pytest

from mirakl_connector.airflow.config import alert_settings
from mirakl_connector.airflow.demo import mappings_from_scenario
from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.core.settings import refuse_unknown
from mirakl_connector.hyperwallet.programs import HyperwalletSettings
from mirakl_connector.operations.mail import alert_recipients
from mirakl_connector.operations.payout_provider import PayoutProviderRule
from mirakl_connector.stripe.kyc_monitor import KycMonitorSettings
from mirakl_connector.stripe.payment_split import PaymentSplitSettings
from mirakl_connector.stripe.refunds import PaymentRefundSettings

PROGRAM = {"name": "A", "user_token": "prg-u", "payment_token": "prg-p"}


def test_every_unknown_key_is_named_sorted_and_known_ones_are_not():
    with pytest.raises(ConfigurationError) as raised:
        refuse_unknown({"b": 1, "ok": 2, "a": 3}, ("ok",), "section")
    assert str(raised.value) == "unknown section setting(s): a, b"
    refuse_unknown({"ok": 1}, ("ok", "other"), "section")  # nothing unknown: no error


@pytest.mark.parametrize(
    ("parse", "message"),
    [
        (
            lambda: PaymentSplitSettings.from_mapping({"product_enable": True}),
            "unknown payment_split setting(s): product_enable",
        ),
        (
            lambda: KycMonitorSettings.from_mapping({"update_miraki": True}),
            "unknown kyc_monitor setting(s): update_miraki",
        ),
        (
            lambda: HyperwalletSettings.from_config(
                {"hyperwallet": {"programs": [PROGRAM], "x": 1}}
            ),
            "unknown hyperwallet setting(s): x",
        ),
        (
            lambda: HyperwalletSettings.from_config(
                {"hyperwallet": {"programs": [{**PROGRAM, "tokn": "prg-t"}]}}
            ),
            "unknown hyperwallet.programs[0] setting(s): tokn",
        ),
        (
            lambda: PayoutProviderRule.from_config({"payout_provider": {"defaults": "stripe"}}),
            "unknown payout_provider setting(s): defaults",
        ),
        (
            lambda: PayoutProviderRule.from_config(
                {"payout_provider": {"shops": {"2001": {"provider": "stripe", "since": "x"}}}}
            ),
            "unknown payout_provider.shops.2001 setting(s): since",
        ),
        (
            lambda: alert_recipients({"alerts": {"email": "ops@example.com"}}),
            "unknown alerts setting(s): email",
        ),
        (
            lambda: alert_settings({"alerts": {"email_to": [], "email_form": "a@x.com"}}),
            "unknown alerts setting(s): email_form",
        ),
        (
            lambda: mappings_from_scenario(
                {"ledger": {"account_mappings": [{"shop_id": 1, "acount_id": "acct_1"}]}}
            ),
            "unknown ledger.account_mappings[0] setting(s): acount_id",
        ),
    ],
)
def test_each_section_refuses_a_typo_the_same_way(parse, message):
    with pytest.raises(ConfigurationError) as raised:
        parse()
    assert message in str(raised.value)


def test_a_setting_of_another_section_says_where_it_belongs():
    with pytest.raises(ConfigurationError) as raised:
        PaymentRefundSettings.from_mapping({"tax_account": "acct_tax", "product_enabled": True})
    assert str(raised.value) == (
        "unknown payment_refund setting(s): tax_account (set in payment_split)"
    )
