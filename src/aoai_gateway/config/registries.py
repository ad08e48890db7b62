"""Settings that name a part (a provider, a strategy, a server): the registry holding the parts is the list.

    provider: Annotated[str, registered("provider")] = "azure"

A config `Literal` would repeat each registry's names by hand and drift from it. Instead the value is checked
against the registry itself when the settings are validated; the registry module is imported only then, since
it imports this package for its own types.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

# What a setting names -> (module, registry) holding the parts of that kind.
REGISTRIES: dict[str, tuple[str, str]] = {
    "provider": ("aoai_gateway.providers", "PROVIDERS"),
    "auth mode": ("aoai_gateway.access", "ACCESS_MODES"),
    "routing strategy": ("aoai_gateway.balancing", "STRATEGIES"),
    "upstream client": ("aoai_gateway.upstream", "UPSTREAM_CLIENTS"),
    "server engine": ("aoai_gateway.server", "SERVER_ENGINES"),
    "entra credential": ("aoai_gateway.entra.credentials", "CREDENTIALS"),
}


def registry(kind: str) -> Mapping[str, Any]:
    module, name = REGISTRIES[kind]
    found: Mapping[str, Any] = getattr(importlib.import_module(module), name)
    return found


def registered(kind: str) -> AfterValidator:
    """A validator that accepts only names the `kind` registry holds, and lists them when it refuses."""

    def check(value: str) -> str:
        names = list(registry(kind))
        if value not in names:
            # The words pydantic uses for a Literal, so messages read the same as every other choice.
            quoted = [f"'{name}'" for name in names]
            expected = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
            raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})
        return value

    return AfterValidator(check)


__all__ = ["REGISTRIES", "registered", "registry"]
