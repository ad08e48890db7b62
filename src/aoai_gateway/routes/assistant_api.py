"""The voice assistant's HTTP API (with `assistant.enabled`), under `api_base`:

    POST   /v1/assistant/sessions                     -> 201 {"id": "asst_...", "object": "assistant.session", ...}
    GET    /v1/assistant/sessions/{id}                the conversation so far and any pending confirmation
    DELETE /v1/assistant/sessions/{id}
    POST   /v1/assistant/sessions/{id}/turns          JSON {"text" | "audio" (base64), "speech", "stream",
                                                      "confirm"}, or multipart/form-data with the audio as `file`
                                                      and the same fields; -> the turn as JSON, or with
                                                      "stream": true server-sent events, one per stage
    GET    /v1/assistant/tools                        the tools this key may use
    GET    /v1/assistant/home                         the simulated home's state
    POST   /v1/assistant/home/reset                   back to its initial state

Every route authenticates like the model routes (a gateway key in `auth: keys`); a session belongs to the key that
made it. Thin handlers: parse, call the service (assistant/service.py), serialise.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..access import Access
from ..api_call import parse_json
from ..assistant.service import AssistantService
from ..assistant.turn import Caller, TurnEvent, TurnInput
from ..errors import GatewayError, InvalidRequest, NotFound, PermissionDenied, UnsupportedMediaType
from ..http.asgi import Send
from ..http.credentials import client_key
from ..http.multipart import MultipartForm
from ..http.paths import Router
from ..http.request import Request
from ..http.responses import send_json

_SMALL_BODY = 64 * 1024
_SSE_HEAD = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]
# Magic bytes -> the file name an upstream (Azure reads the extension) is told.
_AUDIO_NAMES = (
    (b"RIFF", "audio.wav"),
    (b"OggS", "audio.ogg"),
    (b"fLaC", "audio.flac"),
    (b"ID3", "audio.mp3"),
    (b"\x1a\x45\xdf\xa3", "audio.webm"),
    (b"\xff\xfb", "audio.mp3"),
    (b"\xff\xf3", "audio.mp3"),
)


class TurnRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, Field(max_length=100_000)] | None = None
    audio: str | None = None  # base64
    speech: bool = False
    stream: bool = False
    confirm: bool | None = None


def add_assistant_routes(router: Router, api_base: str, access: Access, assistant: AssistantService) -> None:
    settings = assistant.settings

    async def caller(request: Request) -> Caller:
        await access.authenticate(request)
        key = request.exchange.key
        secret = client_key(request.headers)
        if key is not None:
            return Caller(secret, key.id, key.models)
        # Passthrough: no gateway keys; a session belongs to whoever holds the same upstream key.
        owner = "pt_" + hashlib.sha256(secret.encode()).hexdigest()[:24] if secret else None
        return Caller(secret, owner, None)

    async def create(request: Request, send: Send, params: dict[str, str]) -> None:
        session = await assistant.create_session(await caller(request))
        await send_json(send, 201, orjson.dumps(session.public(settings.session_ttl_s)))

    async def show(request: Request, send: Send, params: dict[str, str]) -> None:
        session = await assistant.session(params["session_id"], await caller(request))
        await send_json(send, 200, orjson.dumps(session.public(settings.session_ttl_s)))

    async def delete(request: Request, send: Send, params: dict[str, str]) -> None:
        await assistant.delete_session(params["session_id"], await caller(request))
        await send_json(send, 200, orjson.dumps({"id": params["session_id"], "deleted": True}))

    async def turn(request: Request, send: Send, params: dict[str, str]) -> None:
        who = await caller(request)
        parsed = await _turn_request(request, settings.max_audio_bytes, settings.max_text_chars)
        if parsed.request.speech and settings.speech_model is None:
            raise InvalidRequest("Spoken replies need `assistant.speech_model` in the configuration.", param="speech")
        await assistant.session(params["session_id"], who)  # an unknown session is a 404, before any byte
        given = TurnInput(
            text=parsed.text,
            audio=parsed.audio_bytes,
            filename=_audio_name(parsed.audio_bytes),
            speech=parsed.request.speech,
            confirm=parsed.request.confirm,
            speak_sentences=parsed.request.stream,  # a stream carries the reply's audio sentence by sentence
        )
        if not parsed.request.stream:

            async def ignore(event: TurnEvent) -> None:
                return None

            result = await assistant.turn(params["session_id"], given, who, ignore)
            await send_json(send, 200, orjson.dumps(result.public(params["session_id"], settings.speech_format)))
            return
        await send({"type": "http.response.start", "status": 200, "headers": list(_SSE_HEAD)})

        async def emit(event: TurnEvent) -> None:
            await send({"type": "http.response.body", "body": _sse(event.kind, event.data), "more_body": True})

        try:
            result = await assistant.turn(params["session_id"], given, who, emit)
            summary = result.public(params["session_id"], settings.speech_format)
            summary["audio"] = None  # it went as its own event
            last = _sse("done", summary)
        except GatewayError as exc:  # the status went out already: the stream ends with the error
            last = _sse("error", orjson.loads(exc.body()))
        await send({"type": "http.response.body", "body": last, "more_body": False})

    async def tools(request: Request, send: Send, params: dict[str, str]) -> None:
        offered = assistant.registry.allowed((await caller(request)).rules)
        data = [{**spec.definition()["function"], "source": spec.source, "confirm": spec.confirm} for spec in offered]
        await send_json(send, 200, orjson.dumps({"object": "list", "data": data}))

    async def home(request: Request, send: Send, params: dict[str, str]) -> None:
        who = await caller(request)
        if assistant.home is None:
            raise NotFound("The simulated home is off (`assistant.home: false`).")
        if not any(spec.source == "home" for spec in assistant.registry.allowed(who.rules)):
            raise PermissionDenied("This key may not use the home's tools.", code="tool_not_allowed")
        state = assistant.home.reset() if request.method == "POST" else assistant.home.snapshot()
        await send_json(send, 200, orjson.dumps(state))

    base = f"{api_base}/assistant"
    router.add(f"{base}/sessions", ["POST"], create)
    router.add(
        f"{base}/sessions/{{session_id}}",
        ["GET", "DELETE"],
        lambda r, s, p: (delete if r.method == "DELETE" else show)(r, s, p),
    )
    router.add(f"{base}/sessions/{{session_id}}/turns", ["POST"], turn)
    router.add(f"{base}/tools", ["GET"], tools)
    router.add(f"{base}/home", ["GET"], home)
    router.add(f"{base}/home/reset", ["POST"], home)


@dataclass(slots=True)
class _Parsed:
    request: TurnRequest
    audio_bytes: bytes | None = None

    @property
    def text(self) -> str | None:
        return self.request.text


async def _turn_request(request: Request, max_audio: int, max_text: int) -> _Parsed:
    kind = request.content_type
    if kind == "multipart/form-data":
        body = await request.body(max_audio + _SMALL_BODY)
        form = MultipartForm.parse(body, request.headers.get("content-type", ""))
        fields: dict[str, Any] = {}
        for name in ("text", "speech", "stream", "confirm"):
            value = form.value(name)
            if value is not None:
                fields[name] = value.decode("utf-8", "replace")
        parsed = _validated(fields)
        audio = form.value("file")
        if audio is not None:
            parsed.audio_bytes = bytes(audio)
    elif kind in ("application/json", ""):
        parsed = _validated(parse_json(await request.body(max_audio * 4 // 3 + _SMALL_BODY)))
        if parsed.request.audio is not None:
            try:
                parsed.audio_bytes = base64.b64decode(parsed.request.audio, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidRequest("`audio` must be base64.", param="audio") from None
    else:
        raise UnsupportedMediaType(kind[:100], "application/json or multipart/form-data")
    if (parsed.text is None) == (parsed.audio_bytes is None):
        raise InvalidRequest("Send either `text` or audio (`audio` in JSON, `file` in a form), not both.")
    if parsed.text is not None:
        if not parsed.text.strip():
            raise InvalidRequest("`text` is empty.", param="text")
        if len(parsed.text) > max_text:
            raise InvalidRequest(f"`text` is longer than {max_text} characters.", param="text")
        if any(ord(c) < 32 and c not in "\t\n\r" for c in parsed.text):
            raise InvalidRequest("`text` holds control characters.", param="text")
    if parsed.audio_bytes is not None and not parsed.audio_bytes:
        raise InvalidRequest("The audio is empty.", param="file")
    if parsed.audio_bytes is not None and len(parsed.audio_bytes) > max_audio:
        raise InvalidRequest(f"The audio is larger than {max_audio} bytes.", param="file")
    return parsed


def _validated(fields: Any) -> _Parsed:
    try:
        return _Parsed(TurnRequest.model_validate(fields))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidRequest(f"{where}: {first['msg']}", param=where or None) from None


def _audio_name(audio: bytes | None) -> str:
    if audio is None:
        return "audio"
    if audio[4:8] == b"ftyp":
        return "audio.m4a"
    return next((name for magic, name in _AUDIO_NAMES if audio.startswith(magic)), "audio")


def _sse(kind: str, data: Any) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
