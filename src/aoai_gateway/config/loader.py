"""Build `Settings` from the config file, the environment and command-line overrides.

    settings = load_settings("config.yaml", os.environ, host="0.0.0.0")

Precedence, lowest first: built-in defaults < config file < environment < command line. Deployments combine:
the file's list, then one deployment per `AZURE_OPENAI_MODEL_MAPPER` entry; a model that the environment maps
replaces the file's deployments of that model (the old proxy ignored the whole file when the variable was set).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .calls import CALLS_ENV_VARS, calls_from_env
from .settings import DEFAULT_API_VERSION, Deployment, Settings

__all__ = ["ENV_VARS", "ConfigError", "load_settings", "parse_model_mapper"]

ENV_VARS = {
    "AZURE_OPENAI_ENDPOINT": "endpoint of the deployments in AZURE_OPENAI_MODEL_MAPPER",
    "AZURE_OPENAI_API_VER": f"their api-version (default {DEFAULT_API_VERSION})",
    "AZURE_OPENAI_MODEL_MAPPER": "model=deployment[,model2=deployment2...]",
    "AZURE_OPENAI_API_KEY": "server-side key for those deployments (else the client's key is forwarded)",
    "AZURE_OPENAI_HTTP_PROXY": "egress through an HTTP proxy (upstream.http_proxy)",
    "AZURE_OPENAI_SOCKS_PROXY": "egress through a SOCKS5 proxy (upstream.socks_proxy)",
    "API_BASE": "path prefix of the OpenAI routes (api_base, default /v1)",
    "LISTEN": "host:port to listen on (server.host / server.port)",
    "AOAI_GATEWAY_MASTER_KEY": "master key of the admin API under /admin/ (admin.master_key)",
    "AOAI_GATEWAY_DATA_DIR": "where the SQLite database lives (data_dir; default ~/.local/share/aoai-gateway)",
    "AOAI_GATEWAY_MAX_CONNECTIONS": "client connections one process holds (server.max_connections)",
    "AOAI_GATEWAY_UPSTREAM_MAX_CONNECTIONS": "upstream connections one process holds (upstream.max_connections)",
    "AOAI_GATEWAY_UPSTREAM_POOL_WAIT_SECONDS": "how long a request waits for a busy pool (upstream.pool_wait_seconds)",
    **{name: text for name, (_, text) in CALLS_ENV_VARS.items()},
}


class ConfigError(Exception):
    """The configuration cannot be used; the message says where and why."""


def parse_model_mapper(value: str) -> list[tuple[str, str]]:
    """`"gpt-4o = prod-4o, gpt-35-turbo=legacy"` -> `[("gpt-4o", "prod-4o"), ("gpt-35-turbo", "legacy")]`."""
    pairs = []
    for raw in value.split(","):
        entry = raw.strip()
        if not entry:
            continue
        model, sep, deployment = entry.partition("=")
        model, deployment = model.strip(), deployment.strip()
        if not sep or not model or not deployment or "=" in deployment:
            raise ConfigError(
                f"AZURE_OPENAI_MODEL_MAPPER: bad entry {entry!r}; expected model=deployment, "
                "entries separated by commas (e.g. gpt-4o=my-gpt4o,text-embedding-3-small=my-embed)"
            )
        pairs.append((model, deployment))
    return pairs


def load_settings(
    config_path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
) -> Settings:
    """Read, combine and validate everything; raise `ConfigError` with a precise message on any problem."""
    env = os.environ if environ is None else environ
    data, sources = _read_file(config_path)
    file_deployments = _file_deployments(data, sources[0] if sources else "", env)
    env_deployments = _env_deployments(env)
    if env_deployments:
        sources.append("environment (AZURE_OPENAI_MODEL_MAPPER)")

    _apply_env_scalars(data, env)
    if host is not None:
        data.setdefault("server", {})["host"] = host
    if port is not None:
        data.setdefault("server", {})["port"] = port

    env_models = {d.model for d in env_deployments}
    deployments = [d for d in file_deployments if d.model not in env_models] + env_deployments
    data["deployments"] = deployments
    data["sources"] = tuple(sources)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, sources[0] if sources else "configuration")) from None


def _read_file(config_path: str | os.PathLike[str] | None) -> tuple[dict[str, Any], list[str]]:
    if config_path is None:
        default = Path("config.yaml")
        if not default.is_file():
            return {}, []
        path = default
    else:
        path = Path(config_path)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {exc}") from None
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping at the top level")
    return loaded, [str(path)]


def _file_deployments(data: dict[str, Any], source: str, env: Mapping[str, str]) -> list[Deployment]:
    if "deployments" in data and "deployment_config" in data:
        raise ConfigError(f"{source}: use either `deployments` or the legacy `deployment_config`, not both")
    key = "deployment_config" if "deployment_config" in data else "deployments"
    items = data.pop(key, None) or []
    if not isinstance(items, list):
        raise ConfigError(f"{source}: `{key}` must be a list of deployments")
    result = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ConfigError(f"{source}: {key}[{index}] must be a mapping")
        item = dict(item)
        key_env = item.pop("api_key_env", None)
        if key_env:
            item["api_key"] = env.get(str(key_env)) or _missing_key_env(source, key, index, key_env)
        entra = item.get("entra")
        if isinstance(entra, dict) and entra.get("client_secret_env"):
            entra = item["entra"] = dict(entra)
            name = str(entra.pop("client_secret_env"))
            field = "entra.client_secret_env"
            entra["client_secret"] = env.get(name) or _missing_key_env(source, key, index, name, field)
        try:
            result.append(Deployment.model_validate(item))
        except ValidationError as exc:
            raise ConfigError(_describe(exc, f"{source}: {key}[{index}]")) from None
    return result


def _missing_key_env(source: str, key: str, index: int, name: str, field: str = "api_key_env") -> str:
    raise ConfigError(f"{source}: {key}[{index}].{field} names {name!r}, which is not set in the environment")


def _env_deployments(env: Mapping[str, str]) -> list[Deployment]:
    mapper = env.get("AZURE_OPENAI_MODEL_MAPPER", "").strip()
    endpoint = env.get("AZURE_OPENAI_ENDPOINT", "").strip()
    if not mapper:
        return []
    if not endpoint:
        raise ConfigError(
            "AZURE_OPENAI_MODEL_MAPPER is set but AZURE_OPENAI_ENDPOINT is not; "
            "set it to your resource, e.g. https://NAME.openai.azure.com/"
        )
    common = {
        "endpoint": endpoint,
        "api_version": env.get("AZURE_OPENAI_API_VER", "").strip() or DEFAULT_API_VERSION,
        "api_key": env.get("AZURE_OPENAI_API_KEY", "").strip() or None,
    }
    result = []
    for model, deployment in parse_model_mapper(mapper):
        try:
            result.append(Deployment.model_validate({"model": model, "deployment": deployment, **common}))
        except ValidationError as exc:
            raise ConfigError(_describe(exc, f"AZURE_OPENAI_MODEL_MAPPER entry {model}={deployment}")) from None
    return result


_UPSTREAM_ENV = {
    "AOAI_GATEWAY_UPSTREAM_MAX_CONNECTIONS": "max_connections",
    "AOAI_GATEWAY_UPSTREAM_POOL_WAIT_SECONDS": "pool_wait_seconds",
}


def _apply_env_scalars(data: dict[str, Any], env: Mapping[str, str]) -> None:
    if "API_BASE" in env:
        data["api_base"] = env["API_BASE"]
    upstream = data.setdefault("upstream", {})
    if not isinstance(upstream, dict):
        raise ConfigError("`upstream` must be a mapping")
    if env.get("AZURE_OPENAI_HTTP_PROXY"):
        upstream["http_proxy"] = env["AZURE_OPENAI_HTTP_PROXY"]
        upstream.pop("socks_proxy", None)
    if env.get("AZURE_OPENAI_SOCKS_PROXY"):
        upstream["socks_proxy"] = env["AZURE_OPENAI_SOCKS_PROXY"]
        if not env.get("AZURE_OPENAI_HTTP_PROXY"):
            upstream.pop("http_proxy", None)
    for name, field in _UPSTREAM_ENV.items():
        if env.get(name, "").strip():
            upstream[field] = env[name].strip()
    if env.get("AOAI_GATEWAY_MAX_CONNECTIONS", "").strip():
        server = data.setdefault("server", {})
        if not isinstance(server, dict):
            raise ConfigError("`server` must be a mapping")
        server["max_connections"] = env["AOAI_GATEWAY_MAX_CONNECTIONS"].strip()
    if env.get("AOAI_GATEWAY_MASTER_KEY"):
        admin = data.setdefault("admin", {})
        if not isinstance(admin, dict):
            raise ConfigError("`admin` must be a mapping")
        admin["master_key"] = env["AOAI_GATEWAY_MASTER_KEY"]
    if env.get("AOAI_GATEWAY_DATA_DIR"):
        data["data_dir"] = env["AOAI_GATEWAY_DATA_DIR"]
    calls_env = calls_from_env(env)
    if calls_env:
        calls = data.setdefault("calls", {})
        storage = (calls.get("azure_storage") or {}) if isinstance(calls, dict) else None
        if not isinstance(calls, dict) or not isinstance(storage, dict):
            raise ConfigError("`calls` and `calls.azure_storage` must be mappings")
        calls.update({**calls_env, "azure_storage": {**storage, **calls_env.get("azure_storage", {})}})
    listen = env.get("LISTEN", "").strip()
    if listen:
        host, sep, port = listen.rpartition(":")
        if not sep or not port.isdigit():
            raise ConfigError(f"LISTEN={listen!r} must be host:port or :port, e.g. 0.0.0.0:8080")
        server = data.setdefault("server", {})
        server["host"] = host.strip("[]") or "0.0.0.0"
        server["port"] = int(port)


def _describe(exc: ValidationError, where: str) -> str:
    lines = []
    for error in exc.errors():
        loc = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown setting (check the spelling against the README's configuration reference)"
        lines.append(f"{where}{': ' + loc if loc else ''}: {message}")
    return "\n".join(lines)
