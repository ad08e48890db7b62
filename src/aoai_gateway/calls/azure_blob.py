"""An Azure Blob Storage container (or a prefix in it) as a recordings source, with the async Azure SDK.

    source = open_azure_source("azure://calls/2026/11", settings.calls.azure_storage)
    for item in await source.scan():
        async with source.fetch(item) as path:  # downloaded to a temporary file, deleted after the block
            ...
    await source.aclose()

Credentials, first found wins: `?connection_string=<url-encoded>` in the spec; `calls.azure_storage.
connection_string`; `calls.azure_storage.account` with its `key` or `sas_token` (`blob_endpoint` overrides
`https://<account>.blob.core.windows.net`). The settings come from the config file or, as Azure's tools have it,
from AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCOUNT, AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN and
AZURE_STORAGE_BLOB_ENDPOINT (read by the config loader: config/calls.py). URIs and error messages never carry them.

A blob's `vocabulary` metadata (names separated by `;`, percent-encoded where not ASCII, as metadata must be:
`Fjordline Seafood;Ingrid Solberg;%C3%85lesund`) is that recording's vocabulary for Whisper (vocabulary.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobProperties, StorageErrorCode
from azure.storage.blob.aio import BlobServiceClient, ExponentialRetry
from pydantic import SecretStr

from ..config.calls import AzureStorageSettings
from .errors import SourceError
from .sources import SourceItem, is_audio
from .vocabulary import VOCABULARY_METADATA, metadata_names

__all__ = ["AzureBlobSource", "open_azure_source"]

CREDENTIALS_HINT = (
    "set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY (or calls.azure_storage "
    "in the config file), or add ?connection_string=<url-encoded> to the source"
)


def open_azure_source(spec: str, storage: AzureStorageSettings) -> AzureBlobSource:
    """The source for `azure://container[/prefix][?connection_string=...]`."""
    parts = urlsplit(spec)
    container, prefix = parts.netloc, parts.path.strip("/")
    uri = f"azure://{container}/{prefix}" if prefix else f"azure://{container}"
    if parts.scheme != "azure" or not container:
        raise SourceError(f"{uri}: use azure://container[/prefix]")
    options: dict[str, str] = {}
    for option in filter(None, parts.query.split("&")):
        # unquote, not parse_qs: a key pasted without encoding keeps its '+' (parse_qs would make it a space)
        name, _, value = option.partition("=")
        if name != "connection_string":
            raise SourceError(f"{uri}: unknown option {name!r}; the only one is ?connection_string=<url-encoded>")
        options[name] = unquote(value)
    # Hand over to the job's own retries soon rather than back off for a minute per request (the SDK's default).
    retry = ExponentialRetry(initial_backoff=2, increment_base=2, retry_total=3)
    connection_string = options.get("connection_string") or _secret(storage.connection_string)
    account, key, sas_token = storage.account, _secret(storage.key), _secret(storage.sas_token)
    try:
        if connection_string:
            service = BlobServiceClient.from_connection_string(connection_string, retry_policy=retry)
        elif account and (key or sas_token):
            endpoint = storage.blob_endpoint or f"https://{account}.blob.core.windows.net"
            credential = {"account_name": account, "account_key": key} if key else sas_token
            service = BlobServiceClient(endpoint, credential=credential, retry_policy=retry)
        else:
            raise SourceError(f"{uri}: no storage credentials; {CREDENTIALS_HINT}")
    except ValueError:  # the SDK's message is secret-free, but says only "blank or malformed"
        raise SourceError(f"{uri}: malformed storage connection string or endpoint; {CREDENTIALS_HINT}") from None
    return AzureBlobSource(service, container, prefix)


class AzureBlobSource:
    """The audio blobs of one container, or of the blobs under `prefix/` in it; owns `service` (see aclose)."""

    def __init__(self, service: BlobServiceClient, container: str, prefix: str = "") -> None:
        self._service = service
        self._container = service.get_container_client(container)
        self._prefix = f"{prefix}/" if prefix else ""
        self._root = f"azure://{container}/"
        self.uri = f"azure://{container}/{prefix}" if prefix else f"azure://{container}"

    async def scan(self) -> list[SourceItem]:
        items = []
        with self._translated(self.uri):
            listing = self._container.list_blobs(name_starts_with=self._prefix or None, include=["metadata"])
            async for blob in listing:
                if is_audio(blob.name):
                    items.append(self._item(blob))
        return sorted(items, key=lambda item: item.name)

    async def stat(self, name: str) -> SourceItem:
        blob = self._container.get_blob_client(self._prefix + name)
        with self._translated(self._root + blob.blob_name):
            return self._item(await blob.get_blob_properties())

    @contextlib.asynccontextmanager
    async def fetch(self, item: SourceItem) -> AsyncIterator[Path]:
        blob = self._container.get_blob_client(item.uri.removeprefix(self._root))
        # The suffix stays: decoders guess the format from it. The SDK pins the ETag of the first chunk for the
        # rest, so a blob overwritten mid-download fails rather than mixing two versions.
        with tempfile.NamedTemporaryFile(prefix="aoai-call-", suffix=Path(item.name).suffix) as file:
            with self._translated(item.uri):
                download = await blob.download_blob()
                async for chunk in download.chunks():
                    await asyncio.to_thread(file.write, chunk)
            await asyncio.to_thread(file.flush)
            yield Path(file.name)

    async def size_of(self, uri: str) -> int:
        """The size of the blob an item URI of this container names (SourceError when it is gone)."""
        blob = self._container.get_blob_client(uri.removeprefix(self._root))
        with self._translated(uri):
            return int((await blob.get_blob_properties()).size)

    async def read_range(self, uri: str, offset: int, length: int) -> AsyncGenerator[bytes, None]:
        """Bytes [offset, offset + length) of a blob, as the SDK downloads them (the console's audio player)."""
        blob = self._container.get_blob_client(uri.removeprefix(self._root))
        with self._translated(uri):
            download = await blob.download_blob(offset=offset, length=length)
            async for chunk in download.chunks():
                yield chunk

    async def aclose(self) -> None:
        await self._service.close()

    def _item(self, blob: BlobProperties) -> SourceItem:
        return SourceItem(
            uri=self._root + blob.name,
            name=blob.name.removeprefix(self._prefix),
            size=blob.size,
            version=(blob.etag or "").strip('"'),
            modified=blob.last_modified.timestamp() if blob.last_modified else 0.0,
            hints=tuple(metadata_names((blob.metadata or {}).get(VOCABULARY_METADATA))),
        )

    @contextlib.contextmanager
    def _translated(self, where: str) -> Iterator[None]:
        """The one place SDK errors become SourceError; their text is dropped, as it can quote request URLs."""
        try:
            yield
        except ResourceNotFoundError as exc:
            missing = "container" if _error_code(exc) == StorageErrorCode.CONTAINER_NOT_FOUND else "blob"
            # A deleted blob will not come back by retrying; a missing container may be a deployment in progress.
            raise SourceError(f"{where}: no such {missing}", retryable=missing == "container") from None
        except (ServiceRequestError, ServiceResponseError):
            endpoint = f"{self._service.scheme}://{self._service.primary_hostname}"
            raise SourceError(f"{where}: cannot reach the storage endpoint {endpoint}") from None
        except HttpResponseError as exc:  # ClientAuthenticationError too: a bad signature, or a key not in base64
            if isinstance(exc, ClientAuthenticationError) or exc.status_code in (401, 403):
                # Azure says AuthenticationFailed for a wrong key, Azurite AuthorizationFailure: both are 403.
                raise SourceError(f"{where}: the storage account refused the credentials; {CREDENTIALS_HINT}") from None
            raise SourceError(f"{where}: storage answered {exc.status_code} {_error_code(exc) or exc.reason}") from None


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value else None


def _error_code(exc: HttpResponseError) -> str | None:
    code = getattr(exc, "error_code", None)  # set by the storage SDK from x-ms-error-code: a str or StorageErrorCode
    return str(getattr(code, "value", code)) if code else None
