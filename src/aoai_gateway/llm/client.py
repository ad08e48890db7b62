"""The local chat models as an upstream client: the proxy sends them chat completions like any HTTP upstream.

client = LocalChatClient(llama_deployments, settings.local_llm)
await client.start()                                   # loads each GGUF once, off the event loop
response = await client.send(UpstreamRequest("POST", "", headers, body, deployment="qwen-local",
                                             operation="chat/completions"), stream=False)

Each GGUF file is loaded once and shared by the deployments that name it; a llama.cpp context generates one answer
at a time, so each model has a pool of one worker thread and `queue_size` places to wait: beyond that the request
is refused with a 429 and Retry-After (ModelBusy), which lets the router fail over to another deployment of the
model. A prompt too long for the context is a 400 `context_length_exceeded` before any byte of an answer; a
client that leaves (or a routing deadline) cancels the request, which stops the generation at the next token.
Embeddings run on the same worker and queue (embedding.py: a second instance of the GGUF, loaded on first use).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable
from typing import Any

from ..config import Deployment
from ..config.local_llm import LocalLlmSettings
from ..errors import InvalidRequest, ModelNotFound, UpstreamError
from ..speech.pool import SpeechPool
from ..upstream import UpstreamRequest, UpstreamWebSocket, WebSocketRequest
from ..upstream.local_response import LocalResponse, content_length, mark_retrieved
from .embedding import EmbeddingRequest, render_embeddings
from .model import Cancelled, LocalChatModel, Outcome
from .render import Rendering
from .request import GenerationRequest, body_object
from .shapes import Reply, answer_shape

log = logging.getLogger("aoai_gateway.llm")

_PARSERS = {"chat/completions": GenerationRequest.from_chat, "completions": GenerationRequest.from_completion}
_EVENT_STREAM = b"text/event-stream; charset=utf-8"


class LocalChatClient:
    """Every `provider: local`, `engine: llama.cpp` deployment; a model per GGUF file, each with its queue."""

    def __init__(self, deployments: Iterable[Deployment], settings: LocalLlmSettings) -> None:
        self._settings = settings
        deployments = list(deployments)
        self._paths = {d.deployment: str(d.model_path) for d in deployments}
        self._names = {d.deployment: d.model for d in deployments}
        self._models: dict[str, LocalChatModel] = {}
        self._pools = {path: SpeechPool(1, settings.queue_size, "chat") for path in set(self._paths.values())}

    async def start(self) -> None:
        """Load every model, off the event loop; a model that cannot load stops start-up with its reason."""
        for path in sorted(self._pools):
            try:
                self._models[path] = await asyncio.to_thread(LocalChatModel, path, self._settings)
            except ValueError as exc:  # llama-cpp-python's way of saying the file would not load
                raise ValueError(f"the local chat model {path!r} did not load: {exc}") from None
            log.info("local chat model %s loaded (context %d tokens)", path, self._models[path].context_tokens)

    async def send(self, request: UpstreamRequest, *, stream: bool) -> LocalResponse:
        parse = _PARSERS.get(request.operation)
        if parse is None and request.operation != "embeddings":
            raise InvalidRequest(
                f"Local chat models serve chat/completions, completions and embeddings, not {request.operation}.",
                code="unsupported_operation",
            )
        path = self._paths.get(request.deployment)
        if path is None or path not in self._models:
            raise ModelNotFound(request.deployment, available=self._paths)
        if parse is None:
            return await self._embeddings(request, path)
        generation = parse(request.body)
        rendering = Rendering(request.operation, self._names[request.deployment], generation)
        job = _Job(self._models[path], generation, rendering)
        future = self._pools[path].submit(job.run)  # ModelBusy (429) when the queue is full: the proxy fails over
        try:
            if generation.stream:
                future.add_done_callback(mark_retrieved)  # the outcome travels as events
                return await job.stream_response()
            body = rendering.whole(*await future)
            return LocalResponse(200, [(b"content-type", b"application/json"), content_length(body)], body=body)
        except asyncio.CancelledError:
            job.cancel()  # the client left or the deadline passed: stop at the next token
            raise

    async def _embeddings(self, request: UpstreamRequest, path: str) -> LocalResponse:
        model = self._models[path]
        asked = EmbeddingRequest.from_body(body_object(request.body), dimensions=model.dimensions)

        left = threading.Event()

        def check() -> None:
            if left.is_set():
                raise Cancelled

        def run() -> tuple[list[Any], int]:
            check()  # the caller left while the job waited for the worker
            return model.embedder().embed(asked.inputs, check)

        # The chat model's queue and worker: one computation at a time per GGUF, one 429 limit for both.
        try:
            vectors, tokens = await self._pools[path].submit(run)
        except asyncio.CancelledError:
            left.set()  # the client left or the deadline passed: stop before the next input
            raise
        body = render_embeddings(asked, self._names[request.deployment], vectors, tokens)
        return LocalResponse(200, [(b"content-type", b"application/json"), content_length(body)], body=body)

    async def connect_websocket(self, request: WebSocketRequest, timeout: float) -> UpstreamWebSocket:
        # Never reached: the local provider names no realtime URL, so no session is routed here.
        raise InvalidRequest("Local chat models do not serve realtime sessions.")

    async def aclose(self) -> None:
        for pool in self._pools.values():
            await pool.close()
        for model in self._models.values():
            model.close()


class _Job:
    """One generation: runs in the model's worker thread, talks to the event loop only through thread-safe calls."""

    def __init__(self, model: LocalChatModel, request: GenerationRequest, rendering: Rendering) -> None:
        self.model = model
        self.request = request
        self.rendering = rendering
        self._cancelled = threading.Event()
        self._loop = asyncio.get_running_loop()
        self._ready: asyncio.Future[None] = self._loop.create_future()
        self._events: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()

    def cancel(self) -> None:
        self._cancelled.set()

    def run(self) -> tuple[Outcome, Reply]:
        if self._cancelled.is_set():  # the caller left while the job waited for the worker
            raise Cancelled
        try:
            shape = answer_shape(self.request)
            prompt = self.model.prompt(self.request)
        except BaseException as exc:  # a 400 (context, schema, template) before any byte of the answer
            self._settle(exc)
            raise
        self._settle(None)
        stream = self.request.stream
        buffered = shape.forced or bool(shape.tools)  # a tool call is sent whole, once read back
        if stream and (opening := self.rendering.opening()):  # an empty chunk would end the relayed stream
            self._emit(opening)
        on_text = self._emit_text if stream and not buffered else _ignore
        try:
            outcome = self.model.generate(prompt, self.request, shape, on_text, self._cancelled.is_set)
        except Cancelled:
            raise
        except BaseException as exc:
            log.exception("local generation failed")
            error = UpstreamError("The local chat model failed while generating; it was logged.")
            self._emit(error)
            raise error from exc
        reply = shape.read(outcome.text)
        if stream:
            self._emit(self.rendering.closing(outcome, reply if buffered else None))
            self._emit(None)
        return outcome, reply

    def _settle(self, outcome: BaseException | None) -> None:
        if self.request.stream:  # only a stream answers before the generation is done
            self._loop.call_soon_threadsafe(_settle, self._ready, outcome)

    def _emit_text(self, text: str) -> None:
        self._emit(self.rendering.delta(text))

    def _emit(self, item: bytes | BaseException | None) -> None:
        self._loop.call_soon_threadsafe(self._events.put_nowait, item)

    async def stream_response(self) -> LocalResponse:
        """Answer once the prompt was accepted (so a too-long one still gets its 400), then relay events."""
        await self._ready
        return LocalResponse(200, [(b"content-type", _EVENT_STREAM)], events=self._events, job=self)


def _ignore(text: str) -> None:
    pass


def _settle(future: asyncio.Future[None], outcome: BaseException | None) -> None:
    if future.done():
        return
    if outcome is None:
        future.set_result(None)
    else:
        future.set_exception(outcome)
