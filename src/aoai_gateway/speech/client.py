"""The local speech models as an upstream client: the proxy sends them requests like any HTTP upstream.

client = LocalSpeechClient(local_deployments, settings.speech)
await client.start()                                         # loads each model once (a few hundred ms)
response = await client.send(
    UpstreamRequest("POST", "", headers, body, deployment="whisper", operation="audio/transcriptions"), stream=False
)

`send` routes on the request's deployment and operation, reads the form the gateway already parsed, queues the
work on the bounded worker pool and answers with an `UpstreamResponse`: the transcript in the requested format,
Server-Sent Events for `stream=true`, or an OpenAI-shaped error (400 for unusable audio or parameters, 429 with
Retry-After when the queue is full, 503 while shutting down). So routing, failover (a full queue moves the call to
another deployment of the model), metrics, the access log and relaying work exactly as for Azure. Every answer
carries the audio's duration as `audio_seconds`, which the usage ledger records.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

import orjson

from ..config import Deployment
from ..config.speech import SpeechSettings
from ..errors import InvalidRequest, ModelNotFound, UpstreamError
from ..extras import needs
from ..http.multipart import MultipartForm
from ..upstream import UpstreamRequest, UpstreamWebSocket, WebSocketRequest
from ..upstream.local_response import LocalResponse, content_length, mark_retrieved
from .audio import SAMPLE_RATE, decode_audio
from .engine import Cancelled, Decoding, SpeechModel
from .formats import EVENT_STREAM, delta_event, done_event, render
from .languages import LANGUAGES
from .memory import TRIM_AFTER_SECONDS, give_back
from .pool import SpeechPool, pool_size
from .request import SpeechRequest, Task
from .transcript import Transcript

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from .voice import LocalVoice

log = logging.getLogger("aoai_gateway.speech")

_TASKS: dict[str, Task] = {"audio/transcriptions": "transcribe", "audio/translations": "translate"}


class LocalSpeechClient:
    """Every `provider: local` deployment, each model loaded once (deployments sharing a path share it)."""

    def __init__(self, deployments: Iterable[Deployment], settings: SpeechSettings) -> None:
        self._settings = settings
        deployments = list(deployments)
        self._paths = {d.deployment: str(d.model_path) for d in deployments if d.engine == "whisper"}
        self._voices = {d.deployment for d in deployments if d.engine == "espeak-ng"}
        self._voice: LocalVoice | None = None
        self._models: dict[str, SpeechModel] = {}
        self.size = pool_size(settings.workers, settings.cpu_threads)
        self.pool = SpeechPool(self.size.workers, settings.queue_size)

    async def start(self) -> None:
        """Load every model, off the event loop; a model that cannot load stops start-up with its reason."""
        if self._voices:
            with needs("voice", "engine: espeak-ng"):
                from .voice import LocalVoice

            self._voice = await asyncio.to_thread(LocalVoice)
        size = self.size
        for path in sorted(set(self._paths.values())):
            self._models[path] = await asyncio.to_thread(
                SpeechModel, path, self._settings, size.replicas, size.cpu_threads
            )
            log.info(
                "local speech model %s loaded (%d at once; %d replicas x %d threads)",
                path,
                size.workers,
                size.replicas,
                size.cpu_threads,
            )

    async def send(self, request: UpstreamRequest, *, stream: bool) -> LocalResponse:
        """The model's answer; a refusal (unusable audio, a full queue, shutting down) is raised as the gateway's
        own error, which the proxy renders or fails over on, as it would an upstream's answer."""
        if request.operation == "audio/speech" or request.deployment in self._voices:
            return await self._speak(request)
        model, task = self._route(request.deployment, request.operation)
        form = request.form
        if form is None:  # the body changed on its way here: parse what will really be read
            content_type = next((v for k, v in request.headers if k.lower() == "content-type"), "")
            form = MultipartForm.parse(request.body, content_type)
        speech = SpeechRequest.from_form(form, task)
        _check_model(model, speech)
        job = _Job(model, speech, memoryview(form.body)[speech.file[0] : speech.file[1]])
        future = self.pool.submit(job.run)  # ModelBusy (429) when the queue is full: the proxy fails over
        try:
            if speech.stream:
                # The transcript travels as events; the future only holds the pool slot until the job ends.
                future.add_done_callback(mark_retrieved)
                return await job.stream_response()
            return job.whole_response(await future)
        except asyncio.CancelledError:
            job.cancel()  # the client left or the deadline passed: stop at the next batch
            raise

    async def connect_websocket(self, request: WebSocketRequest, timeout: float) -> UpstreamWebSocket:
        # Never reached: the local provider names no realtime URL, so no session is routed here.
        raise InvalidRequest("Local models serve audio transcriptions and translations, not realtime sessions.")

    async def _speak(self, request: UpstreamRequest) -> LocalResponse:
        from .voice import VoiceRequest

        if self._voice is None or request.deployment not in self._voices or request.operation != "audio/speech":
            raise InvalidRequest(
                "Local speech synthesis is served by `engine: espeak-ng` deployments, transcription by whisper "
                "ones; this deployment does not serve this operation.",
                code="unsupported_operation",
            )
        try:
            body = orjson.loads(bytes(request.body))
        except orjson.JSONDecodeError:
            raise InvalidRequest("The request body is not JSON.") from None
        if not isinstance(body, dict):
            raise InvalidRequest("The request body must be a JSON object.")
        content_type, audio, seconds = await self._voice.speak(VoiceRequest.from_json(body))
        headers = [(b"content-type", content_type.encode()), content_length(audio)]
        return LocalResponse(200, headers, body=audio, audio_seconds=seconds)

    async def aclose(self) -> None:
        if self._voice is not None:
            self._voice.close()
        await self.pool.close()
        for model in self._models.values():
            model.close()

    def _route(self, deployment: str, operation: str) -> tuple[SpeechModel, Task]:
        if operation not in _TASKS:
            raise InvalidRequest(
                f"Local models serve audio/transcriptions and audio/translations, not {operation}.",
                code="unsupported_operation",
            )
        path = self._paths.get(deployment)
        if path is None or path not in self._models:
            raise ModelNotFound(deployment, available=self._paths)
        return self._models[path], _TASKS[operation]


