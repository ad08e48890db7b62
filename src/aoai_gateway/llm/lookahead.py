"""The text an answer's JSON Schema leaves no choice about, known before it is sampled: jump-forward decoding.

    ahead = Lookahead(schema)          # the schema the answer's grammar was made from (shapes.AnswerShape.schema)
    ahead.feed('{"summary": "A buyer."')
    ahead.forced()                     # ', "agent_name": {"quote":' : what must come next, whatever the model says

Under a grammar made from a strict JSON Schema (every property required, no others), much of the answer is fixed:
the braces, the keys in their order, the commas and colons between them (a grounded sales-call answer: 27% of its
tokens, bench/llm_lookahead_bench.py). Sampling them costs a forward pass of the model each, one token at a time;
evaluating them as one batch costs less a token (on one CPU thread the whole answer came 1.13x sooner).
`LocalChatModel.tokens` (model.py) asks for the forced text after each token, writes it (each token still checked
by the grammar, which stays the authority: a token it refuses ends the jump) and evaluates it in one batch.

What is forced, and where the scanner follows the answer:
- a value whose schema is an object with properties, all required, and `additionalProperties: false`: its `{`,
  its first key, and after each of its values the `, "next key": ` or, after the last one, its `}`;
- a value whose schema is an array: its `[`; and its `]` once `maxItems` items are written;
- everything else is the model's: strings, numbers, `null` or not, an array's next item or end, an enum's member.
White space the grammar allows is written as `json.dumps` writes it (", " and ": "); the model's own white space is
read past. Anything this scanner does not follow (a schema it does not know, text that is not JSON) stops the
forcing for the rest of the answer, and the model samples as before: forcing is an optimisation, never a rule.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass
from typing import Any

__all__ = ["Lookahead", "fixed_object"]

_WHITE = " \t\n\r"
_LITERALS = frozenset({"null", "true", "false"})


def fixed_object(schema: Any) -> list[str] | None:
    """The keys of an object schema whose every property is required and no other is allowed, in the order the
    grammar writes them (the properties' order); None for any other schema."""
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return None
    properties, required = schema.get("properties"), schema.get("required")
    if not isinstance(properties, dict) or not properties or schema.get("additionalProperties") is not False:
        return None
    if not isinstance(required, list) or len(required) != len(properties) or set(required) != set(properties):
        return None
    return list(properties)


@dataclass(slots=True)
class _Frame:
    """An object or array being written: its schema, and where in it the answer is."""

    schema: dict[str, Any]
    keys: list[str] | None  # an object's keys in their fixed order; None: an array, or an object only read
    array: bool
    at: int = 0  # keys (or items) written so far
    state: str = "open"  # open: after { or [; then key, colon, value; after: a value ended


class Lookahead:
    """Follows an answer as it is written and tells what its schema forces next."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self._stack: list[_Frame] = []
        self._expecting: Any = schema  # the schema of the value that comes next
        self._started = False
        self._done = False
        self._lost = False  # the answer left what this scanner follows: no more forcing
        self._scalar = ""  # inside a string, number or literal: its characters so far
        self._escape = False
        self._key = False  # the string being read is an object's key
        self._spaced = False  # the last character read was white space: a separator needs none more

    def feed(self, text: str) -> None:
        """Read `text`, the answer's next characters, sampled or forced."""
        for char in text:
            if self._lost:
                return
            self._char(char)

    def forced(self) -> str:
        """The text that must come next, as far as the schema fixes it: "" when the model must choose. White space
        at its end is left to the model, which writes it with what follows (` "`, ` null`), as it was trained."""
        if self._lost or self._done or self._scalar:  # inside a string, most tokens: nothing to work out
            return ""
        probe = self._copy()
        out: list[str] = []
        while piece := probe._next():
            out.append(piece)
            probe.feed(piece)
        return "".join(out).rstrip(_WHITE)

    def _copy(self) -> Lookahead:
        """A copy to work ahead on: its own frames, the schemas shared (never written to)."""
        probe = copy.copy(self)
        probe._stack = [dataclasses.replace(frame) for frame in self._stack]
        return probe

    def _next(self) -> str:
        if self._lost or self._done or self._scalar:
            return ""
        if not self._stack:
            return "" if self._started else _opening(self._expecting)
        frame = self._stack[-1]
        if frame.array:
            limit = frame.schema.get("maxItems")
            if frame.state == "after" and isinstance(limit, int) and frame.at >= limit:
                return "]"
            opening = _opening(self._expecting) if frame.state == "value" else ""  # after a comma
            return self._separator() + opening if opening else ""
        if frame.keys is None:
            return ""
        if frame.state in ("open", "key"):
            if frame.at >= len(frame.keys):
                return ""
            key = json.dumps(frame.keys[frame.at], ensure_ascii=False) + ": "
            return key if frame.state == "open" else self._separator() + key
        if frame.state == "colon":
            return ": "
        if frame.state == "value":
            return _opening(self._expecting)
        return "," if frame.at < len(frame.keys) else "}"  # after a value

    def _separator(self) -> str:
        """The space after a comma, as `json.dumps` writes it, unless the model wrote its own."""
        return "" if self._spaced else " "

    def _char(self, char: str) -> None:
        if self._scalar:
            if self._scalar[0] == '"':
                self._string(char)
                return
            if char.isalnum() or char in "+-.":
                self._scalar += char
                if self._scalar in _LITERALS:  # whole: nothing can continue it
                    self._scalar = ""
                    self._ended()
                return
            self._scalar = ""  # a number or literal ends at the first character that cannot continue it
            self._ended()
        self._spaced = char in _WHITE
        if self._spaced:
            return
        frame = self._stack[-1] if self._stack else None
        if frame is None:
            self._lost = self._started  # a second document: not what a schema's grammar allows
            if not self._lost:
                self._value(char)
        elif frame.state == "open" and char == ("]" if frame.array else "}"):
            self._close()
        elif frame.state == "value" or (frame.array and frame.state == "open"):
            self._value(char)
        elif frame.state in ("open", "key") and char == '"':
            self._scalar, self._key = char, True
        elif frame.state == "colon" and char == ":":
            frame.state = "value"
        elif frame.state == "after" and char == ",":
            frame.state = "value" if frame.array else "key"
        elif frame.state == "after" and char == ("]" if frame.array else "}"):
            self._close()
        else:
            self._lost = True

    def _value(self, char: str) -> None:
        schema = self._expecting if isinstance(self._expecting, dict) else {}
        self._started = True
        if _opening(schema) not in ("", char):  # the schema's grammar allows nothing else here
            self._lost = True
        elif char == "{":
            self._stack.append(_Frame(schema, fixed_object(schema), array=False))
        elif char == "[":
            self._stack.append(_Frame(schema, None, array=True))
            items = schema.get("items")
            self._expecting = items if isinstance(items, dict) else {}
        elif char == '"' or char.isalnum() or char == "-":
            self._scalar, self._key = char, False
        else:
            self._lost = True

    def _string(self, char: str) -> None:
        self._scalar += char
        if self._escape:
            self._escape = False
        elif char == "\\":
            self._escape = True
        elif char == '"':
            quoted, self._scalar = self._scalar, ""
            if self._key:
                self._read_key(quoted)
            else:
                self._ended()

    def _read_key(self, quoted: str) -> None:
        frame = self._stack[-1]
        try:
            key = json.loads(quoted)
        except ValueError:  # a raw control character in it: not JSON, so not what the grammar let through
            self._lost = True
            return
        if frame.keys is not None and (frame.at >= len(frame.keys) or frame.keys[frame.at] != key):
            self._lost = True  # not the key the grammar puts next: this is not that grammar's answer
            return
        properties = frame.schema.get("properties")
        child = properties.get(key) if isinstance(properties, dict) else None
        self._expecting = child if isinstance(child, dict) else {}
        frame.state = "colon"

    def _close(self) -> None:
        self._stack.pop()
        self._ended()

    def _ended(self) -> None:
        """A value ended: the frame around it moves past it; at the top level the answer is complete."""
        if not self._stack:
            self._done = True
            return
        frame = self._stack[-1]
        frame.at += 1
        frame.state = "after"
        if frame.array:
            items = frame.schema.get("items")
            self._expecting = items if isinstance(items, dict) else {}


def _opening(schema: Any) -> str:
    """What a value of `schema` must begin with: `{` for an object of fixed keys, `[` for an array, else ""."""
    if fixed_object(schema) is not None:
        return "{"
    return "[" if isinstance(schema, dict) and schema.get("type") == "array" else ""
