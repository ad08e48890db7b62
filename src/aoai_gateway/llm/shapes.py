"""The shape an answer must take, as a grammar llama.cpp samples under, and how the generated text is read back.

shape = answer_shape(request)          # None: free text
shape.grammar                          # GBNF: every sampled token keeps the answer inside it
shape.read(text)                       # -> Reply(content=...) or Reply(tool_calls=(("name", '{"city": "Oslo"}'),))

Grammar-constrained decoding is what makes the guarantee: with `response_format` json_schema the answer can only
be a JSON document valid against the schema, and with `tool_choice` "required" or a named function it can only be
a call of a declared tool whose arguments are valid against that tool's parameters (the call is generated as
`{"name": ..., "arguments": {...}}` and returned in OpenAI's `tool_calls` shape); "required" with
`parallel_tool_calls: true` allows 1 to MAX_PARALLEL calls (a JSON array of them). An answer cut off at
`max_tokens` is incomplete, as OpenAI's is: its finish_reason says "length".

With `tool_choice` "auto" the grammar has two alternatives: exactly one well-formed call of a declared tool (bare
JSON, or inside `<tool_call>` tags as several chat templates ask), or plain text, which then cannot begin with
`{`, `<` or white space (what would make it ambiguous with a call); so an answer is read back as one or the other,
never as a malformed call. With a json_schema or json_object response_format, "auto" keeps that format's grammar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson
from llama_cpp.llama_grammar import JSON_GBNF, SchemaConverter

from ..errors import InvalidRequest
from .request import GenerationRequest

# A function declared without parameters takes none: `{}` is its only call.
_NO_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}
_BOUNDS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")
MAX_REPETITION = 4096
_QUANTIFIER = re.compile(r"[{,]\s*(\d+)")  # the numbers of a regex quantifier (and a few harmless others)
_LOOSE_CHAR = r'char ::= [^"\\] |'
_JSON_CHAR = r'char ::= [^"\\\x7F\x00-\x1F] |'
MAX_PARALLEL = 4  # calls in one answer with parallel_tool_calls: a bound keeps a gibberish model from looping
# "auto": a call (bare or tagged) or text that cannot be mistaken for one. `[^\x00]` is any character.
_AUTO_RULES = r"""
root ::= tool-call | "<tool_call>" auto-ws tool-call auto-ws "</tool_call>" | auto-text
auto-ws ::= [ \n]?
auto-text ::= [^{<\x00-\x20] [^\x00]*
"""
_AUTO_NAMES = re.compile(r"^(root|auto-ws|auto-text) ::=", re.MULTILINE)
_TAGGED = re.compile(r"^\s*<tool_call>\s*(.*?)\s*(?:</tool_call>)?\s*$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Reply:
    content: str | None = None
    tool_calls: tuple[tuple[str, str], ...] = ()  # (function name, arguments as JSON text) of each call


@dataclass(frozen=True, slots=True)
class AnswerShape:
    grammar: str | None
    tools: dict[str, dict[str, Any]]  # name -> parameters, for reading a call back
    named: str | None = None  # the answer is the arguments of this tool
    any_call: bool = False  # the answer is {"name": ..., "arguments": ...} of one of the tools
    parallel: bool = False  # with any_call: a JSON array of 1 to MAX_PARALLEL such calls
    schema: dict[str, Any] | None = None  # the JSON Schema the whole answer is a document of (lookahead.py)

    @property
    def forced(self) -> bool:
        return self.named is not None or self.any_call

    def read(self, text: str) -> Reply:
        if self.named is not None:
            return Reply(tool_calls=((self.named, _compact(text)),))
        if self.parallel:
            return _as_calls(text, self.tools) or Reply(content=text)  # only when cut off at max_tokens
        if self.any_call:
            return _as_call(text, self.tools) or Reply(content=text)  # only when cut off at max_tokens
        if self.tools:
            tagged = _TAGGED.match(text)
            return _as_call(tagged.group(1) if tagged else text, self.tools) or Reply(content=text)
        return Reply(content=text)


def answer_shape(request: GenerationRequest) -> AnswerShape:
    """The grammar for what `request` asks; InvalidRequest for a schema that cannot be turned into one."""
    choice = request.tool_choice
    tools = {t["name"]: t["parameters"] or _NO_PARAMETERS for t in request.tools} if choice.mode != "none" else {}
    if choice.mode == "named" and choice.name is not None:
        parameters = tools[choice.name]
        return AnswerShape(_grammar(parameters, "tools"), tools, named=choice.name, schema=parameters)
    if choice.mode == "required" and request.parallel_tool_calls:
        schema = {"type": "array", "items": _call_schema(tools), "minItems": 1, "maxItems": MAX_PARALLEL}
        return AnswerShape(_grammar(schema, "tools"), tools, any_call=True, parallel=True)
    if choice.mode == "required":
        return AnswerShape(_grammar(_call_schema(tools), "tools"), tools, any_call=True)
    if request.json_schema is not None:
        schema = request.json_schema
        return AnswerShape(_grammar(schema, "response_format.json_schema.schema"), tools, schema=schema)
    if request.json_object:
        return AnswerShape(JSON_GBNF, tools)
    if tools:  # "auto": one valid call or plain text
        return AnswerShape(_grammar(_call_schema(tools), "tools", name="tool-call") + _AUTO_RULES, tools)
    return AnswerShape(None, tools)


def _call_schema(tools: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One call of any of `tools`, as the model writes it: `{"name": ..., "arguments": {...}}`."""
    calls = [
        {
            "type": "object",
            "properties": {"name": {"const": name}, "arguments": parameters},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for name, parameters in tools.items()
    ]
    return calls[0] if len(calls) == 1 else {"anyOf": calls}


def _grammar(schema: dict[str, Any], param: str, *, name: str = "") -> str:
    """The GBNF of `schema`; its top rule is `root`, or `name` when the caller adds its own root."""
    try:
        _check_schema(schema, param)
        # What json_schema_to_gbnf does, with the top rule's name chosen (JSON round trip: plain values only).
        converter = SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)  # type: ignore[no-untyped-call]
        resolved = converter.resolve_refs(orjson.loads(orjson.dumps(_split_type_lists(schema))), "stdin")
        converter.visit(resolved, name)  # type: ignore[no-untyped-call]
        grammar: str = converter.format_grammar()  # type: ignore[no-untyped-call]
        if name and _AUTO_NAMES.search(grammar):  # a $defs entry named like one of the added rules
            raise ValueError("a definition is named 'root', 'auto-ws' or 'auto-text'")
        # llama-cpp-python's converter lets a string hold raw control characters, which JSON forbids (llama.cpp's
        # own converter excludes them): without this a gibberish model wrote "\n" raw into a string.
        return grammar.replace(_LOOSE_CHAR, _JSON_CHAR)
    except (ValueError, KeyError, TypeError, AssertionError, NotImplementedError, RecursionError) as exc:
        # The converter raises plain Python errors for what it cannot express; the client learns which schema.
        raise InvalidRequest(
            f"This JSON Schema cannot be enforced by the local model's grammar: {type(exc).__name__}: {exc}",
            param=param,
            code="invalid_schema",
        ) from None


def _split_type_lists(node: Any) -> Any:
    """`{"type": ["string", "null"], "maxLength": 5}` as `{"anyOf": [{"type": "string", "maxLength": 5}, {"type":
    "null", "maxLength": 5}]}`: the same schema (a keyword binds only its own type), but the converter drops the
    other keywords of a type list, and an unbounded string would be allowed where the schema bounds it."""
    if isinstance(node, list):
        return [_split_type_lists(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _split_type_lists(value) for key, value in node.items()}
    types = node.get("type")
    if isinstance(types, list) and len(types) > 1:
        rest = {key: value for key, value in node.items() if key != "type"}
        return {"anyOf": [{**rest, "type": kind} for kind in types]}
    return node


def _check_schema(node: Any, param: str) -> None:
    """Refuse what the converter would fetch or expand without bound, before it sees the schema."""
    if isinstance(node, list):
        for item in node:
            _check_schema(item, param)
        return
    if not isinstance(node, dict):
        return
    ref = node.get("$ref")
    if ref is not None and not (isinstance(ref, str) and ref.startswith("#/")):
        # The converter would fetch an https:// schema (only an assert stands in its way): never from here.
        raise InvalidRequest(
            f"Only local '$ref's ('#/...') are allowed, not {ref!r}.", param=param, code="invalid_schema"
        )
    pattern = node.get("pattern")
    counts = [int(n) for n in _QUANTIFIER.findall(pattern)] if isinstance(pattern, str) else []
    for bound, value in [*((b, node.get(b)) for b in _BOUNDS), *(("pattern", n) for n in counts)]:
        if isinstance(value, int) and value > MAX_REPETITION:
            # llama.cpp expands `x{0,n}` into n rules: a huge bound would exhaust memory while the grammar loads.
            raise InvalidRequest(
                f"'{bound}' may be at most {MAX_REPETITION} for the local model's grammar (got {value}).",
                param=param,
                code="invalid_schema",
            )
    for value in node.values():
        _check_schema(value, param)


def _as_call(text: str, tools: dict[str, dict[str, Any]]) -> Reply | None:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict) or value.get("name") not in tools or not isinstance(value.get("arguments"), dict):
        return None
    return Reply(tool_calls=((value["name"], orjson.dumps(value["arguments"]).decode()),))


def _as_calls(text: str, tools: dict[str, dict[str, Any]]) -> Reply | None:
    try:
        values = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(values, list) or not values:
        return None
    replies = [_as_call(orjson.dumps(value).decode(), tools) for value in values]
    if not all(replies):
        return None
    return Reply(tool_calls=tuple(call for reply in replies if reply for call in reply.tool_calls))


def _compact(text: str) -> str:
    try:
        return orjson.dumps(orjson.loads(text)).decode()
    except orjson.JSONDecodeError:
        return text  # cut off at max_tokens: passed on as it is, with finish_reason "length"
