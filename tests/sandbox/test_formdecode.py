from __future__ import annotations

from mirakl_sandbox.formdecode import decode_form


def test_nested_brackets_and_lists() -> None:
    decoded = decode_form(
        "amount=1000&metadata[miraklId]=X-1&created[gte]=17&expand[]=a&expand[]=b"
        "&items[0][price]=p1&items[1][price]=p2&settings[payouts][schedule][interval]=manual"
    )
    assert decoded == {
        "amount": "1000",
        "metadata": {"miraklId": "X-1"},
        "created": {"gte": "17"},
        "expand": ["a", "b"],
        "items": [{"price": "p1"}, {"price": "p2"}],
        "settings": {"payouts": {"schedule": {"interval": "manual"}}},
    }


def test_url_encoded_keys_and_empty_values() -> None:
    assert decode_form(b"metadata%5Bk%5D=a%20b&description=") == {
        "metadata": {"k": "a b"},
        "description": "",
    }
