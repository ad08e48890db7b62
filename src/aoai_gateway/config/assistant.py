"""Settings of the voice assistant (`/v1/assistant/...`, `aoai-gateway assistant`): the `assistant:` section.

    settings.assistant.enabled                 # off by default: no route, nothing opened
    settings.assistant.chat_model              # a model of this file, called in-process through the gateway
    settings.assistant.webhooks[0].url         # an HTTP tool the model may call
    settings.assistant.mcp_servers[0].command  # an MCP server started over stdio

Every model the assistant uses is a model of this same file (Azure deployments, `provider: openai` servers such
as llama.cpp or Ollama, `provider: local` Whisper), called through the gateway's own service, so the caller's key,
its allowlist, routing, failover and the usage ledger apply to each call.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["AssistantSettings", "McpServerSettings", "WebhookToolSettings"]

# OpenAI's rule for function names; tool names are also what a key's allowlist names (`tool:NAME`).
TOOL_NAME = r"^[a-zA-Z0-9_-]{1,64}$"
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

DEFAULT_SYSTEM_PROMPT = (
    "You are a voice assistant for a home. Use the tools to act and to look things up; never guess the state of a "
    "device. Answer in one or two short spoken sentences, without markdown."
)


class WebhookToolSettings(BaseModel):
    """A tool the model may call that is an HTTP request: the arguments go as the JSON body (query for GET)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=TOOL_NAME)]
    description: Annotated[str, Field(max_length=4000)] = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    url: Annotated[str, Field(pattern=r"^https?://", max_length=4000)]
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    headers_from_env: dict[str, str] = Field(default_factory=dict)  # header name -> environment variable
    timeout_s: float = Field(10.0, gt=0, le=600)
    confirm: bool = False

    @field_validator("headers_from_env")
    @classmethod
    def _names(cls, value: dict[str, str]) -> dict[str, str]:
        for header, variable in value.items():
            if not _HEADER_NAME.match(header):
                raise ValueError(f"{header!r} is not an HTTP header name")
            if not _ENV_NAME.match(variable):
                raise ValueError(f"{variable!r} is not an environment variable name")
        return value

    @field_validator("parameters")
    @classmethod
    def _schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("type") != "object":
            raise ValueError('a tool\'s parameters must be a JSON Schema of "type": "object"')
        try:
            from jsonschema.validators import validator_for
        except ModuleNotFoundError:  # the assistant extra is missing: start-up stops on that first (extras.py)
            return value
        try:
            validator_for(value).check_schema(value)
        except Exception as exc:  # jsonschema's SchemaError; the message says which keyword is wrong
            raise ValueError(f"not a valid JSON Schema: {getattr(exc, 'message', exc)}") from None
        return value


class McpServerSettings(BaseModel):
    """A Model Context Protocol server whose tools the model may call: a command over stdio, or a URL."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_]{1,24}$")]  # tools appear as NAME__tool
    command: tuple[str, ...] = ()  # stdio: the program and its arguments
    url: Annotated[str, Field(pattern=r"^https?://", max_length=4000)] | None = None  # streamable HTTP
    env_from_env: dict[str, str] = Field(default_factory=dict)  # stdio: its variable -> ours
    headers_from_env: dict[str, str] = Field(default_factory=dict)  # HTTP: header -> environment variable
    timeout_s: float = Field(30.0, gt=0, le=600)
    confirm: tuple[str, ...] = ()  # tools of this server that need the user's confirmation

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerSettings:
        if bool(self.command) == (self.url is not None):
            raise ValueError(f"MCP server {self.name!r}: give either `command` (stdio) or `url` (streamable HTTP)")
        return self


class AssistantSettings(BaseModel):
    """The assistant: its models, its bounds, its tools."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    chat_model: str = "gpt-4o"
    transcription_model: str = "whisper-1"
    speech_model: str | None = None  # a text-to-speech model of this file; none = replies as text only
    voice: str = "alloy"
    speech_format: Literal["mp3", "wav", "opus", "aac", "flac", "pcm"] = "wav"
    language: str | None = None  # the speakers' language (ISO 639-1) when known; none = detected
    system_prompt: str | None = None  # none = DEFAULT_SYSTEM_PROMPT

    @property
    def instructions(self) -> str:
        return self.system_prompt if self.system_prompt is not None else DEFAULT_SYSTEM_PROMPT

    max_rounds: int = Field(6, ge=1, le=50)  # model calls per turn: tool rounds, then the answer
    max_tool_calls: int = Field(16, ge=1, le=128)  # tool calls the model may ask for in one round
    max_messages: int = Field(40, ge=4, le=2000)  # conversation kept per session (oldest turns dropped)
    max_text_chars: int = Field(4000, ge=1, le=100_000)  # a typed or transcribed utterance
    max_audio_bytes: int = Field(25 * 1024 * 1024, ge=1024)
    max_tool_result_chars: int = Field(16_000, ge=100)  # what one tool result may put in the conversation
    max_sessions: int = Field(10_000, ge=1)
    session_ttl_s: float = Field(1800.0, gt=0)  # idle time after which a session is gone
    persist_sessions: bool | None = None  # none = in the gateway's database when `auth: keys` keeps one
    home: bool = True  # the built-in simulated home's tools
    webhooks: tuple[WebhookToolSettings, ...] = ()
    mcp_servers: tuple[McpServerSettings, ...] = ()

    @model_validator(mode="after")
    def _unique_tools(self) -> AssistantSettings:
        names = [hook.name for hook in self.webhooks] + [server.name for server in self.mcp_servers]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"assistant tool sources named twice: {', '.join(duplicates)}")
        return self
