"""Settings of the OpenTelemetry traces (`tracing:`), off unless `enabled`; the `[otel]` extra does the work.

    settings.tracing.enabled            # False: nothing is traced, nothing of OpenTelemetry is imported
    settings.tracing.traces_url()       # "http://collector:4318/v1/traces" for http/protobuf

Nothing here imports OpenTelemetry: validating a configuration must stay cheap, and work without the extra.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

# The OTLP transports, named as OTEL_EXPORTER_OTLP_PROTOCOL names them (tracing.py holds an exporter for each).
OtlpProtocol = Literal["http/protobuf", "grpc"]


class TracingSettings(BaseModel):
    """A span per request and per upstream attempt, exported by OTLP.

    `endpoint` is the collector's base URL, as OTEL_EXPORTER_OTLP_ENDPOINT takes it (http/protobuf appends
    `/v1/traces`); empty leaves it to OpenTelemetry's own variables and defaults. Headers, timeout, compression
    and certificates come from the standard OTEL_EXPORTER_OTLP_* variables. `sample_ratio` samples new traces;
    a trace the client started keeps the client's decision.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    endpoint: str = ""
    protocol: OtlpProtocol = "http/protobuf"
    service_name: str = Field("aoai-gateway", min_length=1)
    sample_ratio: float = Field(1.0, ge=0, le=1)

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        value = value.strip()
        if value and (urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).hostname):
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value.rstrip("/")

    def traces_url(self) -> str | None:
        """Where the exporter sends spans; None: OpenTelemetry's variables and defaults decide."""
        if not self.endpoint:
            return None
        return f"{self.endpoint}/v1/traces" if self.protocol == "http/protobuf" else self.endpoint


__all__ = ["OtlpProtocol", "TracingSettings"]
