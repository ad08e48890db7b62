"""The OpenAI Realtime API served in-process for `provider: pipeline` deployments: a voice agent made of the
gateway's own models (local or Azure Whisper, any chat deployment, a local or Azure voice).

    client = PipelineClient(caller, deployments)     # factory.py hands it to the realtime relay

Modules: client.py (the relay's client: one session per connection), session.py (client events, the audio buffer,
server VAD, turns), response.py (one response: chat, function calls, speech), conversation.py (items and the chat
messages they become), session_config.py (session.update, checked), dialect.py (the beta protocol's names),
models.py (the in-process model calls), vad.py (energy voice activity detection), audio.py (pcm16 24 kHz in and
out).
"""

from .client import PipelineClient

__all__ = ["PipelineClient"]
