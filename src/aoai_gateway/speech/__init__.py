"""Local speech: `provider: local` deployments served in-process by faster-whisper, on the OpenAI audio API.

clients = await start_local_speech(settings)      # {"local": LocalSpeechClient} when a local deployment exists
upload_limits(settings)                           # the largest multipart upload each provider takes

The heavy imports (faster-whisper, CTranslate2, PyAV) happen only when a local deployment is configured.
Modules: request.py (the form), audio.py (decoding), windows.py (voice detection, windows), gaps.py (speech
Whisper skipped), engine.py (the model), transcript.py, formats.py (response formats, events), pool.py
(workers, replicas, queue), wer.py (word error rate), client.py (the `UpstreamClient` the proxy calls).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..config import Settings

if TYPE_CHECKING:
    from ..upstream import UpstreamClient

LOCAL = "local"


async def start_local_speech(settings: Settings) -> dict[str, UpstreamClient]:
    """The in-process client for the local deployments, models loaded; empty when there are none."""
    local = [d for d in settings.deployments if d.provider == LOCAL]
    if not local:
        return {}
    from .client import LocalSpeechClient

    client = LocalSpeechClient(local, settings.speech)
    await client.start()
    return {LOCAL: client}


def upload_limits(settings: Settings) -> dict[str, int]:
    """Provider -> largest multipart body: Azure's 25 MiB wall (`limits.max_audio_bytes`) is not for local models."""
    limits: dict[str, int] = {d.provider: settings.limits.max_audio_bytes for d in settings.deployments}
    if LOCAL in limits:
        limits[LOCAL] = settings.speech.max_upload_bytes
    return limits
