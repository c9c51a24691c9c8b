"""Stripe's response contract, read from the official SDK: the fields its object classes
(``stripe/_transfer.py`` ...) define, so a simulated answer carries no field a live one cannot
(:func:`unknown_fields`), and no write-only one (:func:`drop_write_only`)."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from stripe._stripe_object import StripeObject


# -- responses --------------------------------------------------------------------------------
@cache
def object_class(object_name: str) -> type | None:
    """The SDK's class for an ``object`` value (``transfer`` -> ``stripe.Transfer``)."""
    from stripe._object_classes import get_object_class

    try:
        return get_object_class("V1", object_name)
    except (KeyError, ValueError):  # pragma: no cover - depends on the SDK's lookup
        return None


@cache
def object_fields(cls: type) -> dict[str, Any]:
    """Field name -> annotation of an SDK object class (its own and inherited, no ClassVars)."""
    fields: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        for name, annotation in vars(klass).get("__annotations__", {}).items():
            text = annotation if isinstance(annotation, str) else repr(annotation)
            if "ClassVar" in text or name.startswith("_"):
                continue
            fields[name] = annotation
    return fields


_CONTAINERS = (
    "StripeObject",
    "ExpandableField",
    "ListObject",
    "Dict",
    "Any",
    "ForwardRef(",
    "<class 'stripe.",
)


def _shape_mismatch(annotation: Any, value: Any) -> str | None:
    """A JSON value of the wrong kind for its annotation (a hash where the SDK has a string, a
    string where it has an integer ...), or ``None``. Kinds only: enum values are not checked."""
    text = annotation if isinstance(annotation, str) else repr(annotation)
    if value is None:
        return None
    if isinstance(value, bool):
        ok = "bool" in text or "Literal[True]" in text or "Literal[False]" in text
    elif isinstance(value, int | float):
        ok = any(t in text for t in ("int", "float", "Decimal"))
    elif isinstance(value, str):
        ok = any(t in text for t in ("str", "Literal[", "ExpandableField"))
    elif isinstance(value, list):
        ok = "List" in text
    elif isinstance(value, dict):
        ok = any(t in text for t in _CONTAINERS) or bool(re.search(r"\.[A-Z]\w*\]", text))
    else:
        ok = True
    return None if ok else f"{type(value).__name__} where the SDK has {text}"


def _nested_class(owner: type, annotation: Any) -> type | None:
    """The nested StripeObject class an annotation names (``Optional[Requirements]``)."""
    text = annotation if isinstance(annotation, str) else repr(annotation)
    for name in re.findall(r"\b([A-Z]\w*)\b", text):
        nested = getattr(owner, name, None)
        if isinstance(nested, type) and issubclass(nested, StripeObject):
            return nested
    return None


def unknown_fields(body: Any, where: str = "", *, drop: bool = False) -> list[str]:
    """Paths of the fields in a response that the SDK's object classes do not define.

    Objects with an ``object`` value are checked against that class; their nested objects against
    the nested classes the annotations name (``Account.Requirements``). Free-form hashes
    (``metadata``, ``previous_attributes``, an event's ``data.object`` checked by its own
    ``object``) are not field-checked. With ``drop``, the fields found are also removed (see
    :func:`drop_write_only`).
    """
    out: list[str] = []
    if isinstance(body, list):
        for index, item in enumerate(body):
            out.extend(unknown_fields(item, f"{where}[{index}]", drop=drop))
        return out
    if not isinstance(body, dict):
        return out
    name = body.get("object")
    cls = object_class(name) if isinstance(name, str) else None
    if cls is None:
        if isinstance(name, str):
            out.append(f"{where or '.'}: object {name!r} has no SDK class")
        return out
    _walk_object(body, cls, where, out, drop)
    return out


def drop_write_only(obj: dict[str, Any]) -> dict[str, Any]:
    """Remove from a stored object the fields its SDK class does not define, in place.

    A handler that keeps what it was sent (an account's ``company``, ``settings`` ...) would
    otherwise answer write-only parameters back: ``account_token``, ``documents``,
    ``company[tax_id]`` (Stripe answers ``company.tax_id_provided`` instead), passwords. The
    API reference marks these parameters as never returned (docs.stripe.com/api/accounts/object
    lists no such fields), and the SDK's classes, generated from the same spec, lack them.
    """
    unknown_fields(obj, drop=True)
    return obj


def _is_object(value: Any) -> bool:
    """A Stripe object (``{"object": "transfer", ...}``), not a hash with an ``object`` key."""
    return isinstance(value, dict) and isinstance(value.get("object"), str)


_FREE_FORM = frozenset({"metadata", "previous_attributes"})


def _walk_object(
    body: dict[str, Any], cls: type, where: str, out: list[str], drop: bool = False
) -> None:
    fields = object_fields(cls)
    for key, value in list(body.items()):
        path = f"{where}.{key}" if where else key
        if key == "object" and isinstance(value, str):
            continue  # the discriminator the SDK picks the class by (``list`` has no annotation)
        if key not in fields:
            out.append(f"{path} ({cls.__name__})")
            if drop:
                del body[key]
            continue
        if key in _FREE_FORM:
            continue
        mismatch = _shape_mismatch(fields[key], value)
        if mismatch:
            out.append(f"{path} ({cls.__name__}: {mismatch})")
            continue
        if _is_object(value):
            out.extend(unknown_fields(value, path, drop=drop))
        elif isinstance(value, dict):
            nested = _nested_class(cls, fields[key])
            if nested is not None:
                _walk_object(value, nested, path, out, drop)
        elif isinstance(value, list):
            nested = _nested_class(cls, fields[key])
            for index, item in enumerate(value):
                if _is_object(item):
                    out.extend(unknown_fields(item, f"{path}[{index}]", drop=drop))
                elif isinstance(item, dict) and nested is not None:
                    _walk_object(item, nested, f"{path}[{index}]", out, drop)
