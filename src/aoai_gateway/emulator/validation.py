"""Readers for request fields that answer bad input with OpenAI's 400 shape, naming the parameter.

    n = optional_int(body, "n", minimum=1, maximum=128) or 1
    messages = required_list(body, "messages")

Messages follow OpenAI's wording ("Missing required parameter: 'messages'.", "Invalid type for 'n': expected
an integer, but got a string instead.") because SDKs and gateways surface them to users verbatim.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from .errors import InvalidRequest

__all__ = [
    "optional_bool",
    "optional_choice",
    "optional_int",
    "optional_mapping",
    "optional_str",
    "required_list",
    "required_str",
]

_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "an array",
    dict: "an object",
    type(None): "null",
}


def _type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _wrong_type(param: str, expected: str, value: Any) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid type for '{param}': expected {expected}, but got {_type_name(value)} instead.",
        param=param,
        code="invalid_type",
    )


def _missing(param: str) -> InvalidRequest:
    return InvalidRequest(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")


def required_str(body: dict[str, Any], name: str, *, param: str | None = None) -> str:
    value = body.get(name)
    if value is None:
        raise _missing(param or name)
    if not isinstance(value, str):
        raise _wrong_type(param or name, "a string", value)
    return value


def optional_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise _wrong_type(name, "a string", value)
    return value


def required_list(body: dict[str, Any], name: str) -> list[Any]:
    value = body.get(name)
    if value is None:
        raise _missing(name)
    if not isinstance(value, list):
        raise _wrong_type(name, "an array", value)
    if not value:
        raise InvalidRequest(
            f"Invalid '{name}': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            param=name,
            code="empty_array",
        )
    return value


def optional_mapping(body: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = body.get(name)
    if value is not None and not isinstance(value, dict):
        raise _wrong_type(name, "an object", value)
    return value


def optional_bool(body: dict[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise _wrong_type(name, "a boolean", value)
    return value


def optional_int(
    body: dict[str, Any], name: str, *, minimum: int | None = None, maximum: int | None = None
) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    # bool is an int subclass in Python but not in JSON Schema.
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type(name, "an integer", value)
    if minimum is not None and value < minimum:
        raise InvalidRequest(
            f"Invalid '{name}': integer below minimum value. Expected a value >= {minimum}, but got {value} instead.",
            param=name,
            code="integer_below_min_value",
        )
    if maximum is not None and value > maximum:
        raise InvalidRequest(
            f"Invalid '{name}': integer above maximum value. Expected a value <= {maximum}, but got {value} instead.",
            param=name,
            code="integer_above_max_value",
        )
    return value


def optional_choice(
    body: dict[str, Any], name: str, choices: Collection[str], default: str, *, param: str | None = None
) -> str:
    value = body.get(name)
    if value is None:
        return default
    if value not in choices:
        supported = ", ".join(f"'{choice}'" for choice in choices)
        raise InvalidRequest(
            f"Invalid value: '{value}'. Supported values are: {supported}.",
            param=param or name,
            code="invalid_value",
        )
    return str(value)
