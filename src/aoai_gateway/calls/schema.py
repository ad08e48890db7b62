"""The JSON Schema that says what to extract from a call, and the validator that holds answers to it.

    schema = ExtractionSchema.load(None)           # the bundled sales-call schema (calls-dev field names)
    schema = ExtractionSchema.load("fields.json")  # a user's own
    problem = schema.problem({"customer_name": 3}) # "customer_name: 3 is not of type 'string', 'null'" or None

OpenAI's strict structured outputs accept a subset of JSON Schema: every object closed (`additionalProperties:
false`) with every property required. A schema in that subset is sent with `strict: true`; any other valid
schema is still sent (strict off) and every answer is validated here either way.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from .errors import SchemaError

_NAME = re.compile(r"[^a-zA-Z0-9_-]+")


@dataclass(frozen=True)
class ExtractionSchema:
    schema: dict[str, Any]
    name: str  # the response_format / tool name: letters, digits, _ and -
    digest: str  # sha256 of the canonical JSON, recorded with every document
    strict: bool
    validator: jsonschema.protocols.Validator

    @classmethod
    def load(cls, path: str | None) -> ExtractionSchema:
        if path is None:
            text = resources.files(__package__).joinpath("default_schema.json").read_text(encoding="utf-8")
            where = "the default schema"
        else:
            where = path
            try:
                text = Path(path).expanduser().read_text(encoding="utf-8")
            except OSError as exc:
                raise SchemaError(f"schema {path}: {exc.strerror or exc}") from None
        try:
            schema = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SchemaError(f"schema {where}: not JSON: {exc}") from None
        return cls.from_dict(schema, where)

    @classmethod
    def from_dict(cls, schema: Any, where: str = "schema") -> ExtractionSchema:
        if not isinstance(schema, dict) or schema.get("type") != "object" or not schema.get("properties"):
            raise SchemaError(f"{where}: the top level must be an object schema with `properties`")
        validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        try:
            validator_class.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise SchemaError(f"{where}: not a valid JSON Schema: {exc.message}") from None
        canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"))
        return cls(
            schema=schema,
            name=_NAME.sub("_", str(schema.get("title") or "call_fields"))[:64],
            digest=hashlib.sha256(canonical.encode()).hexdigest(),
            strict=_strict_compatible(schema),
            validator=validator_class(schema),
        )

    @property
    def fields(self) -> list[str]:
        return list(self.schema["properties"])

    def problem(self, answer: Any) -> str | None:
        """The most relevant validation error as one line, or None when `answer` is valid."""
        error = jsonschema.exceptions.best_match(self.validator.iter_errors(answer))
        if error is None:
            return None
        where = ".".join(str(part) for part in error.absolute_path)
        return f"{where}: {error.message}" if where else error.message


def _strict_compatible(node: Any) -> bool:
    """Whether every object in the schema is closed with all its properties required (OpenAI's strict subset)."""
    if isinstance(node, list):
        return all(_strict_compatible(item) for item in node)
    if not isinstance(node, dict):
        return True
    if "properties" in node:
        closed = node.get("additionalProperties") is False
        if not closed or set(node.get("required", ())) != set(node["properties"]):
            return False
    return all(_strict_compatible(value) for key, value in node.items() if key not in ("enum", "const", "default"))


def differs_from(prop: Any) -> list[str]:
    """The fields a property's `x-differs-from` names: one name or a list of them."""
    given = prop.get("x-differs-from") if isinstance(prop, dict) else None
    if isinstance(given, str):
        return [given]
    return [other for other in given if isinstance(other, str)] if isinstance(given, list) else []
