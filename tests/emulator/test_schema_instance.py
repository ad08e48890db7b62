"""Small instances of JSON Schemas, checked against the schema rules they must satisfy."""

from __future__ import annotations

from typing import Any

import pytest

from aoai_gateway.emulator.schema_instance import instance_of, violating_instance


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "string"}, "example"),
        ({"type": "string", "minLength": 10}, "examplexxx"),
        ({"type": "string", "maxLength": 3}, "exa"),
        ({"type": "string", "format": "date-time"}, "2024-01-01T00:00:00Z"),
        ({"type": "integer"}, 0),
        ({"type": "integer", "minimum": 5}, 5),
        ({"type": "integer", "exclusiveMinimum": 5}, 6),
        ({"type": "integer", "maximum": -3}, -3),
        ({"type": "integer", "minimum": 10, "multipleOf": 7}, 14),
        ({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}, 0.5),
        ({"type": "number", "minimum": 1.5, "exclusiveMinimum": True}, 2.0),
        ({"type": "boolean"}, False),
        ({"type": "null"}, None),
        ({"type": ["null", "integer"]}, 0),
        ({"enum": ["b", "a"]}, "b"),
        ({"const": {"x": 1}}, {"x": 1}),
        ({"anyOf": [{"type": "null"}, {"type": "string"}]}, "example"),
        ({"type": "array", "items": {"type": "integer"}}, [0]),
        ({"type": "array", "items": {"type": "integer"}, "minItems": 3}, [0, 0, 0]),
        ({"type": "array", "items": {"type": "integer"}, "maxItems": 0}, []),
        ({"type": "array", "items": {"enum": ["x", "y"]}, "minItems": 2, "uniqueItems": True}, ["x", "y"]),
        ({"type": "object", "properties": {"a": {"type": "string"}}}, {}),
        ({"type": "object", "properties": {"a": {"type": "string"}}, "minProperties": 1}, {"a": "example"}),
    ],
)
def test_instances(schema: dict[str, Any], expected: Any) -> None:
    assert instance_of(schema) == expected


def test_refs_all_of_and_nesting() -> None:
    schema = {
        "$defs": {
            "Point": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]},
            "Named": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
        },
        "type": "object",
        "properties": {
            "where": {"$ref": "#/$defs/Point"},
            "who": {
                "allOf": [
                    {"$ref": "#/$defs/Named"},
                    {"properties": {"age": {"type": "integer"}}, "required": ["age"]},
                ]
            },
            "path": {"type": "array", "items": {"$ref": "#/$defs/Point"}},
            "skip": {"type": "string"},
        },
        "required": ["where", "who", "path"],
    }

    assert instance_of(schema) == {
        "where": {"x": 0.0},
        "who": {"name": "example", "age": 0},
        "path": [{"x": 0.0}],
    }


def test_recursive_schema_terminates() -> None:
    schema = {
        "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}, "required": ["next"]}},
        "$ref": "#/$defs/Node",
    }

    value = instance_of(schema)

    depth = 0
    while isinstance(value, dict) and "next" in value:
        value, depth = value["next"], depth + 1
    assert depth > 10


def test_violations() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    }

    assert violating_instance(schema) == {"b": 0}
    assert violating_instance({"type": "object", "properties": {}}) == []
    assert violating_instance({"type": "string"}) == {"unexpected": True}
