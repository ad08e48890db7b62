"""Settings of the call-analytics pipeline (`aoai-gateway calls ...`): the `calls:` section of config.yaml.

    settings.calls.extract_model      # the chat model that fills the schema ("gpt-4o")
    settings.calls.database_url       # "" = the gateway's own database (settings.database_url)

One file configures the gateway and the pipeline: by default the pipeline's model calls go in-process through the
gateway's deployments and routing; `api_base` sends them to any OpenAI-compatible URL instead.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class CallsSettings(BaseModel):
    """The pipeline: which models, how hard to try, how to share work between workers."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    database_url: str = ""
    transcribe_model: str = "whisper-1"
    extract_model: str = "gpt-4o"
    extract_mode: Literal["json_schema", "tool"] = "json_schema"
    schema_path: str | None = None
    language: str | None = None
    api_base: str | None = None
    concurrency: int = Field(4, ge=1)
    max_attempts: int = Field(3, ge=1)
    retry_base_seconds: float = Field(5.0, ge=0)
    retry_max_seconds: float = Field(300.0, ge=0)
    reasks: int = Field(2, ge=0)
    max_transcript_tokens: int = Field(100_000, ge=100)
    piece_seconds: float = Field(600.0, ge=1)
    max_output_tokens: int = Field(1_000, ge=16)
    lease_seconds: float = Field(120.0, gt=0)
    poll_seconds: float = Field(5.0, gt=0)
    settle_seconds: float = Field(2.0, ge=0)
    queue_url: str | None = None
