"""One turn: what the user said (audio or text) -> the model and its tools, round after round -> the reply.

    runner = TurnRunner(settings.assistant, models, registry)
    result = await runner.run(session, TurnInput(text="turn on the kitchen lights"), caller, emit)

The stages, each told to `emit` as it happens (the HTTP API sends them as server-sent events):
  transcript             the words heard (or typed)
  tool_call, tool_result each call the model asked for and what it gave; parallel calls run together
  confirmation_required  a `confirm: true` tool that runs only if the user says yes in the next turn
  reply_delta, reply     the answer's words as the model streams them, then the whole text
  audio                  the spoken reply, when asked for and `assistant.speech_model` is set: with
                         `speak_sentences` one event per sentence as soon as it is written (speaker.py); without,
                         one file, its sentences spoken while the model wrote and joined (wav, pcm, mp3, aac)

Bounds: `max_rounds` model calls per turn (the last one is told to answer, not to call tools; calls it makes all
the same are answered "not run"), `max_tool_calls` per round. The session changes only when the turn completes:
a turn that fails (a model's error answer, a refused key) leaves the conversation as it was.
"""

from __future__ import annotations

import asyncio
import base64
import re
import wave
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..config.assistant import AssistantSettings
from .events import Emit, TurnEvent
from .models import AssistantModels, ChatReply, ToolCallRequest
from .sessions import PendingCall, Session
from .speaker import JOINABLE, SentenceSpeaker, SpokenParts, join_audio
from .tools import ToolOutcome, ToolRegistry, ToolSpec

__all__ = ["Caller", "Emit", "TurnEvent", "TurnInput", "TurnResult", "TurnRunner", "is_confirmation"]

NOTHING_HEARD = "Sorry, I did not hear anything. Please say that again."
OUT_OF_ROUNDS = "Sorry, I could not finish that."

_YES = frozenset({"yes", "yeah", "yep", "yup", "sure", "confirm", "confirmed", "ok", "okay", "affirmative", "correct"})
_YES_PHRASES = ("do it", "go ahead", "please do")
_NO = frozenset({"no", "nope", "don't", "dont", "not", "cancel", "stop", "never", "wait"})


def is_confirmation(text: str) -> bool:
    """Whether an answer to "shall I?" is a yes: a yes word or phrase, and no "no" word anywhere."""
    lowered = text.lower()
    words = re.findall(r"[a-z']+", lowered)
    if any(word in _NO for word in words):
        return False
    return any(word in _YES for word in words) or any(phrase in lowered for phrase in _YES_PHRASES)


@dataclass(frozen=True, slots=True)
class TurnInput:
    text: str | None = None
    audio: bytes | None = None
    filename: str = "audio"
    speech: bool = False
    confirm: bool | None = None  # an explicit answer to a pending confirmation; None: read it from the words
    speak_sentences: bool = False  # speech as `audio` events, sentence by sentence, while the reply streams


@dataclass(frozen=True, slots=True)
class Caller:
    """Who takes the turn: the key as sent (for the model calls), its id and its allowlist (None: no allowlist)."""

    key: str | None
    key_id: str | None
    rules: tuple[str, ...] | None


@dataclass(slots=True)
class TurnResult:
    transcript: str
    reply: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    audio: bytes | None = None
    rounds: int = 0
    pending: PendingCall | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def public(self, session_id: str, audio_format: str) -> dict[str, Any]:
        return {
            "object": "assistant.turn",
            "session_id": session_id,
            "transcript": self.transcript,
            "reply": self.reply,
            "tool_calls": self.tool_calls,
            "pending_confirmation": self.pending.public() if self.pending else None,
            "rounds": self.rounds,
            "usage": {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens},
            "audio": {"format": audio_format, "data": base64.b64encode(self.audio).decode()} if self.audio else None,
        }


