"""The Realtime API over WebSocket, faithful enough for the `openai` SDK's `client.realtime.connect()`.

    WebSocket /openai/v1/realtime?model=DEPLOYMENT                       (GA, v1 surface)
    WebSocket /openai/realtime?api-version=...&deployment=DEPLOYMENT     (dated, preview)
    POST      /openai/v1/realtime/client_secrets                         (operations.py: ephemeral keys)

The handshake checks the key (`api-key`, `Authorization: Bearer`, or the `openai-insecure-api-key.KEY`
subprotocol) and the deployment, draws the deployment's fault (429/500/503 refuse the handshake with that
status), then sends `session.created`. Client events answered, with the GA event names:

    session.update                 -> session.updated (the session merged with the update)
    conversation.item.create       -> conversation.item.added, conversation.item.done
    input_audio_buffer.append      -> (nothing; the bytes are counted)
    input_audio_buffer.commit      -> input_audio_buffer.committed, conversation.item.added/.done (an error
                                      event when the buffer is empty)
    input_audio_buffer.clear       -> input_audio_buffer.cleared
    conversation.item.delete       -> conversation.item.deleted
    response.create                -> response.created, response.output_item.added, response.content_part.added,
                                      response.output_text.delta... (or response.output_audio.delta and
                                      response.output_audio_transcript.delta... when the output is audio), their
                                      .done events, response.output_item.done, response.done with usage
    anything else                  -> an `error` event; the session stays open, as on Azure

The answer text is the deployment's next scripted `responses` entry, else a fixed sentence; usage counts about
4 characters a token for text and 1 token per 100 ms of 24 kHz PCM16 audio. For relay tests, two emulator-only
controls: a binary message is echoed back as binary (the real API speaks only JSON text), and
`{"type": "emulator.close", "code": 4000, "reason": "..."}` makes the server close the session with that code;
`{"type": "emulator.flood", "count": N, "size": S}` sends N `emulator.flood` events carrying S bytes each.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import math
import time
import uuid
from typing import Any

import orjson
from starlette.datastructures import QueryParams
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from .deployments import DeploymentTable
from .errors import AccessDenied, DeploymentNotFound, EmulatorError, ResourceNotFound, ServerFault, ServiceUnavailable
from .faults import FaultBook
from .settings import DeploymentSettings, EmulatorSettings
from .stats import RequestStats

__all__ = ["RealtimeEndpoint"]

_DEFAULT_ANSWER = "Hello from the Azure OpenAI emulator's realtime session."
_KEY_PROTOCOL = "openai-insecure-api-key."
_AUDIO_BYTES_PER_TOKEN = 4800  # 100 ms of 24 kHz mono PCM16
_MAX_FLOOD = 100_000
_SESSION_TOKENS = 8  # what every response's input costs before any item: the session's own prompt


class RealtimeEndpoint:
    """The emulator's WebSocket endpoint: `WebSocketRoute("/{path:path}", RealtimeEndpoint(...))`."""

    def __init__(
        self, settings: EmulatorSettings, table: DeploymentTable, faults: FaultBook, stats: RequestStats
    ) -> None:
        self._keys = frozenset(settings.api_keys)
        self._table, self._faults, self._stats = table, faults, stats

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        socket = WebSocket(scope, receive, send)
        try:
            name = _route(scope)
            self._authenticate(socket)
            deployment = self._table.resolve(name)
            self._stats.record_request(deployment.name, "realtime")
            fault = self._faults.pick(deployment.name)
            if fault is not None and fault.kind in ("429", "500", "503"):
                raise {"429": _Throttled(), "500": ServerFault(str(uuid.uuid4()))}.get(fault.kind, ServiceUnavailable())
        except EmulatorError as error:
            headers = dict((k.decode(), v.decode()) for k, v in error.headers)
            await socket.send_denial_response(
                Response(orjson.dumps(error.body()), error.status, headers=headers, media_type="application/json")
            )
            return
        protocol = "realtime" if "realtime" in socket.scope.get("subprotocols", []) else None
        await socket.accept(subprotocol=protocol)
        session = _Conversation(deployment, self._table)
        with contextlib.suppress(WebSocketDisconnect):
            await session.run(socket)
        self._stats.record_outcome(deployment.name, status=101, tokens=session.tokens)

    def _authenticate(self, socket: WebSocket) -> None:
        headers = socket.headers
        key = headers.get("api-key")
        if key is None:
            scheme, _, token = headers.get("authorization", "").partition(" ")
            key = token.strip() if scheme.lower() == "bearer" else None
        if key is None:
            offered = socket.scope.get("subprotocols", [])
            key = next((p[len(_KEY_PROTOCOL) :] for p in offered if p.startswith(_KEY_PROTOCOL)), None)
        if not key or (self._keys and key not in self._keys):
            raise AccessDenied()


class _Throttled(EmulatorError):
    status = 429
    headers = ((b"retry-after", b"1"), (b"retry-after-ms", b"1000"))

    def body(self) -> dict[str, Any]:
        return {"error": {"code": "429", "message": "Requests to the Realtime API have exceeded the rate limit."}}


