"""One check of the connector's settings sections against their dataclass, by type.

Each workflow's settings are a frozen dataclass filled from a section of the JSON Variable
``mirakl_connector_config``. JSON has real booleans and numbers, but an operator typing in the
Airflow UI easily writes ``"false"``, and ``bool("false")`` is true: the split went on planning
transfers with ``product_enabled: "false"``. So every value is checked against its field's
annotation before the dataclass is built, and a wrong one fails the task with a
:class:`ConfigurationError` that names the key, never coerced. A key no field has is refused by
:func:`refuse_unknown`, which the sections parsed by hand use too. Range and format rules (a
positive count, a token prefix) stay with each section.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from mirakl_connector.core.errors import ConfigurationError


def checked_values(
    cls: type,
    values: Mapping[str, Any] | None,
    section: str,
    *,
    elsewhere: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``values`` as keyword arguments for ``cls``, after checking each key and value type.

    :param elsewhere: keys that belong to another section, by that section (see
        :func:`refuse_unknown`).
    :raises ConfigurationError: for a section that is not an object, an unknown key, or a value
        of the wrong type, naming ``<section>.<key>``.
    """
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise ConfigurationError(f"{section} must be an object, got {values!r}")
    hints = _field_types(cls)
    refuse_unknown(values, hints, section, elsewhere=elsewhere)
    return {
        name: _checked(value, hints[name], f"{section}.{name}") for name, value in values.items()
    }


def refuse_unknown(
    values: Mapping[str, Any],
    known: Iterable[str],
    where: str,
    *,
    elsewhere: Mapping[str, str] | None = None,
) -> None:
    """Refuse the keys of ``values`` that are not ``known``: the one unknown-setting check.

    A misspelt setting silently ignored would leave its default in force (``linkfield`` for
    ``link_field``: the onboarding link would still go to the default shop field), so every
    section of the configuration, and every object inside one, goes through here.

    :param where: the section or object, as the operator would find it (``payment_split``,
        ``hyperwallet.programs[0]``).
    :param elsewhere: keys that belong to another section, by that section, so the error says
        where to put them (``tax_account`` is a ``payment_split`` setting, not a refund one).
    :raises ConfigurationError: ``unknown <where> setting(s): <every unknown key, sorted>``.
    """
    unknown = sorted({str(key) for key in values} - {str(key) for key in known})
    if not unknown:
        return
    moved = elsewhere or {}
    names = ", ".join(f"{key} (set in {moved[key]})" if key in moved else key for key in unknown)
    raise ConfigurationError(f"unknown {where} setting(s): {names}")


@cache
def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {name: hints[name] for name in cls.__dataclass_fields__}  # type: ignore[attr-defined]


def _checked(value: Any, expected: Any, key: str) -> Any:
    """``value`` if it is of type ``expected`` (a tuple type gets a list as a tuple, a dict
    type a JSON object whose keys and values are checked in turn)."""
    args = typing.get_args(expected)
    if typing.get_origin(expected) in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (expected,) = [a for a in args if a is not type(None)]
        args = typing.get_args(expected)
    if typing.get_origin(expected) in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigurationError(f"{key} must be an object, got {value!r}")
        key_type, value_type = args
        return {
            _checked(k, key_type, f"{key} key {k!r}"): _checked(v, value_type, f"{key}.{k}")
            for k, v in value.items()
        }
    if typing.get_origin(expected) is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigurationError(f"{key} must be a list, got {value!r}")
        return tuple(_checked(item, args[0], f"{key}[{i}]") for i, item in enumerate(value))
    if expected is bool and not isinstance(value, bool):
        raise ConfigurationError(f"{key} must be true or false (a JSON boolean), got {value!r}")
    if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigurationError(f"{key} must be an integer, got {value!r}")
    if expected is float and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise ConfigurationError(f"{key} must be a number, got {value!r}")
    if expected is str and not isinstance(value, str):
        raise ConfigurationError(f"{key} must be a string, got {value!r}")
    return value
