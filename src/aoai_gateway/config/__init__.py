"""Configuration: the typed `Settings` and how it is loaded from file, environment and flags."""

from .loader import ENV_VARS, ConfigError, load_settings, parse_model_mapper
from .settings import (
    DEFAULT_API_VERSION,
    AccessSettings,
    AdminSettings,
    BodyLimits,
    BreakerSettings,
    ConsoleSettings,
    CorsSettings,
    Deployment,
    LoggingSettings,
    RealtimeSettings,
    RoutingSettings,
    ServerSettings,
    Settings,
    Timeouts,
    UpstreamSettings,
)
from .tracing import TracingSettings

__all__ = [
    "DEFAULT_API_VERSION",
    "ENV_VARS",
    "AccessSettings",
    "AdminSettings",
    "BodyLimits",
    "BreakerSettings",
    "ConfigError",
    "ConsoleSettings",
    "CorsSettings",
    "Deployment",
    "LoggingSettings",
    "RealtimeSettings",
    "RoutingSettings",
    "ServerSettings",
    "Settings",
    "Timeouts",
    "TracingSettings",
    "UpstreamSettings",
    "load_settings",
    "parse_model_mapper",
]
