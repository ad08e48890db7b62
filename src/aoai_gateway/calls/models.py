"""The pipeline's two model calls, made with the official OpenAI client: in-process through the gateway, or remote.

    models = await ModelClient.in_process(settings, api_key=None)        # the gateway's deployments and routing
    models = ModelClient.remote("https://gw.example.com/v1", "sk-...")   # a remote gateway, Azure's /openai/v1, ...
    heard = await models.transcribe(path, "whisper-1", language=None)    # Transcription(text, language, ...)
    reply = await models.chat({"model": "gpt-4o", "messages": [...]})    # ChatReply(content, arguments, usage)

In-process, the OpenAI client talks to the gateway's ASGI app through the ASGI transport of its HTTP library
(httpx2): no socket, but the same routing, failover, local Whisper and usage ledger as a served request, so one
config file serves both. Every failure becomes a `ModelCallError` that says whether a retry may help (throttling,
5xx, network) or not (a bad file, a refused request).
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import httpx2
import openai

from ..config import Settings
from ..factory import open_gateway
from .errors import ModelCallError
from .pieces import audio_pieces

_RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class Transcription:
    text: str
    language: str | None
    duration: float | None
    model: str
    deployment: str | None
    seconds: float  # wall time of the call

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "language": self.language,
            "duration": self.duration,
            "model": self.model,
            "deployment": self.deployment,
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
    def __init__(self, client: openai.AsyncOpenAI, gateway: AsyncExitStack | None = None) -> None:
        self.client = client
        self._gateway = gateway  # closes the in-process gateway

    @classmethod
    async def in_process(cls, settings: Settings, api_key: str | None) -> ModelClient:
        # The pipeline reports per call; an access-log line per model call would only be noise on its terminal.
        quiet = settings.model_copy(update={"logging": settings.logging.model_copy(update={"access_log": False})})
        stack = AsyncExitStack()
        # Loads local Whisper models once, opens the upstream pool and any key store.
        gateway = await stack.enter_async_context(open_gateway(quiet))
        http = httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=gateway),
            timeout=httpx2.Timeout(settings.upstream.timeouts.read, connect=settings.upstream.timeouts.connect),
        )
        # The gateway already retries across deployments; the client must not multiply that.
        client = openai.AsyncOpenAI(
            api_key=api_key or "in-process",
            base_url=f"http://aoai-gateway.internal{settings.api_base}",
            http_client=http,
            max_retries=0,
        )
        return cls(client, stack)

    @classmethod
    def remote(cls, api_base: str, api_key: str | None, timeout: float = 600.0) -> ModelClient:
        client = openai.AsyncOpenAI(api_key=api_key or "none", base_url=api_base, max_retries=2, timeout=timeout)
        return cls(client)

    async def transcribe(
        self, path: Path, model: str, language: str | None, piece_seconds: float = 600.0
    ) -> Transcription:
        """The whole recording's transcript; cut into pieces when it is too large for one request (413)."""
        started = time.perf_counter()
        try:
            with path.open("rb") as audio:
                heard = await self._transcribe(model, language, (path.name, audio))
        except ModelCallError as exc:
            if exc.status != 413:
                raise
            parts = [
                await self._transcribe(model, language, piece)
                for piece in await asyncio.to_thread(lambda: list(audio_pieces(path, piece_seconds)))
            ]
            heard = Transcription(
                text=" ".join(part.text for part in parts if part.text),
                language=parts[0].language,
                duration=sum(part.duration or 0.0 for part in parts),
                model=model,
                deployment=parts[0].deployment,
                seconds=0.0,
            )
        return replace(heard, seconds=time.perf_counter() - started)

    async def _transcribe(self, model: str, language: str | None, file: tuple[str, Any]) -> Transcription:
        extra: dict[str, Any] = {"language": language} if language else {}
        raw = await self._call(
            model,
            self.client.audio.transcriptions.with_raw_response.create(
                file=file, model=model, response_format="verbose_json", **extra
            ),
        )
        body = raw.parse()
        return Transcription(
            text=body.text.strip(),
            language=getattr(body, "language", None) or language,
            duration=getattr(body, "duration", None),
            model=model,
            deployment=raw.headers.get("x-gateway-deployment") or raw.headers.get("x-ms-deployment-name"),
            seconds=0.0,
        )

    async def chat(self, request: dict[str, Any]) -> ChatReply:
        started = time.perf_counter()
        raw = await self._call(
            request["model"], cast(Any, self.client.chat.completions.with_raw_response.create)(**request)
        )
        body = raw.parse()
        if not body.choices:
            raise ModelCallError(f"{request['model']} answered without a choice", retryable=True)
        choice = body.choices[0]
        calls = choice.message.tool_calls or []
        usage = body.usage
        return ChatReply(
            content=choice.message.content,
            arguments=calls[0].function.arguments if calls and calls[0].type == "function" else None,
            model=body.model,
            deployment=raw.headers.get("x-gateway-deployment") or raw.headers.get("x-ms-deployment-name"),
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            finish_reason=choice.finish_reason,
            seconds=time.perf_counter() - started,
        )

    async def _call(self, model: str, pending: Any) -> Any:
        """Await an SDK call, turning its exceptions into one `ModelCallError` (no request content in it)."""
        try:
            return await pending
        except openai.APIStatusError as exc:
            message = _error_message(exc)
            raise ModelCallError(
                f"{model} answered {exc.status_code}: {message}",
                retryable=exc.status_code in _RETRYABLE_STATUS,
                retry_after=_retry_after(exc.response.headers.get("retry-after")),
                status=exc.status_code,
            ) from None
        except openai.APITimeoutError:
            raise ModelCallError(f"{model}: the request timed out", retryable=True) from None
        except openai.APIConnectionError as exc:
            raise ModelCallError(f"{model}: cannot connect: {exc.__cause__ or exc}", retryable=True) from None

    async def aclose(self) -> None:
        await self.client.close()
        if self._gateway is not None:
            await self._gateway.aclose()


def _error_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])[:500]
    return exc.message[:500]


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:  # an HTTP date: rare from Azure, and the back-off covers it
        return None
