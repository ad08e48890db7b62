"""A voice agent served as the Realtime API (`provider: pipeline`): which of the gateway's models hear, think and
speak for it, and its session defaults.

    - model: voice-agent
      provider: pipeline
      pipeline: {transcription_model: whisper-local, chat_model: gpt-4o, speech_model: tts-local}

Each model is called in-process with the caller's key, like any request (realtime_pipeline/models.py).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PipelineSettings(BaseModel):
    """The three models of a pipeline deployment, and what a session starts with until `session.update`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    transcription_model: str = Field(min_length=1)
    chat_model: str = Field(min_length=1)
    speech_model: str = Field(min_length=1)
    instructions: str = ""
    voice: str = "alloy"
    language: str | None = None  # a transcription hint; None lets Whisper detect it
    # The most audio one user turn may hold (the input buffer's bound: 60 s of pcm16 24 kHz is 2.9 MB).
    max_turn_seconds: float = Field(60.0, gt=0, le=600)
    # A conversation keeps its last items only; older ones are dropped from what the chat model sees.
    max_items: int = Field(200, ge=2, le=10_000)
