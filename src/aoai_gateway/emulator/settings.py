"""Typed emulator settings, read once from YAML at start-up.

    settings = EmulatorSettings.load("emulator.yaml")   # or EmulatorSettings.load(None) for defaults

The whole file, every key optional (defaults shown)::

    api_keys: []                  # accepted `api-key` / `Authorization: Bearer` values;
                                  # empty = any non-empty key is accepted
    auto_deployments: true        # unknown deployment names are served as chat-capable deployments
                                  # whose model is the deployment name; false = Azure's 404 DeploymentNotFound
    region: East US               # reported in the `x-ms-region` header
    seed: 0                       # seeds the random draws of fault `rate`s, so runs are repeatable
    max_file_bytes: 268435456     # uploaded files (and batch outputs) held in memory, in all; past it a 400
    deployments:
      - name: gpt-4o-deploy       # the `{deployment}` path segment (or the v1 body's `model`)
        model: gpt-4o             # model name reported in responses; defaults to `name`
        latency_ms: 0             # delay before the response headers
        chunk_interval_ms: 0      # delay between streamed chunks (SSE events, audio pieces)
        requests_per_minute: 1000   # limits reported in the x-ratelimit-* headers; not enforced
        tokens_per_minute: 1000000  # (inject `429` faults to emulate throttling)
        responses: []             # fixed chat/completions contents, served in order, the last repeating
        faults:                   # injected failures, first one whose `rate` draw hits wins
          - kind: "429"           # 429 | 500 | 503 | timeout | reset
            rate: 1.0             # probability per request, 0..1
            retry_after_ms: 1000  # 429: retry-after / retry-after-ms / x-ms-retry-after-ms headers
            after_chunks: 3       # reset: body chunks sent before the connection is dropped
            sleep_s: 30           # timeout: seconds to hold the request before answering 408
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = ["DeploymentSettings", "EmulatorSettings", "EmulatorSettingsError", "FaultKind", "FaultSpec"]

FaultKind = Literal["429", "500", "503", "timeout", "reset"]


class EmulatorSettingsError(ValueError):
    """The settings file is missing keys, has unknown ones or holds values of the wrong type.

    raise EmulatorSettingsError("emulator.yaml: deployments.0.latency_ms: must be >= 0")
    """


class FaultSpec(BaseModel):
    """One injected failure: `FaultSpec(kind="429", rate=0.5, retry_after_ms=2000)`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: FaultKind
    rate: float = Field(default=1.0, ge=0.0, le=1.0)
    retry_after_ms: int = Field(default=1000, ge=0)
    after_chunks: int = Field(default=3, ge=0)
    sleep_s: float = Field(default=30.0, ge=0.0)

    @field_validator("kind", mode="before")
    @classmethod
    def _kind_as_text(cls, value: Any) -> Any:
        # YAML reads an unquoted `kind: 429` as an int; the status code is the name either way.
        return str(value) if isinstance(value, int) else value


class DeploymentSettings(BaseModel):
    """A named deployment: `DeploymentSettings(name="gpt-4o-deploy", model="gpt-4o", latency_ms=20)`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    model: str = ""
    latency_ms: int = Field(default=0, ge=0)
    chunk_interval_ms: int = Field(default=0, ge=0)
    requests_per_minute: int = Field(default=1000, ge=1)
    tokens_per_minute: int = Field(default=1_000_000, ge=1)
    responses: tuple[str, ...] = ()
    faults: tuple[FaultSpec, ...] = ()

    @model_validator(mode="after")
    def _model_defaults_to_name(self) -> DeploymentSettings:
        if not self.model:
            # Frozen model: the validator is the one place allowed to fill the default in.
            object.__setattr__(self, "model", self.name)
        return self


class EmulatorSettings(BaseModel):
    """The whole configuration: `EmulatorSettings(api_keys=("test-key",), auto_deployments=False)`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_keys: tuple[str, ...] = ()
    auto_deployments: bool = True
    region: str = "East US"
    seed: int = 0
    max_file_bytes: int = Field(default=256 * 1024 * 1024, ge=0)
    deployments: tuple[DeploymentSettings, ...] = ()

    @model_validator(mode="after")
    def _unique_deployment_names(self) -> EmulatorSettings:
        names = [deployment.name for deployment in self.deployments]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"deployment names must be unique; repeated: {', '.join(duplicates)}")
        return self

    @classmethod
    def load(cls, path: str | None) -> EmulatorSettings:
        """Read settings from a YAML file; `None` gives the defaults.

        EmulatorSettings.load("emulator.yaml")
        """
        if path is None:
            return cls()
        text = Path(path).read_text(encoding="utf-8")
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise EmulatorSettingsError(f"{path}: not valid YAML: {exc}") from exc
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise EmulatorSettingsError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise EmulatorSettingsError(f"{path}: invalid emulator settings:\n{_describe(exc)}") from exc


def _describe(exc: ValidationError) -> str:
    """One `location: message` line per problem, the form a user can act on."""
    lines = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"]) or "(top level)"
        lines.append(f"  {location}: {error['msg']}")
    return "\n".join(lines)
