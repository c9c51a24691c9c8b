"""The Stripe hook says which mode its key is in (test, live, restricted) and never the key."""

from __future__ import annotations

import logging

import pytest

from mirakl_connector.airflow.hooks.stripe import StripeHook, key_mode

KEYS = {
    "sk_test_51SECRETtestKEYvalue": "test",
    "sk_live_51SECRETliveKEYvalue": "live",
    "rk_test_51SECRETrestrictedT": "restricted (test)",
    "rk_live_51SECRETrestrictedL": "restricted (live)",
}


@pytest.mark.parametrize(
    ("key", "mode"), [*KEYS.items(), ("pk_live_x", "unknown"), (None, "unknown")]
)
def test_key_mode_from_the_prefix(key, mode) -> None:
    assert key_mode(key) == mode


@pytest.mark.parametrize(("key", "mode"), KEYS.items())
def test_gateway_creation_logs_the_mode_without_the_key(
    fake_library, connection, caplog, capfd, key, mode
) -> None:
    connection("stripe_default", conn_type="stripe", password=key, host="http://127.0.0.1:9")
    caplog.set_level(logging.INFO)
    hook = StripeHook()
    assert hook.mode == mode
    hook.get_gateway()
    out, err = capfd.readouterr()
    logged = caplog.text + out + err
    assert f"'stripe_default': {mode} key" in logged
    assert "SECRET" not in logged  # no part of the key after its prefix
    assert fake_library.gateways[0]["api_key"] == key
