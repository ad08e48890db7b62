"""The pipeline's two model calls: in-process through the gateway's own service, or remote with the OpenAI client.

    models = await ModelClient.in_process(settings, api_key=None)        # the gateway's deployments and routing
    models = ModelClient.remote("https://gw.example.com/v1", "sk-...")   # a remote gateway, Azure's /openai/v1, ...
    heard = await models.transcribe(path, "whisper-1", language=None)    # Transcription(text, segments, ...)
    reply = await models.chat({"model": "gpt-4o", "messages": [...]})    # ChatReply(content, arguments, usage)

In-process, each call goes straight to the gateway's proxy service (`Gateway.call`): no HTTP, no SDK, but the same
access mode, routing, failover, local Whisper and usage ledger as a served request, so one config file serves
both. Remote calls use the official OpenAI client. Either way, every failure becomes a `ModelCallError` that says
whether a retry may help (throttling, 5xx, network) or not (a bad file, a refused request).
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, cast

import orjson

from ..api_call import form_call, json_call
from ..app import Gateway
from ..config import Settings
from ..errors import GatewayError
from ..factory import open_gateway
from ..http.multipart import form_body
from .errors import ModelCallError
from .pieces import audio_pieces

_RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class Reply:
    """A model's JSON answer and the deployment that gave it."""

    body: dict[str, Any]
    deployment: str | None


class ModelTransport(Protocol):
    async def transcription(
        self, model: str, language: str | None, prompt: str | None, name: str, audio: bytes
    ) -> Reply: ...

    async def chat(self, request: dict[str, Any]) -> Reply: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Transcription:
    text: str
    language: str | None
    duration: float | None
    model: str
    deployment: str | None
    seconds: float  # wall time of the call
    # Whisper's segments as {"start", "end", "text"} (seconds from the recording's start; None when unknown),
    # and the speaker where the transcript knows it: what evidence quotes are located in.
    segments: tuple[dict[str, Any], ...] = ()
    prompt: str | None = None  # the vocabulary hint it was given
    vocabulary: tuple[str, ...] = ()  # the names of that hint, one by one (respell.py)

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "language": self.language,
            "duration": self.duration,
            "model": self.model,
            "deployment": self.deployment,
            "segments": list(self.segments),
            "prompt": self.prompt,
            "vocabulary": list(self.vocabulary),
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True, slots=True)
class ChatReply:
    content: str | None  # the message text (json_schema mode)
    arguments: str | None  # the forced tool call's arguments (tool mode)
    model: str
    deployment: str | None
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None
    seconds: float