class TurnRunner:
    def __init__(self, settings: AssistantSettings, models: AssistantModels, registry: ToolRegistry) -> None:
        self.settings = settings
        self.models = models
        self.registry = registry

    async def run(self, session: Session, given: TurnInput, caller: Caller, emit: Emit) -> TurnResult:
        text = await self._hear(given, caller, emit)
        if not text:
            await emit(TurnEvent("reply", {"text": NOTHING_HEARD}))
            return await self._spoken(TurnResult("", NOTHING_HEARD), given, caller, emit)
        offered = self.registry.allowed(caller.rules)
        history = [*session.messages, {"role": "user", "content": text}]
        result = TurnResult(text, "")
        speaker, collected = self._speaker(given, caller, emit)
        turn = _Turn(result, history, offered, emit, speaker)
        try:
            if session.pending is not None:
                await self._settle_pending(session.pending, given, text, turn)
            await self._rounds(turn, caller)
            await emit(TurnEvent("reply", {"text": result.reply}))
            if speaker is not None:
                await speaker.finish()  # the last sentences; the first ones were spoken while the model wrote
            if collected is not None and collected.parts:
                result.audio = _joined(self.settings.speech_format, collected.parts)
                if result.audio is not None:
                    await self._emit_audio(result.audio, emit)
            if speaker is None or (collected is not None and result.audio is None):
                await self._spoken(result, given, caller, emit)  # not joinable, or the parts did not join
        except BaseException:
            if speaker is not None:
                speaker.cancel()
            raise
        session.messages = history
        session.pending = result.pending
        session.trim(self.settings.max_messages)
        return result

    async def _rounds(self, turn: _Turn, caller: Caller) -> None:
        """Model calls until one answers without tools, or the last allowed one."""
        result = turn.result
        for number in range(1, self.settings.max_rounds + 1):
            last = number == self.settings.max_rounds
            reply = await self._ask(turn, caller, last)
            result.rounds = number
            turn.history.append(reply.message())
            if not reply.tool_calls:
                result.reply = reply.content
                return
            if last:  # told to answer, it called tools all the same: answer them, never run them
                for call in reply.tool_calls:
                    limit = f"Not run: this turn reached its limit of {number} model calls."
                    await self._record(turn, call, ToolOutcome(call.name, error=limit))
                result.reply = reply.content or OUT_OF_ROUNDS
                return
            await self._run_calls(turn, reply.tool_calls)

    async def _hear(self, given: TurnInput, caller: Caller, emit: Emit) -> str:
        if given.audio is not None:
            heard = await self.models.transcribe(caller.key, given.audio, given.filename)
            text = heard.text[: self.settings.max_text_chars]
            await emit(
                TurnEvent(
                    "transcript",
                    {"text": text, "language": heard.language, "duration": heard.duration, "source": "audio"},
                )
            )
            return text.strip()
        text = (given.text or "").strip()
        await emit(TurnEvent("transcript", {"text": text, "language": None, "duration": None, "source": "text"}))
        return text

    async def _settle_pending(self, pending: PendingCall, given: TurnInput, text: str, turn: _Turn) -> None:
        """The previous turn asked to confirm a call: run it on a yes, record the refusal otherwise."""
        confirmed = given.confirm if given.confirm is not None else is_confirmation(text)
        call = ToolCallRequest(f"{pending.call_id}_confirmed", pending.name, orjson.dumps(pending.arguments).decode())
        turn.history.append({"role": "assistant", "content": None, "tool_calls": [call.message_part()]})
        await turn.emit(TurnEvent("tool_call", {**_call_event(call), "confirmed": confirmed}))
        if not confirmed:
            outcome = ToolOutcome(pending.name, error="The user did not confirm, so it was not done.")
        elif all(spec.name != pending.name for spec in turn.offered):
            outcome = ToolOutcome(pending.name, error="This caller may no longer use this tool.")
        else:
            outcome = await self.registry.run_checked(pending.name, pending.arguments)
        await self._record(turn, call, outcome)

    async def _ask(self, turn: _Turn, caller: Caller, last: bool) -> ChatReply:
        request: dict[str, Any] = {
            "model": self.settings.chat_model,
            "messages": [{"role": "system", "content": self.settings.instructions}, *turn.history],
        }
        if turn.offered:
            request["tools"] = [spec.definition() for spec in turn.offered]
            request["tool_choice"] = "none" if last else "auto"

        async def delta(text: str) -> None:
            await turn.emit(TurnEvent("reply_delta", {"text": text}))
            if turn.speaker is not None:
                await turn.speaker.feed(text)

        reply = await self.models.chat(caller.key, request, delta)
        turn.result.prompt_tokens += reply.prompt_tokens
        turn.result.completion_tokens += reply.completion_tokens
        return reply

    async def _run_calls(self, turn: _Turn, calls: list[ToolCallRequest]) -> None:
        for call in calls:
            await turn.emit(TurnEvent("tool_call", _call_event(call)))
        allowed = calls[: self.settings.max_tool_calls]
        outcomes = await asyncio.gather(*(self._one(turn, call) for call in allowed))
        too_many = f"Not run: at most {self.settings.max_tool_calls} tool calls per answer."
        outcomes += [ToolOutcome(call.name, error=too_many) for call in calls[len(allowed) :]]
        for call, outcome in zip(calls, outcomes, strict=True):
            await self._record(turn, call, outcome)

    async def _one(self, turn: _Turn, call: ToolCallRequest) -> ToolOutcome:
        checked = self.registry.check(call.name, call.arguments, turn.offered)
        if isinstance(checked, ToolOutcome):
            return checked
        spec = self.registry.spec(call.name)
        if spec is None or not spec.confirm:
            return await self.registry.run_checked(call.name, checked)
        if turn.result.pending is not None:
            return ToolOutcome(call.name, error="Only one action can wait for confirmation at a time; ask later.")
        turn.result.pending = PendingCall(call.id, call.name, checked)
        await turn.emit(TurnEvent("confirmation_required", {"id": call.id, "name": call.name, "arguments": checked}))
        return ToolOutcome(
            call.name,
            result={
                "status": "needs_confirmation",
                "message": "Not done yet. Ask the user to confirm; it runs only if they say yes in their next turn.",
            },
        )

    async def _record(self, turn: _Turn, call: ToolCallRequest, outcome: ToolOutcome) -> None:
        event = {"id": call.id, **outcome.as_event()}
        await turn.emit(TurnEvent("tool_result", event))
        turn.result.tool_calls.append({"id": call.id, "arguments": call.arguments, **outcome.as_event()})
        content = {"result": outcome.result} if outcome.ok else {"error": outcome.error}
        turn.history.append({"role": "tool", "tool_call_id": call.id, "content": orjson.dumps(content).decode()})

    def _speaker(
        self, given: TurnInput, caller: Caller, emit: Emit
    ) -> tuple[SentenceSpeaker | None, SpokenParts | None]:
        """Who speaks the reply while the model writes it: each sentence to `emit` (a stream), or collected to be
        joined into one file (no stream, a joinable format); (None, None): spoken whole at the end, or not at all."""
        audio_format = self.settings.speech_format
        if not given.speech or self.settings.speech_model is None:
            return None, None
        if given.speak_sentences:
            return SentenceSpeaker(self.models.speak, caller.key, emit, audio_format), None
        if audio_format not in JOINABLE:
            return None, None
        collected = SpokenParts()
        return SentenceSpeaker(self.models.speak, caller.key, collected, audio_format), collected

    async def _spoken(self, result: TurnResult, given: TurnInput, caller: Caller, emit: Emit) -> TurnResult:
        if given.speech and self.settings.speech_model is not None and result.reply and result.audio is None:
            result.audio = await self.models.speak(caller.key, result.reply)
            await self._emit_audio(result.audio, emit)
        return result

    async def _emit_audio(self, audio: bytes, emit: Emit) -> None:
        data = base64.b64encode(audio).decode()
        await emit(TurnEvent("audio", {"format": self.settings.speech_format, "data": data}))


@dataclass(slots=True)
class _Turn:
    result: TurnResult
    history: list[dict[str, Any]]
    offered: Sequence[ToolSpec]
    emit: Emit
    speaker: SentenceSpeaker | None = None


def _joined(audio_format: str, parts: list[bytes]) -> bytes | None:
    """The sentences as one file; None when they do not join (a voice whose WAV headers are not what they say):
    the reply is then spoken whole."""
    try:
        return join_audio(audio_format, parts)
    except (wave.Error, EOFError, ValueError):
        return None


def _call_event(call: ToolCallRequest) -> dict[str, Any]:
    return {"id": call.id, "name": call.name, "arguments": call.arguments}
