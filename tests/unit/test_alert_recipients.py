"""``alerts.email_to``: the one parser every e-mail of the connector reads its recipients with."""

from __future__ import annotations

import pytest

from mirakl_connector.airflow.config import alert_settings
from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.operations.mail import alert_recipients, parse_email_to


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ()),
        ("", ()),
        ([], ()),
        ("ops@example.com", ("ops@example.com",)),
        (" a@x.com , b@x.com ", ("a@x.com", "b@x.com")),
        ("a@x.com;b@x.com; c@x.com", ("a@x.com", "b@x.com", "c@x.com")),
        ("a@x.com,,b@x.com;", ("a@x.com", "b@x.com")),
        ([" a@x.com", "b@x.com ", ""], ("a@x.com", "b@x.com")),
        (["a@x.com, b@x.com"], ("a@x.com", "b@x.com")),
        ("a@x.com, a@x.com, b@x.com", ("a@x.com", "b@x.com")),
        (("ops@localhost",), ("ops@localhost",)),
    ],
)
def test_lists_and_separated_strings_give_trimmed_addresses_in_order(value, expected):
    assert parse_email_to(value) == expected


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("ops@example.com, bob at example.com", "'bob at example.com'"),
        (["ops@example.com", "payments-ops"], "'payments-ops'"),
        ("a@@x.com", "'a@@x.com'"),
        ("a@x.com.", "'a@x.com.'"),
        ("@x.com", "'@x.com'"),
        (["ops@example.com", 42], "42"),
    ],
)
def test_an_entry_that_is_not_an_address_is_named_in_the_error(value, named):
    with pytest.raises(ConfigurationError) as raised:
        parse_email_to(value)
    message = str(raised.value)
    assert "alerts.email_to" in message
    assert named in message
    assert "ops@example.com" not in message.replace(named, "")  # only the bad entries are named


@pytest.mark.parametrize("value", [42, {"to": "a@x.com"}, True])
def test_a_value_neither_list_nor_string_is_refused(value):
    with pytest.raises(ConfigurationError, match="alerts.email_to must be a list"):
        parse_email_to(value)


def test_read_from_the_connector_config():
    assert alert_recipients({}) == ()
    assert alert_recipients({"alerts": None}) == ()
    assert alert_recipients({"alerts": {"email_from": "x@y.z"}}) == ()
    assert alert_recipients({"alerts": {"email_to": "a@x.com; b@x.com"}}) == ("a@x.com", "b@x.com")
    with pytest.raises(ConfigurationError, match="alerts must be an object"):
        alert_recipients({"alerts": ["a@x.com"]})


def test_the_airflow_failure_notifier_reads_the_same_addresses():
    config = {"alerts": {"email_to": " a@x.com;b@x.com ", "email_from": "af@x.com"}}
    settings = alert_settings(config)
    assert settings.email_to == alert_recipients(config) == ("a@x.com", "b@x.com")
    with pytest.raises(ConfigurationError, match="'nobody'"):
        alert_settings({"alerts": {"email_to": ["nobody"]}})