def _route(scope: Any) -> str:
    """The deployment a realtime handshake names; Azure's 404 for anything else."""
    path: str = scope["path"].rstrip("/")
    query = QueryParams(scope["query_string"])
    if path.endswith("/openai/v1/realtime"):
        name = query.get("model")
    elif path.endswith("/openai/realtime"):
        if not query.get("api-version"):
            raise ResourceNotFound()
        name = query.get("deployment")
    else:
        raise ResourceNotFound()
    if not name:
        raise DeploymentNotFound()
    return name


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:22]}"


class _Conversation:
    """One session's state: its configuration, items, the input audio buffer, and the tokens it used."""

    def __init__(self, deployment: DeploymentSettings, table: DeploymentTable) -> None:
        self.deployment = deployment
        self.table = table
        self.session: dict[str, Any] = {
            "type": "realtime",
            "object": "realtime.session",
            "id": _id("sess"),
            "model": deployment.model,
            "output_modalities": ["audio"],
            "instructions": "",
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
            "tracing": None,
            "truncation": "auto",
            "prompt": None,
            "expires_at": int(time.time()) + 1800,
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": None,
                    "noise_reduction": None,
                    "turn_detection": None,
                },
                "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy", "speed": 1.0},
            },
            "include": None,
        }
        self.items: list[dict[str, Any]] = []
        self.audio_bytes = 0  # in the input buffer, not yet committed
        self.context_tokens = 0  # what the conversation so far costs as input
        self.tokens = 0

    async def run(self, socket: WebSocket) -> None:
        await self.emit(socket, {"type": "session.created", "session": self.session})
        while True:
            message = await socket.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if data is not None:
                await socket.send_bytes(data)  # emulator control: binary is echoed, for relay tests
                continue
            try:
                event = orjson.loads(message.get("text") or "")
            except orjson.JSONDecodeError:
                await self.error(socket, None, "invalid_json", "The message is not valid JSON.")
                continue
            if not isinstance(event, dict):
                await self.error(socket, None, "invalid_value", "The message must be a JSON object.")
                continue
            if await self.handle(socket, event) is False:
                return

    async def emit(self, socket: WebSocket, event: dict[str, Any]) -> None:
        await socket.send_text(orjson.dumps({"event_id": _id("event"), **event}).decode())

    async def error(self, socket: WebSocket, event_id: Any, code: str, message: str, param: str | None = None) -> None:
        error = {"type": "invalid_request_error", "code": code, "message": message, "param": param}
        await self.emit(socket, {"type": "error", "error": {**error, "event_id": event_id}})

    async def handle(self, socket: WebSocket, event: dict[str, Any]) -> bool:
        kind, client_id = event.get("type"), event.get("event_id")
        if kind == "session.update":
            update = event.get("session")
            if not isinstance(update, dict):
                await self.error(socket, client_id, "missing_required_parameter", "Missing 'session'.", "session")
                return True
            self.session.update({k: v for k, v in update.items() if k not in ("id", "object", "model")})
            await self.emit(socket, {"type": "session.updated", "session": self.session})
        elif kind == "conversation.item.create":
            item = event.get("item")
            if not isinstance(item, dict):
                await self.error(socket, client_id, "missing_required_parameter", "Missing 'item'.", "item")
                return True
            await self.add_item(socket, {"id": _id("item"), "object": "realtime.item", "status": "completed", **item})
        elif kind == "input_audio_buffer.append":
            audio = event.get("audio")
            if not isinstance(audio, str):
                await self.error(socket, client_id, "missing_required_parameter", "Missing 'audio'.", "audio")
                return True
            self.audio_bytes += len(audio) * 3 // 4
        elif kind == "input_audio_buffer.commit":
            if self.audio_bytes == 0:
                message = "Error committing input audio buffer: the buffer is empty."
                await self.error(socket, client_id, "input_audio_buffer_commit_empty", message)
                return True
            item_id = _id("item")
            previous = self.items[-1]["id"] if self.items else None
            await self.emit(
                socket, {"type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": previous}
            )
            self.context_tokens += math.ceil(self.audio_bytes / _AUDIO_BYTES_PER_TOKEN)
            self.audio_bytes = 0
            content = [{"type": "input_audio", "transcript": None}]
            item = {"id": item_id, "object": "realtime.item", "type": "message", "role": "user", "content": content}
            await self.add_item(socket, {**item, "status": "completed"}, counted=True)
        elif kind == "input_audio_buffer.clear":
            self.audio_bytes = 0
            await self.emit(socket, {"type": "input_audio_buffer.cleared"})
        elif kind == "conversation.item.delete":
            item_id = str(event.get("item_id"))
            self.items = [item for item in self.items if item["id"] != item_id]
            await self.emit(socket, {"type": "conversation.item.deleted", "item_id": item_id})
        elif kind == "response.create":
            options = event.get("response")
            await self.respond(socket, options if isinstance(options, dict) else {})
        elif kind == "response.cancel":
            await self.error(socket, client_id, "response_cancel_not_active", "There is no active response.")
        elif kind == "emulator.close":
            code = event.get("code")
            await socket.close(code if isinstance(code, int) else 1000, str(event.get("reason", ""))[:123])
            return False
        elif kind == "emulator.flood":
            count = min(int(event.get("count") or 0), _MAX_FLOOD)
            filler = "x" * min(int(event.get("size") or 0), 1 << 24)
            for index in range(count):
                await self.emit(socket, {"type": "emulator.flood", "index": index, "data": filler})
        else:
            await self.error(socket, client_id, "invalid_value", f"Invalid value: '{kind}'.", "type")
        return True

    async def add_item(self, socket: WebSocket, item: dict[str, Any], *, counted: bool = False) -> None:
        previous = self.items[-1]["id"] if self.items else None
        self.items.append(item)
        if not counted:
            self.context_tokens += _text_tokens(item)
        await self.emit(socket, {"type": "conversation.item.added", "previous_item_id": previous, "item": item})
        await self.emit(socket, {"type": "conversation.item.done", "previous_item_id": previous, "item": item})

    async def respond(self, socket: WebSocket, options: dict[str, Any]) -> None:
        modalities = options.get("output_modalities") or self.session.get("output_modalities") or ["audio"]
        audio = "audio" in modalities
        text = self.table.next_response(self.deployment) or _DEFAULT_ANSWER
        response_id, item_id = _id("resp"), _id("item")
        response: dict[str, Any] = {
            "object": "realtime.response",
            "id": response_id,
            "status": "in_progress",
            "status_details": None,
            "output": [],
            "conversation_id": "auto",
            "output_modalities": ["audio"] if audio else ["text"],
            "max_output_tokens": "inf",
            "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy"}},
            "usage": None,
            "metadata": options.get("metadata"),
        }
        await self.emit(socket, {"type": "response.created", "response": response})
        item: dict[str, Any] = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        where = {"response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0}
        await self.emit(
            socket, {"type": "response.output_item.added", "response_id": response_id, "output_index": 0, "item": item}
        )
        part: dict[str, Any] = {"type": "audio", "transcript": ""} if audio else {"type": "text", "text": ""}
        await self.emit(socket, {"type": "response.content_part.added", **where, "part": part})
        pieces = [word + " " for word in text.split(" ")[:-1]] + [text.split(" ")[-1]]
        audio_bytes = 0
        for piece in pieces:
            if audio:
                chunk = bytes(2400)  # 50 ms of silence per word
                audio_bytes += len(chunk)
                delta = base64.b64encode(chunk).decode()
                await self.emit(socket, {"type": "response.output_audio.delta", **where, "delta": delta})
                await self.emit(socket, {"type": "response.output_audio_transcript.delta", **where, "delta": piece})
            else:
                await self.emit(socket, {"type": "response.output_text.delta", **where, "delta": piece})
            if self.deployment.chunk_interval_ms:
                await asyncio.sleep(self.deployment.chunk_interval_ms / 1000)
        if audio:
            await self.emit(socket, {"type": "response.output_audio.done", **where})
            await self.emit(socket, {"type": "response.output_audio_transcript.done", **where, "transcript": text})
            part = {"type": "audio", "transcript": text}
            content = {"type": "output_audio", "transcript": text}
        else:
            await self.emit(socket, {"type": "response.output_text.done", **where, "text": text})
            part = {"type": "text", "text": text}
            content = {"type": "output_text", "text": text}
        await self.emit(socket, {"type": "response.content_part.done", **where, "part": part})
        item = {**item, "status": "completed", "content": [content]}
        self.items.append(item)
        await self.emit(
            socket, {"type": "response.output_item.done", "response_id": response_id, "output_index": 0, "item": item}
        )
        text_out = math.ceil(len(text) / 4)
        audio_out = math.ceil(audio_bytes / _AUDIO_BYTES_PER_TOKEN)
        input_tokens = (
            _SESSION_TOKENS
            + self.context_tokens
            + _text_tokens({"content": [{"text": str(self.session.get("instructions") or "")}]})
        )
        output_tokens = text_out + audio_out
        usage = {
            "total_tokens": input_tokens + output_tokens,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "input_token_details": {"text_tokens": input_tokens, "audio_tokens": 0, "cached_tokens": 0},
            "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out},
        }
        self.tokens += input_tokens + output_tokens
        self.context_tokens += output_tokens
        done = {**response, "status": "completed", "output": [item], "usage": usage}
        await self.emit(socket, {"type": "response.done", "response": done})


def _text_tokens(item: dict[str, Any]) -> int:
    """About 4 characters a token over the texts an item's content parts carry."""
    characters = 0
    for part in item.get("content") or ():
        if isinstance(part, dict):
            for field in ("text", "transcript"):
                value = part.get(field)
                if isinstance(value, str):
                    characters += len(value)
    return math.ceil(characters / 4)
