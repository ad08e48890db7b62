"""Small instances of JSON Schemas: tool-call arguments and `json_schema` answers that validate.

    instance_of({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
    # -> {"city": "example"}

The instance is small rather than rich: required properties only (optional ones just to reach
`minProperties`), one array item (or `minItems`), the first `enum` value, `const` as given, the first
non-null branch of `anyOf`/`oneOf`, merged `allOf`, local `$ref`s (`#/$defs/...`, `#/definitions/...`),
numbers inside `minimum`/`maximum`/`exclusive*`/`multipleOf`, strings sized to `minLength`/`maxLength`
and shaped for the common `format`s. `pattern` is not honoured: no general regex inverse is cheap.
`violating_instance` makes the "JSON, but wrong" answer that callers which re-ask must handle.

Given `excerpts` (passages of the text the request quoted), a string property named `quote` is filled with them
in turn, verbatim: what a grounded extraction ("each value with the passage it rests on") must be able to find.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["instance_of", "violating_instance"]

_MAX_DEPTH = 32
_FORMATS = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "00:00:00",
    "email": "user@example.com",
    "uri": "https://example.com",
    "url": "https://example.com",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "hostname": "example.com",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
}


@dataclass
class _Context:
    root: Any
    excerpts: Iterator[str] | None = None  # what `quote` properties say, in turn


def instance_of(schema: Any, excerpts: Sequence[str] = ()) -> Any:
    """A small value that validates against `schema`; `quote` strings taken from `excerpts` in turn."""
    return _generate(schema, _Context(schema, itertools.cycle(excerpts) if excerpts else None), 0)


def violating_instance(schema: Any) -> Any:
    """Valid JSON that fails `schema`: the instance less its first required property, else a wrong type."""
    resolved = _resolve(schema, schema)
    value = _generate(resolved, _Context(schema), 0)
    required = resolved.get("required") if isinstance(resolved, dict) else None
    if isinstance(value, dict) and required:
        value.pop(required[0], None)
        return value
    return [] if isinstance(value, dict) else {"unexpected": True}


def _resolve(schema: Any, root: Any) -> Any:
    """Follow `$ref`s and merge `allOf`, so the caller sees one plain schema."""
    for _ in range(_MAX_DEPTH):
        if not isinstance(schema, dict):
            return schema
        if "$ref" in schema:
            schema = {**_pointer(root, schema["$ref"]), **{k: v for k, v in schema.items() if k != "$ref"}}
        elif "allOf" in schema:
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                part = _resolve(part, root)
                if isinstance(part, dict):
                    properties = {**merged.get("properties", {}), **part.get("properties", {})}
                    required = [*merged.get("required", []), *part.get("required", [])]
                    merged = {**part, **merged, "properties": properties, "required": required}
            schema = merged
        else:
            return schema
    return schema


def _pointer(root: Any, ref: str) -> dict[str, Any]:
    if not ref.startswith("#"):
        return {}  # remote references cannot be fetched offline; anything then validates
    node = root
    for part in ref.lstrip("#").strip("/").split("/"):
        if not part:
            continue
        part = part.replace("~1", "/").replace("~0", "~")
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


def _generate(schema: Any, context: _Context, depth: int, name: str = "") -> Any:
    root = context.root
    schema = _resolve(schema, root)
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return {} if schema is not False else None
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches:
        resolved = [_resolve(branch, root) for branch in branches]
        chosen = next((b for b in resolved if not (isinstance(b, dict) and b.get("type") == "null")), resolved[0])
        return _generate(chosen, context, depth + 1, name)
    kind = _kind(schema)
    if kind == "object":
        return _object(schema, context, depth)
    if kind == "array":
        return _array(schema, context, depth)
    if kind in ("integer", "number"):
        return _number(schema, integer=kind == "integer")
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    if name == "quote" and context.excerpts is not None:
        return next(context.excerpts)
    return _string(schema)


def _kind(schema: dict[str, Any]) -> str:
    declared = schema.get("type")
    if isinstance(declared, list):
        declared = next((t for t in declared if t != "null"), declared[0] if declared else None)
    if isinstance(declared, str):
        return declared
    if "properties" in schema or "required" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return "string"


def _object(schema: dict[str, Any], context: _Context, depth: int) -> dict[str, Any]:
    properties: dict[str, Any] = schema.get("properties") or {}
    names = [name for name in schema.get("required", []) if isinstance(name, str)]
    for name in properties:
        if len(names) >= schema.get("minProperties", 0):
            break
        if name not in names:
            names.append(name)
    return {name: _generate(properties.get(name, {}), context, depth + 1, name) for name in names}


def _array(schema: dict[str, Any], context: _Context, depth: int) -> list[Any]:
    prefix = schema.get("prefixItems") or []
    count = max(schema.get("minItems", 0), 1, len(prefix))
    if "maxItems" in schema:
        count = min(count, schema["maxItems"])
    items = schema.get("items", {})
    values = [_generate(prefix[i] if i < len(prefix) else items, context, depth + 1) for i in range(count)]
    if schema.get("uniqueItems") and isinstance(items, dict) and len(items.get("enum", ())) >= count:
        values[len(prefix) :] = items["enum"][: count - len(prefix)]
    return values


def _number(schema: dict[str, Any], *, integer: bool) -> int | float:
    low, low_open = _bound(schema, "minimum", "exclusiveMinimum")
    high, high_open = _bound(schema, "maximum", "exclusiveMaximum")

    def fits(value: float) -> bool:
        above = low is None or (value > low if low_open else value >= low)
        below = high is None or (value < high if high_open else value <= high)
        return above and below

    candidates: list[float] = [0]
    if low is not None and high is not None:
        candidates.append((low + high) / 2)
    if low is not None:
        candidates += [math.floor(low) + 1, low] if low_open else [math.ceil(low), low]
    if high is not None:
        candidates += [math.ceil(high) - 1, high] if high_open else [math.floor(high), high]
    multiple = schema.get("multipleOf")
    if isinstance(multiple, (int, float)) and multiple > 0:
        candidates = [m * multiple for c in candidates for m in (math.ceil(c / multiple), math.floor(c / multiple))]
    for candidate in candidates:
        if fits(candidate) and (not integer or float(candidate).is_integer()):
            return int(candidate) if integer else float(candidate)
    return int(candidates[0]) if integer else float(candidates[0])


def _bound(schema: dict[str, Any], inclusive: str, exclusive: str) -> tuple[float | None, bool]:
    """A bound and whether it is open; draft 4 spells openness as a boolean beside the bound."""
    open_bound = schema.get(exclusive)
    if isinstance(open_bound, bool):
        value = schema.get(inclusive)
        return (value, open_bound) if isinstance(value, (int, float)) else (None, False)
    if isinstance(open_bound, (int, float)):
        return open_bound, True
    value = schema.get(inclusive)
    return (value, False) if isinstance(value, (int, float)) else (None, False)


def _string(schema: dict[str, Any]) -> str:
    text = _FORMATS.get(schema.get("format", ""), "example")
    minimum, maximum = schema.get("minLength", 0), schema.get("maxLength")
    if len(text) < minimum:
        text += "x" * (minimum - len(text))
    if maximum is not None:
        text = text[:maximum]
    return text
