"""What an operation receives (`Call`) and returns (`Reply`); operations are plain functions between them.

    def create_embeddings(call: Call) -> Reply:
        return Reply.json({"object": "list", "data": [...]}, tokens=12)

A `Call` is fully read before the operation runs (JSON body or multipart form, with the upload reduced to
its name, size and first bytes), so operations stay synchronous, pure and cheap.

Test-control request headers read here:
    x-emulator-content: <base64 of the exact content>      fixed answer text for chat/completions
    x-emulator-response: invalid-json | schema-violation    broken structured output, for re-ask logic
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from starlette.datastructures import Headers

from .errors import InvalidRequest
from .scripts import ScriptedTurn
from .settings import DeploymentSettings

__all__ = [
    "CONTENT_HEADER",
    "RESPONSE_HEADER",
    "Call",
    "FormPayload",
    "Operation",
    "Reply",
    "ResponseMode",
    "Upload",
]

CONTENT_HEADER = "x-emulator-content"
RESPONSE_HEADER = "x-emulator-response"
ResponseMode = Literal["invalid-json", "schema-violation"]
_RESPONSE_MODES: tuple[ResponseMode, ...] = ("invalid-json", "schema-violation")


@dataclass(frozen=True, slots=True)
class Upload:
    """An uploaded file, reduced to what the emulator looks at."""

    filename: str
    size: int
    head: bytes  # the first bytes, enough for a WAV header


@dataclass(frozen=True, slots=True)
class FormPayload:
    """A multipart form: text fields (repeatable, e.g. `timestamp_granularities[]`) and the `file` part."""

    fields: dict[str, list[str]]
    file: Upload | None = None

    def get(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None

    def getlist(self, name: str) -> list[str]:
        return self.fields.get(name, [])


@dataclass(slots=True)
class Call:
    """One request to one deployment, as an operation sees it."""

    deployment: DeploymentSettings
    operation: str
    request_id: str
    headers: Headers
    base_url: str
    json: dict[str, Any] = field(default_factory=dict)
    form: FormPayload | None = None
    next_response: Callable[[], str | None] = lambda: None
    next_turn: Callable[[], ScriptedTurn | None] = lambda: None  # a turn queued with /_emulator/script

    def fixed_content(self) -> str | None:
        """Scripted answer text: `x-emulator-content`, else the deployment's next `responses` entry."""
        encoded = self.headers.get(CONTENT_HEADER)
        if encoded is None:
            return self.next_response()
        try:
            return base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise InvalidRequest(
                f"{CONTENT_HEADER}: expected the base64 of UTF-8 text ({exc}).", param=CONTENT_HEADER
            ) from exc

    def response_mode(self) -> ResponseMode | None:
        """The broken-output mode asked for with `x-emulator-response`, if any."""
        mode = self.headers.get(RESPONSE_HEADER)
        if mode is None:
            return None
        for known in _RESPONSE_MODES:
            if mode.strip().lower() == known:
                return known
        raise InvalidRequest(
            f"{RESPONSE_HEADER}: unknown mode {mode!r}; use invalid-json or schema-violation.",
            param=RESPONSE_HEADER,
        )


@dataclass(frozen=True, slots=True)
class Reply:
    """A successful answer: whole (`streamed=False`, one chunk) or a paced sequence of chunks."""

    chunks: Sequence[bytes]
    media_type: bytes
    tokens: int = 0
    streamed: bool = False

    @classmethod
    def json(cls, body: Any, *, tokens: int = 0) -> Reply:
        return cls((orjson.dumps(body),), b"application/json", tokens)

    @classmethod
    def text(cls, text: str, *, tokens: int = 0) -> Reply:
        return cls((text.encode(),), b"text/plain; charset=utf-8", tokens)

    @classmethod
    def sse(cls, events: Sequence[Any], *, tokens: int = 0) -> Reply:
        """Server-sent events, one `data:` line each, closed by `data: [DONE]` as Azure does."""
        chunks = [b"data: " + orjson.dumps(event) + b"\n\n" for event in events]
        chunks.append(b"data: [DONE]\n\n")
        return cls(chunks, b"text/event-stream; charset=utf-8", tokens, streamed=True)


@dataclass(frozen=True, slots=True)
class Operation:
    """A registry entry: Azure's operation name (quoted in 429 bodies), body kind, and the function."""

    azure_name: str
    handle: Callable[[Call], Reply]
    multipart: bool = False
