"""One realtime session served in-process: the relay sends it the client's frames and relays what it answers.

    session = PipelineSession(models, settings, model="voice-agent", key="sk-...")    # sends session.created
    await session.send('{"type": "input_audio_buffer.append", "audio": "..."}')       # handled at once
    frame = await session.receive()                                                   # server events, in order

It is the relay's `UpstreamWebSocket` (proxy/realtime.py), so the handshake, the key, failover, idle timeouts and
the close codes are the relay's, exactly as for Azure. Client events are dispatched by type through one table;
an event that is not JSON, of an unknown type, or with a bad field gets OpenAI's `error` event and the session
goes on. Audio appended is bounded (`pipeline.max_turn_seconds`); with `server_vad` the energy VAD marks speech
(`input_audio_buffer.speech_started` / `speech_stopped`) and the end of speech commits the turn and asks for a
response. A committed turn is transcribed in the background (`conversation.item.input_audio_transcription.
completed`); responses run one at a time (response.py). `conversation.item.retrieve` and `.truncate` (sent by the
Agents SDK's realtime agents after each transcript and on barge-in) answer as OpenAI's do.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from ..config.pipeline import PipelineSettings
from ..errors import GatewayError, InvalidRequest
from ..upstream import Frame
from .conversation import Conversation, client_item, decode_audio, item_id
from .dialect import to_beta
from .models import PipelineModels
from .response import PipelineResponse, ResponseContext, ResponseOptions
from .session_config import SessionConfig, modalities, tool_choice
from .vad import SAMPLE_RATE, EnergyVad

log = logging.getLogger("aoai_gateway.realtime_pipeline")

_MIN_COMMIT_BYTES = SAMPLE_RATE // 10 * 2  # 100 ms, as OpenAI asks
MAX_QUEUED_EVENTS = 4096  # events not yet taken by the relay (a reply's audio is ~10 a second)


class PipelineSession:
    protocol: str | None = "realtime"

    def __init__(
        self,
        models: PipelineModels,
        settings: PipelineSettings,
        model: str,
        key: str | None,
        on_close: Callable[[PipelineSession], None] | None = None,
        *,
        beta: bool = False,
    ) -> None:
        self.models = models
        self.beta = beta  # the client speaks the beta protocol: events renamed on their way out (dialect.py)
        self._on_close = on_close
        self.model = model
        self.key = key
        self.close_code: int | None = None
        self.close_reason = ""
        self.id = f"sess_{uuid.uuid4().hex[:20]}"
        self.config = SessionConfig.starting(settings)
        self.conversation = Conversation(settings.max_items)
        self.max_buffer = int(settings.max_turn_seconds * SAMPLE_RATE) * 2
        self._buffer = bytearray()
        self._vad = self._new_vad()
        self._speech_item: str | None = None  # the item the speech in progress will become
        self._outbox: asyncio.Queue[Frame | None] = asyncio.Queue()
        self._hearing: dict[str, asyncio.Task[None]] = {}
        self._response: tuple[PipelineResponse, asyncio.Task[None]] | None = None
        self._handlers: dict[str, Callable[[dict[str, Any]], Awaitable[None]]] = {
            "session.update": self._session_update,
            "input_audio_buffer.append": self._append,
            "input_audio_buffer.commit": self._commit,
            "input_audio_buffer.clear": self._clear,
            "conversation.item.create": self._item_create,
            "conversation.item.delete": self._item_delete,
            "conversation.item.retrieve": self._item_retrieve,
            "conversation.item.truncate": self._item_truncate,
            "response.create": self._response_create,
            "response.cancel": self._response_cancel,
        }
        self.emit({"type": "session.created", "session": self.config.described(model, self.id)})

    # The relay's side (UpstreamWebSocket)

    async def receive(self) -> Frame | None:
        return await self._outbox.get()

    async def send(self, frame: Frame) -> None:
        event, client_id = None, None
        try:
            event = _parsed(frame)
            client_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
            kind = event.get("type")
            handler = self._handlers.get(kind) if isinstance(kind, str) else None
            if handler is None:
                shown = kind[:64] if isinstance(kind, str) else kind
                raise InvalidRequest(f"Invalid value: {shown!r}.", param="type", code="invalid_value")
            await handler(event)
        except GatewayError as exc:
            self._error(exc, client_id)

    async def close(self, code: int, reason: str = "") -> None:
        if self.close_code is None:
            await asyncio.gather(*self._end(code, reason), return_exceptions=True)

    def _end(self, code: int, reason: str) -> list[asyncio.Task[None]]:
        """Closed: the work in progress cancelled (returned, to await), the relay told there is no more."""
        self.close_code, self.close_reason = code, reason
        if self._on_close is not None:
            self._on_close(self)
        tasks = [*self._hearing.values(), *([self._response[1]] if self._response else [])]
        for task in tasks:
            task.cancel()
        self._outbox.put_nowait(None)
        return tasks

    # Server events

    def emit(self, event: dict[str, Any]) -> None:
        if self.close_code is not None:
            return
        if self._outbox.qsize() >= MAX_QUEUED_EVENTS:
            # A client that sends and never reads would grow this queue without end: it is closed instead.
            self._end(1008, "the client does not read its events")
            return
        if self.beta:
            renamed = to_beta(event)
            if renamed is None:
                return
            event = renamed
        self._outbox.put_nowait(orjson.dumps({"event_id": f"event_{uuid.uuid4().hex[:20]}", **event}).decode())

    def _error(self, exc: GatewayError, client_id: str | None) -> None:
        error = {"type": exc.type, "code": exc.code, "message": exc.message, "param": exc.param}
        self.emit({"type": "error", "error": {**error, "event_id": client_id}})

    # Client events

    async def _session_update(self, event: dict[str, Any]) -> None:
        updated = self.config.updated(event.get("session"))
        detection_changed = updated.turn_detection != self.config.turn_detection
        self.config = updated
        if detection_changed:
            self._vad, self._speech_item = self._new_vad(), None
        self.emit({"type": "session.updated", "session": self.config.described(self.model, self.id)})

    async def _append(self, event: dict[str, Any]) -> None:
        audio = decode_audio(event.get("audio"), "audio")
        if len(self._buffer) + len(audio) > self.max_buffer:
            raise InvalidRequest(
                f"The input audio buffer holds at most {self.max_buffer // (2 * SAMPLE_RATE)} s; commit or clear it.",
                param="audio",
                code="input_audio_buffer_full",
            )
        self._buffer += audio
        if self._vad is None:
            return
        for change in self._vad.feed(audio):
            if change.kind == "started":
                self._speech_item = item_id()
                if (
                    self._response is not None
                    and self.config.turn_detection
                    and self.config.turn_detection.interrupt_response
                ):
                    self._cancel("turn_detected")
                self.emit(
                    {
                        "type": "input_audio_buffer.speech_started",
                        "audio_start_ms": change.at_ms,
                        "item_id": self._speech_item,
                    }
                )
            else:
                spoken = self._speech_item or item_id()
                self._speech_item = None
                self.emit(
                    {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": change.at_ms, "item_id": spoken}
                )
                self._commit_turn(spoken)
                if self.config.turn_detection and self.config.turn_detection.create_response and self._response is None:
                    self._start_response(self._options(None))
        if not self._vad.speaking:
            # Between turns only the padding before the next speech is kept: silence streamed for hours costs nothing.
            padding = self.config.turn_detection.prefix_padding_ms if self.config.turn_detection else 0
            keep = SAMPLE_RATE * padding // 1000 * 2
            del self._buffer[: max(0, len(self._buffer) - keep)]

    async def _commit(self, event: dict[str, Any]) -> None:
        if len(self._buffer) < _MIN_COMMIT_BYTES:
            raise InvalidRequest(
                f"Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but "
                f"buffer only has {len(self._buffer) * 1000 // (2 * SAMPLE_RATE)}ms of audio.",
                param=None,
                code="input_audio_buffer_commit_empty",
            )
        self._commit_turn(self._speech_item or item_id())
        self._speech_item = None
        if self._vad is not None:
            self._vad = self._new_vad()

    async def _clear(self, event: dict[str, Any]) -> None:
        self._buffer.clear()
        self.emit({"type": "input_audio_buffer.cleared"})

    async def _item_create(self, event: dict[str, Any]) -> None:
        item, audio = client_item(event.get("item"))
        if self.conversation.find(item["id"]) is not None:
            raise InvalidRequest(f"Item {item['id']!r} already exists.", param="item.id", code="item_id_taken")
        self._add_item(item)
        if audio is not None:
            self._hear(item["id"], audio)

    async def _item_delete(self, event: dict[str, Any]) -> None:
        wanted = event.get("item_id")
        if not isinstance(wanted, str) or not self.conversation.delete(wanted):
            raise InvalidRequest("No such item in the conversation.", param="item_id", code="item_not_found")
        self.emit({"type": "conversation.item.deleted", "item_id": wanted})

    async def _item_retrieve(self, event: dict[str, Any]) -> None:
        wanted = event.get("item_id")
        found = self.conversation.find(wanted) if isinstance(wanted, str) else None
        if found is None:
            raise InvalidRequest("No such item in the conversation.", param="item_id", code="item_not_found")
        self.emit({"type": "conversation.item.retrieved", "item": found})

    async def _item_truncate(self, event: dict[str, Any]) -> None:
        wanted, index, end = event.get("item_id"), event.get("content_index"), event.get("audio_end_ms")
        self.conversation.truncate(wanted, index, end)
        self.emit(
            {"type": "conversation.item.truncated", "item_id": wanted, "content_index": index, "audio_end_ms": end}
        )

    async def _response_create(self, event: dict[str, Any]) -> None:
        if self._response is not None:
            raise InvalidRequest(
                "Conversation already has an active response in progress.",
                code="conversation_already_has_active_response",
            )
        self._start_response(self._options(event.get("response")))

    async def _response_cancel(self, event: dict[str, Any]) -> None:
        if self._response is None:
            raise InvalidRequest("Cancellation failed: no active response found.", code="response_cancel_not_active")
        self._cancel("client_cancelled")

    # Turns and responses

    def _commit_turn(self, spoken: str) -> None:
        audio = bytes(self._buffer[: len(self._buffer) - len(self._buffer) % 2])
        self._buffer.clear()
        self.emit(
            {"type": "input_audio_buffer.committed", "item_id": spoken, "previous_item_id": self.conversation.last_id}
        )
        item = {
            "id": spoken,
            "object": "realtime.item",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        self._add_item(item)
        self._hear(spoken, audio)

    def _add_item(self, item: dict[str, Any]) -> None:
        previous = self.conversation.last_id
        self.conversation.add(item)
        self.emit({"type": "conversation.item.added", "previous_item_id": previous, "item": item})
        self.emit({"type": "conversation.item.done", "previous_item_id": previous, "item": item})

    def _hear(self, spoken: str, audio: bytes) -> None:
        task = asyncio.get_running_loop().create_task(self._transcribe(spoken, audio))
        self._hearing[spoken] = task
        task.add_done_callback(lambda _: self._hearing.pop(spoken, None))

    async def _transcribe(self, spoken: str, audio: bytes) -> None:
        where = {"item_id": spoken, "content_index": 0}
        try:
            text = await self.models.transcribe(self.key, audio)
        except GatewayError as exc:
            error = {"type": exc.type, "code": exc.code, "message": exc.message, "param": exc.param}
            self.emit({"type": "conversation.item.input_audio_transcription.failed", **where, "error": error})
            return
        self.conversation.heard(spoken, text)
        # Whisper is billed by the second of audio, and OpenAI's event says so (clients' event types require it).
        usage = {"type": "duration", "seconds": round(len(audio) / (2 * SAMPLE_RATE), 3)}
        self.emit(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                **where,
                "transcript": text,
                "usage": usage,
            }
        )

    def _options(self, overrides: Any) -> ResponseOptions:
        config = self.config
        if overrides is not None and not isinstance(overrides, dict):
            raise InvalidRequest("response must be an object.", param="response", code="invalid_value")
        overrides = overrides or {}
        instructions = overrides.get("instructions", config.instructions)
        if not isinstance(instructions, str):
            raise InvalidRequest("instructions must be a string.", param="response.instructions", code="invalid_value")
        shown = config.output_modalities
        for name in ("output_modalities", "modalities"):  # GA, beta
            if name in overrides:
                shown = modalities(overrides[name], f"response.{name}")
        choice = tool_choice(overrides["tool_choice"]) if "tool_choice" in overrides else config.tool_choice
        return ResponseOptions(instructions, config.voice, shown == ("audio",), config.tools, choice)

    def _start_response(self, options: ResponseOptions) -> None:
        context = ResponseContext(
            self.models, self.key, self.emit, self.conversation, lambda: list(self._hearing.values())
        )
        response = PipelineResponse(context, options)
        task = asyncio.get_running_loop().create_task(response.run())
        self._response = (response, task)
        task.add_done_callback(self._response_ended)

    def _response_ended(self, task: asyncio.Task[None]) -> None:
        if self._response is not None and self._response[1] is task:
            self._response = None
        if not task.cancelled() and task.exception() is not None:
            log.error("a pipeline response failed", exc_info=task.exception())

    def _cancel(self, reason: str) -> None:
        if self._response is not None:
            response, task = self._response
            response.cancel_reason = reason
            task.cancel()
            self._response = None  # a new response may start at once; the cancelled one only says it is done

    def _new_vad(self) -> EnergyVad | None:
        detection = self.config.turn_detection
        if detection is None:
            return None
        return EnergyVad(detection.threshold, detection.prefix_padding_ms, detection.silence_duration_ms)


def _parsed(frame: Frame) -> dict[str, Any]:
    if isinstance(frame, bytes):
        raise InvalidRequest("Events are JSON text messages, not binary ones.", param=None, code="invalid_event")
    try:
        event = orjson.loads(frame)
    except orjson.JSONDecodeError:
        raise InvalidRequest("The event is not valid JSON.", param=None, code="invalid_json") from None
    if not isinstance(event, dict):
        raise InvalidRequest("An event is a JSON object with a type.", param=None, code="invalid_event")
    return event
