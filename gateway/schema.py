"""Build typed, frozen dataclasses from untrusted mappings (TOML tables, JSON records), collecting
*every* error as ``dotted.key: expected ..., got ...`` instead of stopping at the first.

The dataclass is the schema: field types say what is expected, defaults say what is optional,
and ``field(metadata={"min": 0, "max": 100, "doc": "..."})`` adds bounds and documentation
(``metadata=TIME_OF_DAY``: a local time ``'HH:MM'``).
Supported field types: bool, int, float, str, enums, ``X | None``, ``list[X]``,
``dict[str, X]``, ``tuple[X, ...]`` and nested dataclasses (including lists of them).
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")

TIME_OF_DAY: Mapping[str, Any] = types.MappingProxyType({"time_of_day": True})
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")

_MISSING = dataclasses.MISSING


class SchemaErrors(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


def build(cls: type[T], data: Any, path: str = "") -> T:
    """Return ``cls`` built from ``data`` or raise :class:`SchemaErrors` listing every problem."""
    errors: list[str] = []
    result = _build_dataclass(cls, data, path, errors)
    if errors:
        raise SchemaErrors(errors)
    return typing.cast(T, result)


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in typing.get_args(tp) if a is not type(None))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is tuple:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return f"a table of {_type_name(typing.get_args(tp)[1])}"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in tp)
    if dataclasses.is_dataclass(tp):
        return "a table"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _build_dataclass(cls: Any, data: Any, path: str, errors: list[str]) -> Any:
    if not isinstance(data, Mapping):
        errors.append(f"{path or '(top level)'}: expected a table, got {_describe(data)}")
        return None
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in known:
            expected = ", ".join(sorted(known))
            errors.append(f"{_join(path, str(key))}: unknown key (expected one of: {expected})")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        key_path = _join(path, f.name)
        if f.name not in data:
            if f.default is _MISSING and f.default_factory is _MISSING:
                errors.append(f"{key_path}: required, expected {_type_name(hints[f.name])}")
            continue
        before = len(errors)
        value = _convert(hints[f.name], data[f.name], key_path, errors)
        if len(errors) == before:
            _check_metadata(f, value, key_path, errors)
            kwargs[f.name] = value
    try:
        obj = cls(**kwargs)
    except TypeError:  # a required key is missing or wrong: already reported above
        return None
    except ValueError as exc:  # __post_init__ cross-field checks
        errors.append(f"{path}.{exc}" if path else str(exc))
        return None
    return obj


def value_problems(f: dataclasses.Field[Any], value: Any, path: str) -> list[str]:
    """What is wrong with ``value`` (already of the field's type) for ``f``'s bounds, choices
    and format; empty when nothing is."""
    errors: list[str] = []
    _check_metadata(f, value, path, errors)
    return errors


def _check_metadata(f: dataclasses.Field[Any], value: Any, path: str, errors: list[str]) -> None:
    if f.metadata.get("time_of_day") and not (isinstance(value, str) and _HHMM.match(value)):
        errors.append(f"{path}: expected local time 'HH:MM', got {value!r}")
    lo, hi = f.metadata.get("min"), f.metadata.get("max")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if lo is not None and value < lo:
            errors.append(f"{path}: expected at least {lo}, got {value}")
        if hi is not None and value > hi:
            errors.append(f"{path}: expected at most {hi}, got {value}")
    choices = f.metadata.get("choices")
    if choices is not None and value not in choices:
        errors.append(f"{path}: expected one of {', '.join(map(repr, choices))}, got {value!r}")


def _convert(tp: Any, value: Any, path: str, errors: list[str]) -> Any:
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:  # Optional[X]: X's own, precise errors
            return _convert(options[0], value, path, errors)
        for option in options:
            trial: list[str] = []
            converted = _convert(option, value, path, trial)
            if not trial:
                return converted
        errors.append(f"{path}: expected {_type_name(tp)}, got {_describe(value)}")
        return None
    if origin in (list, tuple):
        if not isinstance(value, list):
            errors.append(f"{path}: expected {_type_name(tp)}, got {_describe(value)}")
            return None
        item_type = typing.get_args(tp)[0]
        items = [_convert(item_type, v, _join(path, i), errors) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            errors.append(f"{path}: expected {_type_name(tp)}, got {_describe(value)}")
            return None
        value_type = typing.get_args(tp)[1]
        return {
            str(k): _convert(value_type, v, _join(path, str(k)), errors) for k, v in value.items()
        }
    if dataclasses.is_dataclass(tp):
        return _build_dataclass(tp, value, path, errors)
    if tp is Any:
        return value
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            errors.append(f"{path}: expected {_type_name(tp)}, got {_describe(value)}")
            return None
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is float and is_number and not math.isfinite(value):
        errors.append(f"{path}: expected a finite number, got {value}")
        return None
    if (
        (tp is bool and isinstance(value, bool))
        or (tp is int and is_number and isinstance(value, int))
        or (tp is str and isinstance(value, str))
    ):
        return value
    if tp is float and is_number:
        return float(value)
    errors.append(f"{path}: expected {_type_name(tp)}, got {_describe(value)}")
    return None


def describe_fields(cls: type[Any]) -> list[tuple[str, str, Any, str]]:
    """(name, expected type, default, doc) per field, for documentation and ``--help``."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not _MISSING else None
        rows.append((f.name, _type_name(hints[f.name]), default, f.metadata.get("doc", "")))
    return rows
