"""Entra ID credential kinds by name (`entra.credential`), each built with azure-identity's async credentials.

    credential = open_credential(settings.entra)          # azure.identity.aio.ManagedIdentityCredential, ...
    token = await credential.get_token(settings.entra.scope)

Each kind lists the settings it cannot do without; the others fall back to azure-identity's own environment
variables (`AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_FEDERATED_TOKEN_FILE`, `IDENTITY_ENDPOINT`, ...), as in
any Azure SDK. azure-identity is imported here only when a credential is opened: the settings check does not
need the extra.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..extras import needs

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

    from ..config.entra import EntraSettings


@dataclass(frozen=True)
class CredentialKind:
    build: Callable[[EntraSettings, dict[str, Any]], AsyncTokenCredential]
    required: tuple[str, ...] = ()  # settings this kind cannot do without
    about: str = ""


def _transport(settings: EntraSettings) -> dict[str, Any]:
    # Passed to azure-core's pipeline: a private CA for the token endpoint, the authority of a sovereign cloud.
    options: dict[str, Any] = {}
    if settings.ca_file:
        options["connection_verify"] = settings.ca_file
    return options


def _authority(settings: EntraSettings) -> dict[str, Any]:
    return {"authority": settings.authority_host} if settings.authority_host else {}


def _client_secret(settings: EntraSettings, options: dict[str, Any]) -> AsyncTokenCredential:
    from azure.identity.aio import ClientSecretCredential

    assert settings.tenant_id and settings.client_id and settings.client_secret  # required, checked at load
    return ClientSecretCredential(
        settings.tenant_id,
        settings.client_id,
        settings.client_secret.get_secret_value(),
        **_authority(settings),
        **options,
    )


def _managed_identity(settings: EntraSettings, options: dict[str, Any]) -> AsyncTokenCredential:
    from azure.identity.aio import ManagedIdentityCredential

    return ManagedIdentityCredential(client_id=settings.client_id, **options)


def _workload_identity(settings: EntraSettings, options: dict[str, Any]) -> AsyncTokenCredential:
    from azure.identity.aio import WorkloadIdentityCredential

    return WorkloadIdentityCredential(
        tenant_id=settings.tenant_id,
        client_id=settings.client_id,
        token_file_path=settings.token_file,
        **_authority(settings),
        **options,
    )


def _azure_cli(settings: EntraSettings, options: dict[str, Any]) -> AsyncTokenCredential:
    from azure.identity.aio import AzureCliCredential

    # `az account get-access-token` in a subprocess; azure-identity does not cache these: tokens.py does.
    return AzureCliCredential(tenant_id=settings.tenant_id or "", process_timeout=round(settings.timeout_seconds))


CREDENTIALS: dict[str, CredentialKind] = {
    "client_secret": CredentialKind(_client_secret, ("tenant_id", "client_id", "client_secret"), "a service principal"),
    "managed_identity": CredentialKind(_managed_identity, (), "App Service, Functions, VMs, AKS pod identity"),
    "workload_identity": CredentialKind(_workload_identity, (), "AKS workload identity (federated token file)"),
    "azure_cli": CredentialKind(_azure_cli, (), "the signed-in `az` user: development"),
}


def open_credential(settings: EntraSettings) -> AsyncTokenCredential:
    """The azure-identity credential these settings describe; close it with `await credential.close()`."""
    with needs("entra", f"entra credential {settings.credential}"):
        return CREDENTIALS[settings.credential].build(settings, _transport(settings))


__all__ = ["CREDENTIALS", "CredentialKind", "open_credential"]
