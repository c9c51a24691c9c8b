from __future__ import annotations

import importlib
import subprocess
import sys

import jsonschema

from mirakl_connector import get_provider_info


def _conn_types() -> dict[str, dict]:
    return {ct["connection-type"]: ct for ct in get_provider_info()["connection-types"]}


def test_declares_both_connection_types_with_hooks_that_match() -> None:
    info = get_provider_info()
    assert info["package-name"] == "mirakl-connector"
    types = _conn_types()
    assert set(types) == {"mirakl", "stripe", "hyperwallet"}
    for conn_type, spec in types.items():
        module_name, class_name = spec["hook-class-name"].rsplit(".", 1)
        hook = getattr(importlib.import_module(module_name), class_name)
        assert hook.conn_type == conn_type
        assert spec["hook-name"] == hook.hook_name
    assert types["mirakl"]["hook-class-name"].endswith("MiraklHook")
    assert types["stripe"]["hook-class-name"].endswith("StripeHook")
    assert types["hyperwallet"]["hook-class-name"].endswith("HyperwalletHook")


def test_forms_relabel_the_secret_fields_and_use_valid_schemas() -> None:
    types = _conn_types()
    assert types["mirakl"]["ui-field-behaviour"]["relabeling"]["password"] == "API key"
    assert types["stripe"]["ui-field-behaviour"]["relabeling"]["password"] == "Secret key"
    assert "Bearer" in types["mirakl"]["ui-field-behaviour"]["placeholders"]["password"]
    assert "rk_" in types["stripe"]["ui-field-behaviour"]["placeholders"]["password"]
    for spec in types.values():
        assert "password" not in spec["ui-field-behaviour"]["hidden-fields"]
        for name, field in spec["conn-fields"].items():
            jsonschema.Draft7Validator.check_schema(field["schema"])
            if any(word in name for word in ("secret", "key", "token", "password")):
                assert field["schema"].get("format") == "password", name


def test_core_package_imports_without_airflow() -> None:
    code = (
        "import sys; sys.modules['airflow'] = None\n"
        "import mirakl_connector, mirakl_connector.core.money, mirakl_connector.core.errors\n"
        "assert mirakl_connector.get_provider_info()['connection-types']\n"
        "assert not any(m == 'airflow' or m.startswith('airflow.') "
        "for m, v in sys.modules.items() if v is not None)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
