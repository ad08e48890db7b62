"""Tools behind one interface: the simulated home, webhooks and MCP servers look the same to the turn loop.

    registry = ToolRegistry([*home.tools(), *webhook_tools(...), *mcp_tools], max_result_chars=16_000)
    offered = registry.allowed(key_rules)                   # what this caller's key may use (`tool:NAME` entries)
    outcome = await registry.run("set_light", '{"room": "kitchen", "on": true}', offered)

`run` never raises for what a tool or the model got wrong: arguments that are not JSON or break the tool's JSON
Schema, an unknown or forbidden name, a tool's own failure (`ToolFailure`), a timeout or a crash all become a
`ToolOutcome` with `error` set, which goes back to the model as the tool's result, so it can say what went wrong or
try again. A tool's result is JSON, cut to `max_result_chars` of text.

Which tools a gateway key may use is part of its allowlist (`models`): `tool:set_light`, `tool:home_*`, `tool:*`.
A key without an allowlist (and passthrough mode, which has no keys) may use every tool; a key with one may use the
tools it names and no others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Protocol

import orjson
from jsonschema.exceptions import SchemaError, best_match
from jsonschema.validators import validator_for

from ..config import ConfigError

__all__ = ["TOOL_RULE_PREFIX", "Tool", "ToolFailure", "ToolOutcome", "ToolRegistry", "ToolSpec"]

log = logging.getLogger("aoai_gateway.assistant")

TOOL_RULE_PREFIX = "tool:"


class ToolFailure(Exception):
    """A tool could not do what was asked; the message goes to the model (so: no secrets, no stack traces)."""


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """What the model is told about a tool, and how the assistant treats it."""

    name: str
    description: str
    parameters: dict[str, Any]
    source: str  # "home", "webhook", "mcp:NAME"
    confirm: bool = False  # runs only once the user confirmed it in the next turn
    timeout_s: float = 10.0

    def definition(self) -> dict[str, Any]:
        """The chat completions `tools` entry."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


class Tool(Protocol):
    @property
    def spec(self) -> ToolSpec: ...

    async def run(self, arguments: dict[str, Any]) -> Any:
        """Do it; a JSON-able result, or ToolFailure with a message for the model."""


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    name: str
    result: Any = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_event(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "result": self.result, "error": self.error}


@dataclass(frozen=True, slots=True)
class _Entry:
    tool: Tool
    validator: Any


class ToolRegistry:
    """Every tool by name, its schema compiled once."""

    def __init__(self, tools: Iterable[Tool], *, max_result_chars: int = 16_000) -> None:
        self._entries: dict[str, _Entry] = {}
        for tool in tools:
            name = tool.spec.name
            if name in self._entries:
                raise ConfigError(
                    f"two assistant tools are named {name!r} ({tool.spec.source} and "
                    f"{self._entries[name].tool.spec.source}); rename one"
                )
            schema = tool.spec.parameters
            cls = validator_for(schema)
            try:
                cls.check_schema(schema)
            except SchemaError as exc:
                raise ConfigError(
                    f"assistant tool {name!r} ({tool.spec.source}): its parameters are not a valid JSON Schema: "
                    f"{exc.message}"
                ) from None
            self._entries[name] = _Entry(tool, cls(schema))
        self.max_result_chars = max_result_chars

    def specs(self) -> list[ToolSpec]:
        return [entry.tool.spec for entry in self._entries.values()]

    def spec(self, name: str) -> ToolSpec | None:
        entry = self._entries.get(name)
        return entry.tool.spec if entry is not None else None

    def allowed(self, rules: Sequence[str] | None) -> list[ToolSpec]:
        """The tools a key with allowlist `rules` (its `models`) may use; None: no allowlist, every tool."""
        if rules is None:
            return self.specs()
        patterns = [rule[len(TOOL_RULE_PREFIX) :] for rule in rules if rule.startswith(TOOL_RULE_PREFIX)]
        return [spec for spec in self.specs() if any(fnmatchcase(spec.name, p) for p in patterns)]

    def check(self, name: str, arguments_text: str, offered: Sequence[ToolSpec]) -> dict[str, Any] | ToolOutcome:
        """The parsed, valid arguments of a call, or the outcome that explains why it cannot run."""
        entry = self._entries.get(name)
        if entry is None or all(spec.name != name for spec in offered):
            known = ", ".join(spec.name for spec in offered) or "none"
            return ToolOutcome(name, error=f"There is no tool named {name[:64]!r}; the tools are: {known}.")
        try:
            arguments = orjson.loads(arguments_text or "{}")
        except orjson.JSONDecodeError as exc:
            return ToolOutcome(name, error=f"The arguments are not valid JSON ({exc}); send a JSON object.")
        if not isinstance(arguments, dict):
            return ToolOutcome(name, error="The arguments must be a JSON object.")
        problem = best_match(entry.validator.iter_errors(arguments))
        if problem is not None:
            where = "/".join(str(part) for part in problem.absolute_path) or "(the arguments)"
            return ToolOutcome(name, error=f"Invalid arguments at {where}: {problem.message[:300]}")
        return arguments

    async def run(self, name: str, arguments_text: str, offered: Sequence[ToolSpec]) -> ToolOutcome:
        checked = self.check(name, arguments_text, offered)
        if isinstance(checked, ToolOutcome):
            return checked
        return await self.run_checked(name, checked)

    async def run_checked(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        """Run a call whose arguments `check` accepted; its failure, timeout or crash becomes the outcome."""
        entry = self._entries[name]
        spec = entry.tool.spec
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with asyncio.timeout(spec.timeout_s):
                result = await entry.tool.run(arguments)
        except ToolFailure as exc:
            return ToolOutcome(name, error=str(exc)[:1000], seconds=loop.time() - started)
        except TimeoutError:
            return ToolOutcome(name, error=f"The tool timed out after {spec.timeout_s:g} s.", seconds=spec.timeout_s)
        except Exception as exc:  # a tool's bug must not end the user's turn; it is logged with its traceback
            log.exception("assistant tool %s (%s) failed", name, spec.source)
            return ToolOutcome(name, error=f"The tool failed ({type(exc).__name__}).", seconds=loop.time() - started)
        return ToolOutcome(name, result=self._bounded(result), seconds=loop.time() - started)

    def _bounded(self, result: Any) -> Any:
        try:
            text = orjson.dumps(result).decode()
        except TypeError:
            text = orjson.dumps(str(result)).decode()
            result = str(result)
        if len(text) <= self.max_result_chars:
            return result
        return {"truncated": True, "text": text[: self.max_result_chars]}