def _check_model(model: SpeechModel, request: SpeechRequest) -> None:
    if request.task == "translate" and not model.multilingual:
        raise InvalidRequest(
            "This model is English-only and cannot translate. Configure a multilingual faster-whisper model "
            "(e.g. base) for translations; see the README's local speech section.",
            param="model",
            code="unsupported_task",
        )
    if request.language is None or request.language in model.languages:
        return
    name = LANGUAGES.get(request.language, request.language)
    if model.multilingual:
        message = (
            f"This model cannot transcribe language '{request.language}' ({name}): it knows "
            f"{len(model.languages)} languages. Use a model that has it (e.g. large-v3 for 'yue')."
        )
    else:
        message = (
            f"This model is English-only; it cannot transcribe language '{request.language}' ({name}). "
            "Configure a multilingual faster-whisper model for other languages."
        )
    raise InvalidRequest(message, param="language", code="unsupported_language")


class _Job:
    """One transcription: runs in a worker thread, talks to the event loop only through thread-safe calls."""

    def __init__(self, model: SpeechModel, request: SpeechRequest, audio: memoryview) -> None:
        self.model = model
        self.request = request
        self.audio = audio
        self.decoding = Decoding(
            task=request.task,
            language=request.language,
            prompt=request.prompt,
            temperature=request.temperature,
            words=request.words or request.response_format in ("srt", "vtt", "verbose_json"),
            captions=request.response_format in ("srt", "vtt", "verbose_json"),
        )
        self._cancelled = threading.Event()
        self._loop = asyncio.get_running_loop()
        self._ready: asyncio.Future[float] = self._loop.create_future()
        self._events: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()

    def cancel(self) -> None:
        self._cancelled.set()

    def run(self) -> Transcript:
        if self._cancelled.is_set():  # the caller left while the job waited for a worker
            raise Cancelled
        try:
            samples = decode_audio(self.audio)
        except BaseException as exc:
            self._decoded(exc)
            raise
        finally:
            self.audio.release()
        duration = len(samples) / SAMPLE_RATE
        self._decoded(duration)
        try:
            return self._transcribe(samples, duration)
        finally:
            if duration >= TRIM_AFTER_SECONDS:  # the decoding's buffers are free now: back to the system
                del samples
                give_back()

    def _transcribe(self, samples: npt.NDArray[np.float32], duration: float) -> Transcript:
        try:
            language, batches = self.model.transcribe(
                samples,
                self.decoding,
                first_batch=1 if self.request.stream else None,
                cancelled=self._cancelled.is_set,
            )
            transcript = Transcript(self.request.task, language, duration)
            for segments in batches:
                transcript.segments.extend(segments)
                if self.request.stream and segments:
                    self._emit(delta_event("".join(s.text for s in segments)))
            if self.request.stream:
                self._emit(done_event(transcript))
                self._emit(None)
            return transcript
        except Cancelled:
            raise
        except BaseException as exc:
            log.exception("local transcription failed")
            self._emit(UpstreamError("The local speech model failed while transcribing; it was logged."))
            raise UpstreamError("The local speech model failed while transcribing; it was logged.") from exc

    def _decoded(self, outcome: float | BaseException) -> None:
        if self.request.stream:  # only a stream answers before the transcript is done
            self._loop.call_soon_threadsafe(_settle, self._ready, outcome)

    def _emit(self, item: bytes | BaseException | None) -> None:
        self._loop.call_soon_threadsafe(self._events.put_nowait, item)

    def whole_response(self, transcript: Transcript) -> LocalResponse:
        content_type, body = render(transcript, self.request)
        return LocalResponse(200, _headers(content_type, len(body)), body=body, audio_seconds=transcript.duration)

    async def stream_response(self) -> LocalResponse:
        """Answer once the audio decoded (so unusable audio still gets its 400), then relay events."""
        duration = await self._ready
        return LocalResponse(200, _headers(EVENT_STREAM), events=self._events, job=self, audio_seconds=duration)


def _settle(future: asyncio.Future[float], outcome: float | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _headers(content_type: bytes, length: int | None = None) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", content_type)]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return headers