class ModelClient:
    def __init__(self, transport: ModelTransport) -> None:
        self.transport = transport

    @classmethod
    async def in_process(cls, settings: Settings, api_key: str | None) -> ModelClient:
        # The pipeline reports per call; an access-log line per model call would only be noise on its terminal.
        quiet = settings.model_copy(update={"logging": settings.logging.model_copy(update={"access_log": False})})
        stack = AsyncExitStack()
        # Loads local Whisper models once, opens the upstream pool and any key store.
        gateway = await stack.enter_async_context(open_gateway(quiet))
        return cls(GatewayTransport(gateway, api_key, stack))

    @classmethod
    def remote(cls, api_base: str, api_key: str | None, timeout: float = 600.0) -> ModelClient:
        return cls(SdkTransport(api_base, api_key, timeout))

    async def transcribe(
        self,
        path: Path,
        model: str,
        language: str | None,
        piece_seconds: float = 600.0,
        prompt: str | None = None,
    ) -> Transcription:
        """The whole recording's transcript; cut into pieces when it is too large for one request (413).

        `prompt` is Whisper's: text the recording is taken to follow, which steers spelling (a vocabulary)."""
        started = time.perf_counter()
        try:
            audio = await asyncio.to_thread(path.read_bytes)
            heard = await self._transcribe(model, language, prompt, path.name, audio)
        except ModelCallError as exc:
            if exc.status != 413:
                raise
            parts = [
                await self._transcribe(model, language, prompt, name, piece)
                for name, piece in await asyncio.to_thread(lambda: list(audio_pieces(path, piece_seconds)))
            ]
            segments: list[dict[str, Any]] = []
            offset = 0.0
            for part in parts:  # each piece's times count from its own start: shift them to the recording's
                segments += [_shifted(segment, offset) for segment in part.segments]
                offset += part.duration or 0.0
            heard = Transcription(
                text=" ".join(part.text for part in parts if part.text),
                language=parts[0].language,
                duration=sum(part.duration or 0.0 for part in parts),
                model=model,
                deployment=parts[0].deployment,
                seconds=0.0,
                segments=tuple(segments),
            )
        return replace(heard, seconds=time.perf_counter() - started, prompt=prompt)

    async def _transcribe(
        self, model: str, language: str | None, prompt: str | None, name: str, audio: bytes
    ) -> Transcription:
        reply = await self.transport.transcription(model, language, prompt, name, audio)
        body = reply.body
        text, spoken, duration = body.get("text"), body.get("language"), body.get("duration")
        segments = body.get("segments")
        return Transcription(
            text=text.strip() if isinstance(text, str) else "",
            language=spoken if isinstance(spoken, str) and spoken else language,
            duration=float(duration) if isinstance(duration, int | float) else None,
            model=model,
            deployment=reply.deployment,
            seconds=0.0,
            segments=tuple(_segments(segments) if isinstance(segments, list) else ()),
        )

    async def chat(self, request: dict[str, Any]) -> ChatReply:
        started = time.perf_counter()
        reply = await self.transport.chat(request)
        body = reply.body
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise ModelCallError(f"{request['model']} answered without a choice", retryable=True)
        choice = choices[0]
        message = _object(choice.get("message"))
        tool_calls = message.get("tool_calls") or []
        first = tool_calls[0] if isinstance(tool_calls, list) and tool_calls else {}
        function = first.get("function") if isinstance(first, dict) and first.get("type") == "function" else None
        usage = _object(body.get("usage"))
        return ChatReply(
            content=message.get("content"),
            arguments=function.get("arguments") if isinstance(function, dict) else None,
            model=str(body.get("model") or request["model"]),
            deployment=reply.deployment,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            finish_reason=choice.get("finish_reason"),
            seconds=time.perf_counter() - started,
        )

    async def aclose(self) -> None:
        await self.transport.aclose()


class GatewayTransport:
    """Calls the in-process gateway's service directly: a form built once, a JSON body encoded once, no HTTP."""

    def __init__(self, gateway: Gateway, api_key: str | None, stack: AsyncExitStack) -> None:
        self.gateway = gateway
        self.api_key = api_key
        self._stack = stack  # closes the gateway

    async def transcription(
        self, model: str, language: str | None, prompt: str | None, name: str, audio: bytes
    ) -> Reply:
        fields = {"model": model, "response_format": "verbose_json"}
        fields.update({"language": language} if language else {})
        fields.update({"prompt": prompt} if prompt else {})
        body, content_type = form_body(fields, name, audio)
        return await self._call(model, lambda: form_call(body, content_type, "audio/transcriptions"))

    async def chat(self, request: dict[str, Any]) -> Reply:
        return await self._call(request["model"], lambda: json_call(orjson.dumps(request), "chat/completions"))

    async def _call(self, model: str, make: Any) -> Reply:
        try:
            answer = await self.gateway.call(make(), key=self.api_key)
        except GatewayError as exc:
            retry_after = exc.headers.get("retry-after")
            raise _status_error(model, exc.status, exc.message, retry_after) from None
        if answer.status >= 400:
            raise _status_error(model, answer.status, _message(answer.body), answer.headers.get("retry-after"))
        try:
            body = orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            raise ModelCallError(f"{model} answered with a body that is not JSON", retryable=True) from None
        if not isinstance(body, dict):
            raise ModelCallError(f"{model} answered with JSON that is not an object", retryable=True)
        return Reply(body, answer.exchange.deployment)

    async def aclose(self) -> None:
        await self._stack.aclose()


