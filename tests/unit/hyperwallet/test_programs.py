"""The shared ``hyperwallet`` configuration: programs in both spellings, refused mistakes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mirakl_connector.core.errors import ConfigurationError
from mirakl_connector.hyperwallet.programs import HyperwalletSettings


def parse(section):
    return HyperwalletSettings.from_config({"hyperwallet": section})


def test_program_objects():
    settings = parse(
        {
            "programs": [
                {"name": "EUROPE", "user_token": "prg-u1", "payment_token": "prg-p1",
                 "bank_account_token": "trm-op1"},
                {"name": "OTHER", "ignored": True},
            ],
            "max_item_retries": 3,
            "item_retry_delay_minutes": 10,
        }
    )  # fmt: skip
    europe = settings.program("EUROPE")
    assert (europe.user_token, europe.payment_token, europe.bank_account_token) == (
        "prg-u1", "prg-p1", "trm-op1",
    )  # fmt: skip
    assert settings.program("OTHER").ignored and settings.program("NOPE") is None
    assert [p.name for p in settings.active_programs] == ["EUROPE"]
    assert (settings.max_item_retries, settings.item_retry_delay) == (3, timedelta(minutes=10))
    assert settings.health_token == "prg-u1"


def test_incumbent_style_lists_keep_empty_entries_and_strip_blanks():
    settings = parse(
        {
            "program_names": "UK, EUROPE,OTHER",
            "program_user_tokens": "prg-uk, prg-eu,",
            "program_payment_tokens": "prg-pk,prg-pe,",
            "program_bank_account_tokens": ",trm-eu,",
            "ignored_programs": "OTHER",
        }
    )
    assert settings.names == ["UK", "EUROPE", "OTHER"]
    assert settings.program("UK").bank_account_token is None
    assert settings.program("EUROPE").user_token == "prg-eu"
    other = settings.program("OTHER")
    assert other.ignored and other.user_token is None


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (None, "no 'hyperwallet' section"),
        ({"programs": []}, "programs is empty"),
        ({"program_names": "A,B", "program_user_tokens": "prg-a",
          "program_payment_tokens": "prg-a,prg-b"}, "program_user_tokens has 1 entries for 2"),
        ({"programs": [{"name": "A", "user_token": "abc", "payment_token": "prg-p"}]},
         "programs[0].user_token must be a program token (prg-...), got 'abc'"),
        ({"programs": [{"name": "A", "user_token": "prg-u"}]},
         "payment_token is required for program 'A'"),
        ({"programs": [{"name": "A", "user_token": "prg-u", "payment_token": "prg-p",
                        "bank_account_token": "usr-1"}]}, "bank account token (trm-...)"),
        ({"programs": [{"name": "A", "user_token": "prg-u", "payment_token": "prg-p"},
                       {"name": "A", "user_token": "prg-u", "payment_token": "prg-p"}]},
         "configured twice"),
        ({"programs": [{"name": "A", "user_token": "prg-u", "payment_token": "prg-p"}],
          "ignored_programs": ["B"]}, "unknown program(s): B"),
        ({"programs": [{"name": "A", "ignored": True}]}, "every program is ignored"),
        ({"programs": [{"name": "A", "user_token": "prg-u", "payment_token": "prg-p"}],
          "program_names": "A"}, "not both"),
        ({"programs": [{"name": "A", "user_token": "prg-u", "payment_token": "prg-p"}],
          "typo": 1}, "unknown hyperwallet setting(s): typo"),
        ({"programs": [{"name": "A", "user_token": "prg-u", "payment_token": "prg-p"}],
          "max_item_retries": -1}, "max_item_retries must be an integer"),
    ],
)  # fmt: skip
def test_mistakes_are_refused_with_the_key_named(section, message):
    config = {} if section is None else {"hyperwallet": section}
    with pytest.raises(ConfigurationError) as caught:
        HyperwalletSettings.from_config(config)
    assert message in str(caught.value)
