"""Microsoft Entra ID upstream auth: credentials by kind (credentials.py) and Bearer tokens cached in front of
them (tokens.py). azure-identity (the `entra` extra) is imported only when a credential is opened."""

from .credentials import CREDENTIALS, CredentialKind, open_credential
from .tokens import EntraTokenAuth

__all__ = ["CREDENTIALS", "CredentialKind", "EntraTokenAuth", "open_credential"]