class SdkTransport:
    """Any OpenAI-compatible base URL (a remote gateway, Azure's /openai/v1) through the official client."""

    def __init__(self, api_base: str, api_key: str | None, timeout: float) -> None:
        import openai  # only remote calls need the SDK

        self._openai = openai
        self.client = openai.AsyncOpenAI(api_key=api_key or "none", base_url=api_base, max_retries=2, timeout=timeout)

    async def transcription(
        self, model: str, language: str | None, prompt: str | None, name: str, audio: bytes
    ) -> Reply:
        extra: dict[str, Any] = {"language": language} if language else {}
        extra.update({"prompt": prompt} if prompt else {})
        pending = self.client.audio.transcriptions.with_raw_response.create(
            file=(name, audio), model=model, response_format="verbose_json", **extra
        )
        return await self._call(model, pending)

    async def chat(self, request: dict[str, Any]) -> Reply:
        return await self._call(
            request["model"], cast(Any, self.client.chat.completions.with_raw_response.create)(**request)
        )

    async def _call(self, model: str, pending: Any) -> Reply:
        """Await an SDK call, turning its exceptions into one `ModelCallError` (no request content in it)."""
        openai = self._openai
        try:
            raw = await pending
        except openai.APIStatusError as exc:
            raise _status_error(
                model, exc.status_code, _sdk_message(exc), exc.response.headers.get("retry-after")
            ) from None
        except openai.APITimeoutError:
            raise ModelCallError(f"{model}: the request timed out", retryable=True) from None
        except openai.APIConnectionError as exc:
            raise ModelCallError(f"{model}: cannot connect: {exc.__cause__ or exc}", retryable=True) from None
        body = raw.http_response.json()
        deployment = raw.headers.get("x-gateway-deployment") or raw.headers.get("x-ms-deployment-name")
        return Reply(body if isinstance(body, dict) else {}, deployment)

    async def aclose(self) -> None:
        await self.client.close()


def _segments(found: list[Any]) -> list[dict[str, Any]]:
    """The usable part of verbose_json's segments: text with its start and end (None where not a number)."""
    kept = []
    for segment in found:
        if isinstance(segment, dict) and isinstance(segment.get("text"), str):
            start, end = segment.get("start"), segment.get("end")
            kept.append(
                {
                    "start": float(start) if isinstance(start, int | float) else None,
                    "end": float(end) if isinstance(end, int | float) else None,
                    "text": segment["text"].strip(),
                }
            )
    return kept


def _shifted(segment: dict[str, Any], offset: float) -> dict[str, Any]:
    start, end = segment["start"], segment["end"]
    return {
        **segment,
        "start": None if start is None else round(start + offset, 3),
        "end": None if end is None else round(end + offset, 3),
    }


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _status_error(model: str, status: int, message: str, retry_after: str | None) -> ModelCallError:
    return ModelCallError(
        f"{model} answered {status}: {message}",
        retryable=status in _RETRYABLE_STATUS,
        retry_after=_retry_after(retry_after),
        status=status,
    )


def _message(body: bytes) -> str:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode("utf-8", "replace")
    return _error_text(document, "no error message")


def _sdk_message(exc: Any) -> str:
    return _error_text(exc.body, str(exc.message)[:500])


def _error_text(document: Any, fallback: str) -> str:
    """The `error.message` of an OpenAI-shaped error body (or a bare `message`), else `fallback`."""
    error = document.get("error", document) if isinstance(document, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])[:500]
    return fallback


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:  # an HTTP date: rare from Azure, and the back-off covers it
        return None
