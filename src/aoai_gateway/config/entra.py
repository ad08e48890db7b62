"""A deployment's Microsoft Entra ID credential (`entra:`): the gateway gets Bearer tokens instead of holding a key.

    entra: {credential: managed_identity}                                  # system-assigned identity
    entra: {credential: client_secret, tenant_id: T, client_id: C, client_secret_env: AZURE_CLIENT_SECRET}

`credential` names a kind from `entra/credentials.py`'s registry; each kind says which fields it needs. Tokens
are for `scope` (Azure OpenAI's, on every surface: deployments, v1, Responses, Realtime) and are renewed
`refresh_margin_seconds` before they expire.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from .registries import registered, registry

AZURE_OPENAI_SCOPE = "https://cognitiveservices.azure.com/.default"


class EntraSettings(BaseModel):
    """One credential; deployments with equal `entra:` settings share one credential and one token cache."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    credential: Annotated[str, registered("entra credential")]
    tenant_id: str | None = None
    client_id: str | None = None  # the app registration, or a user-assigned managed identity
    client_secret: SecretStr | None = None  # client_secret_env in a config file: the variable that holds it
    token_file: str | None = None  # workload identity's federated token (default: $AZURE_FEDERATED_TOKEN_FILE)
    authority_host: str | None = None  # sovereign clouds: https://login.microsoftonline.us, ...
    ca_file: str | None = None  # a CA bundle the token endpoint's certificate chains to (TLS-inspecting networks)
    scope: str = AZURE_OPENAI_SCOPE
    refresh_margin_seconds: float = Field(300.0, ge=0)
    timeout_seconds: float = Field(30.0, gt=0)

    @field_validator("authority_host")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("https://"):
            raise ValueError(f"authority_host {value!r} must be an https:// URL (Entra ID only speaks TLS)")
        return value

    @model_validator(mode="after")
    def _fields_of_the_kind(self) -> EntraSettings:
        missing = [name for name in registry("entra credential")[self.credential].required if not getattr(self, name)]
        if missing:
            raise ValueError(f"entra credential {self.credential} needs {', '.join(missing)}")
        return self

    def label(self) -> str:
        """How errors and logs name this credential: its kind and client id, never a secret."""
        return f"{self.credential}" + (f" (client {self.client_id})" if self.client_id else "")


__all__ = ["AZURE_OPENAI_SCOPE", "EntraSettings"]
