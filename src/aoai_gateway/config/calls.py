"""Settings of the call-analytics pipeline (`aoai-gateway calls ...`): the `calls:` section of config.yaml.

    settings.calls.extract_model                  # the chat model that fills the schema ("gpt-4o")
    settings.calls.database_url                   # "" = the gateway's own database (settings.database_url)
    settings.calls.azure_storage.connection_string  # azure:// sources' credentials (AZURE_STORAGE_*)

One file configures the gateway and the pipeline: by default the pipeline's model calls go in-process through the
gateway's deployments and routing; `api_base` sends them to any OpenAI-compatible URL instead.

The environment variables the pipeline honours (Azure's usual AZURE_STORAGE_*, the model key, the queue's name)
are read here and nowhere else: `calls_from_env(os.environ)` is the section they make, which the loader lays over
the file's (environment beats file, as everywhere). Nothing under `aoai_gateway.calls` reads the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = ["CALLS_ENV_VARS", "AzureStorageSettings", "CallsSettings", "calls_from_env"]

# variable -> (setting under `calls`, what it is); earlier variables win when two name one setting
CALLS_ENV_VARS: dict[str, tuple[str, str]] = {
    "AOAI_GATEWAY_CALLS_API_KEY": ("api_key", "key for the call pipeline's model calls (calls.api_key)"),
    "OPENAI_API_KEY": ("api_key", "the same, when AOAI_GATEWAY_CALLS_API_KEY is not set"),
    "AOAI_GATEWAY_CALLS_QUEUE_NAME": ("queue_name", "the calls task queue's name (calls.queue_name)"),
    "AZURE_STORAGE_CONNECTION_STRING": (
        "azure_storage.connection_string",
        "azure:// recordings: connection string (calls.azure_storage.*)",
    ),
    "AZURE_STORAGE_ACCOUNT": ("azure_storage.account", "azure:// recordings: storage account name"),
    "AZURE_STORAGE_KEY": ("azure_storage.key", "azure:// recordings: that account's key"),
    "AZURE_STORAGE_SAS_TOKEN": ("azure_storage.sas_token", "azure:// recordings: a SAS token instead of the key"),
    "AZURE_STORAGE_BLOB_ENDPOINT": (
        "azure_storage.blob_endpoint",
        "azure:// recordings: Blob endpoint (default https://ACCOUNT.blob.core.windows.net)",
    ),
}


class AzureStorageSettings(BaseModel):
    """Credentials of `azure://` sources: a connection string, or an account with its key or a SAS token.

    A source's own `?connection_string=` comes first, then these (usually from AZURE_STORAGE_*).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    connection_string: SecretStr | None = None
    account: str | None = None
    key: SecretStr | None = None
    sas_token: SecretStr | None = None
    blob_endpoint: str | None = None


class CallsSettings(BaseModel):
    """The pipeline: which models, how hard to try, how to share work between workers."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    database_url: str = ""
    transcribe_model: str = "whisper-1"
    extract_model: str = "gpt-4o"
    extract_mode: Literal["json_schema", "tool"] = "json_schema"
    schema_path: str | None = None
    grounding: bool = True
    vocabulary_path: str | None = None
    language: str | None = None
    api_base: str | None = None
    api_key: SecretStr | None = None
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
    # Dramatiq's rule for queue names: one queue per environment sharing a broker.
    queue_name: str = Field("aoai-calls", pattern=r"^[a-zA-Z_][a-zA-Z0-9._-]*$", max_length=200)
    azure_storage: AzureStorageSettings = AzureStorageSettings()
    # Folders and azure://container[/prefix] sources whose recordings the console's calls explorer may play;
    # a recording anywhere else (or reached through a link below them) is refused.
    playback_sources: tuple[str, ...] = Field((), max_length=32)

    @property
    def model_key(self) -> str | None:
        """The key the pipeline's model calls send, or None (then the in-process gateway's own rules apply)."""
        return self.api_key.get_secret_value() if self.api_key else None


def calls_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """The part of the `calls` section the environment sets: `{"api_key": ..., "azure_storage": {...}}`."""
    section: dict[str, Any] = {}
    for name in reversed(CALLS_ENV_VARS):  # so that the earlier of two variables for one setting wins
        value = env.get(name, "").strip()
        if not value:
            continue
        path = CALLS_ENV_VARS[name][0].split(".")
        node = section
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return section
